//! One connection to a plugin, whatever carries it: a session router for what comes back and a
//! cloneable writer for what goes out (a process's stdin today; a TCP socket or an HTTP request
//! for the other runtimes).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::SessionLimits;
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
    /// Every session slot is taken and the queue is full.
    Busy {
        in_flight: usize,
        queued: usize,
    },
}

/// Admission of sessions to one connection: at most `in_flight` at once, at most `queued`
/// waiting for a turn (in arrival order); the rest are refused at once.
struct Admission {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    limits: SessionLimits,
}

/// Counts a caller as waiting until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    fn new(limits: SessionLimits) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(
                limits.in_flight.clamp(1, Semaphore::MAX_PERMITS),
            )),
            waiting: AtomicUsize::new(0),
            limits,
        }
    }

    async fn admit(&self) -> Result<OwnedSemaphorePermit, OpenError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(OpenError::Busy {
                in_flight: self.limits.in_flight,
                queued: self.limits.queued,
            });
        }
        let _waiting = Waiting(&self.waiting);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| OpenError::Closed)
    }
}

/// Routing, writing and admission for one connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connection {
    router: Arc<SessionRouter>,
    writer: Writer,
    admission: Arc<Admission>,
}

impl Connection {
    pub(crate) fn new(router: Arc<SessionRouter>, writer: Writer, limits: SessionLimits) -> Self {
        Connection {
            router,
            writer,
            admission: Arc::new(Admission::new(limits)),
        }
    }

    pub(crate) fn router(&self) -> &Arc<SessionRouter> {
        &self.router
    }

    /// Waits for a session slot (or is refused as busy), registers the session, then writes its
    /// request `line`; on a failed write the session is unregistered again. The session holds
    /// its slot until dropped.
    pub(crate) async fn open(
        &self,
        request: Arc<SessionRequest>,
        line: &[u8],
    ) -> Result<Session, OpenError> {
        let permit = self.admission.admit().await?;
        let rx = self
            .router
            .register(&request.session_id)
            .map_err(|e| match e {
                RegisterError::Closed => OpenError::Closed,
                RegisterError::Duplicate => OpenError::Duplicate,
            })?;
        let session = Session::new(
            request,
            rx,
            self.router.clone(),
            self.writer.clone(),
            permit,
        );
        match self.writer.write_line(line).await {
            Ok(()) => Ok(session),
            Err(e) => Err(OpenError::Write(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;
    use crate::writer::LineWriter;

    struct Sink;

    impl LineWriter for Sink {
        fn write_line<'a>(&'a self, _line: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn request(id: &str) -> Arc<SessionRequest> {
        Arc::new(SessionRequest {
            session_id: id.to_owned(),
            ..SessionRequest::default()
        })
    }

    /// Two in flight, one waiting, the rest refused at once; a finished session lets the waiting
    /// one in.
    #[tokio::test]
    async fn sessions_beyond_the_limits_wait_then_are_refused() {
        let limits = SessionLimits {
            buffer_bytes: 1024,
            in_flight: 2,
            queued: 1,
        };
        let conn = Connection::new(Arc::new(SessionRouter::new(1024)), Arc::new(Sink), limits);
        let first = conn.open(request("a"), b"x\n").await.expect("a");
        let _second = conn.open(request("b"), b"x\n").await.expect("b");
        let waiting = tokio::spawn({
            let conn = conn.clone();
            async move {
                conn.open(request("c"), b"x\n")
                    .await
                    .map(|s| s.id().to_owned())
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the third waits for a slot");
        match conn.open(request("d"), b"x\n").await {
            Err(OpenError::Busy { in_flight, queued }) => assert_eq!((in_flight, queued), (2, 1)),
            other => panic!("expected busy, got {:?}", other.map(|s| s.id().to_owned())),
        }
        drop(first);
        let third = waiting.await.expect("join").expect("admitted");
        assert_eq!(third, "c");
    }
}
