//! Model provider and model declarations (PSC §1.5 "Model provider"), in upstream's JSON field
//! order: parameter-rule templates, `fetch_from` default, pricing decimals, position files and
//! `predefined` globs.

use std::fmt;

use plugind_entities::I18nObject;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::common::{any, any_map, go_f64, i18n, nd, opt_i18n};

/// Model types (`model_type`).
pub const MODEL_TYPES: [&str; 9] = [
    "llm",
    "text-embedding",
    "rerank",
    "speech2text",
    "moderation",
    "tts",
    "text2img",
    "multimodal-embedding",
    "multimodal-rerank",
];

/// Configuration methods (`model_provider_configurate_method`).
pub const CONFIGURATE_METHODS: [&str; 2] = ["predefined-model", "customizable-model"];

/// Parameter rule types (`model_parameter_type`).
pub const MODEL_PARAMETER_TYPES: [&str; 5] = ["float", "int", "string", "boolean", "text"];

/// Credential form field types (`model_provider_form_type`).
pub const MODEL_FORM_TYPES: [&str; 5] = ["text-input", "secret-input", "select", "radio", "switch"];

/// The keys of a `models:` mapping that are understood, in the order of [`ModelPosition`].
const POSITION_TYPES: [&str; 6] = [
    "llm",
    "text_embedding",
    "rerank",
    "tts",
    "speech2text",
    "moderation",
];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelParameterRule {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default)]
    pub use_template: Option<String>,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub label: Option<I18nObject>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub help: Option<I18nObject>,
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
    pub options: Option<Vec<String>>,
}

/// A parameter-rule template (`use_template`).
struct RuleTemplate {
    kind: &'static str,
    help: [&'static str; 4], // en_US, zh_Hans, ja_JP, pt_BR
    default: Option<Value>,
    min: Option<f64>,
    max: Option<f64>,
    precision: Option<i64>,
    options: Option<&'static [&'static str]>,
}

fn template(name: &str) -> Option<RuleTemplate> {
    let numeric = |kind, help, default: Value, min, max, precision| RuleTemplate {
        kind,
        help,
        default: Some(default),
        min: Some(min),
        max: Some(max),
        precision: Some(precision),
        options: None,
    };
    Some(match name {
        "temperature" => numeric("float", HELP_TEMPERATURE, Value::from(0), 0.0, 1.0, 2),
        "top_p" => numeric("float", HELP_TOP_P, Value::from(1), 0.0, 1.0, 2),
        "top_k" => numeric("int", HELP_TOP_K, Value::from(50), 1.0, 100.0, 0),
        "presence_penalty" => numeric("float", HELP_PRESENCE, Value::from(0), 0.0, 1.0, 2),
        "frequency_penalty" => numeric("float", HELP_FREQUENCY, Value::from(0), 0.0, 1.0, 2),
        "max_tokens" => numeric("int", HELP_MAX_TOKENS, Value::from(64), 1.0, 2048.0, 0),
        "response_format" => RuleTemplate {
            kind: "string",
            help: HELP_RESPONSE_FORMAT,
            default: None,
            min: None,
            max: None,
            precision: None,
            options: Some(&["JSON", "XML"]),
        },
        "json_schema" => RuleTemplate {
            kind: "string",
            help: HELP_JSON_SCHEMA,
            default: None,
            min: None,
            max: None,
            precision: None,
            options: None,
        },
        _ => return None,
    })
}

