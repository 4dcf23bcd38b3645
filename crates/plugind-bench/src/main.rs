//! `plugind-bench`: measures, in one run on one machine,
//! - tool invokes through the daemon (HTTP + SSE) at concurrency 1, 10 and 100, against the same
//!   requests written straight to one plugin process's stdin by a tiny driver (the floor);
//! - a streaming workload: a synthetic LLM on the real SDK streaming a fixed number of chunks
//!   per call (no sleep, and a sleep between chunks), through `dispatch/llm/invoke` and through
//!   the driver, with chunks/s, time to first chunk, the daemon's CPU per chunk
//!   (`/proc/<pid>/stat`) and its RSS before, at peak and after;
//! - install time split by step, start-up time, RSS with stalled callers;
//! - optionally a `perf` profile of the daemon under the streaming load.
//!
//! With two or more cores the daemon (and this client) run on core 0 and every plugin process
//! on core 1. The report of this run replaces the section with the same `--label` in the output
//! file; the other sections (earlier runs) are kept.
//!
//! Run: `cargo build --release --bins && ./target/release/plugind-bench --label after`

mod direct;
mod report;
mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use plugind_test_support::{
    pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, Variant, ECHO_PLUGIN_ID,
};
use serde_json::{json, Value};

use crate::report::{Install, Profile, Report, Row, Stalled, StreamRow};

const TENANT: &str = "5b5b5b5b-1111-4222-8333-944455556666";

