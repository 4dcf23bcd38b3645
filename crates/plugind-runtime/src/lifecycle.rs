//! The lifecycle of running plugins as one typed event stream, and the status board it keeps.
//!
//! Upstream wires notifier interfaces at three levels (instance, runtime, control panel:
//! plugin-protocol §7.2). Here every runtime kind emits [`LifecycleEvent`]s through one
//! [`Lifecycle`]: emitting updates the [`PluginStatus`] board synchronously (so statuses are
//! exact) and broadcasts the event. Subscribers (the logger, metrics, an operator's SSE stream)
//! read from a bounded broadcast channel: a slow subscriber lags and loses events, it never
//! blocks a plugin's I/O.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use plugind_entities::PluginUniqueIdentifier;
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for subscribers that fall behind; older ones are dropped for them.
const BROADCAST_CAPACITY: usize = 1024;
/// Recent log and stderr lines kept per plugin for the status route.
const RECENT_LINES: usize = 50;
/// A log or stderr line kept on the board is cut to this many bytes.
const RECENT_LINE_BYTES: usize = 1024;

/// Where a plugin runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    Local,
    Remote,
    Serverless,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Local => "local",
            RuntimeKind::Remote => "remote",
            RuntimeKind::Serverless => "serverless",
        }
    }
}

/// Upstream's runtime status values (plugin-protocol §7.1), here really set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeState {
    /// Known and scheduled to start (e.g. restored at start-up), not started yet.
    Pending,
    /// Building its environment or waiting for its first instance.
    Launching,
    /// At least one instance is serving.
    Active,
    /// Its instance ended; a replacement is being started.
    Restarting,
    /// Scaled to zero after its idle time: no process runs; the next request starts one.
    Idle,
    /// Not running: stopped, or its launch failed (see `last_error`).
    Stopped,
}

impl RuntimeState {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeState::Pending => "pending",
            RuntimeState::Launching => "launching",
            RuntimeState::Active => "active",
            RuntimeState::Restarting => "restarting",
            RuntimeState::Idle => "idle",
            RuntimeState::Stopped => "stopped",
        }
    }
}

/// What happened. Instance-level events carry the process id (0 where there is none).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LifecycleKind {
    // Plugin (control-panel) level.
    /// Scheduled to start (restore at start-up); nothing runs yet.
    PluginPending,
    /// Launch began (environment build, first instance).
    PluginStarting,
    /// The first instance is ready; the plugin serves requests.
    PluginReady,
    /// The launch failed; the plugin does not run.
    PluginStartFailed {
        reason: String,
    },
    /// A stop was requested (uninstall, upgrade, shutdown).
    PluginStopping,
    /// Every instance is gone; the plugin left the registry.
    PluginStopped,
    // Runtime level.
    /// The runtime now wants `replicas` instances.
    ScaleUp {
        replicas: usize,
    },
    ScaleDown {
        replicas: usize,
    },
    ScaleDownFailed {
        reason: String,
    },
    /// The runtime stopped scheduling instances.
    StopSchedule,
    /// The runtime is closed.
    Close,
    // Instance level.
    InstanceStarting {
        pid: u32,
    },
    /// First heartbeat.
    InstanceReady {
        pid: u32,
    },
    /// The instance never became ready.
    InstanceLaunchFailed {
        pid: u32,
        reason: String,
    },
    /// The runtime is stopping this instance on purpose (scale-down, scale to zero): it takes no
    /// new sessions and ends once its sessions have; its shutdown is not a crash.
    InstanceRetiring {
        pid: u32,
        reason: String,
    },
    /// The instance ended (exit, kill, crash); `reason` says how.
    InstanceShutdown {
        pid: u32,
        reason: String,
    },
    Heartbeat {
        pid: u32,
    },
    /// A `log` event of the plugin.
    Log {
        pid: u32,
        level: String,
        message: String,
    },
    /// A stderr line of the plugin (already capped).
    Stderr {
        pid: u32,
        line: String,
    },
    // Remote debugging.
    DebuggingConnected {
        tenant_id: String,
    },
    DebuggingDisconnected {
        tenant_id: String,
    },
}

/// One lifecycle event of one plugin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LifecycleEvent {
    pub plugin_unique_identifier: PluginUniqueIdentifier,
    pub runtime_type: RuntimeKind,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub kind: LifecycleKind,
}

