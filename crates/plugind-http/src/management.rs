//! `/plugin/{tenant}/management/*` (http-api §4.5). Service errors are HTTP 200 envelopes;
//! only validation failures are HTTP 400.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::response::Response;
use plugind_entities::{DaemonError, PluginUniqueIdentifier, ProviderKind};
use plugind_service::binding::{paging, required_error, str_field};
use plugind_service::upgrade::UpgradeRequest;
use serde_json::Value;

use crate::body::{json_body, query_object, BodyBytes};
use crate::reply;
use crate::AppState;

pub async fn upload_package(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    multipart: Multipart,
) -> Response {
    match read_upload(&tenant_id, multipart, "dify_pkg").await {
        Ok((file, verify)) => reply::service(state.services.upload_package(file, verify).await),
        Err(err) => reply::service::<()>(Err(err)),
    }
}

pub async fn upload_bundle(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    multipart: Multipart,
) -> Response {
    match read_upload(&tenant_id, multipart, "dify_bundle").await {
        Ok((file, verify)) => reply::service(state.services.upload_bundle(file, verify).await),
        Err(err) => reply::service::<()>(Err(err)),
    }
}

/// Reads the file field `name` and the `verify_signature` field of an upload form.
async fn read_upload(
    tenant_id: &str,
    mut multipart: Multipart,
    name: &str,
) -> Result<(Vec<u8>, bool), DaemonError> {
    if tenant_id.is_empty() {
        return Err(DaemonError::bad_request("tenant ID is required"));
    }
    let mut file = None;
    let mut verify = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(multipart_error(&err.body_text())),
        };
        match field.name() {
            Some(n) if n == name => {
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(&e.body_text()))?;
                file = Some(bytes.to_vec());
            }
            Some("verify_signature") => {
                verify = field.text().await.map(|t| t == "true").unwrap_or(false);
            }
            _ => {}
        }
    }
    let file = file.ok_or_else(|| DaemonError::bad_request("http: no such file"))?;
    Ok((file, verify))
}

fn multipart_error(text: &str) -> DaemonError {
    if text.contains("length limit") || text.contains("too large") {
        DaemonError::bad_request("file size exceeds the maximum limit")
    } else {
        DaemonError::bad_request(text.to_owned())
    }
}

pub async fn install_from_identifiers(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    reply::service(
        state
            .services
            .install_from_identifiers(&tenant_id, &body)
            .await,
    )
}

/// `POST …/install/upgrade`: both uids and `source` are required (HTTP 400 otherwise).
pub async fn upgrade(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let uid = |key: &str, field: &str| {
        let raw = str_field(&body, key);
        if raw.is_empty() {
            return Err(required_error(&format!("UpgradePluginRequest.{field}")));
        }
        PluginUniqueIdentifier::parse(raw).map_err(|_| {
            format!(
                "Key: 'UpgradePluginRequest.{field}' Error:Field validation for '{field}' failed on the 'plugin_unique_identifier' tag"
            )
        })
    };
    let original = uid(
        "original_plugin_unique_identifier",
        "OriginalPluginUniqueIdentifier",
    );
    let new = uid("new_plugin_unique_identifier", "NewPluginUniqueIdentifier");
    let source = str_field(&body, "source");
    let (original, new) = match (original, new) {
        (Ok(original), Ok(new)) if !source.is_empty() => (original, new),
        (original, new) => {
            let mut errors: Vec<String> =
                [original.err(), new.err()].into_iter().flatten().collect();
            if source.is_empty() {
                errors.push(required_error("UpgradePluginRequest.Source"));
            }
            return reply::bad_request(errors.join("\n"));
        }
    };
    let req = UpgradeRequest {
        original,
        new,
        source: source.to_owned(),
        meta: body.get("meta").cloned().unwrap_or(Value::Null),
    };
    reply::service(state.services.upgrade(&tenant_id, req).await)
}

/// `page` and `page_size` from the query (`1 <= page_size <= 256`), or HTTP 400.
pub struct Paging(pub i64, pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let (page, size) = page_of(&query_object(parts.uri.query()), 256)?;
        Ok(Paging(page, size))
    }
}

/// Parses `page`/`page_size` from the query, or answers 400.
fn page_of(query: &Value, max: i64) -> Result<(i64, i64), Response> {
    paging(query, max).map_err(reply::bad_request)
}

