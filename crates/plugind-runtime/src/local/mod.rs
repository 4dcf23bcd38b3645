//! The local runtime: plugins run as child processes of the daemon, talking JSON lines over
//! stdin/stdout.
//!
//! * [`env`] builds the Python environment (uv, interpreter choice, venv, dependencies).
//! * [`launch`] is the launch pipeline: extract → interpreter → venv → dependencies → process.
//! * [`process`] spawns children with an allow-listed environment and kills process groups.
//! * [`instance`] is one running process: its connection, readers, and the owner that kills it.
//! * [`replicas`] is a plugin's replica set and the picker that spreads sessions over it.
//! * [`scaling`] decides when a plugin gets another instance, loses one, or scales to zero.
//! * [`supervisor`] keeps each replica alive (restart with back-off) and runs the scaling loop.
//! * [`sandbox`] runs plugin processes under their own uid when the daemon is root.

pub(crate) mod env;
pub(crate) mod instance;
pub(crate) mod launch;
pub(crate) mod process;
pub(crate) mod replicas;
pub(crate) mod sandbox;
pub(crate) mod scaling;
pub(crate) mod supervisor;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use plugind_entities::PluginUniqueIdentifier;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ReplicaBounds, RuntimeConfig, RuntimeTuning};
use crate::connection::Connection;
use crate::error::InvokeError;
use crate::lifecycle::{InstanceStatus, Lifecycle, LifecycleKind, RuntimeKind};
use crate::runtime::PluginRuntime;
use instance::{Instance, InstanceOptions, InstanceOwner};
use replicas::Replicas;

/// One launched local plugin: where it lives, how to start it, and its instances.
pub(crate) struct LocalRuntime {
    pub uid: PluginUniqueIdentifier,
    pub wd: PathBuf,
    pub entrypoint: String,
    pub cfg: Arc<RuntimeConfig>,
    pub tuning: Arc<RuntimeTuning>,
    pub lifecycle: Lifecycle,
    /// How many instances may run (`PLUGIN_REPLICAS`, or this plugin's override).
    pub bounds: ReplicaBounds,
    /// The instances, and the picker that spreads sessions over them.
    pub replicas: Replicas,
    /// Cancelled by a stop: ends supervision and kills the instances.
    pub cancel: CancellationToken,
    /// Why the last instance ended, for logs and errors during a restart gap.
    pub last_exit: Mutex<Option<String>>,
}

impl LocalRuntime {
    fn emit(&self, kind: LifecycleKind) {
        self.lifecycle.emit(&self.uid, RuntimeKind::Local, kind);
    }

    /// Spawns a process and waits for its first heartbeat (or its death, or the timeout, or a
    /// stop); on failure the process is killed and the message says why, with its stderr tail.
    pub(crate) async fn start_instance(&self) -> Result<InstanceOwner, String> {
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
                )
                .inspect_err(|reason| {
                    self.emit(LifecycleKind::InstanceLaunchFailed {
                        pid: 0,
                        reason: reason.clone(),
                    })
                })?;
                sandbox::private_env(&mut env, &prepared);
                Some(prepared.user)
            }
            None => None,
        };
        let args = [std::ffi::OsStr::new("-m"), self.entrypoint.as_ref()];
        let spawned =
            process::spawn_in_group_as(&python, &args, &self.wd, &env, sandbox).map_err(|e| {
                let user = sandbox.map_or(String::new(), |u| sandbox::spawn_failure(u, &e));
                let message = format!(
                    "failed to start `{} -m {}`{user}: {e}",
                    python.display(),
                    self.entrypoint
                );
                self.emit(LifecycleKind::InstanceLaunchFailed {
                    pid: 0,
                    reason: message.clone(),
                });
                message
            })?;
        if let Some(user) = sandbox {
            tracing::debug!(plugin = %self.uid, pid = spawned.pid, uid = user.uid, "plugin process runs under its own uid");
        }
        let instance = Instance::start(
            spawned,
            InstanceOptions {
                uid: self.uid.clone(),
                lifecycle: self.lifecycle.clone(),
                max_line_bytes: self.cfg.max_line_bytes,
                liveness_timeout: self.tuning.liveness_timeout,
                sessions: self.cfg.sessions,
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
                self.emit(LifecycleKind::InstanceLaunchFailed {
                    pid: instance.pid(),
                    reason: message.clone(),
                });
                Err(message)
            }
        }
    }

    /// The ready instance with the fewest sessions. With none, waits until `deadline` for one
    /// (a restart, a scale-up); a plugin scaled to zero is asked to start one.
    async fn ready_connection(&self, deadline: Instant) -> Result<Connection, InvokeError> {
        let mut members = self.replicas.subscribe();
        loop {
            members.borrow_and_update();
            if let Some(instance) = self.replicas.pick() {
                self.replicas.touch();
                return Ok(instance.connection().clone());
            }
            if self.cancel.is_cancelled() {
                break;
            }
            if self.replicas.is_empty() {
                self.replicas.wake();
            }
            // Members change when an instance becomes ready, exits, or a slot comes or goes.
            let changed = tokio::time::timeout_at(deadline, async {
                tokio::select! {
                    changed = members.changed() => changed.is_ok(),
                    () = self.cancel.cancelled() => false,
                }
            })
            .await;
            if !matches!(changed, Ok(true)) {
                break;
            }
        }
        let last_exit = self
            .last_exit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        tracing::warn!(plugin = %self.uid, last_exit = %last_exit, "no instance to serve the session");
        Err(InvokeError::NotFound)
    }

    /// Scaled to zero (or on its way there): a request starts an instance.
    fn is_idle(&self) -> bool {
        self.bounds.min == 0 && !self.replicas.has_ready()
    }
}

impl PluginRuntime for LocalRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Local
    }

    fn connection(&self, deadline: Instant) -> BoxFuture<'_, Result<Connection, InvokeError>> {
        Box::pin(self.ready_connection(deadline))
    }

    fn connection_wait(&self) -> Duration {
        if self.is_idle() {
            // A cold start: the new instance may take until its first heartbeat.
            self.cfg.first_heartbeat_timeout + self.tuning.session_wait
        } else {
            self.tuning.session_wait
        }
    }

    fn is_ready(&self) -> bool {
        !self.cancel.is_cancelled() && (self.replicas.has_ready() || self.is_idle())
    }

    fn pid(&self) -> Option<u32> {
        self.replicas.first_pid()
    }

    fn sessions(&self) -> usize {
        self.replicas.sessions()
    }

    fn instances(&self) -> Vec<InstanceStatus> {
        self.replicas.statuses()
    }

    fn request_stop(&self) {
        self.cancel.cancel();
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
