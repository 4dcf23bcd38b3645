//! Message chunks (tool invoke, agent strategy, datasource content) and the small tool answers
//! (http-api §4.3.4).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::wire::{required, rule, Map, Str};
use super::Check;

/// The message types a tool, agent strategy or datasource chunk may carry.
pub const MESSAGE_TYPES: &[&str] = &[
    "text",
    "file",
    "blob",
    "blob_chunk",
    "json",
    "link",
    "image",
    "image_link",
    "binary_link",
    "variable",
    "log",
    "retriever_resources",
];

/// `ToolResponseChunk` / `AgentStrategyResponseChunk` / `DataSourceResponseChunk`:
/// `{"type","message","meta"}`, `message` and `meta` objects or `null`, kept verbatim.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct MessageChunk<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Str<'a>,
    #[serde(default, borrow)]
    pub message: Map<'a>,
    #[serde(default, borrow)]
    pub meta: Map<'a>,
}

impl MessageChunk<'_> {
    /// Validates as the Go struct `name` with its type rule `type_tag`.
    pub(super) fn check_as(&self, name: &str, type_tag: &str) -> Result<(), String> {
        let path = format!("{name}.Type");
        required(self.kind.is_empty(), &path)?;
        if !MESSAGE_TYPES.contains(&self.kind.as_str()) {
            return Err(rule(&path, type_tag));
        }
        Ok(())
    }
}

/// `{"result": bool}` (tool, datasource and trigger credential checks, moderation).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct BoolResult {
    #[serde(default, deserialize_with = "super::wire::or_zero")]
    pub result: bool,
}

impl Check for BoolResult {}

/// `GetToolRuntimeParametersResponse`: `{"parameters": [ToolParameter] | null}`; upstream does not
/// validate the elements.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RuntimeParameters<'a> {
    #[serde(default, borrow)]
    pub parameters: Option<Vec<Map<'a>>>,
}

impl Check for RuntimeParameters<'_> {}

/// `DynamicSelectResult`: `{"options": [ParameterOption] | null}`, each option validated.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct DynamicSelectOptions<'a> {
    #[serde(default, borrow)]
    pub options: Option<Vec<ParameterOption<'a>>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ParameterOption<'a> {
    #[serde(default, borrow)]
    pub value: Str<'a>,
    #[serde(default, borrow)]
    pub label: I18n<'a>,
    #[serde(default, borrow)]
    pub icon: Str<'a>,
}

/// `I18nObject`: `en_US` always written, the others when set.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct I18n<'a> {
    #[serde(rename = "en_US", default, borrow)]
    pub en_us: Str<'a>,
    #[serde(
        rename = "ja_JP",
        default,
        borrow,
        skip_serializing_if = "Str::is_empty"
    )]
    pub ja_jp: Str<'a>,
    #[serde(
        rename = "zh_Hans",
        default,
        borrow,
        skip_serializing_if = "Str::is_empty"
    )]
    pub zh_hans: Str<'a>,
    #[serde(
        rename = "pt_BR",
        default,
        borrow,
        skip_serializing_if = "Str::is_empty"
    )]
    pub pt_br: Str<'a>,
}

impl Check for DynamicSelectOptions<'_> {
    fn check(&self) -> Result<(), String> {
        for (i, option) in self.options.iter().flatten().enumerate() {
            let at = format!("DynamicSelectResult.Options[{i}]");
            required(option.value.is_empty(), &format!("{at}.Value"))?;
            let label = &option.label;
            required(label.en_us.is_empty(), &format!("{at}.Label.EnUS"))?;
            for (text, field) in [
                (&label.en_us, "EnUS"),
                (&label.ja_jp, "JaJp"),
                (&label.zh_hans, "ZhHans"),
                (&label.pt_br, "PtBr"),
            ] {
                if text.as_str().chars().count() >= 1024 {
                    return Err(rule(&format!("{at}.Label.{field}"), "lt"));
                }
            }
        }
        Ok(())
    }
}

/// The fields of a `blob_chunk` message the agent-strategy merger reads; each one of the wrong
/// type (or missing) makes the chunk one to skip, as upstream's type assertions do.
#[derive(Debug, Default, Deserialize)]
pub struct BlobChunk<'a> {
    #[serde(default, borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub total_length: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub blob: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub end: Option<&'a RawValue>,
}

/// A `blob_chunk` message whose fields all have upstream's types.
#[derive(Debug)]
pub struct BlobPiece<'a> {
    pub id: Str<'a>,
    pub total_length: f64,
    pub blob: Str<'a>,
    pub end: bool,
}

impl<'a> BlobChunk<'a> {
    /// Reads the message of a `blob_chunk`; `None` when a field is missing or mistyped.
    pub fn piece(message: &Map<'a>) -> Option<BlobPiece<'a>> {
        let raw = message.0?;
        let fields: BlobChunk<'a> = serde_json::from_str(raw.get()).ok()?;
        let string = |raw: Option<&'a RawValue>| -> Option<Str<'a>> {
            let raw = raw.filter(|r| r.get().starts_with('"'))?;
            serde_json::from_str(raw.get()).ok()
        };
        Some(BlobPiece {
            id: string(fields.id)?,
            total_length: serde_json::from_str::<f64>(fields.total_length?.get()).ok()?,
            blob: string(fields.blob)?,
            end: serde_json::from_str::<bool>(fields.end?.get()).ok()?,
        })
    }
}
