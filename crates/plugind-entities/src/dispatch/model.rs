//! Model answers (http-api §4.3.4): LLM chunks, embeddings, rerank, TTS, the small results and
//! model polling (§4.3.6).

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::wire::{or_zero, raw_some, required, rule, Map, Num, Price, Str};
use super::Check;

/// `LLMResultChunk`; written back with `"prompt_messages":[]` and nothing else of the plugin's.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct LlmResultChunk<'a> {
    #[serde(default, borrow)]
    pub model: Str<'a>,
    #[serde(default, borrow)]
    pub system_fingerprint: Str<'a>,
    #[serde(default, borrow)]
    pub delta: LlmDelta<'a>,
    /// Always empty on the wire (compatibility with clients that require the key).
    #[serde(skip_deserializing)]
    pub prompt_messages: [(); 0],
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct LlmDelta<'a> {
    #[serde(default)]
    pub index: Option<i64>,
    #[serde(default, borrow)]
    pub message: Option<PromptMessage<'a>>,
    #[serde(default, borrow)]
    pub usage: Option<LlmUsage<'a>>,
    #[serde(default, borrow)]
    pub finish_reason: Option<Str<'a>>,
}

/// A prompt message (`role` and `content` required, `content` a string or content parts).
#[derive(Debug, Deserialize, Serialize)]
pub struct PromptMessage<'a> {
    #[serde(default, borrow)]
    pub role: Str<'a>,
    #[serde(default, borrow)]
    pub content: Option<Content<'a>>,
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default, borrow)]
    pub tool_call_id: Str<'a>,
    #[serde(
        default,
        borrow,
        deserialize_with = "raw_some",
        skip_serializing_if = "Option::is_none"
    )]
    pub opaque_body: Option<&'a RawValue>,
}

pub const PROMPT_ROLES: &[&str] = &["system", "user", "assistant", "tool"];
pub const CONTENT_TYPES: &[&str] = &["text", "image", "audio", "video", "document"];

impl PromptMessage<'_> {
    /// Upstream's decode-time checks (role and content present) and validator rules.
    pub fn check(&self, path: &str) -> Result<(), String> {
        if self.role.is_empty() {
            return Err("role field is required".to_owned());
        }
        if !PROMPT_ROLES.contains(&self.role.as_str()) {
            return Err(rule(&format!("{path}.Role"), "prompt_message_role"));
        }
        match &self.content {
            None => Err("content field is required".to_owned()),
            Some(Content::Parts(parts)) => {
                for (i, part) in parts.iter().enumerate() {
                    let at = format!("{path}.Content[{i}].Type");
                    required(part.kind.is_empty(), &at)?;
                    if !CONTENT_TYPES.contains(&part.kind.as_str()) {
                        return Err(rule(&format!("{path}.Content"), "prompt_message_content"));
                    }
                }
                Ok(())
            }
            Some(Content::Text(_)) => Ok(()),
        }
    }
}

/// Prompt content: a string or an array of parts.
#[derive(Debug)]
pub enum Content<'a> {
    Text(Str<'a>),
    Parts(Vec<ContentPart<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'a RawValue>::deserialize(d)?;
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str(text)
                .map(Content::Text)
                .map_err(de::Error::custom),
            Some(b'[') => serde_json::from_str(text)
                .map(Content::Parts)
                .map_err(de::Error::custom),
            Some(b'n') => Err(de::Error::custom("content field is required")),
            _ => Err(de::Error::custom(
                "content must be a string or an array of prompt message content",
            )),
        }
    }
}

impl Serialize for Content<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Text(text) => text.serialize(s),
            Content::Parts(parts) => parts.serialize(s),
        }
    }
}

/// A content part; every string field is written back, empty or not.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ContentPart<'a> {
    #[serde(rename = "type", default, borrow)]
    pub kind: Str<'a>,
    #[serde(default, borrow)]
    pub base64_data: Str<'a>,
    #[serde(default, borrow)]
    pub url: Str<'a>,
    #[serde(default, borrow)]
    pub data: Str<'a>,
    #[serde(default, borrow)]
    pub encode_format: Str<'a>,
    #[serde(default, borrow)]
    pub format: Str<'a>,
    #[serde(default, borrow)]
    pub mime_type: Str<'a>,
    #[serde(default, borrow)]
    pub detail: Str<'a>,
    #[serde(default, borrow)]
    pub filename: Str<'a>,
    #[serde(
        default,
        borrow,
        deserialize_with = "raw_some",
        skip_serializing_if = "Option::is_none"
    )]
    pub opaque_body: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolCall<'a> {
    #[serde(default, borrow)]
    pub id: Str<'a>,
    #[serde(rename = "type", default, borrow)]
    pub kind: Str<'a>,
    #[serde(default, borrow, deserialize_with = "or_zero")]
    pub function: ToolCallFunction<'a>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ToolCallFunction<'a> {
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(default, borrow)]
    pub arguments: Str<'a>,
}

