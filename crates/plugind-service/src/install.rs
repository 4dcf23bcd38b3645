//! Install tasks and the install job (PSC §4.3, §4.4; the job also launches the new version of
//! an upgrade, see [`crate::upgrade`]), uninstall (§4.8: the last reference retires the
//! version), and bringing every installed plugin back at start-up.
//!
//! **Invariant:** a task row is never left `pending`/`running` by a daemon that is gone: start-up
//! fails whatever a previous process left unfinished, with a reason, and the install can simply
//! be retried (no `plugins` row was written for it).

use std::time::Instant;

use chrono::Utc;
use plugind_entities::management::InstallResponse;
use plugind_entities::{
    DaemonError, InstallTask, InstallTaskEntry, InstallTaskStatus, PluginDeclaration,
    PluginUniqueIdentifier, RuntimeType,
};
use serde_json::Value;

use crate::binding::{required_error, str_field};
use crate::state::internal;
use crate::state::SHUTDOWN_TASK_MESSAGE;
use crate::Services;

/// Reason recorded on tasks a previous daemon process left unfinished.
pub const INTERRUPTED_TASK_MESSAGE: &str =
    "failed: the daemon stopped while this install was running (restarted or killed); retry the install";

impl Services {
    /// `POST …/install/identifiers`.
    pub async fn install_from_identifiers(
        &self,
        tenant_id: &str,
        body: &Value,
    ) -> Result<InstallResponse, DaemonError> {
        let raw_uids: Vec<&str> = body
            .get("plugin_unique_identifiers")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        let source = str_field(body, "source");
        if raw_uids.is_empty() || raw_uids.len() > 64 {
            return Err(DaemonError::bad_request(required_error(
                "InstallPluginFromIdentifiersRequest.PluginUniqueIdentifiers",
            )));
        }
        if source.is_empty() {
            return Err(DaemonError::bad_request(required_error(
                "InstallPluginFromIdentifiersRequest.Source",
            )));
        }
        let metas: Vec<Value> = body
            .get("metas")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if metas.len() != raw_uids.len() {
            return Err(DaemonError::bad_request(
                "the number of metas must be equal to the number of plugin unique identifiers",
            ));
        }
        let uids = raw_uids
            .iter()
            .map(|s| {
                PluginUniqueIdentifier::parse(s)
                    .map_err(|e| DaemonError::bad_request(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let db = &self.inner.db;
        let mut all_installed = true;
        for uid in &uids {
            if db
                .get_installation(tenant_id, uid.plugin_id())
                .await
                .map_err(internal)?
                .is_none()
            {
                all_installed = false;
            }
        }
        if all_installed {
            return Ok(InstallResponse {
                all_installed: true,
                task_id: String::new(),
            });
        }

        let mut jobs = Vec::new();
        let mut entries = Vec::new();
        for (uid, meta) in uids.into_iter().zip(metas) {
            let declaration = db
                .get_declaration(uid.as_str())
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    DaemonError::internal(format!(
                        "plugin {uid} has not been uploaded\nfailed to get plugin declaration"
                    ))
                })?;
            entries.push(InstallTaskEntry {
                plugin_unique_identifier: uid.to_string(),
                labels: declaration.label.clone(),
                icon: declaration.icon.clone(),
                icon_dark: declaration.icon_dark.clone(),
                plugin_id: uid.plugin_id().to_owned(),
                status: InstallTaskStatus::Pending,
                message: String::new(),
                source: source.to_owned(),
            });
            let meta = if meta.is_null() {
                Value::Object(Default::default())
            } else {
                meta
            };
            jobs.push((uid, declaration, meta));
        }
        let now = Utc::now();
        let task = InstallTask {
            id: uuid::Uuid::now_v7().to_string(),
            created_at: now,
            updated_at: now,
            status: InstallTaskStatus::Running,
            tenant_id: tenant_id.to_owned(),
            total_plugins: entries.len() as i64,
            completed_plugins: 0,
            plugins: entries,
        };
        self.claim_task(&task.id).await?;
        db.create_task(&task).await.map_err(internal)?;

        for (uid, declaration, meta) in jobs {
            let job = InstallJob {
                services: self.clone(),
                task_id: task.id.clone(),
                tenant_id: tenant_id.to_owned(),
                uid,
                declaration,
                source: source.to_owned(),
                meta,
                upgrade_from: None,
            };
            self.inner.jobs.spawn(job.run());
        }
        Ok(InstallResponse {
            all_installed: false,
            task_id: task.id,
        })
    }

    /// `POST …/uninstall`: idempotent; stops the runtime when the last tenant leaves.
    pub async fn uninstall(
        &self,
        tenant_id: &str,
        installation_id: &str,
    ) -> Result<bool, DaemonError> {
        if installation_id.is_empty() {
            return Err(DaemonError::bad_request(required_error(
                "UninstallPluginRequest.PluginInstallationID",
            )));
        }
        let outcome = self
            .inner
            .db
            .uninstall_plugin(tenant_id, installation_id)
            .await
            .map_err(internal)?;
        if let plugind_store::UninstallOutcome::Removed { plugin_id, .. } = &outcome {
            self.invalidate_installation(tenant_id, plugin_id);
        }
        if let plugind_store::UninstallOutcome::Removed {
            uid,
            plugin_id,
            plugin_deleted,
        } = outcome
        {
            self.installation_changed(tenant_id, &plugin_id).await;
            if plugin_deleted {
                if let Ok(uid) = PluginUniqueIdentifier::parse(&uid) {
                    // Upstream waits for the runtime to stop before answering; so does this.
                    self.retire(&uid).await;
                }
            }
        }
        Ok(true)
    }

    /// Start-up: fail tasks a previous process left unfinished, then launch every installed
    /// local plugin in the background. Returns how many launches were scheduled.
    pub async fn restore_installed(&self) -> Result<usize, DaemonError> {
        // In a cluster, joining failed the tasks of nodes that are gone; the others' run on.
        let failed = match self.cluster() {
            Some(_) => 0,
            None => self
                .inner
                .db
                .fail_unfinished_tasks(INTERRUPTED_TASK_MESSAGE)
                .await
                .map_err(internal)?,
        };
        if failed > 0 {
            tracing::warn!(
                tasks = failed,
                "marked install tasks left unfinished by a previous daemon as failed"
            );
        }
        let installed = self.inner.db.installed_plugins().await.map_err(internal)?;
        let mut scheduled = 0;
        for (uid, install_type) in installed {
            if install_type == "serverless" {
                let Ok(uid) = PluginUniqueIdentifier::parse(&uid) else {
                    continue;
                };
                match self.restore_serverless(&uid).await {
                    Ok(()) => scheduled += 1,
                    Err(err) => {
                        tracing::error!(%uid, error = %err, "serverless plugin could not be restored")
                    }
                }
                continue;
            }
            if install_type != RuntimeType::Local.as_str() {
                continue;
            }
            let Ok(uid) = PluginUniqueIdentifier::parse(&uid) else {
                tracing::warn!(%uid, "skipping an installed plugin with an invalid identifier");
                continue;
            };
            // Known to the registry before anything listens: requests for it wait, and
            // readiness counts it as starting until its launch settles.
            self.inner.runtimes.schedule(&uid);
            let services = self.clone();
            self.inner.jobs.spawn(async move {
                let started = Instant::now();
                let interrupted = services.inner.interrupted.clone();
                let launched = tokio::select! {
                    launched = services.launch_installed(&uid) => launched,
                    () = interrupted.cancelled() => Err("the daemon shut down first".to_owned()),
                };
                match launched {
                    Ok(()) => tracing::info!(%uid, elapsed = ?started.elapsed(), "installed plugin is running again"),
                    Err(err) => {
                        tracing::error!(%uid, error = %err, "installed plugin could not be started");
                        // A failure before the launch began (declaration, package) must settle
                        // the scheduled plugin too, or readiness and waiting callers never end.
                        services.inner.runtimes.fail_scheduled(&uid, &err);
                    }
                }
            });
            scheduled += 1;
        }
        Ok(scheduled)
    }

    /// Launches an installed uid from its stored package and declaration.
    pub(crate) async fn launch_installed(
        &self,
        uid: &PluginUniqueIdentifier,
    ) -> Result<(), String> {
        let declaration = self
            .inner
            .db
            .get_declaration(uid.as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "its declaration is missing from plugin_declarations".to_owned())?;
        let bytes = self.load_package(uid.as_str(), true).await?;
        self.inner
            .runtimes
            .restore(
                uid,
                &bytes,
                &declaration,
                &|msg| tracing::debug!(%uid, "{msg}"),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The package bytes: the installed copy first (when asked), then the uploaded one.
    pub(crate) async fn load_package(
        &self,
        uid: &str,
        installed_first: bool,
    ) -> Result<Vec<u8>, String> {
        let blobs = &self.inner.blobs;
        let mut keys = vec![self.package_key(uid)];
        if installed_first {
            keys.insert(0, self.installed_key(uid));
        }
        for key in keys {
            if let Some(bytes) = blobs.load(&key).await.map_err(|e| e.to_string())? {
                return Ok(bytes);
            }
        }
        Err(format!("package {uid} is not in storage (upload it first)"))
    }

    async fn set_entry(&self, task_id: &str, uid: &str, status: InstallTaskStatus, message: &str) {
        if let Err(err) = self
            .inner
            .db
            .update_task_entry(task_id, uid, status, message)
            .await
        {
            tracing::error!(task_id, uid, error = %err, "could not update install task");
        }
    }
}

/// One plugin of one install task (or the new version of an upgrade), run in the background.
pub(crate) struct InstallJob {
    pub(crate) services: Services,
    pub(crate) task_id: String,
    pub(crate) tenant_id: String,
    pub(crate) uid: PluginUniqueIdentifier,
    pub(crate) declaration: PluginDeclaration,
    pub(crate) source: String,
    pub(crate) meta: Value,
    /// Set for an upgrade: the version the tenant's installation moves away from once `uid`
    /// runs.
    pub(crate) upgrade_from: Option<PluginUniqueIdentifier>,
}

impl InstallJob {
    pub(crate) async fn run(self) {
        let uid = self.uid.to_string();
        let timeout = self.services.inner.cfg.install_timeout;
        let interrupted = self.services.inner.interrupted.clone();
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, self.install()) => match outcome {
                Ok(outcome) => outcome,
                Err(_) => Err(format!(
                    "install timed out after {}s (PLUGIN_INSTALL_TIMEOUT)",
                    timeout.as_secs()
                )),
            },
            () = interrupted.cancelled() => Err(SHUTDOWN_TASK_MESSAGE.to_owned()),
        };
        match outcome {
            Ok(message) => {
                self.services
                    .set_entry(&self.task_id, &uid, InstallTaskStatus::Success, &message)
                    .await;
                tracing::info!(%uid, tenant = %self.tenant_id, "{message}");
            }
            Err(message) => {
                self.services
                    .set_entry(&self.task_id, &uid, InstallTaskStatus::Failed, &message)
                    .await;
                tracing::error!(%uid, tenant = %self.tenant_id, "install failed: {message}");
            }
        }
    }

    async fn install(&self) -> Result<String, String> {
        let services = &self.services;
        let uid = self.uid.as_str();
        services
            .set_entry(&self.task_id, uid, InstallTaskStatus::Running, "starting")
            .await;
        let db = &services.inner.db;
        if self.upgrade_from.is_none()
            && db
                .get_installation(&self.tenant_id, self.uid.plugin_id())
                .await
                .map_err(|e| e.to_string())?
                .is_some()
        {
            return Ok("installed".into());
        }
        // Held until the installation is recorded, so a retirement of this uid waits for it.
        let _serial = services
            .lock_uid(uid)
            .await
            .map_err(|e| format!("could not lock {uid} for the install: {e}"))?;

        let started = Instant::now();
        let bytes = services
            .load_package(uid, false)
            .await
            .map_err(|e| format!("download failed: {e}"))?;
        let download = started.elapsed();
        services
            .inner
            .blobs
            .save(&services.installed_key(uid), bytes.clone())
            .await
            .map_err(|e| format!("download failed: could not store the installed package: {e}"))?;

        // Progress lines go to the task entry through a channel, so the runtime's callback stays
        // synchronous and cheap; the drain task ends before the final status is written.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let drain = {
            let services = services.clone();
            let task_id = self.task_id.clone();
            let uid = uid.to_owned();
            tokio::spawn(async move {
                while let Some(mut message) = rx.recv().await {
                    while let Ok(newer) = rx.try_recv() {
                        message = newer;
                    }
                    services
                        .set_entry(&task_id, &uid, InstallTaskStatus::Running, &message)
                        .await;
                }
            })
        };
        let progress = move |message: String| {
            let _ = tx.send(message);
        };
        let launched = services
            .inner
            .runtimes
            .launch(&self.uid, &bytes, &self.declaration, &progress)
            .await;
        drop(progress);
        let _ = drain.await;
        let report =
            launched.map_err(|e| format!("{e} (download {:.2}s)", download.as_secs_f64()))?;

        if let Some(original) = &self.upgrade_from {
            return services.record_upgrade(self, original).await;
        }
        let install_type = services.record_placement(&self.uid).await?;
        db.install_plugin(
            &self.tenant_id,
            &self.uid,
            install_type,
            &self.source,
            &self.meta,
            &self.declaration,
        )
        .await
        .map_err(|e| format!("the plugin started but recording the installation failed: {e}"))?;
        services.invalidate_installation(&self.tenant_id, self.uid.plugin_id());
        services
            .installation_changed(&self.tenant_id, self.uid.plugin_id())
            .await;
        let steps: Vec<String> = report
            .steps
            .iter()
            .map(|(step, d)| format!("{step} {:.2}s", d.as_secs_f64()))
            .collect();
        Ok(format!(
            "installed ({}; python {})",
            steps.join(", "),
            report.interpreter
        ))
    }
}
