//! `X-Api-Key` must equal `SERVER_KEY` on `/plugin/*` (http-api §1.4).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use plugind_entities::{DaemonError, ErrorType};

use crate::reply;
use crate::AppState;

pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get("X-Api-Key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(given, state.http.server_key.as_bytes()) {
        return reply::error(
            StatusCode::UNAUTHORIZED,
            &DaemonError::new(ErrorType::Unauthorized, "unauthorized"),
        );
    }
    next.run(request).await
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
