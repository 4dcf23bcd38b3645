//! Datasource provider (PSC §1.5 "Datasource provider").

use plugind_entities::I18nObject;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::common::{
    any, any_map, go_f64, i18n, map_is_empty, nd, ConfigList, Entries, OAuthSchema,
    ParameterAutoGenerate, ParameterOption, ParameterTemplate, ProviderConfig,
};

/// Datasource provider types (`datasource_provider_type`).
pub const DATASOURCE_PROVIDER_TYPES: [&str; 3] =
    ["website_crawl", "online_document", "online_drive"];

/// Datasource parameter types (`datasource_parameter_type`).
pub const DATASOURCE_PARAMETER_TYPES: [&str; 5] =
    ["string", "number", "boolean", "select", "secret-input"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasourceIdentity {
    #[serde(default, deserialize_with = "nd")]
    pub author: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub icon: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasourceParameter {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub required: bool,
    #[serde(default)]
    pub auto_generate: Option<ParameterAutoGenerate>,
    #[serde(default)]
    pub template: Option<ParameterTemplate>,
    #[serde(default, deserialize_with = "any")]
    pub default: Option<Value>,
    #[serde(default, serialize_with = "go_f64")]
    pub min: Option<f64>,
    #[serde(default, serialize_with = "go_f64")]
    pub max: Option<f64>,
    #[serde(default)]
    pub precision: Option<i64>,
    #[serde(default)]
    pub options: Option<Vec<ParameterOption>>,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasourceDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub identity: DatasourceIdentity,
    #[serde(default)]
    pub parameters: Option<Vec<DatasourceParameter>>,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
    #[serde(
        default,
        deserialize_with = "any_map",
        skip_serializing_if = "map_is_empty"
    )]
    pub output_schema: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasourceProviderIdentity {
    #[serde(default, deserialize_with = "nd")]
    pub author: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub icon: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub tags: Vec<String>,
}

/// A datasource provider. `datasource_files` are the nested files still to load.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DatasourceProviderDeclaration {
    pub identity: DatasourceProviderIdentity,
    pub credentials_schema: Vec<ProviderConfig>,
    pub oauth_schema: Option<OAuthSchema>,
    pub provider_type: String,
    pub datasources: Vec<DatasourceDeclaration>,
    #[serde(skip)]
    pub datasource_files: Vec<String>,
}

#[derive(Deserialize)]
struct DatasourceProviderIn {
    #[serde(default, deserialize_with = "nd")]
    identity: DatasourceProviderIdentity,
    #[serde(default)]
    credentials_schema: Option<ConfigList>,
    #[serde(default)]
    oauth_schema: Option<OAuthSchema>,
    #[serde(default, deserialize_with = "nd")]
    provider_type: String,
    #[serde(default)]
    datasources: Option<Entries<DatasourceDeclaration>>,
}

impl<'de> Deserialize<'de> for DatasourceProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = DatasourceProviderIn::deserialize(d)?;
        let entries = p.datasources.unwrap_or_default();
        Ok(Self {
            identity: p.identity,
            credentials_schema: p.credentials_schema.unwrap_or_default().0,
            oauth_schema: p.oauth_schema,
            provider_type: p.provider_type,
            datasources: entries.inline,
            datasource_files: entries.files,
        })
    }
}
