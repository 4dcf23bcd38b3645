//! State backends end to end: the daemon on Redis (the shared server on 127.0.0.1:6379 under a
//! key prefix of the test's own, or a redis-server the test starts) and on S3 (moto, started on
//! loopback): install, invoke, restart; loud start-up errors naming an unreachable service; a
//! Redis outage while running (clear errors, then recovery); pool gauges in `/metrics/`;
//! `plugind doctor`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use plugind_coord::{Coord, RedisSettings};
use plugind_test_support::{
    free_port, pack_fixture, require_shared_redis, tool_texts, Daemon, DaemonOptions, FakeDify,
    RedisServer, S3Server, Variant, ECHO_PLUGIN_ID, INSTALL_TIMEOUT,
};

const TENANT: &str = "6f1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f71";
const OTHER_TENANT: &str = "6f1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f72";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn unique_prefix(test: &str) -> String {
    format!("plugind_e2e_{test}_{}", uuid::Uuid::new_v4().simple())
}

async fn start(dir: &std::path::Path, dify: &FakeDify, extra: Vec<(String, String)>) -> Daemon {
    let mut opts = DaemonOptions::new(dir);
    opts.extra_env = extra;
    Daemon::start(&bin(), opts, dify)
        .await
        .expect("daemon starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_invoke_restart_on_redis_and_s3() {
    require_shared_redis().expect("shared Redis");
    let s3 = S3Server::start("plugind-e2e").await.expect("S3 server");
    let prefix = unique_prefix("s3");
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut extra = s3.daemon_env("plugind-e2e");
    extra.extend(env(&[
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", "6379"),
        ("REDIS_KEY_PREFIX", &prefix),
    ]));
    let mut daemon = start(dir.path(), &dify, extra).await;
    assert!(
        daemon.log().contains("s3 bucket plugind-e2e")
            && daemon.log().contains("Redis 127.0.0.1:6379"),
        "{}",
        daemon.log_tail(30)
    );
    // Another node on the same Redis hears about the installation.
    let listener = Coord::from_settings(&RedisSettings {
        host: Some("127.0.0.1".into()),
        port: 6379,
        key_prefix: prefix.clone(),
        ..RedisSettings::default()
    })
    .await
    .expect("listener");
    let mut changes = listener
        .subscribe(plugind_service::INSTALLATION_CHANGED_CHANNEL)
        .await
        .expect("subscribe");

    let client = daemon.client();
    let uid = client
        .install_package(TENANT, pack_fixture(Variant::Latest))
        .await
        .expect("install");
    let (status, chunks) = client
        .invoke_echo(TENANT, "over s3", "text")
        .await
        .expect("invoke");
    assert_eq!(status, 200);
    assert_eq!(tool_texts(&chunks), vec!["over s3".to_owned()]);
    let change = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("announced")
        .expect("message");
    let change: serde_json::Value = serde_json::from_str(&change).expect("json");
    assert_eq!(change["tenant_id"], TENANT);
    assert_eq!(change["plugin_id"], ECHO_PLUGIN_ID);

    // Nothing of the package is on the local disk: it lives in the bucket.
    assert!(!dir.path().join("storage").join("plugin_packages").exists());
    let listing = reqwest::get(format!("{}/plugind-e2e?list-type=2", s3.endpoint))
        .await
        .expect("list bucket")
        .text()
        .await
        .expect("body");
    assert!(
        listing.contains(&format!("plugin_packages/{uid}"))
            && listing.contains(&format!("plugin/{uid}")),
        "{listing}"
    );

    daemon.restart().await.expect("restart");
    let client = daemon.client();
    let mut texts = Vec::new();
    for _ in 0..120 {
        let (status, chunks) = client
            .invoke_echo(TENANT, "again", "text")
            .await
            .expect("invoke");
        if status == 200 {
            texts = tool_texts(&chunks);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(texts, vec!["again".to_owned()], "{}", daemon.log_tail(40));
}

fn plugind_once(dir: &std::path::Path, extra: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(bin());
    for var in ["DB_TYPE", "DB_HOST", "REDIS_HOST", "PLUGIN_STORAGE_TYPE"] {
        cmd.env_remove(var);
    }
    cmd.env("PLUGIND_DATA_DIR", dir)
        .env("SERVER_KEY", "k")
        .env("DIFY_INNER_API_URL", "http://127.0.0.1:1")
        .env("DIFY_INNER_API_KEY", "k")
        .env("SERVER_PORT", "0")
        .env("UV_PATH", "/bin/true");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run plugind")
}

#[test]
fn unreachable_redis_or_storage_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().expect("port").to_string();
    let out = plugind_once(
        dir.path(),
        &[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &port)],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Redis 127.0.0.1:{port} db 0 is unavailable")),
        "{stderr}"
    );

    let dead = format!("http://127.0.0.1:{}", free_port().expect("port"));
    let out = plugind_once(
        dir.path(),
        &[
            ("PLUGIN_STORAGE_TYPE", "s3"),
            ("PLUGIN_STORAGE_OSS_BUCKET", "nowhere"),
            ("S3_USE_AWS", "false"),
            ("S3_ENDPOINT", &dead),
            ("AWS_ACCESS_KEY", "a"),
            ("AWS_SECRET_KEY", "b"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("object storage") && stderr.contains("s3 bucket nowhere is unreachable"),
        "{stderr}"
    );

    let out = plugind_once(dir.path(), &[("PLUGIN_STORAGE_TYPE", "ftp")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[ ftp ] is not in the provider list"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_what_needs_it_and_the_daemon_recovers() {
    let mut redis = RedisServer::start().expect("own redis-server");
    let port = redis.port;
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port_s = port.to_string();
    let daemon = start(
        dir.path(),
        &dify,
        env(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &port_s)]),
    )
    .await;
    let client = daemon.client();
    let package = pack_fixture(Variant::Latest);
    let uid = client
        .install_package(TENANT, package.clone())
        .await
        .expect("install with Redis up");

    redis.stop();
    // Invokes do not need Redis: they keep working.
    let (status, chunks) = client
        .invoke_echo(TENANT, "still", "text")
        .await
        .expect("invoke");
    assert_eq!(
        (status, tool_texts(&chunks)),
        (200, vec!["still".to_owned()])
    );
    // An install needs Redis (with Redis the node is in a cluster and records the task's owner
    // there before creating it; the job needs the uid lock): the request or its task fails with
    // a reason naming Redis, nothing recorded.
    let failure = match client
        .install_and_wait(OTHER_TENANT, &uid, INSTALL_TIMEOUT)
        .await
    {
        Ok(task) => {
            assert_eq!(task["status"], "failed", "{task}");
            task["plugins"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        Err(err) => format!("{err:#}"),
    };
    assert!(
        failure.contains(&format!("Redis 127.0.0.1:{port} db 0 is unavailable")),
        "{failure}"
    );
    let (_, list) = client
        .get(&format!(
            "/plugin/{OTHER_TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    assert_eq!(
        list["data"]["list"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );

    let _redis = RedisServer::start_on(port).expect("redis back");
    let mut done = None;
    for _ in 0..20 {
        let task = client
            .install_and_wait(OTHER_TENANT, &uid, INSTALL_TIMEOUT)
            .await
            .expect("task ends");
        if task["status"] == "success" {
            done = Some(task);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        done.is_some(),
        "install works again: {}",
        daemon.log_tail(30)
    );
    let (status, chunks) = client
        .invoke_echo(OTHER_TENANT, "back", "text")
        .await
        .expect("invoke");
    assert_eq!(
        (status, tool_texts(&chunks)),
        (200, vec!["back".to_owned()])
    );
    assert!(!daemon.log().contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_the_database_pool() {
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = start(dir.path(), &dify, Vec::new()).await;
    let body = reqwest::get(format!("{}/metrics/", daemon.base_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for series in [
        "plugind_db_pool_connections{state=\"open\"}",
        "plugind_db_pool_connections{state=\"idle\"}",
        "plugind_db_pool_connections{state=\"in_use\"}",
        "plugind_db_pool_max_open_connections",
    ] {
        assert!(body.contains(series), "{series} missing:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_prints_one_line_per_check_and_fails_on_a_dead_service() {
    require_shared_redis().expect("shared Redis");
    let dify = FakeDify::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let doctor = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(bin());
        for var in ["DB_TYPE", "DB_HOST", "REDIS_HOST", "PLUGIN_STORAGE_TYPE"] {
            cmd.env_remove(var);
        }
        cmd.arg("doctor")
            .env("PLUGIND_DATA_DIR", dir.path())
            .env("SERVER_KEY", "k")
            .env("DIFY_INNER_API_URL", &dify.url)
            .env("DIFY_INNER_API_KEY", "k");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run doctor")
    };
    let out = doctor(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", "6379")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "ok    uv: ",
        "ok    python: Python 3.12",
        "ok    database: SQLite ",
        "ok    redis: Redis 127.0.0.1:6379 db 0 answers PING",
        "ok    object storage: local ",
        "ok    dify inner api: ",
    ] {
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with(line)).count(),
            1,
            "{line} in:\n{stdout}"
        );
    }
    let port = free_port().expect("port").to_string();
    let out = doctor(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", &port)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FAIL  redis: Redis 127.0.0.1:{port} db 0 is unavailable"
        )),
        "{stdout}"
    );
}
