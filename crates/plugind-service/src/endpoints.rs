//! Endpoint management (http-api §4.6): a tenant's endpoint instances of an installed plugin,
//! their settings checked against the plugin's endpoint settings schema, `secret-input` values
//! encrypted through Dify's inner API (`invoke/encrypt`, namespace `endpoint`, identity = the
//! endpoint id) and masked in listings.

use plugind_dify::EncryptRequest;
use plugind_entities::{
    DaemonError, Endpoint, EndpointSetup, ErrorType, PluginDeclaration, PluginPermission,
};
use plugind_store::{EndpointRow, NewEndpoint};
use serde_json::{json, Map, Value};

use crate::state::internal;
use crate::Services;

type Settings = Map<String, Value>;

/// At most this many settings keys are accepted (upstream's limit).
const MAX_SETTINGS: usize = 64;

/// The endpoint group of a declaration and its settings schema.
pub(crate) struct Group {
    declaration: Value,
    schema: Vec<Value>,
}

impl Group {
    pub(crate) fn of(decl: &PluginDeclaration) -> Option<Group> {
        let declaration = decl.endpoint.clone().filter(|v| v.is_object())?;
        let schema = declaration
            .get("settings")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Some(Group {
            declaration,
            schema,
        })
    }

    fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.schema
            .iter()
            .filter(|s| s.get("type").and_then(Value::as_str) == Some("secret-input"))
            .filter_map(|s| s.get("name").and_then(Value::as_str))
    }

    fn has_secret(&self) -> bool {
        self.secret_names().next().is_some()
    }
}

fn no_endpoint(status: ErrorType) -> DaemonError {
    DaemonError::new(status, "plugin does not have an endpoint")
}

/// `secret-input` masking: longer than 6 characters keeps the first and last 2, everything
/// else becomes `*` (same length).
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n > 6 {
        let mut out: String = chars[..2].iter().collect();
        out.extend(std::iter::repeat_n('*', n - 4));
        out.extend(&chars[n - 2..]);
        out
    } else {
        "*".repeat(n)
    }
}

fn mask_settings(group: &Group, settings: &mut Settings) {
    let names: Vec<String> = group.secret_names().map(str::to_owned).collect();
    for name in names {
        if let Some(Value::String(v)) = settings.get_mut(&name) {
            *v = mask(v);
        }
    }
}

