//! What a plugin may answer to each dispatch action (http-api §4.3.3–4.3.4, plugin-protocol
//! §3.2), as upstream's Go response types: each `stream` chunk is decoded into the action's type
//! (a wrong JSON type is an error), validated with upstream's rules, and written back — unknown
//! fields dropped, empty optional fields (`mime_type`, `metadata`, `payload`, …) omitted, prices
//! as decimal strings, LLM chunks with `"prompt_messages":[]`.
//!
//! Decoding borrows from the chunk's text: strings without escapes, free-form objects
//! (`message`, `credentials`, …) and numbers are not copied until the answer is written, and are
//! written as the plugin sent them (upstream re-sorts free-form maps and reformats numbers; Dify
//! reads neither order nor number spelling).

mod model;
mod provider;
mod tool;
pub mod wire;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use model::{
    Content, ContentPart, CredentialsResult, EmbeddingResult, EmbeddingUsage, LlmDelta,
    LlmNumTokens, LlmResultChunk, LlmUsage, ModelSchema, PollingResult, PromptMessage,
    RerankDocument, RerankResult, StringResult, TextEmbeddingNumTokens, TtsResult, TtsVoice,
    TtsVoices, CONTENT_TYPES, PROMPT_ROLES,
};
pub use provider::{
    AuthorizationUrl, DriveBrowseResult, DriveFile, FileBucket, OAuthCredentials, ObjectListResult,
    ObjectResult, RefreshedCredentials, Subscription, TriggerDispatch, TriggerEvent, EndpointChunk,
};
pub use tool::{
    BlobChunk, BlobPiece, BoolResult, DynamicSelectOptions, I18n, MessageChunk, ParameterOption,
    RuntimeParameters, MESSAGE_TYPES,
};

