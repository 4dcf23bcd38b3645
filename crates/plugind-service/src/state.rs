//! [`Services`]: the shared handle behind every request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use plugind_coord::{Coord, LockGuard, LockOptions};
use plugind_runtime::Runtimes;
use plugind_store::{Blobs, Db};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use plugind_entities::DaemonError;

use crate::ServiceConfig;

/// Any lower-layer failure as `PluginDaemonInternalServerError` with its text.
pub(crate) fn internal(err: impl std::fmt::Display) -> DaemonError {
    DaemonError::internal(err.to_string())
}

/// Reason recorded on install tasks that were still running when the daemon shut down.
pub const SHUTDOWN_TASK_MESSAGE: &str =
    "failed: the daemon shut down while this install was running; retry the install";

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct Services {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: ServiceConfig,
    pub(crate) db: Db,
    pub(crate) blobs: Blobs,
    pub(crate) runtimes: Runtimes,
    /// Background jobs (installs, start-up launches); awaited on shutdown.
    pub(crate) jobs: TaskTracker,
    /// Cancelled when the daemon stops waiting for work in progress: dispatch streams end with
    /// an error event, install jobs fail their task entry (see [`Services::interrupt`]).
    pub(crate) interrupted: CancellationToken,
    pub(crate) active_dispatch: AtomicI64,
    /// Cache, locks and publish/subscribe: in-process, or Redis when configured (shared by
    /// every daemon on that Redis). Locks: `env_init_lock:<uid>` serialises an install job's
    /// launch-and-record with a retirement of the same uid; `persistence:lock:<tenant>:<plugin>`
    /// serialises plugin storage writes so a quota check and its write see the same usage.
    pub(crate) coord: Coord,
    /// Open dispatch sessions, for the serverless transaction route.
    pub(crate) sessions: crate::serverless::SessionTable,
    /// Set when remote debugging is on (`PLUGIN_REMOTE_INSTALLING_ENABLED`).
    pub(crate) debugging_keys: std::sync::OnceLock<Arc<dyn crate::debugging::DebuggingKeys>>,
    /// (tenant, plugin id) → uid for dispatch, so invokes skip the database.
    pub(crate) installed: crate::installed::InstalledCache,
    /// Set once when the node joins a cluster (shared coordination backend).
    pub(crate) cluster: std::sync::OnceLock<crate::cluster::Cluster>,
}

/// Channel on which every change of a tenant's installation is announced (install, upgrade,
/// uninstall), as JSON `{"tenant_id","plugin_id"}`; caches of installation → runtime subscribe.
pub const INSTALLATION_CHANGED_CHANNEL: &str = "installation_changed";

/// A lock's expiry: its holder renews it every third of this, so only a holder that died lets
/// it expire, and then within this time.
const LOCK_EXPIRY: Duration = Duration::from_secs(60);

impl Services {
    pub fn new(cfg: ServiceConfig, db: Db, blobs: Blobs, runtimes: Runtimes, coord: Coord) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                db,
                blobs,
                runtimes,
                jobs: TaskTracker::new(),
                interrupted: CancellationToken::new(),
                active_dispatch: AtomicI64::new(0),
                coord,
                sessions: Default::default(),
                debugging_keys: Default::default(),
                installed: Default::default(),
                cluster: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Forgets what dispatch cached about the tenant's installation of `plugin_id`; called
    /// after every install, upgrade and uninstall commits (and the hook for invalidation that
    /// comes from other nodes).
    pub fn invalidate_installation(&self, tenant_id: &str, plugin_id: &str) {
        self.inner.installed.invalidate(tenant_id, plugin_id);
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.cfg
    }

    pub fn runtimes(&self) -> &Runtimes {
        &self.inner.runtimes
    }

    /// The coordination backend (in-process or Redis).
    pub fn coord(&self) -> &Coord {
        &self.inner.coord
    }

    /// Connections of the database pool, for `/metrics/`.
    pub fn db_pool_stats(&self) -> plugind_store::PoolStats {
        self.inner.db.pool_stats()
    }

    /// Takes `name` (waiting until it is free); the error is the backend's (Redis down).
    pub(crate) async fn lock(&self, name: &str) -> Result<LockGuard, plugind_coord::CoordError> {
        self.inner
            .coord
            .lock(name, LockOptions::waiting(LOCK_EXPIRY))
            .await
    }