/// `LLMUsage`: token counts, currency and latency required; prices as decimal strings.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct LlmUsage<'a> {
    #[serde(default)]
    pub prompt_tokens: Option<i64>,
    #[serde(default)]
    pub prompt_unit_price: Price,
    #[serde(default)]
    pub prompt_price_unit: Price,
    #[serde(default)]
    pub prompt_price: Price,
    #[serde(default)]
    pub completion_tokens: Option<i64>,
    #[serde(default)]
    pub completion_unit_price: Price,
    #[serde(default)]
    pub completion_price_unit: Price,
    #[serde(default)]
    pub completion_price: Price,
    #[serde(default)]
    pub total_tokens: Option<i64>,
    #[serde(default)]
    pub total_price: Price,
    #[serde(default, borrow)]
    pub currency: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub latency: Option<Num<'a>>,
}

impl Check for LlmResultChunk<'_> {
    fn check(&self) -> Result<(), String> {
        required(self.model.is_empty(), "LLMResultChunk.Model")?;
        let delta = &self.delta;
        required(delta.index.is_none(), "LLMResultChunk.Delta.Index")?;
        match &delta.message {
            Some(message) => message.check("LLMResultChunk.Delta.Message")?,
            None => return Err(rule("LLMResultChunk.Delta.Message.Role", "required")),
        }
        if let Some(usage) = &delta.usage {
            let at = "LLMResultChunk.Delta.Usage";
            required(usage.prompt_tokens.is_none(), &format!("{at}.PromptTokens"))?;
            required(
                usage.completion_tokens.is_none(),
                &format!("{at}.CompletionTokens"),
            )?;
            required(usage.total_tokens.is_none(), &format!("{at}.TotalTokens"))?;
            required(usage.currency.is_none(), &format!("{at}.Currency"))?;
            required(usage.latency.is_none(), &format!("{at}.Latency"))?;
        }
        Ok(())
    }
}

/// `{"num_tokens": int}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct LlmNumTokens {
    #[serde(default, deserialize_with = "or_zero")]
    pub num_tokens: i64,
}

impl Check for LlmNumTokens {}

/// `{"num_tokens": [int]}` (required).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TextEmbeddingNumTokens {
    #[serde(default, deserialize_with = "ints")]
    pub num_tokens: Option<Vec<i64>>,
}

fn ints<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
    let items = Option::<Vec<Option<i64>>>::deserialize(d)?;
    Ok(items.map(|v| v.into_iter().map(Option::unwrap_or_default).collect()))
}

impl Check for TextEmbeddingNumTokens {
    fn check(&self) -> Result<(), String> {
        required(
            self.num_tokens.is_none(),
            "GetTextEmbeddingNumTokensResponse.NumTokens",
        )
    }
}

/// `TextEmbeddingResult` / `MultimodalEmbeddingResult`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EmbeddingResult<'a> {
    #[serde(default, borrow)]
    pub model: Str<'a>,
    #[serde(default, borrow)]
    pub embeddings: Option<Embeddings<'a>>,
    #[serde(default, borrow, deserialize_with = "or_zero")]
    pub usage: EmbeddingUsage<'a>,
}

/// `[[number]]`, checked element by element and written back as the plugin wrote it.
#[derive(Debug)]
pub struct Embeddings<'a>(pub &'a RawValue);

impl<'de: 'a, 'a> Deserialize<'de> for Embeddings<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'a RawValue>::deserialize(d)?;
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_seq(Rows).map_err(de::Error::custom)?;
        Ok(Embeddings(raw))
    }
}

impl Serialize for Embeddings<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Visits `[[number]]` without building anything (rows may be `null`, as a nil Go slice).
struct Rows;

impl<'de> Visitor<'de> for Rows {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of arrays of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Option<Row>>()?.is_some() {}
        Ok(())
    }
}

struct Row;

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Row, A::Error> {
                while seq.next_element::<Option<f64>>()?.is_some() {}
                Ok(Row)
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EmbeddingUsage<'a> {
    #[serde(default)]
    pub tokens: Option<i64>,
    #[serde(default)]
    pub total_tokens: Option<i64>,
    #[serde(default)]
    pub unit_price: Price,
    #[serde(default)]
    pub price_unit: Price,
    #[serde(default)]
    pub total_price: Price,
    #[serde(default, borrow)]
    pub currency: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub latency: Option<Num<'a>>,
}

