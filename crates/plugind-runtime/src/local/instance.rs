//! One running plugin process: its connection (session router + stdin writer), its reader tasks
//! and the guard that owns it.
//!
//! Three tasks per instance: the stdout reader routes session messages through the
//! [`SessionRouter`], the stderr reader caps, rate-limits and reports lines, and the waiter owns
//! the child, enforces liveness and, when the process is gone, closes every session with the exit
//! status and the stderr tail. The process itself belongs to an [`InstanceOwner`]: dropping the
//! owner (a cancelled launch, an aborted supervisor) kills the process group, so no code path
//! leaves a plugin running outside the registry.

use std::io;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use plugind_entities::PluginUniqueIdentifier;
use plugind_io::{EventKind, FrameError, LineReader, PluginEvent, RawLine};
use regex::Regex;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::process::{describe_status, kill_group, Spawned};
use crate::config::SessionLimits;
use crate::connection::Connection;
use crate::lifecycle::{cut, Lifecycle, LifecycleKind, RuntimeKind};
use crate::message::SessionEvent;
use crate::router::SessionRouter;
use crate::writer::LineWriter;

/// Bytes of stderr kept for failure messages.
const STDERR_TAIL_BYTES: usize = 2048;
/// A stderr line longer than this is cut (the cut is said).
pub(crate) const STDERR_MAX_LINE_BYTES: usize = 4096;
/// stderr lines reported per second; the rest are counted and the count is reported.
const STDERR_LINES_PER_SECOND: u32 = 50;
/// A write to stdin that makes no progress for this long fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

static SESSION_ID_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#""session_id"\s*:\s*"([^"]{1,128})""#).ok());

