//! Typed provider declarations (PSC §1.4, §1.5) with upstream's YAML reading rules and JSON form.
//!
//! The entity [`PluginDeclaration`] keeps providers as JSON values; the package crate decodes
//! each provider into these types (so field names, order, defaults and `null`s are upstream's)
//! and stores the serialised value. [`Providers::from_declaration`] reads them back for strict
//! validation.

mod agent;
mod common;
mod datasource;
mod endpoint;
mod model;
mod tool;
mod trigger;

use plugind_entities::PluginDeclaration;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use agent::{
    AgentStrategyDeclaration, AgentStrategyParameter, AgentStrategyProviderDeclaration,
    AGENT_STRATEGY_PARAMETER_TYPES,
};
pub use common::{
    ConfigOption, OAuthSchema, ParameterAutoGenerate, ParameterOption, ParameterTemplate,
    ProviderConfig, PLUGIN_TAGS,
};
pub use datasource::{
    DatasourceDeclaration, DatasourceIdentity, DatasourceParameter, DatasourceProviderDeclaration,
    DatasourceProviderIdentity, DATASOURCE_PARAMETER_TYPES, DATASOURCE_PROVIDER_TYPES,
};
pub use endpoint::{EndpointDeclaration, EndpointProviderDeclaration, ENDPOINT_METHODS};
pub(crate) use model::PRICING_ERROR;
pub use model::{
    CredentialFormSchema, FieldModelSchema, FormOption, ModelCredentialSchema, ModelDeclaration,
    ModelParameterRule, ModelPosition, ModelPriceConfig, ModelProviderDeclaration,
    ModelProviderHelp, ProviderCredentialSchema, ShowOn, CONFIGURATE_METHODS, MAX_DECIMAL_DIGITS,
    MODEL_FORM_TYPES, MODEL_PARAMETER_TYPES, MODEL_TYPES,
};
pub use tool::{
    ToolDeclaration, ToolDescription, ToolIdentity, ToolParameter, ToolProviderDeclaration,
    ToolProviderIdentity, TOOL_PARAMETER_FORMS, TOOL_PARAMETER_TYPES,
};
pub use trigger::{
    EventDeclaration, EventIdentity, EventParameter, EventParameterOption, SubscriptionConstructor,
    TriggerProviderDeclaration, TriggerProviderIdentity, EVENT_PARAMETER_TYPES,
};

/// The six provider declarations of a plugin, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Providers {
    pub endpoint: Option<EndpointProviderDeclaration>,
    pub model: Option<ModelProviderDeclaration>,
    pub tool: Option<ToolProviderDeclaration>,
    pub agent_strategy: Option<AgentStrategyProviderDeclaration>,
    pub datasource: Option<DatasourceProviderDeclaration>,
    pub trigger: Option<TriggerProviderDeclaration>,
}

fn to_value<T: Serialize>(t: &Option<T>) -> Option<Value> {
    t.as_ref().and_then(|t| serde_json::to_value(t).ok())
}

fn from_value<T: DeserializeOwned>(
    v: &Option<Value>,
    what: &str,
    errors: &mut Vec<String>,
) -> Option<T> {
    let v = v.as_ref()?;
    match T::deserialize(v) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(format!("failed to decode {what} declaration: {e}"));
            None
        }
    }
}

impl Providers {
    /// Upstream's default filling (PSC §1.7): tool and trigger identity description/tags from
    /// the plugin, model description from the plugin; identity tags are never `null`.
    pub fn fill_defaults(&mut self, decl: &PluginDeclaration) {
        for identity in [
            self.tool.as_mut().map(|t| &mut t.identity),
            self.trigger.as_mut().map(|t| &mut t.identity),
        ]
        .into_iter()
        .flatten()
        {
            if identity.description.en_us.is_empty() {
                identity.description = decl.description.clone();
            }
            if identity.tags.is_empty() {
                identity.tags = decl.tags.clone();
            }
        }
        if let Some(model) = self.model.as_mut() {
            if model.description.is_none() {
                model.description = Some(decl.description.clone());
            }
        }
    }

    /// Writes the JSON form of every provider into the declaration (absent → `None`).
    pub fn store_into(&self, decl: &mut PluginDeclaration) {
        decl.endpoint = to_value(&self.endpoint);
        decl.model = to_value(&self.model);
        decl.tool = to_value(&self.tool);
        decl.agent_strategy = to_value(&self.agent_strategy);
        decl.datasource = to_value(&self.datasource);
        decl.trigger = to_value(&self.trigger);
    }

    /// Reads the providers of a declaration in JSON form back into their types. Values that do
    /// not decode are reported and left out.
    pub fn from_declaration(decl: &PluginDeclaration) -> (Self, Vec<String>) {
        let mut errors = Vec::new();
        let mut p = Self {
            endpoint: from_value(&decl.endpoint, "endpoint", &mut errors),
            model: from_value(&decl.model, "model", &mut errors),
            tool: from_value(&decl.tool, "tool", &mut errors),
            agent_strategy: from_value(&decl.agent_strategy, "agent strategy", &mut errors),
            datasource: from_value(&decl.datasource, "datasource", &mut errors),
            trigger: from_value(&decl.trigger, "trigger", &mut errors),
        };
        // JSON form: nested declarations are already inline.
        if let Some(m) = p.model.as_mut() {
            m.position_files = None;
        }
        (p, errors)
    }
}
