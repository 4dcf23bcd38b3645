//! Declarations a plugin sends when it registers in remote-debugging mode (plugin-protocol §5.4):
//! the manifest object, one array per provider category (only its first element counts, as
//! upstream), and the `_assets/` files. [`finish_registration`] remaps the icons, fills in the
//! defaults, checks the manifest and computes the checksum from (declaration, tenant).
//!
//! The texts of [`RegistrationError`] are upstream's: the plugin's developer reads them on the
//! socket before it closes.

use std::collections::BTreeMap;

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::declarations::{
    AgentStrategyProviderDeclaration, DatasourceProviderDeclaration, EndpointProviderDeclaration,
    ModelProviderDeclaration, Providers, ToolProviderDeclaration, TriggerProviderDeclaration,
};
use crate::error::PackageError;
use crate::{assets, manifest, validate};

/// The six provider categories a debugging plugin registers, in the SDK's sending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisteredCategory {
    Tool,
    Model,
    Endpoint,
    AgentStrategy,
    Datasource,
    Trigger,
}

impl RegisteredCategory {
    pub const ALL: [RegisteredCategory; 6] = [
        RegisteredCategory::Tool,
        RegisteredCategory::Model,
        RegisteredCategory::Endpoint,
        RegisteredCategory::AgentStrategy,
        RegisteredCategory::Datasource,
        RegisteredCategory::Trigger,
    ];

    /// The registration event carrying this category (`tool_declaration`, ...).
    pub fn event(self) -> &'static str {
        match self {
            RegisteredCategory::Tool => "tool_declaration",
            RegisteredCategory::Model => "model_declaration",
            RegisteredCategory::Endpoint => "endpoint_declaration",
            RegisteredCategory::AgentStrategy => "agent_strategy_declaration",
            RegisteredCategory::Datasource => "datasource_declaration",
            RegisteredCategory::Trigger => "trigger_declaration",
        }
    }

    pub fn from_event(event: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.event() == event)
    }

    /// Upstream's "already registered" text.
    pub fn already_registered(self) -> &'static str {
        match self {
            RegisteredCategory::Tool => "tools declaration already registered",
            RegisteredCategory::Model => "models declaration already registered",
            RegisteredCategory::Endpoint => "endpoints declaration already registered",
            RegisteredCategory::AgentStrategy => "agent strategy declaration already registered",
            RegisteredCategory::Datasource => "datasource declaration already registered",
            RegisteredCategory::Trigger => "triggers declaration already registered",
        }
    }

    /// Upstream's prefix of a decoding failure.
    fn invalid(self) -> &'static str {
        match self {
            RegisteredCategory::Tool => "tools register failed, invalid tools declaration",
            RegisteredCategory::Model => "models register failed, invalid models declaration",
            RegisteredCategory::Endpoint => {
                "endpoints register failed, invalid endpoints declaration"
            }
            RegisteredCategory::AgentStrategy => {
                "agent strategies register failed, invalid agent strategies declaration"
            }
            RegisteredCategory::Datasource => {
                "datasources register failed, invalid datasources declaration"
            }
            RegisteredCategory::Trigger => "triggers register failed, invalid triggers declaration",
        }
    }
}

/// A registration step that failed; the text is what the plugin is told.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegistrationError(pub String);

/// `manifest_declaration`: the manifest object, read like `manifest.yaml` and checked (author and
/// name rules, category exclusivity).
pub fn manifest_from_json(value: &Value) -> Result<PluginDeclaration, RegistrationError> {
    let decl = manifest::parse_manifest_json(value).map_err(|e| {
        RegistrationError(format!("handshake failed, invalid plugin declaration: {e}"))
    })?;
    validate::check_identity(&decl)
        .and_then(|()| validate::check_categories(&decl))
        .map_err(|e| RegistrationError(format!("invalid manifest detected: {e}")))?;
    Ok(decl)
}

fn first_of<T: DeserializeOwned + Serialize>(
    value: &Value,
    category: RegisteredCategory,
) -> Result<Option<Value>, RegistrationError> {
    let invalid = |e: String| RegistrationError(format!("{}: {e}", category.invalid()));
    let items = value
        .as_array()
        .ok_or_else(|| invalid("expected an array of provider declarations".into()))?;
    let mut first = None;
    for (i, item) in items.iter().enumerate() {
        let typed = T::deserialize(item).map_err(|e| invalid(format!("item {i}: {e}")))?;
        if first.is_none() {
            first = Some(serde_json::to_value(&typed).map_err(|e| invalid(e.to_string()))?);
        }
    }
    Ok(first)
}

