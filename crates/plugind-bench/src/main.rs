//! `plugind-bench`: measures, in one run on one machine,
//! (a) tool invokes through the daemon (HTTP + SSE) at concurrency 1, 10 and 100, against
//! (b) the same requests written straight to one plugin process's stdin by a tiny driver (the
//! floor), plus the daemon's RSS idle and under load and the time from daemon start to the first
//! successful invoke of an installed plugin. Writes a Markdown report.
//!
//! Run: `cargo build --release --bins && ./target/release/plugind-bench --out docs/PERFORMANCE.md`

mod direct;
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use plugind_test_support::{
    pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, Variant, ECHO_PLUGIN_ID,
};
use serde_json::json;

use crate::report::{Report, Row, Stalled};

const TENANT: &str = "5b5b5b5b-1111-4222-8333-944455556666";

#[derive(Parser)]
struct Args {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/PERFORMANCE.md")]
    out: PathBuf,
    /// Requests per concurrency level.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// The daemon binary (default: `plugind` next to this binary).
    #[arg(long)]
    daemon: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let daemon_bin = match args.daemon {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("plugind"),
    };
    if !daemon_bin.exists() {
        bail!(
            "{} not found: run `cargo build --release --bins` first",
            daemon_bin.display()
        );
    }
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir()?;
    let opts = DaemonOptions {
        data_dir: dir.path().to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: vec![],
    };
    let mut daemon = Daemon::start(&daemon_bin, opts, &dify).await?;
    let client = Client::new(&daemon.base_url, &daemon.server_key);

    let (_, resp) = client
        .upload_package(TENANT, pack_fixture(Variant::Latest), false)
        .await?;
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .context("upload failed")?
        .to_owned();
    let task = client
        .install_and_wait(TENANT, &uid, Duration::from_secs(600))
        .await?;
    if task["status"] != "success" {
        bail!("install failed: {task}");
    }
    invoke(&client).await?; // warm up

    // Start-up: restart the daemon and time until the installed plugin answers.
    daemon.stop().await?;
    let started = Instant::now();
    daemon.restart().await?;
    let client = Client::new(&daemon.base_url, &daemon.server_key);
    loop {
        if invoke(&client).await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("plugin did not come back after restart");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let startup = started.elapsed();

    let daemon_pid = daemon.pid().context("daemon pid")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(daemon_pid);

    let mut rows = Vec::new();
    let mut rss_load = 0;
    for concurrency in [1usize, 10, 100] {
        let sampler = RssSampler::start(daemon_pid);
        let through_daemon = run_load(args.requests, concurrency, {
            let client = client.clone();
            move || {
                let client = client.clone();
                async move { invoke(&client).await }
            }
        })
        .await?;
        rss_load = rss_load.max(sampler.stop().await);

        let working_dir = working_dir(dir.path(), &uid)?;
        let driver = Arc::new(direct::Driver::spawn(&working_dir).await?);
        let direct = run_load(args.requests, concurrency, {
            let driver = driver.clone();
            move || {
                let driver = driver.clone();
                async move { driver.invoke("bench").await }
            }
        })
        .await?;
        drop(driver);
        rows.push(Row {
            concurrency,
            daemon: through_daemon,
            direct,
        });
    }

    let stalled = stalled_callers(&daemon, daemon_pid).await?;

    let report = Report {
        stalled,
        rows,
        rss_idle_kib: rss_idle,
        rss_load_kib: rss_load,
        startup,
        requests: args.requests,
    };
    let text = report.markdown();
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &text)?;
    println!("{text}");
    Ok(())
}

/// Opens streams whose callers never read (each would carry 2000 chunks of 20 kB), samples the
/// daemon's RSS while the plugin answers them, then closes them and measures again.
async fn stalled_callers(daemon: &Daemon, pid: u32) -> anyhow::Result<Stalled> {
    use tokio::io::AsyncWriteExt;
    const CLIENTS: usize = 20;
    const CHUNKS: usize = 2000;
    const CHUNK_BYTES: usize = 20_000;
    let body = json!({"user_id": "u", "data": {"provider": "echo", "tool": "echo", "credentials": {},
        "credential_type": "api-key", "tool_parameters": {"text": format!("{CHUNKS}:{CHUNK_BYTES}"), "mode": "stream"}}})
    .to_string();
    let authority = daemon.base_url.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /plugin/{TENANT}/dispatch/tool/invoke HTTP/1.1\r\nHost: {authority}\r\nX-Api-Key: {}\r\nX-Plugin-ID: {ECHO_PLUGIN_ID}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        daemon.server_key,
        body.len()
    );
    let sampler = RssSampler::start(pid);
    let mut streams = Vec::new();
    for _ in 0..CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(&authority).await?;
        stream.write_all(request.as_bytes()).await?;
        streams.push(stream);
    }
    // The plugin answers the streams one after another; give it time to send all it can.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rss_peak_kib = sampler.stop().await;
    drop(streams);
    tokio::time::sleep(Duration::from_secs(3)).await;
    Ok(Stalled {
        clients: CLIENTS,
        bytes_each: CHUNKS * CHUNK_BYTES,
        buffer_limit: "8 MiB default",
        rss_peak_kib,
        rss_after_kib: rss_kib(pid),
    })
}

/// One tool invoke through the daemon; Ok when the stream carried the echo and ended.
async fn invoke(client: &Client) -> anyhow::Result<()> {
    let body = json!({"user_id": "u", "data": {"provider": "echo", "tool": "echo", "credentials": {},
        "credential_type": "api-key", "tool_parameters": {"text": "bench", "mode": "text"}}});
    let (status, events) = client
        .dispatch(TENANT, ECHO_PLUGIN_ID, "tool/invoke", body)
        .await?;
    match events.first() {
        Some(e) if status == 200 && e["code"] == 0 => Ok(()),
        other => bail!("invoke failed: {status} {other:?}"),
    }
}

/// Latencies of `total` calls of `call`, `concurrency` at a time, and the wall time.
pub struct Load {
    pub latencies: Vec<Duration>,
    pub wall: Duration,
}

async fn run_load<F, Fut>(total: usize, concurrency: usize, call: F) -> anyhow::Result<Load>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let per_worker = total.div_ceil(concurrency);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let t = Instant::now();
                call().await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(Load {
        latencies,
        wall: started.elapsed(),
    })
}

fn working_dir(data_dir: &Path, uid: &str) -> anyhow::Result<PathBuf> {
    let (id, rest) = uid.split_once(':').context("uid")?;
    let dir = data_dir.join("cwd").join(format!("{id}-{rest}"));
    if !dir.join(".venv").exists() {
        bail!("no venv in {}", dir.display());
    }
    Ok(dir)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms and reports the peak.
struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let (stop, mut rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(rss_kib(pid));
                tokio::select! {
                    _ = &mut rx => return peak,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or(0)
    }
}
