//! The plugin declaration: `manifest.yaml` plus its provider declarations, in the JSON form
//! upstream stores in `plugin_declarations.declaration` and returns to Dify (PSC §1.2, §1.7).
//!
//! Provider declarations (`tool`, `model`, ...) are kept as JSON values here; the package crate
//! fills them in from the provider YAML files.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Localised text. Only the four languages upstream knows survive; `en_US` is always written.
/// Field order is upstream's JSON order (`en_US`, `ja_JP`, `zh_Hans`, `pt_BR`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct I18nObject {
    #[serde(rename = "en_US", default)]
    pub en_us: String,
    #[serde(rename = "ja_JP", default, skip_serializing_if = "String::is_empty")]
    pub ja_jp: String,
    #[serde(rename = "zh_Hans", default, skip_serializing_if = "String::is_empty")]
    pub zh_hans: String,
    #[serde(rename = "pt_BR", default, skip_serializing_if = "String::is_empty")]
    pub pt_br: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginResource {
    #[serde(default)]
    pub memory: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginExtensions {
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub endpoints: Option<Vec<String>>,
    #[serde(default)]
    pub agent_strategies: Option<Vec<String>>,
    #[serde(default)]
    pub datasources: Option<Vec<String>>,
    #[serde(default)]
    pub triggers: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRunner {
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub entrypoint: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginMeta {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub arch: Vec<String>,
    #[serde(default)]
    pub runner: PluginRunner,
    #[serde(default)]
    pub minimum_dify_version: Option<String>,
}

/// The whole declaration. Field order is upstream's JSON order (providers: `endpoint`, `model`,
/// `tool`, `agent_strategy`, `datasource`, `trigger`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginDeclaration {
    #[serde(default)]
    pub version: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub label: I18nObject,
    #[serde(default)]
    pub description: I18nObject,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub icon_dark: String,
    #[serde(default)]
    pub resource: PluginResource,
    #[serde(default)]
    pub plugins: PluginExtensions,
    #[serde(default)]
    pub meta: PluginMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default)]
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_strategy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Category of a plugin (PSC §1.6); `extension` is an endpoint-only plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginCategory {
    Tool,
    Model,
    Datasource,
    AgentStrategy,
    Trigger,
    Extension,
}

impl PluginCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginCategory::Tool => "tool",
            PluginCategory::Model => "model",
            PluginCategory::Datasource => "datasource",
            PluginCategory::AgentStrategy => "agent-strategy",
            PluginCategory::Trigger => "trigger",
            PluginCategory::Extension => "extension",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "tool" => PluginCategory::Tool,
            "model" => PluginCategory::Model,
            "datasource" => PluginCategory::Datasource,
            "agent-strategy" => PluginCategory::AgentStrategy,
            "trigger" => PluginCategory::Trigger,
            "extension" => PluginCategory::Extension,
            _ => return None,
        })
    }
}

fn present(decl: &Option<Value>, files: &Option<Vec<String>>) -> bool {
    decl.is_some() || files.as_ref().is_some_and(|f| !f.is_empty())
}

impl PluginDeclaration {
    pub fn has_tool(&self) -> bool {
        present(&self.tool, &self.plugins.tools)
    }
    pub fn has_model(&self) -> bool {
        present(&self.model, &self.plugins.models)
    }
    pub fn has_endpoint(&self) -> bool {
        present(&self.endpoint, &self.plugins.endpoints)
    }
    pub fn has_agent_strategy(&self) -> bool {
        present(&self.agent_strategy, &self.plugins.agent_strategies)
    }
    pub fn has_datasource(&self) -> bool {
        present(&self.datasource, &self.plugins.datasources)
    }
    pub fn has_trigger(&self) -> bool {
        present(&self.trigger, &self.plugins.triggers)
    }

    pub fn category(&self) -> PluginCategory {
        if self.has_tool() {
            PluginCategory::Tool
        } else if self.has_model() {
            PluginCategory::Model
        } else if self.has_datasource() {
            PluginCategory::Datasource
        } else if self.has_agent_strategy() {
            PluginCategory::AgentStrategy
        } else if self.has_trigger() {
            PluginCategory::Trigger
        } else {
            PluginCategory::Extension
        }
    }

    /// `author/name`.
    pub fn plugin_id(&self) -> String {
        format!("{}/{}", self.author, self.name)
    }

    /// Name of the provider identity of a provider declaration (`identity.name`, or `provider`
    /// for model providers).
    pub fn provider_name(provider: &Value) -> Option<&str> {
        provider
            .pointer("/identity/name")
            .or_else(|| provider.get("provider"))
            .and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_keeps_upstream_shape() {
        let decl = PluginDeclaration {
            version: "0.0.1".into(),
            kind: "plugin".into(),
            author: "a".into(),
            name: "b".into(),
            plugins: PluginExtensions {
                tools: Some(vec!["p.yaml".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let json = serde_json::to_string(&decl).expect("json");
        assert!(
            json.starts_with(
                r#"{"version":"0.0.1","type":"plugin","author":"a","name":"b","label":{"en_US":""}"#
            ),
            "{json}"
        );
        assert!(json.contains(r#""icon_dark":"""#));
        assert!(json.contains(r#""plugins":{"tools":["p.yaml"],"models":null"#));
        assert!(json.contains(r#""minimum_dify_version":null"#));
        assert!(!json.contains("privacy"));
        assert_eq!(decl.category(), PluginCategory::Tool);
    }
}
