//! `POST /plugin/{tenant}/debugging/key` (http-api §4.7): the tenant's remote-debugging key,
//! `{"key":"<uuid>"}`; the same key while it lives. Registered only when remote debugging is on.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;

use crate::reply;
use crate::router::AppState;

#[derive(Serialize)]
struct DebuggingKey {
    key: String,
}

pub async fn key(State(state): State<AppState>, Path(tenant_id): Path<String>) -> Response {
    reply::service(
        state
            .services
            .debugging_key(&tenant_id)
            .await
            .map(|key| DebuggingKey { key }),
    )
}
