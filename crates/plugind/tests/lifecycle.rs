//! End-to-end: the lifecycle operators watch (issue 10) and the session layer's limits (issue 9,
//! items 2 and 5), on the real daemon binary running the fixture plugin on the real SDK.
//!
//! * install → `kill -9` → uninstall produce the lifecycle events in order, and the status route
//!   walks `launching → active → restarting → active → gone`, counting the restart;
//! * an events subscriber that never reads does not slow a streaming invoke;
//! * a caller that never reads its stream gets its session ended (bounded buffer) while other
//!   sessions of the same plugin process keep flowing;
//! * after a restart, `/health/ready` says 503 until the plugins are back, and an invoke issued
//!   meanwhile waits for its plugin instead of failing with "plugin runtime not found".

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use plugind_test_support::{
    echo_invoke_body, pack_fixture, tool_texts, Client, Daemon, DaemonOptions, DbChoice, FakeDify,
    Variant, ECHO_PLUGIN_ID,
};
use serde_json::{json, Value};

const TENANT: &str = "0b6f7c1e-3a2d-4e5f-8a9b-1c2d3e4f5a6b";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

async fn start(dir: &std::path::Path, dify: &FakeDify, extra_env: Vec<(&str, &str)>) -> Daemon {
    Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.to_path_buf(),
            db: DbChoice::Sqlite,
            extra_env: extra_env
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        },
        dify,
    )
    .await
    .expect("daemon starts")
}

async fn install(client: &Client) -> String {
    client
        .install_package(TENANT, pack_fixture(Variant::Sdk07))
        .await
        .expect("install")
}

async fn invoke(client: &Client, text: &str, mode: &str) -> (u16, Vec<Value>) {
    client
        .invoke_echo(TENANT, text, mode)
        .await
        .expect("dispatch")
}

/// The statuses the status route reports for the echo plugin.
async fn statuses(client: &Client) -> Vec<Value> {
    let (status, body) = client
        .get(&format!(
            "plugin/{TENANT}/management/runtime/status?plugin_id={ECHO_PLUGIN_ID}"
        ))
        .await
        .expect("status route");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 0, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// Polls the status route until `done` holds for the echo plugin's status list, recording every
/// state seen (consecutive repeats folded) into `seen`.
async fn watch_states(
    client: &Client,
    seen: &mut Vec<String>,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = statuses(client).await;
        let state = list
            .first()
            .and_then(|s| s["status"].as_str())
            .unwrap_or("gone")
            .to_owned();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        if done(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; states seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Reads the events route in the background, collecting every event.
fn collect_events(daemon: &Daemon) -> (Arc<Mutex<Vec<Value>>>, tokio::task::JoinHandle<()>) {
    let url = format!(
        "{}/plugin/{TENANT}/management/runtime/events?plugin_id={ECHO_PLUGIN_ID}",
        daemon.base_url
    );
    let key = daemon.server_key.clone();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let task = tokio::spawn(async move {
        let resp = reqwest::Client::new()
            .get(url)
            .header("X-Api-Key", key)
            .send()
            .await
            .expect("events route");
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(bytes)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                for line in frame.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let event: Value = serde_json::from_str(data.trim()).expect("event JSON");
                        sink.lock().expect("lock").push(event);
                    }
                }
            }
        }
    });
    (events, task)
}