#[derive(Parser)]
struct Args {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/PERFORMANCE.md")]
    out: PathBuf,
    /// Name of this run's section in the report (a section with the same name is replaced).
    #[arg(long, default_value = "current")]
    label: String,
    /// Tool requests per concurrency level.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Chunks per call of the streaming workload without sleep.
    #[arg(long, default_value_t = 400)]
    chunks: usize,
    /// Calls per concurrency level of the streaming workload (at least the concurrency).
    #[arg(long, default_value_t = 100)]
    stream_calls: usize,
    /// Record a `perf` profile of the daemon during the streaming load (needs `perf`).
    #[arg(long)]
    profile: bool,
    /// Extra environment for the daemon (`KEY=VALUE`, repeatable), e.g. allocator settings.
    #[arg(long = "daemon-env")]
    daemon_env: Vec<String>,
    /// The commit the daemon binary was built from (default: this checkout's HEAD).
    #[arg(long)]
    commit: Option<String>,
    /// The daemon binary (default: `plugind` next to this binary).
    #[arg(long)]
    daemon: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let daemon_bin = match &args.daemon {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("plugind"),
    };
    if !daemon_bin.exists() {
        bail!(
            "{} not found: run `cargo build --release --bins` first",
            daemon_bin.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pinned = cores >= 2;
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir()?;
    let mut extra_env = Vec::new();
    for kv in &args.daemon_env {
        let (k, v) = kv.split_once('=').context("--daemon-env wants KEY=VALUE")?;
        extra_env.push((k.to_owned(), v.to_owned()));
    }
    let opts = DaemonOptions {
        data_dir: dir.path().to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env,
    };
    let mut daemon = Daemon::start(&daemon_bin, opts, &dify).await?;
    let client = Client::new(&daemon.base_url, &daemon.server_key);

    // Installs: the first finds the interpreter, the second should find it cached.
    let tool_body = |text: &str| {
        json!({"user_id": "u", "data": {"provider": "echo", "tool": "echo", "credentials": {},
        "credential_type": "api-key", "tool_parameters": {"text": text, "mode": "text"}}})
    };
    let llm_body = json!({"user_id": "u", "data": stream::dify_data(3, 0)});
    let (echo_uid, echo_install) = install(
        &client,
        "echo tool (first install: interpreter discovery)",
        pack_fixture(Variant::Latest),
        ECHO_PLUGIN_ID,
        "tool/invoke",
        tool_body("bench"),
    )
    .await?;
    let (llm_uid, llm_install) = install(
        &client,
        "stream LLM (second install, same Python)",
        stream::package(),
        stream::PLUGIN_ID,
        "llm/invoke",
        llm_body,
    )
    .await?;

    // Start-up: restart the daemon and time until the installed plugin answers.
    daemon.stop().await?;
    if pinned {
        // Installs ran unpinned. From here on this client and the restarted daemon share core 0
        // (the daemon inherits it); its plugin processes are moved to core 1 below.
        pin(std::process::id(), 0)?;
    }
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
    // Wait for the stream LLM too, then move every plugin process to core 1.
    let http = reqwest::Client::builder().no_proxy().build()?;
    let llm_url = format!("{}/plugin/{TENANT}/dispatch/llm/invoke", daemon.base_url);
    let warm = json!({"user_id": "u", "data": stream::dify_data(3, 0)}).to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stream::through_daemon(&http, &llm_url, &daemon.server_key, &warm, 3)
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("stream LLM did not come back after restart");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if pinned {
        for pid in descendants(daemon_pid) {
            pin(pid, 1)?;
        }
    }

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

        let working_dir = working_dir(dir.path(), &echo_uid)?;
        let driver = Arc::new(direct::Driver::spawn(&working_dir).await?);
        if pinned {
            pin(driver.pid().context("driver pid")?, 1)?;
        }
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

    // The streaming workload.
    let llm_dir = working_dir(dir.path(), &llm_uid)?;
    let key = daemon.server_key.clone();
    let mut stream_rows = Vec::new();
    let rss_stream_before = rss_kib(daemon_pid);
    let mut rss_stream_peak = 0;
    for (chunks, sleep_ms) in [(args.chunks, 0u64), (50, 10)] {
        for concurrency in [1usize, 10, 100] {
            let calls = args.stream_calls.max(concurrency);
            let body =
                json!({"user_id": "u", "data": stream::dify_data(chunks, sleep_ms)}).to_string();
            let sampler = RssSampler::start(daemon_pid);
            let cpu_before = cpu_ticks(daemon_pid);
            let daemon_calls = run_stream(calls, concurrency, {
                let (http, url, key, body) = (http.clone(), llm_url.clone(), key.clone(), body);
                move || {
                    let (http, url, key, body) =
                        (http.clone(), url.clone(), key.clone(), body.clone());
                    async move {
                        let call = stream::through_daemon(&http, &url, &key, &body, chunks).await?;
                        Ok((call.streamed, call.reads))
                    }
                }
            })
            .await?;
            let cpu = cpu_ticks(daemon_pid).saturating_sub(cpu_before);
            rss_stream_peak = rss_stream_peak.max(sampler.stop().await);

            let driver = Arc::new(direct::Driver::spawn(&llm_dir).await?);
            if pinned {
                pin(driver.pid().context("driver pid")?, 1)?;
            }
            let direct_calls = run_stream(calls, concurrency, {
                let driver = driver.clone();
                let data = stream::plugin_data(chunks, sleep_ms);
                move || {
                    let (driver, data) = (driver.clone(), data.clone());
                    async move { Ok((driver.call(data).await?, 0)) }
                }
            })
            .await?;
            drop(driver);
            stream_rows.push(StreamRow {
                chunks,
                sleep_ms,
                concurrency,
                daemon: daemon_calls,
                direct: direct_calls,
                daemon_cpu: ticks_to_duration(cpu),
            });
        }
    }

    let profile = if args.profile {
        Some(profile_streaming(daemon_pid, &http, &llm_url, &key, args.chunks).await?)
    } else {
        None
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_stream_after = rss_kib(daemon_pid);

    let stalled = stalled_callers(&daemon, daemon_pid).await?;

    let report = Report {
        label: args.label.clone(),
        commit: args.commit.clone().unwrap_or_else(git_head),
        pinned,
        daemon_env: args.daemon_env.clone(),
        stalled,
        rows,
        stream_rows,
        rss_idle_kib: rss_idle,
        rss_load_kib: rss_load,
        rss_stream_kib: [rss_stream_before, rss_stream_peak, rss_stream_after],
        installs: vec![echo_install, llm_install],
        profile,
        startup,
        requests: args.requests,
        stream_calls: args.stream_calls,
    };
    let section = report.markdown();
    let previous = std::fs::read_to_string(&args.out).unwrap_or_default();
    let text = report::merge(&previous, &args.label, &section);
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &text)?;
    println!("{section}");
    Ok(())
}

/// Uploads and installs a package, then times its first successful invoke; the install task
/// is polled every 20 ms.
async fn install(
    client: &Client,
    what: &str,
    package: Vec<u8>,
    plugin_id: &str,
    action: &str,
    body: Value,
) -> anyhow::Result<(String, Install)> {
    let started = Instant::now();
    let (_, resp) = client.upload_package(TENANT, package, false).await?;
    let uid = resp["data"]["unique_identifier"]
        .as_str()
        .with_context(|| format!("upload failed: {resp}"))?
        .to_owned();
    let upload = started.elapsed();
    let (status, body_install) = client
        .post_json(
            &format!("plugin/{TENANT}/management/install/identifiers"),
            json!({"plugin_unique_identifiers": [uid], "source": "package", "metas": [{}]}),
        )
        .await?;
    let task_id = body_install["data"]["task_id"]
        .as_str()
        .with_context(|| format!("install: HTTP {status} {body_install}"))?
        .to_owned();
    let message = loop {
        let (_, task) = client
            .get(&format!(
                "plugin/{TENANT}/management/install/tasks/{task_id}"
            ))
            .await?;
        match task["data"]["status"].as_str() {
            Some("success") => break task["data"]["plugins"][0]["message"].clone(),
            Some("failed") => bail!("install failed: {task}"),
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("install did not finish: {task}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let installed = started.elapsed();
    loop {
        let (status, events) = client
            .dispatch(TENANT, plugin_id, action, body.clone())
            .await?;
        if status == 200 && events.first().is_some_and(|e| e["code"] == 0) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("no successful invoke after install: {status} {events:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((
        uid,
        Install {
            what: what.to_owned(),
            upload,
            installed,
            first_invoke: started.elapsed(),
            steps: message.as_str().unwrap_or_default().to_owned(),
        },
    ))
}

/// Profiles the daemon with `perf record` during 10 concurrent streaming callers and keeps the
/// hottest symbols.
async fn profile_streaming(
    pid: u32,
    http: &reqwest::Client,
    url: &str,
    key: &str,
    chunks: usize,
) -> anyhow::Result<Profile> {
    let data = tempfile::tempdir()?;
    let perf_data = data.path().join("perf.data");
    let seconds = 8;
    let mut record = tokio::process::Command::new("perf")
        .args(["record", "-F", "1999", "-g", "-o"])
        .arg(&perf_data)
        .args(["-p", &pid.to_string(), "--", "sleep", &seconds.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("perf record (apt-get install linux-perf)")?;
    let body = json!({"user_id": "u", "data": stream::dify_data(chunks, 0)}).to_string();
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..10 {
        let (http, url, key, body) = (http.clone(), url.to_owned(), key.to_owned(), body.clone());
        workers.push(tokio::spawn(async move {
            while Instant::now() < until {
                stream::through_daemon(&http, &url, &key, &body, chunks).await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    record.wait().await?;
    let out = tokio::process::Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "symbol",
            "-g",
            "none",
            "--percent-limit",
            "1.5",
            "-i",
        ])
        .arg(&perf_data)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let top = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(25)
        .map(|l| l.trim().to_owned())
        .collect();
    Ok(Profile { seconds, top })
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

/// Streamed calls of one level: each call's time to first chunk, chunks, body reads.
pub struct StreamLoad {
    pub first_chunks: Vec<Duration>,
    pub chunks: usize,
    pub reads: usize,
    pub calls: usize,
    pub wall: Duration,
}

async fn run_stream<F, Fut>(total: usize, concurrency: usize, call: F) -> anyhow::Result<StreamLoad>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<(direct::Streamed, usize)>> + Send,
{
    let per_worker = total.div_ceil(concurrency);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                out.push(call().await?);
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut load = StreamLoad {
        first_chunks: Vec::new(),
        chunks: 0,
        reads: 0,
        calls: 0,
        wall: Duration::ZERO,
    };
    for worker in workers {
        for (streamed, reads) in worker.await?? {
            load.first_chunks.push(streamed.first_chunk);
            load.chunks += streamed.chunks;
            load.reads += reads;
            load.calls += 1;
        }
    }
    load.wall = started.elapsed();
    Ok(load)
}

fn working_dir(data_dir: &Path, uid: &str) -> anyhow::Result<PathBuf> {
    let (id, rest) = uid.split_once(':').context("uid")?;
    let dir = data_dir.join("cwd").join(format!("{id}-{rest}"));
    if !dir.join(".venv").exists() {
        bail!("no venv in {}", dir.display());
    }
    Ok(dir)
}

/// Pins every thread of `pid` to `core` (`taskset`).
fn pin(pid: u32, core: usize) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("taskset")?;
    if !status.success() {
        bail!("taskset {pid} to core {core} failed");
    }
    Ok(())
}

/// Every process below `pid`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((child, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, ppid) in &parents {
            if ppid == p {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14, stime 15.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

fn ticks_to_duration(ticks: u64) -> Duration {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    });
    Duration::from_secs_f64(ticks as f64 / hz.max(1) as f64)
}

fn git_head() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
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
