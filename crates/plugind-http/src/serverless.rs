//! The serverless platform's routes: `POST /backwards-invocation/transaction` (http-api §4.10,
//! only when `PLATFORM=serverless`, no authentication: only the functions should reach it) and
//! the admin routes (§4.11, only when `ADMIN_API_ENABLED`, header `X-Admin-Api-Key`).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use plugind_entities::envelope::success_json;
use plugind_entities::{DaemonError, ErrorType};
use plugind_service::binding::{required_error, str_field};
use plugind_service::Transaction;
use serde_json::json;
use tokio::sync::mpsc;

use crate::body::{json_body, BodyBytes};
use crate::{auth, reply, AppState};

/// The most of a transaction body that is read (the rest is ignored).
const TRANSACTION_BODY_BYTES: usize = 6 << 20;
/// A bare `\n\n` this often keeps a quiet transaction open.
const KEEP_ALIVE: Duration = Duration::from_secs(25);
/// Deadline of the admin reinstall stream.
const REINSTALL_DEADLINE: Duration = Duration::from_secs(1800);

fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// `POST /backwards-invocation/transaction`.
pub async fn transaction(State(state): State<AppState>, request: Request) -> Response {
    let session_header = request
        .headers()
        .get("Dify-Plugin-Session-ID")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = request.into_body().into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => {
                let room = TRANSACTION_BODY_BYTES.saturating_sub(bytes.len());
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    }
    tracing::debug!(session_header, "serverless transaction");
    let timeout = state.http.serverless_transaction_timeout;
    match state.services.serverless_transaction(&bytes) {
        Transaction::BadRequest(text) => (StatusCode::BAD_REQUEST, text).into_response(),
        Transaction::SessionNotFound(body) => {
            reply::json_response(StatusCode::BAD_REQUEST, body.to_string())
        }
        Transaction::Failed => {
            (StatusCode::INTERNAL_SERVER_ERROR, "failed to parse request").into_response()
        }
        Transaction::Ignored => {
            // As upstream: nothing answers this request until its timeout.
            tokio::time::sleep(timeout).await;
            StatusCode::OK.into_response()
        }
        Transaction::Answers(lines) => event_stream(Body::from_stream(answers(lines, timeout))),
    }
}

/// Each answer line followed by a blank line, a bare `\n\n` every 25 s while nothing comes, the
/// end when the call finished (its channel closed) or at the transaction deadline.
fn answers(
    lines: mpsc::Receiver<Vec<u8>>,
    timeout: Duration,
) -> impl futures::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let deadline = tokio::time::Instant::now() + timeout;
    futures::stream::unfold(
        (lines, lines_keepalive()),
        move |(mut lines, mut tick)| async move {
            let bytes = tokio::select! {
                line = lines.recv() => {
                    let mut line = line?;
                    if !line.ends_with(b"\n") {
                        line.push(b'\n');
                    }
                    line.push(b'\n');
                    Bytes::from(line)
                }
                _ = tick.tick() => Bytes::from_static(b"\n\n"),
                () = tokio::time::sleep_until(deadline) => return None,
            };
            Some((Ok(bytes), (lines, tick)))
        },
    )
}

fn lines_keepalive() -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// `X-Admin-Api-Key` must equal `ADMIN_API_KEY` on `/admin/*`.
pub async fn require_admin_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let expected = state.http.admin_api_key.as_deref().unwrap_or("");
    let given = request
        .headers()
        .get("X-Admin-Api-Key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !auth::constant_time_eq(given, expected.as_bytes()) {
        return reply::error(
            StatusCode::UNAUTHORIZED,
            &DaemonError::new(ErrorType::Unauthorized, "unauthorized"),
        );
    }
    next.run(request).await
}

fn admin_event(event: &str, data: &str) -> Bytes {
    let json = success_json(&json!({"event": event, "data": data})).unwrap_or_default();
    Bytes::from(format!("data: {json}\n\n"))
}

/// `POST /admin/plugin/serverless/reinstall`: SSE of `info`… then `done` or `error`.
pub async fn reinstall(State(state): State<AppState>, BodyBytes(body): BodyBytes) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let uid = str_field(&body, "plugin_unique_identifier").to_owned();
    if uid.is_empty() {
        return reply::bad_request(required_error(
            "ReinstallPluginFromIdentifierRequest.PluginUniqueIdentifier",
        ));
    }
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let services = state.services.clone();
    tokio::spawn(async move {
        let progress = {
            let tx = tx.clone();
            move |text: String| {
                let _ = tx.send(admin_event("info", &text));
            }
        };
        let outcome = tokio::time::timeout(
            REINSTALL_DEADLINE,
            services.serverless_reinstall(&uid, &progress),
        )
        .await
        .unwrap_or_else(|_| Err("reinstall timed out".into()));
        let _ = match outcome {
            Ok(text) => tx.send(admin_event("done", &text)),
            Err(text) => tx.send(admin_event("error", &text)),
        };
    });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    event_stream(Body::from_stream(events))
}

/// `POST /admin/plugin/serverless/switch-endpoint`: `true` or an error envelope.
pub async fn switch_endpoint(
    State(state): State<AppState>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match state.services.serverless_switch_endpoint(&body).await {
        Err(err) if err.error_type == ErrorType::BadRequest => {
            reply::error(StatusCode::BAD_REQUEST, &err)
        }
        other => reply::service(other),
    }
}
