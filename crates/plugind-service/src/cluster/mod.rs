//! Several daemons sharing one database, one Redis and one object store (PSC §7.6, http-api
//! §6): node heartbeats and votes, master election and the master's clean-up, the plugin
//! registry, which node serves a request, install-task ownership, and reconciliation of what
//! runs on this node with what is installed.
//!
//! Runs only when the coordination backend is shared (Redis); the embedded default is one node
//! and starts none of this.
//!
//! # Layout
//! - [`nodes`]: node records (`cluster-nodes-status-hash-map`), heartbeat, votes, election,
//!   the master's garbage collection.
//! - [`registry`]: `plugin_state`, which node serves which uid.
//! - [`tasks`]: which node runs which install task; failing the tasks of nodes that died.
//! - [`reconcile`]: launch what is installed and not running here, stop what runs and is not
//!   installed; on a timer and whenever another node announces a change.
//! - [`route`]: the redirect decision for dispatch requests.
//!
//! **Invariant:** every key and channel name that upstream's daemons also read keeps upstream's
//! name and JSON/CBOR encoding (PSC §7.2–7.3), so plugind and Go nodes can share one Redis.

mod nodes;
mod reconcile;
mod registry;
pub mod route;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugind_coord::{Coord, CoordError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::Services;

pub use nodes::{NodeAddress, NodeRecord, Vote};
pub use route::Route;

/// Try to become master, or refresh the master key, this often.
pub const MASTER_LOCKING_INTERVAL: Duration = Duration::from_millis(500);
/// Expiry of `cluster-master-preemption-lock`.
pub const MASTER_LOCK_EXPIRY: Duration = Duration::from_secs(2);
/// The master's clean-up runs this often.
pub const MASTER_GC_INTERVAL: Duration = Duration::from_secs(10);
/// Every node health-checks the others' addresses this often.
pub const NODE_VOTE_INTERVAL: Duration = Duration::from_secs(30);
/// Heartbeat.
pub const NODE_STATUS_INTERVAL: Duration = Duration::from_secs(5);
/// A node whose last heartbeat is this old is dead.
pub const NODE_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(10);
/// The registry's tick: registered plugins older than [`PLUGIN_REFRESH_INTERVAL`] are rewritten.
pub const PLUGIN_SCHEDULER_TICK: Duration = Duration::from_secs(3);
/// A registered plugin's state is rewritten at most this often.
pub const PLUGIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// The master removes plugin states older than this; lookups skip those older than half.
pub const PLUGIN_DEACTIVATED_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) const NODES_KEY: &str = "cluster-nodes-status-hash-map";
pub(crate) const MASTER_KEY: &str = "cluster-master-preemption-lock";
pub(crate) const NEW_NODE_CHANNEL: &str = "cluster-new-node-channel";
pub(crate) const PLUGIN_STATE_KEY: &str = "plugin_state";
/// plugind's own: install task id → `{"node_id","at"}` of the node running it.
pub(crate) const TASK_OWNERS_KEY: &str = "plugind:install_task_owners";
pub(crate) use crate::state::INSTALLATION_CHANGED_CHANNEL;

/// How this node takes part.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Addresses other nodes reach this one at (upstream: every non-loopback IPv4 address).
    pub ips: Vec<String>,
    /// `SERVER_PORT`.
    pub port: u16,
    /// How often this node compares what is installed with what it runs.
    pub reconcile_interval: Duration,
}