impl EmbeddingResult<'_> {
    pub(super) fn check_as(&self, name: &str) -> Result<(), String> {
        required(self.model.is_empty(), &format!("{name}.Model"))?;
        required(self.embeddings.is_none(), &format!("{name}.Embeddings"))?;
        let usage = &self.usage;
        let at = format!("{name}.Usage");
        required(usage.tokens.is_none(), &format!("{at}.Tokens"))?;
        required(usage.total_tokens.is_none(), &format!("{at}.TotalTokens"))?;
        required(usage.currency.is_none(), &format!("{at}.Currency"))?;
        required(usage.latency.is_none(), &format!("{at}.Latency"))
    }
}

/// `RerankResult` / `MultimodalRerankResult`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RerankResult<'a> {
    #[serde(default, borrow)]
    pub model: Str<'a>,
    #[serde(default, borrow)]
    pub docs: Option<Vec<RerankDocument<'a>>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct RerankDocument<'a> {
    #[serde(default)]
    pub index: Option<i64>,
    #[serde(default, borrow)]
    pub text: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub score: Option<Num<'a>>,
}

impl RerankResult<'_> {
    pub(super) fn check_as(&self, name: &str) -> Result<(), String> {
        required(self.model.is_empty(), &format!("{name}.Model"))?;
        let Some(docs) = &self.docs else {
            return Err(rule(&format!("{name}.Docs"), "required"));
        };
        for (i, doc) in docs.iter().enumerate() {
            let at = format!("{name}.Docs[{i}]");
            required(doc.index.is_none(), &format!("{at}.Index"))?;
            required(doc.text.is_none(), &format!("{at}.Text"))?;
            required(doc.score.is_none(), &format!("{at}.Score"))?;
        }
        Ok(())
    }
}

/// `TTSResult`: hex audio; `mime_type` omitted when empty.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TtsResult<'a> {
    #[serde(default, borrow)]
    pub result: Str<'a>,
    #[serde(default, borrow, skip_serializing_if = "Str::is_empty")]
    pub mime_type: Str<'a>,
}

impl Check for TtsResult<'_> {}

/// `{"voices": [{"name","value"}]}`, all required.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TtsVoices<'a> {
    #[serde(default, borrow)]
    pub voices: Option<Vec<TtsVoice<'a>>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct TtsVoice<'a> {
    #[serde(default, borrow)]
    pub name: Str<'a>,
    #[serde(default, borrow)]
    pub value: Str<'a>,
}

impl Check for TtsVoices<'_> {
    fn check(&self) -> Result<(), String> {
        let Some(voices) = &self.voices else {
            return Err(rule("GetTTSVoicesResponse.Voices", "required"));
        };
        for (i, voice) in voices.iter().enumerate() {
            let at = format!("GetTTSVoicesResponse.Voices[{i}]");
            required(voice.name.is_empty(), &format!("{at}.Name"))?;
            required(voice.value.is_empty(), &format!("{at}.Value"))?;
        }
        Ok(())
    }
}

/// `{"result": string}` (speech to text, OAuth URL has its own).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct StringResult<'a> {
    #[serde(default, borrow)]
    pub result: Str<'a>,
}

impl Check for StringResult<'_> {}

/// `{"result": bool, "credentials": object|null}` (model credential checks).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct CredentialsResult<'a> {
    #[serde(default, deserialize_with = "or_zero")]
    pub result: bool,
    #[serde(default, borrow)]
    pub credentials: Map<'a>,
}

impl Check for CredentialsResult<'_> {}

/// `{"model_schema": object|null}`.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ModelSchema<'a> {
    #[serde(default, borrow)]
    pub model_schema: Map<'a>,
}

impl Check for ModelSchema<'_> {}

/// `ModelPollingResult` (§4.3.6): empty optional fields omitted, status rules checked.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct PollingResult<'a> {
    #[serde(default, borrow)]
    pub status: Str<'a>,
    #[serde(default, borrow, skip_serializing_if = "Map::is_empty")]
    pub plugin_state: Map<'a>,
    /// Any JSON; `null` counts as absent (omitted, and missing for `succeeded`).
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Str::is_empty")]
    pub error: Str<'a>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i64>,
}

impl Check for PollingResult<'_> {
    fn check(&self) -> Result<(), String> {
        let path = "ModelPollingResult.Status";
        required(self.status.is_empty(), path)?;
        match self.status.as_str() {
            "running" if self.plugin_state.is_empty() => Err(rule(
                "ModelPollingResult.PluginState",
                "required_for_running",
            )),
            "succeeded" if self.result.is_none() => {
                Err(rule("ModelPollingResult.Result", "required_for_succeeded"))
            }
            "failed" if self.error.as_str().trim().is_empty() => {
                Err(rule("ModelPollingResult.Error", "required_for_failed"))
            }
            "running" | "succeeded" | "failed" => Ok(()),
            _ => Err(rule(path, "oneof")),
        }
    }
}