/// `<category>_declaration`: an array of provider declarations, each decoded with upstream's
/// rules; the first one becomes the plugin's provider of that category (`None` for an empty
/// array).
pub fn provider_from_json(
    category: RegisteredCategory,
    value: &Value,
) -> Result<Option<Value>, RegistrationError> {
    match category {
        RegisteredCategory::Tool => first_of::<ToolProviderDeclaration>(value, category),
        RegisteredCategory::Model => first_of::<ModelProviderDeclaration>(value, category),
        RegisteredCategory::Endpoint => first_of::<EndpointProviderDeclaration>(value, category),
        RegisteredCategory::AgentStrategy => {
            first_of::<AgentStrategyProviderDeclaration>(value, category)
        }
        RegisteredCategory::Datasource => {
            first_of::<DatasourceProviderDeclaration>(value, category)
        }
        RegisteredCategory::Trigger => first_of::<TriggerProviderDeclaration>(value, category),
    }
}

/// Puts a provider decoded by [`provider_from_json`] into the declaration.
pub fn set_provider(decl: &mut PluginDeclaration, category: RegisteredCategory, provider: Value) {
    let slot = match category {
        RegisteredCategory::Tool => &mut decl.tool,
        RegisteredCategory::Model => &mut decl.model,
        RegisteredCategory::Endpoint => &mut decl.endpoint,
        RegisteredCategory::AgentStrategy => &mut decl.agent_strategy,
        RegisteredCategory::Datasource => &mut decl.datasource,
        RegisteredCategory::Trigger => &mut decl.trigger,
    };
    *slot = Some(provider);
}

/// A completed registration.
#[derive(Clone, Debug, PartialEq)]
pub struct Registered {
    /// Icons remapped to asset ids, defaults filled in.
    pub declaration: PluginDeclaration,
    /// `author/name:version@<checksum>`.
    pub uid: PluginUniqueIdentifier,
    /// The referenced assets as (asset id, bytes), each once; unreferenced files are dropped.
    pub assets: Vec<(String, Vec<u8>)>,
}

/// The checksum of a debugging plugin: lowercase hex SHA-256 of the declaration's JSON followed
/// by the tenant id (plugin-protocol §5.4 step 5). The same declaration for the same tenant
/// always gives the same checksum; another tenant gets another one.
pub fn debugging_checksum(decl: &PluginDeclaration, tenant_id: &str) -> String {
    let json = serde_json::to_vec(decl).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(&json);
    h.update(tenant_id.as_bytes());
    hex::encode(h.finalize())
}

/// `end`: remaps icons to the received `files` (name → bytes), fills in defaults, checks the
/// manifest, and builds the identifier from the checksum of (declaration, tenant).
pub fn finish_registration(
    mut decl: PluginDeclaration,
    files: &BTreeMap<String, Vec<u8>>,
    tenant_id: &str,
) -> Result<Registered, RegistrationError> {
    let assets = assets::remap_icons(&mut decl, files).map_err(|e| {
        RegistrationError(format!(
            "assets remap failed, invalid assets data, cannot remap: {e}"
        ))
    })?;
    let (mut providers, errors) = Providers::from_declaration(&decl);
    if let Some(e) = errors.first() {
        return Err(invalid_manifest(e));
    }
    providers.fill_defaults(&decl);
    providers.store_into(&mut decl);
    validate::check_identity(&decl)
        .and_then(|()| validate::check_categories(&decl))
        .map_err(|e| invalid_manifest(&e.to_string()))?;
    if let Err(errors) = crate::validate_declaration(&decl) {
        return Err(invalid_manifest(&errors.join("\n")));
    }
    let checksum = debugging_checksum(&decl, tenant_id);
    let uid = PluginUniqueIdentifier::build(&decl.author, &decl.name, &decl.version, &checksum)
        .map_err(|e: plugind_entities::UidError| invalid_manifest(&e.to_string()))?;
    if uid.is_remote_like() {
        return Err(invalid_manifest(&PackageError::AuthorIsUuid.to_string()));
    }
    Ok(Registered {
        declaration: decl,
        uid,
        assets,
    })
}

