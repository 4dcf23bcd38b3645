//! `PLATFORM=serverless` end to end (plugin-protocol §6): the real SDK in serverless mode behind
//! a fake connector that launches it. Install launches a function through the connector and
//! stores its row; tool invokes go to `<function URL>/invoke`; a backwards `storage` call comes
//! back through `POST /backwards-invocation/transaction`; a restart serves the plugin from its
//! row without a new launch; a function that is down gives upstream's retry error; a connector
//! that is down at start is a start-up error.

use std::path::PathBuf;

use plugind_test_support::{
    echo_venv_python, pack_fixture, tool_texts, Client, Daemon, DaemonOptions, FakeConnector,
    FakeDify, Variant, BACKWARDS_TOOL, ECHO_PLUGIN_ID, ECHO_PROVIDER,
};
use serde_json::{json, Value};

const TENANT: &str = "7a1d3e2a-8f5b-4c1a-9d7e-2b3c4d5e6f71";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn options(data: &tempfile::TempDir, connector: &FakeConnector) -> DaemonOptions {
    let mut opts = DaemonOptions::new(data.path());
    opts.extra_env = connector.daemon_env();
    opts.extra_env.extend([
        ("MAX_SERVERLESS_RETRY_TIMES".into(), "2".into()),
        ("ADMIN_API_ENABLED".into(), "true".into()),
        ("ADMIN_API_KEY".into(), ADMIN_KEY.into()),
    ]);
    opts
}

const ADMIN_KEY: &str = "admin-key-0123456789";

/// POST to an admin route with `key`.
async fn admin(base_url: &str, route: &str, key: &str, body: Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base_url}/admin/plugin/serverless/{route}"))
        .header("X-Admin-Api-Key", key)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("admin body"))
}

/// The inner error text of a dispatch that failed with one `-500` event.
fn failed_dispatch(events: &[Value]) -> String {
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["code"], -500, "{events:?}");
    let message = events[0]["message"].as_str().expect("message");
    let outer: Value = serde_json::from_str(message).expect("error is JSON");
    assert_eq!(outer["error_type"], "PluginInvokeError", "{outer}");
    let inner: Value =
        serde_json::from_str(outer["message"].as_str().expect("inner")).expect("inner is JSON");
    assert_eq!(inner["error_type"], "PluginDaemonInnerError", "{inner}");
    inner["message"].as_str().expect("text").to_owned()
}

