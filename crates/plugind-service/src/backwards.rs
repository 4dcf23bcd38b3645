//! Backwards invocation: a plugin, while serving a session, calls back into Dify (models, tools,
//! apps, workflow nodes, files) or into the daemon's own key–value storage
//! (plugin-protocol §4).
//!
//! The dispatch loop hands every `invoke` message to [`Caller::start`], which checks its shape
//! and spawns one task per call; the task checks the manifest's permissions, overwrites
//! `tenant_id`/`user_id`/`type` from the session, calls Dify through the shared [`InnerApi`]
//! (or [`crate::persistence`]), and writes the answers through the session's [`Responder`]
//! (`response`… or `error`, then always `end`). The session's own chunks keep flowing meanwhile.

use std::sync::Arc;

use plugind_dify::{DifyError, InnerApi, InvokeType, Mode};
use plugind_entities::{DaemonError, ModelKind, PluginPermission, PluginUniqueIdentifier};
use plugind_runtime::Responder;
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::persistence;
use crate::Services;

/// What the daemon knows about the session a backwards call comes from. One per dispatch;
/// dropping it (the dispatch ended) cancels the calls still running.
pub(crate) struct Caller {
    shared: Arc<Shared>,
    _cancel_on_drop: DropGuard,
}

struct Shared {
    services: Services,
    tenant_id: String,
    user_id: String,
    /// Access type of the session (`tool`, `model`, `endpoint`, …).
    access_type: &'static str,
    uid: PluginUniqueIdentifier,
    /// The running plugin's permissions, read from its stored declaration at the first call.
    permission: OnceCell<PluginPermission>,
    cancel: CancellationToken,
}

/// One parsed `invoke` payload.
struct Call {
    id: String,
    kind: String,
    request: Map<String, Value>,
}

impl Caller {
    pub(crate) fn new(
        services: Services,
        tenant_id: &str,
        user_id: &str,
        access_type: &'static str,
        uid: PluginUniqueIdentifier,
    ) -> Caller {
        let cancel = CancellationToken::new();
        Caller {
            shared: Arc::new(Shared {
                services,
                tenant_id: tenant_id.to_owned(),
                user_id: user_id.to_owned(),
                access_type,
                uid,
                permission: OnceCell::new(),
                cancel: cancel.clone(),
            }),
            _cancel_on_drop: cancel.drop_guard(),
        }
    }

    /// A handle that starts calls for this dispatch's session from elsewhere (the serverless
    /// transaction route); calls it starts are cancelled with the dispatch all the same.
    pub(crate) fn handle(&self) -> CallerRef {
        CallerRef(self.shared.clone())
    }

    /// Starts one backwards call answered through `responder`; see [`CallerRef::start`].
    pub(crate) fn start(&self, responder: Responder, payload: Value) -> Result<(), DaemonError> {
        self.handle().start(responder, payload)
    }
}

/// The session context of a running dispatch, for starting backwards calls.
#[derive(Clone)]
pub(crate) struct CallerRef(Arc<Shared>);

impl CallerRef {
    /// Starts one backwards call. A payload without string `type`, string
    /// `backwards_request_id` and object `request` fails the whole dispatch (as upstream);
    /// everything else is answered to the plugin from a task of its own, which ends with `end`
    /// (and drops `responder`) unless the dispatch ended first.
    pub(crate) fn start(&self, responder: Responder, payload: Value) -> Result<(), DaemonError> {
        let call = parse(payload).map_err(|missing| {
            let inner = json!({
                "error_type": "invoke_dify_error",
                "message": format!("invoke dify failed: invoke request missing {missing}"),
            });
            DaemonError::invoke(inner.to_string())
        })?;
        let shared = self.0.clone();
        tokio::spawn(async move {
            let answers = Answers {
                responder,
                id: call.id.clone(),
            };
            tokio::select! {
                () = run(&shared, &answers, call) => {}
                () = shared.cancel.cancelled() => return,
            }
            answers.send("end", "", Value::Null).await;
        });
        Ok(())
    }
}

fn parse(payload: Value) -> Result<Call, &'static str> {
    let Value::Object(mut fields) = payload else {
        return Err("type");
    };
    let kind = match fields.remove("type") {
        Some(Value::String(s)) => s,
        _ => return Err("type"),
    };
    let id = match fields.remove("backwards_request_id") {
        Some(Value::String(s)) => s,
        _ => return Err("backwards_request_id"),
    };
    let request = match fields.remove("request") {
        Some(Value::Object(m)) => m,
        _ => return Err("request"),
    };
    Ok(Call { id, kind, request })
}

/// Writes `{"backwards_request_id","event","message","data"}` answers for one call.
struct Answers {
    responder: Responder,
    id: String,
}

impl Answers {
    /// False when the plugin could not be written to (the caller stops relaying).
    async fn send(&self, event: &str, message: &str, data: Value) -> bool {
        let answer = json!({
            "backwards_request_id": self.id,
            "event": event,
            "message": message,
            "data": data,
        });
        match self.responder.send(answer).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "could not answer a backwards invocation");
                false
            }
        }
    }

    async fn error(&self, message: impl AsRef<str>) {
        self.send("error", message.as_ref(), Value::Null).await;
    }

    async fn response(&self, message: &str, data: Value) -> bool {
        self.send("response", message, data).await
    }
}

