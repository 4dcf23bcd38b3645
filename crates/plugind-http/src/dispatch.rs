//! `POST /plugin/{tenant}/dispatch/*` (http-api §3, §4.3): an SSE stream in upstream's framing.
//!
//! Framing: `data: <envelope>\n\n` per chunk, `Content-Type: text/event-stream`, nothing else —
//! no comments, no keep-alives (Dify would choke on them). The status line and headers are held
//! back until the first event exists, so "no bytes before the first token" holds.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use plugind_entities::envelope::success_json;
use plugind_entities::DaemonError;
use plugind_service::dispatch::find_action;

use crate::body::{json_body, BodyBytes};
use crate::reply;
use crate::AppState;

pub async fn dispatch(
    State(state): State<AppState>,
    Path((tenant_id, action)): Path<(String, String)>,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Response {
    let Some(action) = find_action(&action) else {
        return reply::route_not_found();
    };
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let plugin_id = headers.get("X-Plugin-ID").and_then(|v| v.to_str().ok());
    let mut chunks = match state
        .services
        .dispatch(&tenant_id, plugin_id, action, body)
        .await
    {
        Ok(chunks) => chunks,
        Err((status, err)) => {
            return reply::error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &err,
            )
        }
    };
    // Wait for the first event before answering (see the module doc).
    let first = chunks.next().await;
    let events = futures::stream::iter(first)
        .chain(chunks)
        .map(|item| Ok::<_, std::convert::Infallible>(sse_event(item)));
    let mut response = Response::new(Body::from_stream(events));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

fn sse_event(item: Result<serde_json::Value, DaemonError>) -> Bytes {
    let json = match item {
        Ok(chunk) => success_json(&chunk).unwrap_or_default(),
        Err(err) => err.envelope_json(),
    };
    let mut line = Vec::with_capacity(json.len() + 8);
    line.extend_from_slice(b"data: ");
    line.extend_from_slice(json.as_bytes());
    line.extend_from_slice(b"\n\n");
    Bytes::from(line)
}
