//! `POST /plugin/{tenant}/dispatch/*` (http-api §3, §4.3) and the direct `/v2/invoke/*` routes
//! (§4.4): an SSE stream in upstream's framing.
//!
//! Framing: `data: <envelope>\n\n` per chunk, `Content-Type: text/event-stream`, nothing else —
//! no comments, no keep-alives (Dify would choke on them). The status line and headers are held
//! back until the first event exists, so "no bytes before the first token" holds. Events that
//! are ready together go out together: one body frame (one HTTP chunk, one write) per batch,
//! never waiting for more than what is there. A chunk's JSON is copied into the envelope as the
//! plugin encoded it, not re-serialised.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use futures::StreamExt;
use plugind_entities::DaemonError;
use plugind_service::dispatch::{find_action, polling_result, Chunk, ChunkStream, EarlyError};

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
        .ready_chunks(SSE_BATCH_EVENTS)
        .map(|batch| Ok::<_, std::convert::Infallible>(sse_events(batch)));
    let mut response = Response::new(Body::from_stream(events));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// Most events framed into one body frame.
const SSE_BATCH_EVENTS: usize = 256;

/// Frames events that are ready together into one body frame.
fn sse_events(items: Vec<Result<Chunk, DaemonError>>) -> Bytes {
    let size = items
        .iter()
        .map(|item| item.as_ref().map_or(256, Chunk::len) + 48)
        .sum();
    let mut out = Vec::with_capacity(size);
    for item in items {
        push_sse_event(&mut out, item);
    }
    Bytes::from(out)
}

/// `data: {"code":0,"message":"success","data":<chunk>}\n\n`, or the error's envelope.
fn push_sse_event(out: &mut Vec<u8>, item: Result<Chunk, DaemonError>) {
    out.extend_from_slice(b"data: ");
    match item {
        // A carriage return (whitespace between tokens) would end an SSE line: re-encode then.
        Ok(chunk) if chunk.has_cr() => match chunk.to_value() {
            Ok(value) => push_success(out, &Chunk::from_value(&value)),
            Err(_) => out.extend_from_slice(
                DaemonError::internal("undecodable chunk")
                    .envelope_json()
                    .as_bytes(),
            ),
        },
        Ok(chunk) => push_success(out, &chunk),
        Err(err) => out.extend_from_slice(err.envelope_json().as_bytes()),
    }
    out.extend_from_slice(b"\n\n");
}

/// The success envelope around raw chunk bytes; the same bytes `success_json` writes.
fn push_success(out: &mut Vec<u8>, chunk: &Chunk) {
    out.extend_from_slice(br#"{"code":0,"message":"success","data":"#);
    out.extend_from_slice(chunk.as_bytes());
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugind_entities::envelope::success_json;
    use serde_json::json;

    #[test]
    fn events_of_a_batch_are_framed_into_one_frame_with_the_chunk_bytes_as_sent() {
        let value = json!({"type": "text", "message": {"text": "a\nb é"}});
        let encoded = Chunk::from_value(&value);
        let framed = sse_events(vec![
            Ok(encoded.clone()),
            Ok(Chunk::from_json(r#"{"a": 1}"#).expect("json")),
            Ok(Chunk::from_json("{\"a\":\r1}").expect("json")),
            Err(DaemonError::internal("boom")),
        ]);
        let text = String::from_utf8(framed.to_vec()).expect("utf8");
        let expected = format!(
            "data: {}\n\ndata: {{\"code\":0,\"message\":\"success\",\"data\":{{\"a\": 1}}}}\n\ndata: {}\n\ndata: {}\n\n",
            success_json(&value).expect("json"),
            success_json(&json!({"a": 1})).expect("json"),
            DaemonError::internal("boom").envelope_json()
        );
        assert_eq!(text, expected);
        assert!(!text.contains('\r'));
    }
}