/// Everything before `end`.
async fn run(shared: &Shared, answers: &Answers, call: Call) {
    if shared.access_type == "model" {
        return answers.error("you can not invoke dify from model").await;
    }
    let permission = match shared
        .permission
        .get_or_try_init(|| load_permission(shared))
        .await
    {
        Ok(p) => *p,
        Err(e) => return answers.error(e).await,
    };
    if call.kind == "storage" {
        if !permission.allows_storage() {
            return answers.error(denied("storage")).await;
        }
        let ns = persistence::Namespace {
            tenant_id: &shared.tenant_id,
            plugin_id: shared.uid.plugin_id(),
            declared_size: permission.storage_size(),
        };
        let request = Value::Object(call.request);
        return match persistence::handle(&shared.services, &ns, &request).await {
            Ok(data) => {
                answers.response("struct", data).await;
            }
            Err(e) => answers.error(e).await,
        };
    }
    let Some(kind) = InvokeType::parse(&call.kind) else {
        return answers
            .error(format!("unsupported invoke type: {}", call.kind))
            .await;
    };
    if let Some(what) = needed_permission(kind, &permission) {
        return answers.error(denied(what)).await;
    }
    let body = match request_body(kind, shared, call.request) {
        Ok(body) => body,
        Err(e) => {
            return answers
                .error(format!("unmarshal backwards invoke request failed: {e}"))
                .await
        }
    };
    let Some(api) = shared.services.inner.cfg.inner_api.clone() else {
        return answers
            .error(format!(
                "{}: dify inner api is not configured",
                labels(kind).0
            ))
            .await;
    };
    relay(&api, kind, &body, answers).await;
}

async fn load_permission(shared: &Shared) -> Result<PluginPermission, String> {
    match shared
        .services
        .inner
        .db
        .get_declaration(&shared.uid.to_string())
        .await
    {
        Ok(Some(decl)) => Ok(PluginPermission::of(&decl)),
        Ok(None) => Err("plugin declaration not found".into()),
        Err(e) => Err(format!("load plugin declaration failed: {e}")),
    }
}

fn denied(what: &str) -> String {
    format!("permission denied, you need to enable {what} access in plugin manifest")
}

/// The manifest switch `kind` needs, named as in the denial text, when it is off.
fn needed_permission(kind: InvokeType, p: &PluginPermission) -> Option<&'static str> {
    use InvokeType::*;
    let (allowed, name) = match kind {
        Tool => (p.allows_tool(), "tool"),
        Llm | LlmStructuredOutput | SystemSummary => (p.allows_model(ModelKind::Llm), "llm"),
        TextEmbedding | MultimodalEmbedding => {
            (p.allows_model(ModelKind::TextEmbedding), "text-embedding")
        }
        Rerank | MultimodalRerank => (p.allows_model(ModelKind::Rerank), "rerank"),
        Tts => (p.allows_model(ModelKind::Tts), "tts"),
        Speech2Text => (p.allows_model(ModelKind::Speech2Text), "speech2text"),
        Moderation => (p.allows_model(ModelKind::Moderation), "moderation"),
        App | FetchApp => (p.allows_app(), "app"),
        NodeParameterExtractor | NodeQuestionClassifier => (p.allows_node(), "node"),
        UploadFile => (true, ""),
    };
    (!allowed).then_some(name)
}

/// Prefixes of the plugin-visible error texts: (calling failed, reading the stream failed).
fn labels(kind: InvokeType) -> (&'static str, &'static str) {
    use InvokeType::*;
    match kind {
        Tool => ("invoke tool failed", "read tool response failed"),
        Llm => ("invoke llm model failed", "read llm model failed"),
        LlmStructuredOutput => (
            "invoke llm with structured output model failed",
            "read llm with structured output model failed",
        ),
        TextEmbedding => ("invoke text-embedding model failed", ""),
        MultimodalEmbedding => ("invoke multimodal embedding model failed", ""),
        Rerank => ("invoke rerank model failed", ""),
        MultimodalRerank => ("invoke multimodal rerank model failed", ""),
        Tts => ("invoke tts model failed", "read tts model failed"),
        Speech2Text => ("invoke speech2text model failed", ""),
        Moderation => ("invoke moderation model failed", ""),
        App => ("invoke app failed", "read app failed"),
        NodeParameterExtractor => ("invoke parameter extractor failed", ""),
        NodeQuestionClassifier => ("invoke question classifier failed", ""),
        SystemSummary => ("invoke summary failed", ""),
        UploadFile => ("upload file failed", ""),
        FetchApp => ("fetch app failed", ""),
    }
}

/// Keys a request of `kind` must carry (non-empty), beyond the three the daemon sets.
fn required_keys(kind: InvokeType) -> &'static [&'static str] {
    use InvokeType::*;
    match kind {
        Tool => &["tool_type"],
        Llm => &["mode"],
        LlmStructuredOutput => &["mode", "structured_output_schema"],
        App | FetchApp => &["app_id"],
        _ => &[],
    }
}

