//! Runs the `plugind` binary as a child process for integration tests.
//!
//! [`Daemon::start`] picks a free loopback port, spawns the binary in its own process group with
//! the configuration environment (upstream variable names, see [`daemon_env`]), captures its
//! stdout+stderr and waits until `GET /health/check` answers `{"status":"ok"}`. Dropping a
//! [`Daemon`] SIGKILLs every process group it started (the daemon and its plugin children).
//!
//! Set `PLUGIND_TEST_ECHO_LOG=1` to mirror the daemon's output to the test's stderr live.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;

use crate::fake_dify::FakeDify;
use crate::fixtures::{repo_root, test_cache_dir};

/// How long [`Daemon::start`] waits for a healthy `/health/check`.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Daemon::restart`] waits for the SIGTERMed daemon to exit before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_CAP: usize = 16 * 1024 * 1024;

/// Which database the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbChoice {
    /// The daemon's embedded default (SQLite under `PLUGIND_DATA_DIR`); no `DB_*` variables set.
    Sqlite,
    /// PostgreSQL on 127.0.0.1:5432, user `postgres`; see [`create_pg_database`].
    Postgres {
        /// Database name (must exist).
        database: String,
    },
}

/// What a daemon instance is started with.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// State directory (`PLUGIND_DATA_DIR`), usually a tempdir owned by the test.
    pub data_dir: PathBuf,
    /// Database choice.
    pub db: DbChoice,
    /// Extra variables, applied last (they override the defaults of [`daemon_env`]).
    pub extra_env: Vec<(String, String)>,
}

impl DaemonOptions {
    /// SQLite in `data_dir`, no extra variables.
    pub fn new(data_dir: impl Into<PathBuf>) -> DaemonOptions {
        DaemonOptions {
            data_dir: data_dir.into(),
            db: DbChoice::Sqlite,
            extra_env: Vec::new(),
        }
    }
}

/// The `plugind` binary of this workspace: `$CARGO_TARGET_DIR/debug/plugind`, else
/// `<repo>/target/debug/plugind`. (Tests inside the `plugind` crate should prefer
/// `env!("CARGO_BIN_EXE_plugind")`.)
pub fn daemon_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join("plugind")
}

/// The environment a daemon is started with (before `extra_env`), in this order:
/// `SERVER_HOST`, `SERVER_PORT`, `SERVER_KEY`, `DIFY_INNER_API_URL`, `DIFY_INNER_API_KEY`,
/// `PLUGIND_DATA_DIR`, the `DB_*` set for Postgres, `UV_CACHE_DIR`,
/// `PLUGIN_REMOTE_INSTALLING_ENABLED=false`, `FORCE_VERIFYING_SIGNATURE=false`, `RUST_LOG=info`.
pub fn daemon_env(
    port: u16,
    server_key: &str,
    opts: &DaemonOptions,
    dify_url: &str,
    dify_key: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("SERVER_HOST".into(), "127.0.0.1".into()),
        ("SERVER_PORT".into(), port.to_string()),
        ("SERVER_KEY".into(), server_key.into()),
        ("DIFY_INNER_API_URL".into(), dify_url.into()),
        ("DIFY_INNER_API_KEY".into(), dify_key.into()),
        (
            "PLUGIND_DATA_DIR".into(),
            opts.data_dir.to_string_lossy().into_owned(),
        ),
    ];
    if let DbChoice::Postgres { database } = &opts.db {
        env.extend([
            ("DB_TYPE".into(), "postgresql".into()),
            ("DB_HOST".into(), "127.0.0.1".into()),
            ("DB_PORT".into(), "5432".into()),
            ("DB_USERNAME".into(), "postgres".into()),
            ("DB_PASSWORD".into(), "postgres".into()),
            ("DB_DATABASE".into(), database.clone()),
        ]);
    }
    env.extend([
        (
            "UV_CACHE_DIR".into(),
            test_cache_dir().join("uv").to_string_lossy().into_owned(),
        ),
        ("PLUGIN_REMOTE_INSTALLING_ENABLED".into(), "false".into()),
        ("FORCE_VERIFYING_SIGNATURE".into(), "false".into()),
        ("RUST_LOG".into(), "info".into()),
    ]);
    env
}

