//! Remote-debugging plugins for tests (plugin-protocol §5):
//!
//! * [`sdk_fixture_dir`]: the echo fixture (latest SDK) assembled with its own venv, built once
//!   per test process; [`SdkPlugin`] runs it in remote mode against a daemon's debugging port.
//!   Every SDK version reads `INSTALL_METHOD=remote`, `REMOTE_INSTALL_HOST`,
//!   `REMOTE_INSTALL_PORT` and `REMOTE_INSTALL_KEY`; 0.10 also reads `REMOTE_INSTALL_URL`
//!   (which then wins), so the host/port pair is what this sets.
//! * [`RawPlugin`]: a tiny debugging plugin written here, speaking the protocol over a raw
//!   socket (registration, heartbeats, and a tool that answers `<tag>:<text>`), for tests that
//!   need many plugins without one Python process each.
//! * [`exchange`]: sends raw bytes to the debugging port and reads what comes back until the
//!   daemon closes (for refusals).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::fixtures::{assemble_fixture, test_cache_dir, Variant};

/// `<svg/>`, base64: the icon every [`RawPlugin`] sends.
const RAW_ICON_BASE64: &str = "PHN2Zy8+";

static SDK_FIXTURE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The latest-SDK echo fixture in a directory of this test process, with `.venv` synced from its
/// `uv.lock` (offline from the shared uv cache when it has the wheels). Built once per process.
pub fn sdk_fixture_dir() -> anyhow::Result<PathBuf> {
    SDK_FIXTURE
        .get_or_init(|| build_sdk_fixture().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

const SDK_DIR_PREFIX: &str = "plugind-remote-echo-";

fn build_sdk_fixture() -> anyhow::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    remove_stale_fixtures(&tmp);
    let dir = tmp.join(format!("{SDK_DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    assemble_fixture(Variant::Latest, &dir);
    let python = find_python("3.12")?;
    let uv_cache = test_cache_dir().join("uv");
    let run = |args: &[&str], extra: &[(&str, &Path)]| -> anyhow::Result<()> {
        let mut cmd = std::process::Command::new("uv");
        cmd.args(args)
            .current_dir(&dir)
            .env("UV_CACHE_DIR", &uv_cache)
            .env("UV_PYTHON_DOWNLOADS", "never");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running uv {args:?} (is uv on PATH?)"))?;
        if !out.status.success() {
            bail!(
                "uv {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    let venv = dir.join(".venv");
    let python = python.to_string_lossy().into_owned();
    run(&["venv", "-q", "--python", &python, ".venv"], &[])?;
    let venv_python = venv.join("bin").join("python");
    let venv_python = venv_python.to_string_lossy().into_owned();
    let sync = [
        "sync",
        "-q",
        "--no-dev",
        "--frozen",
        "--python",
        &venv_python,
    ];
    let env = [("UV_PROJECT_ENVIRONMENT", venv.as_path())];
    let mut offline = sync.to_vec();
    offline.push("--offline");
    if run(&offline, &env).is_err() {
        run(&sync, &env)?;
    }
    Ok(dir)
}

/// Removes fixture copies of test processes that are gone (each process builds its own).
fn remove_stale_fixtures(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SDK_DIR_PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A CPython `major.minor` interpreter: pyenv's, else `pythonX.Y` on `PATH`.
fn find_python(version: &str) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(home.join(".pyenv").join("versions")) {
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{version}."))
            })
            .map(|e| e.path().join("bin").join(format!("python{version}")))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return Ok(p);
        }
    }
    let name = format!("python{version}");
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("no Python {version} found (pyenv install {version} or put {name} on PATH)")
        })
}

/// The echo fixture running in remote mode (`python -m main` with `INSTALL_METHOD=remote`).
/// Killed (SIGKILL) when dropped.
pub struct SdkPlugin {
    child: tokio::process::Child,
}

impl SdkPlugin {
    /// Starts the SDK against the debugging listener on `127.0.0.1:port` with `key`.
    pub fn spawn(port: u16, key: &str) -> anyhow::Result<SdkPlugin> {
        let dir = sdk_fixture_dir()?;
        let child = tokio::process::Command::new(dir.join(".venv").join("bin").join("python"))
            .args(["-m", "main"])
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("INSTALL_METHOD", "remote")
            .env("REMOTE_INSTALL_HOST", "127.0.0.1")
            .env("REMOTE_INSTALL_PORT", port.to_string())
            .env("REMOTE_INSTALL_KEY", key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the SDK in remote mode")?;
        Ok(SdkPlugin { child })
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// The manifest a [`RawPlugin`] registers: a tool plugin `author/name` with one tool `echo`.
pub fn raw_manifest(author: &str, name: &str) -> Value {
    json!({
        "version": "0.0.1", "type": "plugin", "author": author, "name": name,
        "label": {"en_US": name}, "description": {"en_US": "raw debugging plugin"},
        "icon": "icon.svg", "created_at": "2025-01-01T00:00:00Z",
        "resource": {"memory": 1048576, "permission": {"storage": {"enabled": true, "size": 1048576}}},
        "plugins": {"tools": ["provider/echo.yaml"]},
        "meta": {"version": "0.0.1", "arch": ["amd64"],
                 "runner": {"language": "python", "version": "3.12", "entrypoint": "main"}},
        "tags": []
    })
}

/// The tool declaration a [`RawPlugin`] registers (provider `echo`, tool `echo`).
pub fn raw_tools(author: &str) -> Value {
    json!([{
        "identity": {"author": author, "name": "echo", "icon": "icon.svg",
                     "label": {"en_US": "Echo"}, "description": {"en_US": "Echo"}, "tags": []},
        "credentials_schema": [],
        "tools": [{"identity": {"author": author, "name": "echo", "label": {"en_US": "Echo"}},
                   "description": {"human": {"en_US": "echo"}, "llm": "echo"},
                   "parameters": []}]
    }])
}

/// One registration line.
pub fn register_line(kind: &str, data: Value) -> String {
    format!("{}\n", json!({"type": kind, "data": data}))
}

/// The lines of a whole registration with `key` for `author/name`, `end` included.
pub fn registration(key: &str, author: &str, name: &str) -> String {
    [
        register_line("handshake", json!({"key": key})),
        register_line("manifest_declaration", raw_manifest(author, name)),
        register_line("tool_declaration", raw_tools(author)),
        register_line(
            "asset_chunk",
            json!({"filename": "icon.svg", "data": RAW_ICON_BASE64, "end": true}),
        ),
        register_line("end", json!({})),
    ]
    .concat()
}

/// A debugging plugin written in Rust: registers, sends a heartbeat every `heartbeat` (none when
/// `None`), and answers every tool request with one text message `<tag>:<text>` and `end`.
/// Dropping it closes the connection.
pub struct RawPlugin {
    task: JoinHandle<()>,
    beats: Option<JoinHandle<()>>,
    /// Lines the daemon sent that were not requests (a refusal, say).
    pub other_lines: Arc<Mutex<Vec<String>>>,
}

impl RawPlugin {
    pub async fn connect(
        port: u16,
        key: &str,
        author: &str,
        name: &str,
        tag: &str,
        heartbeat: Option<Duration>,
    ) -> anyhow::Result<RawPlugin> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .context("connecting to the debugging port")?;
        let (read, mut write) = stream.into_split();
        write
            .write_all(registration(key, author, name).as_bytes())
            .await?;
        let write = Arc::new(Mutex::new(write));
        let other_lines = Arc::new(Mutex::new(Vec::new()));
        let tag = tag.to_owned();
        let beats = heartbeat.map(|every| tokio::spawn(beat(write.clone(), every)));
        let task = tokio::spawn(serve_raw(read, write, tag, other_lines.clone()));
        Ok(RawPlugin {
            task,
            beats,
            other_lines,
        })
    }

    /// True while the connection is open (the daemon has not closed it).
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }

    /// Waits until the daemon closes the connection.
    pub async fn closed(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RawPlugin {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(beats) = &self.beats {
            beats.abort();
        }
    }
}

async fn write_line(write: &Mutex<OwnedWriteHalf>, line: Value) -> std::io::Result<()> {
    let mut bytes = line.to_string().into_bytes();
    bytes.extend_from_slice(b"\n\n");
    write.lock().await.write_all(&bytes).await
}

/// Sends a heartbeat every `every` until writing fails.
async fn beat(write: Arc<Mutex<OwnedWriteHalf>>, every: Duration) {
    loop {
        let beat = json!({"event": "heartbeat", "session_id": null, "data": {}});
        if write_line(&write, beat).await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

async fn serve_raw(
    read: tokio::net::tcp::OwnedReadHalf,
    write: Arc<Mutex<OwnedWriteHalf>>,
    tag: String,
    other_lines: Arc<Mutex<Vec<String>>>,
) {
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            other_lines.lock().await.push(line);
            continue;
        };
        let Some(session) = msg["session_id"].as_str().map(str::to_owned) else {
            other_lines.lock().await.push(line);
            continue;
        };
        let text = msg["data"]["tool_parameters"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let stream = json!({"event": "session", "session_id": session, "data": {"type": "stream",
            "data": {"type": "text", "message": {"text": format!("{tag}:{text}")}, "meta": null}}});
        let end =
            json!({"event": "session", "session_id": session, "data": {"type": "end", "data": {}}});
        if write_line(&write, stream).await.is_err() || write_line(&write, end).await.is_err() {
            break;
        }
    }
}

/// Connects to the debugging port, sends `bytes`, and returns everything the daemon writes until
/// it closes the connection (at most `wait`).
pub async fn exchange(port: u16, bytes: &[u8], wait: Duration) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .context("connecting to the debugging port")?;
    stream.write_all(bytes).await?;
    let mut out = Vec::new();
    tokio::time::timeout(wait, stream.read_to_end(&mut out))
        .await
        .map_err(|_| anyhow!("the daemon did not close the connection within {wait:?}"))??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}