// Help texts of the templates, in our own words. Only `en_US` is given: Dify falls back to it for
// the other languages.
const HELP_TEMPERATURE: [&str; 4] = [
    "How random the output is: lower values give more focused, repeatable answers, higher values more varied ones.",
    "", "", "",
];
const HELP_TOP_P: [&str; 4] = [
    "Nucleus sampling: only the most likely tokens whose probabilities add up to this value are considered.",
    "", "", "",
];
const HELP_TOP_K: [&str; 4] = [
    "Only the k most likely tokens are considered at each step.",
    "",
    "",
    "",
];
const HELP_PRESENCE: [&str; 4] = [
    "Penalises tokens that have already appeared, encouraging new topics.",
    "",
    "",
    "",
];
const HELP_FREQUENCY: [&str; 4] = [
    "Penalises tokens in proportion to how often they have appeared, reducing repetition.",
    "",
    "",
    "",
];
const HELP_MAX_TOKENS: [&str; 4] = [
    "The most tokens the model may generate; raise it if answers are cut off.",
    "",
    "",
    "",
];
const HELP_RESPONSE_FORMAT: [&str; 4] = [
    "Ask the model to answer in a given format, such as JSON or XML.",
    "",
    "",
    "",
];
const HELP_JSON_SCHEMA: [&str; 4] = [
    "A JSON schema the model's answer should follow.",
    "",
    "",
    "",
];

impl ModelParameterRule {
    /// Template expansion: label defaults to `{en_US: name}`, then every missing field is taken
    /// from the `use_template` template, then `options` defaults to `[]`.
    pub fn transform_template(&mut self) -> Result<(), String> {
        if self.label.as_ref().is_none_or(|l| l.en_us.is_empty()) {
            self.label = Some(I18nObject {
                en_us: self.name.clone(),
                ..Default::default()
            });
        }
        if let Some(name) = self.use_template.as_deref().filter(|t| !t.is_empty()) {
            let t = template(name).ok_or_else(|| format!("use_template {name} not found"))?;
            if self.kind.is_none() {
                self.kind = Some(t.kind.to_owned());
            }
            if self.help.is_none() {
                let [en, zh, ja, pt] = t.help;
                self.help = Some(I18nObject {
                    en_us: en.to_owned(),
                    zh_hans: zh.to_owned(),
                    ja_jp: ja.to_owned(),
                    pt_br: pt.to_owned(),
                });
            }
            if self.default.is_none() {
                self.default = t.default;
            }
            if self.min.is_none() {
                self.min = t.min;
            }
            if self.max.is_none() {
                self.max = t.max;
            }
            if self.precision.is_none() {
                self.precision = t.precision;
            }
            if self.options.is_none() {
                self.options = t
                    .options
                    .map(|o| o.iter().map(|s| (*s).to_owned()).collect());
            }
        }
        if self.options.is_none() {
            self.options = Some(Vec::new());
        }
        Ok(())
    }
}

/// `pricing`: decimals are written as JSON strings in their shortest form (`"0.003"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPriceConfig {
    #[serde(default = "zero", deserialize_with = "decimal")]
    pub input: String,
    #[serde(default, deserialize_with = "opt_decimal")]
    pub output: Option<String>,
    #[serde(default = "zero", deserialize_with = "decimal")]
    pub unit: String,
    #[serde(default, deserialize_with = "nd")]
    pub currency: String,
}

fn zero() -> String {
    "0".to_owned()
}

fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_decimal(d)?.unwrap_or_else(zero))
}

fn opt_decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number")
        }
        fn visit_unit<E>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<String>, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_i64<E>(self, n: i64) -> Result<Option<String>, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_u64<E>(self, n: u64) -> Result<Option<String>, E> {
            Ok(Some(n.to_string()))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Option<String>, E> {
            self.visit_str(&n.to_string())
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<String>, E> {
            decimal_text(s).map(Some).map_err(|e| E::custom(e))
        }
    }
    d.deserialize_option(V)
}

pub use plugind_entities::decimal::MAX_DECIMAL_DIGITS;

/// Start of the message of every pricing value that is refused, so that the decoder can tell
/// this error apart from other YAML errors and pass it on.
pub(crate) const PRICING_ERROR: &str = "pricing value";

