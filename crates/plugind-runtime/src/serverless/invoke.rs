//! One invocation of a serverless function: `POST <function URL>/invoke?action=<a>` with the
//! in-stream message as body (plugin-protocol §6.2), retried only after a transport error or an
//! HTTP 502, and its line-delimited answer turned into session events (§6.3).

use std::time::Duration;

use plugind_io::SessionMessageType;
use serde_json::{json, Value};

use super::events::{classify, field_str, inner_error, runtime_error, Line, Lines};
use super::Shared;
use crate::message::SessionEvent;

/// The error a session gets when the plugin sends `invoke` over the function's stream.
pub(crate) fn not_supported() -> Value {
    json!({
        "error_type": "serverless_event_not_supported",
        "message": "serverless event is not supported by full duplex",
    })
}

/// Wait before retry `n` (1-based): 500 ms, 1 s, 2 s, … capped at 30 s.
fn backoff(n: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << n.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(30_000))
}

/// `<function URL>/invoke?action=<a>`: the path joined segment-wise, the query appended.
fn invoke_url(function_url: &str, action: &str) -> String {
    format!(
        "{}/invoke?action={}",
        function_url.trim_end_matches('/'),
        action
    )
}

/// Sends `body` and hands every resulting event to `sink` (which answers false once nobody
/// listens; the request is then dropped). Ends with `End` unless the daemon delivered an error.
pub(crate) async fn invoke(
    shared: &Shared,
    function_url: &str,
    session_id: &str,
    action: &str,
    body: Vec<u8>,
    sink: &mut (dyn FnMut(SessionEvent, usize) -> bool + Send),
) {
    let limit = shared.cfg.execution_timeout;
    let exchange = exchange(shared, function_url, session_id, action, body, sink);
    if tokio::time::timeout(limit, exchange).await.is_err() {
        sink(
            SessionEvent::Error(inner_error(format!(
                "serverless request timed out after {}s (PLUGIN_MAX_EXECUTION_TIMEOUT)",
                limit.as_secs()
            ))),
            0,
        );
    }
}

