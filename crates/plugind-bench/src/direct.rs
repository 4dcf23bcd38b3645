//! The floor: a tiny driver that talks to one plugin process over its stdin/stdout directly,
//! with the same request the daemon would send, and no daemon in between.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

pub struct Driver {
    _child: Child,
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
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                match event["event"].as_str() {
                    Some("heartbeat") => {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                    Some("session") if event["data"]["type"] == "end" => {
                        let id = event["session_id"].as_str().unwrap_or_default();
                        let waiter = routes.lock().ok().and_then(|mut w| w.remove(id));
                        if let Some(tx) = waiter {
                            let _ = tx.send(());
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
            _child: child,
            stdin: tokio::sync::Mutex::new(stdin),
            waiters,
        })
    }

    /// One echo invoke, returning when the plugin's `end` arrives.
    pub async fn invoke(&self, text: &str) -> anyhow::Result<()> {
        let session_id = uuid::Uuid::new_v4().to_string();
        let line = json!({"session_id": session_id, "conversation_id": null, "message_id": null, "app_id": null,
            "endpoint_id": null, "context": null, "event": "request",
            "data": {"user_id": "u", "type": "tool", "action": "invoke_tool", "provider": "echo", "tool": "echo",
                     "credentials": {}, "credential_type": "api-key", "tool_parameters": {"text": text, "mode": "text"}}});
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(session_id, tx);
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        self.stdin.lock().await.write_all(&bytes).await?;
        match tokio::time::timeout(Duration::from_secs(60), rx).await {
            Ok(Ok(())) => Ok(()),
            _ => bail!("no end from plugin"),
        }
    }
}