fn invalid_manifest(detail: &str) -> RegistrationError {
    RegistrationError(format!(
        "register failed, invalid manifest detected: {detail}"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn manifest() -> Value {
        json!({
            "version": "0.0.1", "type": "plugin", "author": "acme", "name": "echo",
            "label": {"en_US": "Echo", "zh_Hans": "Echo", "ja_JP": "Echo", "pt_BR": "Echo"},
            "description": {"en_US": "d", "zh_Hans": "d", "ja_JP": "d", "pt_BR": "d"},
            "icon": "icon.svg", "created_at": "2025-01-01T00:00:00Z",
            "resource": {"memory": 1, "permission": {"storage": {"enabled": true, "size": 2048}}},
            "plugins": {"tools": ["provider/echo.yaml"], "models": [], "endpoints": []},
            "meta": {"version": "0.0.1", "arch": ["amd64"],
                     "runner": {"language": "python", "version": "3.12", "entrypoint": "main"}},
            "tags": [], "privacy": null, "unknown": 1
        })
    }

    fn tools() -> Value {
        json!([{
            "identity": {"author": "acme", "name": "echo", "icon": "icon.svg",
                         "label": {"en_US": "Echo"}, "description": {"en_US": "Echo"}, "tags": []},
            "credentials_schema": [],
            "tools": [{"identity": {"author": "acme", "name": "echo", "label": {"en_US": "Echo"}},
                       "description": {"human": {"en_US": "h"}, "llm": "l"},
                       "parameters": [], "extra": {"python": {"source": "tools/echo.py"}}}],
            "extra": {"python": {"source": "provider/echo.py"}}
        }, {"identity": {"name": "ignored"}}])
    }

    fn registered(tenant: &str) -> Result<Registered, RegistrationError> {
        let mut decl = manifest_from_json(&manifest())?;
        let tool = provider_from_json(RegisteredCategory::Tool, &tools())?.expect("a provider");
        set_provider(&mut decl, RegisteredCategory::Tool, tool);
        let files = BTreeMap::from([
            ("icon.svg".to_owned(), b"<svg/>".to_vec()),
            ("unused.png".to_owned(), b"x".to_vec()),
        ]);
        finish_registration(decl, &files, tenant)
    }

    #[test]
    fn a_registration_is_remapped_and_its_identifier_depends_on_the_tenant() {
        let a = registered("tenant-a").expect("registered");
        assert_eq!(a.uid.plugin_id(), "acme/echo");
        assert_eq!(a.uid.version(), "0.0.1");
        assert_eq!(a.uid.checksum().len(), 64);
        assert_eq!(a.assets.len(), 1, "only referenced files are kept");
        let icon = crate::asset_id("icon.svg", b"<svg/>");
        assert_eq!(a.declaration.icon, icon);
        assert_eq!(
            a.declaration.tool.as_ref().expect("tool")["identity"]["icon"],
            icon
        );
        assert_eq!(
            a.declaration.tool.as_ref().expect("tool")["identity"]["name"],
            "echo",
            "only the first provider counts"
        );
        assert_eq!(registered("tenant-a").expect("again").uid, a.uid);
        assert_ne!(registered("tenant-b").expect("b").uid, a.uid);
    }

    #[test]
    fn errors_say_what_to_fix() {
        let mut bad = manifest();
        bad["author"] = json!("Acme");
        let err = manifest_from_json(&bad).expect_err("upper-case author");
        assert!(
            err.0.starts_with("invalid manifest detected: author"),
            "{err}"
        );

        let err = provider_from_json(RegisteredCategory::Tool, &json!({"identity": {}}))
            .expect_err("not an array");
        assert!(
            err.0
                .starts_with("tools register failed, invalid tools declaration"),
            "{err}"
        );

        let decl = manifest_from_json(&manifest()).expect("manifest");
        let mut with_tool = decl.clone();
        let tool = provider_from_json(RegisteredCategory::Tool, &tools())
            .expect("tools")
            .expect("one");
        set_provider(&mut with_tool, RegisteredCategory::Tool, tool);
        let err = finish_registration(with_tool, &BTreeMap::new(), "t").expect_err("no icon");
        assert_eq!(
            err.0,
            "assets remap failed, invalid assets data, cannot remap: file not found: icon.svg"
        );
    }
}
