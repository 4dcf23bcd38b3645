//! [`Services`]: the shared handle behind every request.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use plugind_runtime::Runtimes;
use plugind_store::{Blobs, Db};
use tokio_util::task::TaskTracker;

use plugind_entities::DaemonError;

use crate::ServiceConfig;

/// Any lower-layer failure as `PluginDaemonInternalServerError` with its text.
pub(crate) fn internal(err: impl std::fmt::Display) -> DaemonError {
    DaemonError::internal(err.to_string())
}

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
    pub(crate) active_dispatch: AtomicI64,
}

impl Services {
    pub fn new(cfg: ServiceConfig, db: Db, blobs: Blobs, runtimes: Runtimes) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                db,
                blobs,
                runtimes,
                jobs: TaskTracker::new(),
                active_dispatch: AtomicI64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.cfg
    }

    pub fn runtimes(&self) -> &Runtimes {
        &self.inner.runtimes
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

    /// Stops every plugin and waits for background jobs, after failing unfinished tasks.
    pub async fn shutdown(&self) {
        self.inner.jobs.close();
        if let Err(err) = self
            .inner
            .db
            .fail_unfinished_tasks("An unexpected daemon shutdown occurred")
            .await
        {
            tracing::warn!(error = %err, "could not mark unfinished install tasks failed");
        }
        self.inner.runtimes.shutdown().await;
    }
}
