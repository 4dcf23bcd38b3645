//! Dispatch: a Dify request for one plugin action becomes a plugin session and a stream of
//! chunks (http-api §3.3, §4.3).
//!
//! Errors found before the session exists are returned as `Err((http status, error))` and sent as
//! plain JSON; everything after is an item of the returned stream and goes out as an SSE event.

use std::pin::Pin;
use std::sync::atomic::Ordering;

use futures::Stream;
use plugind_entities::{DaemonError, ErrorType, PluginUniqueIdentifier};
use plugind_runtime::{SessionEvent, SessionRequest};
use serde_json::{json, Map, Value};

use crate::binding::{opt_str, required_error, str_field};
use crate::Services;

/// One dispatch action: route path, access type and action on the wire, required `data` keys.
pub struct Action {
    pub path: &'static str,
    pub access_type: &'static str,
    pub action: &'static str,
    /// Keys of `data` that must be non-empty (strings) or present (objects/arrays).
    pub required: &'static [&'static str],
    /// Chunks must be tool messages (`{"type": …}`), validated before forwarding.
    pub tool_messages: bool,
    /// Answered as one plain-JSON `ModelPollingResult` (the last chunk), not as SSE (§4.3.6).
    pub polling: bool,
}

const fn act(
    path: &'static str,
    access_type: &'static str,
    action: &'static str,
    required: &'static [&'static str],
) -> Action {
    Action {
        path,
        access_type,
        action,
        required,
        tool_messages: false,
        polling: false,
    }
}

/// The dispatch actions of http-api §4.3.2: rows 1–34 streamed, 35–36 (model polling) plain JSON.
pub static ACTIONS: &[Action] = &[
    Action {
        tool_messages: true,
        ..act("tool/invoke", "tool", "invoke_tool", &["provider", "tool"])
    },
    act(
        "tool/validate_credentials",
        "tool",
        "validate_tool_credentials",
        &["provider"],
    ),
    act(
        "tool/get_runtime_parameters",
        "tool",
        "get_tool_runtime_parameters",
        &["provider", "tool"],
    ),
    act(
        "llm/invoke",
        "model",
        "invoke_llm",
        &["provider", "model", "model_type"],
    ),
    act(
        "llm/num_tokens",
        "model",
        "get_llm_num_tokens",
        &["provider", "model", "model_type"],
    ),
    act(
        "text_embedding/invoke",
        "model",
        "invoke_text_embedding",
        &["provider", "model", "model_type", "texts", "input_type"],
    ),
    act(
        "multimodal_embedding/invoke",
        "model",
        "invoke_multimodal_embedding",
        &["provider", "model", "model_type", "documents", "input_type"],
    ),
    act(
        "text_embedding/num_tokens",
        "model",
        "get_text_embedding_num_tokens",
        &["provider", "model", "model_type", "texts"],
    ),
    act(
        "rerank/invoke",
        "model",
        "invoke_rerank",
        &["provider", "model", "model_type", "query", "docs"],
    ),
    act(
        "multimodal_rerank/invoke",
        "model",
        "invoke_multimodal_rerank",
        &["provider", "model", "model_type", "query", "docs"],
    ),
    act(
        "tts/invoke",
        "model",
        "invoke_tts",
        &[
            "provider",
            "model",
            "model_type",
            "content_text",
            "voice",
            "tenant_id",
        ],
    ),
    act(
        "tts/model/voices",
        "model",
        "get_tts_model_voices",
        &["provider", "model", "model_type"],
    ),
    act(
        "speech2text/invoke",
        "model",
        "invoke_speech2text",
        &["provider", "model", "model_type", "file"],
    ),
    act(
        "moderation/invoke",
        "model",
        "invoke_moderation",
        &["provider", "model", "model_type", "text"],
    ),
    act(
        "model/validate_provider_credentials",
        "model",
        "validate_provider_credentials",
        &["provider"],
    ),
    act(
        "model/validate_model_credentials",
        "model",
        "validate_model_credentials",
        &["provider", "model", "model_type"],
    ),
    act(
        "model/schema",
        "model",
        "get_ai_model_schemas",
        &["provider", "model", "model_type"],
    ),
    act(
        "oauth/get_authorization_url",
        "oauth",
        "get_authorization_url",
        &["provider", "redirect_uri"],
    ),
    act(
        "oauth/get_credentials",
        "oauth",
        "get_credentials",
        &["provider", "redirect_uri", "raw_http_request"],
    ),
    act(
        "oauth/refresh_credentials",
        "oauth",
        "refresh_credentials",
        &["provider", "redirect_uri", "credentials"],
    ),
    act(
        "dynamic_select/fetch_parameter_options",
        "dynamic_parameter",
        "fetch_parameter_options",
        &["credentials", "provider", "provider_action", "parameter"],
    ),
    act(
        "datasource/validate_credentials",
        "datasource",
        "validate_datasource_credentials",
        &["provider"],
    ),
    act(
        "datasource/get_website_crawl",
        "datasource",
        "invoke_website_datasource_get_crawl",
        &["provider", "datasource", "datasource_parameters"],
    ),
    act(
        "datasource/get_online_document_pages",
        "datasource",
        "invoke_online_document_datasource_get_pages",
        &["provider", "datasource", "datasource_parameters"],
    ),
    act(
        "datasource/get_online_document_page_content",
        "datasource",
        "invoke_online_document_datasource_get_page_content",
        &["provider", "datasource", "page"],
    ),
    act(
        "datasource/online_drive_browse_files",
        "datasource",
        "invoke_online_drive_browse_files",
        &["provider", "datasource"],
    ),
    act(
        "datasource/online_drive_download_file",
        "datasource",
        "invoke_online_drive_download_file",
        &["provider", "datasource"],
    ),
    act(
        "trigger/invoke_event",
        "trigger",
        "invoke_trigger_event",
        &["provider", "event", "raw_http_request", "subscription"],
    ),
    act(
        "trigger/validate_credentials",
        "trigger",
        "validate_trigger_credentials",
        &["provider"],
    ),
    act(
        "trigger/dispatch_event",
        "trigger",
        "dispatch_trigger_event",
        &["provider", "subscription", "raw_http_request"],
    ),
    act(
        "trigger/subscribe",
        "trigger",
        "subscribe_trigger",
        &["provider", "endpoint"],
    ),
    act(
        "trigger/unsubscribe",
        "trigger",
        "unsubscribe_trigger",
        &["provider", "subscription"],
    ),
    act(
        "trigger/refresh",
        "trigger",
        "refresh_trigger",
        &["provider", "subscription"],
    ),
    Action {
        tool_messages: true,
        ..act(
            "agent_strategy/invoke",
            "agent_strategy",
            "invoke_agent_strategy",
            &["agent_strategy_provider", "agent_strategy"],
        )
    },
    Action {
        polling: true,
        ..act(
            "model/polling/start",
            "model",
            "start_polling",
            &["provider", "model", "model_type"],
        )
    },
    Action {
        polling: true,
        ..act(
            "model/polling/check",
            "model",
            "check_polling",
            &["provider", "model", "model_type", "plugin_state"],
        )
    },
];