/// Variables removed from the inherited environment so the host's settings cannot leak in.
const SCRUBBED: [&str; 8] = [
    "DB_TYPE",
    "DB_HOST",
    "DB_PORT",
    "DB_USERNAME",
    "DB_PASSWORD",
    "DB_DATABASE",
    "DB_URL",
    "DATABASE_URL",
];

/// A running daemon (see the module docs).
pub struct Daemon {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// `SERVER_KEY` (send as `X-Api-Key`).
    pub server_key: String,
    /// `PLUGIND_DATA_DIR`.
    pub data_dir: PathBuf,
    bin: PathBuf,
    opts: DaemonOptions,
    dify_url: String,
    dify_key: String,
    port: u16,
    child: Option<tokio::process::Child>,
    log: Arc<Mutex<Vec<u8>>>,
    groups: Vec<i32>,
}

impl Daemon {
    /// Spawns `bin` and waits (up to 60 s) for a healthy `/health/check`; the error carries the
    /// tail of the daemon's output.
    pub async fn start(bin: &Path, opts: DaemonOptions, dify: &FakeDify) -> anyhow::Result<Daemon> {
        let port = free_port()?;
        let mut d = Daemon {
            base_url: format!("http://127.0.0.1:{port}"),
            server_key: format!("test-key-{}", uuid::Uuid::new_v4().simple()),
            data_dir: opts.data_dir.clone(),
            bin: bin.to_path_buf(),
            opts,
            dify_url: dify.url.clone(),
            dify_key: dify.key.clone(),
            port,
            child: None,
            log: Arc::default(),
            groups: Vec::new(),
        };
        d.spawn_and_wait().await?;
        Ok(d)
    }

    /// SIGTERM, wait for exit (SIGKILL after 30 s), then start again with the same options,
    /// port and key, and wait for health.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.append_log(b"\n===== plugind-test-support: restarting daemon =====\n");
        self.spawn_and_wait().await
    }

    /// SIGTERM the daemon and wait for it to exit (SIGKILL after 30 s). Returns its exit status
    /// text, or `None` if it was not running.
    pub async fn stop(&mut self) -> anyhow::Result<Option<String>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.to_string()));
        }
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let status = match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = child.start_kill();
                child.wait().await?
            }
        };
        Ok(Some(status.to_string()))
    }

    /// SIGKILL the daemon process only (its plugin children are left as they are, like after a
    /// crash); they are cleaned up when the `Daemon` is dropped.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Whether the daemon process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// OS pid of the current daemon process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Everything the daemon wrote to stdout and stderr so far (all runs, interleaved).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&lock(&self.log)).into_owned()
    }

    /// The last `n` lines of [`Daemon::log`].
    pub fn log_tail(&self, n: usize) -> String {
        tail_lines(&self.log(), n)
    }

    /// A [`crate::Client`] for this daemon.
    pub fn client(&self) -> crate::Client {
        crate::Client::new(&self.base_url, &self.server_key)
    }

    /// The options this daemon runs with.
    pub fn options(&self) -> &DaemonOptions {
        &self.opts
    }

    fn append_log(&self, bytes: &[u8]) {
        push_log(&self.log, bytes);
    }

    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.opts.data_dir)
            .with_context(|| format!("create {}", self.opts.data_dir.display()))?;
        open_temp_ancestors(&self.opts.data_dir)?;
        let mut cmd = tokio::process::Command::new(&self.bin);
        for k in SCRUBBED {
            cmd.env_remove(k);
        }
        cmd.envs(daemon_env(
            self.port,
            &self.server_key,
            &self.opts,
            &self.dify_url,
            &self.dify_key,
        ));
        cmd.envs(self.opts.extra_env.iter().map(|(k, v)| (k, v)));
        cmd.current_dir(&self.opts.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning daemon binary {}", self.bin.display()))?;
        if let Some(pid) = child.id() {
            self.groups.push(pid as i32);
        }
        let echo = std::env::var_os("PLUGIND_TEST_ECHO_LOG").is_some_and(|v| v != "0");
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, self.log.clone(), echo));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(err, self.log.clone(), echo));
        }
        self.child = Some(child);

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/health/check", self.base_url);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last_err: String;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    // Give the pumps a moment to drain the pipes.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    bail!(
                        "daemon exited during startup ({status}); log tail:\n{}",
                        self.log_tail(60)
                    );
                }
            }
            match http.get(&url).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let ok = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(|s| s == "ok"))
                        .unwrap_or(false);
                    if status.is_success() && ok {
                        return Ok(());
                    }
                    last_err = format!("HTTP {status}: {text}");
                }
                Err(e) => last_err = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "daemon not healthy after {STARTUP_TIMEOUT:?} at {url} (last: {last_err}); log tail:\n{}",
                    self.log_tail(60)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        for g in &self.groups {
            let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(mut r: R, log: Arc<Mutex<Vec<u8>>>, echo: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if echo {
                    eprint!("{}", String::from_utf8_lossy(&buf[..n]));
                }
                push_log(&log, &buf[..n]);
            }
        }
    }
}

