//! One debugging connection from accept to cleanup (plugin-protocol §5.3–§5.6):
//!
//! 1. registration under its deadlines (handshake within `handshake_timeout`, nothing before it,
//!    the rest within `registration_timeout`), each line bounded; any failure writes one line
//!    saying what to fix and closes the socket;
//! 2. at `end`: a connection slot (busy otherwise), the declaration finished, the host told (it
//!    stores assets and installs the plugin for the tenant), the runtime put in the registry;
//! 3. events until the plugin goes away, a heartbeat is missing for `heartbeat_timeout`, a write
//!    fails, or a stop: session messages are routed exactly like a local plugin's stdout;
//! 4. cleanup: every open session fails at once, and if no newer connection took the plugin
//!    over, it leaves the registry and the host uninstalls it; then the slot is given back.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures::future::BoxFuture;
use plugind_io::{
    EventKind, FrameError, LineReader, PluginEvent, SessionMessage, SessionMessageType,
};
use regex::Regex;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::framing::{Framer, FramingError};
use super::registration::{Registration, Step};
use super::runtime::RemoteRuntime;
use super::{ConnectedPlugin, Shared, Slot, Unregistered};
use crate::connection::Connection;
use crate::lifecycle::{LifecycleKind, RuntimeKind};
use crate::message::SessionEvent;
use crate::router::SessionRouter;
use crate::runtime::PluginRuntime;
use crate::writer::LineWriter;

/// Longest line accepted before the handshake (a handshake line is about 80 bytes).
pub(crate) const HANDSHAKE_LINE_BYTES: usize = 4096;
/// Longest registration line after the handshake (a manifest, one category's declarations, one
/// asset chunk).
pub(crate) const REGISTRATION_LINE_BYTES: usize = 16 * 1024 * 1024;
/// A write to the plugin that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// After a refusal line, how long the rest of what the plugin sends is read and dropped, so
/// that closing does not reset the connection before the plugin has read the line.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

static SESSION_ID_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#""session_id"\s*:\s*"([^"]{1,128})""#).ok());

/// The socket's write half as a [`LineWriter`]: one line at a time; a failed or stuck write
/// ends the connection (a half-written line would corrupt every later one).
pub(crate) struct SocketWriter {
    half: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    broken: CancellationToken,
}

impl SocketWriter {
    fn new(half: OwnedWriteHalf, broken: CancellationToken) -> Self {
        SocketWriter {
            half: tokio::sync::Mutex::new(Some(half)),
            broken,
        }
    }

    async fn write(&self, line: &[u8]) -> io::Result<()> {
        let mut half = self.half.lock().await;
        let socket = half.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "debugging connection closed")
        })?;
        let result = match tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(line)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the plugin did not read from its connection for 60 s",
            )),
        };
        if result.is_err() {
            *half = None;
            self.broken.cancel();
        }
        result
    }

    /// Shuts the write side down (the plugin reads end of stream).
    async fn close(&self) {
        if let Some(mut half) = self.half.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), half.shutdown()).await;
        }
    }
}

impl LineWriter for SocketWriter {
    fn write_line<'a>(&'a self, line: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.write(line))
    }
}

/// Writes `text` as the one line the plugin gets, closes, and drains what it still sends for a
/// moment so the line is not lost to a reset.
async fn refuse<R: AsyncRead + Unpin>(writer: &SocketWriter, text: &str, mut reader: R) {
    let mut line = text.as_bytes().to_vec();
    line.push(b'\n');
    let _ = writer.write(&line).await;
    writer.close().await;
    let drain = async {
        let mut sink = [0u8; 8192];
        while let Ok(n) = reader.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_LINGER, drain).await;
}

/// Serves one accepted connection to its end.
pub(super) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    unregistered: Unregistered,
) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let stop = shared.stop.child_token();
    let writer = Arc::new(SocketWriter::new(write, stop.clone()));
    let mut framer = Framer::new(read);
    let registered = tokio::select! {
        r = register(&shared, &mut framer) => r,
        () = stop.cancelled() => Err("the daemon is shutting down; reconnect later".to_owned()),
    };
    let (plugin, slot) = match registered {
        Ok(done) => done,
        Err(text) => {
            tracing::info!(%peer, reason = %text, "debugging connection refused");
            let (rest, read) = framer.into_parts();
            refuse(&writer, &text, std::io::Cursor::new(rest).chain(read)).await;
            return;
        }
    };
    drop(unregistered);
    let (rest, read) = framer.into_parts();
    run_registered(&shared, plugin, slot, writer, stop, rest, read, peer).await;
}

