//! Remote debugging end to end (plugin-protocol §5, http-api §4.7): the real SDK in remote mode
//! dials into the daemon's debugging port, is installed for the tenant of its key, serves tool
//! calls and backwards storage calls over the socket, and is removed when it goes; malformed
//! registrations are refused with one line saying what to fix; many debugging plugins of several
//! tenants are served at once, each answer reaching its own caller.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugind_test_support::remote::{exchange, registration, RawPlugin, SdkPlugin};
use plugind_test_support::{
    tool_texts, Client, Daemon, DaemonOptions, FakeDify, BACKWARDS_TOOL, ECHO_PLUGIN_ID,
    ECHO_PROVIDER, ECHO_TOOL,
};
use serde_json::{json, Value};

const TENANT: &str = "3e1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a51";
const TENANTS: [&str; 4] = [
    "4f2a3b5c-6d7e-4f8a-9b0c-1d2e3f4a5b62",
    "5a3b4c6d-7e8f-4a9b-8c1d-2e3f4a5b6c73",
    "6b4c5d7e-8f9a-4b0c-9d2e-3f4a5b6c7d84",
    "7c5d6e8f-9a0b-4c1d-8e3f-4a5b6c7d8e95",
];
/// How long a test waits for something that normally takes a second or two (a plugin to
/// register, a cleanup): generous, for a loaded machine; never a measurement.
const PATIENCE: Duration = Duration::from_secs(120);

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A daemon with remote debugging on `127.0.0.1:<port>` (plus `extra`).
async fn start(dir: &std::path::Path, dify: &FakeDify, extra: &[(&str, &str)]) -> (Daemon, u16) {
    let port = free_port();
    let mut env = vec![
        (
            "PLUGIN_REMOTE_INSTALLING_ENABLED".to_owned(),
            "true".to_owned(),
        ),
        (
            "PLUGIN_REMOTE_INSTALLING_HOST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("PLUGIN_REMOTE_INSTALLING_PORT".to_owned(), port.to_string()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let daemon = Daemon::start(
        &bin(),
        DaemonOptions {
            extra_env: env,
            ..DaemonOptions::new(dir)
        },
        dify,
    )
    .await
    .expect("daemon starts");
    (daemon, port)
}

async fn debugging_key(client: &Client, tenant: &str) -> String {
    let (status, resp) = client
        .post_json(&format!("plugin/{tenant}/debugging/key"), json!({}))
        .await
        .expect("debugging key");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["code"], 0, "{resp}");
    resp["data"]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("no key in {resp}"))
        .to_owned()
}

async fn listed(client: &Client, tenant: &str) -> Vec<Value> {
    let (_, resp) = client
        .get(&format!(
            "plugin/{tenant}/management/list?page=1&page_size=100"
        ))
        .await
        .expect("list");
    resp["data"]["list"].as_array().cloned().unwrap_or_default()
}

