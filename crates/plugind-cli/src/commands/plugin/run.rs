//! `plugin run <pkg.difypkg>`: start a package locally with plugind-runtime (temporary working
//! path, real venv, real SDK) and serve invocations as JSON lines on stdin/stdout or over TCP on
//! 127.0.0.1 (random port). Backwards invocations are answered with a mocked error.
//!
//! Request line: `{"invoke_id","type","action","request":{…}}` — `request` is the action's
//! `data` (plugin-protocol §3.2); `type`, `action` and (when missing) `user_id` are added.
//! Answer lines: `{"invoke_id","type","response":{…}}` with type `info`, `plugin_ready`,
//! `error`, `plugin_response` or `plugin_invoke_end` (`-r json`), or `[type] {…}` (`-r text`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use plugind_package::DecodeOptions;
use plugind_runtime::{PluginHandle, RuntimeConfig, Runtimes, SessionEvent, SessionRequest};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunMode {
    Stdio,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResponseFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The .difypkg to run.
    pub package: PathBuf,
    /// stdio: requests on stdin, answers on stdout; tcp: a listener on 127.0.0.1 (random port).
    #[arg(short = 'm', long = "mode", value_enum, default_value = "stdio")]
    pub mode: RunMode,
    /// Show the runtime's and the plugin's logs on stderr.
    #[arg(short = 'l', long = "enable-logs")]
    pub enable_logs: bool,
    /// Answer lines as `[type] {…}` (text) or JSON objects (json).
    #[arg(
        short = 'r',
        long = "response-format",
        value_enum,
        default_value = "text"
    )]
    pub response_format: ResponseFormat,
}