/// A recent log or stderr line of a plugin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecentLine {
    pub at: DateTime<Utc>,
    /// `stderr`, or the log level.
    pub source: String,
    pub text: String,
}

/// One instance of a plugin, as the status route shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    pub pid: u32,
    /// Sessions in flight on this instance.
    pub sessions: usize,
    /// Retiring (scale-down): takes no new sessions.
    pub draining: bool,
}

/// What an operator sees of one plugin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginStatus {
    pub plugin_unique_identifier: PluginUniqueIdentifier,
    pub runtime_type: RuntimeKind,
    pub status: RuntimeState,
    /// Instances that ended unexpectedly and were replaced (or are being replaced).
    pub restarts: u32,
    pub last_error: Option<String>,
    pub pid: Option<u32>,
    pub scheduled_at: DateTime<Utc>,
    pub active_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// Sessions in flight; filled in by the registry when read.
    pub sessions: usize,
    /// Instances the runtime wants (its last scale event; 0 when scaled to zero).
    pub replicas: usize,
    /// The instances serving now; filled in by the registry when read.
    pub instances: Vec<InstanceStatus>,
    /// The last log and stderr lines, oldest first.
    pub logs: VecDeque<RecentLine>,
    /// Pids of ready instances, from the events.
    #[serde(skip)]
    live: BTreeSet<u32>,
    /// Pids being retired on purpose: their shutdown is no restart.
    #[serde(skip)]
    retiring: BTreeSet<u32>,
    /// Scaled to zero while launching (restored idle): ready means idle.
    #[serde(skip)]
    cold: bool,
}

impl PluginStatus {
    fn new(uid: PluginUniqueIdentifier, runtime_type: RuntimeKind, now: DateTime<Utc>) -> Self {
        PluginStatus {
            plugin_unique_identifier: uid,
            runtime_type,
            status: RuntimeState::Pending,
            restarts: 0,
            last_error: None,
            pid: None,
            scheduled_at: now,
            active_at: None,
            stopped_at: None,
            last_heartbeat_at: None,
            sessions: 0,
            replicas: 0,
            instances: Vec::new(),
            logs: VecDeque::new(),
            live: BTreeSet::new(),
            retiring: BTreeSet::new(),
            cold: false,
        }
    }

    /// True once the plugin serves or has failed for a reason: what readiness waits for.
    pub fn is_settled(&self) -> bool {
        !matches!(self.status, RuntimeState::Pending | RuntimeState::Launching)
    }

    fn push_line(&mut self, at: DateTime<Utc>, source: &str, text: &str) {
        if self.logs.len() == RECENT_LINES {
            self.logs.pop_front();
        }
        self.logs.push_back(RecentLine {
            at,
            source: source.to_owned(),
            text: cut(text, RECENT_LINE_BYTES),
        });
    }

