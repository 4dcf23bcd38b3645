//! Prometheus metrics (http-api §4.2): `GET /metrics/` and the request counters upstream exports
//! (`plugin_http_requests_total`, `plugin_http_request_duration_seconds`), plus the database
//! pool's use, read at each scrape (`plugind_db_pool_connections{state="open|idle|in_use"}`,
//! `plugind_db_pool_max_open_connections`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Records one request: method, route pattern (not the raw path) and status.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("plugin_http_requests_total", "method" => method.clone(), "endpoint" => endpoint.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("plugin_http_request_duration_seconds", "method" => method, "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics/`: the text exposition format.
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = state.http.prometheus.as_ref() else {
        return crate::reply::route_not_found();
    };
    let pool = state.services.db_pool_stats();
    metrics::gauge!("plugind_db_pool_connections", "state" => "open").set(f64::from(pool.open));
    metrics::gauge!("plugind_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("plugind_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.open.saturating_sub(pool.idle)));
    metrics::gauge!("plugind_db_pool_max_open_connections").set(f64::from(pool.max_open));
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /metrics`: 301 to `/metrics/`, the query string kept, as upstream's router answers.
pub async fn redirect(uri: axum::http::Uri) -> Response {
    let location = match uri.query() {
        Some(q) => format!("/metrics/?{q}"),
        None => "/metrics/".to_owned(),
    };
    let mut response = axum::http::StatusCode::MOVED_PERMANENTLY.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
