//! Reliability of the HTTP edge and of shutdown (issue 9, items 3, 6, 10 and 12), on the real
//! daemon binary: body limits answered in upstream's envelope, header/body read timeouts, the
//! connection limit, tenant and asset validation, and a SIGTERM that drains within a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugind_test_support::{
    echo_invoke_body, pack_fixture, Client, Daemon, DaemonOptions, DbChoice, FakeDify, Variant,
    ECHO_PLUGIN_ID,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TENANT: &str = "9e9e9e9e-1111-4222-8333-944455556666";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

async fn start(dir: &Path, dify: &FakeDify, extra_env: &[(&str, &str)]) -> (Daemon, Client) {
    let opts = DaemonOptions {
        data_dir: dir.to_path_buf(),
        db: DbChoice::Sqlite,
        extra_env: extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let daemon = Daemon::start(&bin(), opts, dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();
    (daemon, client)
}

/// The inner error object of an error envelope (`{"message","error_type","args"}`).
fn error_of(envelope: &Value) -> Value {
    assert!(
        envelope["code"].as_i64().unwrap_or(0) < 0,
        "expected an error envelope: {envelope}"
    );
    assert_eq!(envelope["data"], Value::Null, "{envelope}");
    let message = envelope["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {envelope}"));
    serde_json::from_str(message)
        .unwrap_or_else(|e| panic!("message is not JSON ({e}): {envelope}"))
}

async fn upload(client: &Client, tenant: &str, package: Vec<u8>) -> String {
    let (status, resp) = client
        .upload_package(tenant, package, false)
        .await
        .expect("upload");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["code"], 0, "{resp}");
    resp["data"]["unique_identifier"]
        .as_str()
        .expect("uid")
        .to_owned()
}

async fn install_echo(client: &Client) {
    client
        .install_package(TENANT, pack_fixture(Variant::Latest))
        .await
        .expect("install");
}

/// `host:port` of a daemon's base URL.
fn authority(daemon: &Daemon) -> String {
    daemon
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// One HTTP/1.1 response read off a raw connection: status code and body (by Content-Length).
async fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Reads until the server closes the connection; errors if that takes longer than `limit`.
async fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => {
                return Err(format!(
                    "connection still open after {limit:?}; got {:?}",
                    String::from_utf8_lossy(&seen)
                ))
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&chunk[..n]),
        }
    }
}

fn health_request() -> &'static [u8] {
    b"GET /health/check HTTP/1.1\r\nHost: plugind\r\n\r\n"
}

mod http_edge {
    use super::*;