/// Upstream's validator rules of a response type (beyond what decoding enforces).
pub trait Check {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The response type of one dispatch action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseKind {
    /// `ToolResponseChunk`, many (tool invoke).
    ToolMessages,
    /// `AgentStrategyResponseChunk`, many; blob chunks are merged by the dispatch (§4.3.5).
    AgentMessages,
    /// `DataSourceResponseChunk`, many (online document content, drive download).
    DatasourceMessages,
    /// `ValidateCredentialsResult` of tools: `{"result": bool}`.
    ToolCredentialsValid,
    /// `GetToolRuntimeParametersResponse`.
    ToolRuntimeParameters,
    /// `LLMResultChunk`, many.
    LlmChunks,
    /// `LLMGetNumTokensResponse`.
    LlmNumTokens,
    /// `TextEmbeddingResult`.
    TextEmbedding,
    /// `MultimodalEmbeddingResult`.
    MultimodalEmbedding,
    /// `GetTextEmbeddingNumTokensResponse`.
    TextEmbeddingNumTokens,
    /// `RerankResult`.
    Rerank,
    /// `MultimodalRerankResult`.
    MultimodalRerank,
    /// `TTSResult`, many.
    Tts,
    /// `GetTTSVoicesResponse`.
    TtsVoices,
    /// `Speech2TextResult`.
    Speech2Text,
    /// `ModerationResult`.
    Moderation,
    /// Model `ValidateCredentialsResult`: `{"result","credentials"}`.
    ModelCredentialsValid,
    /// `GetModelSchemasResponse`.
    ModelSchema,
    /// `ModelPollingResult` (§4.3.6).
    ModelPolling,
    /// `OAuthGetAuthorizationURLResult`.
    OAuthAuthorizationUrl,
    /// `OAuthGetCredentialsResult`.
    OAuthCredentials,
    /// `OAuthRefreshCredentialsResult`.
    OAuthRefreshedCredentials,
    /// `DynamicSelectResult`.
    DynamicSelectOptions,
    /// `DataSourceValidateCredentialsResponse`.
    DatasourceCredentialsValid,
    /// `WebsiteCrawlChunk`, many.
    WebsiteCrawl,
    /// `DatasourceGetPagesResponse`.
    OnlineDocumentPages,
    /// `GetOnlineDriveBrowseFilesResponse`.
    OnlineDriveFiles,
    /// `TriggerInvokeEventResponse`.
    TriggerEvent,
    /// `TriggerValidateProviderCredentialsResponse`.
    TriggerCredentialsValid,
    /// `TriggerDispatchEventResponse`.
    TriggerDispatch,
    /// `TriggerSubscribeResponse` / `TriggerUnsubscribeResponse` / `TriggerRefreshResponse`.
    TriggerSubscription,
    /// `EndpointResponseChunk`, many (public hooks, `invoke_endpoint`).
    EndpointResponse,
}

impl ResponseKind {
    /// The chunk decoded, validated and written back as upstream does; `Err` carries the reason,
    /// which the caller reports as upstream's `unmarshal_error`.
    pub fn normalise(self, chunk: &str) -> Result<Box<RawValue>, String> {
        use ResponseKind as K;
        match self {
            K::ToolMessages | K::AgentMessages | K::DatasourceMessages => {
                encode(&self.message_chunk(chunk)?)
            }
            K::ToolCredentialsValid
            | K::Moderation
            | K::DatasourceCredentialsValid
            | K::TriggerCredentialsValid => reencode::<BoolResult>(chunk),
            K::ToolRuntimeParameters => reencode::<RuntimeParameters>(chunk),
            K::LlmChunks => reencode::<LlmResultChunk>(chunk),
            K::LlmNumTokens => reencode::<LlmNumTokens>(chunk),
            K::TextEmbedding | K::MultimodalEmbedding => {
                let result: EmbeddingResult = decode(chunk)?;
                result.check_as(if self == K::TextEmbedding {
                    "TextEmbeddingResult"
                } else {
                    "MultimodalEmbeddingResult"
                })?;
                encode(&result)
            }
            K::TextEmbeddingNumTokens => reencode::<TextEmbeddingNumTokens>(chunk),
            K::Rerank | K::MultimodalRerank => {
                let result: RerankResult = decode(chunk)?;
                result.check_as(if self == K::Rerank {
                    "RerankResult"
                } else {
                    "MultimodalRerankResult"
                })?;
                encode(&result)
            }
            K::Tts => reencode::<TtsResult>(chunk),
            K::TtsVoices => reencode::<TtsVoices>(chunk),
            K::Speech2Text => reencode::<StringResult>(chunk),
            K::ModelCredentialsValid => reencode::<CredentialsResult>(chunk),
            K::ModelSchema => reencode::<ModelSchema>(chunk),
            K::ModelPolling => reencode::<PollingResult>(chunk),
            K::OAuthAuthorizationUrl => reencode::<AuthorizationUrl>(chunk),
            K::OAuthCredentials => reencode::<OAuthCredentials>(chunk),
            K::OAuthRefreshedCredentials => reencode::<RefreshedCredentials>(chunk),
            K::DynamicSelectOptions => reencode::<DynamicSelectOptions>(chunk),
            K::WebsiteCrawl => reencode::<ObjectResult>(chunk),
            K::OnlineDocumentPages => reencode::<ObjectListResult>(chunk),
            K::OnlineDriveFiles => reencode::<DriveBrowseResult>(chunk),
            K::TriggerEvent => reencode::<TriggerEvent>(chunk),
            K::TriggerDispatch => reencode::<TriggerDispatch>(chunk),
            K::TriggerSubscription => reencode::<Subscription>(chunk),
            K::EndpointResponse => reencode::<EndpointChunk>(chunk),
        }
    }

    /// A message chunk of this kind, decoded and validated (tool, agent and datasource kinds).
    pub fn message_chunk<'a>(self, chunk: &'a str) -> Result<MessageChunk<'a>, String> {
        let message: MessageChunk = decode(chunk)?;
        match self {
            ResponseKind::DatasourceMessages => message.check_as(
                "DataSourceResponseChunk",
                "is_valid_data_source_response_chunk_type",
            )?,
            ResponseKind::AgentMessages => message.check_as(
                "AgentStrategyResponseChunk.ToolResponseChunk",
                "is_valid_tool_response_chunk_type",
            )?,
            _ => message.check_as("ToolResponseChunk", "is_valid_tool_response_chunk_type")?,
        }
        Ok(message)
    }
}

/// Decodes `chunk` as `T` and runs its rules.
pub fn decode<'a, T: Deserialize<'a> + Check>(chunk: &'a str) -> Result<T, String> {
    let value: T = serde_json::from_str(chunk).map_err(|e| e.to_string())?;
    value.check()?;
    Ok(value)
}

/// Writes a decoded answer back as JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<Box<RawValue>, String> {
    serde_json::value::to_raw_value(value).map_err(|e| e.to_string())
}

fn reencode<'a, T: Deserialize<'a> + Serialize + Check>(
    chunk: &'a str,
) -> Result<Box<RawValue>, String> {
    encode(&decode::<T>(chunk)?)
}

impl Check for MessageChunk<'_> {}
impl Check for EmbeddingResult<'_> {}
impl Check for RerankResult<'_> {}

#[cfg(test)]
mod tests;
