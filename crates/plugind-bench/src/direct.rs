//! The floor: a tiny driver that talks to one plugin process over its stdin/stdout directly,
//! with the same request the daemon would send, and no daemon in between.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

/// What the driver tells a waiting call: a `stream` chunk arrived, or the session ended.
enum Seen {
    Chunk,
    End,
}

type Waiters = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Seen>>>>;

/// The few fields the driver reads of a plugin line, borrowed.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// One streamed call through the driver: time to its first chunk and how many chunks came.
pub struct Streamed {
    pub first_chunk: Duration,
    pub chunks: usize,
}

pub struct Driver {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    waiters: Waiters,
}

impl Driver {
    /// Starts `python -m main` in an installed working directory and waits for its heartbeat.
    pub async fn spawn(working_dir: &Path) -> anyhow::Result<Driver> {
        let mut child = Command::new(working_dir.join(".venv/bin/python"))
            .args(["-m", "main"])
            .current_dir(working_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INSTALL_METHOD", "local")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawn plugin")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let waiters: Waiters = Arc::default();
        let (ready_tx, ready_rx) = oneshot::channel();
        let routes = waiters.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::with_capacity(64 * 1024, stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Line<'_>>(&line) else {
                    continue;
                };
                match event.event.as_deref() {
                    Some("heartbeat") => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Some("session") => {
                        let id = event.session_id.as_deref().unwrap_or_default();
                        let kind = event.data.and_then(|d| d.kind);
                        let seen = match kind.as_deref() {
                            Some("stream") => Seen::Chunk,
                            Some("end") => Seen::End,
                            _ => continue,
                        };
                        let end = matches!(seen, Seen::End);
                        let Ok(mut waiters) = routes.lock() else {
                            return;
                        };
                        if let Some(tx) = waiters.get(id) {
                            let _ = tx.send(seen);
                        }
                        if end {
                            waiters.remove(id);
                        }
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(60), ready_rx)
            .await
            .context("no heartbeat")??;
        Ok(Driver {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            waiters,
        })
    }

    /// The plugin process id (to pin it to a core).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// One echo tool invoke, returning when the plugin's `end` arrives.
    pub async fn invoke(&self, text: &str) -> anyhow::Result<()> {
        let data = json!({"user_id": "u", "type": "tool", "action": "invoke_tool", "provider": "echo", "tool": "echo",
                 "credentials": {}, "credential_type": "api-key", "tool_parameters": {"text": text, "mode": "text"}});
        self.call(data).await.map(drop)
    }

    /// One request with `data` (the plugin's `data`, with `type` and `action`); returns when
    /// the plugin's `end` arrives.
    pub async fn call(&self, data: Value) -> anyhow::Result<Streamed> {
        let session_id = uuid::Uuid::new_v4().to_string();
        let line = json!({"session_id": session_id, "conversation_id": null, "message_id": null, "app_id": null,
            "endpoint_id": null, "context": null, "event": "request", "data": data});
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.waiters
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(session_id, tx);
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        let started = Instant::now();
        self.stdin.lock().await.write_all(&bytes).await?;
        let mut first_chunk = None;
        let mut chunks = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(120), rx.recv()).await {
                Ok(Some(Seen::Chunk)) => {
                    first_chunk.get_or_insert_with(|| started.elapsed());
                    chunks += 1;
                }
                Ok(Some(Seen::End)) => break,
                _ => bail!("no end from plugin"),
            }
        }
        Ok(Streamed {
            first_chunk: first_chunk.unwrap_or_else(|| started.elapsed()),
            chunks,
        })
    }
}