    /// Applies one event; returns false when the plugin leaves the board.
    fn apply(&mut self, event: &LifecycleEvent) -> bool {
        let at = event.at;
        match &event.kind {
            LifecycleKind::PluginPending => {
                self.status = RuntimeState::Pending;
                self.scheduled_at = at;
            }
            LifecycleKind::PluginStarting => {
                self.status = RuntimeState::Launching;
                self.last_error = None;
                self.stopped_at = None;
            }
            LifecycleKind::PluginReady => {
                // Restored idle (scaled to zero before its first instance): nothing runs yet.
                self.status = if self.cold {
                    RuntimeState::Idle
                } else {
                    RuntimeState::Active
                };
                self.cold = false;
                self.active_at = Some(at);
            }
            LifecycleKind::PluginStartFailed { reason } => {
                self.status = RuntimeState::Stopped;
                self.last_error = Some(reason.clone());
                self.stopped_at = Some(at);
                self.pid = None;
            }
            LifecycleKind::PluginStopping | LifecycleKind::StopSchedule => {}
            LifecycleKind::PluginStopped => return false,
            LifecycleKind::Close => {
                self.status = RuntimeState::Stopped;
                self.stopped_at = Some(at);
                self.pid = None;
            }
            LifecycleKind::ScaleUp { replicas } => self.replicas = *replicas,
            LifecycleKind::ScaleDown { replicas } => {
                self.replicas = *replicas;
                self.cold = *replicas == 0
                    && matches!(self.status, RuntimeState::Pending | RuntimeState::Launching);
            }
            LifecycleKind::DebuggingDisconnected { .. } => {}
            LifecycleKind::ScaleDownFailed { reason } => self.last_error = Some(reason.clone()),
            LifecycleKind::DebuggingConnected { .. } => {
                self.status = RuntimeState::Active;
                self.active_at = Some(at);
            }
            LifecycleKind::InstanceStarting { pid } => self.pid = Some(*pid),
            LifecycleKind::InstanceReady { pid } => {
                self.pid = Some(*pid);
                self.live.insert(*pid);
                self.last_heartbeat_at = Some(at);
                if matches!(self.status, RuntimeState::Restarting | RuntimeState::Idle) {
                    self.status = RuntimeState::Active;
                    self.active_at = Some(at);
                }
            }
            LifecycleKind::InstanceLaunchFailed { reason, .. } => {
                self.last_error = Some(reason.clone());
                self.pid = None;
            }
            LifecycleKind::InstanceRetiring { pid, .. } => {
                self.retiring.insert(*pid);
            }
            LifecycleKind::InstanceShutdown { pid, reason } => {
                let was_live = self.live.remove(pid);
                self.pid = self.live.iter().next().copied();
                let planned = self.retiring.remove(pid);
                // An instance that never became ready (a failed scale-up) changes nothing here;
                // its launch failure was reported.
                if was_live && matches!(self.status, RuntimeState::Active) {
                    if !planned {
                        self.restarts += 1;
                        self.last_error = Some(reason.clone());
                    }
                    if self.live.is_empty() {
                        self.status = if planned && self.replicas == 0 {
                            RuntimeState::Idle
                        } else {
                            RuntimeState::Restarting
                        };
                    }
                }
            }
            LifecycleKind::Heartbeat { .. } => self.last_heartbeat_at = Some(at),
            LifecycleKind::Log { level, message, .. } => self.push_line(at, level, message),
            LifecycleKind::Stderr { line, .. } => self.push_line(at, "stderr", line),
        }
        true
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

struct Inner {
    tx: broadcast::Sender<Arc<LifecycleEvent>>,
    board: Mutex<HashMap<PluginUniqueIdentifier, PluginStatus>>,
}

/// The lifecycle hub: emit events, subscribe to them, read statuses. Cheap to clone.
#[derive(Clone)]
pub struct Lifecycle {
    inner: Arc<Inner>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            inner: Arc::new(Inner {
                tx: broadcast::channel(BROADCAST_CAPACITY).0,
                board: Mutex::new(HashMap::new()),
            }),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Lifecycle {
    /// Every event from now on. A receiver that falls more than the channel's capacity behind
    /// gets `RecvError::Lagged` and continues with newer events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LifecycleEvent>> {
        self.inner.tx.subscribe()
    }

    /// Records the event on the board, then broadcasts it. Never waits.
    pub fn emit(
        &self,
        uid: &PluginUniqueIdentifier,
        runtime_type: RuntimeKind,
        kind: LifecycleKind,
    ) {
        let event = LifecycleEvent {
            plugin_unique_identifier: uid.clone(),
            runtime_type,
            at: Utc::now(),
            kind,
        };
        {
            let mut board = lock(&self.inner.board);
            let keep = board
                .entry(uid.clone())
                .or_insert_with(|| PluginStatus::new(uid.clone(), runtime_type, event.at))
                .apply(&event);
            if !keep {
                board.remove(uid);
            }
        }
        // No receivers is fine.
        let _ = self.inner.tx.send(Arc::new(event));
    }

    pub fn status(&self, uid: &PluginUniqueIdentifier) -> Option<PluginStatus> {
        lock(&self.inner.board).get(uid).cloned()
    }

    /// Every plugin on the board, sorted by identifier.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let mut all: Vec<PluginStatus> = lock(&self.inner.board).values().cloned().collect();
        all.sort_by(|a, b| a.plugin_unique_identifier.cmp(&b.plugin_unique_identifier));
        all
    }
}

/// Logs every event through `tracing` until the hub is gone: the one place lifecycle logging
/// happens.
pub async fn log_events(mut rx: broadcast::Receiver<Arc<LifecycleEvent>>) {
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    skipped = n,
                    "lifecycle logger fell behind; events not logged"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        log_event(&event);
    }
}

