//! One running plugin process: its reader tasks, its session table and its stdin writer.
//!
//! Three tasks per instance: the stdout reader routes events, the stderr reader logs lines and
//! keeps a rolling tail, and the waiter owns the child, enforces liveness and, when the process
//! is gone, closes every registered session with the exit status and the stderr tail.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use plugind_io::{
    EventKind, FrameError, LineReader, LogData, LogLevel, PluginEvent, SessionMessage,
    SessionMessageType,
};
use regex::Regex;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::process::{describe_status, kill_group, Spawned};
use crate::session::SessionEvent;

/// Bytes of stderr kept for failure messages.
const STDERR_TAIL_BYTES: usize = 2048;
/// A write to stdin that makes no progress for this long fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

static SESSION_ID_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#""session_id"\s*:\s*"([^"]{1,128})""#).ok());

/// Knobs an instance needs from the runtime configuration.
#[derive(Clone, Debug)]
pub(crate) struct InstanceOptions {
    /// The plugin unique identifier, for logs.
    pub plugin: String,
    pub max_line_bytes: usize,
    pub liveness_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InstanceState {
    Starting,
    Ready,
    /// The process is gone and every session was closed; holds the reason.
    Exited(String),
}

type SessionTable = HashMap<String, mpsc::UnboundedSender<SessionEvent>>;

pub(crate) enum RegisterError {
    /// The instance is shutting down or gone.
    Closed,
    Duplicate,
}

pub(crate) struct Instance {
    plugin: String,
    pid: u32,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    /// `None` once the instance closed its sessions; registration then fails.
    sessions: Mutex<Option<SessionTable>>,
    state: watch::Sender<InstanceState>,
    last_active: Mutex<Instant>,
    stderr_tail: Mutex<String>,
    kill: CancellationToken,
    /// Why the daemon killed the process, if it did.
    kill_reason: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Instance {
    /// Takes over a freshly spawned process and starts its tasks.
    pub(crate) fn start(spawned: Spawned, opts: InstanceOptions) -> Arc<Instance> {
        let Spawned {
            child,
            pid,
            stdin,
            stdout,
            stderr,
        } = spawned;
        let (state, _) = watch::channel(InstanceState::Starting);
        let instance = Arc::new(Instance {
            plugin: opts.plugin.clone(),
            pid,
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            sessions: Mutex::new(Some(HashMap::new())),
            state,
            last_active: Mutex::new(Instant::now()),
            stderr_tail: Mutex::new(String::new()),
            kill: CancellationToken::new(),
            kill_reason: Mutex::new(None),
        });
        let stdout_task = tokio::spawn(read_stdout(instance.clone(), stdout, opts.max_line_bytes));
        let stderr_task = tokio::spawn(read_stderr(instance.clone(), stderr, opts.max_line_bytes));
        tokio::spawn(wait_child(
            instance.clone(),
            child,
            stdout_task,
            stderr_task,
            opts.liveness_timeout,
        ));
        instance
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn state(&self) -> InstanceState {
        self.state.borrow().clone()
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(*self.state.borrow(), InstanceState::Ready)
    }

    pub(crate) fn stderr_tail(&self) -> String {
        lock(&self.stderr_tail).clone()
    }

    /// Resolves at the first heartbeat, or fails with the exit reason or a timeout message.
    pub(crate) async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let mut rx = self.state.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| !matches!(s, InstanceState::Starting)),
        )
        .await;
        match waited {
            Ok(Ok(state)) => match &*state {
                InstanceState::Ready => Ok(()),
                InstanceState::Exited(reason) => Err(format!(
                    "process ended before its first heartbeat: {reason}"
                )),
                InstanceState::Starting => Err("instance state went back to starting".into()),
            },
            Ok(Err(_)) => Err("instance went away".into()),
            Err(_) => {
                let tail = self.stderr_tail();
                let mut msg = format!("no heartbeat within {} s", timeout.as_secs_f64());
                if !tail.is_empty() {
                    msg.push_str("; stderr: ");
                    msg.push_str(tail.trim_end());
                }
                Err(msg)
            }
        }
    }

    /// Resolves when the process is gone and its sessions are closed; returns the reason.
    pub(crate) async fn wait_exit(&self) -> String {
        let mut rx = self.state.subscribe();
        let result = match rx.wait_for(|s| matches!(s, InstanceState::Exited(_))).await {
            Ok(state) => match &*state {
                InstanceState::Exited(reason) => reason.clone(),
                _ => String::new(),
            },
            Err(_) => "instance went away".into(),
        };
        result
    }

    /// Kills the process group (sessions get `Closed` with `reason`) and waits for the exit.
    pub(crate) async fn kill_and_wait(&self, reason: &str) -> String {
        self.kill(reason);
        self.wait_exit().await
    }