/// This node's membership. Cheap to clone; the loops stop when [`Cluster::leave`] runs.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) coord: Coord,
    pub(crate) cfg: ClusterConfig,
    /// Live nodes (other than stale ones) as of the last heartbeat, this node included.
    pub(crate) live: Mutex<HashMap<String, NodeRecord>>,
    pub(crate) master: AtomicBool,
    pub(crate) http: reqwest::Client,
    /// uid → when its registry entry was last written.
    pub(crate) registered: Mutex<HashMap<String, tokio::time::Instant>>,
    /// uids registered through [`Cluster::register`] (kept until unregistered).
    pub(crate) pinned: Mutex<HashSet<String>>,
    pub(crate) reconcile_now: Notify,
    pub(crate) stop: CancellationToken,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cluster {
    /// This node's id (the coordination backend's, a UUIDv4 per start).
    pub fn node_id(&self) -> &str {
        self.inner.coord.node_id()
    }

    /// Whether this node holds the master key.
    pub fn is_master(&self) -> bool {
        self.inner.master.load(Ordering::Relaxed)
    }

    /// Ids of the nodes alive at the last heartbeat.
    pub fn live_nodes(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.inner.live).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Registers a runtime that lives on this node only (a remote-debugging plugin) so the
    /// other nodes redirect its requests here; kept until [`Cluster::unregister`].
    pub async fn register(&self, uid: &str) -> Result<(), CoordError> {
        lock(&self.inner.pinned).insert(uid.to_owned());
        registry::write(&self.inner, uid).await
    }

    /// Removes a registration made by [`Cluster::register`].
    pub async fn unregister(&self, uid: &str) -> Result<(), CoordError> {
        lock(&self.inner.pinned).remove(uid);
        registry::remove(&self.inner, uid).await
    }

    /// Reconcile now (also happens on a timer and on announcements from other nodes).
    pub fn reconcile_soon(&self) {
        self.inner.reconcile_now.notify_one();
    }

    /// Leaves the cluster: stops the loops, deletes this node's record and registry entries.
    pub async fn leave(&self) {
        self.inner.stop.cancel();
        if let Err(err) = nodes::remove_node(&self.inner, self.node_id()).await {
            tracing::warn!(error = %err, "could not remove this node from the cluster table; it ages out");
        }
    }
}

impl Services {
    /// Joins the cluster when the coordination backend is shared: first heartbeat, the
    /// install tasks of nodes that are gone failed, the loops started. `None` on one node.
    pub async fn join_cluster(&self, cfg: ClusterConfig) -> Result<Option<Cluster>, CoordError> {
        let coord = self.inner.coord.clone();
        if !coord.is_shared() {
            return Ok(None);
        }
        let cluster = Cluster {
            inner: Arc::new(Shared {
                coord,
                cfg,
                live: Mutex::default(),
                master: AtomicBool::new(false),
                http: reqwest::Client::builder()
                    .connect_timeout(Duration::from_millis(500))
                    .timeout(Duration::from_millis(500))
                    .build()
                    .map_err(|e| CoordError::Config(format!("HTTP client for votes: {e}")))?,
                registered: Mutex::default(),
                pinned: Mutex::default(),
                reconcile_now: Notify::new(),
                stop: CancellationToken::new(),
            }),
        };
        nodes::heartbeat(&cluster.inner).await?;
        if self.inner.cluster.set(cluster.clone()).is_err() {
            return Err(CoordError::Config(
                "this daemon joined the cluster twice".into(),
            ));
        }
        tasks::fail_orphaned(self, &cluster, tasks::STARTUP_TAKEOVER_MESSAGE).await;
        nodes::spawn_loops(self, &cluster).await?;
        registry::spawn_loop(self, &cluster);
        reconcile::spawn_loops(self, &cluster).await?;
        tracing::info!(
            node_id = cluster.node_id(),
            ips = ?cluster.inner.cfg.ips,
            port = cluster.inner.cfg.port,
            nodes = cluster.live_nodes().len(),
            "joined the cluster"
        );
        Ok(Some(cluster))
    }

    /// Another node (or this one) changed the tenant's installation of `plugin_id`: drop
    /// this node's cached installation → uid before reconciling.
    pub(crate) fn installation_invalidated(&self, tenant_id: &str, plugin_id: &str) {
        tracing::debug!(tenant = %tenant_id, plugin_id, "installation changed on some node");
        self.invalidate_installation(tenant_id, plugin_id);
    }

    /// The cluster this node belongs to, if any.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.cluster.get()
    }
}
