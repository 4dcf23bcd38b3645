//! End-to-end: deadlines and load on one plugin process (issue 11, "Deadlines and load"), and
//! the direct `/v2/invoke/*` routes.
//!
//! * `PLUGIN_MAX_EXECUTION_TIMEOUT` ends a session the plugin never answers, with upstream's
//!   "killed by timeout", while another session on the same process completes;
//! * past `PLUGIN_MAX_SESSIONS_IN_FLIGHT`, requests wait their turn (up to
//!   `PLUGIN_MAX_SESSIONS_QUEUED`) and then succeed; beyond the queue they are answered "busy" in
//!   upstream's error shape, on HTTP 200, never a 500.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugind_test_support::{
    echo_invoke_body, pack_fixture, parse_sse_body, tool_texts, Daemon, DaemonOptions, DbChoice,
    FakeDify, Variant,
};
use serde_json::Value;

const TENANT: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

/// The inner error object of an error envelope.
fn inner_error(envelope: &Value) -> Value {
    let message = envelope["message"].as_str().unwrap_or("");
    serde_json::from_str(message).unwrap_or_else(|_| Value::String(message.to_owned()))
}

/// `/v2/invoke/*` (http-api §4.4): the uid from `X-Plugin-Unique-Identifier`, the tenant from
/// the body, no installation lookup.
async fn direct_invocation(daemon: &Daemon, uid: &str) {
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", daemon.base_url);
    let extracted: Value = http
        .get(url("/v2/invoke/extract"))
        .header("X-Api-Key", &daemon.server_key)
        .header("X-Plugin-Unique-Identifier", uid)
        .send()
        .await
        .expect("extract")
        .json()
        .await
        .expect("json");
    assert_eq!(extracted["code"], 0, "{extracted}");
    assert_eq!(extracted["data"]["unique_identifier"], uid);
    assert!(
        extracted["data"]["manifest"]["name"].is_string(),
        "{extracted}"
    );

    let dispatch = |uid: Option<&str>, body: Value| {
        let mut request = http
            .post(url("/v2/invoke/dispatch/tool/invoke"))
            .header("X-Api-Key", &daemon.server_key)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(uid) = uid {
            request = request.header("X-Plugin-Unique-Identifier", uid);
        }
        async move {
            let resp = request.send().await.expect("dispatch");
            (resp.status().as_u16(), resp.text().await.expect("body"))
        }
    };
    let mut body = echo_invoke_body("direct", "text");
    body["tenant_id"] = Value::String(TENANT.to_owned());
    let (status, text) = dispatch(Some(uid), body.clone()).await;
    assert_eq!(status, 200, "{text}");
    let envelopes = parse_sse_body(&text).expect("SSE");
    assert_eq!(tool_texts(&envelopes), ["direct"], "{text}");

    let (status, text) = dispatch(None, body).await;
    assert_eq!(status, 400, "no uid header: {text}");
    let (status, text) = dispatch(Some(uid), echo_invoke_body("x", "text")).await;
    assert_eq!(status, 400, "no tenant_id: {text}");
    let unauthorized = http
        .post(url("/v2/invoke/dispatch/tool/invoke"))
        .header("X-Plugin-Unique-Identifier", uid)
        .send()
        .await
        .expect("dispatch");
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deadlines_and_back_pressure_on_one_plugin_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(
        &bin(),
        DaemonOptions {
            data_dir: dir.path().to_path_buf(),
            db: DbChoice::Sqlite,
            extra_env: [
                ("PLUGIN_MAX_EXECUTION_TIMEOUT", "4"),
                ("PLUGIN_MAX_SESSIONS_IN_FLIGHT", "2"),
                ("PLUGIN_MAX_SESSIONS_QUEUED", "2"),
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
    let uid = client
        .install_package(TENANT, pack_fixture(Variant::Sdk07))
        .await
        .expect("install");
    direct_invocation(&daemon, &uid).await;

    // A session the plugin never answers in time, and a quick one beside it.
    let hung = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = client.invoke_echo(TENANT, "60", "sleep").await;
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, envelopes) = client
        .invoke_echo(TENANT, "beside", "text")
        .await
        .expect("dispatch");
    assert_eq!(status, 200);
    assert_eq!(tool_texts(&envelopes), ["beside"], "{envelopes:?}");
    let (answer, took) = hung.await.expect("join");
    let (status, envelopes) = answer.expect("dispatch");
    assert_eq!(status, 200);
    let last = envelopes.last().expect("an event");
    assert_eq!(last["code"], -500, "{last}");
    assert_eq!(inner_error(last)["message"], "killed by timeout", "{last}");
    assert!(
        took < Duration::from_secs(30),
        "the deadline (4 s) ended the session, not the plugin (60 s): {took:?}"
    );

    // Six calls of two seconds each at once: two run, two wait their turn, two are refused.
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                // Arrive in order, so that who waits and who is refused is known.
                tokio::time::sleep(Duration::from_millis(100 * i)).await;
                client.invoke_echo(TENANT, "2", "sleep").await
            })
        })
        .collect();
    let mut served = 0;
    let mut busy = 0;
    for call in calls {
        let (status, envelopes) = call.await.expect("join").expect("dispatch");
        assert_eq!(status, 200, "never an HTTP error: {envelopes:?}");
        if tool_texts(&envelopes) == ["2"] {
            served += 1;
            continue;
        }
        let error = inner_error(envelopes.last().expect("an event"));
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("plugin is busy")),
            "{envelopes:?}"
        );
        assert_eq!(error["error_type"], "PluginDaemonInternalServerError");
        busy += 1;
    }
    assert_eq!(
        (served, busy),
        (4, 2),
        "two in flight + two queued served, two refused"
    );
}
