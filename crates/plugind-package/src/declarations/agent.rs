//! Agent strategy provider (PSC §1.5 "Agent strategy provider").

use plugind_entities::I18nObject;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::common::{
    any, any_map, go_f64, i18n, nd, Entries, ParameterAutoGenerate, ParameterOption,
    ParameterTemplate,
};
use super::tool::{ToolIdentity, ToolProviderIdentity};

/// Agent strategy parameter types (`agent_strategy_parameter_type`).
pub const AGENT_STRATEGY_PARAMETER_TYPES: [&str; 11] = [
    "string",
    "number",
    "boolean",
    "select",
    "secret-input",
    "file",
    "files",
    "app-selector",
    "model-selector",
    "array[tools]",
    "any",
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStrategyParameter {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "i18n")]
    pub help: I18nObject,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default)]
    pub auto_generate: Option<ParameterAutoGenerate>,
    #[serde(default)]
    pub template: Option<ParameterTemplate>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub required: bool,
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
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStrategyDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub identity: ToolIdentity,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
    #[serde(default)]
    pub parameters: Option<Vec<AgentStrategyParameter>>,
    #[serde(default, deserialize_with = "any_map")]
    pub output_schema: Option<Map<String, Value>>,
    /// `[]` when absent.
    #[serde(default, deserialize_with = "nd")]
    pub features: Vec<String>,
}

/// An agent-strategy provider. `strategy_files` are the nested files still to load.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AgentStrategyProviderDeclaration {
    pub identity: ToolProviderIdentity,
    pub strategies: Vec<AgentStrategyDeclaration>,
    #[serde(skip)]
    pub strategy_files: Vec<String>,
}

#[derive(Deserialize)]
struct AgentStrategyProviderIn {
    #[serde(default, deserialize_with = "nd")]
    identity: ToolProviderIdentity,
    #[serde(default)]
    strategies: Option<Entries<AgentStrategyDeclaration>>,
}

impl<'de> Deserialize<'de> for AgentStrategyProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let a = AgentStrategyProviderIn::deserialize(d)?;
        let entries = a.strategies.unwrap_or_default();
        Ok(Self {
            identity: a.identity,
            strategies: entries.inline,
            strategy_files: entries.files,
        })
    }
}