/// The JSON posted to Dify: `tenant_id`, `user_id`, `type` from the session first, then the
/// plugin's fields (its own `tenant_id`/`user_id`/`type` are dropped).
fn request_body(
    kind: InvokeType,
    shared: &Shared,
    request: Map<String, Value>,
) -> Result<Value, String> {
    for key in required_keys(kind) {
        let present = match request.get(*key) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if !present {
            return Err(format!("{key} is required"));
        }
    }
    if kind == InvokeType::Tool {
        let tool_type = request
            .get("tool_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !matches!(tool_type, "builtin" | "workflow" | "api" | "mcp") {
            return Err(format!("invalid tool_type {tool_type:?}"));
        }
    }
    let mut body = Map::new();
    body.insert("tenant_id".into(), Value::String(shared.tenant_id.clone()));
    body.insert("user_id".into(), Value::String(shared.user_id.clone()));
    body.insert("type".into(), Value::String(invoke_type_name(kind).into()));
    for (key, value) in request {
        if matches!(key.as_str(), "tenant_id" | "user_id" | "type") {
            continue;
        }
        if kind == InvokeType::Tool {
            // Dify's tool route has no app; an empty credential type is left out.
            if key == "app_id" || (key == "credential_type" && value.as_str() == Some("")) {
                continue;
            }
        }
        body.insert(key, value);
    }
    Ok(Value::Object(body))
}

fn invoke_type_name(kind: InvokeType) -> &'static str {
    use InvokeType::*;
    match kind {
        Tool => "tool",
        Llm => "llm",
        LlmStructuredOutput => "llm_structured_output",
        TextEmbedding => "text_embedding",
        MultimodalEmbedding => "multimodal_embedding",
        Rerank => "rerank",
        MultimodalRerank => "multimodal_rerank",
        Tts => "tts",
        Speech2Text => "speech2text",
        Moderation => "moderation",
        App => "app",
        NodeParameterExtractor => "node_parameter_extractor",
        NodeQuestionClassifier => "node_question_classifier",
        SystemSummary => "system_summary",
        UploadFile => "upload_file",
        FetchApp => "fetch_app",
    }
}

/// Calls Dify and forwards its answer(s).
async fn relay(api: &InnerApi, kind: InvokeType, body: &Value, answers: &Answers) {
    let (invoke_failed, read_failed) = labels(kind);
    match kind.mode() {
        Mode::Struct => match api.call_json(kind.path(), body).await {
            Ok(data) => match struct_answer(kind, data) {
                Ok(data) => {
                    answers.response("struct", data).await;
                }
                Err(e) => answers.error(format!("{invoke_failed}: {e}")).await,
            },
            Err(e) => answers.error(format!("{invoke_failed}: {e}")).await,
        },
        Mode::Stream => {
            let mut stream = match api.call_stream(kind.path(), body).await {
                Ok(stream) => stream,
                Err(e) => return answers.error(format!("{invoke_failed}: {e}")).await,
            };
            while let Some(item) = stream.next().await {
                match item {
                    Ok(data) if data.is_object() => {
                        if !answers.response("stream", data).await {
                            return;
                        }
                    }
                    Ok(other) => {
                        let e = DifyError::Decode(format!("expected an object, got {other}"));
                        return answers.error(format!("{read_failed}: {e}")).await;
                    }
                    Err(e) => return answers.error(format!("{read_failed}: {e}")).await,
                }
            }
        }
    }
}

/// Shapes a struct answer for the plugin: `fetch_app` is unwrapped once more; everything must
/// be an object.
fn struct_answer(kind: InvokeType, data: Value) -> Result<Value, DifyError> {
    let data = if kind == InvokeType::FetchApp {
        match data.get("data") {
            Some(inner) if !inner.is_null() => inner.clone(),
            _ => return Err(DifyError::NoData),
        }
    } else {
        data
    };
    if data.is_object() {
        Ok(data)
    } else {
        Err(DifyError::Decode(format!("expected an object, got {data}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_names_follow_upstream() {
        let none = PluginPermission::default();
        assert_eq!(
            needed_permission(InvokeType::SystemSummary, &none),
            Some("llm")
        );
        assert_eq!(
            needed_permission(InvokeType::MultimodalEmbedding, &none),
            Some("text-embedding")
        );
        assert_eq!(needed_permission(InvokeType::FetchApp, &none), Some("app"));
        assert_eq!(needed_permission(InvokeType::UploadFile, &none), None);
        assert_eq!(
            denied("tool"),
            "permission denied, you need to enable tool access in plugin manifest"
        );
    }

    #[test]
    fn malformed_payloads_name_the_missing_key() {
        assert!(matches!(parse(json!("x")), Err("type")));
        assert!(matches!(
            parse(json!({"type": "llm", "request": {}})),
            Err("backwards_request_id")
        ));
        assert!(matches!(
            parse(json!({"type": "llm", "backwards_request_id": "a", "request": []})),
            Err("request")
        ));
        assert!(parse(json!({"type": "llm", "backwards_request_id": "a", "request": {}})).is_ok());
    }
}