    /// Asks the waiter to kill the process group; the first reason given wins.
    pub(crate) fn kill(&self, reason: &str) {
        lock(&self.kill_reason).get_or_insert_with(|| reason.to_owned());
        self.kill.cancel();
    }

    pub(crate) fn register(
        &self,
        session_id: &str,
    ) -> Result<mpsc::UnboundedReceiver<SessionEvent>, RegisterError> {
        let mut sessions = lock(&self.sessions);
        let table = sessions.as_mut().ok_or(RegisterError::Closed)?;
        if table.contains_key(session_id) {
            return Err(RegisterError::Duplicate);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        table.insert(session_id.to_owned(), tx);
        Ok(rx)
    }

    pub(crate) fn unregister(&self, session_id: &str) {
        if let Some(table) = lock(&self.sessions).as_mut() {
            table.remove(session_id);
        }
    }

    /// Number of registered sessions.
    pub(crate) fn session_count(&self) -> usize {
        lock(&self.sessions).as_ref().map_or(0, HashMap::len)
    }

    /// Writes one complete line to stdin; concurrent writers are serialised by the stdin mutex.
    pub(crate) async fn write_line(&self, line: &[u8]) -> io::Result<()> {
        let mut stdin = self.stdin.lock().await;
        let pipe = stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "plugin instance stopped"))?;
        let write = async {
            pipe.write_all(line).await?;
            pipe.flush().await
        };
        let result = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "plugin did not read its stdin for 60 s",
            )),
        };
        if let Err(e) = &result {
            // A half-written line would corrupt every later request: this instance is done, and
            // the supervisor replaces it.
            *stdin = None;
            drop(stdin);
            self.kill(&format!("writing to its stdin failed ({e})"));
        }
        result
    }

    fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    fn send_to_session(&self, session_id: &str, event: SessionEvent) {
        let sessions = lock(&self.sessions);
        match sessions.as_ref().and_then(|t| t.get(session_id)) {
            Some(tx) => {
                // The receiver may be gone already; the Session's drop will unregister.
                let _ = tx.send(event);
            }
            None => {
                tracing::debug!(plugin = %self.plugin, session_id, "message for unknown session dropped")
            }
        }
    }

    fn handle_line(&self, line: &[u8]) {
        let event = match PluginEvent::parse(line) {
            Ok(event) => event,
            Err(stray) => {
                tracing::warn!(plugin = %self.plugin, line = %stray.excerpt, "plugin printed a non-event line to stdout; ignored");
                return;
            }
        };
        match event.kind() {
            EventKind::Heartbeat => {
                let first = self.state.send_if_modified(|s| {
                    let starting = matches!(s, InstanceState::Starting);
                    if starting {
                        *s = InstanceState::Ready;
                    }
                    starting
                });
                if first {
                    tracing::info!(plugin = %self.plugin, pid = self.pid, "plugin instance ready (first heartbeat)");
                }
            }
            EventKind::Log => log_plugin_line(&self.plugin, event.data),
            EventKind::Session => self.route_session(event.session_id, event.data),
            EventKind::Error => {
                tracing::warn!(plugin = %self.plugin, session_id = ?event.session_id, error = %event.data, "plugin reported an error");
            }
            EventKind::Other => {
                if !event.event.is_empty() {
                    tracing::debug!(plugin = %self.plugin, event = %event.event, "unknown plugin event ignored");
                }
            }
        }
    }

    fn route_session(&self, session_id: Option<String>, data: Value) {
        let Some(session_id) = session_id else {
            tracing::warn!(plugin = %self.plugin, "session event without session_id dropped");
            return;
        };
        let message = match SessionMessage::from_value(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(plugin = %self.plugin, session_id, error = %e, "undecodable session message dropped");
                return;
            }
        };
        let event = match message.kind {
            SessionMessageType::Stream => SessionEvent::Stream(message.data),
            SessionMessageType::End => SessionEvent::End,
            SessionMessageType::Error => SessionEvent::Error(message.data),
            SessionMessageType::Invoke => SessionEvent::Invoke(message.data),
            // Surfaced as an error so the call ends the way upstream ends it.
            SessionMessageType::Unknown(kind) => SessionEvent::Error(json!({
                "error_type": "unknown_stream_message_type",
                "message": format!("unknown stream message type: {kind}"),
                "args": {},
            })),
        };
        self.send_to_session(&session_id, event);
    }

    /// An oversized line was skipped: if it names a session, tell that session (only it fails).
    fn handle_too_long(&self, len: usize, max: usize, head: &[u8]) {
        let head_text = String::from_utf8_lossy(head);
        let session_id = SESSION_ID_RE
            .as_ref()
            .and_then(|re| re.captures(&head_text))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
        tracing::warn!(plugin = %self.plugin, len, max, session_id = ?session_id, "plugin output line too long; skipped");
        if let Some(session_id) = session_id {
            let message =
                format!("plugin output line of {len} bytes exceeds the limit of {max} bytes");
            self.send_to_session(
                &session_id,
                SessionEvent::Error(
                    json!({"error_type": "PluginDaemonInnerError", "message": message, "args": {}}),
                ),
            );
        }
    }

    fn push_stderr(&self, line: &str) {
        let mut tail = lock(&self.stderr_tail);
        tail.push_str(line);
        tail.push('\n');
        if tail.len() > STDERR_TAIL_BYTES {
            let mut cut = tail.len() - STDERR_TAIL_BYTES;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }

    /// Closes every session with `reason` and refuses new ones.
    fn close_sessions(&self, reason: &str) {
        let table = lock(&self.sessions).take();
        for (_, tx) in table.into_iter().flatten() {
            let _ = tx.send(SessionEvent::Closed(reason.to_owned()));
        }
    }
}