/// Why a pricing string is not accepted as a decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecimalError {
    NotANumber(String),
    TooLong(String),
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecimalError::NotANumber(s) => {
                write!(f, "{PRICING_ERROR} {}: can't convert to decimal", cut(s))
            }
            DecimalError::TooLong(s) => write!(
                f,
                "{PRICING_ERROR} {}: more than {MAX_DECIMAL_DIGITS} digits when written out",
                cut(s)
            ),
        }
    }
}

/// The value as echoed in an error: at most 40 characters.
fn cut(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}... ({} bytes)", &s[..end], s.len()),
    }
}

/// Canonical text of a decimal number ([`plugind_entities::decimal::canonical`]), with the
/// refused value named in the error.
pub(crate) fn decimal_text(input: &str) -> Result<String, DecimalError> {
    plugind_entities::decimal::canonical(input).map_err(|e| match e {
        plugind_entities::decimal::DecimalError::NotANumber => {
            DecimalError::NotANumber(input.to_owned())
        }
        plugind_entities::decimal::DecimalError::TooLong => DecimalError::TooLong(input.to_owned()),
    })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub model: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub model_type: String,
    #[serde(default)]
    pub features: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nd")]
    pub fetch_from: String,
    #[serde(default, deserialize_with = "any_map")]
    pub model_properties: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nd")]
    pub deprecated: bool,
    #[serde(default)]
    pub parameter_rules: Option<Vec<ModelParameterRule>>,
    #[serde(rename = "pricing", default)]
    pub pricing: Option<ModelPriceConfig>,
}

