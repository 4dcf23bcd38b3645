//! `POST /plugin/{tenant}/dispatch/*` (http-api §3, §4.3) and the direct `/v2/invoke/*` routes
//! (§4.4): an SSE stream in upstream's framing.
//!
//! Framing: `data: <envelope>\n\n` per chunk, `Content-Type: text/event-stream`, nothing else —
//! no comments, no keep-alives (Dify would choke on them). The status line and headers are held
//! back until the first event exists, so "no bytes before the first token" holds.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use plugind_entities::envelope::success_json;
use plugind_entities::DaemonError;
use plugind_service::dispatch::{find_action, polling_result, ChunkStream, EarlyError};

use crate::body::{json_body, BodyBytes};
use crate::AppState;
use crate::{redirect, reply};

pub async fn dispatch(
    State(state): State<AppState>,
    Path((tenant_id, action)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Response {
    let Some(action) = find_action(&action) else {
        return reply::route_not_found();
    };
    let plugin_id = headers.get("X-Plugin-ID").and_then(|v| v.to_str().ok());
    if !redirect::was_forwarded(&headers) {
        let route = state.services.route_installed(&tenant_id, plugin_id).await;
        let node = state.services.cluster().map(|c| c.node_id());
        if let Some(resp) =
            redirect::maybe_forward(route, node, Method::POST, &uri, &headers, body.clone()).await
        {
            return resp;
        }
    }
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let chunks = state
        .services
        .dispatch(&tenant_id, plugin_id, action, body)
        .await;
    if action.polling {
        return polling_response(chunks).await;
    }
    sse_response(chunks).await
}

/// Model polling (§4.3.6): one plain-JSON answer; every failure is HTTP 500 with the envelope.
async fn polling_response(chunks: Result<ChunkStream, EarlyError>) -> Response {
    let chunks = match chunks {
        Ok(chunks) => chunks,
        Err((status, err)) => {
            return reply::error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                &err,
            )
        }
    };
    match polling_result(chunks).await {
        Ok(result) => reply::ok(&result),
        Err(err) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, &err),
    }
}

/// `POST /v2/invoke/dispatch/*` (http-api §4.4): the uid from `X-Plugin-Unique-Identifier`, the
/// tenant from the body; otherwise the same bodies and SSE answers as the tenant route.
pub async fn dispatch_direct(
    State(state): State<AppState>,
    Path(action): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
) -> Response {
    // The polling routes exist only under the tenant's dispatch group (§4.3.6).
    let Some(action) = find_action(&action).filter(|a| !a.polling) else {
        return reply::route_not_found();
    };
    let parsed_uid = headers
        .get("X-Plugin-Unique-Identifier")
        .and_then(|v| v.to_str().ok())
        .and_then(|u| plugind_entities::PluginUniqueIdentifier::parse(u).ok());
    if let (Some(uid), false) = (&parsed_uid, redirect::was_forwarded(&headers)) {
        let route = state.services.route_uid(uid).await;
        let node = state.services.cluster().map(|c| c.node_id());
        if let Some(resp) =
            redirect::maybe_forward(route, node, Method::POST, &uri, &headers, body.clone()).await
        {
            return resp;
        }
    }
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let uid = headers
        .get("X-Plugin-Unique-Identifier")
        .and_then(|v| v.to_str().ok());
    sse_response(state.services.dispatch_direct(uid, action, body)).await
}

/// `GET /v2/invoke/extract`: the stored package of the `X-Plugin-Unique-Identifier` decoded,
/// as `decode/from_identifier` answers it.
pub async fn extract(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let uid = headers
        .get("X-Plugin-Unique-Identifier")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if uid.is_empty() {
        return reply::bad_request("X-Plugin-Unique-Identifier is required");
    }
    reply::service(state.services.decode_from_identifier(uid).await)
}

/// The SSE answer of a dispatch, or its early error as plain JSON with its status.
async fn sse_response(chunks: Result<ChunkStream, EarlyError>) -> Response {
    let mut chunks = match chunks {
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
