//! Upgrading a tenant's installation to another version (PSC §4.7, §4.11) and retiring a
//! version nothing references any more.
//!
//! **Invariant:** the new version runs before the installation row points at it, and the old
//! version stops only after the sessions it is serving have ended (or
//! `PLUGIN_MAX_EXECUTION_TIMEOUT` has passed). A retired version leaves nothing behind: no
//! process, no working directory (venv included), no installed or uploaded package object.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use plugind_entities::{
    DaemonError, InstallTask, InstallTaskEntry, InstallTaskStatus, PluginUniqueIdentifier,
};
use plugind_store::UpgradeOutcome;
use serde_json::Value;

use plugind_entities::management::InstallResponse;

use crate::install::InstallJob;
use crate::state::internal;
use crate::Services;

/// How often a retiring version is checked for sessions still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// `POST …/install/upgrade`, after the HTTP edge checked the required fields.
pub struct UpgradeRequest {
    pub original: PluginUniqueIdentifier,
    pub new: PluginUniqueIdentifier,
    pub source: String,
    pub meta: Value,
}

impl Services {
    /// Moves the tenant's installation from `original` to `new`. When `new` is installed
    /// somewhere already (so it runs), the switch happens now (`all_installed: true`); otherwise
    /// an install task launches it first and switches when it is ready.
    pub async fn upgrade(
        &self,
        tenant_id: &str,
        req: UpgradeRequest,
    ) -> Result<InstallResponse, DaemonError> {
        if req.original == req.new {
            return Err(DaemonError::bad_request(
                "original and new plugin unique identifier are the same",
            ));
        }
        if req.original.plugin_id() != req.new.plugin_id() {
            return Err(DaemonError::bad_request(
                "original and new plugin id are different",
            ));
        }
        let db = &self.inner.db;
        let installation = db
            .get_installation(tenant_id, req.original.plugin_id())
            .await
            .map_err(internal)?
            .filter(|i| {
                i.plugin_unique_identifier == req.original.as_str() && i.source == req.source
            })
            .ok_or_else(|| {
                DaemonError::not_found("plugin installation not found for this tenant")
            })?;
        let declaration = db
            .get_declaration(req.new.as_str())
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                DaemonError::internal(format!(
                    "plugin {} has not been uploaded\nfailed to get plugin declaration",
                    req.new
                ))
            })?;
        let meta = if req.meta.is_object() {
            req.meta
        } else {
            Value::Object(Default::default())
        };

        if db.plugin_exists(req.new.as_str()).await.map_err(internal)? {
            let outcome = db
                .upgrade_plugin(
                    tenant_id,
                    &req.original,
                    &req.new,
                    &installation.runtime_type,
                    &req.source,
                    &meta,
                    &declaration,
                )
                .await
                .map_err(internal)?;
            self.invalidate_installation(tenant_id, req.original.plugin_id());
            return match outcome {
                UpgradeOutcome::NotFound => Err(DaemonError::not_found(
                    "plugin installation not found for this tenant",
                )),
                UpgradeOutcome::Upgraded {
                    original_deleted, ..
                } => {
                    self.installation_changed(tenant_id, req.new.plugin_id())
                        .await;
                    if original_deleted {
                        self.retire_in_background(req.original);
                    }
                    Ok(InstallResponse {
                        all_installed: true,
                        task_id: String::new(),
                    })
                }
            };
        }

        let now = Utc::now();
        let task = InstallTask {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now,
            updated_at: now,
            status: InstallTaskStatus::Running,
            tenant_id: tenant_id.to_owned(),
            total_plugins: 1,
            completed_plugins: 0,
            plugins: vec![InstallTaskEntry {
                plugin_unique_identifier: req.new.to_string(),
                labels: Default::default(),
                icon: String::new(),
                icon_dark: String::new(),
                plugin_id: req.new.plugin_id().to_owned(),
                status: InstallTaskStatus::Pending,
                message: String::new(),
                source: req.source.clone(),
            }],
        };
        self.claim_task(&task.id).await?;
        db.create_task(&task).await.map_err(internal)?;
        let job = InstallJob {
            services: self.clone(),
            task_id: task.id.clone(),
            tenant_id: tenant_id.to_owned(),
            uid: req.new,
            declaration,
            source: req.source,
            meta,
            upgrade_from: Some(req.original),
        };
        self.inner.jobs.spawn(job.run());
        Ok(InstallResponse {
            all_installed: false,
            task_id: task.id,
        })
    }

    /// The upgrade step of an install job whose new version is running: switch the
    /// installation, then retire the original if that was its last reference.
    pub(crate) async fn record_upgrade(
        &self,
        job: &InstallJob,
        original: &PluginUniqueIdentifier,
    ) -> Result<String, String> {
        let install_type = self.record_placement(&job.uid).await?;
        let outcome = self
            .inner
            .db
            .upgrade_plugin(
                &job.tenant_id,
                original,
                &job.uid,
                install_type,
                &job.source,
                &job.meta,
                &job.declaration,
            )
            .await
            .map_err(|e| {
                format!("the new version started but recording the upgrade failed: {e}")
            })?;
        self.invalidate_installation(&job.tenant_id, original.plugin_id());
        match outcome {
            UpgradeOutcome::NotFound => Err(format!(
                "the tenant's installation of {original} changed while {} was starting; nothing was upgraded",
                job.uid
            )),
            UpgradeOutcome::Upgraded {
                original_deleted, ..
            } => {
                self.installation_changed(&job.tenant_id, job.uid.plugin_id())
                    .await;
                if original_deleted {
                    self.retire_in_background(original.clone());
                }
                Ok("upgraded".to_owned())
            }
        }
    }

    fn retire_in_background(&self, uid: PluginUniqueIdentifier) {
        let services = self.clone();
        self.inner
            .jobs
            .spawn(async move { services.retire(&uid).await });
    }

    /// Retires a version no installation references: waits for its sessions in flight, then
    /// (if still unreferenced) stops its runtime and removes its working directory, its
    /// installed package object and its uploaded package. Failures are logged; nothing else
    /// depends on them.
    pub(crate) async fn retire(&self, uid: &PluginUniqueIdentifier) {
        self.drain(uid).await;
        // The uid lock (`Services::lock_uid`): an install job holds it from loading the package
        // until the installation is recorded, a retirement from its "still unreferenced?" check
        // until the last file is gone, so neither sees the other half done.
        let _serial = match self.lock_uid(uid.as_str()).await {
            Ok(guard) => guard,
            Err(err) => {
                tracing::warn!(%uid, error = %err, "could not lock the version to retire it; keeping it");
                return;
            }
        };
        match self.inner.db.plugin_exists(uid.as_str()).await {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(%uid, "installed again before it was retired; keeping it");
                return;
            }
            Err(err) => {
                tracing::warn!(%uid, error = %err, "could not check whether the version is still installed; keeping it");
                return;
            }
        }
        self.inner.runtimes.stop(uid).await;
        for key in [
            self.installed_key(uid.as_str()),
            self.package_key(uid.as_str()),
        ] {
            if let Err(err) = self.inner.blobs.delete(&key).await {
                tracing::warn!(%uid, %key, error = %err, "could not delete a package object");
            }
        }
        remove_working_dir(self.inner.runtimes.working_dir(uid)).await;
        tracing::info!(%uid, "no installation references this version any more: stopped and removed");
    }

    /// Stops this node's runtime of a version no installation references any more (another
    /// node uninstalled or upgraded it and removed its objects): waits for its sessions, then,
    /// if still unreferenced, stops it and removes this node's working directory. Whether it
    /// stopped it.
    pub(crate) async fn retire_here(&self, uid: &PluginUniqueIdentifier) -> bool {
        self.drain(uid).await;
        let _serial = match self.lock_uid(uid.as_str()).await {
            Ok(guard) => guard,
            Err(err) => {
                tracing::warn!(%uid, error = %err, "could not lock the version to stop it; keeping it");
                return false;
            }
        };
        match self.inner.db.plugin_exists(uid.as_str()).await {
            Ok(false) => {}
            Ok(true) => return false,
            Err(err) => {
                tracing::warn!(%uid, error = %err, "could not check whether the version is still installed; keeping it");
                return false;
            }
        }
        self.inner.runtimes.stop(uid).await;
        remove_working_dir(self.inner.runtimes.working_dir(uid)).await;
        tracing::info!(%uid, "no installation references this version any more: stopped here");
        true
    }

    /// Waits until the runtime of `uid` serves no session, at most `PLUGIN_MAX_EXECUTION_TIMEOUT`
    /// (no session lives longer) or until the daemon is interrupted.
    async fn drain(&self, uid: &PluginUniqueIdentifier) {
        let Some(handle) = self.inner.runtimes.get(uid) else {
            return;
        };
        let deadline = tokio::time::Instant::now() + self.inner.cfg.max_execution_timeout;
        while handle.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(DRAIN_POLL) => {}
                () = self.inner.interrupted.cancelled() => return,
            }
        }
    }
}

/// Removes a working directory (thousands of files in its venv) on a blocking thread.
async fn remove_working_dir(dir: PathBuf) {
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "could not remove a working directory"),
        Err(err) => tracing::warn!(error = %err, "removing a working directory panicked"),
    }
}
