//! The registry of plugins of any runtime kind (uid → slot), the launch entry points that fill
//! it, readiness, and [`PluginHandle`], the one handle callers use.
//!
//! A plugin gets a slot as soon as it is scheduled or starts launching, so a request for a plugin
//! that is still starting waits for it (bounded by the caller's deadline) instead of failing with
//! "plugin runtime not found". The slot ends `Running`, `Failed` (with the reason) or `Gone`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::config::{RuntimeConfig, RuntimeTuning};
use crate::connection::OpenError;
use crate::error::InvokeError;
use crate::lifecycle::{self, Lifecycle, LifecycleKind, PluginStatus, RuntimeKind};
use crate::local::launch::{self, Interpreters, LaunchContext, Launched};
use crate::local::supervisor;
use crate::message::SessionRequest;
use crate::runtime::PluginRuntime;
use crate::serverless::{self, ConnectorError, ServerlessConfig, ServerlessFunction};
use crate::session::Session;
use crate::steps::{LaunchError, LaunchReport, Step, StepTimer};

#[derive(Clone)]
enum SlotState {
    /// Scheduled or launching.
    Starting,
    Running(Arc<dyn PluginRuntime>),
    /// The launch failed; holds why.
    Failed(String),
    /// Stopped and removed from the registry.
    Gone,
}

struct Slot {
    state: watch::Sender<SlotState>,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            state: watch::channel(SlotState::Starting).0,
        })
    }

    fn get(&self) -> SlotState {
        self.state.borrow().clone()
    }
}

struct Entry {
    slot: Arc<Slot>,
    kind: RuntimeKind,
    /// The runtime's background task (a local plugin's supervisor); dropping the entry aborts it,
    /// which kills whatever it owns.
    task: Option<AbortOnDropHandle<()>>,
    interpreter: String,
}

struct Inner {
    cfg: Arc<RuntimeConfig>,
    tuning: Arc<RuntimeTuning>,
    lifecycle: Lifecycle,
    plugins: Mutex<HashMap<PluginUniqueIdentifier, Entry>>,
    /// Serialises launches and stops of one uid.
    uid_locks: Mutex<HashMap<PluginUniqueIdentifier, Arc<tokio::sync::Mutex<()>>>>,
    /// `PLUGIN_LOCAL_LAUNCHING_CONCURRENT`.
    launch_slots: Semaphore,
    interpreters: Interpreters,
    /// Set on the serverless platform: launches go through the connector.
    serverless: std::sync::OnceLock<Arc<serverless::Shared>>,
}

/// All plugins of this daemon. Cheap to clone.
#[derive(Clone)]
pub struct Runtimes {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether every known plugin has settled: running, or failed for a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    /// Plugins still scheduled or launching.
    pub starting: Vec<PluginUniqueIdentifier>,
    /// Plugins whose launch failed, with the reason.
    pub failed: Vec<(PluginUniqueIdentifier, String)>,
    pub running: usize,
}

/// Marks the slot failed if a launch is dropped before it finished (an install deadline, a
/// cancelled request): a slot never stays `Starting` with nobody launching it.
struct StartGuard<'a> {
    runtimes: &'a Runtimes,
    uid: &'a PluginUniqueIdentifier,
    armed: bool,
}

impl StartGuard<'_> {
    fn fail(mut self, reason: String) {
        self.armed = false;
        self.runtimes.mark_failed(self.uid, reason);
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StartGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.runtimes.mark_failed(
                self.uid,
                "the launch was abandoned before it finished".into(),
            );
        }
    }
}

impl Runtimes {
    pub fn new(cfg: RuntimeConfig) -> Self {
        Self::with_tuning(cfg, RuntimeTuning::default())
    }

