//! What a dispatch request's `data` must hold (http-api §4.3.2): upstream's `model_type` rule and
//! the nested shapes its typed requests validate. Failures are HTTP 400 with the validator's
//! text, as upstream's request binding answers.

use serde_json::Value;

use crate::binding::required_error;
use plugind_entities::dispatch::wire::rule;
use plugind_entities::dispatch::{CONTENT_TYPES, PROMPT_ROLES};

/// The rule on `data.model_type` beyond `required`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelTypeRule {
    /// No `model_type` field, or any non-empty string.
    Any,
    /// One of upstream's model types.
    Valid,
    /// One of upstream's model types, and exactly this one.
    Is(&'static str),
}

/// Nested shapes upstream validates beyond the required keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Plain,
    /// `tools` each need a `name`; `tool_choice` a valid mode; prompt messages must decode.
    LlmInvoke,
    /// As `LlmInvoke`, and every prompt message is validated.
    LlmNumTokens,
    /// `documents` are multimodal contents; `input_type` is `document` or `query`.
    MultimodalEmbedding,
    /// `query` and each of `docs` are multimodal contents.
    MultimodalRerank,
    /// `request.max_keys` is required.
    DriveBrowse,
    /// `request.id` is required.
    DriveDownload,
    /// `plugin_state` is an object with at least one key.
    CheckPolling,
}

/// Upstream's model types (`isModelType`).
pub const MODEL_TYPES: &[&str] = &[
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

/// Checks `data` of `action` (`action` names the validator path, e.g. `invoke_llm`).
pub fn check(
    action: &str,
    model_type: ModelTypeRule,
    shape: Shape,
    data: &Value,
) -> Result<(), String> {
    let at = |field: &str| format!("{action}.Data.{field}");
    let kind = data.get("model_type").and_then(Value::as_str).unwrap_or("");
    match model_type {
        ModelTypeRule::Any => {}
        ModelTypeRule::Valid | ModelTypeRule::Is(_) if !MODEL_TYPES.contains(&kind) => {
            return Err(rule(&at("model_type"), "model_type"));
        }
        ModelTypeRule::Is(expected) if kind != expected => {
            return Err(rule(&at("model_type"), "eq"));
        }
        ModelTypeRule::Valid | ModelTypeRule::Is(_) => {}
    }
    match shape {
        Shape::Plain => Ok(()),
        Shape::LlmInvoke | Shape::LlmNumTokens => {
            for (i, message) in items(data, "prompt_messages").enumerate() {
                prompt_message(
                    message,
                    &at(&format!("prompt_messages[{i}]")),
                    shape == Shape::LlmNumTokens,
                )?;
            }
            for (i, tool) in items(data, "tools").enumerate() {
                if is_blank(tool.get("name")) {
                    return Err(required_error(&at(&format!("tools[{i}].name"))));
                }
            }
            match data.get("tool_choice") {
                None | Some(Value::Null) => Ok(()),
                Some(choice) => tool_choice(choice, &at("tool_choice")),
            }
        }
        Shape::MultimodalEmbedding => {
            for (i, doc) in items(data, "documents").enumerate() {
                multimodal_content(doc, &at(&format!("documents[{i}]")))?;
            }
            let input_type = data.get("input_type").and_then(Value::as_str);
            if !matches!(input_type, Some("document" | "query")) {
                return Err(rule(&at("input_type"), "oneof"));
            }
            Ok(())
        }
        Shape::MultimodalRerank => {
            multimodal_content(data.get("query").unwrap_or(&Value::Null), &at("query"))?;
            for (i, doc) in items(data, "docs").enumerate() {
                multimodal_content(doc, &at(&format!("docs[{i}]")))?;
            }
            Ok(())
        }
        Shape::DriveBrowse => {
            let max_keys = data
                .pointer("/request/max_keys")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if max_keys == 0 {
                return Err(required_error(&at("request.max_keys")));
            }
            Ok(())
        }
        Shape::DriveDownload => {
            if is_blank(data.pointer("/request/id")) {
                return Err(required_error(&at("request.id")));
            }
            Ok(())
        }
        Shape::CheckPolling => {
            if data
                .get("plugin_state")
                .and_then(Value::as_object)
                .is_none_or(|state| state.is_empty())
            {
                return Err(rule(&at("plugin_state"), "min"));
            }
            Ok(())
        }
    }
}

/// Elements of an array field (none when absent, `null` or not an array).
fn items<'a>(data: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    data.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn is_blank(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_none_or(str::is_empty)
}

