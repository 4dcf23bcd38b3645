//! The invoke types a plugin may ask for (plugin-protocol §4.3) and where each goes.

/// How Dify answers a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Length-prefixed frames, one answer per frame.
    Stream,
    /// One JSON object.
    Struct,
}

/// Invoke types routed to Dify (`storage` is the daemon's own; `encrypt` is not plugin-callable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvokeType {
    Tool,
    Llm,
    LlmStructuredOutput,
    TextEmbedding,
    MultimodalEmbedding,
    Rerank,
    MultimodalRerank,
    Tts,
    Speech2Text,
    Moderation,
    App,
    NodeParameterExtractor,
    NodeQuestionClassifier,
    SystemSummary,
    UploadFile,
    FetchApp,
}

impl InvokeType {
    /// Parses the plugin's `type`; `None` for anything not routed to Dify.
    pub fn parse(kind: &str) -> Option<InvokeType> {
        use InvokeType::*;
        Some(match kind {
            "tool" => Tool,
            "llm" => Llm,
            "llm_structured_output" => LlmStructuredOutput,
            "text_embedding" => TextEmbedding,
            "multimodal_embedding" => MultimodalEmbedding,
            "rerank" => Rerank,
            "multimodal_rerank" => MultimodalRerank,
            "tts" => Tts,
            "speech2text" => Speech2Text,
            "moderation" => Moderation,
            "app" => App,
            "node_parameter_extractor" => NodeParameterExtractor,
            "node_question_classifier" => NodeQuestionClassifier,
            "system_summary" => SystemSummary,
            "upload_file" => UploadFile,
            "fetch_app" => FetchApp,
            _ => return None,
        })
    }

    /// Path under `/inner/api/`.
    pub fn path(self) -> &'static str {
        use InvokeType::*;
        match self {
            Tool => "invoke/tool",
            Llm => "invoke/llm",
            LlmStructuredOutput => "invoke/llm/structured-output",
            TextEmbedding => "invoke/text-embedding",
            MultimodalEmbedding => "invoke/multimodal-embedding",
            Rerank => "invoke/rerank",
            MultimodalRerank => "invoke/multimodal-rerank",
            Tts => "invoke/tts",
            Speech2Text => "invoke/speech2text",
            Moderation => "invoke/moderation",
            App => "invoke/app",
            NodeParameterExtractor => "invoke/parameter-extractor",
            NodeQuestionClassifier => "invoke/question-classifier",
            SystemSummary => "invoke/summary",
            UploadFile => "upload/file/request",
            FetchApp => "fetch/app/info",
        }
    }

    pub fn mode(self) -> Mode {
        use InvokeType::*;
        match self {
            Tool | Llm | LlmStructuredOutput | Tts | App => Mode::Stream,
            _ => Mode::Struct,
        }
    }
}