    /// Builds the registry; inside a Tokio runtime it also starts the lifecycle logger and the
    /// metrics recorder as subscribers.
    pub fn with_tuning(cfg: RuntimeConfig, tuning: RuntimeTuning) -> Self {
        if std::process::id() == 1 {
            tracing::warn!("plugind runs as PID 1: the Python SDK exits when its parent is PID 1; run under an init such as tini");
        }
        let slots = cfg.launch_concurrency.max(1);
        let lifecycle = Lifecycle::default();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(lifecycle::log_events(lifecycle.subscribe()));
            handle.spawn(lifecycle::record_metrics(lifecycle.subscribe()));
        }
        Runtimes {
            inner: Arc::new(Inner {
                cfg: Arc::new(cfg),
                tuning: Arc::new(tuning),
                lifecycle,
                plugins: Mutex::new(HashMap::new()),
                uid_locks: Mutex::new(HashMap::new()),
                launch_slots: Semaphore::new(slots),
                interpreters: Interpreters::default(),
                serverless: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.cfg
    }

    /// The lifecycle hub: subscribe to events, read statuses.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
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

    fn emit(&self, uid: &PluginUniqueIdentifier, kind: RuntimeKind, event: LifecycleKind) {
        self.inner.lifecycle.emit(uid, kind, event);
    }

    fn slot_state(&self, uid: &PluginUniqueIdentifier) -> Option<SlotState> {
        lock(&self.inner.plugins).get(uid).map(|e| e.slot.get())
    }

    fn running_report(&self, uid: &PluginUniqueIdentifier) -> Option<LaunchReport> {
        let plugins = lock(&self.inner.plugins);
        let entry = plugins.get(uid)?;
        matches!(entry.slot.get(), SlotState::Running(_)).then(|| LaunchReport {
            steps: Vec::new(),
            interpreter: entry.interpreter.clone(),
        })
    }

    /// Announces that `uid` will be launched soon (start-up restore): requests for it wait
    /// instead of failing, and readiness counts it as starting. No-op if it is known already.
    pub fn schedule(&self, uid: &PluginUniqueIdentifier) {
        let inserted = {
            let mut plugins = lock(&self.inner.plugins);
            match plugins.get(uid).map(|e| e.slot.get()) {
                Some(SlotState::Starting | SlotState::Running(_)) => false,
                Some(SlotState::Failed(_) | SlotState::Gone) | None => {
                    plugins.insert(uid.clone(), Self::starting_entry(RuntimeKind::Local));
                    true
                }
            }
        };
        if inserted {
            self.emit(uid, RuntimeKind::Local, LifecycleKind::PluginPending);
        }
    }

    /// Settles a plugin that was scheduled but whose launch never began (its package or
    /// declaration could not be loaded): it becomes failed with `reason`. No-op otherwise.
    pub fn fail_scheduled(&self, uid: &PluginUniqueIdentifier, reason: &str) {
        if matches!(self.slot_state(uid), Some(SlotState::Starting)) {
            self.mark_failed(uid, reason.to_owned());
        }
    }

    fn starting_entry(kind: RuntimeKind) -> Entry {
        Entry {
            slot: Slot::new(),
            kind,
            task: None,
            interpreter: String::new(),
        }
    }

    /// Puts `uid` in the `Starting` state (keeping the slot that waiters already hold).
    fn mark_starting(&self, uid: &PluginUniqueIdentifier) {
        {
            let mut plugins = lock(&self.inner.plugins);
            let entry = plugins
                .entry(uid.clone())
                .or_insert_with(|| Self::starting_entry(RuntimeKind::Local));
            if !matches!(entry.slot.get(), SlotState::Starting) {
                *entry = Self::starting_entry(RuntimeKind::Local);
            }
        }
        self.emit(uid, RuntimeKind::Local, LifecycleKind::PluginStarting);
    }

    fn mark_failed(&self, uid: &PluginUniqueIdentifier, reason: String) {
        if let Some(entry) = lock(&self.inner.plugins).get(uid) {
            entry
                .slot
                .state
                .send_replace(SlotState::Failed(reason.clone()));
        }
        self.emit(
            uid,
            RuntimeKind::Local,
            LifecycleKind::PluginStartFailed { reason },
        );
    }

    /// Extracts the package into the working dir if absent, builds the venv if not valid, starts
    /// `python -m <entrypoint>` and resolves at its first heartbeat. Idempotent (already running
    /// → `Ok` at once, with no steps); concurrent launches of one uid are serialised. Dropping
    /// the future mid-way kills whatever it started and marks the plugin failed.
    pub async fn launch(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<LaunchReport, LaunchError> {
        self.launch_with(uid, package, decl, progress, false).await
    }

    /// [`Runtimes::launch`] for start-up restore: a plugin that may scale to zero and has a
    /// working venv starts idle (no process until its first request).
    pub async fn restore(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<LaunchReport, LaunchError> {
        self.launch_with(uid, package, decl, progress, true).await
    }

    async fn launch_with(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
        restoring: bool,
    ) -> Result<LaunchReport, LaunchError> {
        if let Some(report) = self.running_report(uid) {
            return Ok(report);
        }
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        if let Some(report) = self.running_report(uid) {
            return Ok(report);
        }
        self.mark_starting(uid);
        let guard = StartGuard {
            runtimes: self,
            uid,
            armed: true,
        };
        if let Some(shared) = self.inner.serverless.get() {
            return match shared.launch(uid, package, decl, false, progress).await {
                Ok((function, report)) => {
                    guard.disarm();
                    self.attach_serverless(uid, function);
                    Ok(report)
                }
                Err(err) => {
                    guard.fail(err.to_string());
                    Err(err)
                }
            };
        }
        let _slot = match self.inner.launch_slots.acquire().await {
            Ok(permit) => permit,
            Err(e) => {
                let err =
                    StepTimer::default().fail(Step::Extract, format!("launch slots closed: {e}"));
                guard.fail(err.to_string());
                return Err(err);
            }
        };
        let ctx = LaunchContext {
            cfg: &self.inner.cfg,
            interpreters: &self.inner.interpreters,
            tuning: &self.inner.tuning,
            lifecycle: &self.inner.lifecycle,
            progress,
        };
        match launch::launch(&ctx, uid, self.working_dir(uid), package, decl, restoring).await {
            Ok(Launched {
                runtime,
                first,
                report,
            }) => {
                let task = tokio::spawn(supervisor::supervise(runtime.clone(), first));
                let runtime: Arc<dyn PluginRuntime> = runtime;
                {
                    let mut plugins = lock(&self.inner.plugins);
                    let entry = plugins
                        .entry(uid.clone())
                        .or_insert_with(|| Self::starting_entry(RuntimeKind::Local));
                    entry.task = Some(AbortOnDropHandle::new(task));
                    entry.interpreter = report.interpreter.clone();
                    entry.slot.state.send_replace(SlotState::Running(runtime));
                }
                guard.disarm();
                self.emit(uid, RuntimeKind::Local, LifecycleKind::PluginReady);
                Ok(report)
            }
            Err(err) => {
                guard.fail(err.to_string());
                Err(err)
            }
        }
    }

    /// Switches this registry to the serverless platform (plugin-protocol §6): the connector is
    /// pinged now (an error says why it cannot be used), and from then on every launch looks up
    /// or launches a function through it instead of starting a process.
    pub async fn enable_serverless(&self, cfg: ServerlessConfig) -> Result<(), ConnectorError> {
        let shared = serverless::Shared::new(cfg, self.inner.cfg.sessions)?;
        shared.ping().await?;
        self.inner
            .serverless
            .set(Arc::new(shared))
            .map_err(|_| ConnectorError::Failed("the serverless platform is already set up".into()))
    }

    /// True on the serverless platform.
    pub fn is_serverless(&self) -> bool {
        self.inner.serverless.get().is_some()
    }

    /// The function serving `uid`, on the serverless platform.
    pub fn serverless_function(&self, uid: &PluginUniqueIdentifier) -> Option<ServerlessFunction> {
        self.inner.serverless.get()?.function(uid)
    }

    /// Serves `uid` from `function` (start-up restore from its stored row, an admin endpoint
    /// switch): sessions already open finish where they are, new ones go to `function`. False
    /// when this is not the serverless platform.
    pub fn attach_serverless(
        &self,
        uid: &PluginUniqueIdentifier,
        function: ServerlessFunction,
    ) -> bool {
        let Some(shared) = self.inner.serverless.get() else {
            return false;
        };
        let runtime: Arc<dyn PluginRuntime> = shared.runtime(uid, function);
        {
            let mut plugins = lock(&self.inner.plugins);
            let entry = plugins
                .entry(uid.clone())
                .or_insert_with(|| Self::starting_entry(RuntimeKind::Serverless));
            entry.kind = RuntimeKind::Serverless;
            entry.slot.state.send_replace(SlotState::Running(runtime));
        }
        self.emit(uid, RuntimeKind::Serverless, LifecycleKind::PluginReady);
        true
    }

    /// Launches `uid` through the connector again even if its function exists (the admin
    /// reinstall) and serves it from the new function.
    pub async fn relaunch_serverless(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<ServerlessFunction, LaunchError> {
        let Some(shared) = self.inner.serverless.get() else {
            return Err(StepTimer::default().fail(
                Step::Launch,
                "reinstall is not supported on local platform".into(),
            ));
        };
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        let (function, _) = shared.launch(uid, package, decl, true, progress).await?;
        self.attach_serverless(uid, function.clone());
        Ok(function)
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
        if matches!(self.slot_state(uid), Some(SlotState::Running(_))) {
            return Err(timer.fail(Step::Venv, "plugin is running; stop it first".into()));
        }
        let wd = self.working_dir(uid);
        if !wd.is_dir() {
            return Err(timer.fail(Step::Extract, format!("{} does not exist", wd.display())));
        }
        let interpreter = launch::build_environment(
            &self.inner.cfg,
            &self.inner.interpreters,
            uid,
            &wd,
            decl,
            &mut timer,
            progress,
        )
        .await?;
        Ok(LaunchReport {
            steps: timer.done,
            interpreter,
        })
    }

    /// A handle on a plugin that runs or is starting; `None` if it is unknown, stopped or failed.
    pub fn get(&self, uid: &PluginUniqueIdentifier) -> Option<PluginHandle> {
        let plugins = lock(&self.inner.plugins);
        let entry = plugins.get(uid)?;
        match entry.slot.get() {
            SlotState::Starting | SlotState::Running(_) => Some(PluginHandle {
                uid: uid.clone(),
                slot: entry.slot.clone(),
            }),
            SlotState::Failed(_) | SlotState::Gone => None,
        }
    }

    /// Why the plugin's launch failed, if it did.
    pub fn failure(&self, uid: &PluginUniqueIdentifier) -> Option<String> {
        match self.slot_state(uid)? {
            SlotState::Failed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Stops the runtime (its instances are killed, sessions in flight receive `Closed`) and
    /// waits until everything it ran is gone; the plugin leaves the registry.
    pub async fn stop(&self, uid: &PluginUniqueIdentifier) {
        let uid_lock = self.uid_lock(uid);
        let _serial = uid_lock.lock().await;
        let Some(entry) = lock(&self.inner.plugins).remove(uid) else {
            return;
        };
        let kind = entry.kind;
        if let Some(shared) = self.inner.serverless.get() {
            shared.forget(uid);
        }
        self.emit(uid, kind, LifecycleKind::PluginStopping);
        if let SlotState::Running(runtime) = entry.slot.get() {
            runtime.request_stop();
        }
        if let Some(task) = entry.task {
            if let Err(e) = task.await {
                tracing::warn!(plugin = %uid, error = %e, "plugin runtime task ended abnormally");
            }
            self.emit(uid, kind, LifecycleKind::StopSchedule);
        }
        entry.slot.state.send_replace(SlotState::Gone);
        self.emit(uid, kind, LifecycleKind::Close);
        self.emit(uid, kind, LifecycleKind::PluginStopped);
    }

    /// Puts a runtime that came up by itself (a remote-debugging connection) in the registry as
    /// running under `uid`, replacing whatever served that uid before; the replaced runtime is
    /// asked to stop.
    pub(crate) fn attach(&self, uid: &PluginUniqueIdentifier, runtime: Arc<dyn PluginRuntime>) {
        let kind = runtime.kind();
        let previous = {
            let mut plugins = lock(&self.inner.plugins);
            let entry = plugins
                .entry(uid.clone())
                .or_insert_with(|| Self::starting_entry(kind));
            entry.kind = kind;
            entry.task = None;
            entry.slot.state.send_replace(SlotState::Running(runtime))
        };
        if let SlotState::Running(previous) = previous {
            previous.request_stop();
        }
    }

    /// Removes `uid` from the registry if `runtime` still serves it (a newer connection may have
    /// replaced it); callers waiting on it see it gone. Returns whether it was removed.
    pub(crate) fn detach(
        &self,
        uid: &PluginUniqueIdentifier,
        runtime: &Arc<dyn PluginRuntime>,
    ) -> bool {
        let mut plugins = lock(&self.inner.plugins);
        let ours = plugins.get(uid).is_some_and(|entry| {
            matches!(entry.slot.get(), SlotState::Running(current) if std::ptr::addr_eq(Arc::as_ptr(&current), Arc::as_ptr(runtime)))
        });
        if ours {
            if let Some(entry) = plugins.remove(uid) {
                entry.slot.state.send_replace(SlotState::Gone);
            }
        }
        ours
    }

    /// Stops every plugin.
    pub async fn shutdown(&self) {
        let uids: Vec<_> = lock(&self.inner.plugins).keys().cloned().collect();
        futures::future::join_all(uids.iter().map(|uid| self.stop(uid))).await;
    }

    /// Plugins serving requests.
    pub fn running(&self) -> Vec<PluginUniqueIdentifier> {
        let mut uids: Vec<_> = lock(&self.inner.plugins)
            .iter()
            .filter(|(_, e)| matches!(e.slot.get(), SlotState::Running(_)))
            .map(|(uid, _)| uid.clone())
            .collect();
        uids.sort();
        uids
    }

    /// Ready when no plugin is still scheduled or launching.
    pub fn readiness(&self) -> Readiness {
        let mut starting = Vec::new();
        let mut failed = Vec::new();
        let mut running = 0;
        for (uid, entry) in lock(&self.inner.plugins).iter() {
            match entry.slot.get() {
                SlotState::Starting => starting.push(uid.clone()),
                SlotState::Running(_) => running += 1,
                SlotState::Failed(reason) => failed.push((uid.clone(), reason)),
                SlotState::Gone => {}
            }
        }
        starting.sort();
        failed.sort();
        Readiness {
            ready: starting.is_empty(),
            starting,
            failed,
            running,
        }
    }

    /// The status of one plugin, with its instances and sessions in flight.
    pub fn status(&self, uid: &PluginUniqueIdentifier) -> Option<PluginStatus> {
        let mut status = self.inner.lifecycle.status(uid)?;
        self.fill_live(&mut status);
        Some(status)
    }

    /// Every plugin's status, sorted by identifier.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let mut all = self.inner.lifecycle.statuses();
        for status in &mut all {
            self.fill_live(status);
        }
        all
    }

    fn fill_live(&self, status: &mut PluginStatus) {
        let runtime = self
            .get(&status.plugin_unique_identifier)
            .and_then(|h| h.runtime());
        status.sessions = runtime.as_ref().map_or(0, |r| r.sessions());
        status.instances = runtime.map(|r| r.instances()).unwrap_or_default();
    }
}

/// A plugin as callers see it, whatever runs it. Cheap to clone; stays usable across restarts.
#[derive(Clone)]
pub struct PluginHandle {
    uid: PluginUniqueIdentifier,
    slot: Arc<Slot>,
}

impl PluginHandle {
    pub fn uid(&self) -> &PluginUniqueIdentifier {
        &self.uid
    }

    fn runtime(&self) -> Option<Arc<dyn PluginRuntime>> {
        match self.slot.get() {
            SlotState::Running(runtime) => Some(runtime),
            _ => None,
        }
    }

    /// Which kind of runtime serves the plugin; `None` while starting or after a stop.
    pub fn kind(&self) -> Option<RuntimeKind> {
        self.runtime().map(|r| r.kind())
    }

    /// Pid of the current instance; `None` while starting, restarting, or after a stop.
    pub fn pid(&self) -> Option<u32> {
        self.runtime().and_then(|r| r.pid())
    }

    /// True when an instance is serving requests.
    pub fn is_ready(&self) -> bool {
        self.runtime().is_some_and(|r| r.is_ready())
    }

    /// Sessions in flight.
    pub fn session_count(&self) -> usize {
        self.runtime().map_or(0, |r| r.sessions())
    }

    /// Waits while the plugin is starting (the caller bounds this wait), then returns its runtime.
    async fn wait_running(&self) -> Result<Arc<dyn PluginRuntime>, InvokeError> {
        let mut rx = self.slot.state.subscribe();
        let state = match rx.wait_for(|s| !matches!(s, SlotState::Starting)).await {
            Ok(state) => state.clone(),
            Err(_) => SlotState::Gone,
        };
        match state {
            SlotState::Running(runtime) => Ok(runtime),
            SlotState::Failed(reason) => Err(InvokeError::NotRunning(reason)),
            SlotState::Starting | SlotState::Gone => Err(InvokeError::NotFound),
        }
    }

    /// Registers the listener, then writes the request line. While the plugin is starting this
    /// waits for it; while it restarts, up to the runtime's wait (~6 s) for the new instance.
    pub async fn open_session(&self, req: SessionRequest) -> Result<Session, InvokeError> {
        let runtime = self.wait_running().await?;
        let line = req.request_line()?;
        let request = Arc::new(req);
        let deadline = Instant::now() + runtime.connection_wait();
        loop {
            let conn = runtime.connection(deadline).await?;
            match conn.open(request.clone(), &line).await {
                Ok(session) => return Ok(session),
                Err(OpenError::Busy { in_flight, queued }) => {
                    return Err(InvokeError::Busy { in_flight, queued })
                }
                Err(OpenError::Duplicate) => {
                    return Err(InvokeError::DuplicateSession(request.session_id.clone()))
                }
                Err(OpenError::Closed) => {
                    // The connection is dying; the runtime replaces it in a moment.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(OpenError::Write(e)) => {
                    let dead_pipe =
                        matches!(e.kind(), std::io::ErrorKind::BrokenPipe) || !runtime.is_ready();
                    if dead_pipe && Instant::now() + Duration::from_millis(300) < deadline {
                        tracing::warn!(plugin = %self.uid, error = %e, "write to a dying instance failed; retrying");
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
        assert_send(&session.responder().send(serde_json::Value::Null));
        assert_send(&session.next());
    }

    #[test]
    fn runtimes_and_handles_are_shareable() {
        fn assert_sync<T: Send + Sync + Clone>() {}
        assert_sync::<Runtimes>();
        assert_sync::<PluginHandle>();
        assert_sync::<crate::Responder>();
    }

    fn uid() -> PluginUniqueIdentifier {
        PluginUniqueIdentifier::parse(
            "acme/echo:0.0.1@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .expect("uid")
    }

    #[tokio::test]
    async fn a_scheduled_plugin_makes_callers_wait_and_a_failure_releases_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtimes = Runtimes::new(RuntimeConfig::new(dir.path()));
        let uid = uid();
        runtimes.schedule(&uid);
        assert!(!runtimes.readiness().ready);
        let handle = runtimes.get(&uid).expect("a starting plugin has a handle");
        let waiting =
            tokio::spawn(async move { handle.open_session(SessionRequest::default()).await.err() });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the caller waits while the plugin starts"
        );
        // An empty package in an empty working dir fails at once, at the extract step.
        let err = runtimes
            .launch(&uid, &[], &PluginDeclaration::default(), &|_| {})
            .await
            .expect_err("nothing to extract");
        assert_eq!(err.step, Step::Extract);
        match waiting.await.expect("join") {
            Some(InvokeError::NotRunning(reason)) => {
                assert!(reason.contains("extract"), "{reason}")
            }
            other => panic!("expected NotRunning, got {other:?}"),
        }
        let readiness = runtimes.readiness();
        assert!(readiness.ready, "a failed plugin is settled");
        assert_eq!(readiness.failed.len(), 1);
        assert!(runtimes.get(&uid).is_none());
        let status = runtimes.status(&uid).expect("status");
        assert_eq!(status.status, crate::RuntimeState::Stopped);
        assert!(status.last_error.is_some());
    }

    /// A runtime that only records whether it was asked to stop.
    #[derive(Default)]
    struct Attached(std::sync::atomic::AtomicBool);

    impl PluginRuntime for Attached {
        fn kind(&self) -> RuntimeKind {
            RuntimeKind::Remote
        }
        fn connection(
            &self,
            _deadline: Instant,
        ) -> futures::future::BoxFuture<'_, Result<crate::connection::Connection, InvokeError>>
        {
            Box::pin(async { Err(InvokeError::NotFound) })
        }
        fn connection_wait(&self) -> Duration {
            Duration::ZERO
        }
        fn is_ready(&self) -> bool {
            !self.0.load(std::sync::atomic::Ordering::Relaxed)
        }
        fn pid(&self) -> Option<u32> {
            None
        }
        fn sessions(&self) -> usize {
            0
        }
        fn request_stop(&self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn an_attached_runtime_is_replaced_by_a_newer_one_and_detached_only_by_its_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtimes = Runtimes::new(RuntimeConfig::new(dir.path()));
        let uid = uid();
        let old = Arc::new(Attached::default());
        let old_dyn: Arc<dyn PluginRuntime> = old.clone();
        runtimes.attach(&uid, old_dyn.clone());
        let handle = runtimes.get(&uid).expect("attached");
        assert_eq!(handle.kind(), Some(RuntimeKind::Remote));
        assert!(handle.is_ready());

        let new = Arc::new(Attached::default());
        let new_dyn: Arc<dyn PluginRuntime> = new.clone();
        runtimes.attach(&uid, new_dyn.clone());
        assert!(!old.is_ready(), "the replaced runtime was asked to stop");
        assert!(new.is_ready());
        assert!(
            !runtimes.detach(&uid, &old_dyn),
            "the old one no longer owns the uid"
        );
        assert!(runtimes.get(&uid).is_some());
        assert!(runtimes.detach(&uid, &new_dyn));
        assert!(runtimes.get(&uid).is_none());
        assert!(!handle.is_ready(), "handles see the plugin gone");
    }

    #[tokio::test]
    async fn a_scheduled_plugin_whose_launch_never_began_can_be_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtimes = Runtimes::new(RuntimeConfig::new(dir.path()));
        let uid = uid();
        runtimes.schedule(&uid);
        assert!(!runtimes.readiness().ready);
        runtimes.fail_scheduled(&uid, "its package is missing");
        assert!(runtimes.readiness().ready);
        assert_eq!(
            runtimes.failure(&uid).as_deref(),
            Some("its package is missing")
        );
    }

    #[tokio::test]
    async fn an_abandoned_launch_marks_the_plugin_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtimes = Runtimes::new(RuntimeConfig {
            launch_concurrency: 1,
            ..RuntimeConfig::new(dir.path())
        });
        let uid = uid();
        // Hold the only launch slot so the launch below blocks, then drop it.
        let permit = runtimes.inner.launch_slots.acquire().await.expect("permit");
        let decl = PluginDeclaration::default();
        let launch = runtimes.launch(&uid, &[], &decl, &|_| {});
        assert!(tokio::time::timeout(Duration::from_millis(50), launch)
            .await
            .is_err());
        drop(permit);
        assert!(runtimes.readiness().ready);
        assert!(runtimes
            .failure(&uid)
            .is_some_and(|r| r.contains("abandoned")));
    }
}