fn log_event(event: &LifecycleEvent) {
    let plugin = event.plugin_unique_identifier.as_str();
    let runtime = event.runtime_type.as_str();
    match &event.kind {
        LifecycleKind::PluginPending => {
            tracing::debug!(plugin, runtime, "plugin scheduled to start")
        }
        LifecycleKind::PluginStarting => tracing::info!(plugin, runtime, "plugin starting"),
        LifecycleKind::PluginReady => tracing::info!(plugin, runtime, "plugin ready"),
        LifecycleKind::PluginStartFailed { reason } => {
            tracing::warn!(plugin, runtime, %reason, "plugin start failed")
        }
        LifecycleKind::PluginStopping => tracing::info!(plugin, runtime, "plugin stopping"),
        LifecycleKind::PluginStopped => tracing::info!(plugin, runtime, "plugin stopped"),
        LifecycleKind::ScaleUp { replicas } => {
            tracing::debug!(plugin, runtime, replicas, "runtime scaled up")
        }
        LifecycleKind::ScaleDown { replicas } => {
            tracing::debug!(plugin, runtime, replicas, "runtime scaled down")
        }
        LifecycleKind::ScaleDownFailed { reason } => {
            tracing::warn!(plugin, runtime, %reason, "runtime scale-down failed")
        }
        LifecycleKind::StopSchedule => {
            tracing::debug!(plugin, runtime, "runtime stopped scheduling")
        }
        LifecycleKind::Close => tracing::debug!(plugin, runtime, "runtime closed"),
        LifecycleKind::InstanceStarting { pid } => {
            tracing::info!(plugin, pid, "plugin process started")
        }
        LifecycleKind::InstanceReady { pid } => {
            tracing::info!(plugin, pid, "plugin instance ready (first heartbeat)")
        }
        LifecycleKind::InstanceLaunchFailed { pid, reason } => {
            tracing::warn!(plugin, pid, %reason, "plugin instance failed to start")
        }
        LifecycleKind::InstanceRetiring { pid, reason } => {
            tracing::info!(plugin, pid, %reason, "plugin instance retiring")
        }
        LifecycleKind::InstanceShutdown { pid, reason } => {
            tracing::info!(plugin, pid, %reason, "plugin instance ended")
        }
        LifecycleKind::Heartbeat { .. } => {}
        LifecycleKind::Log { level, message, .. } => match level.as_str() {
            "debug" => tracing::debug!(plugin, "{message}"),
            "warn" | "warning" => tracing::warn!(plugin, "{message}"),
            "error" | "fatal" | "critical" => tracing::error!(plugin, "{message}"),
            _ => tracing::info!(plugin, "{message}"),
        },
        LifecycleKind::Stderr { line, .. } => tracing::warn!(plugin, "plugin stderr: {line}"),
        LifecycleKind::DebuggingConnected { tenant_id } => {
            tracing::info!(plugin, tenant_id, "debugging runtime connected")
        }
        LifecycleKind::DebuggingDisconnected { tenant_id } => {
            tracing::info!(plugin, tenant_id, "debugging runtime disconnected")
        }
    }
}

