//! Forwarding a request to the cluster node that serves its plugin (http-api §6.3): same
//! method, path, query, headers and body; the target's status and headers (one value per name,
//! as upstream) relayed, the body streamed through chunk by chunk so SSE events are not held
//! back. A forwarded request carries [`FORWARDED_HEADER`] and is never forwarded again.
//!
//! Used by the dispatch routes; the `/e/{hook_id}` handler calls [`forward`] the same way once
//! it resolved the hook's plugin (`Services::route_uid`).

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::Response;
use futures::TryStreamExt;
use plugind_entities::DaemonError;
use plugind_service::cluster::route::FORWARDED_HEADER;
use plugind_service::cluster::Route;
use plugind_service::dispatch::EarlyError;

use crate::reply;

/// Headers that belong to one connection and are never passed on.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
];

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    // No overall timeout (upstream has none): a dispatch ends at the target's own deadline.
    CLIENT.get_or_init(reqwest::Client::new)
}

/// Whether this request was forwarded here by another node.
pub fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

/// What to do with a dispatch after the route decision: `None` = serve it here.
pub async fn maybe_forward(
    route: Result<Route, EarlyError>,
    node_id: Option<&str>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Option<Response> {
    match route {
        Ok(Route::Local) => None,
        Ok(Route::Forward {
            node_id: target,
            base_url,
        }) => {
            tracing::debug!(%target, %uri, "forwarding a dispatch to the node serving it");
            Some(forward(&base_url, node_id.unwrap_or(""), method, uri, headers, body).await)
        }
        Err((status, err)) => Some(reply::error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &err,
        )),
    }
}

/// Sends the request to `base_url` + the original path and query and relays the answer.
pub async fn forward(
    base_url: &str,
    from_node: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = client().request(method, format!("{base_url}{path}"));
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str()) || name.as_str() == "content-length" {
            continue;
        }
        request = request.header(name, value);
    }
    request = request.header(FORWARDED_HEADER, from_node).body(body);
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => {
            return reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &DaemonError::internal(format!("redirect request failed: {err}")),
            )
        }
    };
    let status = answer.status();
    let mut relayed = HeaderMap::new();
    for (name, value) in answer.headers() {
        if HOP_BY_HOP.contains(&name.as_str()) || name.as_str() == "content-length" {
            continue;
        }
        // Set semantics: the last value of a name wins (upstream's relay).
        if let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes()) {
            relayed.insert(name, value.clone());
        }
    }
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = relayed;
    response
}
