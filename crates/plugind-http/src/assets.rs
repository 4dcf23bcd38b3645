//! Raw asset bytes (http-api §4.8): `GET /plugin/{tenant}/asset/{id}` and
//! `GET /plugin/{tenant}/extract-asset/`. Success is the bytes, not an envelope.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use plugind_entities::PluginUniqueIdentifier;
use plugind_service::binding::{required_error, str_field};

use crate::body::query_object;
use crate::reply;
use crate::AppState;

fn octets(bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// A missing asset is HTTP 200 with an empty body, as upstream.
pub async fn asset(
    State(state): State<AppState>,
    Path((_tenant, id)): Path<(String, String)>,
) -> Response {
    match state.services.asset(&id).await {
        Ok(bytes) => octets(bytes.unwrap_or_default()),
        Err(err) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, &err),
    }
}

/// Both query fields are required and the uid must be valid (HTTP 400 otherwise, as upstream's
/// binder); the value is not echoed back (it may be kilobytes long).
pub async fn extract_asset(State(state): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let query = query_object(q.as_deref());
    let uid = str_field(&query, "plugin_unique_identifier");
    let file_path = str_field(&query, "file_path");
    if uid.is_empty() {
        return reply::bad_request(required_error("ExtractAssetRequest.PluginUniqueIdentifier"));
    }
    if file_path.is_empty() {
        return reply::bad_request(required_error("ExtractAssetRequest.FilePath"));
    }
    let Ok(uid) = PluginUniqueIdentifier::parse(uid) else {
        return reply::bad_request("plugin_unique_identifier is not valid");
    };
    match state.services.extract_asset(&uid, file_path).await {
        Ok(bytes) => octets(bytes.unwrap_or_default()),
        Err(err) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, &err),
    }
}
