//! Responses in upstream's envelope (http-api §2): success `{"code":0,"message":"success","data":…}`,
//! errors with a JSON-encoded error object as `message`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use plugind_entities::envelope::success_json;
use plugind_entities::DaemonError;
use serde::Serialize;

const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A JSON text as the whole body, with upstream's content type.
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    resp
}

/// HTTP 200 with the success envelope.
pub fn ok<T: Serialize>(data: &T) -> Response {
    match success_json(data) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(err) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &DaemonError::internal(err.to_string()),
        ),
    }
}

/// An error envelope with the given HTTP status.
pub fn error(status: StatusCode, err: &DaemonError) -> Response {
    json_response(status, err.envelope_json())
}

/// Service results on management routes: errors stay HTTP 200 (http-api §2.3), because Dify only
/// reads typed errors from 200 responses.
pub fn service<T: Serialize>(result: Result<T, DaemonError>) -> Response {
    match result {
        Ok(data) => ok(&data),
        Err(err) => error(StatusCode::OK, &err),
    }
}

/// A validation failure: HTTP 400, `-400 PluginDaemonBadRequestError`.
pub fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, &DaemonError::bad_request(message))
}

/// Unknown route: HTTP 404 with upstream's string-coded body.
pub fn route_not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        r#"{"code":"not_found","message":"route not found"}"#.to_owned(),
    )
}
