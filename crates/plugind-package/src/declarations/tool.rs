//! Tool provider, tools and tool parameters (PSC §1.5 "Tool provider"), in upstream's JSON field
//! order. Also the identity types reused by agent strategies.

use plugind_entities::I18nObject;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::common::{
    any, any_map, go_f64, i18n, map_is_empty, nd, ConfigList, Entries, OAuthSchema,
    ParameterAutoGenerate, ParameterOption, ParameterTemplate, ProviderConfig,
};

/// Tool parameter types (`tool_parameter_type`).
pub const TOOL_PARAMETER_TYPES: [&str; 16] = [
    "string",
    "number",
    "boolean",
    "select",
    "secret-input",
    "file",
    "files",
    "app-selector",
    "model-selector",
    "any",
    "dynamic-select",
    "array",
    "object",
    "checkbox",
    "date",
    "date-range",
];

/// Tool parameter forms (`tool_parameter_form`).
pub const TOOL_PARAMETER_FORMS: [&str; 3] = ["schema", "form", "llm"];

/// Identity of a tool (and of an agent strategy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolIdentity {
    #[serde(default, deserialize_with = "nd")]
    pub author: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
}

/// Identity of a tool provider (and of an agent-strategy provider).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolProviderIdentity {
    #[serde(default, deserialize_with = "nd")]
    pub author: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub icon: String,
    #[serde(default, deserialize_with = "nd")]
    pub icon_dark: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolParameter {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "i18n")]
    pub human_description: I18nObject,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub form: String,
    #[serde(default, deserialize_with = "nd")]
    pub llm_description: String,
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
    #[serde(default, deserialize_with = "nd")]
    pub multiple: bool,
    #[serde(default)]
    pub precision: Option<i64>,
    #[serde(default)]
    pub options: Option<Vec<ParameterOption>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolDescription {
    #[serde(default, deserialize_with = "i18n")]
    pub human: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub llm: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub identity: ToolIdentity,
    #[serde(default, deserialize_with = "nd")]
    pub description: ToolDescription,
    #[serde(default)]
    pub parameters: Option<Vec<ToolParameter>>,
    #[serde(
        default,
        deserialize_with = "any_map",
        skip_serializing_if = "map_is_empty"
    )]
    pub output_schema: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nd")]
    pub has_runtime_parameters: bool,
}

/// A tool provider. `tool_files` are the nested files still to load (never serialised).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ToolProviderDeclaration {
    pub identity: ToolProviderIdentity,
    pub credentials_schema: Vec<ProviderConfig>,
    pub oauth_schema: Option<OAuthSchema>,
    pub tools: Vec<ToolDeclaration>,
    #[serde(skip)]
    pub tool_files: Vec<String>,
}

#[derive(Deserialize)]
struct ToolProviderIn {
    #[serde(default, deserialize_with = "nd")]
    identity: ToolProviderIdentity,
    #[serde(default)]
    credentials_schema: Option<ConfigList>,
    #[serde(default)]
    credentials_for_provider: Option<ConfigList>,
    #[serde(default)]
    oauth_schema: Option<OAuthSchema>,
    #[serde(default)]
    tools: Option<Entries<ToolDeclaration>>,
}

impl<'de> Deserialize<'de> for ToolProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = ToolProviderIn::deserialize(d)?;
        // An empty or missing `credentials_schema` falls back to `credentials_for_provider`.
        let credentials = match t.credentials_schema {
            Some(list) if !list.0.is_empty() => list.0,
            _ => t.credentials_for_provider.unwrap_or_default().0,
        };
        let tools = t.tools.unwrap_or_default();
        Ok(Self {
            identity: t.identity,
            credentials_schema: credentials,
            oauth_schema: t.oauth_schema,
            tools: tools.inline,
            tool_files: tools.files,
        })
    }
}