fn push_log(log: &Mutex<Vec<u8>>, bytes: &[u8]) {
    let mut g = lock(log);
    g.extend_from_slice(bytes);
    if g.len() > LOG_CAP {
        let cut = g.len() - LOG_CAP / 2;
        g.drain(..cut);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tail_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Adds search permission for others (enter, not list) to the directories above `dir` that lie
/// inside the system temp dir, such as the `0700` directory of a `tempfile::tempdir()`: a daemon
/// running as root runs each plugin under its own uid, which must reach its working directory.
fn open_temp_ancestors(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let temp = std::env::temp_dir().canonicalize()?;
    let dir = dir.canonicalize()?;
    for ancestor in dir.ancestors().skip(1) {
        if !ancestor.starts_with(&temp) || ancestor == temp {
            break;
        }
        let mode = std::fs::metadata(ancestor)?.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(mode | 0o001))
                .with_context(|| format!("chmod o+x {}", ancestor.display()))?;
        }
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Creates a fresh, uniquely named database on PostgreSQL at 127.0.0.1:5432 (user `postgres`,
/// trust auth) and returns its name. Works from sync and async contexts (it runs on its own
/// thread). If PostgreSQL does not answer, the error says how to start it.
pub fn create_pg_database() -> anyhow::Result<String> {
    let name = format!("plugind_test_{}", uuid::Uuid::new_v4().simple());
    let n2 = name.clone();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut conn = pg_admin_connection().await?;
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE \"{n2}\"").as_str())
                .await
                .with_context(|| format!("CREATE DATABASE {n2}"))?;
            sqlx::Connection::close(conn).await?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow!("create_pg_database thread panicked"))??;
    Ok(name)
}

/// Drops a database made by [`create_pg_database`] (best effort: open connections are
/// terminated first).
pub fn drop_pg_database(name: &str) -> anyhow::Result<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("refusing to drop database with unusual name {name:?}");
    }
    let n2 = name.to_owned();
    std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let mut conn = pg_admin_connection().await?;
            sqlx::Executor::execute(
                &mut conn,
                format!("DROP DATABASE IF EXISTS \"{n2}\" WITH (FORCE)").as_str(),
            )
            .await
            .with_context(|| format!("DROP DATABASE {n2}"))?;
            sqlx::Connection::close(conn).await?;
            Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow!("drop_pg_database thread panicked"))?
}

const PG_HINT: &str = "PostgreSQL is not answering on 127.0.0.1:5432; start it with \
`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (or run `bash .ci/run`, \
which starts it)";

