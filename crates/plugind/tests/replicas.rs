//! End-to-end: local plugins with several instances (issue 13, "Local: replicas, scaling, scale
//! to zero"), on the real daemon binary and the real SDK. One daemon, three copies of the
//! fixture plugin under other names, each with its own `PLUGIN_REPLICAS_OVERRIDES` entry:
//!
//! * `plugind/trio` runs 3 instances: 30 streaming calls spread over all three; `kill -9` of one
//!   fails only the calls it served, the others complete, and a replacement comes up;
//! * `plugind/elastic` runs 1 to 3: sustained load scales it up to 3, idleness back down to 1,
//!   and retiring instances are not counted as restarts;
//! * `plugind/sleepy` may scale to zero: idle, its process is gone and the status says `idle`;
//!   the next call starts an instance and succeeds.
//!
//! The fixture's `pid` mode answers with the pid of the process that served the call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use plugind_test_support::{
    echo_invoke_body, latest_manifest_as, pack_fixture_with, tool_texts, Client, Daemon,
    DaemonOptions, DbChoice, FakeDify, Variant,
};
use serde_json::Value;
use tokio::sync::oneshot;

const TENANT: &str = "5d0c2a8e-91b4-4f6e-b7c3-2e8d9a1f4b60";
const TRIO: &str = "plugind/trio";
const ELASTIC: &str = "plugind/elastic";
const SLEEPY: &str = "plugind/sleepy";
const TOOLS: &str = "plugins:\n  tools:\n    - provider/echo.yaml\n";
/// Generous bound of every wait for the daemon to reach a state.
const WAIT: Duration = Duration::from_secs(180);

fn package(name: &str) -> Vec<u8> {
    let manifest = latest_manifest_as(name, TOOLS);
    pack_fixture_with(Variant::Latest, &[("manifest.yaml", manifest.as_bytes())])
}

/// The status the runtime status route reports for `plugin_id`.
async fn status(client: &Client, plugin_id: &str) -> Value {
    let (code, body) = client
        .get(&format!(
            "plugin/{TENANT}/management/runtime/status?plugin_id={plugin_id}"
        ))
        .await
        .expect("status route");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["code"], 0, "{body}");
    body["data"][0].clone()
}

/// Polls the status of `plugin_id` until `done` holds; returns that status.
async fn wait_status(
    client: &Client,
    plugin_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = status(client, plugin_id).await;
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{plugin_id}: timed out waiting for {what}; last status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids of the serving (not retiring) instances in a status.
fn serving_pids(status: &Value) -> Vec<i64> {
    status["instances"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|i| i["draining"] == false)
                .filter_map(|i| i["pid"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// A `pid`-mode call of `plugin_id`, read as it streams: the pid of the serving process as soon
/// as it arrives, and every envelope once the stream ends.
fn streaming_call(
    daemon: &Daemon,
    plugin_id: &str,
    text: &str,
) -> (oneshot::Receiver<i64>, tokio::task::JoinHandle<Vec<Value>>) {
    let request = reqwest::Client::new()
        .post(format!(
            "{}/plugin/{TENANT}/dispatch/tool/invoke",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key)
        .header("X-Plugin-ID", plugin_id)
        .header("Content-Type", "application/json")
        .body(echo_invoke_body(text, "pid").to_string());
    let (pid_tx, pid_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut pid_tx = Some(pid_tx);
        let resp = request.send().await.expect("dispatch");
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        let mut envelopes = Vec::new();
        while let Some(chunk) = body.next().await {
            let Ok(bytes) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                let Some(data) = line.trim().strip_prefix("data:") else {
                    continue;
                };
                let envelope: Value = serde_json::from_str(data.trim()).expect("envelope JSON");
                if let Some(pid) = tool_texts(std::slice::from_ref(&envelope))
                    .first()
                    .and_then(|t| t.parse::<i64>().ok())
                {
                    if let Some(tx) = pid_tx.take() {
                        let _ = tx.send(pid);
                    }
                }
                envelopes.push(envelope);
            }
        }
        envelopes
    });
    (pid_rx, task)
}

/// `(pid, ticks, ended with an error)` of a finished `pid`-mode call.
fn outcome(envelopes: &[Value]) -> (Option<i64>, usize, bool) {
    let texts = tool_texts(envelopes);
    let pid = texts.first().and_then(|t| t.parse().ok());
    let ticks = texts.iter().filter(|t| *t == "tick").count();
    let failed = envelopes.last().is_none_or(|e| e["code"] != 0);
    (pid, ticks, failed)
}

async fn quick_call(client: &Client, plugin_id: &str) -> i64 {
    let (code, envelopes) = client
        .dispatch(
            TENANT,
            plugin_id,
            "tool/invoke",
            echo_invoke_body("", "pid"),
        )
        .await
        .expect("dispatch");
    assert_eq!(code, 200, "{envelopes:?}");
    let (pid, _, failed) = outcome(&envelopes);
    assert!(!failed, "{envelopes:?}");
    pid.expect("a pid")
}

type Events = Arc<Mutex<Vec<Value>>>;

/// Reads the lifecycle events of `plugin_id` in the background.
fn collect_events(daemon: &Daemon, plugin_id: &str) -> (Events, tokio::task::JoinHandle<()>) {
    let request = reqwest::Client::new()
        .get(format!(
            "{}/plugin/{TENANT}/management/runtime/events?plugin_id={plugin_id}",
            daemon.base_url
        ))
        .header("X-Api-Key", &daemon.server_key);
    let events: Events = Arc::default();
    let sink = events.clone();
    let task = tokio::spawn(async move {
        let resp = request.send().await.expect("events route");
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(bytes)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                if let Some(data) = line.trim().strip_prefix("data:") {
                    let event: Value = serde_json::from_str(data.trim()).expect("event JSON");
                    sink.lock().expect("lock").push(event);
                }
            }
        }
    });
    (events, task)
}

/// Pids of every instance started so far, from the collected events.
fn started_pids(events: &Events) -> Vec<i64> {
    events
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e["event"] == "instance_starting")
        .filter_map(|e| e["pid"].as_i64())
        .collect()
}