/// Waits until `plugin_id` is in the tenant's list; returns its entry.
async fn wait_listed(client: &Client, tenant: &str, plugin_id: &str, daemon: &Daemon) -> Value {
    let start = Instant::now();
    loop {
        if let Some(entry) = listed(client, tenant)
            .await
            .into_iter()
            .find(|e| e["plugin_id"] == plugin_id)
        {
            return entry;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{plugin_id} never appeared for {tenant}; daemon log:\n{}",
            daemon.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_unlisted(client: &Client, tenant: &str, plugin_id: &str, daemon: &Daemon) {
    let start = Instant::now();
    while listed(client, tenant)
        .await
        .iter()
        .any(|e| e["plugin_id"] == plugin_id)
    {
        assert!(
            start.elapsed() < PATIENCE,
            "{plugin_id} stayed listed for {tenant}; daemon log:\n{}",
            daemon.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tool_body(tool: &str, text: &str, mode: &str) -> Value {
    json!({
        "user_id": "u-1", "conversation_id": null, "app_id": "app-1", "message_id": null,
        "data": {"provider": ECHO_PROVIDER, "tool": tool, "credentials": {}, "credential_type": "api-key",
                 "tool_parameters": {"text": text, "mode": mode}}
    })
}

async fn invoke(client: &Client, tenant: &str, plugin_id: &str, text: &str) -> Vec<Value> {
    let (status, envelopes) = client
        .dispatch(
            tenant,
            plugin_id,
            "tool/invoke",
            tool_body(ECHO_TOOL, text, "text"),
        )
        .await
        .expect("dispatch");
    assert_eq!(status, 200, "{envelopes:?}");
    envelopes
}

/// Sessions in flight of the tenant's runtimes.
async fn sessions(client: &Client, tenant: &str) -> u64 {
    let (_, resp) = client
        .get(&format!("plugin/{tenant}/management/runtime/status"))
        .await
        .expect("status");
    resp["data"]
        .as_array()
        .map(|all| all.iter().filter_map(|s| s["sessions"].as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sdk_in_remote_mode_is_installed_served_and_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let (daemon, port) = start(dir.path(), &dify, &[]).await;
    let client = daemon.client();

    let key = debugging_key(&client, TENANT).await;
    assert!(
        key.len() == 36 && key.chars().filter(|c| *c == '-').count() == 4,
        "{key}"
    );
    assert_eq!(
        debugging_key(&client, TENANT).await,
        key,
        "same key while it lives"
    );
    assert_ne!(debugging_key(&client, TENANTS[0]).await, key);

    let mut sdk = SdkPlugin::spawn(port, &key).expect("sdk");
    let entry = wait_listed(&client, TENANT, ECHO_PLUGIN_ID, &daemon).await;
    assert_eq!(entry["runtime_type"], "remote", "{entry}");
    assert_eq!(entry["source"], "remote", "{entry}");
    let uid = entry["plugin_unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned();
    assert!(uid.starts_with("plugind/echo:0.0.1@"), "{uid}");
    // The icon was sent as asset chunks and remapped to an asset id that serves its bytes.
    let icon = entry["declaration"]["icon"].as_str().expect("icon");
    assert!(icon.ends_with(".svg") && icon.len() == 68, "{icon}");
    let asset = reqwest::Client::new()
        .get(client.url(&format!("plugin/{TENANT}/asset/{icon}")))
        .header("X-Api-Key", &daemon.server_key)
        .send()
        .await
        .expect("asset")
        .bytes()
        .await
        .expect("asset bytes");
    let original =
        std::fs::read(plugind_test_support::fixture_root().join("echo/_assets/icon.svg"))
            .expect("fixture icon");
    assert_eq!(asset.as_ref(), original.as_slice());

    // A tool call, and a backwards storage call, both over the socket.
    let envelopes = invoke(&client, TENANT, ECHO_PLUGIN_ID, "hello over tcp").await;
    assert_eq!(tool_texts(&envelopes), ["hello over tcp"], "{envelopes:?}");
    let (_, envelopes) = client
        .dispatch(
            TENANT,
            ECHO_PLUGIN_ID,
            "tool/invoke",
            tool_body(BACKWARDS_TOOL, "remote-value", "storage"),
        )
        .await
        .expect("backwards");
    let report: Value = serde_json::from_str(
        tool_texts(&envelopes)
            .first()
            .unwrap_or_else(|| panic!("no report in {envelopes:?}")),
    )
    .expect("report json");
    assert_eq!(
        report["result"],
        json!({"got": "remote-value", "exists": true, "after_delete": false}),
        "{report}"
    );

    // A call in flight when the plugin dies fails at once (not at its deadline).
    let in_flight = tokio::spawn({
        let client = client.clone();
        // Sleeps far longer than the test runs; only the plugin's death can end it early.
        let body = tool_body(ECHO_TOOL, "3600", "sleep");
        async move {
            client
                .dispatch(TENANT, ECHO_PLUGIN_ID, "tool/invoke", body)
                .await
        }
    });
    let start = Instant::now();
    while sessions(&client, TENANT).await == 0 {
        if in_flight.is_finished() {
            panic!("the waiting call ended early: {:?}", in_flight.await);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the call never reached the plugin"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sdk.kill().await;
    let (_, envelopes) = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("the in-flight call ends when the plugin dies")
        .expect("join")
        .expect("dispatch");
    let last = envelopes.last().expect("an answer");
    assert_ne!(last["code"], 0, "{envelopes:?}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("Connection closed unexpectedly")),
        "{last}"
    );
    wait_unlisted(&client, TENANT, ECHO_PLUGIN_ID, &daemon).await;
    let (_, envelopes) = client
        .dispatch(
            TENANT,
            ECHO_PLUGIN_ID,
            "tool/invoke",
            tool_body(ECHO_TOOL, "gone", "text"),
        )
        .await
        .expect("dispatch");
    assert!(tool_texts(&envelopes).is_empty(), "{envelopes:?}");

    // Reconnecting (a restarted plugin) gives the same identifier.
    let mut again = SdkPlugin::spawn(port, &key).expect("sdk again");
    let entry = wait_listed(&client, TENANT, ECHO_PLUGIN_ID, &daemon).await;
    assert_eq!(entry["plugin_unique_identifier"], uid.as_str());
    let envelopes = invoke(&client, TENANT, ECHO_PLUGIN_ID, "back again").await;
    assert_eq!(tool_texts(&envelopes), ["back again"], "{envelopes:?}");
    again.kill().await;
    wait_unlisted(&client, TENANT, ECHO_PLUGIN_ID, &daemon).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_refusals_say_what_to_fix_and_the_listener_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    // Two registered connections at most; a heartbeat missing for 3 s disconnects.
    let (daemon, port) = start(
        dir.path(),
        &dify,
        &[
            ("PLUGIN_REMOTE_INSTALLING_MAX_CONN", "2"),
            ("PLUGIN_REMOTE_INSTALLING_HEARTBEAT_TIMEOUT", "3"),
        ],
    )
    .await;
    let client = daemon.client();
    let key = debugging_key(&client, TENANT).await;
    let beat = Some(Duration::from_millis(500));

    let first = RawPlugin::connect(port, &key, "plugind", "first", "first", beat)
        .await
        .expect("first");
    wait_listed(&client, TENANT, "plugind/first", &daemon).await;

    let wait = Duration::from_secs(60);
    let wrong_key = registration(&uuid_like(), "plugind", "nope");
    let before_handshake = registration(&key, "plugind", "early")
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let bad_manifest = registration(&key, "Bad Author", "bad");
    let oversized = vec![b'x'; 10_000];
    let (no_handshake, wrong_key, garbage, early, oversized, bad_manifest) = tokio::join!(
        exchange(port, b"", wait),
        exchange(port, wrong_key.as_bytes(), wait),
        exchange(port, b"this is not json\n", wait),
        exchange(port, before_handshake.as_bytes(), wait),
        exchange(port, &oversized, wait),
        exchange(port, bad_manifest.as_bytes(), wait),
    );
    let one_line = |answer: anyhow::Result<String>, starts: &str| {
        let answer = answer.expect("an answer");
        assert!(
            answer.starts_with(starts),
            "expected {starts:?}, got {answer:?}"
        );
        assert_eq!(answer.matches('\n').count(), 1, "one line: {answer:?}");
    };
    one_line(
        no_handshake,
        "handshake failed, no handshake within 10 s of connecting",
    );
    one_line(wrong_key, "handshake failed, invalid key: ");
    one_line(garbage, "handshake failed, invalid handshake message\n");
    one_line(
        early,
        "handshake failed, registration message before handshake",
    );
    one_line(
        oversized,
        "handshake failed, invalid handshake message: more than 4096 bytes",
    );
    one_line(bad_manifest, "invalid manifest detected: author must be");

    // The first plugin was served all along; a second one registers: the refused connections
    // took no slot.
    let texts = tool_texts(&invoke(&client, TENANT, "plugind/first", "still here").await);
    assert_eq!(texts, ["first:still here"]);
    let second = RawPlugin::connect(port, &key, "plugind", "second", "second", beat)
        .await
        .expect("second");
    wait_listed(&client, TENANT, "plugind/second", &daemon).await;
    // Both slots are taken now.
    let busy = exchange(
        port,
        registration(&key, "plugind", "third").as_bytes(),
        wait,
    )
    .await;
    one_line(busy, "server is busy now, please try again later");
    // A plugin that stops sending heartbeats is disconnected, which frees its slot.
    drop(second);
    wait_unlisted(&client, TENANT, "plugind/second", &daemon).await;
    let mut silent = RawPlugin::connect(port, &key, "plugind", "silent", "silent", None)
        .await
        .expect("silent");
    wait_listed(&client, TENANT, "plugind/silent", &daemon).await;
    tokio::time::timeout(PATIENCE, silent.closed())
        .await
        .expect("a plugin without heartbeats is disconnected");
    wait_unlisted(&client, TENANT, "plugind/silent", &daemon).await;
    let third = RawPlugin::connect(port, &key, "plugind", "third", "third", beat)
        .await
        .expect("third");
    wait_listed(&client, TENANT, "plugind/third", &daemon).await;
    let texts = tool_texts(&invoke(&client, TENANT, "plugind/third", "ok").await);
    assert_eq!(texts, ["third:ok"]);
    assert!(first.is_connected() && third.is_connected());
}

fn uuid_like() -> String {
    "00000000-1111-4222-8333-444444444444".to_owned()
}

/// 20 debugging plugins of 4 tenants (3 real SDK processes, 17 raw-socket plugins), called all at
/// once, three rounds: every answer names its own plugin, tenant and call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_debugging_plugins_of_several_tenants_answer_their_own_callers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let (daemon, port) = start(dir.path(), &dify, &[]).await;
    let client = daemon.client();
    let mut keys = Vec::new();
    for tenant in TENANTS {
        keys.push(debugging_key(&client, tenant).await);
    }

    // (tenant, plugin_id, expected prefix of the answer)
    let mut plugins: Vec<(&str, String, String)> = Vec::new();
    let mut sdks = Vec::new();
    for (t, tenant) in TENANTS.iter().enumerate().take(3) {
        sdks.push(SdkPlugin::spawn(port, &keys[t]).expect("sdk"));
        plugins.push((tenant, ECHO_PLUGIN_ID.to_owned(), String::new()));
    }
    let mut raws = Vec::new();
    for i in 0..17 {
        let t = i % TENANTS.len();
        let name = format!("raw{i}");
        let tag = format!("{}/{name}", TENANTS[t]);
        raws.push(
            RawPlugin::connect(
                port,
                &keys[t],
                "plugind",
                &name,
                &tag,
                Some(Duration::from_secs(5)),
            )
            .await
            .expect("raw plugin"),
        );
        plugins.push((TENANTS[t], format!("plugind/{name}"), format!("{tag}:")));
    }
    for (tenant, plugin_id, _) in &plugins {
        wait_listed(&client, tenant, plugin_id, &daemon).await;
    }
    assert_eq!(plugins.len(), 20);

    for round in 0..3 {
        let calls = plugins
            .iter()
            .enumerate()
            .map(|(i, (tenant, plugin_id, prefix))| {
                let client = client.clone();
                let text = format!("round {round} call {i} for {tenant}");
                let expected = format!("{prefix}{text}");
                async move {
                    let texts = tool_texts(&invoke(&client, tenant, plugin_id, &text).await);
                    (texts, expected)
                }
            });
        for (texts, expected) in futures::future::join_all(calls).await {
            assert_eq!(texts, [expected]);
        }
    }
    for mut sdk in sdks {
        sdk.kill().await;
    }
    drop(raws);
    for (tenant, plugin_id, _) in &plugins {
        wait_unlisted(&client, tenant, plugin_id, &daemon).await;
    }
}