/// Registration: returns the plugin and its connection slot, or the line to refuse with.
async fn register(
    shared: &Arc<Shared>,
    framer: &mut Framer<OwnedReadHalf>,
) -> Result<(ConnectedPlugin, Slot), String> {
    let settings = &shared.settings;
    let accepted = Instant::now();
    let mut reg = Registration::default();
    loop {
        let handshaken = reg.is_handshaken();
        let (deadline, limit) = if handshaken {
            (
                accepted + settings.registration_timeout,
                REGISTRATION_LINE_BYTES,
            )
        } else {
            (accepted + settings.handshake_timeout, HANDSHAKE_LINE_BYTES)
        };
        let line = match tokio::time::timeout_at(deadline, framer.next_line(limit)).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => return Err("connection closed during registration".into()),
            Ok(Err(FramingError::TooLong(max))) if handshaken => {
                return Err(format!(
                    "registration failed, a registration message is longer than {max} bytes"
                ))
            }
            Ok(Err(FramingError::TooLong(max))) => {
                return Err(format!(
                    "handshake failed, invalid handshake message: more than {max} bytes without a line break"
                ))
            }
            Ok(Err(FramingError::Io(e))) => return Err(format!("reading failed: {e}")),
            Err(_) if handshaken => {
                return Err(format!(
                    "registration failed, not completed within {} s of connecting",
                    settings.registration_timeout.as_secs()
                ))
            }
            Err(_) => {
                return Err(format!(
                    "handshake failed, no handshake within {} s of connecting: send \
                     {{\"type\":\"handshake\",\"data\":{{\"key\":\"<debugging key>\"}}}} first",
                    settings.handshake_timeout.as_secs()
                ))
            }
        };
        match reg.feed(&line).map_err(|e| e.0)? {
            Step::More => {}
            Step::Handshake(key) => match shared.host.tenant_of(&key).await {
                Ok(Some(tenant_id)) => reg.handshaken(tenant_id),
                Ok(None) => {
                    return Err(
                        "handshake failed, invalid key: the debugging key is unknown or \
                                expired; copy the current key from Dify (Plugins → Debugging) \
                                into REMOTE_INSTALL_KEY"
                            .into(),
                    )
                }
                Err(e) => return Err(format!("failed to get connection info: {e}")),
            },
            Step::End => {
                let slot = shared
                    .take_slot()
                    .ok_or_else(|| "server is busy now, please try again later".to_owned())?;
                let tenant_id = reg.tenant_id().unwrap_or_default().to_owned();
                let done = reg.finish().map_err(|e| e.0)?;
                return Ok((
                    ConnectedPlugin {
                        tenant_id,
                        uid: done.uid,
                        declaration: done.declaration,
                        assets: done.assets,
                    },
                    slot,
                ));
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_registered(
    shared: &Arc<Shared>,
    plugin: ConnectedPlugin,
    slot: Slot,
    writer: Arc<SocketWriter>,
    stop: CancellationToken,
    rest: Vec<u8>,
    read: OwnedReadHalf,
    peer: SocketAddr,
) {
    let settings = &shared.settings;
    let router = Arc::new(SessionRouter::new(settings.sessions.buffer_bytes));
    let conn = Connection::new(router.clone(), writer.clone(), settings.sessions);
    let runtime: Arc<dyn PluginRuntime> = Arc::new(RemoteRuntime {
        conn,
        stop: stop.clone(),
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let uid = plugin.uid.clone();
    let installation_id = {
        let transition = shared.transitions.lock().await;
        match shared.host.connected(&plugin).await {
            Ok(installation_id) => {
                shared.owners().insert(uid.clone(), id);
                shared.runtimes.attach(&uid, runtime.clone());
                shared.runtimes.lifecycle().emit(
                    &uid,
                    RuntimeKind::Remote,
                    LifecycleKind::DebuggingConnected {
                        tenant_id: plugin.tenant_id.clone(),
                    },
                );
                installation_id
            }
            Err(text) => {
                drop(transition);
                tracing::info!(%peer, plugin = %uid, reason = %text, "debugging plugin not installed");
                refuse(&writer, &text, std::io::Cursor::new(rest).chain(read)).await;
                return;
            }
        }
    };
    tracing::info!(%peer, plugin = %uid, tenant = %plugin.tenant_id, "debugging plugin registered");

    let mut reader = LineReader::with_max_line_bytes(
        std::io::Cursor::new(rest).chain(read),
        settings.max_line_bytes,
    );
    let why = read_events(shared, &uid, &router, &mut reader, &stop).await;
    tracing::info!(%peer, plugin = %uid, reason = %why, "debugging plugin disconnected");
    router.close_all(&format!("Connection closed unexpectedly: {why}"));
    writer.close().await;
    drop(reader);

    let _transition = shared.transitions.lock().await;
    let still_ours = {
        let mut owners = shared.owners();
        let ours = owners.get(&uid) == Some(&id);
        if ours {
            owners.remove(&uid);
        }
        ours
    };
    if still_ours {
        shared.runtimes.detach(&uid, &runtime);
        let lifecycle = shared.runtimes.lifecycle();
        lifecycle.emit(
            &uid,
            RuntimeKind::Remote,
            LifecycleKind::DebuggingDisconnected {
                tenant_id: plugin.tenant_id.clone(),
            },
        );
        lifecycle.emit(&uid, RuntimeKind::Remote, LifecycleKind::PluginStopped);
        shared.host.disconnected(&plugin, &installation_id).await;
    }
    drop(slot);
}

/// Reads the plugin's events until the connection ends; returns why it ended.
async fn read_events<R: AsyncRead + Unpin>(
    shared: &Shared,
    uid: &plugind_entities::PluginUniqueIdentifier,
    router: &SessionRouter,
    reader: &mut LineReader<R>,
    stop: &CancellationToken,
) -> String {
    let limit = shared.settings.heartbeat_timeout;
    let mut last_heartbeat = Instant::now();
    let mut check = tokio::time::interval(
        (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(15)),
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => return "the daemon closed the connection".into(),
            _ = check.tick() => {
                if last_heartbeat.elapsed() > limit {
                    return format!("no heartbeat for {} s", limit.as_secs());
                }
            }
            item = reader.next_line() => match item {
                None => return "the plugin closed the connection".into(),
                Some(Err(FrameError::Io(e))) => return format!("reading failed: {e}"),
                Some(Err(FrameError::TooLong { len, max, head })) => {
                    too_long(uid, router, len, max, &head);
                }
                Some(Ok(line)) => {
                    if handle_line(shared, uid, router, &line) {
                        last_heartbeat = Instant::now();
                    }
                }
            }
        }
    }
}

/// One event line; true for a heartbeat.
fn handle_line(
    shared: &Shared,
    uid: &plugind_entities::PluginUniqueIdentifier,
    router: &SessionRouter,
    line: &[u8],
) -> bool {
    let event = match PluginEvent::parse(line) {
        Ok(event) => event,
        Err(stray) => {
            tracing::debug!(plugin = %uid, line = %stray.excerpt, "non-event line from a debugging plugin ignored");
            return false;
        }
    };
    match event.kind() {
        EventKind::Heartbeat => {
            shared.runtimes.lifecycle().emit(
                uid,
                RuntimeKind::Remote,
                LifecycleKind::Heartbeat { pid: 0 },
            );
            return true;
        }
        // Remote logs stay on the developer's console (upstream ignores them too).
        EventKind::Log | EventKind::Other => {}
        EventKind::Error => {
            tracing::warn!(plugin = %uid, session_id = ?event.session_id, error = %event.data, "debugging plugin reported an error");
        }
        EventKind::Session => route_session(uid, router, event.session_id, event.data, line.len()),
    }
    false
}

fn route_session(
    uid: &plugind_entities::PluginUniqueIdentifier,
    router: &SessionRouter,
    session_id: Option<String>,
    data: Value,
    size: usize,
) {
    let Some(session_id) = session_id else {
        tracing::warn!(plugin = %uid, "session event without session_id dropped");
        return;
    };
    let message = match SessionMessage::from_value(data) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(plugin = %uid, session_id, error = %e, "undecodable session message dropped");
            return;
        }
    };
    let event = match message.kind {
        SessionMessageType::Stream => SessionEvent::Stream(message.data.into()),
        SessionMessageType::End => SessionEvent::End,
        SessionMessageType::Error => SessionEvent::Error(message.data),
        SessionMessageType::Invoke => SessionEvent::Invoke(message.data),
        SessionMessageType::Unknown(kind) => SessionEvent::Error(json!({
            "error_type": "unknown_stream_message_type",
            "message": format!("unknown stream message type: {kind}"),
            "args": {},
        })),
    };
    if !router.route(&session_id, event, size) {
        tracing::debug!(plugin = %uid, session_id, "message for an ended or unknown session dropped");
    }
}

/// An oversized event line was skipped: the session it names (if any) fails, the others go on.
fn too_long(
    uid: &plugind_entities::PluginUniqueIdentifier,
    router: &SessionRouter,
    len: usize,
    max: usize,
    head: &[u8],
) {
    let head = String::from_utf8_lossy(head);
    let session_id = SESSION_ID_RE
        .as_ref()
        .and_then(|re| re.captures(&head))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned());
    tracing::warn!(plugin = %uid, len, max, session_id = ?session_id, "debugging plugin line too long; skipped");
    if let Some(session_id) = session_id {
        let message = format!("plugin output line of {len} bytes exceeds the limit of {max} bytes");
        router.route(
            &session_id,
            SessionEvent::Error(
                json!({"error_type": "PluginDaemonInnerError", "message": message, "args": {}}),
            ),
            0,
        );
    }
}
