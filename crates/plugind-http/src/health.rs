//! `GET /health/check` (http-api §4.1): always HTTP 200, keys sorted.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use crate::reply;
use crate::AppState;

pub async fn check(State(state): State<AppState>) -> Response {
    let active = state.active_requests.load(Ordering::Relaxed);
    let dispatch = state.services.active_dispatch_requests();
    let total = state.http.routine_pool_size;
    let body = json!({
        "active_dispatch_requests": dispatch,
        "active_requests": active,
        "build_time": "",
        "platform": state.http.platform,
        "pool_status": {"free": total - active, "busy": active, "total": total},
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    });
    reply::json_response(axum::http::StatusCode::OK, body.to_string())
}