fn log_plugin_line(plugin: &str, data: Value) {
    let log: LogData = match serde_json::from_value(data) {
        Ok(log) => log,
        Err(e) => {
            tracing::debug!(plugin, error = %e, "undecodable plugin log event");
            return;
        }
    };
    let message = log.message.as_str();
    match log.level() {
        LogLevel::Debug => tracing::debug!(plugin, "{message}"),
        LogLevel::Info => tracing::info!(plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(plugin, "{message}"),
        LogLevel::Error => tracing::error!(plugin, "{message}"),
    }
}

async fn read_stdout(instance: Arc<Instance>, stdout: ChildStdout, max_line_bytes: usize) {
    let mut reader = LineReader::with_max_line_bytes(stdout, max_line_bytes);
    while let Some(item) = reader.next_line().await {
        instance.touch();
        match item {
            Ok(line) => instance.handle_line(&line),
            Err(FrameError::TooLong { len, max, head }) => {
                instance.handle_too_long(len, max, &head)
            }
            Err(FrameError::Io(e)) => {
                tracing::warn!(plugin = %instance.plugin, error = %e, "reading plugin stdout failed");
            }
        }
    }
    // Without stdout the instance is useless. Normally the process is exiting anyway; if it is
    // still there after a moment, it closed stdout on purpose and gets killed.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !matches!(instance.state(), InstanceState::Exited(_)) {
            instance.kill("plugin closed its stdout");
        }
    });
}

async fn read_stderr(instance: Arc<Instance>, stderr: ChildStderr, max_line_bytes: usize) {
    let mut reader = LineReader::with_max_line_bytes(stderr, max_line_bytes);
    while let Some(item) = reader.next_line().await {
        instance.touch();
        match item {
            Ok(line) => {
                let text = String::from_utf8_lossy(&line);
                tracing::warn!(plugin = %instance.plugin, "plugin stderr: {text}");
                instance.push_stderr(&text);
            }
            Err(FrameError::TooLong { len, .. }) => {
                instance.push_stderr(&format!("[stderr line of {len} bytes skipped]"));
            }
            Err(FrameError::Io(_)) => break,
        }
    }
}

async fn wait_child(
    instance: Arc<Instance>,
    mut child: tokio::process::Child,
    stdout_task: JoinHandle<()>,
    stderr_task: JoinHandle<()>,
    liveness_timeout: Duration,
) {
    let check_every =
        (liveness_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = instance.kill.cancelled() => {
                kill_group(instance.pid);
                break child.wait().await;
            }
            _ = tokio::time::sleep(check_every) => {
                let silent = lock(&instance.last_active).elapsed();
                if instance.is_ready() && silent > liveness_timeout {
                    tracing::warn!(plugin = %instance.plugin, pid = instance.pid, silent_s = silent.as_secs(), "plugin instance inactive; killing it");
                    instance.kill(&format!("no output or heartbeat for {} s", silent.as_secs()));
                }
            }
        }
    };
    // Reach anything the plugin spawned, so that the pipes close.
    kill_group(instance.pid);
    let exit = match &status {
        Ok(status) => describe_status(status),
        Err(e) => format!("unknown status ({e})"),
    };
    // Let the readers deliver what the process wrote before it died (an `end`, a last stderr line).
    for task in [stdout_task, stderr_task] {
        let abort = task.abort_handle();
        if tokio::time::timeout(Duration::from_millis(500), task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    *instance.stdin.lock().await = None;
    let mut reason = match lock(&instance.kill_reason).clone() {
        Some(why) => format!("{why}; plugin process exited ({exit})"),
        None => format!("plugin process exited ({exit})"),
    };
    let tail = instance.stderr_tail();
    if !tail.trim().is_empty() {
        reason.push_str("; stderr: ");
        reason.push_str(tail.trim_end());
    }
    tracing::info!(plugin = %instance.plugin, pid = instance.pid, reason = %reason, "plugin instance ended");
    instance.close_sessions(&reason);
    instance.state.send_replace(InstanceState::Exited(reason));
}
