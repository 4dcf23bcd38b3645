//! `model/schema` answers (`GetModelSchemasResponse`, http-api §4.3.4): a present `model_schema`
//! is decoded as a model declaration in upstream's JSON form (the package crate's
//! `ModelDeclaration`: `fetch_from` and `parameter_rules` defaults, parameter templates expanded,
//! `label.en_US` falling back to the model name, prices as decimal strings), checked with
//! upstream's field rules for the declaration itself, and written back.

use plugind_entities::dispatch::wire::{required, rule, Map};
use plugind_entities::dispatch::{decode, encode, ModelSchema};
use plugind_package::declarations::{ModelDeclaration, CONFIGURATE_METHODS, MODEL_TYPES};
use serde::Serialize;
use serde_json::value::RawValue;

/// The chunk checked and re-encoded; `Err` is the reason for upstream's `unmarshal_error`.
pub fn normalise(chunk: &str) -> Result<Box<RawValue>, String> {
    let answer: ModelSchema = decode(chunk)?;
    let Map(Some(raw)) = answer.model_schema else {
        return encode(&answer);
    };
    let mut schema: ModelDeclaration =
        serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    schema.apply_defaults()?;
    check(&schema)?;
    #[derive(Serialize)]
    struct Answer {
        model_schema: ModelDeclaration,
    }
    encode(&Answer {
        model_schema: schema,
    })
}

/// Upstream's validator rules on `ModelDeclaration` (model, label, type, features, fetch_from).
fn check(schema: &ModelDeclaration) -> Result<(), String> {
    let at = |field: &str| format!("GetModelSchemasResponse.ModelSchema.{field}");
    required(schema.model.is_empty(), &at("Model"))?;
    if schema.model.chars().count() >= 256 {
        return Err(rule(&at("Model"), "lt"));
    }
    required(schema.label.en_us.is_empty(), &at("Label.EnUS"))?;
    required(schema.model_type.is_empty(), &at("ModelType"))?;
    if !MODEL_TYPES.contains(&schema.model_type.as_str()) {
        return Err(rule(&at("ModelType"), "model_type"));
    }
    if let Some(features) = &schema.features {
        if features.len() > 256 {
            return Err(rule(&at("Features"), "lte"));
        }
        if let Some(i) = features.iter().position(|f| f.chars().count() >= 256) {
            return Err(rule(&at(&format!("Features[{i}]")), "lt"));
        }
    }
    if !CONFIGURATE_METHODS.contains(&schema.fetch_from.as_str()) {
        return Err(rule(&at("FetchFrom"), "model_provider_configurate_method"));
    }
    if schema
        .parameter_rules
        .as_ref()
        .is_some_and(|r| r.len() > 128)
    {
        return Err(rule(&at("ParameterRules"), "lte"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_get_upstreams_defaults_and_rules() {
        let out = normalise(
            r#"{"model_schema":{"model":"gpt","model_type":"llm","label":{},"junk":1,
                "pricing":{"input":0.0010,"output":"0.002","unit":"0.001","currency":"USD"}}}"#,
        )
        .expect("valid");
        let v: serde_json::Value = serde_json::from_str(out.get()).expect("json");
        let schema = &v["model_schema"];
        assert_eq!(schema["label"]["en_US"], "gpt");
        assert_eq!(schema["fetch_from"], "predefined-model");
        assert_eq!(schema["parameter_rules"], serde_json::json!([]));
        assert_eq!(schema["pricing"]["input"], "0.001");
        assert!(schema.get("junk").is_none(), "{schema}");
        assert_eq!(
            normalise(r#"{"model_schema":null}"#).expect("null").get(),
            r#"{"model_schema":null}"#
        );
        let bad = normalise(r#"{"model_schema":{"model":"gpt","model_type":"chat"}}"#);
        assert!(bad.expect_err("bad type").contains("'model_type' tag"));
        let bad = normalise(r#"{"model_schema":{"model_type":"llm"}}"#);
        assert!(bad.expect_err("no model").contains("'Model'"));
    }
}