/// Keeps upstream's lifecycle metrics (plugin-protocol §7.2) from the event stream:
/// `plugin_runtime_status`, `active_plugins_total`, `plugin_restarts_total` and
/// `plugin_installations_total{status="failed"}`.
pub async fn record_metrics(mut rx: broadcast::Receiver<Arc<LifecycleEvent>>) {
    // Plugins counted in `active_plugins_total`, so a plugin that never became ready is never
    // subtracted.
    let mut active_plugins = std::collections::HashSet::new();
    // Plugins being stopped: their instance's end is not a restart.
    let mut stopping = std::collections::HashSet::new();
    // Instances retired on purpose (scale-down, scale to zero): their end is not a restart.
    let mut retiring = std::collections::HashSet::new();
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let plugin_id = event.plugin_unique_identifier.plugin_id().to_owned();
        let runtime_type = event.runtime_type.as_str();
        let status = |value: f64| {
            metrics::gauge!("plugin_runtime_status", "plugin_id" => plugin_id.clone(), "runtime_type" => runtime_type)
                .set(value)
        };
        let active = || metrics::gauge!("active_plugins_total", "runtime_type" => runtime_type);
        match &event.kind {
            LifecycleKind::PluginStarting => status(0.5),
            LifecycleKind::PluginReady | LifecycleKind::DebuggingConnected { .. } => {
                status(1.0);
                if active_plugins.insert(event.plugin_unique_identifier.clone()) {
                    active().increment(1.0);
                }
            }
            LifecycleKind::PluginStartFailed { .. } => {
                status(0.0);
                metrics::counter!("plugin_installations_total", "plugin_id" => plugin_id.clone(), "status" => "failed")
                    .increment(1);
            }
            LifecycleKind::PluginStopped | LifecycleKind::DebuggingDisconnected { .. } => {
                status(0.0);
                stopping.remove(&event.plugin_unique_identifier);
                if active_plugins.remove(&event.plugin_unique_identifier) {
                    active().decrement(1.0);
                }
            }
            LifecycleKind::PluginStopping => {
                stopping.insert(event.plugin_unique_identifier.clone());
            }
            LifecycleKind::InstanceRetiring { pid, .. } => {
                retiring.insert((event.plugin_unique_identifier.clone(), *pid));
            }
            LifecycleKind::InstanceShutdown { pid, .. }
                if !retiring.remove(&(event.plugin_unique_identifier.clone(), *pid))
                    && active_plugins.contains(&event.plugin_unique_identifier)
                    && !stopping.contains(&event.plugin_unique_identifier) =>
            {
                metrics::counter!("plugin_restarts_total", "plugin_id" => plugin_id.clone())
                    .increment(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid() -> PluginUniqueIdentifier {
        PluginUniqueIdentifier::parse(
            "acme/echo:0.0.1@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .expect("uid")
    }

    #[test]
    fn states_follow_a_launch_a_crash_and_a_stop() {
        let hub = Lifecycle::default();
        let uid = uid();
        let local = RuntimeKind::Local;
        let state = |hub: &Lifecycle| hub.status(&uid).map(|s| s.status);
        hub.emit(&uid, local, LifecycleKind::PluginStarting);
        assert_eq!(state(&hub), Some(RuntimeState::Launching));
        hub.emit(&uid, local, LifecycleKind::InstanceStarting { pid: 7 });
        hub.emit(&uid, local, LifecycleKind::InstanceReady { pid: 7 });
        hub.emit(&uid, local, LifecycleKind::PluginReady);
        assert_eq!(state(&hub), Some(RuntimeState::Active));
        hub.emit(
            &uid,
            local,
            LifecycleKind::InstanceShutdown {
                pid: 7,
                reason: "signal 9".into(),
            },
        );
        let status = hub.status(&uid).expect("status");
        assert_eq!(status.status, RuntimeState::Restarting);
        assert_eq!(status.restarts, 1);
        assert_eq!(status.last_error.as_deref(), Some("signal 9"));
        hub.emit(&uid, local, LifecycleKind::InstanceReady { pid: 8 });
        assert_eq!(state(&hub), Some(RuntimeState::Active));
        hub.emit(&uid, local, LifecycleKind::PluginStopping);
        hub.emit(&uid, local, LifecycleKind::PluginStopped);
        assert_eq!(state(&hub), None);
    }

    #[test]
    fn replicas_crash_retire_and_scale_to_zero() {
        let hub = Lifecycle::default();
        let uid = uid();
        let local = RuntimeKind::Local;
        hub.emit(&uid, local, LifecycleKind::PluginStarting);
        for pid in [1, 2, 3] {
            hub.emit(&uid, local, LifecycleKind::InstanceStarting { pid });
            hub.emit(&uid, local, LifecycleKind::InstanceReady { pid });
        }
        hub.emit(&uid, local, LifecycleKind::ScaleUp { replicas: 3 });
        hub.emit(&uid, local, LifecycleKind::PluginReady);
        let shutdown = |pid| LifecycleKind::InstanceShutdown {
            pid,
            reason: format!("{pid} ended"),
        };
        // One of three crashes: still active, one restart counted.
        hub.emit(&uid, local, shutdown(2));
        let status = hub.status(&uid).expect("status");
        assert_eq!(
            (status.status, status.restarts, status.replicas),
            (RuntimeState::Active, 1, 3)
        );
        assert_eq!(status.last_error.as_deref(), Some("2 ended"));
        // Scaled to zero: retiring instances end without counting as restarts.
        hub.emit(&uid, local, LifecycleKind::ScaleDown { replicas: 0 });
        for pid in [1, 3] {
            hub.emit(
                &uid,
                local,
                LifecycleKind::InstanceRetiring {
                    pid,
                    reason: "idle".into(),
                },
            );
            hub.emit(&uid, local, shutdown(pid));
        }
        let status = hub.status(&uid).expect("status");
        assert_eq!((status.status, status.restarts), (RuntimeState::Idle, 1));
        assert_eq!(status.pid, None);
        // The next request wakes it.
        hub.emit(&uid, local, LifecycleKind::ScaleUp { replicas: 1 });
        hub.emit(&uid, local, LifecycleKind::InstanceStarting { pid: 4 });
        hub.emit(&uid, local, LifecycleKind::InstanceReady { pid: 4 });
        let status = hub.status(&uid).expect("status");
        assert_eq!(
            (status.status, status.pid, status.replicas),
            (RuntimeState::Active, Some(4), 1)
        );
    }

    #[test]
    fn a_plugin_restored_idle_is_idle_until_its_first_instance() {
        let hub = Lifecycle::default();
        let uid = uid();
        let local = RuntimeKind::Local;
        hub.emit(&uid, local, LifecycleKind::PluginPending);
        hub.emit(&uid, local, LifecycleKind::PluginStarting);
        hub.emit(&uid, local, LifecycleKind::ScaleDown { replicas: 0 });
        hub.emit(&uid, local, LifecycleKind::PluginReady);
        let status = hub.status(&uid).expect("status");
        assert!(status.is_settled());
        assert_eq!((status.status, status.pid), (RuntimeState::Idle, None));
        hub.emit(&uid, local, LifecycleKind::ScaleUp { replicas: 1 });
        hub.emit(&uid, local, LifecycleKind::InstanceStarting { pid: 9 });
        hub.emit(&uid, local, LifecycleKind::InstanceReady { pid: 9 });
        assert_eq!(
            hub.status(&uid).map(|s| s.status),
            Some(RuntimeState::Active)
        );
    }

    #[test]
    fn a_failed_start_is_settled_and_keeps_its_reason() {
        let hub = Lifecycle::default();
        let uid = uid();
        hub.emit(&uid, RuntimeKind::Local, LifecycleKind::PluginPending);
        assert!(!hub.status(&uid).expect("status").is_settled());
        hub.emit(
            &uid,
            RuntimeKind::Local,
            LifecycleKind::PluginStartFailed {
                reason: "dependencies failed".into(),
            },
        );
        let status = hub.status(&uid).expect("status");
        assert!(status.is_settled());
        assert_eq!(status.status, RuntimeState::Stopped);
        assert_eq!(status.last_error.as_deref(), Some("dependencies failed"));
    }

    #[test]
    fn recent_lines_are_bounded_and_cut() {
        let hub = Lifecycle::default();
        let uid = uid();
        for i in 0..(RECENT_LINES + 10) {
            hub.emit(
                &uid,
                RuntimeKind::Local,
                LifecycleKind::Stderr {
                    pid: 1,
                    line: format!("{i}{}", "é".repeat(RECENT_LINE_BYTES)),
                },
            );
        }
        let logs = hub.status(&uid).expect("status").logs;
        assert_eq!(logs.len(), RECENT_LINES);
        assert!(logs.front().expect("line").text.starts_with("10"));
        assert!(logs.iter().all(|l| l.text.len() <= RECENT_LINE_BYTES));
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_does_not_block_emitters() {
        let hub = Lifecycle::default();
        let _idle = hub.subscribe();
        let uid = uid();
        for _ in 0..(BROADCAST_CAPACITY * 4) {
            hub.emit(
                &uid,
                RuntimeKind::Local,
                LifecycleKind::Heartbeat { pid: 1 },
            );
        }
        let mut late = hub.subscribe();
        hub.emit(&uid, RuntimeKind::Local, LifecycleKind::PluginReady);
        let event = late.recv().await.expect("event");
        assert_eq!(event.kind, LifecycleKind::PluginReady);
    }
}