async fn pg_admin_connection() -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::ConnectOptions;
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username("postgres")
        .password("postgres")
        .database("postgres");
    match tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(anyhow!("{PG_HINT}: {e}")),
        Err(_) => Err(anyhow!("{PG_HINT}: connect timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn env_contract() {
        let opts = DaemonOptions::new("/tmp/x");
        let env = daemon_env(1234, "sk", &opts, "http://127.0.0.1:9", "ik");
        assert_eq!(get(&env, "SERVER_HOST"), Some("127.0.0.1"));
        assert_eq!(get(&env, "SERVER_PORT"), Some("1234"));
        assert_eq!(get(&env, "SERVER_KEY"), Some("sk"));
        assert_eq!(get(&env, "DIFY_INNER_API_URL"), Some("http://127.0.0.1:9"));
        assert_eq!(get(&env, "DIFY_INNER_API_KEY"), Some("ik"));
        assert_eq!(get(&env, "PLUGIND_DATA_DIR"), Some("/tmp/x"));
        assert_eq!(get(&env, "DB_TYPE"), None);
        assert_eq!(get(&env, "PLUGIN_REMOTE_INSTALLING_ENABLED"), Some("false"));
        assert_eq!(get(&env, "FORCE_VERIFYING_SIGNATURE"), Some("false"));
        assert_eq!(get(&env, "RUST_LOG"), Some("info"));
        assert!(get(&env, "UV_CACHE_DIR")
            .expect("uv cache")
            .ends_with(".cache/plugind-test/uv"));

        let opts = DaemonOptions {
            db: DbChoice::Postgres {
                database: "d1".into(),
            },
            ..DaemonOptions::new("/tmp/y")
        };
        let env = daemon_env(1, "k", &opts, "u", "k");
        assert_eq!(get(&env, "DB_TYPE"), Some("postgresql"));
        assert_eq!(get(&env, "DB_HOST"), Some("127.0.0.1"));
        assert_eq!(get(&env, "DB_PORT"), Some("5432"));
        assert_eq!(get(&env, "DB_USERNAME"), Some("postgres"));
        assert_eq!(get(&env, "DB_PASSWORD"), Some("postgres"));
        assert_eq!(get(&env, "DB_DATABASE"), Some("d1"));
    }

    /// A tiny Python HTTP server stands in for the daemon binary (answers `/health/check`).
    fn fake_daemon_script(dir: &Path) -> PathBuf {
        let script = dir.join("fake-plugind");
        std::fs::write(
            &script,
            r#"#!/usr/bin/env python3
import http.server, json, os, signal, sys
print("fake daemon starting on", os.environ["SERVER_PORT"], "key", os.environ["SERVER_KEY"], flush=True)
print("to stderr", file=sys.stderr, flush=True)
if os.environ.get("FAKE_FAIL"):
    print("failing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
signal.signal(signal.SIGTERM, lambda *a: (print("got SIGTERM", flush=True), sys.exit(0)))
http.server.HTTPServer(("127.0.0.1", int(os.environ["SERVER_PORT"])), H).serve_forever()
"#,
        )
        .expect("write script");
        let mut perms = std::fs::metadata(&script).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&script, perms).expect("chmod");
        script
    }

    #[tokio::test]
    async fn start_restart_kill_with_a_stand_in_binary() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = fake_daemon_script(tmp.path());
        let dify = FakeDify::start().await;
        let mut d = Daemon::start(&bin, DaemonOptions::new(tmp.path().join("data")), &dify)
            .await
            .expect("start");
        let (status, v) = d.client().get("health/check").await.expect("health");
        assert_eq!(status, 200);
        assert_eq!(v["status"], "ok");
        assert!(d.log().contains("fake daemon starting"), "{}", d.log());
        let base = d.base_url.clone();
        d.restart().await.expect("restart");
        assert_eq!(d.base_url, base);
        assert!(d.log().contains("got SIGTERM"), "{}", d.log());
        assert!(d.log().contains("to stderr"));
        d.kill9();
        assert!(!d.is_running());
    }

    #[tokio::test]
    async fn startup_failure_reports_log_tail() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = fake_daemon_script(tmp.path());
        let dify = FakeDify::start().await;
        let mut opts = DaemonOptions::new(tmp.path().join("data"));
        opts.extra_env.push(("FAKE_FAIL".into(), "1".into()));
        let err = match Daemon::start(&bin, opts, &dify).await {
            Ok(_) => panic!("should fail"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("failing on purpose"), "{err}");
    }

    #[test]
    fn pg_database_can_be_created_when_postgres_runs() {
        match create_pg_database() {
            Ok(name) => {
                assert!(name.starts_with("plugind_test_"));
                drop_pg_database(&name).expect("drop");
            }
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(
                    msg.contains("pg_ctlcluster --skip-systemctl-redirect"),
                    "{msg}"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL must run in CI: {msg}");
                }
            }
        }
    }
}
