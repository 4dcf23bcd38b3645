//! What the management routes answer and take (http-api §4.5), in upstream's wire shape: the
//! services build these, the HTTP edge serialises them. Field order is upstream's (Dify reads
//! them by name, but the order keeps answers byte-comparable with upstream's).

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::{PluginDeclaration, ProviderInstallation, ProviderKind, Verification};

/// `POST …/install/identifiers` and `…/install/upgrade`.
#[derive(Debug, Serialize)]
pub struct InstallResponse {
    pub all_installed: bool,
    pub task_id: String,
}

/// `POST …/install/upload/package|bundle` (per package) and `GET …/decode/from_identifier`.
#[derive(Debug, Serialize)]
pub struct DecodedPackage {
    pub manifest: PluginDeclaration,
    pub unique_identifier: String,
    pub verification: Option<Verification>,
}

/// A list entry of `GET …/management/list`; field order is upstream's.
#[derive(Debug, Serialize)]
pub struct PluginEntity {
    pub id: String,
    pub name: String,
    pub plugin_id: String,
    pub tenant_id: String,
    pub plugin_unique_identifier: String,
    pub endpoints_active: i64,
    pub endpoints_setups: i64,
    pub installation_id: String,
    pub declaration: PluginDeclaration,
    pub runtime_type: String,
    pub version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
    pub checksum: String,
    pub meta: Value,
}

#[derive(Debug, Serialize)]
pub struct PluginList {
    pub list: Vec<PluginEntity>,
    pub total: i64,
}

/// An entry of `POST …/installation/fetch/batch`; field order is upstream's.
#[derive(Debug, Serialize)]
pub struct InstallationWithDeclaration {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub tenant_id: String,
    pub plugin_id: String,
    pub plugin_unique_identifier: String,
    pub runtime_type: String,
    pub endpoints_setups: i64,
    pub endpoints_active: i64,
    pub source: String,
    pub meta: Value,
    pub version: String,
    pub checksum: String,
    pub declaration: PluginDeclaration,
}

/// Inputs of `GET …/{category}/list`.
#[derive(Debug, Default)]
pub struct CategoryFilter {
    pub category: String,
    pub page: i64,
    pub page_size: i64,
    pub query: String,
    pub tags: Vec<String>,
    pub language: String,
}

/// An entry of `POST …/installation/missing`.
#[derive(Debug, Serialize)]
pub struct MissingPlugin {
    pub plugin_unique_identifier: String,
    pub current_identifier: String,
}

/// `GET …/fetch/readme`.
#[derive(Debug, Serialize)]
pub struct Readme {
    pub content: String,
    pub language: String,
}

/// One provider with its declaration. Serialised in upstream's field order for its kind: models
/// put `provider` before `tenant_id`, agent strategies add the plugin's `meta` block.
#[derive(Debug)]
pub struct ProviderEntity {
    pub kind: ProviderKind,
    pub row: ProviderInstallation,
    pub declaration: Value,
    /// The plugin's `meta` block (agent strategies only).
    pub meta: Option<Value>,
}

impl Serialize for ProviderEntity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let row = &self.row;
        let fields = if self.meta.is_some() { 9 } else { 8 };
        let mut s = serializer.serialize_struct("ProviderEntity", fields)?;
        s.serialize_field("id", &row.id)?;
        s.serialize_field("created_at", &row.created_at)?;
        s.serialize_field("updated_at", &row.updated_at)?;
        if self.kind == ProviderKind::Model {
            s.serialize_field("provider", &row.provider)?;
            s.serialize_field("tenant_id", &row.tenant_id)?;
        } else {
            s.serialize_field("tenant_id", &row.tenant_id)?;
            s.serialize_field("provider", &row.provider)?;
        }
        s.serialize_field("plugin_unique_identifier", &row.plugin_unique_identifier)?;
        s.serialize_field("plugin_id", &row.plugin_id)?;
        s.serialize_field("declaration", &self.declaration)?;
        if let Some(meta) = &self.meta {
            s.serialize_field("meta", meta)?;
        }
        s.end()
    }
}

/// An entry of `GET …/models/bindings`; field order is upstream's.
#[derive(Debug, Serialize)]
pub struct ModelBinding {
    pub provider: String,
    pub installation_id: String,
    pub plugin_id: String,
    pub plugin_unique_identifier: String,
    pub runtime_type: String,
    pub source: String,
    pub version: String,
    pub verified: bool,
}