    /// Item 3: a dispatch body well over axum's old 2 MiB default reaches the plugin, which
    /// echoes it back.
    #[tokio::test(flavor = "multi_thread")]
    async fn three_mib_dispatch_body_reaches_the_plugin() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_daemon, client) = start(dir.path(), &dify, &[]).await;
        install_echo(&client).await;

        let text = "x".repeat(3 << 20);
        let (status, events) = client
            .dispatch(
                TENANT,
                ECHO_PLUGIN_ID,
                "tool/invoke",
                echo_invoke_body(&text, "text"),
            )
            .await
            .expect("dispatch");
        assert_eq!(status, 200, "first event: {:?}", events.first());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["code"], 0, "code of {}", events[0]["message"]);
        assert_eq!(events[0]["data"]["type"], "text");
        assert_eq!(
            events[0]["data"]["message"]["text"].as_str().map(str::len),
            Some(text.len())
        );
    }

    /// Item 3: above `MAX_REQUEST_BODY_SIZE`, dispatch and JSON routes answer HTTP 413 with
    /// upstream's envelope (not axum's plain text); uploads keep their own, larger limit.
    #[tokio::test(flavor = "multi_thread")]
    async fn body_over_the_configured_limit_gets_the_envelope() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_daemon, client) =
            start(dir.path(), &dify, &[("MAX_REQUEST_BODY_SIZE", "4096")]).await;

        let big = echo_invoke_body(&"y".repeat(8192), "text").to_string();
        for path in [
            format!("plugin/{TENANT}/dispatch/tool/invoke"),
            format!("plugin/{TENANT}/management/install/identifiers"),
            format!("plugin/{TENANT}/management/uninstall"),
            format!("plugin/{TENANT}/management/installation/fetch/batch"),
        ] {
            let (status, body) = client.post_raw(&path, big.clone()).await.expect("post");
            assert_eq!(status, 413, "{path}: {body}");
            let err = error_of(&body);
            assert_eq!(body["code"], -400, "{path}: {body}");
            assert_eq!(err["error_type"], "PluginDaemonBadRequestError", "{path}");
            assert!(
                err["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("MAX_REQUEST_BODY_SIZE"),
                "{path}: {err}"
            );
        }
        // A small body still passes the limit and reaches validation.
        let (status, body) = client
            .post_json(
                &format!("plugin/{TENANT}/management/uninstall"),
                json!({"plugin_installation_id": ""}),
            )
            .await
            .expect("post");
        assert_eq!(status, 400, "{body}");

        // The package (tens of KiB) is far above 4096 bytes: uploads have their own limit.
        let package = pack_fixture(Variant::Latest);
        assert!(package.len() > 4096);
        upload(&client, TENANT, package).await;
    }

    /// Item 10: a client that sends half a request head is disconnected after
    /// `HTTP_HEADER_READ_TIMEOUT`.
    #[tokio::test(flavor = "multi_thread")]
    async fn half_sent_header_is_closed_after_the_header_timeout() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (daemon, _client) =
            start(dir.path(), &dify, &[("HTTP_HEADER_READ_TIMEOUT", "1")]).await;

        let mut stream = TcpStream::connect(authority(&daemon))
            .await
            .expect("connect");
        stream
            .write_all(b"GET /health/check HTTP/1.1\r\nHost: plugind\r\nX-Slow: ")
            .await
            .expect("write");
        let started = Instant::now();
        wait_for_close(&mut stream, Duration::from_secs(10))
            .await
            .expect("the server closes a connection whose head never completes");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(800),
            "closed too early: {took:?}"
        );
        assert!(took < Duration::from_secs(5), "took {took:?}");

        // An idle keep-alive connection is closed the same way, after a complete request.
        let mut stream = TcpStream::connect(authority(&daemon))
            .await
            .expect("connect");
        stream.write_all(health_request()).await.expect("write");
        let (status, _) = read_response(&mut stream).await.expect("response");
        assert_eq!(status, 200);
        wait_for_close(&mut stream, Duration::from_secs(10))
            .await
            .expect("idle keep-alive connection is closed");
    }

    /// Item 10: a body shorter than its Content-Length is answered HTTP 408 in the envelope
    /// after `HTTP_BODY_READ_TIMEOUT`, and the connection is closed.
    #[tokio::test(flavor = "multi_thread")]
    async fn short_body_is_answered_after_the_body_timeout() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (daemon, _client) = start(dir.path(), &dify, &[("HTTP_BODY_READ_TIMEOUT", "1")]).await;

        for path in [
            format!("/plugin/{TENANT}/dispatch/tool/invoke"),
            format!("/plugin/{TENANT}/management/install/identifiers"),
        ] {
            let mut stream = TcpStream::connect(authority(&daemon))
                .await
                .expect("connect");
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: plugind\r\nX-Api-Key: {}\r\nX-Plugin-ID: {ECHO_PLUGIN_ID}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"data\":",
                daemon.server_key
            );
            stream.write_all(head.as_bytes()).await.expect("write");
            let started = Instant::now();
            let (status, body) =
                tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{path}: no answer within 10 s to a body that stopped")
                    })
                    .expect("response");
            let took = started.elapsed();
            assert_eq!(status, 408, "{path}: {body}");
            assert!(took < Duration::from_secs(5), "{path}: took {took:?}");
            let body: Value = serde_json::from_str(&body).expect("JSON body");
            assert_eq!(body["code"], -400, "{body}");
            assert_eq!(error_of(&body)["error_type"], "PluginDaemonBadRequestError");
            wait_for_close(&mut stream, Duration::from_secs(5))
                .await
                .expect("connection with an unread body is closed");
        }
    }

    /// Item 10: with `ROUTINE_POOL_SIZE` connections open, another connection waits (nothing is
    /// answered on it) while the open ones keep working; it is served once one closes.
    #[tokio::test(flavor = "multi_thread")]
    async fn connections_over_the_limit_wait_for_a_free_slot() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (daemon, _client) = start(dir.path(), &dify, &[("ROUTINE_POOL_SIZE", "3")]).await;
        // Let the harness's health-check connections close.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let mut open = Vec::new();
        for _ in 0..3 {
            let mut stream = TcpStream::connect(authority(&daemon))
                .await
                .expect("connect");
            stream.write_all(health_request()).await.expect("write");
            let (status, _) = read_response(&mut stream).await.expect("response");
            assert_eq!(status, 200);
            open.push(stream);
        }

        let mut waiting = TcpStream::connect(authority(&daemon))
            .await
            .expect("the kernel still completes the handshake");
        waiting.write_all(health_request()).await.expect("write");
        let early =
            tokio::time::timeout(Duration::from_millis(1500), read_response(&mut waiting)).await;
        assert!(
            early.is_err(),
            "a connection over the limit was served: {early:?}"
        );

        // The open connections keep working.
        open[0].write_all(health_request()).await.expect("write");
        let (status, body) = read_response(&mut open[0]).await.expect("response");
        assert_eq!(status, 200, "{body}");

        drop(open.pop());
        let (status, _) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut waiting))
            .await
            .expect("served once a slot is free")
            .expect("response");
        assert_eq!(status, 200);
    }

    /// Item 12: tenant ids are checked for the whole `/plugin/{tenant_id}` group; extract-asset
    /// validates its uid with HTTP 400; asset errors never echo storage paths or long input.
    #[tokio::test(flavor = "multi_thread")]
    async fn tenant_ids_and_asset_requests_are_validated() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (_daemon, client) = start(dir.path(), &dify, &[]).await;
        let uid = upload(&client, TENANT, pack_fixture(Variant::Sdk07)).await;

        for tenant in [
            "..%2F..%2Fevil",
            "not-a-tenant",
            "0F6A4C1E2B3D4E5F8A9B0C1D2E3F4A5B",
        ] {
            let (status, body) = client
                .post_json(
                    &format!("plugin/{tenant}/management/install/identifiers"),
                    json!({"plugin_unique_identifiers": [uid], "source": "package", "metas": [{}]}),
                )
                .await
                .expect("post");
            assert_eq!(status, 400, "{tenant}: {body}");
            assert_eq!(body["code"], -400, "{tenant}: {body}");
            assert_eq!(error_of(&body)["error_type"], "PluginDaemonBadRequestError");
            let (status, body) = client
                .get(&format!(
                    "plugin/{tenant}/management/install/tasks?page=1&page_size=10"
                ))
                .await
                .expect("get");
            assert_eq!(status, 400, "{tenant}: {body}");
            let (status, events) = client
                .dispatch(
                    tenant,
                    ECHO_PLUGIN_ID,
                    "tool/invoke",
                    echo_invoke_body("a", "text"),
                )
                .await
                .expect("dispatch");
            assert_eq!(status, 400, "{tenant}: {events:?}");
        }
        // Without the key it is still 401 first.
        let (status, _) = Client::new(client.base_url(), "wrong")
            .get("plugin/not-a-tenant/management/list?page=1&page_size=10")
            .await
            .expect("get");
        assert_eq!(status, 401);

        let storage = dir.path().to_string_lossy().into_owned();
        // An invalid uid: HTTP 400, -400, and the value is not echoed.
        let long = "z".repeat(5000);
        let (status, body) = client
            .get(&format!(
                "plugin/{TENANT}/extract-asset/?plugin_unique_identifier={long}&file_path=icon.svg"
            ))
            .await
            .expect("get");
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], -400);
        assert!(body.to_string().len() < 400, "{body}");
        // Missing fields are validation errors too.
        let (status, _) = client
            .get(&format!(
                "plugin/{TENANT}/extract-asset/?plugin_unique_identifier={uid}"
            ))
            .await
            .expect("get");
        assert_eq!(status, 400);
        // A valid uid that is not stored: a short -500 that names no path.
        let missing =
            "plugind/echo:9.9.9@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let (status, body) = client
            .get(&format!(
                "plugin/{TENANT}/extract-asset/?plugin_unique_identifier={missing}&file_path=icon.svg"
            ))
            .await
            .expect("get");
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["code"], -500);
        assert!(!body.to_string().contains(&storage), "{body}");
        assert!(body.to_string().len() < 400, "{body}");
        // The stored one still works.
        let (status, body) = client
            .get(&format!(
                "plugin/{TENANT}/extract-asset/?plugin_unique_identifier={uid}&file_path=icon.svg"
            ))
            .await
            .expect("get");
        assert_eq!(status, 200);
        assert!(body.as_str().unwrap_or("").contains("<svg"), "{body}");

        // A 5,000-character asset id cannot name an asset: empty 200, like any missing one.
        let (status, body) = client
            .get(&format!("plugin/{TENANT}/asset/{long}"))
            .await
            .expect("get");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, Value::String(String::new()));
    }
}