pub async fn list_tasks(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Paging(page, size): Paging,
) -> Response {
    reply::service(state.services.list_tasks(&tenant_id, page, size).await)
}

pub async fn get_task(
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Response {
    reply::service(state.services.get_task(&tenant_id, &id).await)
}

pub async fn delete_task(
    State(state): State<AppState>,
    Path((tenant_id, id)): Path<(String, String)>,
) -> Response {
    reply::service(state.services.delete_task(&tenant_id, &id).await)
}

pub async fn delete_all_tasks(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> Response {
    reply::service(state.services.delete_all_tasks(&tenant_id).await)
}

pub async fn delete_task_entry(
    State(state): State<AppState>,
    Path((tenant_id, id, identifier)): Path<(String, String, String)>,
) -> Response {
    let identifier = identifier.trim_start_matches('/');
    reply::service(
        state
            .services
            .delete_task_entry(&tenant_id, &id, identifier)
            .await,
    )
}

/// The `plugin_unique_identifier` of a GET: from the query, or (older Dify, http-api §7.8) a JSON
/// body. Missing → HTTP 400.
pub struct UidParam(pub String);

impl FromRequest<AppState> for UidParam {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let query = query_object(request.uri().query());
        let from_query = str_field(&query, "plugin_unique_identifier").to_owned();
        let uid = if from_query.is_empty() {
            let body = Bytes::from_request(request, state)
                .await
                .unwrap_or_default();
            json_body(&body)
                .map(|v| str_field(&v, "plugin_unique_identifier").to_owned())
                .unwrap_or_default()
        } else {
            from_query
        };
        if uid.is_empty() {
            return Err(reply::bad_request(required_error("PluginUniqueIdentifier")));
        }
        Ok(UidParam(uid))
    }
}

pub async fn decode_from_identifier(
    State(state): State<AppState>,
    UidParam(uid): UidParam,
) -> Response {
    reply::service(state.services.decode_from_identifier(&uid).await)
}

pub async fn fetch_manifest(State(state): State<AppState>, UidParam(uid): UidParam) -> Response {
    reply::service(state.services.fetch_manifest(&uid).await)
}

pub async fn fetch_identifier(State(state): State<AppState>, UidParam(uid): UidParam) -> Response {
    reply::service(state.services.plugin_exists(&uid).await)
}

pub async fn uninstall(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = str_field(&body, "plugin_installation_id");
    if id.is_empty() {
        return reply::bad_request(required_error(
            "UninstallPluginRequest.PluginInstallationID",
        ));
    }
    reply::service(state.services.uninstall(&tenant_id, id).await)
}

pub async fn list_plugins(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    Paging(page, size): Paging,
) -> Response {
    reply::service(state.services.list_plugins(&tenant_id, page, size).await)
}

// ---- providers by kind (http-api §4.5 "Provider projections")

async fn list_providers(
    kind: ProviderKind,
    state: AppState,
    tenant_id: String,
    Paging(page, size): Paging,
) -> Response {
    reply::service(
        state
            .services
            .list_providers(kind, &tenant_id, page, size)
            .await,
    )
}

/// `plugin_id` and `provider` from the query (both required; `request` names the upstream
/// request struct in the 400 text).
async fn get_provider(
    kind: ProviderKind,
    request: &str,
    state: AppState,
    tenant_id: String,
    q: Option<String>,
) -> Response {
    let query = query_object(q.as_deref());
    let plugin_id = str_field(&query, "plugin_id");
    let provider = str_field(&query, "provider");
    if plugin_id.is_empty() || provider.is_empty() {
        let field = if plugin_id.is_empty() {
            "PluginID"
        } else {
            "Provider"
        };
        return reply::bad_request(required_error(&format!("{request}.{field}")));
    }
    reply::service(
        state
            .services
            .get_provider(kind, &tenant_id, plugin_id, provider)
            .await,
    )
}

pub async fn list_tools(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    paging: Paging,
) -> Response {
    list_providers(ProviderKind::Tool, state, tenant_id, paging).await
}

pub async fn get_tool(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    get_provider(ProviderKind::Tool, "GetToolRequest", state, tenant_id, q).await
}

pub async fn list_models(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    paging: Paging,
) -> Response {
    list_providers(ProviderKind::Model, state, tenant_id, paging).await
}

pub async fn model_bindings(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> Response {
    reply::service(state.services.model_bindings(&tenant_id).await)
}

pub async fn list_agent_strategies(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    paging: Paging,
) -> Response {
    list_providers(ProviderKind::AgentStrategy, state, tenant_id, paging).await
}

pub async fn get_agent_strategy(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let request = "GetAgentStrategyRequest";
    get_provider(ProviderKind::AgentStrategy, request, state, tenant_id, q).await
}

pub async fn list_datasources(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    paging: Paging,
) -> Response {
    list_providers(ProviderKind::Datasource, state, tenant_id, paging).await
}

pub async fn get_datasource(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let request = "GetDatasourceRequest";
    get_provider(ProviderKind::Datasource, request, state, tenant_id, q).await
}

pub async fn list_triggers(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    paging: Paging,
) -> Response {
    list_providers(ProviderKind::Trigger, state, tenant_id, paging).await
}

pub async fn get_trigger(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    get_provider(
        ProviderKind::Trigger,
        "GetTriggerRequest",
        state,
        tenant_id,
        q,
    )
    .await
}

/// `POST …/tools/check_existence`: `{"provider_ids":[{"plugin_id","provider_name"}]}`, each
/// field required; answers one bool per entry, in order.
pub async fn check_tools_existence(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let request = "CheckToolExistenceRequest.ProviderIDs";
    let Some(items) = body.get("provider_ids").and_then(Value::as_array) else {
        return reply::bad_request(required_error(request));
    };
    let mut providers = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let plugin_id = str_field(item, "plugin_id");
        let provider = str_field(item, "provider_name");
        if plugin_id.is_empty() {
            errors.push(required_error(&format!("{request}[{i}].PluginID")));
        }
        if provider.is_empty() {
            errors.push(required_error(&format!("{request}[{i}].ProviderName")));
        }
        providers.push((plugin_id.to_owned(), provider.to_owned()));
    }
    if !errors.is_empty() {
        return reply::bad_request(errors.join("\n"));
    }
    reply::service(state.services.tools_exist(&tenant_id, &providers).await)
}

pub async fn fetch_readme(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    UidParam(uid): UidParam,
) -> Response {
    let query = query_object(q.as_deref());
    let language = str_field(&query, "language");
    reply::service(state.services.fetch_readme(&uid, language).await)
}

/// A JSON body's string-array field, or a 400 naming it when absent.
fn string_list(body: &Value, key: &str, field: &str) -> Result<Vec<String>, Response> {
    match body.get(key).and_then(Value::as_array) {
        Some(items) => Ok(items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()),
        None => Err(reply::bad_request(required_error(field))),
    }
}

pub async fn fetch_installations(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let ids = match json_body(&body).and_then(|b| string_list(&b, "plugin_ids", "PluginIDs")) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    reply::service(
        state
            .services
            .installations_by_plugin_ids(&tenant_id, &ids)
            .await,
    )
}

pub async fn missing_installations(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    BodyBytes(body): BodyBytes,
) -> Response {
    let uids = match json_body(&body)
        .and_then(|b| string_list(&b, "plugin_unique_identifiers", "PluginUniqueIdentifiers"))
    {
        Ok(uids) => uids,
        Err(resp) => return resp,
    };
    reply::service(state.services.missing_plugins(&tenant_id, &uids).await)
}

pub async fn installation_ids(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let query = query_object(q.as_deref());
    let category = str_field(&query, "category");
    if category.is_empty() {
        return reply::bad_request(required_error("FetchPluginInstallationIDsRequest.Category"));
    }
    reply::service(
        state
            .services
            .installed_plugin_ids(&tenant_id, category)
            .await,
    )
}

pub async fn list_category(
    State(state): State<AppState>,
    Path((tenant_id, category)): Path<(String, String)>,
    Paging(page, page_size): Paging,
    RawQuery(q): RawQuery,
) -> Response {
    // `tags` repeats, so read the raw pairs instead of the last-wins object.
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let value = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let filter = plugind_entities::management::CategoryFilter {
        category,
        page,
        page_size,
        query: value("query"),
        tags: pairs
            .iter()
            .filter(|(k, _)| k == "tags")
            .map(|(_, v)| v.clone())
            .collect(),
        language: value("language"),
    };
    reply::service(state.services.list_category(&tenant_id, &filter).await)
}