async fn exchange(
    shared: &Shared,
    function_url: &str,
    session_id: &str,
    action: &str,
    body: Vec<u8>,
    sink: &mut (dyn FnMut(SessionEvent, usize) -> bool + Send),
) {
    let url = invoke_url(function_url, action);
    let attempts = u32::try_from(shared.cfg.max_retry_times.max(1)).unwrap_or(u32::MAX);
    let mut last = String::new();
    let mut response = None;
    for n in 1..=attempts {
        let sent = shared
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream")
            .header("Dify-Plugin-Session-ID", session_id)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().as_u16() == 502 => {
                last = format!("attempt {n}/{attempts} failed with status code: 502");
            }
            Ok(resp) => {
                response = Some(resp);
                break;
            }
            Err(e) => last = format!("attempt {n}/{attempts} failed: {e}"),
        }
        tracing::warn!(session_id, action, "serverless request failed: {last}");
        if n < attempts {
            tokio::time::sleep(backoff(n)).await;
        }
    }
    let Some(mut resp) = response else {
        sink(
            SessionEvent::Error(inner_error(format!(
                "Error sending request to serverless: all {attempts} attempts failed, last error: {last}"
            ))),
            0,
        );
        return;
    };

    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let amzn_type = header("x-amzn-ErrorType");
    let amzn_request = header("x-amzn-RequestId");
    if !status.is_success() || !amzn_type.is_empty() {
        let mut head = Vec::new();
        while head.len() < 4096 {
            match resp.chunk().await {
                Ok(Some(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        head.truncate(4096);
        let body: Value = serde_json::from_slice(&head).unwrap_or(Value::Null);
        let fallback = if status.is_success() {
            "Lambda runtime error".to_owned()
        } else {
            status.to_string()
        };
        let pick = |header: &str, field: &str, fallback: String| {
            if !header.is_empty() {
                header.to_owned()
            } else if !field_str(&body, field).is_empty() {
                field_str(&body, field).to_owned()
            } else {
                fallback
            }
        };
        let error_type = pick(&amzn_type, "errorType", fallback);
        let request_id = pick(&amzn_request, "requestId", String::new());
        sink(
            SessionEvent::Error(runtime_error(
                &error_type,
                field_str(&body, "errorMessage"),
                status.as_u16(),
                &request_id,
            )),
            0,
        );
        return;
    }

    let mut lines = Lines::new(shared.cfg.max_line_bytes);
    let mut any_session = false;
    loop {
        let (batch, eof) = match resp.chunk().await {
            Ok(Some(chunk)) => match lines.push(&chunk) {
                Ok(batch) => (batch, false),
                Err(too_long) => {
                    let message = format!(
                        "failed to read response body: line of {} bytes exceeds the limit of {} bytes",
                        too_long.0, shared.cfg.max_line_bytes
                    );
                    sink(SessionEvent::Error(inner_error(message)), 0);
                    return;
                }
            },
            Ok(None) => (lines.finish().into_iter().collect(), true),
            Err(e) => {
                sink(
                    SessionEvent::Error(inner_error(format!("failed to read response body: {e}"))),
                    0,
                );
                return;
            }
        };
        for line in batch {
            let size = line.len();
            match classify(&line) {
                Line::Forward(msg) => {
                    any_session = true;
                    let event = match msg.kind {
                        SessionMessageType::Stream => SessionEvent::Stream(msg.data.into()),
                        SessionMessageType::Error => SessionEvent::Error(msg.data),
                        SessionMessageType::Invoke => {
                            sink(SessionEvent::Error(not_supported()), 0);
                            return;
                        }
                        SessionMessageType::End => SessionEvent::End,
                        SessionMessageType::Unknown(kind) => SessionEvent::Error(json!({
                            "error_type": "unknown_stream_message_type",
                            "message": format!("unknown stream message type: {kind}"),
                            "args": {},
                        })),
                    };
                    if !sink(event, size) {
                        return;
                    }
                }
                Line::End(_) => {
                    sink(SessionEvent::End, 0);
                    return;
                }
                Line::Fail(error) => {
                    sink(SessionEvent::Error(error), 0);
                    return;
                }
                Line::Log(data) => {
                    tracing::info!(session_id, action, log = %data, "serverless plugin log");
                }
                Line::Ignore => {}
            }
        }
        if eof {
            break;
        }
    }
    if !any_session {
        sink(
            SessionEvent::Error(runtime_error("no valid session response", "", 200, "")),
            0,
        );
        return;
    }
    sink(SessionEvent::End, 0);
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::SessionLimits;
    use crate::serverless::ServerlessConfig;

    /// A function that answers the requests it gets, in order, with `responses` (raw HTTP).
    async fn function(responses: Vec<String>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                // Read the head and the body the Content-Length announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        url
    }

    fn http(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    async fn run(responses: Vec<String>) -> Vec<SessionEvent> {
        let url = function(responses).await;
        let shared = Shared::new(
            ServerlessConfig {
                connector_url: "http://127.0.0.1:9".into(),
                connector_api_key: "k".into(),
                launch_timeout: Duration::from_secs(5),
                max_request_bytes: 1 << 20,
                max_retry_times: 3,
                execution_timeout: Duration::from_secs(60),
                max_line_bytes: 1 << 20,
            },
            SessionLimits::default(),
        )
        .expect("shared");
        let mut events = Vec::new();
        let mut sink = |e: SessionEvent, _: usize| {
            events.push(e);
            true
        };
        invoke(
            &shared,
            &url,
            "s1",
            "invoke_tool",
            b"{}".to_vec(),
            &mut sink,
        )
        .await;
        events
    }

    const STREAM: &str =
        r#"{"event":"session","session_id":"s1","data":{"type":"stream","data":{"n":1}}}"#;

    #[tokio::test]
    async fn a_body_that_stops_after_its_chunks_still_ends() {
        let body = format!("{STREAM}\n\n{{\"event\":\"heartbeat\",\"data\":{{}}}}\n\n");
        let events = run(vec![http("200 OK", "", &body)]).await;
        assert_eq!(
            events,
            [SessionEvent::Stream(json!({"n": 1}).into()), SessionEvent::End]
        );
    }

    #[tokio::test]
    async fn a_502_is_retried_and_the_third_attempt_answers() {
        let bad = http("502 Bad Gateway", "", "");
        let body = format!("{STREAM}\n\n");
        let events = run(vec![bad.clone(), bad, http("200 OK", "", &body)]).await;
        assert_eq!(
            events,
            [SessionEvent::Stream(json!({"n": 1}).into()), SessionEvent::End]
        );
    }

    #[tokio::test]
    async fn three_502s_give_upstreams_error() {
        let bad = http("502 Bad Gateway", "", "");
        let events = run(vec![bad.clone(), bad.clone(), bad]).await;
        assert_eq!(
            events,
            [SessionEvent::Error(
                json!({"error_type": "PluginDaemonInnerError",
                "message": "Error sending request to serverless: all 3 attempts failed, last error: attempt 3/3 failed with status code: 502"})
            )]
        );
    }

    #[tokio::test]
    async fn other_statuses_are_not_retried_and_become_runtime_errors() {
        let events = run(vec![http(
            "500 Internal Server Error",
            "x-amzn-RequestId: r-9\r\n",
            r#"{"errorType":"Runtime.Crash","errorMessage":"it fell over"}"#,
        )])
        .await;
        assert_eq!(
            events,
            [SessionEvent::Error(
                json!({"error_type": "PluginRuntimeError",
                "message": "Plugin runtime request failed: Runtime.Crash: it fell over",
                "args": {"status_code": 500, "request_id": "r-9"}})
            )]
        );
        let events = run(vec![http("503 Service Unavailable", "", "down")]).await;
        assert_eq!(
            events[0],
            SessionEvent::Error(json!({"error_type": "PluginRuntimeError",
                "message": "Plugin runtime request failed: 503 Service Unavailable",
                "args": {"status_code": 503}}))
        );
        let events = run(vec![http(
            "200 OK",
            "x-amzn-ErrorType: Function.Unhandled\r\n",
            "",
        )])
        .await;
        assert_eq!(
            events[0],
            SessionEvent::Error(json!({"error_type": "PluginRuntimeError",
                "message": "Plugin runtime request failed: Function.Unhandled",
                "args": {"status_code": 200}}))
        );
    }

    #[tokio::test]
    async fn an_empty_body_and_a_backwards_call_over_the_stream_fail() {
        let events = run(vec![http("200 OK", "", "\n\n")]).await;
        assert_eq!(
            events,
            [SessionEvent::Error(
                json!({"error_type": "PluginRuntimeError",
                "message": "Plugin runtime request failed: no valid session response",
                "args": {"status_code": 200}})
            )]
        );
        let invoke = r#"{"event":"session","session_id":"s1","data":{"type":"invoke","data":{"type":"storage"}}}"#;
        let events = run(vec![http(
            "200 OK",
            "",
            &format!("{invoke}\n\n{STREAM}\n\n"),
        )])
        .await;
        assert_eq!(events, [SessionEvent::Error(not_supported())]);
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(10), Duration::from_secs(30));
        assert_eq!(backoff(64), Duration::from_secs(30));
        assert_eq!(
            invoke_url("http://f/x/", "invoke_tool"),
            "http://f/x/invoke?action=invoke_tool"
        );
    }
}