/// The backwards tool's JSON report for `mode`.
async fn backwards(client: &Client, mode: &str, text: &str) -> Value {
    let body = json!({
        "user_id": "u-1", "conversation_id": null, "app_id": null, "message_id": null,
        "data": {"provider": ECHO_PROVIDER, "tool": BACKWARDS_TOOL, "credentials": {},
                 "tool_parameters": {"mode": mode, "text": text}}
    });
    let (status, events) = client
        .dispatch(TENANT, ECHO_PLUGIN_ID, "tool/invoke", body)
        .await
        .expect("dispatch");
    let text = tool_texts(&events);
    assert_eq!(text.len(), 1, "HTTP {status}: {events:?}");
    serde_json::from_str(&text[0]).expect("report is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_invoke_backwards_restart_and_admin() {
    let connector = FakeConnector::start(echo_venv_python()).await;
    let dify = FakeDify::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start(&bin(), options(&data, &connector), &dify)
        .await
        .expect("daemon starts on the serverless platform");
    connector.set_daemon_url(&daemon.base_url);
    let client = daemon.client();

    // Install: launched through the connector, recorded as a serverless plugin.
    let uid = client
        .install_package(TENANT, pack_fixture(Variant::Latest))
        .await
        .expect("install");
    assert_eq!(connector.launches().len(), 1);
    assert!(connector.launches()[0].ends_with(".difypkg"));
    let (_, list) = client
        .get(&format!(
            "plugin/{TENANT}/management/list?page=1&page_size=10"
        ))
        .await
        .expect("list");
    let listed = &list["data"]["list"][0];
    assert_eq!(listed["plugin_unique_identifier"], json!(uid), "{list}");
    assert_eq!(listed["runtime_type"], json!("serverless"), "{list}");

    // A tool invoke goes to the function and streams back.
    let (status, events) = client
        .invoke_echo(TENANT, "hello serverless", "all")
        .await
        .expect("invoke");
    assert_eq!(status, 200);
    assert_eq!(tool_texts(&events), ["hello serverless"]);
    assert!(
        events.iter().all(|e| e["code"] == 0),
        "{} events, one failed",
        events.len()
    );
    assert_eq!(
        events[1]["data"]["message"]["json_object"],
        json!({"echo": "hello serverless"})
    );
    assert!(
        events.len() >= 3,
        "text, json and the blob's chunks: {}",
        events.len()
    );

    // Backwards storage: the SDK posts to /backwards-invocation/transaction.
    assert_eq!(
        backwards(&client, "storage", "v1").await["result"],
        json!({"got": "v1", "exists": true, "after_delete": false})
    );

    // An unknown session on the transaction route: upstream's 400.
    let resp = reqwest::Client::new()
        .post(format!("{}/backwards-invocation/transaction", daemon.base_url))
        .body(r#"{"event":"session","session_id":"nope","data":{"type":"invoke","data":{"type":"storage","backwards_request_id":"req-123","request":{}}}}"#)
        .send()
        .await
        .expect("transaction");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["backwards_request_id"], "req-123");
    assert_eq!(body["message"], "failed to get session info from cache");
    assert_eq!(body["data"]["error_type"], "SessionNotFound");
    assert_eq!(body["data"]["session_id"], "nope");

    // A restart serves the plugin from its stored row: no second launch.
    daemon.restart().await.expect("restart");
    let (_, events) = client
        .invoke_echo(TENANT, "again", "text")
        .await
        .expect("invoke after restart");
    assert_eq!(tool_texts(&events), ["again"], "{events:?}");
    assert_eq!(connector.launches().len(), 1);

    // The function goes down: two attempts (MAX_SERVERLESS_RETRY_TIMES=2), then the error.
    connector.kill_functions();
    let (_, events) = client
        .invoke_echo(TENANT, "gone", "text")
        .await
        .expect("invoke a dead function");
    let text = failed_dispatch(&events);
    assert!(
        text.starts_with("Error sending request to serverless: all 2 attempts failed, last error: attempt 2/2 failed"),
        "{text}"
    );

    // Admin: a wrong key is refused; reinstall launches a new function even though the
    // connector still lists the old one, and the plugin serves again.
    let (status, _) = admin(
        &daemon.base_url,
        "reinstall",
        "wrong-key-123",
        json!({"plugin_unique_identifier": uid}),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = admin(
        &daemon.base_url,
        "reinstall",
        ADMIN_KEY,
        json!({"plugin_unique_identifier": uid}),
    )
    .await;
    assert_eq!(status, 200);
    let events = plugind_test_support::parse_sse_body(&body).expect("reinstall SSE");
    assert!(events.iter().all(|e| e["code"] == 0), "{events:?}");
    assert_eq!(events[0]["data"]["event"], "info", "{events:?}");
    let last = events.last().expect("events");
    assert_eq!(
        last["data"],
        json!({"event": "done", "data": "successfully reinstalled"}),
        "{events:?}"
    );
    assert_eq!(connector.launches().len(), 2);
    let (_, events) = client
        .invoke_echo(TENANT, "back", "text")
        .await
        .expect("invoke");
    assert_eq!(tool_texts(&events), ["back"], "{events:?}");

    // Switch-endpoint: required fields, then the plugin is served from the given function.
    let (status, _) = admin(
        &daemon.base_url,
        "switch-endpoint",
        ADMIN_KEY,
        json!({"plugin_unique_identifier": uid}),
    )
    .await;
    assert_eq!(status, 400);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (status, body) = admin(
        &daemon.base_url,
        "switch-endpoint",
        ADMIN_KEY,
        json!({"plugin_unique_identifier": uid, "function_name": "old", "function_url": dead}),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"code":0,"message":"success","data":true}"#)
    );
    let (_, events) = client
        .invoke_echo(TENANT, "old", "text")
        .await
        .expect("invoke");
    assert!(failed_dispatch(&events)
        .starts_with("Error sending request to serverless: all 2 attempts failed"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_is_down_at_start_is_a_startup_error() {
    let dify = FakeDify::start().await;
    let data = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let port = free_port();
    let mut opts = DaemonOptions::new(data.path());
    opts.extra_env = vec![
        ("PLATFORM".into(), "serverless".into()),
        (
            "DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY".into(),
            "k".into(),
        ),
    ];
    let err = match Daemon::start(&bin(), opts.clone(), &dify).await {
        Ok(_) => panic!("the daemon must not start without its connector"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("daemon exited during startup"), "{err}");
    assert!(err.contains("did not answer its ping"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Without the key the daemon refuses at once, saying which setting is missing.
    opts.extra_env.pop();
    let err = match Daemon::start(&bin(), opts, &dify).await {
        Ok(_) => panic!("the daemon must not start without the connector key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY"),
        "{err}"
    );
}
