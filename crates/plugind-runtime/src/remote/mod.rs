//! The remote-debugging runtime (plugin-protocol §5): a plugin on a developer's machine dials
//! into the daemon over TCP, registers its declaration, and is then served like any other
//! plugin.
//!
//! * [`DebuggingServer`] accepts connections and bounds them: connections still registering are
//!   capped, registered ones are counted against `max_connections` (a slot is taken at `end` and
//!   given back when that connection is cleaned up, so the count never drifts).
//! * `link` runs one connection: registration (`registration` is its state machine, `framing`
//!   its bounded line reader), then events, then cleanup.
//! * `runtime` is the [`PluginRuntime`](crate::runtime::PluginRuntime) the registry holds for a
//!   registered connection; sessions, admission and backwards invocation are the shared
//!   connection layer's.
//! * [`DebuggingHost`] is what the daemon's service layer provides: the debugging key → tenant
//!   lookup, and installing/uninstalling the plugin for the tenant. This crate knows neither the
//!   key store nor the database.

mod framing;
mod link;
mod registration;
mod runtime;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SessionLimits;
use crate::registry::Runtimes;

/// Connections still registering (before `end`) at once; more are refused as busy at once.
const MAX_UNREGISTERED: usize = 1024;

/// Settings of the debugging listener.
#[derive(Clone, Debug)]
pub struct DebuggingSettings {
    /// `PLUGIN_REMOTE_INSTALLING_MAX_CONN`: registered connections at once.
    pub max_connections: usize,
    /// A valid handshake must arrive this soon after the accept (upstream: 10 s).
    pub handshake_timeout: Duration,
    /// The whole registration must end this soon after the accept.
    pub registration_timeout: Duration,
    /// A registered plugin silent (no heartbeat) this long is disconnected (upstream: 60 s).
    pub heartbeat_timeout: Duration,
    /// Longest event line after registration (the runtime's plugin line limit).
    pub max_line_bytes: usize,
    /// Session limits of one connection.
    pub sessions: SessionLimits,
}

impl Default for DebuggingSettings {
    fn default() -> Self {
        DebuggingSettings {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            registration_timeout: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(60),
            max_line_bytes: plugind_io::DEFAULT_MAX_LINE_BYTES,
            sessions: SessionLimits::default(),
        }
    }
}

/// A plugin that completed its registration.
#[derive(Clone, Debug)]
pub struct ConnectedPlugin {
    /// The tenant its debugging key belongs to.
    pub tenant_id: String,
    /// `author/name:version@<sha256(declaration ‖ tenant)>`.
    pub uid: PluginUniqueIdentifier,
    /// Icons remapped to asset ids, defaults filled in.
    pub declaration: PluginDeclaration,
    /// The referenced assets as (asset id, bytes).
    pub assets: Vec<(String, Vec<u8>)>,
}

/// What the daemon provides to debugging connections.
pub trait DebuggingHost: Send + Sync + 'static {
    /// The tenant of a debugging key; `Ok(None)` when the key is unknown or expired.
    fn tenant_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;

    /// The plugin registered: store its assets and install it for its tenant. Returns an id to
    /// hand back to [`DebuggingHost::disconnected`] (the installation), or the line the plugin
    /// is refused with.
    fn connected<'a>(
        &'a self,
        plugin: &'a ConnectedPlugin,
    ) -> BoxFuture<'a, Result<String, String>>;

    /// The plugin's connection ended and no newer connection took it over: uninstall it.
    fn disconnected<'a>(
        &'a self,
        plugin: &'a ConnectedPlugin,
        installation_id: &'a str,
    ) -> BoxFuture<'a, ()>;
}

/// State shared by the accept loop and every connection.
pub(crate) struct Shared {
    runtimes: Runtimes,
    host: Arc<dyn DebuggingHost>,
    settings: DebuggingSettings,
    /// Registered connections holding a slot.
    registered: AtomicUsize,
    /// Connections not registered yet.
    unregistered: AtomicUsize,
    /// Which connection serves each uid; a newer connection of the same uid takes over.
    owners: Mutex<HashMap<PluginUniqueIdentifier, u64>>,
    /// Serialises connect and disconnect work (install/uninstall, registry changes).
    transitions: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    /// Cancelled by [`DebuggingServer::shutdown`].
    stop: CancellationToken,
}

impl Shared {
    fn owners(&self) -> MutexGuard<'_, HashMap<PluginUniqueIdentifier, u64>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A registered-connection slot, if one is free.
    fn take_slot(self: &Arc<Self>) -> Option<Slot> {
        let max = self.settings.max_connections;
        self.registered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

/// One registered connection's place under `max_connections`; given back when dropped.
pub(crate) struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.registered.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a connection as unregistered until dropped.
pub(crate) struct Unregistered(Arc<Shared>);

impl Drop for Unregistered {
    fn drop(&mut self) {
        self.0.unregistered.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The debugging listener. Dropping it does not stop it; call [`DebuggingServer::shutdown`].
pub struct DebuggingServer {
    shared: Arc<Shared>,
    tasks: TaskTracker,
    addr: SocketAddr,
}

impl DebuggingServer {
    /// Starts accepting debugging connections on `listener`; registered plugins join `runtimes`.
    pub fn start(
        listener: TcpListener,
        runtimes: Runtimes,
        host: Arc<dyn DebuggingHost>,
        settings: DebuggingSettings,
    ) -> std::io::Result<DebuggingServer> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            runtimes,
            host,
            settings,
            registered: AtomicUsize::new(0),
            unregistered: AtomicUsize::new(0),
            owners: Mutex::new(HashMap::new()),
            transitions: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            stop: CancellationToken::new(),
        });
        let tasks = TaskTracker::new();
        tasks.spawn(accept_loop(listener, shared.clone(), tasks.clone()));
        Ok(DebuggingServer {
            shared,
            tasks,
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registered connections now.
    pub fn registered(&self) -> usize {
        self.shared.registered.load(Ordering::Acquire)
    }

    /// Stops accepting, ends every connection (their sessions fail, their plugins are
    /// uninstalled) and waits for the cleanups, at most `wait`.
    pub async fn shutdown(&self, wait: Duration) {
        self.shared.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(wait, self.tasks.wait()).await.is_err() {
            tracing::warn!(
                connections = self.tasks.len(),
                "debugging connections did not finish their cleanup in time"
            );
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tasks: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.stop.cancelled() => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!(error = %e, "accepting a debugging connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if shared.unregistered.fetch_add(1, Ordering::AcqRel) >= MAX_UNREGISTERED {
            shared.unregistered.fetch_sub(1, Ordering::AcqRel);
            tasks.spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stream.write_all(b"server is busy now, please try again later\n"),
                )
                .await;
            });
            continue;
        }
        let guard = Unregistered(shared.clone());
        let shared = shared.clone();
        tasks.spawn(async move { link::serve(shared, stream, peer, guard).await });
    }
}
