//! The route table (http-api §4) and the state handlers share.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, on, post, MethodFilter};
use axum::Router;
use plugind_service::Services;

use crate::{
    assets, auth, debugging, dispatch, endpoints, health, hooks, management, metrics, reply,
    runtime, serverless, tenant,
};

/// Settings of the HTTP edge.
#[derive(Clone)]
pub struct HttpConfig {
    /// `SERVER_KEY`.
    pub server_key: String,
    /// `PLATFORM`, reported by `/health/check`.
    pub platform: String,
    /// `MAX_PLUGIN_PACKAGE_SIZE`: multipart bodies may be this large (plus form overhead).
    pub max_plugin_package_size: u64,
    /// `MAX_BUNDLE_PACKAGE_SIZE`: the same for bundle uploads.
    pub max_bundle_package_size: u64,
    /// `PROMETHEUS_ENABLED`: the recorder's handle serves `GET /metrics/`.
    pub prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `PLUGIN_ENDPOINT_ENABLED`: serve the public hooks `/e/{hook_id}/…`.
    pub endpoint_enabled: bool,
    /// `ROUTINE_POOL_SIZE`, reported by `/health/check` (the server loop also uses it as its
    /// connection limit, see [`crate::serve`]).
    pub routine_pool_size: i64,
    /// `MAX_REQUEST_BODY_SIZE`: the largest body of dispatch and every JSON route (upload routes
    /// have their own limits above).
    pub max_request_body_size: usize,
    /// `HTTP_BODY_READ_TIMEOUT`: longest wait for the next bytes of a request body (`None`: no
    /// limit).
    pub body_read_timeout: Option<Duration>,
    /// `MAX_SERVERLESS_TRANSACTION_TIMEOUT`: lifetime of one
    /// `/backwards-invocation/transaction` request (mounted when `PLATFORM=serverless`).
    pub serverless_transaction_timeout: Duration,
    /// `ADMIN_API_KEY` when `ADMIN_API_ENABLED`: mounts `/admin/*`.
    pub admin_api_key: Option<String>,
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub http: Arc<HttpConfig>,
    pub active_requests: Arc<AtomicI64>,
}

