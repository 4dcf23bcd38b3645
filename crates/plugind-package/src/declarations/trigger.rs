//! Trigger provider and events (PSC §1.5 "Trigger provider").

use plugind_entities::I18nObject;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::common::{
    any, any_map, go_f64, i18n, map_is_empty, nd, opt_i18n, ConfigList, Entries, OAuthSchema,
    OnlyMap, ParameterAutoGenerate, ParameterTemplate, ProviderConfig,
};

/// Event parameter types (`event_parameter_type`).
pub const EVENT_PARAMETER_TYPES: [&str; 12] = [
    "string",
    "number",
    "boolean",
    "select",
    "file",
    "files",
    "model-selector",
    "app-selector",
    "object",
    "array",
    "dynamic-select",
    "checkbox",
];

fn is_false(b: &bool) -> bool {
    !*b
}

fn vec_is_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventParameterOption {
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "any")]
    pub value: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventParameter {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_generate: Option<ParameterAutoGenerate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ParameterTemplate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub required: bool,
    #[serde(default, deserialize_with = "nd", skip_serializing_if = "is_false")]
    pub multiple: bool,
    #[serde(
        default,
        deserialize_with = "any",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Value>,
    #[serde(
        default,
        serialize_with = "go_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub min: Option<f64>,
    #[serde(
        default,
        serialize_with = "go_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<i64>,
    #[serde(default, skip_serializing_if = "vec_is_empty")]
    pub options: Option<Vec<EventParameterOption>>,
    #[serde(
        default,
        deserialize_with = "opt_i18n",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<I18nObject>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventIdentity {
    #[serde(default, deserialize_with = "nd")]
    pub author: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub identity: EventIdentity,
    #[serde(default)]
    pub parameters: Option<Vec<EventParameter>>,
    #[serde(default, deserialize_with = "i18n")]
    pub description: I18nObject,
    #[serde(
        default,
        deserialize_with = "any_map",
        skip_serializing_if = "map_is_empty"
    )]
    pub output_schema: Option<Map<String, Value>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscriptionConstructor {
    pub parameters: Vec<EventParameter>,
    pub credentials_schema: Vec<ProviderConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_schema: Option<OAuthSchema>,
}

#[derive(Deserialize)]
struct SubscriptionConstructorIn {
    #[serde(default, deserialize_with = "nd")]
    parameters: Vec<EventParameter>,
    #[serde(default)]
    credentials_schema: Option<ConfigList>,
    #[serde(default)]
    oauth_schema: Option<OAuthSchema>,
}

impl<'de> Deserialize<'de> for SubscriptionConstructor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let c = SubscriptionConstructorIn::deserialize(d)?;
        Ok(Self {
            parameters: c.parameters,
            credentials_schema: c.credentials_schema.unwrap_or_default().0,
            oauth_schema: c.oauth_schema,
        })
    }
}

/// Identity of a trigger provider (same keys as a tool provider's).
pub type TriggerProviderIdentity = super::tool::ToolProviderIdentity;

/// A trigger provider. `event_files` are the nested files still to load.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TriggerProviderDeclaration {
    pub identity: TriggerProviderIdentity,
    pub subscription_schema: Vec<ProviderConfig>,
    pub subscription_constructor: Option<SubscriptionConstructor>,
    pub events: Vec<EventDeclaration>,
    #[serde(skip)]
    pub event_files: Vec<String>,
}

#[derive(Deserialize)]
struct TriggerProviderIn {
    #[serde(default, deserialize_with = "nd")]
    identity: TriggerProviderIdentity,
    #[serde(default)]
    subscription_schema: Option<ConfigList>,
    #[serde(default)]
    subscription_constructor: Option<OnlyMap<SubscriptionConstructor>>,
    #[serde(default)]
    events: Option<Entries<EventDeclaration>>,
}

impl<'de> Deserialize<'de> for TriggerProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = TriggerProviderIn::deserialize(d)?;
        // Only a mapping makes a constructor.
        let constructor = t.subscription_constructor.and_then(|c| c.0);
        let entries = t.events.unwrap_or_default();
        Ok(Self {
            identity: t.identity,
            subscription_schema: t.subscription_schema.unwrap_or_default().0,
            subscription_constructor: constructor,
            events: entries.inline,
            event_files: entries.files,
        })
    }
}
