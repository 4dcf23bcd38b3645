//! The local runtime: plugins run as child processes of the daemon, talking JSON lines over
//! stdin/stdout.
//!
//! * [`env`] builds the Python environment (uv, interpreter choice, venv, dependencies).
//! * [`process`] spawns children with an allow-listed environment and kills process groups.
//! * [`instance`] is one running process: readers, session routing, the stdin writer.
//! * [`supervisor`] keeps one instance alive per plugin, restarting with back-off.
//! * [`sandbox`] runs plugin processes under their own uid when the daemon is root.

pub(crate) mod env;
pub(crate) mod instance;
pub(crate) mod process;
pub(crate) mod sandbox;
pub(crate) mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plugind_entities::PluginUniqueIdentifier;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{RuntimeConfig, RuntimeTuning};
use instance::{Instance, InstanceOptions};

/// One launched plugin: where it lives, how to start it, and its current instance.
pub(crate) struct LocalPlugin {
    pub uid: PluginUniqueIdentifier,
    pub wd: PathBuf,
    pub entrypoint: String,
    pub cfg: Arc<RuntimeConfig>,
    pub tuning: Arc<RuntimeTuning>,
    /// The ready instance serving requests; `None` while (re)starting.
    pub current: watch::Sender<Option<Arc<Instance>>>,
    /// Cancelled by `stop`: ends supervision and kills the instance.
    pub cancel: CancellationToken,
    /// How the interpreter was chosen, for reports.
    pub interpreter: String,
    /// Why the last instance ended, for logs and errors during a restart gap.
    pub last_exit: Mutex<Option<String>>,
}

impl LocalPlugin {
    /// Spawns a process and waits for its first heartbeat (or its death, or the timeout, or a
    /// stop); on failure the process is killed and the message says why, with its stderr tail.
    pub(crate) async fn start_instance(&self) -> Result<Arc<Instance>, String> {
        let python = env::venv_python(&self.wd.join(env::VENV_DIR));
        let mut env = process::plugin_env(std::env::vars_os(), &self.tuning.plugin_env_passthrough);
        let sandbox = match &self.tuning.plugin_users {
            Some(users) => {
                let prepared = sandbox::prepare(
                    users,
                    self.uid.plugin_id(),
                    &self.cfg.working_path,
                    &self.wd,
                    &python,
                )?;
                sandbox::private_env(&mut env, &prepared);
                Some(prepared.user)
            }
            None => None,
        };
        let args = [std::ffi::OsStr::new("-m"), self.entrypoint.as_ref()];
        let spawned =
            process::spawn_in_group_as(&python, &args, &self.wd, &env, sandbox).map_err(|e| {
                let user = sandbox.map_or(String::new(), |u| sandbox::spawn_failure(u, &e));
                format!(
                    "failed to start `{} -m {}`{user}: {e}",
                    python.display(),
                    self.entrypoint
                )
            })?;
        tracing::info!(plugin = %self.uid, pid = spawned.pid, uid = sandbox.map(|u| u.uid), "plugin process started");
        let instance = Instance::start(
            spawned,
            InstanceOptions {
                plugin: self.uid.to_string(),
                max_line_bytes: self.cfg.max_line_bytes,
                liveness_timeout: self.tuning.liveness_timeout,
            },
        );
        let ready = tokio::select! {
            ready = instance.wait_ready(self.cfg.first_heartbeat_timeout) => ready,
            _ = self.cancel.cancelled() => Err("plugin stopped while starting".into()),
        };
        match ready {
            Ok(()) => Ok(instance),
            Err(message) => {
                instance.kill_and_wait("start failed").await;
                Err(message)
            }
        }
    }
}

/// Extracts `package` into `wd` unless `wd` already has content (it is then reused as is).
pub(crate) async fn extract_if_needed(package: &[u8], wd: &Path) -> Result<bool, String> {
    let has_content = std::fs::read_dir(wd)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if has_content {
        return Ok(false);
    }
    if package.is_empty() {
        return Err(format!(
            "{} is missing and the package is empty",
            wd.display()
        ));
    }
    let bytes = package.to_vec();
    let dst = wd.to_path_buf();
    tokio::task::spawn_blocking(move || plugind_package::extract_to(&bytes, &dst))
        .await
        .map_err(|e| format!("extraction task failed: {e}"))?
        .map_err(|e| format!("failed to extract the package: {e}"))?;
    Ok(true)
}