/// Builds the whole router.
pub fn router(services: Services, http: HttpConfig) -> Router {
    let upload_limit = usize::try_from(http.max_plugin_package_size)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    let bundle_limit = usize::try_from(http.max_bundle_package_size)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    let body_limit = http.max_request_body_size;
    let body_read_timeout = http.body_read_timeout.unwrap_or(Duration::MAX);
    let state = AppState {
        services,
        http: Arc::new(http),
        active_requests: Arc::new(AtomicI64::new(0)),
    };

    let management = Router::new()
        .route(
            "/install/upload/package",
            post(management::upload_package).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/install/upload/bundle",
            post(management::upload_bundle).layer(DefaultBodyLimit::max(bundle_limit)),
        )
        .route(
            "/install/identifiers",
            post(management::install_from_identifiers),
        )
        .route("/install/upgrade", post(management::upgrade))
        .route("/install/tasks", get(management::list_tasks))
        .route(
            "/install/tasks/delete_all",
            post(management::delete_all_tasks),
        )
        .route("/install/tasks/{id}", get(management::get_task))
        .route("/install/tasks/{id}/delete", post(management::delete_task))
        .route(
            "/install/tasks/{id}/delete/{*identifier}",
            post(management::delete_task_entry),
        )
        .route(
            "/decode/from_identifier",
            get(management::decode_from_identifier),
        )
        .route("/fetch/manifest", get(management::fetch_manifest))
        .route("/fetch/identifier", get(management::fetch_identifier))
        .route("/fetch/readme", get(management::fetch_readme))
        .route("/uninstall", post(management::uninstall))
        .route("/list", get(management::list_plugins))
        .route("/installation/ids", get(management::installation_ids))
        .route("/{category}/list", get(management::list_category))
        .route(
            "/installation/fetch/batch",
            post(management::fetch_installations),
        )
        .route(
            "/installation/missing",
            post(management::missing_installations),
        )
        .route("/runtime/status", get(runtime::status))
        .route("/runtime/events", get(runtime::events))
        .route("/tools", get(management::list_tools))
        .route("/tool", get(management::get_tool))
        .route(
            "/tools/check_existence",
            post(management::check_tools_existence),
        )
        .route("/models", get(management::list_models))
        .route("/models/bindings", get(management::model_bindings))
        .route("/agent_strategies", get(management::list_agent_strategies))
        .route("/agent_strategy", get(management::get_agent_strategy))
        .route("/datasources", get(management::list_datasources))
        .route("/datasource", get(management::get_datasource))
        .route("/triggers", get(management::list_triggers))
        .route("/trigger", get(management::get_trigger));

    let endpoint = Router::new()
        .route("/setup", post(endpoints::setup))
        .route("/update", post(endpoints::update))
        .route("/remove", post(endpoints::remove))
        .route("/enable", post(endpoints::enable))
        .route("/disable", post(endpoints::disable))
        .route("/list", get(endpoints::list))
        .route("/list/plugin", get(endpoints::list_by_plugin));

    let mut plugin = Router::new();
    if state.services.debugging_enabled() {
        // Upstream registers the route only when remote installing is enabled.
        plugin = plugin.route("/debugging/key", post(debugging::key));
    }
    let plugin = plugin
        .nest("/management", management)
        .nest("/endpoint", endpoint)
        .route("/dispatch/{*action}", post(dispatch::dispatch))
        .route("/asset/{id}", get(assets::asset))
        .route("/extract-asset/", get(assets::extract_asset))
        .route_layer(middleware::from_fn(tenant::require_valid_tenant))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));

    let direct = Router::new()
        .route("/extract", get(dispatch::extract))
        .route("/dispatch/{*action}", post(dispatch::dispatch_direct))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));

    let metrics_enabled = state.http.prometheus.is_some();
    let mut app = Router::new()
        .route("/health/check", get(health::check))
        .route("/health/ready", get(health::ready))
        .nest("/plugin/{tenant_id}", plugin)
        .nest("/v2/invoke", direct)
        .fallback(|| async { reply::route_not_found() });
    if state.http.endpoint_enabled {
        // No API key (http-api §1.4, §5.1); other methods (PATCH) are "route not found".
        let methods = MethodFilter::GET
            .or(MethodFilter::HEAD)
            .or(MethodFilter::POST)
            .or(MethodFilter::PUT)
            .or(MethodFilter::DELETE)
            .or(MethodFilter::OPTIONS);
        let not_found = || async { reply::route_not_found() };
        app = app
            .route(
                "/e/{hook_id}",
                on(methods, hooks::add_slash).fallback(not_found),
            )
            .route(
                "/e/{hook_id}/",
                on(methods, hooks::hook).fallback(not_found),
            )
            .route(
                "/e/{hook_id}/{*path}",
                on(methods, hooks::hook).fallback(not_found),
            );
    }
    if state.http.platform == "serverless" {
        app = app.route(
            "/backwards-invocation/transaction",
            post(serverless::transaction),
        );
    }
    if state.http.admin_api_key.is_some() {
        let admin = Router::new()
            .route("/reinstall", post(serverless::reinstall))
            .route("/switch-endpoint", post(serverless::switch_endpoint))
            .route_layer(middleware::from_fn_with_state(
                state.clone(),
                serverless::require_admin_key,
            ));
        app = app.nest("/admin/plugin/serverless", admin);
    }
    if metrics_enabled {
        // `route_layer` puts the recorder on every route registered so far (not the fallback).
        app = app
            .route_layer(middleware::from_fn(metrics::record))
            .route("/metrics/", get(metrics::render))
            // Upstream's router redirects the slash-less form (http-api §1.2, §4.2).
            .route("/metrics", get(metrics::redirect));
    }
    app.layer(middleware::from_fn_with_state(
        state.clone(),
        count_requests,
    ))
    // Route-level limits (uploads) are set closer to the handler and win over this default.
    .layer(DefaultBodyLimit::max(body_limit))
    // Between body bytes only: responses (long SSE streams) are not timed.
    .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        body_read_timeout,
    ))
    .with_state(state)
}

/// Counts in-flight requests for `/health/check`.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    state.active_requests.fetch_add(1, Ordering::Relaxed);
    let response = next.run(request).await;
    state.active_requests.fetch_sub(1, Ordering::Relaxed);
    response
}