fn line(format: ResponseFormat, invoke_id: &str, kind: &str, response: Value) -> String {
    match format {
        ResponseFormat::Json => {
            json!({"invoke_id": invoke_id, "type": kind, "response": response}).to_string()
        }
        ResponseFormat::Text => format!("[{kind}] {response}"),
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Runtime settings from the daemon's environment variables, with a temporary working path and
/// uv's usual cache (so repeated runs do not download the SDK again).
fn runtime_config(working_path: PathBuf) -> RuntimeConfig {
    let mut cfg = RuntimeConfig::new(working_path);
    cfg.uv_path = env_path("UV_PATH");
    cfg.python_interpreter_path = env_path("PYTHON_INTERPRETER_PATH");
    if let Some(cache) = env_path("UV_CACHE_DIR").or_else(|| {
        env_path("XDG_CACHE_HOME")
            .or_else(|| env_path("HOME").map(|h| h.join(".cache")))
            .map(|c| c.join("uv"))
    }) {
        cfg.uv_cache_dir = cache;
    }
    cfg.pip_mirror_url = std::env::var("PIP_MIRROR_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if let Some(secs) = std::env::var("PYTHON_ENV_INIT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        cfg.env_init_timeout = Duration::from_secs(secs);
    }
    cfg.launch_concurrency = 1;
    cfg
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.package)
        .with_context(|| format!("cannot read {}", args.package.display()))?;
    let pkg = plugind_package::decode(
        &bytes,
        &DecodeOptions {
            max_uncompressed_size: u64::MAX,
            ..DecodeOptions::default()
        },
    )
    .with_context(|| format!("{} is not a valid plugin package", args.package.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix("dify-plugin-run-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(serve(args, bytes, pkg, tmp.path().to_path_buf()));
    drop(rt);
    drop(tmp);
    result
}

async fn serve(
    args: RunArgs,
    bytes: Vec<u8>,
    pkg: plugind_package::Package,
    working_path: PathBuf,
) -> anyhow::Result<()> {
    let format = args.response_format;
    eprintln!(
        "{}",
        line(
            format,
            "",
            "info",
            json!({"info": format!("loading plugin {}", pkg.uid)})
        )
    );
    let runtimes = Runtimes::new(runtime_config(working_path));
    let progress = move |m: String| {
        eprintln!("{}", line(format, "", "info", json!({"info": m})));
    };
    let launched = tokio::select! {
        r = runtimes.launch(&pkg.uid, &bytes, &pkg.declaration, &progress) => r,
        _ = shutdown_signal() => {
            runtimes.shutdown().await;
            bail!("interrupted");
        }
    };
    if let Err(e) = launched {
        runtimes.shutdown().await;
        bail!("cannot start the plugin: {e}");
    }
    let Some(handle) = runtimes.get(&pkg.uid) else {
        bail!("the plugin stopped right after starting");
    };

    let served = match args.mode {
        RunMode::Stdio => {
            tokio::select! {
                r = serve_client(handle, tokio::io::stdin(), tokio::io::stdout(), format) => r,
                _ = shutdown_signal() => Ok(()),
            }
        }
        RunMode::Tcp => {
            tokio::select! {
                r = serve_tcp(handle, format) => r,
                _ = shutdown_signal() => Ok(()),
            }
        }
    };
    runtimes.shutdown().await;
    served
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn serve_tcp(handle: PluginHandle, format: ResponseFormat) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    println!(
        "{}",
        line(
            format,
            "",
            "info",
            json!({"info": format!("plugin is running on {addr}"), "host": addr.ip().to_string(), "port": addr.port()}),
        )
    );
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tracing::info!(%peer, "client connected");
        let handle = handle.clone();
        tokio::spawn(async move {
            let (r, w) = stream.into_split();
            if let Err(e) = serve_client(handle, r, w, format).await {
                tracing::warn!(%peer, error = %e, "client ended with an error");
            }
        });
    }
}

/// One client: `plugin_ready`, then one invocation per request line; returns after the input
/// ends and every invocation has answered.
async fn serve_client<R, W>(
    handle: PluginHandle,
    reader: R,
    writer: W,
    format: ResponseFormat,
) -> anyhow::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer_task = tokio::spawn(async move {
        let mut writer = writer;
        while let Some(mut l) = rx.recv().await {
            l.push('\n');
            if writer.write_all(l.as_bytes()).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
    });
    let out = Out { tx, format };
    out.send("", "plugin_ready", json!({"info": "plugin loaded"}));

    let user_id = uuid::Uuid::new_v4().to_string();
    let mut lines = BufReader::new(reader).lines();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(text) = lines
        .next_line()
        .await
        .context("cannot read a request line")?
    {
        if text.trim().is_empty() {
            continue;
        }
        out.send("", "info", json!({"info": "received request"}));
        let parsed: Result<Value, _> = serde_json::from_str(&text);
        let request = match parsed {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                out.send(
                    "",
                    "error",
                    json!({"error": "a request must be a JSON object"}),
                );
                continue;
            }
            Err(e) => {
                out.send("", "error", json!({"error": format!("invalid JSON: {e}")}));
                continue;
            }
        };
        let invoke_id = request
            .get("invoke_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let kind = request.get("type").and_then(Value::as_str).unwrap_or("");
        let action = request.get("action").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() || action.is_empty() {
            out.send(
                &invoke_id,
                "error",
                json!({"error": "action and type are required"}),
            );
            continue;
        }
        let mut data = match request.get("request") {
            Some(Value::Object(o)) => o.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                out.send(
                    &invoke_id,
                    "error",
                    json!({"error": "request must be a JSON object"}),
                );
                continue;
            }
        };
        data.entry("user_id")
            .or_insert_with(|| Value::String(user_id.clone()));
        data.insert("type".into(), Value::String(kind.to_owned()));
        data.insert("action".into(), Value::String(action.to_owned()));
        let handle = handle.clone();
        let out = out.clone();
        tasks.spawn(invoke(handle, out, invoke_id, Value::Object(data)));
    }
    while tasks.join_next().await.is_some() {}
    drop(out);
    let _ = writer_task.await;
    Ok(())
}

#[derive(Clone)]
struct Out {
    tx: mpsc::UnboundedSender<String>,
    format: ResponseFormat,
}

impl Out {
    fn send(&self, invoke_id: &str, kind: &str, response: Value) {
        let _ = self.tx.send(line(self.format, invoke_id, kind, response));
    }
}

async fn invoke(handle: PluginHandle, out: Out, invoke_id: String, data: Value) {
    let req = SessionRequest {
        session_id: uuid::Uuid::new_v4().to_string(),
        data,
        ..SessionRequest::default()
    };
    let mut session = match handle.open_session(req).await {
        Ok(s) => s,
        Err(e) => {
            out.send(&invoke_id, "error", json!({"error": e.to_string()}));
            out.send(
                &invoke_id,
                "plugin_invoke_end",
                json!({"info": "plugin invoke end"}),
            );
            return;
        }
    };
    while let Some(event) = session.next().await {
        match event {
            SessionEvent::Stream(raw) => {
                let v = raw.to_value().unwrap_or(Value::Null);
                let v = if v.is_object() { v } else { json!({"data": v}) };
                out.send(&invoke_id, "plugin_response", v);
            }
            SessionEvent::Error(v) => {
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string());
                let mut resp = Map::new();
                resp.insert("error".into(), Value::String(message));
                if let Some(t) = v.get("error_type") {
                    resp.insert("error_type".into(), t.clone());
                }
                if let Some(a) = v.get("args") {
                    resp.insert("args".into(), a.clone());
                }
                out.send(&invoke_id, "error", Value::Object(resp));
            }
            SessionEvent::Invoke(v) => {
                let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
                let id = v
                    .get("backwards_request_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                out.send(
                    &invoke_id,
                    "info",
                    json!({"info": format!("backwards invocation {kind} answered with a mocked error"), "request": v}),
                );
                let message = format!(
                    "backwards invocation {kind} is not available in `dify plugin run` (mocked)"
                );
                let error = json!({"backwards_request_id": id, "event": "error", "message": message, "data": null});
                let end = json!({"backwards_request_id": id, "event": "end", "message": "", "data": null});
                for answer in [error, end] {
                    if let Err(e) = session.send_backwards_response(answer).await {
                        out.send(&invoke_id, "error", json!({"error": e.to_string()}));
                        break;
                    }
                }
            }
            SessionEvent::End => break,
            SessionEvent::Closed(why) | SessionEvent::Aborted(why) => {
                out.send(&invoke_id, "error", json!({"error": why}));
                break;
            }
        }
    }
    out.send(
        &invoke_id,
        "plugin_invoke_end",
        json!({"info": "plugin invoke end"}),
    );
}