/// Knobs an instance needs from the runtime configuration.
#[derive(Clone)]
pub(crate) struct InstanceOptions {
    pub uid: PluginUniqueIdentifier,
    pub lifecycle: Lifecycle,
    pub max_line_bytes: usize,
    pub liveness_timeout: Duration,
    /// Per-connection session limits.
    pub sessions: SessionLimits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InstanceState {
    Starting,
    Ready,
    /// The process is gone and every session was closed; holds the reason.
    Exited(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asks the waiter to kill the process group; the first reason given wins.
#[derive(Clone, Default)]
struct Killer {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Killer {
    fn kill(&self, reason: &str) {
        lock(&self.reason).get_or_insert_with(|| reason.to_owned());
        self.token.cancel();
    }

    fn reason(&self) -> Option<String> {
        lock(&self.reason).clone()
    }
}

/// The process's stdin as a [`LineWriter`]: one line at a time, a failed or stuck write retires
/// the instance (a half-written line would corrupt every later request).
struct StdinWriter {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    killer: Killer,
}

impl StdinWriter {
    async fn write(&self, line: &[u8]) -> io::Result<()> {
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
            *stdin = None;
            drop(stdin);
            self.killer
                .kill(&format!("writing to its stdin failed ({e})"));
        }
        result
    }

    async fn close(&self) {
        *self.stdin.lock().await = None;
    }
}

impl LineWriter for StdinWriter {
    fn write_line<'a>(&'a self, line: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.write(line))
    }
}

/// Counts stderr lines per second and says how many were held back.
struct StderrLimiter {
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

impl StderrLimiter {
    fn new() -> Self {
        StderrLimiter {
            window_start: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` when the line may be reported, `n` being the lines held back before it.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.in_window = 0;
        }
        if self.in_window >= STDERR_LINES_PER_SECOND {
            self.suppressed += 1;
            return None;
        }
        self.in_window += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

pub(crate) struct Instance {
    uid: PluginUniqueIdentifier,
    lifecycle: Lifecycle,
    pid: u32,
    conn: Connection,
    stdin: Arc<StdinWriter>,
    state: watch::Sender<InstanceState>,
    last_active: Mutex<Instant>,
    stderr_tail: Mutex<String>,
    killer: Killer,
}

impl Instance {
    /// Takes over a freshly spawned process and starts its tasks. The returned owner kills the
    /// process group when dropped.
    pub(crate) fn start(spawned: Spawned, opts: InstanceOptions) -> InstanceOwner {
        let Spawned {
            child,
            pid,
            stdin,
            stdout,
            stderr,
        } = spawned;
        let killer = Killer::default();
        let stdin = Arc::new(StdinWriter {
            stdin: tokio::sync::Mutex::new(Some(stdin)),
            killer: killer.clone(),
        });
        let router = Arc::new(SessionRouter::new(opts.sessions.buffer_bytes));
        let instance = Arc::new(Instance {
            uid: opts.uid.clone(),
            lifecycle: opts.lifecycle.clone(),
            pid,
            conn: Connection::new(router, stdin.clone(), opts.sessions),
            stdin,
            state: watch::channel(InstanceState::Starting).0,
            last_active: Mutex::new(Instant::now()),
            stderr_tail: Mutex::new(String::new()),
            killer,
        });
        instance.emit(LifecycleKind::InstanceStarting { pid });
        let stdout_task = tokio::spawn(read_stdout(instance.clone(), stdout, opts.max_line_bytes));
        let stderr_task = tokio::spawn(read_stderr(instance.clone(), stderr));
        tokio::spawn(wait_child(
            instance.clone(),
            child,
            stdout_task,
            stderr_task,
            opts.liveness_timeout,
        ));
        InstanceOwner { instance }
    }

    fn emit(&self, kind: LifecycleKind) {
        self.lifecycle.emit(&self.uid, RuntimeKind::Local, kind);
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
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
        self.killer.kill(reason);
    }

    /// Sessions in flight.
    pub(crate) fn session_count(&self) -> usize {
        self.conn.router().len()
    }

    fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    /// One stdout line, read once ([`RawLine`]): session payloads are routed as the raw bytes
    /// of the line, never decoded into a tree here.
    fn handle_line(&self, bytes: &Bytes) {
        let line = match RawLine::parse(bytes) {
            Ok(line) => line,
            Err(stray) => {
                tracing::warn!(plugin = %self.uid, line = %stray.excerpt, "plugin printed a non-event line to stdout; ignored");
                return;
            }
        };
        match line.kind() {
            EventKind::Heartbeat => {
                let first = self.state.send_if_modified(|s| {
                    let starting = matches!(s, InstanceState::Starting);
                    if starting {
                        *s = InstanceState::Ready;
                    }
                    starting
                });
                let pid = self.pid;
                self.emit(if first {
                    LifecycleKind::InstanceReady { pid }
                } else {
                    LifecycleKind::Heartbeat { pid }
                });
            }
            EventKind::Log => {
                let (level, message) = line.log();
                self.emit(LifecycleKind::Log {
                    pid: self.pid,
                    level: level.to_ascii_lowercase(),
                    message: message.into_owned(),
                })
            }
            EventKind::Session => self.route_session(&line, bytes.len()),
            EventKind::Error => {
                // Rare: decoded whole, for the log line only.
                let data = PluginEvent::parse(bytes)
                    .map(|e| e.data)
                    .unwrap_or_default();
                tracing::warn!(plugin = %self.uid, session_id = ?line.session_id(), error = %data, "plugin reported an error");
            }
            EventKind::Other => {
                if !line.event().is_empty() {
                    tracing::debug!(plugin = %self.uid, event = %line.event(), "unknown plugin event ignored");
                }
            }
        }
    }

    fn route_session(&self, line: &RawLine<'_>, size: usize) {
        let Some(session_id) = line.session_id() else {
            tracing::warn!(plugin = %self.uid, "session event without session_id dropped");
            return;
        };
        let message = match line.session_message() {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(plugin = %self.uid, session_id, %error, "undecodable session message dropped");
                return;
            }
        };
        let event = match message.kind.as_ref() {
            "stream" => SessionEvent::Stream(message.data),
            "end" => SessionEvent::End,
            // Error and invoke payloads are read by the daemon: decoded here (rare messages).
            "error" | "invoke" => match message.data.to_value() {
                Ok(data) if message.kind == "error" => SessionEvent::Error(data),
                Ok(data) => SessionEvent::Invoke(data),
                Err(error) => {
                    tracing::warn!(plugin = %self.uid, session_id, %error, "undecodable session message dropped");
                    return;
                }
            },
            // Surfaced as an error so the call ends the way upstream ends it.
            kind => SessionEvent::Error(json!({
                "error_type": "unknown_stream_message_type",
                "message": format!("unknown stream message type: {kind}"),
                "args": {},
            })),
        };
        if !self.conn.router().route(session_id, event, size) {
            tracing::debug!(plugin = %self.uid, session_id, "message for an ended or unknown session dropped");
        }
    }

    /// An oversized line was skipped: if it names a session, tell that session (only it fails).
    fn handle_too_long(&self, len: usize, max: usize, head: &[u8]) {
        let head_text = String::from_utf8_lossy(head);
        let session_id = SESSION_ID_RE
            .as_ref()
            .and_then(|re| re.captures(&head_text))
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_owned());
        tracing::warn!(plugin = %self.uid, len, max, session_id = ?session_id, "plugin output line too long; skipped");
        if let Some(session_id) = session_id {
            let message =
                format!("plugin output line of {len} bytes exceeds the limit of {max} bytes");
            self.conn.router().route(
                &session_id,
                SessionEvent::Error(
                    json!({"error_type": "PluginDaemonInnerError", "message": message, "args": {}}),
                ),
                0,
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

    /// One stderr line (already capped): into the tail, and reported unless rate-limited.
    fn stderr_line(&self, line: &str, limiter: &mut StderrLimiter) {
        self.push_stderr(line);
        if let Some(held_back) = limiter.admit(Instant::now()) {
            if held_back > 0 {
                self.emit(LifecycleKind::Stderr {
                    pid: self.pid,
                    line: format!("[{held_back} stderr lines not reported: more than {STDERR_LINES_PER_SECOND} a second]"),
                });
            }
            self.emit(LifecycleKind::Stderr {
                pid: self.pid,
                line: line.to_owned(),
            });
        }
    }
}

/// Owns a plugin process: dropping it kills the process group unless the process already ended.
/// Cheap access to the shared [`Instance`] through `Deref`.
pub(crate) struct InstanceOwner {
    instance: Arc<Instance>,
}

impl InstanceOwner {
    /// The shared instance, for lookups; it does not keep the process alive.
    pub(crate) fn shared(&self) -> Arc<Instance> {
        self.instance.clone()
    }
}

impl std::ops::Deref for InstanceOwner {
    type Target = Instance;
    fn deref(&self) -> &Instance {
        &self.instance
    }
}

impl Drop for InstanceOwner {
    fn drop(&mut self) {
        if matches!(self.instance.state(), InstanceState::Exited(_)) {
            return;
        }
        // Kill now, synchronously: the waiter task may never run again (runtime shutting down).
        kill_group(self.instance.pid);
        self.instance
            .kill("its owner was dropped (launch cancelled or runtime stopped)");
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
                tracing::warn!(plugin = %instance.uid, error = %e, "reading plugin stdout failed");
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

async fn read_stderr(instance: Arc<Instance>, stderr: ChildStderr) {
    let mut reader = LineReader::with_max_line_bytes(stderr, STDERR_MAX_LINE_BYTES);
    let mut limiter = StderrLimiter::new();
    while let Some(item) = reader.next_line().await {
        instance.touch();
        match item {
            Ok(line) => instance.stderr_line(&String::from_utf8_lossy(&line), &mut limiter),
            Err(FrameError::TooLong { len, head, .. }) => {
                let head = String::from_utf8_lossy(&head);
                let line = format!(
                    "{} … [stderr line of {len} bytes cut to {} bytes]",
                    cut(&head, STDERR_MAX_LINE_BYTES),
                    head.len().min(STDERR_MAX_LINE_BYTES)
                );
                instance.stderr_line(&line, &mut limiter);
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
            _ = instance.killer.token.cancelled() => {
                kill_group(instance.pid);
                break child.wait().await;
            }
            _ = tokio::time::sleep(check_every) => {
                let silent = lock(&instance.last_active).elapsed();
                if instance.is_ready() && silent > liveness_timeout {
                    tracing::warn!(plugin = %instance.uid, pid = instance.pid, silent_s = silent.as_secs(), "plugin instance inactive; killing it");
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
    instance.stdin.close().await;
    let mut reason = match instance.killer.reason() {
        Some(why) => format!("{why}; plugin process exited ({exit})"),
        None => format!("plugin process exited ({exit})"),
    };
    let tail = instance.stderr_tail();
    if !tail.trim().is_empty() {
        reason.push_str("; stderr: ");
        reason.push_str(tail.trim_end());
    }
    instance.conn.router().close_all(&reason);
    instance.emit(LifecycleKind::InstanceShutdown {
        pid: instance.pid,
        reason: reason.clone(),
    });
    instance.state.send_replace(InstanceState::Exited(reason));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_floods_are_counted_not_reported() {
        let mut limiter = StderrLimiter::new();
        let start = limiter.window_start;
        let admitted = (0..200).filter(|_| limiter.admit(start).is_some()).count();
        assert_eq!(admitted, STDERR_LINES_PER_SECOND as usize);
        let next_second = start + Duration::from_secs(1);
        assert_eq!(
            limiter.admit(next_second),
            Some(200 - u64::from(STDERR_LINES_PER_SECOND))
        );
        assert_eq!(limiter.admit(next_second), Some(0));
    }
}
