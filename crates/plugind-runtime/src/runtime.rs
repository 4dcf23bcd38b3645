//! What every runtime kind (local processes, remote-debugging connections; serverless later) offers
//! the registry. The registry and its [`PluginHandle`](crate::PluginHandle) only ever see this
//! trait, so nothing above this crate knows which kind serves a plugin.

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::connection::Connection;
use crate::error::InvokeError;
use crate::lifecycle::{InstanceStatus, RuntimeKind};

pub(crate) trait PluginRuntime: Send + Sync {
    fn kind(&self) -> RuntimeKind;

    /// A connection that can take a new session, waiting until `deadline` while the runtime
    /// has none (an instance restarting).
    fn connection(&self, deadline: Instant) -> BoxFuture<'_, Result<Connection, InvokeError>>;

    /// How long a caller may wait for a connection before giving up (the restart gap).
    fn connection_wait(&self) -> std::time::Duration;

    /// True when a connection is serving.
    fn is_ready(&self) -> bool;

    /// The process id serving, where there is one.
    fn pid(&self) -> Option<u32>;

    /// Sessions in flight.
    fn sessions(&self) -> usize;

    /// The instances serving now, for the status route (none for kinds without instances).
    fn instances(&self) -> Vec<InstanceStatus> {
        Vec::new()
    }

    /// Asks the runtime to stop; the registry then awaits its background task.
    fn request_stop(&self);
}
