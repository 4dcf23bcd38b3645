//! `/plugin/{tenant}/endpoint/*` (http-api §4.6): endpoint management. Service errors are
//! HTTP 200 envelopes; only missing required fields are HTTP 400.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use plugind_entities::EndpointSetup;
use plugind_service::binding::{paging, required_error, str_field};
use serde_json::{Map, Value};

use crate::body::{json_body, query_object, BodyBytes};
use crate::reply;
use crate::AppState;

/// The largest `page_size` the list routes accept.
const MAX_PAGE_SIZE: i64 = 100;

/// `settings` as an object (`null`, absent or another type read as `{}`).
fn settings_of(body: &Value) -> Map<String, Value> {
    body.get("settings")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The validator text (one line per field) for every required field of `request` that is
/// empty in `body`.
fn require(body: &Value, request: &str, fields: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<String> = fields
        .iter()
        .filter(|(key, _)| str_field(body, key).is_empty())
        .map(|(_, name)| required_error(&format!("{request}.{name}")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("\n"))
    }
}

pub async fn setup(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    bytes: BodyBytes,
) -> Response {
    let body = match json_body(&bytes.0) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let fields = [
        ("plugin_unique_identifier", "PluginUniqueIdentifier"),
        ("user_id", "UserID"),
        ("name", "Name"),
    ];
    if let Err(msg) = require(&body, "SetupEndpointRequest", &fields) {
        return reply::bad_request(msg);
    }
    let req = EndpointSetup {
        plugin_unique_identifier: str_field(&body, "plugin_unique_identifier"),
        user_id: str_field(&body, "user_id"),
        name: str_field(&body, "name"),
        settings: settings_of(&body),
    };
    reply::service(state.services.setup_endpoint(&tenant_id, req).await)
}

pub async fn update(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    bytes: BodyBytes,
) -> Response {
    let body = match json_body(&bytes.0) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let fields = [
        ("endpoint_id", "EndpointID"),
        ("user_id", "UserID"),
        ("name", "Name"),
    ];
    if let Err(msg) = require(&body, "UpdateEndpointRequest", &fields) {
        return reply::bad_request(msg);
    }
    reply::service(
        state
            .services
            .update_endpoint(
                &tenant_id,
                str_field(&body, "endpoint_id"),
                str_field(&body, "user_id"),
                str_field(&body, "name"),
                settings_of(&body),
            )
            .await,
    )
}

/// What a remove/enable/disable call does with the endpoint id.
enum Toggle {
    Remove,
    Enable,
    Disable,
}

/// Reads the `endpoint_id` (required) and runs `what` on it.
async fn by_id(state: AppState, tenant_id: &str, bytes: &BodyBytes, what: Toggle) -> Response {
    let body = match json_body(&bytes.0) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let request = match what {
        Toggle::Remove => "RemoveEndpointRequest",
        Toggle::Enable => "EnableEndpointRequest",
        Toggle::Disable => "DisableEndpointRequest",
    };
    if let Err(msg) = require(&body, request, &[("endpoint_id", "EndpointID")]) {
        return reply::bad_request(msg);
    }
    let id = str_field(&body, "endpoint_id");
    let services = &state.services;
    reply::service(match what {
        Toggle::Remove => services.remove_endpoint(tenant_id, id).await,
        Toggle::Enable => services.set_endpoint_enabled(tenant_id, id, true).await,
        Toggle::Disable => services.set_endpoint_enabled(tenant_id, id, false).await,
    })
}

pub async fn remove(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    bytes: BodyBytes,
) -> Response {
    by_id(state, &tenant_id, &bytes, Toggle::Remove).await
}

pub async fn enable(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    bytes: BodyBytes,
) -> Response {
    by_id(state, &tenant_id, &bytes, Toggle::Enable).await
}

pub async fn disable(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    bytes: BodyBytes,
) -> Response {
    by_id(state, &tenant_id, &bytes, Toggle::Disable).await
}

pub async fn list(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_object(query.as_deref());
    let (page, size) = match paging(&query, MAX_PAGE_SIZE) {
        Ok(p) => p,
        Err(msg) => return reply::bad_request(msg),
    };
    reply::service(
        state
            .services
            .list_endpoints(&tenant_id, None, page, size)
            .await,
    )
}

pub async fn list_by_plugin(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query_object(query.as_deref());
    let mut errors = Vec::new();
    let plugin_id = str_field(&query, "plugin_id").to_owned();
    if plugin_id.is_empty() {
        errors.push(required_error("ListEndpointsByPluginRequest.PluginID"));
    }
    let paged = paging(&query, MAX_PAGE_SIZE);
    if let Err(msg) = &paged {
        errors.push(msg.clone());
    }
    let (page, size) = match (errors.is_empty(), paged) {
        (true, Ok(p)) => p,
        _ => return reply::bad_request(errors.join("\n")),
    };
    reply::service(
        state
            .services
            .list_endpoints(&tenant_id, Some(&plugin_id), page, size)
            .await,
    )
}