impl ModelDeclaration {
    /// Upstream's decode-time defaults: `fetch_from` → `predefined-model`, `parameter_rules` →
    /// `[]`, templates expanded; and its JSON-time default: empty `label.en_US` → `model`.
    pub fn apply_defaults(&mut self) -> Result<(), String> {
        if self.fetch_from.is_empty() {
            self.fetch_from = "predefined-model".to_owned();
        }
        for rule in self.parameter_rules.get_or_insert_with(Vec::new) {
            rule.transform_template()?;
        }
        if self.label.en_us.is_empty() {
            self.label.en_us = self.model.clone();
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowOn {
    #[serde(default, deserialize_with = "nd")]
    pub variable: String,
    #[serde(default, deserialize_with = "nd")]
    pub value: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FormOption {
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub value: String,
    #[serde(default, deserialize_with = "nd")]
    pub show_on: Vec<ShowOn>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CredentialFormSchema {
    #[serde(default, deserialize_with = "nd")]
    pub variable: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, deserialize_with = "nd")]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub options: Vec<FormOption>,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub help: Option<I18nObject>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub placeholder: Option<I18nObject>,
    #[serde(default, deserialize_with = "nd")]
    pub max_length: i64,
    #[serde(default, deserialize_with = "nd")]
    pub show_on: Vec<ShowOn>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderCredentialSchema {
    #[serde(default, deserialize_with = "nd")]
    pub credential_form_schemas: Vec<CredentialFormSchema>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldModelSchema {
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub placeholder: Option<I18nObject>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCredentialSchema {
    #[serde(default, deserialize_with = "nd")]
    pub model: FieldModelSchema,
    #[serde(default, deserialize_with = "nd")]
    pub credential_form_schemas: Vec<CredentialFormSchema>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelProviderHelp {
    #[serde(default, deserialize_with = "i18n")]
    pub title: I18nObject,
    #[serde(default, deserialize_with = "i18n")]
    pub url: I18nObject,
}

/// Model names per type, from the position files; absent types are omitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_embedding: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech2text: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<Vec<String>>,
}

impl ModelPosition {
    pub(crate) fn slot(&mut self, model_type: &str) -> Option<&mut Option<Vec<String>>> {
        Some(match model_type {
            "llm" => &mut self.llm,
            "text_embedding" => &mut self.text_embedding,
            "rerank" => &mut self.rerank,
            "tts" => &mut self.tts,
            "speech2text" => &mut self.speech2text,
            "moderation" => &mut self.moderation,
            _ => return None,
        })
    }
}

/// A model provider. `position_files` (type → file) and `model_files` (globs) are what the
/// `models:` mapping asked for; both are resolved by the package loader, never serialised.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelProviderDeclaration {
    pub provider: String,
    pub label: I18nObject,
    pub description: Option<I18nObject>,
    pub icon_small: Option<I18nObject>,
    pub icon_large: Option<I18nObject>,
    pub icon_small_dark: Option<I18nObject>,
    pub icon_large_dark: Option<I18nObject>,
    pub background: Option<String>,
    pub help: Option<ModelProviderHelp>,
    pub supported_model_types: Option<Vec<String>>,
    pub configurate_methods: Option<Vec<String>>,
    pub provider_credential_schema: Option<ProviderCredentialSchema>,
    pub model_credential_schema: Option<ModelCredentialSchema>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<ModelPosition>,
    pub models: Vec<ModelDeclaration>,
    #[serde(skip)]
    pub position_files: Option<Vec<(String, String)>>,
    #[serde(skip)]
    pub model_files: Vec<String>,
}

#[derive(Deserialize)]
struct ModelProviderIn {
    #[serde(default, deserialize_with = "nd")]
    provider: String,
    #[serde(default, deserialize_with = "i18n")]
    label: I18nObject,
    #[serde(default, deserialize_with = "opt_i18n")]
    description: Option<I18nObject>,
    #[serde(default, deserialize_with = "opt_i18n")]
    icon_small: Option<I18nObject>,
    #[serde(default, deserialize_with = "opt_i18n")]
    icon_large: Option<I18nObject>,
    #[serde(default, deserialize_with = "opt_i18n")]
    icon_small_dark: Option<I18nObject>,
    #[serde(default, deserialize_with = "opt_i18n")]
    icon_large_dark: Option<I18nObject>,
    #[serde(default)]
    background: Option<String>,
    #[serde(default)]
    help: Option<ModelProviderHelp>,
    #[serde(default)]
    supported_model_types: Option<Vec<String>>,
    #[serde(default)]
    configurate_methods: Option<Vec<String>>,
    #[serde(default)]
    provider_credential_schema: Option<ProviderCredentialSchema>,
    #[serde(default)]
    model_credential_schema: Option<ModelCredentialSchema>,
    #[serde(default)]
    position: Option<ModelPosition>,
    #[serde(default)]
    models: Option<ModelsField>,
    #[serde(default)]
    model_declarations: Option<Vec<ModelDeclaration>>,
}

/// `models:` — a list of inline declarations, or a mapping by model type.
enum ModelsField {
    List(Vec<ModelDeclaration>),
    ByType {
        positions: Vec<(String, String)>,
        globs: Vec<String>,
    },
    Other,
}

impl<'de> Deserialize<'de> for ModelsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ModelsField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of models or a mapping by model type")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ModelsField, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<ModelDeclaration>()? {
                    out.push(m);
                }
                Ok(ModelsField::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ModelsField, A::Error> {
                let mut positions = Vec::new();
                let mut globs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let block: Value = map.next_value()?;
                    if !POSITION_TYPES.contains(&key.as_str()) {
                        continue;
                    }
                    let Value::Object(block) = block else {
                        continue;
                    };
                    for (k, v) in block {
                        if k == "position" {
                            positions.push((key.clone(), scalar_text(&v)));
                        } else if k == "predefined" {
                            if let Value::Array(items) = v {
                                globs.extend(items.iter().map(scalar_text));
                            }
                        }
                    }
                }
                Ok(ModelsField::ByType { positions, globs })
            }
            fn visit_str<E>(self, _: &str) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_unit<E>(self) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
            fn visit_none<E>(self) -> Result<ModelsField, E> {
                Ok(ModelsField::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Text of a scalar node (Go `yaml.Node.Value`); non-scalars give `""`.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

impl<'de> Deserialize<'de> for ModelProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = ModelProviderIn::deserialize(d)?;
        let mut out = Self {
            provider: m.provider,
            label: m.label,
            description: m.description,
            icon_small: m.icon_small,
            icon_large: m.icon_large,
            icon_small_dark: m.icon_small_dark,
            icon_large_dark: m.icon_large_dark,
            background: m.background,
            help: m.help,
            supported_model_types: m.supported_model_types,
            configurate_methods: m.configurate_methods,
            provider_credential_schema: m.provider_credential_schema,
            model_credential_schema: m.model_credential_schema,
            position: m.position,
            models: m.model_declarations.unwrap_or_default(),
            position_files: None,
            model_files: Vec::new(),
        };
        match m.models {
            // A list replaces `model_declarations`.
            Some(ModelsField::List(list)) => out.models = list,
            Some(ModelsField::ByType { positions, globs }) => {
                out.position_files = Some(positions);
                out.model_files = globs;
            }
            Some(ModelsField::Other) | None => {}
        }
        for model in &mut out.models {
            model.apply_defaults().map_err(de::Error::custom)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_out_in_their_shortest_form() {
        for (input, expected) in [
            ("0.003", "0.003"),
            ("1.50", "1.5"),
            ("100", "100"),
            ("+2e3", "2000"),
            ("2.5E-3", "0.0025"),
            ("-0.5", "-0.5"),
            ("-0", "0"),
            ("000.000", "0"),
            (" 7 ", "7"),
            (".5", "0.5"),
            ("5.", "5"),
            ("1e-5", "0.00001"),
        ] {
            assert_eq!(decimal_text(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn huge_exponents_and_long_values_are_refused_without_allocating() {
        // Each of these once made the decoder allocate the written-out value (100 GB for the
        // first): the length is now checked before anything is built.
        for input in [
            "1e100000000000",
            "1e-100000000000",
            "1e9223372036854775807",
            "1e-9223372036854775808",
            "0.1e-9223372036854775808",
            "1e400",
            "1e-400",
        ] {
            assert_eq!(
                decimal_text(input),
                Err(DecimalError::TooLong(input.to_owned())),
                "{input}"
            );
        }
        let long = "9".repeat(MAX_DECIMAL_DIGITS + 1);
        let err = decimal_text(&long).expect_err("too long");
        assert!(
            err.to_string().len() < 150,
            "the value is cut in the message: {err}"
        );
        // The bound itself is accepted, and zeros that vanish when written out do not count.
        assert!(decimal_text(&"9".repeat(MAX_DECIMAL_DIGITS)).is_ok());
        assert_eq!(decimal_text("1e399").map(|s| s.len()), Ok(400));
        assert_eq!(
            decimal_text(&format!("{}12e-1", "0".repeat(100_000))).as_deref(),
            Ok("1.2")
        );
        assert_eq!(
            decimal_text(&format!("0.{}", "0".repeat(100_000))).as_deref(),
            Ok("0")
        );
        assert_eq!(
            decimal_text(&format!("5{}e-100000", "0".repeat(100_000))).as_deref(),
            Ok("5")
        );
        // Every finite f64, as `visit_f64` writes it, fits.
        for f in [f64::MAX, f64::MIN, f64::MIN_POSITIVE, 5e-324] {
            assert!(decimal_text(&f.to_string()).is_ok(), "{f}");
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for input in [
            "",
            "-",
            "+",
            ".",
            "e5",
            "1e",
            "1e+",
            "NaN",
            "nan",
            "Inf",
            "-Infinity",
            ".inf",
            "1_000",
            "0x10",
            "1..2",
            "1e5.5",
            "--1",
            "1 2",
            "١",
        ] {
            assert_eq!(
                decimal_text(input),
                Err(DecimalError::NotANumber(input.to_owned())),
                "{input:?}"
            );
        }
    }
}
