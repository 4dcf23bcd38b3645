//! One registered debugging connection as a [`PluginRuntime`]: the registry and every caller see
//! it exactly like a local plugin (sessions, admission, backwards invocation on the same
//! connection layer); only this module knows the bytes travel over a socket.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connection::Connection;
use crate::error::InvokeError;
use crate::lifecycle::RuntimeKind;
use crate::runtime::PluginRuntime;

pub(crate) struct RemoteRuntime {
    pub(crate) conn: Connection,
    /// Cancelled to end the connection (a stop, a replacement, the daemon shutting down); the
    /// connection task then closes the socket and fails the sessions still open.
    pub(crate) stop: CancellationToken,
}

impl PluginRuntime for RemoteRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Remote
    }

    fn connection(&self, _deadline: Instant) -> BoxFuture<'_, Result<Connection, InvokeError>> {
        // A debugging plugin has one connection; once it is gone there is nothing to wait for
        // (the developer restarts the plugin, which registers again).
        let conn = (!self.stop.is_cancelled()).then(|| self.conn.clone());
        Box::pin(async move { conn.ok_or(InvokeError::NotFound) })
    }

    fn connection_wait(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn is_ready(&self) -> bool {
        !self.stop.is_cancelled()
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn sessions(&self) -> usize {
        self.conn.router().len()
    }

    fn request_stop(&self) {
        self.stop.cancel();
    }
}
