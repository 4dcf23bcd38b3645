//! Rows of `plugin_installations` and the per-category projection tables (PSC §5.2, §4.11).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a plugin is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeType {
    Local,
    Remote,
    Serverless,
}

impl RuntimeType {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeType::Local => "local",
            RuntimeType::Remote => "remote",
            RuntimeType::Serverless => "serverless",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "remote" => Some(Self::Remote),
            "serverless" => Some(Self::Serverless),
            _ => None,
        }
    }
}

/// A tenant's installed version of a plugin. JSON field order is upstream's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginInstallation {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tenant_id: String,
    pub plugin_id: String,
    pub plugin_unique_identifier: String,
    pub runtime_type: String,
    pub endpoints_setups: i64,
    pub endpoints_active: i64,
    pub source: String,
    pub meta: Value,
}

/// A row of `tool_installations` (and its sibling projection tables).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderInstallation {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tenant_id: String,
    pub provider: String,
    pub plugin_unique_identifier: String,
    pub plugin_id: String,
}

/// The provider kinds that have a projection table (`tool_installations`,
/// `ai_model_installations`, …) and management routes listing them (http-api §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    Tool,
    Model,
    AgentStrategy,
    Datasource,
    Trigger,
}