/// A prompt message as upstream decodes it (role and content present, content a string or
/// parts); with `validate`, also its role and part types.
fn prompt_message(message: &Value, at: &str, validate: bool) -> Result<(), String> {
    let role = message.get("role").and_then(Value::as_str).unwrap_or("");
    if role.is_empty() {
        return Err(format!("{at}: role field is required"));
    }
    match message.get("content") {
        None | Some(Value::Null) => Err(format!("{at}: content field is required")),
        Some(Value::String(_)) => check_role(role, at, validate),
        Some(Value::Array(parts)) => {
            check_role(role, at, validate)?;
            for (i, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                if validate && !CONTENT_TYPES.contains(&kind) {
                    return Err(rule(
                        &format!("{at}.content[{i}].type"),
                        "prompt_message_content_type",
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(format!(
            "{at}: content must be a string or an array of prompt message content"
        )),
    }
}

fn check_role(role: &str, at: &str, validate: bool) -> Result<(), String> {
    if validate && !PROMPT_ROLES.contains(&role) {
        return Err(rule(&format!("{at}.role"), "prompt_message_role"));
    }
    Ok(())
}

fn tool_choice(choice: &Value, at: &str) -> Result<(), String> {
    let mode = choice.get("mode").and_then(Value::as_str).unwrap_or("");
    if mode.is_empty() {
        return Err(required_error(&format!("{at}.mode")));
    }
    if !matches!(mode, "auto" | "none" | "required" | "tool") {
        return Err(rule(&format!("{at}.mode"), "oneof"));
    }
    let name = choice.get("name").and_then(Value::as_str).unwrap_or("");
    if mode == "tool" && name.trim().is_empty() {
        return Err(rule(&format!("{at}.name"), "required_for_tool"));
    }
    Ok(())
}

fn multimodal_content(content: &Value, at: &str) -> Result<(), String> {
    if is_blank(content.get("content")) {
        return Err(required_error(&format!("{at}.content")));
    }
    let kind = content.get("content_type").and_then(Value::as_str);
    match kind {
        None | Some("") => Err(required_error(&format!("{at}.content_type"))),
        Some("text" | "image") => Ok(()),
        Some(_) => Err(rule(
            &format!("{at}.content_type"),
            "multimodal_content_type",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_type_must_match_the_action() {
        let llm = ModelTypeRule::Is("llm");
        assert!(check(
            "invoke_llm",
            llm,
            Shape::Plain,
            &json!({"model_type": "llm"})
        )
        .is_ok());
        assert_eq!(
            check(
                "invoke_llm",
                llm,
                Shape::Plain,
                &json!({"model_type": "tts"})
            ),
            Err(
                "Key: 'invoke_llm.Data.model_type' Error:Field validation for 'model_type' \
                 failed on the 'eq' tag"
                    .to_owned()
            )
        );
        let e = check(
            "get_ai_model_schemas",
            ModelTypeRule::Valid,
            Shape::Plain,
            &json!({"model_type": "x"}),
        );
        assert!(e.expect_err("invalid").contains("'model_type' tag"));
        assert!(check(
            "m",
            ModelTypeRule::Any,
            Shape::Plain,
            &json!({"model_type": "x"})
        )
        .is_ok());
    }

    #[test]
    fn nested_shapes_are_checked() {
        let any = ModelTypeRule::Any;
        let bad = [
            (
                Shape::LlmInvoke,
                json!({"tools": [{"description": "d"}]}),
                "tools[0].name",
            ),
            (
                Shape::LlmInvoke,
                json!({"prompt_messages": [{"role": "user"}]}),
                "content field",
            ),
            (
                Shape::LlmInvoke,
                json!({"tool_choice": {"mode": "tool"}}),
                "required_for_tool",
            ),
            (
                Shape::LlmInvoke,
                json!({"tool_choice": {"mode": "often"}}),
                "oneof",
            ),
            (
                Shape::LlmNumTokens,
                json!({"prompt_messages": [{"role": "bot", "content": ""}]}),
                "prompt_message_role",
            ),
            (
                Shape::MultimodalEmbedding,
                json!({"documents": [{"content": "x", "content_type": "pdf"}], "input_type": "query"}),
                "multimodal_content_type",
            ),
            (
                Shape::MultimodalEmbedding,
                json!({"documents": [], "input_type": "both"}),
                "oneof",
            ),
            (
                Shape::MultimodalRerank,
                json!({"query": {"content": "q"}, "docs": []}),
                "query.content_type",
            ),
            (
                Shape::DriveBrowse,
                json!({"request": {"prefix": ""}}),
                "request.max_keys",
            ),
            (
                Shape::DriveDownload,
                json!({"request": {"bucket": null}}),
                "request.id",
            ),
            (
                Shape::CheckPolling,
                json!({"plugin_state": {}}),
                "'min' tag",
            ),
        ];
        for (shape, data, why) in bad {
            let e = check("a", any, shape, &data).expect_err("refused");
            assert!(e.contains(why), "{data}: {e}");
        }
        // What current Dify sends passes: nulls where it has nothing.
        let llm = json!({"prompt_messages": [{"role": "user", "content": [{"type": "text", "data": "hi"}]}],
            "tools": null, "stop": null, "tool_choice": null});
        assert!(check("invoke_llm", any, Shape::LlmInvoke, &llm).is_ok());
        // invoke_llm does not validate roles (no `dive` upstream), num_tokens does.
        let odd_role = json!({"prompt_messages": [{"role": "bot", "content": "x"}]});
        assert!(check("invoke_llm", any, Shape::LlmInvoke, &odd_role).is_ok());
    }
}
