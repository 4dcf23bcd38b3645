//! `GET /health/check` (http-api §4.1): liveness, always HTTP 200, keys sorted. And plugind's
//! own `GET /health/ready`: readiness, HTTP 200 only when every installed plugin runs or has
//! failed for a reason (after a restart, until the plugins are restored, 503).

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

/// `GET /health/ready`: `{"ready":bool,"running":n,"starting":[uid…],"failed":[{uid,reason}…]}`,
/// HTTP 200 when ready, 503 while plugins are still starting.
pub async fn ready(State(state): State<AppState>) -> Response {
    let readiness = state.services.readiness();
    let failed: Vec<_> = readiness
        .failed
        .iter()
        .map(|(uid, reason)| json!({"plugin_unique_identifier": uid, "reason": reason}))
        .collect();
    let body = json!({
        "failed": failed,
        "ready": readiness.ready,
        "running": readiness.running,
        "starting": readiness.starting,
    });
    let status = if readiness.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    reply::json_response(status, body.to_string())
}