    /// Serialises work on one uid (install job vs retirement) across every daemon sharing the
    /// coordination backend.
    pub(crate) async fn lock_uid(&self, uid: &str) -> Result<LockGuard, plugind_coord::CoordError> {
        self.lock(&format!("env_init_lock:{uid}")).await
    }

    /// Announces that the tenant's installation of `plugin_id` changed. Failing to announce is
    /// logged: the change itself is committed, and subscribers also expire what they cache.
    pub(crate) async fn installation_changed(&self, tenant_id: &str, plugin_id: &str) {
        self.invalidate_installation(tenant_id, plugin_id);
        let message = serde_json::json!({"tenant_id": tenant_id, "plugin_id": plugin_id});
        if let Err(err) = self
            .inner
            .coord
            .publish(INSTALLATION_CHANGED_CHANNEL, &message.to_string())
            .await
        {
            tracing::warn!(tenant = %tenant_id, plugin_id, error = %err, "could not announce an installation change");
        }
    }

    /// Follows the installation changes every daemon on the same coordination backend announces
    /// (Redis: other nodes too) and drops the cached installation → uid of each, so no node keeps
    /// dispatching to a version another node upgraded or uninstalled. Runs until shutdown.
    pub async fn follow_installation_changes(&self) -> Result<(), plugind_coord::CoordError> {
        let mut changes = self.inner.coord.subscribe(INSTALLATION_CHANGED_CHANNEL).await?;
        let services = self.clone();
        let interrupted = self.inner.interrupted.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    m = changes.next() => m,
                    () = interrupted.cancelled() => return,
                };
                let Some(message) = message else { return };
                let Ok(change) = serde_json::from_str::<serde_json::Value>(&message) else {
                    continue;
                };
                let field = |k: &str| change.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
                services.invalidate_installation(&field("tenant_id"), &field("plugin_id"));
            }
        });
        Ok(())
    }

    pub fn active_dispatch_requests(&self) -> i64 {
        self.inner.active_dispatch.load(Ordering::Relaxed)
    }

    /// Storage key of an uploaded package.
    pub(crate) fn package_key(&self, uid: &str) -> String {
        format!("{}/{}", self.inner.cfg.package_cache_path, uid)
    }

    /// Storage key of an installed package (its presence marks the uid installed).
    pub(crate) fn installed_key(&self, uid: &str) -> String {
        format!("{}/{}", self.inner.cfg.installed_path, uid)
    }

    /// Ends work in progress at once: every open dispatch stream sends one error event
    /// (`-500 PluginDaemonInternalServerError`) and ends, every install job fails its task entry
    /// and returns. Used when the shutdown drain deadline has passed.
    pub fn interrupt(&self) {
        self.inner.interrupted.cancel();
    }

    /// Stops the daemon's work: lets background jobs (install jobs, start-up launches) finish
    /// until `deadline`, then interrupts them and waits a little longer for them to record their
    /// failure; fails whatever task is still unfinished; stops every plugin.
    pub async fn shutdown(&self, deadline: Instant) {
        /// How long interrupted jobs get to write their task entry.
        const WRAP_UP: Duration = Duration::from_secs(3);
        let jobs = &self.inner.jobs;
        jobs.close();
        if tokio::time::timeout_at(deadline, jobs.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                jobs = jobs.len(),
                "shutdown deadline reached: interrupting background jobs"
            );
            self.interrupt();
            if tokio::time::timeout(WRAP_UP, jobs.wait()).await.is_err() {
                tracing::warn!(jobs = jobs.len(), "background jobs did not stop in time");
            }
        }
        self.interrupt();
        match self.cluster() {
            // In a cluster, only this node's tasks: the others' run on.
            Some(cluster) => {
                match cluster.own_tasks().await {
                    Ok(ids) => {
                        for id in ids {
                            if let Err(err) = self
                                .inner
                                .db
                                .fail_unfinished_task(&id, SHUTDOWN_TASK_MESSAGE)
                                .await
                            {
                                tracing::warn!(task_id = %id, error = %err, "could not mark an unfinished install task failed");
                            }
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not read this node's install tasks; the master fails them once this node is gone")
                    }
                }
                cluster.leave().await;
            }
            None => {
                if let Err(err) = self
                    .inner
                    .db
                    .fail_unfinished_tasks(SHUTDOWN_TASK_MESSAGE)
                    .await
                {
                    tracing::warn!(error = %err, "could not mark unfinished install tasks failed");
                }
            }
        }
        self.inner.runtimes.shutdown().await;
    }
}
