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
                        SessionMessageType::Stream => SessionEvent::Stream(msg.data),
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
    use super::*;

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