/// Checks `settings` against the schema as upstream does (http-api §4.6): key limit, required
/// settings, and the value types of the input kinds it checks. Undeclared keys pass.
fn validate(schema: &[Value], settings: &Settings) -> Result<(), String> {
    if settings.len() > MAX_SETTINGS {
        return Err(format!("too many settings, max {MAX_SETTINGS}"));
    }
    for item in schema {
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            continue;
        };
        let required = item.get("required").and_then(Value::as_bool) == Some(true);
        let value = settings.get(name).filter(|v| !v.is_null());
        let Some(value) = value else {
            if required {
                return Err(format!("missing required setting: {name}"));
            }
            continue;
        };
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text-input" | "secret-input" if !value.is_string() => {
                return Err(format!("setting {name} should be a string"));
            }
            "select" => {
                let Some(v) = value.as_str() else {
                    return Err(format!("setting {name} should be a string"));
                };
                let options = item.get("options").and_then(Value::as_array);
                let allowed = options.is_some_and(|opts| {
                    opts.iter()
                        .any(|o| o.get("value").and_then(Value::as_str) == Some(v))
                });
                if !allowed {
                    return Err(format!("setting {name} should be one of the options"));
                }
            }
            "boolean" if !value.is_boolean() => {
                return Err(format!("setting {name} should be a boolean"));
            }
            "app-selector" if value.get("app_id").is_none() => {
                return Err(format!("setting {name} should be an app selector"));
            }
            "model-selector" => {
                let ok = ["provider", "model", "model_type"]
                    .iter()
                    .all(|k| value.get(*k).is_some());
                if !ok {
                    return Err(format!("setting {name} should be a model selector"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Services {
    /// Runs `opt` (`encrypt`/`decrypt`) over `settings` through Dify's inner API, or returns
    /// them unchanged when the schema has no `secret-input` setting.
    pub(crate) async fn crypt(
        &self,
        opt: &str,
        tenant_id: &str,
        user_id: &str,
        endpoint_id: &str,
        group: &Group,
        settings: Settings,
    ) -> Result<Settings, DaemonError> {
        if !group.has_secret() {
            return Ok(settings);
        }
        let api = self
            .inner
            .cfg
            .inner_api
            .as_ref()
            .ok_or_else(|| DaemonError::internal("dify inner api is not configured"))?;
        let request = EncryptRequest {
            tenant_id: tenant_id.to_owned(),
            user_id: user_id.to_owned(),
            opt: opt.to_owned(),
            namespace: "endpoint".to_owned(),
            identity: endpoint_id.to_owned(),
            data: Value::Object(settings),
            config: Value::Array(group.schema.clone()),
        };
        match api.encrypt(&request).await {
            Ok(Value::Object(out)) => Ok(out),
            Ok(other) => Err(DaemonError::internal(format!(
                "failed to {opt} settings: unexpected answer {other}"
            ))),
            Err(e) => Err(DaemonError::internal(format!(
                "failed to {opt} settings: {e}"
            ))),
        }
    }

    pub(crate) async fn endpoint_declaration(
        &self,
        uid: &str,
    ) -> Result<Option<PluginDeclaration>, DaemonError> {
        self.inner.db.get_declaration(uid).await.map_err(internal)
    }

    /// `POST …/endpoint/setup`.
    pub async fn setup_endpoint(
        &self,
        tenant_id: &str,
        req: EndpointSetup<'_>,
    ) -> Result<bool, DaemonError> {
        let not_found = || DaemonError::plugin_not_found("plugin not found");
        let uid = plugind_entities::PluginUniqueIdentifier::parse(req.plugin_unique_identifier)
            .map_err(|e| DaemonError::new(ErrorType::UniqueIdentifier, e.to_string()))?;
        let installation = self
            .inner
            .db
            .get_installation(tenant_id, uid.plugin_id())
            .await
            .map_err(internal)?
            .filter(|i| i.plugin_unique_identifier == req.plugin_unique_identifier)
            .ok_or_else(not_found)?;
        let decl = self
            .endpoint_declaration(&installation.plugin_unique_identifier)
            .await?
            .ok_or_else(not_found)?;
        if !PluginPermission::of(&decl).allows_endpoint() {
            return Err(DaemonError::new(
                ErrorType::PermissionDenied,
                "permission denied, you need to enable endpoint access in plugin manifest",
            ));
        }
        let group = Group::of(&decl).ok_or_else(|| no_endpoint(ErrorType::BadRequest))?;
        validate(&group.schema, &req.settings)
            .map_err(|e| DaemonError::bad_request(format!("failed to validate settings: {e}")))?;
        let id = plugind_store::new_id();
        let settings = self
            .crypt("encrypt", tenant_id, req.user_id, &id, &group, req.settings)
            .await?;
        self.inner
            .db
            .create_endpoint(NewEndpoint {
                id: &id,
                tenant_id,
                user_id: req.user_id,
                plugin_id: uid.plugin_id(),
                name: req.name,
                settings: &settings,
            })
            .await
            .map_err(internal)?;
        Ok(true)
    }

    /// `GET …/endpoint/list` (`plugin_id` None) and `GET …/endpoint/list/plugin`.
    pub async fn list_endpoints(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
        page: i64,
        page_size: i64,
    ) -> Result<Vec<Endpoint>, DaemonError> {
        let rows = self
            .inner
            .db
            .list_endpoints(tenant_id, plugin_id, page, page_size)
            .await
            .map_err(internal)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let installation = self
                .inner
                .db
                .get_installation(tenant_id, &row.plugin_id)
                .await
                .map_err(internal)?;
            let Some(installation) = installation else {
                if plugin_id.is_some() {
                    return Err(DaemonError::plugin_not_found(
                        "failed to find plugin installation",
                    ));
                }
                out.push(entity(
                    row,
                    Settings::new(),
                    json!({"settings": [], "endpoints": []}),
                ));
                continue;
            };
            let decl = self
                .endpoint_declaration(&installation.plugin_unique_identifier)
                .await?
                .ok_or_else(|| DaemonError::plugin_not_found("plugin not found"))?;
            let group = Group::of(&decl).ok_or_else(|| no_endpoint(ErrorType::PluginNotFound))?;
            let mut settings = self
                .crypt(
                    "decrypt",
                    tenant_id,
                    "",
                    &row.id,
                    &group,
                    row.settings.clone(),
                )
                .await?;
            mask_settings(&group, &mut settings);
            out.push(entity(row, settings, group.declaration));
        }
        Ok(out)
    }

    /// `POST …/endpoint/update`: a `secret-input` value sent back masked keeps the stored one.
    pub async fn update_endpoint(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        user_id: &str,
        name: &str,
        mut settings: Settings,
    ) -> Result<bool, DaemonError> {
        let row = self
            .inner
            .db
            .get_endpoint(tenant_id, endpoint_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| DaemonError::not_found("failed to find endpoint: record not found"))?;
        let installation = self
            .inner
            .db
            .get_installation(tenant_id, &row.plugin_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                DaemonError::not_found("failed to find plugin installation: record not found")
            })?;
        let decl = self
            .endpoint_declaration(&installation.plugin_unique_identifier)
            .await?
            .ok_or_else(|| DaemonError::plugin_not_found("plugin not found"))?;
        let group = Group::of(&decl).ok_or_else(|| no_endpoint(ErrorType::BadRequest))?;
        validate(&group.schema, &settings)
            .map_err(|e| DaemonError::bad_request(format!("failed to validate settings: {e}")))?;
        if group.has_secret() {
            let current = self
                .crypt(
                    "decrypt",
                    tenant_id,
                    user_id,
                    &row.id,
                    &group,
                    row.settings.clone(),
                )
                .await?;
            let names: Vec<String> = group.secret_names().map(str::to_owned).collect();
            for name in names {
                let Some(Value::String(stored)) = current.get(&name) else {
                    continue;
                };
                if settings.get(&name).and_then(Value::as_str) == Some(mask(stored).as_str()) {
                    settings.insert(name, Value::String(stored.clone()));
                }
            }
        }
        let settings = self
            .crypt("encrypt", tenant_id, user_id, &row.id, &group, settings)
            .await?;
        let updated = self
            .inner
            .db
            .update_endpoint(tenant_id, &row.id, name, &settings)
            .await
            .map_err(internal)?;
        if !updated {
            return Err(DaemonError::not_found(
                "failed to find endpoint: record not found",
            ));
        }
        Ok(true)
    }

    /// `POST …/endpoint/enable` and `…/disable` (idempotent).
    pub async fn set_endpoint_enabled(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        enabled: bool,
    ) -> Result<bool, DaemonError> {
        let verb = if enabled { "enable" } else { "disable" };
        match self
            .inner
            .db
            .set_endpoint_enabled(tenant_id, endpoint_id, enabled)
            .await
        {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Err(DaemonError::not_found("endpoint not found")),
            Err(e) => Err(DaemonError::internal(format!(
                "failed to {verb} endpoint: {e}"
            ))),
        }
    }

    /// `POST …/endpoint/remove`. An unknown endpoint is upstream's -500 "record not found".
    pub async fn remove_endpoint(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
    ) -> Result<bool, DaemonError> {
        match self.inner.db.delete_endpoint(tenant_id, endpoint_id).await {
            Ok(Some(_)) => Ok(true),
            Ok(None) => Err(DaemonError::internal(
                "failed to remove endpoint: record not found",
            )),
            Err(e) => Err(DaemonError::internal(format!(
                "failed to remove endpoint: {e}"
            ))),
        }
    }
}

fn entity(row: EndpointRow, settings: Settings, declaration: Value) -> Endpoint {
    Endpoint {
        id: row.id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        name: row.name,
        hook_id: row.hook_id,
        tenant_id: row.tenant_id,
        user_id: row.user_id,
        plugin_id: row.plugin_id,
        expired_at: row.expired_at,
        enabled: row.enabled,
        settings,
        declaration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_upstream() {
        assert_eq!(mask("sk-1234567"), "sk******67");
        assert_eq!(mask("abcdef"), "******");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn validates_required_and_types() {
        let schema = vec![
            json!({"name": "key", "type": "secret-input", "required": true}),
            json!({"name": "mode", "type": "select", "options": [{"value": "a"}]}),
        ];
        let ok: Settings =
            serde_json::from_value(json!({"key": "x", "mode": "a", "extra": 1})).expect("object");
        assert_eq!(validate(&schema, &ok), Ok(()));
        let missing: Settings = serde_json::from_value(json!({"key": null})).expect("object");
        assert_eq!(
            validate(&schema, &missing),
            Err("missing required setting: key".to_owned())
        );
        let bad: Settings =
            serde_json::from_value(json!({"key": "x", "mode": "b"})).expect("object");
        assert!(validate(&schema, &bad).is_err());
    }
}
