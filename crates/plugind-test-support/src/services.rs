//! Servers the state-backend tests start on loopback, each killed when dropped:
//! [`S3Server`] (moto's S3-compatible server, `pip install 'moto[server]'`) and [`RedisServer`]
//! (a `redis-server` of the test's own, for outages the shared server must not see).
//! A server that cannot start fails the test with a message saying how to install it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A free loopback TCP port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited before listening on 127.0.0.1:{port} ({status})");
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on 127.0.0.1:{port} within 30s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// moto's S3 server on a free loopback port.
pub struct S3Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

/// How to get the S3-compatible test server.
pub const MOTO_HINT: &str = "the S3 tests need moto's server on PATH: `pip install 'moto[server]'` (provides `moto_server`)";

impl S3Server {
    /// Starts `moto_server` and creates `bucket` (moto accepts unsigned requests).
    pub async fn start(bucket: &str) -> anyhow::Result<S3Server> {
        let port = free_port()?;
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| MOTO_HINT)?;
        wait_for_port(port, &mut child, "moto_server").with_context(|| MOTO_HINT)?;
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        server.create_bucket(bucket).await?;
        Ok(server)
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let status = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .context("create bucket")?
            .status();
        if !status.is_success() {
            bail!("creating bucket {bucket} answered {status}");
        }
        Ok(())
    }

    /// The daemon variables that point `PLUGIN_STORAGE_TYPE=s3` at this server.
    pub fn daemon_env(&self, bucket: &str) -> Vec<(String, String)> {
        [
            ("PLUGIN_STORAGE_TYPE", "s3"),
            ("PLUGIN_STORAGE_OSS_BUCKET", bucket),
            ("S3_USE_AWS", "false"),
            ("S3_ENDPOINT", &self.endpoint),
            ("S3_USE_PATH_STYLE", "true"),
            ("AWS_ACCESS_KEY", "test-access"),
            ("AWS_SECRET_KEY", "test-secret"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` of the test's own on a loopback port (no persistence). [`RedisServer::stop`]
/// and [`RedisServer::start_on`] simulate an outage and the recovery.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> anyhow::Result<RedisServer> {
        RedisServer::start_on(free_port()?)
    }

    pub fn start_on(port: u16) -> anyhow::Result<RedisServer> {
        let hint = "redis-server is needed on PATH (apt-get install redis-server)";
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(hint)?;
        wait_for_port(port, &mut child, "redis-server").context(hint)?;
        Ok(RedisServer {
            child: Some(child),
            port,
        })
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails with a how-to when the shared Redis on 127.0.0.1:6379 does not answer.
pub fn require_shared_redis() -> anyhow::Result<()> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "PING"])
        .output()
        .context("redis-cli is needed on PATH (apt-get install redis-tools)")?;
    if String::from_utf8_lossy(&out.stdout).trim() != "PONG" {
        bail!("Redis on 127.0.0.1:6379 does not answer PING; start it with `redis-server --daemonize yes`");
    }
    Ok(())
}
