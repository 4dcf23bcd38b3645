//! The registry of running plugins (uid → plugin) and the launch pipeline that fills it:
//! extract → interpreter → venv → dependencies → launch, each step timed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use plugind_io::InStreamEvent;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{RuntimeConfig, RuntimeTuning};
use crate::error::{InvokeError, LaunchError, Step};
use crate::local::env::{self, PythonChoice};
use crate::local::instance::RegisterError;
use crate::local::{extract_if_needed, supervisor, LocalPlugin};
use crate::session::{Session, SessionRequest};

/// What a successful launch did and how long each step took.
#[derive(Clone, Debug)]
pub struct LaunchReport {
    /// Steps actually run; an already running plugin reports none, a reused venv has no
    /// interpreter/venv/dependencies entries.
    pub steps: Vec<(Step, Duration)>,
    /// Which Python runs the plugin and how it was chosen.
    pub interpreter: String,
}

struct Entry {
    plugin: Arc<LocalPlugin>,
    supervisor: JoinHandle<()>,
}

struct Inner {
    cfg: Arc<RuntimeConfig>,
    tuning: Arc<RuntimeTuning>,
    plugins: Mutex<HashMap<PluginUniqueIdentifier, Entry>>,
    /// Serialises launches and stops of one uid.
    uid_locks: Mutex<HashMap<PluginUniqueIdentifier, Arc<tokio::sync::Mutex<()>>>>,
    /// `PLUGIN_LOCAL_LAUNCHING_CONCURRENT`.
    launch_slots: Semaphore,
}

/// All local plugins of this daemon. Cheap to clone.
#[derive(Clone)]
pub struct Runtimes {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Times steps and turns a failing one into a [`LaunchError`].
#[derive(Default)]
struct StepTimer {
    done: Vec<(Step, Duration)>,
}

impl StepTimer {
    async fn run<T>(
        &mut self,
        step: Step,
        fut: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, LaunchError> {
        let started = Instant::now();
        let result = fut.await;
        self.done.push((step, started.elapsed()));
        result.map_err(|message| LaunchError {
            step,
            message,
            steps: self.done.clone(),
        })
    }

    /// A step that fails before doing anything.
    fn fail(&mut self, step: Step, message: String) -> LaunchError {
        self.done.push((step, Duration::ZERO));
        LaunchError {
            step,
            message,
            steps: self.done.clone(),
        }
    }
}

impl Runtimes {
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self::with_tuning(cfg, RuntimeTuning::default())
    }

    pub fn with_tuning(cfg: RuntimeConfig, tuning: RuntimeTuning) -> Self {
        if std::process::id() == 1 {
            tracing::warn!("plugind runs as PID 1: the Python SDK exits when its parent is PID 1; run under an init such as tini");
        }
        let slots = cfg.launch_concurrency.max(1);
        Runtimes {
            inner: Arc::new(Inner {
                cfg: Arc::new(cfg),
                tuning: Arc::new(tuning),
                plugins: Mutex::new(HashMap::new()),
                uid_locks: Mutex::new(HashMap::new()),
                launch_slots: Semaphore::new(slots),
            }),
        }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.cfg
    }

    /// `<working_path>/<uid.working_dir_name()>`.
    pub fn working_dir(&self, uid: &PluginUniqueIdentifier) -> PathBuf {
        self.inner.cfg.working_path.join(uid.working_dir_name())
    }

