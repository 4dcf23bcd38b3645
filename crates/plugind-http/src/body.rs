//! Lenient request decoding (http-api §1.5): JSON bodies and query strings both become a JSON
//! object whose fields the services read with `plugind_service::binding`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
use plugind_entities::DaemonError;
use serde_json::{Map, Value};

use crate::reply;

/// The whole request body, read within the router's limits: larger than `MAX_REQUEST_BODY_SIZE`
/// (or the upload limits on upload routes) is HTTP 413, a body that stops arriving for
/// `HTTP_BODY_READ_TIMEOUT` is HTTP 408, any other read failure HTTP 400; each in upstream's
/// envelope (`-400 PluginDaemonBadRequestError`), never axum's plain-text rejection.
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        Bytes::from_request(request, state)
            .await
            .map(BodyBytes)
            .map_err(|rejection| body_rejection(&rejection))
    }
}

fn body_rejection(rejection: &BytesRejection) -> Response {
    let (status, message) = match rejection {
        BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than the limit (MAX_REQUEST_BODY_SIZE)".to_owned(),
        ),
        _ if caused_by_timeout(rejection) => (
            StatusCode::REQUEST_TIMEOUT,
            "request body did not arrive in time (HTTP_BODY_READ_TIMEOUT)".to_owned(),
        ),
        other => (
            StatusCode::BAD_REQUEST,
            format!("failed to read the request body: {other}"),
        ),
    };
    reply::error(status, &DaemonError::bad_request(message))
}

fn caused_by_timeout(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(err) = source {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Parses a JSON body. An empty body is `{}`; anything that is not JSON is a clear 400.
pub fn json_body(bytes: &Bytes) -> Result<Value, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes)
        .map_err(|err| reply::bad_request(format!("request body is not valid JSON: {err}")))
}

/// Query parameters as a JSON object of strings (the last value of a repeated key wins).
pub fn query_object(query: Option<&str>) -> Value {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let v = query_object(Some(
            "page=1&page_size=256&plugin_unique_identifier=a%2Fb%3A1.0.0%40ab&x=a+b",
        ));
        assert_eq!(v["page"], "1");
        assert_eq!(v["plugin_unique_identifier"], "a/b:1.0.0@ab");
        assert_eq!(v["x"], "a b");
    }
}
