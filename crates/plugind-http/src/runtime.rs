//! plugind's own operator routes (not upstream's): runtime statuses and the lifecycle event
//! stream of a tenant's plugins, under the tenant's management group (so `X-Api-Key` applies).
//!
//! * `GET /plugin/{tenant}/management/runtime/status[?plugin_id=a/b]`: the envelope with a list
//!   of statuses (state, restarts, last error, pid, heartbeat, sessions, recent log lines).
//! * `GET /plugin/{tenant}/management/runtime/events[?plugin_id=a/b]`: server-sent events, one
//!   JSON lifecycle event per `data:` line, with keep-alive comments (`curl -N` shows a plugin
//!   starting, crashing and coming back).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

use crate::body::query_object;
use crate::reply;
use crate::AppState;

fn plugin_id(query: Option<&str>) -> Option<String> {
    match query_object(query).get("plugin_id") {
        Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
        _ => None,
    }
}

pub async fn status(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let plugin_id = plugin_id(query.as_deref());
    reply::service(
        state
            .services
            .runtime_statuses(&tenant_id, plugin_id.as_deref())
            .await,
    )
}

pub async fn events(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let plugin_id = plugin_id(query.as_deref());
    let events = match state
        .services
        .lifecycle_events(&tenant_id, plugin_id.as_deref())
        .await
    {
        Ok(events) => events,
        Err(err) => return reply::error(axum::http::StatusCode::OK, &err),
    };
    let stream = events.map(|event| {
        let sse = Event::default()
            .json_data(&*event)
            .unwrap_or_else(|_| Event::default().comment("unencodable event"));
        Ok::<_, Infallible>(sse)
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