    fn uid_lock(&self, uid: &PluginUniqueIdentifier) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.uid_locks)
            .entry(uid.clone())
            .or_default()
            .clone()
    }

    fn running_plugin(&self, uid: &PluginUniqueIdentifier) -> Option<Arc<LocalPlugin>> {
        lock(&self.inner.plugins).get(uid).map(|e| e.plugin.clone())
    }

    /// Extracts the package into the working dir if absent, builds the venv if not valid, starts
    /// `python -m <entrypoint>` and resolves at its first heartbeat. Idempotent (already running
    /// → `Ok` at once, with no steps); concurrent launches of one uid are serialised.
    pub async fn launch(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<LaunchReport, LaunchError> {
        if let Some(plugin) = self.running_plugin(uid) {
            return Ok(LaunchReport {
                steps: Vec::new(),
                interpreter: plugin.interpreter.clone(),
            });
        }
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        if let Some(plugin) = self.running_plugin(uid) {
            return Ok(LaunchReport {
                steps: Vec::new(),
                interpreter: plugin.interpreter.clone(),
            });
        }
        let mut timer = StepTimer::default();
        let _slot = self
            .inner
            .launch_slots
            .acquire()
            .await
            .map_err(|e| LaunchError {
                step: Step::Extract,
                message: format!("launch slots closed: {e}"),
                steps: Vec::new(),
            })?;
        let wd = self.working_dir(uid);

        progress(format!("preparing {}", wd.display()));
        let extracted = timer
            .run(Step::Extract, extract_if_needed(package, &wd))
            .await?;
        if extracted {
            progress("package extracted".into());
        }
        let language = decl.meta.runner.language.trim();
        if !language.is_empty() && !language.eq_ignore_ascii_case("python") {
            return Err(timer.fail(
                Step::Interpreter,
                format!("unsupported language: {language}"),
            ));
        }

        let interpreter = if env::venv_is_valid(&wd) {
            let venv = wd.join(env::VENV_DIR);
            let version = env::venv_version(&venv).unwrap_or_else(|| "?".into());
            let described = format!("Python {version} from the existing venv {}", venv.display());
            tracing::info!(plugin = %uid, "reusing {described}");
            progress(format!("reusing {described}"));
            described
        } else {
            self.build_environment(uid, &wd, decl, &mut timer, progress)
                .await?
        };

        progress("starting the plugin process".into());
        let plugin = Arc::new(LocalPlugin {
            uid: uid.clone(),
            wd: wd.clone(),
            entrypoint: entrypoint(decl),
            cfg: self.inner.cfg.clone(),
            tuning: self.inner.tuning.clone(),
            current: watch::channel(None).0,
            cancel: CancellationToken::new(),
            interpreter: interpreter.clone(),
            last_exit: Mutex::new(None),
        });
        let instance = timer.run(Step::Launch, plugin.start_instance()).await?;
        tracing::info!(plugin = %uid, pid = instance.pid(), steps = %crate::error::format_steps(&timer.done), "plugin launched");
        progress(format!("plugin ready (pid {})", instance.pid()));
        plugin.current.send_replace(Some(instance.clone()));
        let supervisor = tokio::spawn(supervisor::supervise(plugin.clone(), instance));
        lock(&self.inner.plugins).insert(uid.clone(), Entry { plugin, supervisor });
        Ok(LaunchReport {
            steps: timer.done,
            interpreter,
        })
    }

    /// Interpreter → venv → dependencies, publishing `.venv` only on success.
    async fn build_environment(
        &self,
        uid: &PluginUniqueIdentifier,
        wd: &Path,
        decl: &PluginDeclaration,
        timer: &mut StepTimer,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<String, LaunchError> {
        let cfg = &self.inner.cfg;
        let want = match decl.meta.runner.version.trim() {
            "" => env::DEFAULT_PYTHON_VERSION.to_owned(),
            v => v.to_owned(),
        };
        let (uv, python): (PathBuf, PythonChoice) = timer
            .run(Step::Interpreter, async {
                let uv = env::find_uv(cfg).await?;
                let python = env::find_python(cfg, &uv, &want).await?;
                Ok((uv, python))
            })
            .await?;
        let described = python.describe();
        tracing::info!(plugin = %uid, uv = %uv.display(), "building the venv with {described}");
        progress(format!("using {described}"));
        let building = timer
            .run(Step::Venv, env::create_venv(cfg, &uv, wd, &python.path))
            .await?;
        let installed = timer
            .run(Step::Dependencies, async {
                env::install_dependencies(cfg, &uv, wd, &building, progress).await?;
                env::publish_venv(wd, &building).await
            })
            .await;
        if installed.is_err() {
            env::discard(&building);
        }
        installed?;
        Ok(described)
    }

    /// Builds a fresh venv for a stopped plugin next to the current one and swaps it in only if
    /// the build succeeds (an operator's "reinstall dependencies"). Fails if the plugin runs.
    pub async fn rebuild_environment(
        &self,
        uid: &PluginUniqueIdentifier,
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<LaunchReport, LaunchError> {
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        let mut timer = StepTimer::default();
        if self.running_plugin(uid).is_some() {
            return Err(LaunchError {
                step: Step::Venv,
                message: "plugin is running; stop it first".into(),
                steps: Vec::new(),
            });
        }
        let wd = self.working_dir(uid);
        if !wd.is_dir() {
            return Err(LaunchError {
                step: Step::Extract,
                message: format!("{} does not exist", wd.display()),
                steps: Vec::new(),
            });
        }
        let interpreter = self
            .build_environment(uid, &wd, decl, &mut timer, progress)
            .await?;
        Ok(LaunchReport {
            steps: timer.done,
            interpreter,
        })
    }

    pub fn get(&self, uid: &PluginUniqueIdentifier) -> Option<PluginHandle> {
        self.running_plugin(uid)
            .map(|plugin| PluginHandle { plugin })
    }

    /// Stops supervision, kills the process group and waits for the exit; sessions in flight
    /// receive `Closed`.
    pub async fn stop(&self, uid: &PluginUniqueIdentifier) {
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        let entry = lock(&self.inner.plugins).remove(uid);
        if let Some(entry) = entry {
            entry.plugin.cancel.cancel();
            if let Err(e) = entry.supervisor.await {
                tracing::warn!(plugin = %uid, error = %e, "plugin supervisor ended abnormally");
            }
            // A restart may have been mid-spawn: make sure nothing is left serving.
            if let Some(instance) = entry.plugin.current.send_replace(None) {
                instance.kill_and_wait("plugin stopped").await;
            }
            tracing::info!(plugin = %uid, "plugin stopped");
        }
    }

    /// Stops every plugin.
    pub async fn shutdown(&self) {
        let uids = self.running();
        futures::future::join_all(uids.iter().map(|uid| self.stop(uid))).await;
    }

    pub fn running(&self) -> Vec<PluginUniqueIdentifier> {
        let mut uids: Vec<_> = lock(&self.inner.plugins).keys().cloned().collect();
        uids.sort();
        uids
    }
}

fn entrypoint(decl: &PluginDeclaration) -> String {
    match decl.meta.runner.entrypoint.trim() {
        "" => "main".to_owned(),
        e => e.to_owned(),
    }
}

/// A running plugin as seen by callers. Cheap to clone; stays usable across restarts.
#[derive(Clone)]
pub struct PluginHandle {
    plugin: Arc<LocalPlugin>,
}

impl PluginHandle {
    pub fn uid(&self) -> &PluginUniqueIdentifier {
        &self.plugin.uid
    }

    /// Pid of the current instance; `None` while restarting or after a stop.
    pub fn pid(&self) -> Option<u32> {
        self.plugin.current.borrow().as_ref().map(|i| i.pid())
    }

    /// True when an instance is serving requests.
    pub fn is_ready(&self) -> bool {
        !self.plugin.cancel.is_cancelled()
            && self
                .plugin
                .current
                .borrow()
                .as_ref()
                .is_some_and(|i| i.is_ready())
    }

    /// Sessions registered on the current instance.
    pub fn session_count(&self) -> usize {
        self.plugin
            .current
            .borrow()
            .as_ref()
            .map_or(0, |i| i.session_count())
    }

    /// The stderr tail of the current instance.
    pub fn stderr_tail(&self) -> String {
        self.plugin
            .current
            .borrow()
            .as_ref()
            .map(|i| i.stderr_tail())
            .unwrap_or_default()
    }

    /// Registers the listener, then writes the request line. While the plugin restarts this
    /// waits (up to ~6 s) for the new instance, then fails with `plugin runtime not found`.
    pub async fn open_session(&self, req: SessionRequest) -> Result<Session, InvokeError> {
        let line = req
            .message(InStreamEvent::Request, req.data.clone())
            .to_line()
            .map_err(|e| InvokeError::Encode(e.to_string()))?;
        let deadline = tokio::time::Instant::now() + self.plugin.tuning.session_wait;
        let mut current = self.plugin.current.subscribe();
        loop {
            if self.plugin.cancel.is_cancelled() {
                return Err(InvokeError::NotFound);
            }
            // The watch guard must not live across an await (it is not Send): clone out of it.
            let waited = tokio::time::timeout_at(
                deadline,
                current.wait_for(|i| i.as_ref().is_some_and(|i| i.is_ready())),
            )
            .await
            .map(|r| r.map(|guard| guard.as_ref().cloned()));
            let instance = match waited {
                Ok(Ok(instance)) => match instance {
                    Some(instance) => instance,
                    None => continue,
                },
                Ok(Err(_)) | Err(_) => {
                    let last_exit = lock(&self.plugin.last_exit).clone().unwrap_or_default();
                    tracing::warn!(plugin = %self.plugin.uid, last_exit = %last_exit, "no instance to serve the session");
                    return Err(InvokeError::NotFound);
                }
            };
            let rx = match instance.register(&req.session_id) {
                Ok(rx) => rx,
                Err(RegisterError::Duplicate) => {
                    return Err(InvokeError::DuplicateSession(req.session_id.clone()))
                }
                Err(RegisterError::Closed) => {
                    // The instance is dying; the supervisor will clear `current` in a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let session = Session::new(req.clone(), rx, instance.clone());
            match instance.write_line(&line).await {
                Ok(()) => return Ok(session),
                Err(e) => {
                    drop(session);
                    let dead_pipe =
                        matches!(e.kind(), std::io::ErrorKind::BrokenPipe) || !instance.is_ready();
                    if dead_pipe
                        && tokio::time::Instant::now() + Duration::from_millis(300) < deadline
                    {
                        tracing::warn!(plugin = %self.plugin.uid, error = %e, "write to a dying instance failed; retrying");
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                    return Err(InvokeError::Write(e.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Callers run these futures inside spawned tasks: they must stay `Send`.
    #[allow(dead_code)]
    fn futures_are_send(
        runtimes: Runtimes,
        handle: PluginHandle,
        session: &mut Session,
        uid: PluginUniqueIdentifier,
    ) {
        let decl = PluginDeclaration::default();
        let progress = |_: String| {};
        assert_send(&runtimes.launch(&uid, &[], &decl, &progress));
        assert_send(&runtimes.stop(&uid));
        assert_send(&runtimes.shutdown());
        assert_send(&handle.open_session(SessionRequest::default()));
        assert_send(&session.send_backwards_response(serde_json::Value::Null));
        assert_send(&session.next());
    }

    #[test]
    fn runtimes_and_handles_are_shareable() {
        fn assert_sync<T: Send + Sync + Clone>() {}
        assert_sync::<Runtimes>();
        assert_sync::<PluginHandle>();
    }
}
