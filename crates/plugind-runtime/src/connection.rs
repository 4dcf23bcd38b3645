//! One connection to a plugin, whatever carries it: a session router for what comes back and a
//! cloneable writer for what goes out (a process's stdin today; a TCP socket or an HTTP request
//! for the other runtimes).

use std::io;
use std::sync::Arc;

use crate::message::SessionRequest;
use crate::router::{RegisterError, SessionRouter};
use crate::session::Session;
use crate::writer::Writer;

/// Why a session could not be opened on a connection.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// The connection is closing; another may replace it.
    Closed,
    Duplicate,
    Write(io::Error),
}

/// Routing and writing for one connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connection {
    router: Arc<SessionRouter>,
    writer: Writer,
}

impl Connection {
    pub(crate) fn new(router: Arc<SessionRouter>, writer: Writer) -> Self {
        Connection { router, writer }
    }

    pub(crate) fn router(&self) -> &Arc<SessionRouter> {
        &self.router
    }

    /// Registers the session, then writes its request `line`; on a failed write the session is
    /// unregistered again.
    pub(crate) async fn open(
        &self,
        request: Arc<SessionRequest>,
        line: &[u8],
    ) -> Result<Session, OpenError> {
        let rx = self
            .router
            .register(&request.session_id)
            .map_err(|e| match e {
                RegisterError::Closed => OpenError::Closed,
                RegisterError::Duplicate => OpenError::Duplicate,
            })?;
        let session = Session::new(request, rx, self.router.clone(), self.writer.clone());
        match self.writer.write_line(line).await {
            Ok(()) => Ok(session),
            Err(e) => Err(OpenError::Write(e)),
        }
    }
}