mod shutdown {
    use super::*;

    const OTHER_TENANT: &str = "9f9f9f9f-1111-4222-8333-944455556666";
    const DRAIN: Duration = Duration::from_secs(3);

    /// A fixture build whose process never sends its first heartbeat (it sleeps before
    /// starting the SDK), so its install stays `running`.
    fn never_starting_package() -> Vec<u8> {
        let src = tempfile::tempdir().expect("tempdir");
        plugind_test_support::assemble_fixture(Variant::Latest, src.path());
        let main = src.path().join("main.py");
        let text = std::fs::read_to_string(&main).expect("main.py");
        let text = text.replace(
            "if __name__ == \"__main__\":\n",
            "if __name__ == \"__main__\":\n    import time\n    time.sleep(600)\n",
        );
        assert!(text.contains("time.sleep(600)"), "{text}");
        std::fs::write(&main, text).expect("write main.py");
        plugind_package::pack_dir(src.path()).expect("pack")
    }

    /// Item 6: on SIGTERM, in-flight requests may finish until `SHUTDOWN_DRAIN_TIMEOUT`; then
    /// an open stream gets an error event in upstream's envelope, a running install task is
    /// marked failed, and the process exits, all within the deadline plus a margin.
    #[tokio::test(flavor = "multi_thread")]
    async fn sigterm_drains_then_ends_streams_and_fails_running_installs() {
        let dify = FakeDify::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let drain = DRAIN.as_secs().to_string();
        let (mut daemon, client) = start(
            dir.path(),
            &dify,
            &[("SHUTDOWN_DRAIN_TIMEOUT", drain.as_str())],
        )
        .await;
        install_echo(&client).await;

        let slow_uid = upload(&client, OTHER_TENANT, never_starting_package()).await;
        let (_, resp) = client
            .post_json(
                &format!("plugin/{OTHER_TENANT}/management/install/identifiers"),
                json!({"plugin_unique_identifiers": [slow_uid], "source": "package", "metas": [{}]}),
            )
            .await
            .expect("install");
        let task_id = resp["data"]["task_id"]
            .as_str()
            .expect("task id")
            .to_owned();
        assert!(!task_id.is_empty(), "{resp}");

        let long = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .dispatch(
                        TENANT,
                        ECHO_PLUGIN_ID,
                        "tool/invoke",
                        echo_invoke_body("120", "sleep"),
                    )
                    .await
            }
        });
        let short = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .dispatch(
                        TENANT,
                        ECHO_PLUGIN_ID,
                        "tool/invoke",
                        echo_invoke_body("1", "sleep"),
                    )
                    .await
            }
        });
        // Both requests are with the plugin before the signal.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let started = Instant::now();
        let status = daemon.stop().await.expect("stop").expect("was running");
        let took = started.elapsed();
        eprintln!("SIGTERM to exit: {took:?} (drain deadline {DRAIN:?})");
        assert!(
            status.contains("exit status: 0"),
            "{status}\n{}",
            daemon.log_tail(40)
        );
        assert!(
            took < DRAIN + Duration::from_secs(12),
            "exit took {took:?} with a {DRAIN:?} drain deadline\n{}",
            daemon.log_tail(40)
        );

        let (status, events) = short.await.expect("join").expect("short invoke");
        assert_eq!(status, 200);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            events[0]["code"], 0,
            "in-flight request finished: {events:?}"
        );
        assert_eq!(events[0]["data"]["message"]["text"], "1");

        let (status, events) = long.await.expect("join").expect("long invoke");
        assert_eq!(status, 200);
        let last = events.last().expect("an event");
        let err = error_of(last);
        assert_eq!(last["code"], -500, "{last}");
        assert_eq!(err["error_type"], "PluginDaemonInternalServerError");
        assert!(
            err["message"]
                .as_str()
                .unwrap_or("")
                .contains("shutting down"),
            "{err}"
        );

        // The task was failed by the shutdown itself (start-up would write another reason).
        daemon.restart().await.expect("restart");
        let (_, task) = daemon
            .client()
            .get(&format!(
                "plugin/{OTHER_TENANT}/management/install/tasks/{task_id}"
            ))
            .await
            .expect("task");
        let task = &task["data"];
        assert_eq!(task["status"], "failed", "{task}");
        let message = task["plugins"][0]["message"].as_str().unwrap_or("");
        assert_eq!(message, plugind_service::SHUTDOWN_TASK_MESSAGE, "{task}");
    }
}