pub fn find_action(path: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.path == path)
}

/// Chunks of one dispatch; ends after the plugin's `end`, an error, or the deadline.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, DaemonError>> + Send>>;

/// Upstream's text for a plugin no node runs; Dify matches on it (http-api §6.4, §7.5).
pub const NO_AVAILABLE_NODE: &str = "no available node, plugin runtime not found";

/// A failure before the session exists: HTTP status plus error.
pub type EarlyError = (u16, DaemonError);

const TOOL_MESSAGE_TYPES: &[&str] = &[
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

impl Services {
    /// Starts a dispatch of `action` for the tenant's installation of `plugin_id`.
    pub async fn dispatch(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
        action: &'static Action,
        body: Value,
    ) -> Result<ChunkStream, EarlyError> {
        let uid = self.installed_uid(tenant_id, plugin_id).await?;
        self.dispatch_to(tenant_id, uid, action, body)
    }

    /// `POST /v2/invoke/dispatch/*` (http-api §4.4): the same dispatch for a unique identifier
    /// given by the caller (`X-Plugin-Unique-Identifier`), with `tenant_id` from the body; no
    /// installation lookup, so a running uid that no tenant has installed still answers.
    pub fn dispatch_direct(
        &self,
        uid: Option<&str>,
        action: &'static Action,
        body: Value,
    ) -> Result<ChunkStream, EarlyError> {
        let uid = uid.filter(|u| !u.is_empty()).ok_or_else(|| {
            (
                400,
                DaemonError::bad_request("plugin_unique_identifier is required"),
            )
        })?;
        let uid = PluginUniqueIdentifier::parse(uid).map_err(|e| {
            (
                400,
                DaemonError::new(ErrorType::UniqueIdentifier, e.to_string()),
            )
        })?;
        let tenant_id = str_field(&body, "tenant_id").to_owned();
        if tenant_id.is_empty() {
            return Err((400, DaemonError::bad_request("tenant_id is required")));
        }
        self.dispatch_to(&tenant_id, uid, action, body)
    }

    /// The unique identifier the tenant's installation of `plugin_id` runs.
    pub(crate) async fn installed_uid(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
    ) -> Result<PluginUniqueIdentifier, EarlyError> {
        let plugin_id = plugin_id
            .filter(|p| !p.is_empty())
            .ok_or_else(|| (400, DaemonError::bad_request("plugin_id is required")))?;
        let installation = self
            .inner
            .db
            .get_installation(tenant_id, plugin_id)
            .await
            .map_err(|e| (500, DaemonError::internal(e.to_string())))?
            .ok_or_else(|| (404, DaemonError::plugin_not_found("plugin not found")))?;
        PluginUniqueIdentifier::parse(&installation.plugin_unique_identifier).map_err(|e| {
            (
                400,
                DaemonError::new(ErrorType::UniqueIdentifier, e.to_string()),
            )
        })
    }

    /// Opens the stream of `action` on the runtime of `uid` for `tenant_id`.
    fn dispatch_to(
        &self,
        tenant_id: &str,
        uid: PluginUniqueIdentifier,
        action: &'static Action,
        body: Value,
    ) -> Result<ChunkStream, EarlyError> {
        let data = body.get("data").cloned().unwrap_or(Value::Null);
        let missing: Vec<String> = action
            .required
            .iter()
            .filter(|key| is_zero(data.get(**key)))
            .map(|key| required_error(&format!("{}.Data.{}", action.action, key)))
            .collect();
        if !missing.is_empty() {
            return Err((400, DaemonError::bad_request(missing.join("\n"))));
        }
        if action.action == "check_polling"
            && data
                .get("plugin_state")
                .and_then(Value::as_object)
                .is_none_or(|state| state.is_empty())
        {
            return Err((
                400,
                DaemonError::bad_request("plugin_state must be an object with at least one key"),
            ));
        }

        // A plugin that is still starting (restore at start-up) has a handle: the session waits.
        // No runtime (never launched, launch failed, stopped): upstream's "no available node"
        // answer, which Dify treats as a transient "runtime unavailable" (http-api §6.4).
        let handle = self.inner.runtimes.get(&uid).ok_or_else(|| {
            if let Some(reason) = self.inner.runtimes.failure(&uid) {
                tracing::warn!(plugin = %uid, %reason, "dispatch to a plugin whose launch failed");
            }
            (404, DaemonError::internal(NO_AVAILABLE_NODE))
        })?;

        let caller = crate::backwards::Caller::new(
            self.clone(),
            tenant_id,
            str_field(&body, "user_id"),
            action.access_type,
            uid,
        );
        let request = SessionRequest {
            session_id: uuid::Uuid::new_v4().to_string(),
            conversation_id: opt_str(&body, "conversation_id"),
            message_id: opt_str(&body, "message_id"),
            app_id: opt_str(&body, "app_id"),
            endpoint_id: opt_str(&body, "endpoint_id"),
            context: body.get("context").filter(|c| !c.is_null()).cloned(),
            data: plugin_data(action, str_field(&body, "user_id"), data),
        };
        let deadline = self.inner.cfg.max_execution_timeout;
        let interrupted = self.inner.interrupted.clone();
        let services = self.clone();
        services
            .inner
            .active_dispatch
            .fetch_add(1, Ordering::Relaxed);
        let guard = ActiveGuard(services);

        let stream = async_stream(move |tx| async move {
            let _guard = guard;
            // Dropped with the dispatch: backwards calls still running are cancelled.
            let caller = caller;
            // One deadline covers waiting for a starting plugin and the whole execution.
            let sleep = tokio::time::sleep(deadline);
            tokio::pin!(sleep);
            let cut = Cut {
                tx: &tx,
                interrupted: &interrupted,
            };
            let Some(opened) = cut.run(sleep.as_mut(), handle.open_session(request)).await else {
                return;
            };
            let mut session = match opened {
                Ok(session) => session,
                Err(err) => {
                    let _ = tx.send(Err(DaemonError::internal(err.to_string()))).await;
                    return;
                }
            };
            loop {
                let Some(event) = cut.run(sleep.as_mut(), session.next()).await else {
                    return;
                };
                let item = match event {
                    Some(SessionEvent::Stream(chunk)) => check_chunk(action, chunk),
                    Some(SessionEvent::Error(err)) => Err(plugin_error(&err)),
                    Some(SessionEvent::Invoke(request)) => {
                        match caller.start(session.responder(), request) {
                            Ok(()) => continue,
                            Err(err) => Err(err),
                        }
                    }
                    Some(SessionEvent::End) | None => return,
                    Some(SessionEvent::Closed(reason)) => Err(DaemonError::internal(format!(
                        "plugin runtime exited while handling the request: {reason}"
                    ))),
                    Some(SessionEvent::Aborted(reason)) => Err(DaemonError::internal(reason)),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(stream)
    }
}

/// What ends a dispatch early: its deadline, its caller going away, or the daemon shutting down.
struct Cut<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Result<Value, DaemonError>>,
    interrupted: &'a tokio_util::sync::CancellationToken,
}

impl Cut<'_> {
    /// `fut`'s output, or `None` after telling the caller why the dispatch was cut short (a
    /// caller that went away is told nothing).
    async fn run<T>(
        &self,
        deadline: Pin<&mut tokio::time::Sleep>,
        fut: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let message = tokio::select! {
            out = fut => return Some(out),
            () = deadline => "killed by timeout",
            () = self.tx.closed() => return None,
            () = self.interrupted.cancelled() => "plugin daemon is shutting down",
        };
        let _ = self.tx.send(Err(DaemonError::internal(message))).await;
        None
    }
}

/// The answer of a model-polling action (§4.3.6): the plugin's last chunk, checked as a
/// `ModelPollingResult` (empty optional fields dropped). Every failure is an error Dify gets with
/// HTTP 500.
pub async fn polling_result(mut chunks: ChunkStream) -> Result<Value, DaemonError> {
    use futures::StreamExt;
    let mut last = None;
    while let Some(item) = chunks.next().await {
        last = Some(item?);
    }
    let invalid = |why: &str| {
        let inner = json!({"error_type": "unmarshal_error", "message": format!("invalid polling result: {why}")});
        DaemonError::invoke(inner.to_string())
    };
    let Some(Value::Object(mut result)) = last else {
        return Err(match last {
            None => DaemonError::invoke("no polling result received from plugin"),
            Some(_) => invalid("not an object"),
        });
    };
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    match status {
        "running" => {
            if result
                .get("plugin_state")
                .and_then(Value::as_object)
                .is_none_or(|state| state.is_empty())
            {
                return Err(invalid("plugin_state is required while running"));
            }
        }
        "succeeded" => {
            if result.get("result").is_none_or(Value::is_null) {
                return Err(invalid("result is required when succeeded"));
            }
        }
        "failed" => {
            if result
                .get("error")
                .and_then(Value::as_str)
                .is_none_or(|e| e.trim().is_empty())
            {
                return Err(invalid("error is required when failed"));
            }
        }
        other => return Err(invalid(&format!("unknown status {other:?}"))),
    }
    const FIELDS: [&str; 7] = [
        "status",
        "plugin_state",
        "result",
        "error",
        "next_check_after_seconds",
        "expires_after_seconds",
        "max_attempts",
    ];
    result.retain(|key, value| {
        FIELDS.contains(&key.as_str())
            && (key == "status" || !(value.is_null() || value == "" || value == &json!({})))
    });
    Ok(Value::Object(result))
}

/// Decrements the active-dispatch gauge when the stream is dropped.
struct ActiveGuard(Services);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.inner.active_dispatch.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `body` as a task feeding a channel, and returns the receiving side as a stream. Dropping
/// the stream closes the channel, which the task sees (`tx.closed()`) and stops: that is how a
/// client disconnect cancels the session.
fn async_stream<F, Fut>(body: F) -> ChunkStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Value, DaemonError>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(_) => false,
    }
}

/// The `data` the plugin receives: `user_id`, `type`, `action`, then Dify's fields (§3.1).
fn plugin_data(action: &Action, user_id: &str, data: Value) -> Value {
    let mut out = Map::new();
    out.insert("user_id".into(), Value::String(user_id.to_owned()));
    out.insert("type".into(), Value::String(action.access_type.to_owned()));
    out.insert("action".into(), Value::String(action.action.to_owned()));
    if let Value::Object(fields) = data {
        for (key, value) in fields {
            if matches!(key.as_str(), "user_id" | "type" | "action") {
                continue;
            }
            if key == "credential_type" && value.as_str().is_some_and(str::is_empty) {
                continue;
            }
            out.insert(key, value);
        }
    }
    Value::Object(out)
}

fn check_chunk(action: &Action, mut chunk: Value) -> Result<Value, DaemonError> {
    if action.tool_messages {
        let kind = chunk.get("type").and_then(Value::as_str).unwrap_or("");
        if !TOOL_MESSAGE_TYPES.contains(&kind) {
            let inner = json!({"error_type": "unmarshal_error", "message": format!("unmarshal json failed: invalid tool message type {kind:?}")});
            return Err(DaemonError::invoke(inner.to_string()));
        }
    }
    // Upstream always sends LLM chunks with an empty `prompt_messages` (older Dify requires the
    // key; newer Dify re-attaches the prompt itself), whatever the plugin put there.
    if action.action == "invoke_llm" {
        if let Value::Object(fields) = &mut chunk {
            fields.insert("prompt_messages".into(), Value::Array(Vec::new()));
        }
    }
    Ok(chunk)
}

/// A plugin `error` message becomes `PluginInvokeError` whose message is the plugin's error
/// re-encoded with sorted keys (http-api §2.4, plugin-protocol §1.4).
fn plugin_error(err: &Value) -> DaemonError {
    let args = err.get("args").cloned().unwrap_or(Value::Null);
    let inner = json!({
        "args": sort_keys(args),
        "error_type": err.get("error_type").cloned().unwrap_or(Value::String(String::new())),
        "message": err.get("message").cloned().unwrap_or(Value::String(String::new())),
    });
    DaemonError::invoke(inner.to_string())
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_chunks_carry_empty_prompt_messages() {
        let llm = find_action("llm/invoke").expect("action");
        let chunk =
            json!({"model": "m", "delta": {"index": 0}, "prompt_messages": [{"role": "user"}]});
        let out = check_chunk(llm, chunk).expect("valid");
        assert_eq!(out["prompt_messages"], json!([]));
        let tool = find_action("tool/invoke").expect("action");
        assert!(check_chunk(tool, json!({"type": "nonsense"})).is_err());
        assert!(check_chunk(tool, json!({"type": "text", "message": {"text": "x"}})).is_ok());
    }

    fn chunks(items: Vec<Result<Value, DaemonError>>) -> ChunkStream {
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn polling_answers_the_last_chunk_checked_and_trimmed() {
        let running = json!({"status": "running", "plugin_state": {"task_id": "t-1"},
            "next_check_after_seconds": 10, "error": "", "extra": 1});
        let out = polling_result(chunks(vec![Ok(json!({"status": "x"})), Ok(running)]))
            .await
            .expect("valid");
        assert_eq!(
            out,
            json!({"status": "running", "plugin_state": {"task_id": "t-1"}, "next_check_after_seconds": 10})
        );
        let none = polling_result(chunks(vec![])).await.expect_err("no chunk");
        assert_eq!(none.error_type, ErrorType::PluginInvoke);
        assert!(none
            .message
            .contains("no polling result received from plugin"));
        for bad in [
            json!({"status": "running"}),
            json!({"status": "succeeded"}),
            json!({"status": "failed", "error": " "}),
            json!({"status": "done"}),
            json!([1]),
        ] {
            assert!(
                polling_result(chunks(vec![Ok(bad.clone())])).await.is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn plugin_errors_are_re_encoded_with_sorted_keys() {
        let err = plugin_error(
            &json!({"message": "quota", "error_type": "InvokeRateLimitError", "args": {"z": 1, "description": "quota"}}),
        );
        assert_eq!(err.error_type, ErrorType::PluginInvoke);
        assert_eq!(
            err.message,
            r#"{"args":{"description":"quota","z":1},"error_type":"InvokeRateLimitError","message":"quota"}"#
        );
    }

    #[test]
    fn plugin_data_starts_with_user_type_action_and_drops_empty_credential_type() {
        let tool = find_action("tool/invoke").expect("action");
        let data = plugin_data(
            tool,
            "u",
            json!({"provider": "p", "credential_type": "", "type": "evil"}),
        );
        let keys: Vec<&str> = data
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["user_id", "type", "action", "provider"]);
        assert_eq!(data["type"], "tool");
    }
}