fn process_exists(pid: i64) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_load_survive_a_crash_scale_and_sleep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let mut daemon = Daemon::start(
        &PathBuf::from(env!("CARGO_BIN_EXE_plugind")),
        DaemonOptions {
            data_dir: dir.path().to_path_buf(),
            db: DbChoice::Sqlite,
            extra_env: [
                (
                    "PLUGIN_REPLICAS_OVERRIDES",
                    "plugind/trio=3, plugind/elastic=1-3, plugind/sleepy=0",
                ),
                ("PLUGIN_SCALE_UP_SESSIONS", "2"),
                ("PLUGIN_SCALE_UP_AFTER", "1"),
                ("PLUGIN_SCALE_DOWN_AFTER", "2"),
                ("PLUGIN_SCALE_TO_ZERO_AFTER", "3"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        },
        &dify,
    )
    .await
    .expect("daemon starts");
    let client = daemon.client();
    let (sleepy_events, reader) = collect_events(&daemon, SLEEPY);
    // Let the subscription start before anything happens.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for name in ["trio", "elastic", "sleepy"] {
        client
            .install_package(TENANT, package(name))
            .await
            .unwrap_or_else(|e| panic!("install {name}: {e:#}\n{}", daemon.log_tail(40)));
    }

    // --- Three instances: the load spreads, a crash costs only the crashed one's calls.
    let trio = wait_status(&client, TRIO, "3 instances", |s| {
        s["status"] == "active" && serving_pids(s).len() == 3
    })
    .await;
    assert_eq!(trio["replicas"], 3, "{trio}");
    let pids = serving_pids(&trio);
    let calls: Vec<_> = (0..30)
        .map(|_| streaming_call(&daemon, TRIO, "30:0.5"))
        .collect();
    let mut served_by = Vec::new();
    let mut tasks = Vec::new();
    for (pid_rx, task) in calls {
        let pid = tokio::time::timeout(WAIT, pid_rx)
            .await
            .expect("every call starts streaming")
            .expect("a pid chunk");
        served_by.push(pid);
        tasks.push(task);
    }
    let mut per_pid: HashMap<i64, usize> = HashMap::new();
    for pid in &served_by {
        *per_pid.entry(*pid).or_default() += 1;
    }
    assert_eq!(per_pid.len(), 3, "all three instances serve: {per_pid:?}");
    assert!(
        pids.iter().all(|p| per_pid.get(p).is_some_and(|n| *n >= 5)),
        "the fewest-sessions picker spreads 30 calls over 3 instances: {per_pid:?}"
    );
    let victim = pids[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    for (task, pid) in tasks.into_iter().zip(&served_by) {
        let envelopes = task.await.expect("call task");
        let (_, ticks, failed) = outcome(&envelopes);
        if *pid == victim {
            assert!(failed, "a call on the killed instance fails: {envelopes:?}");
            assert!(ticks < 30, "{envelopes:?}");
        } else {
            assert!(
                !failed,
                "a call on a surviving instance completes: {envelopes:?}"
            );
            assert_eq!(ticks, 30, "{envelopes:?}");
        }
    }
    let trio = wait_status(&client, TRIO, "a replacement instance", |s| {
        let pids = serving_pids(s);
        pids.len() == 3 && !pids.contains(&victim)
    })
    .await;
    assert_eq!(trio["status"], "active", "{trio}");
    assert_eq!(trio["restarts"], 1, "{trio}");
    assert!(
        trio["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("signal 9")),
        "{trio}"
    );
    assert!(serving_pids(&trio).contains(&quick_call(&client, TRIO).await));

    // --- Scaling: sustained load up to the maximum, idleness back to the minimum.
    let elastic = wait_status(&client, ELASTIC, "one instance", |s| {
        serving_pids(s).len() == 1
    })
    .await;
    assert_eq!(elastic["replicas"], 1, "{elastic}");
    let busy_pid = serving_pids(&elastic)[0];
    let load: Vec<_> = (0..12)
        .map(|_| streaming_call(&daemon, ELASTIC, "600:0.5"))
        .collect();
    let elastic = wait_status(&client, ELASTIC, "a scale-up to 3", |s| {
        s["replicas"] == 3 && serving_pids(s).len() == 3
    })
    .await;
    assert_eq!(elastic["status"], "active", "{elastic}");
    // New calls reach the new instances, which have the fewest sessions.
    let fresh = quick_call(&client, ELASTIC).await;
    assert!(
        fresh != busy_pid && serving_pids(&elastic).contains(&fresh),
        "{fresh} should be a new instance: {elastic}"
    );
    // The callers go away: their sessions end, and the plugin is idle.
    for (_, task) in load {
        task.abort();
    }
    let elastic = wait_status(&client, ELASTIC, "a scale-down to 1", |s| {
        s["replicas"] == 1 && s["instances"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    assert_eq!(elastic["status"], "active", "{elastic}");
    assert_eq!(
        elastic["restarts"], 0,
        "retiring is not restarting: {elastic}"
    );
    quick_call(&client, ELASTIC).await;

    // --- Scale to zero: idle, no process; the next call starts one.
    let sleepy = wait_status(&client, SLEEPY, "scale to zero", |s| s["status"] == "idle").await;
    assert_eq!(sleepy["replicas"], 0, "{sleepy}");
    assert_eq!(sleepy["instances"], Value::Array(vec![]), "{sleepy}");
    assert_eq!(sleepy["pid"], Value::Null, "{sleepy}");
    let old_pids: Vec<i64> = started_pids(&sleepy_events);
    assert!(!old_pids.is_empty(), "the events showed the first instance");
    assert!(
        old_pids.iter().all(|p| !process_exists(*p)),
        "no process of the idle plugin is left: {old_pids:?}"
    );
    let woken = quick_call(&client, SLEEPY).await;
    assert!(!old_pids.contains(&woken));
    let sleepy = status(&client, SLEEPY).await;
    assert_eq!(sleepy["status"], "active", "{sleepy}");
    assert_eq!(sleepy["restarts"], 0, "{sleepy}");
    // And it goes back to sleep.
    wait_status(&client, SLEEPY, "scale to zero again", |s| {
        s["status"] == "idle"
    })
    .await;
    assert!(!process_exists(woken));
    assert!(started_pids(&sleepy_events).contains(&woken));
    reader.abort();

    // --- After a restart: the fixed plugin has its 3 instances again, the one that may scale
    // to zero comes back idle without a process, and its first call starts one.
    daemon.restart().await.expect("restart");
    let client = daemon.client();
    let ready = wait_status(&client, TRIO, "3 instances after the restart", |s| {
        serving_pids(s).len() == 3
    })
    .await;
    assert_eq!(ready["status"], "active", "{ready}");
    let sleepy = wait_status(&client, SLEEPY, "the restore", |s| {
        s["status"].is_string() && s["status"] != "pending" && s["status"] != "launching"
    })
    .await;
    assert_eq!(
        sleepy["status"], "idle",
        "restored without a process: {sleepy}"
    );
    assert_eq!(sleepy["instances"], Value::Array(vec![]), "{sleepy}");
    let woken = quick_call(&client, SLEEPY).await;
    assert!(process_exists(woken));
}