/// `kinds` appear in `events` in this order (other events may come between).
fn assert_in_order(events: &[Value], kinds: &[&str]) {
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let mut at = 0;
    for kind in kinds {
        match names[at..].iter().position(|n| n == kind) {
            Some(i) => at += i + 1,
            None => panic!("event {kind} missing after position {at}; events: {names:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn install_crash_and_uninstall_are_watchable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = start(dir.path(), &dify, vec![]).await;
    let client = daemon.client();
    let (events, reader) = collect_events(&daemon);
    // Let the subscription start before anything happens.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut seen = Vec::new();
    let installing = {
        let client = client.clone();
        tokio::spawn(async move { install(&client).await })
    };
    watch_states(&client, &mut seen, "active", |list| {
        list.first().is_some_and(|s| s["status"] == "active")
    })
    .await;
    let uid = installing.await.expect("install task");
    assert_eq!(
        tool_texts(&invoke(&client, "hello", "text").await.1),
        ["hello"]
    );

    let status = statuses(&client).await.remove(0);
    assert_eq!(status["plugin_unique_identifier"], uid.as_str());
    assert_eq!(status["runtime_type"], "local");
    assert_eq!(status["restarts"], 0);
    let pid = status["pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let list = watch_states(&client, &mut seen, "the restart", |list| {
        list.first().is_some_and(|s| {
            s["status"] == "active" && s["pid"].as_i64().is_some_and(|p| p as i32 != pid)
        })
    })
    .await;
    let status = &list[0];
    assert_eq!(status["restarts"], 1, "{status}");
    let last_error = status["last_error"].as_str().unwrap_or("");
    assert!(last_error.contains("signal 9"), "{status}");
    assert_eq!(
        tool_texts(&invoke(&client, "again", "text").await.1),
        ["again"]
    );

    let (code, resp) = client
        .post_json(
            &format!("plugin/{TENANT}/management/uninstall"),
            json!({"plugin_installation_id": installation_id(&client).await}),
        )
        .await
        .expect("uninstall");
    assert_eq!(code, 200, "{resp}");
    watch_states(&client, &mut seen, "gone", |list| list.is_empty()).await;
    // Before the upload the plugin is unknown ("gone"), unless the first poll came late.
    let seen: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .skip_while(|s| *s == "gone")
        .collect();
    assert_eq!(
        seen,
        ["launching", "active", "restarting", "active", "gone"],
        "states seen on the status route"
    );

    // The events of the whole story, in order.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = events.lock().expect("lock").clone();
    assert_in_order(
        &events,
        &[
            "plugin_starting",
            "instance_starting",
            "instance_ready",
            "plugin_ready",
            "instance_shutdown",
            "instance_starting",
            "instance_ready",
            "plugin_stopping",
            "instance_shutdown",
            "plugin_stopped",
        ],
    );
    let crash = events
        .iter()
        .find(|e| e["event"] == "instance_shutdown")
        .expect("crash event");
    assert_eq!(crash["pid"], pid);
    assert!(crash["reason"].as_str().unwrap_or("").contains("signal 9"));
    assert!(events
        .iter()
        .all(|e| e["plugin_unique_identifier"] == uid.as_str() && e["runtime_type"] == "local"));
    reader.abort();

    // The same story in Prometheus series.
    let metrics = reqwest::get(format!("{}/metrics/", daemon.base_url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    assert!(metrics.contains("plugin_restarts_total"), "{metrics}");
    assert!(metrics.contains("plugin_runtime_status"), "{metrics}");
}

async fn installation_id(client: &Client) -> String {
    let (_, body) = client
        .get(&format!(
            "plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    body["data"]["list"][0]["id"]
        .as_str()
        .or_else(|| body["data"][0]["id"].as_str())
        .unwrap_or_else(|| panic!("installation id in {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_readers_never_stall_a_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    // 1 MiB of a session's answer may wait for its caller.
    let daemon = start(
        dir.path(),
        &dify,
        vec![("PLUGIN_SESSION_BUFFER_SIZE", "1048576")],
    )
    .await;
    let client = daemon.client();
    install(&client).await;

    // An events subscriber that never reads, while the plugin sends a log event per chunk
    // (far more events than the subscriber's buffer holds).
    let idle_events = reqwest::Client::new()
        .get(format!(
            "{}/plugin/{TENANT}/management/runtime/events",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .send()
        .await
        .expect("events route");
    assert_eq!(idle_events.status(), 200);
    let (status, envelopes) = tokio::time::timeout(
        Duration::from_secs(120),
        invoke(&client, "3000:10", "chatty"),
    )
    .await
    .expect("the chatty invoke finished within the deadline");
    assert_eq!(status, 200);
    assert_eq!(tool_texts(&envelopes).len(), 3000, "every chunk arrived");

    // A caller that never reads: its session is cut off once 1 MiB waits for it; meanwhile
    // another session on the same process streams normally.
    let slow = reqwest::Client::new()
        .post(format!(
            "{}/plugin/{TENANT}/dispatch/tool/invoke",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .header("X-Plugin-ID", ECHO_PLUGIN_ID)
        .header("Content-Type", "application/json")
        .body(echo_invoke_body("4000:20000", "stream").to_string())
        .send()
        .await
        .expect("slow dispatch");
    assert_eq!(slow.status(), 200);
    let (status, envelopes) = tokio::time::timeout(
        Duration::from_secs(120),
        invoke(&client, "500:100", "stream"),
    )
    .await
    .expect("the other session finished within the deadline");
    assert_eq!(status, 200);
    assert_eq!(tool_texts(&envelopes).len(), 500);

    // Now read the slow stream: some chunks, then the error that ended it.
    let body = tokio::time::timeout(Duration::from_secs(120), slow.text())
        .await
        .expect("the slow stream ends")
        .expect("slow body");
    let envelopes = plugind_test_support::parse_sse_body(&body).expect("SSE body");
    let last = envelopes.last().expect("at least one envelope");
    assert_eq!(last["code"], -500, "{last}");
    let message = last["message"].as_str().unwrap_or("");
    assert!(message.contains("too slowly"), "{message}");
    let chunks = tool_texts(&envelopes).len();
    assert!(
        chunks < 4000,
        "the slow session was cut off, got {chunks} chunks"
    );
    drop(idle_events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_invokes_wait_for_their_plugin_and_readiness_says_when() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    // The plugin takes 3 s to send its first heartbeat, every time it starts.
    let mut daemon = start(
        dir.path(),
        &dify,
        vec![
            ("PLUGIND_TEST_START_DELAY", "3"),
            ("PLUGIN_ENV_PASSTHROUGH", "PLUGIND_TEST_START_DELAY"),
        ],
    )
    .await;
    let client = daemon.client();
    let ready = reqwest::get(format!("{}/health/ready", daemon.base_url))
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200, "nothing installed: ready");
    install(&client).await;

    daemon.restart().await.expect("restart");
    let client = daemon.client();
    let ready = reqwest::get(format!("{}/health/ready", daemon.base_url))
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503, "the plugin is still starting");
    let body: Value = ready.json().await.expect("ready body");
    assert_eq!(body["ready"], false);
    assert_eq!(body["starting"].as_array().map(Vec::len), Some(1), "{body}");
    let health = reqwest::get(format!("{}/health/check", daemon.base_url))
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "liveness stays as upstream");

    // Issued while the plugin starts: waits for it instead of "plugin runtime not found".
    let (status, envelopes) = invoke(&client, "patient", "text").await;
    assert_eq!(status, 200, "{envelopes:?}");
    assert_eq!(tool_texts(&envelopes), ["patient"], "{envelopes:?}");

    let ready = reqwest::get(format!("{}/health/ready", daemon.base_url))
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("ready body");
    assert_eq!(body["running"], 1, "{body}");
}
