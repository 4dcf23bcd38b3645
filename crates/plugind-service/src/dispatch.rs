//! Dispatch: a Dify request for one plugin action becomes a plugin session and a stream of
//! chunks (http-api §3.3, §4.3).
//!
//! Errors found before the session exists are returned as `Err((http status, error))` and sent as
//! plain JSON; everything after is an item of the returned stream and goes out as an SSE event.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering;

use futures::Stream;
use plugind_entities::dispatch::ResponseKind;
use plugind_entities::{DaemonError, ErrorType, PluginUniqueIdentifier};
use plugind_runtime::{RawJson, SessionEvent, SessionRequest};
use serde_json::{json, Map, Value};

use crate::binding::{opt_str, required_error, str_field};
use crate::blob_merge::BlobMerger;
pub use crate::dispatch_request::{ModelTypeRule, Shape};
use crate::Services;

/// One dispatch action: route path, access type and action on the wire, what `data` must and
/// may hold, and what the plugin answers.
pub struct Action {
    pub path: &'static str,
    pub access_type: &'static str,
    pub action: &'static str,
    /// Keys of `data` that must be non-empty (strings) or present (objects/arrays).
    pub required: &'static [&'static str],
    /// The keys of `data` upstream's typed request keeps; others are dropped before the plugin
    /// sees the request.
    pub fields: &'static [&'static str],
    /// The rule on `data.model_type`.
    pub model_type: ModelTypeRule,
    /// Nested shapes checked beyond the required keys.
    pub shape: Shape,
    /// What each chunk from the plugin is decoded, checked and re-encoded as.
    pub response: ResponseKind,
    /// Answered as one plain-JSON `ModelPollingResult` (the last chunk), not as SSE (§4.3.6).
    pub polling: bool,
}

const fn act(
    path: &'static str,
    access_type: &'static str,
    action: &'static str,
    required: &'static [&'static str],
    fields: &'static [&'static str],
    response: ResponseKind,
) -> Action {
    Action {
        path,
        access_type,
        action,
        required,
        fields,
        model_type: ModelTypeRule::Any,
        shape: Shape::Plain,
        response,
        polling: false,
    }
}

/// A model action: `model_type` checked by `rule`.
const fn model(
    path: &'static str,
    action: &'static str,
    required: &'static [&'static str],
    fields: &'static [&'static str],
    rule: ModelTypeRule,
    response: ResponseKind,
) -> Action {
    Action {
        model_type: rule,
        ..act(path, "model", action, required, fields, response)
    }
}

use ModelTypeRule::{Is, Valid};
use ResponseKind as R;

const BASE: [&str; 3] = ["provider", "model", "model_type"];
const LLM_FIELDS: &[&str] = &[
    "provider",
    "model",
    "model_type",
    "credentials",
    "credential_type",
    "model_parameters",
    "prompt_messages",
    "tools",
    "tool_choice",
    "stop",
    "json_schema",
    "stream",
];
const MODEL_FIELDS: &[&str] = &[
    "provider",
    "model",
    "model_type",
    "credentials",
    "credential_type",
];
const TRIGGER_FIELDS: &[&str] = &["provider", "subscription", "credentials", "credential_type"];
const DATASOURCE_REQUEST_FIELDS: &[&str] = &[
    "provider",
    "datasource",
    "request",
    "credentials",
    "credential_type",
];
const DATASOURCE_PARAMETER_FIELDS: &[&str] = &[
    "provider",
    "datasource",
    "datasource_parameters",
    "credentials",
    "credential_type",
];
const CREDENTIALS_FIELDS: &[&str] = &["provider", "credentials", "credential_type"];

/// The dispatch actions of http-api §4.3.2: rows 1–34 streamed, 35–36 (model polling) plain JSON.
pub static ACTIONS: &[Action] = &[
    act(
        "tool/invoke",
        "tool",
        "invoke_tool",
        &["provider", "tool"],
        &[
            "provider",
            "tool",
            "tool_parameters",
            "credentials",
            "credential_type",
        ],
        R::ToolMessages,
    ),
    act(
        "tool/validate_credentials",
        "tool",
        "validate_tool_credentials",
        &["provider"],
        &["provider", "credentials"],
        R::ToolCredentialsValid,
    ),
    act(
        "tool/get_runtime_parameters",
        "tool",
        "get_tool_runtime_parameters",
        &["provider", "tool"],
        &["provider", "tool", "credentials"],
        R::ToolRuntimeParameters,
    ),
    Action {
        shape: Shape::LlmInvoke,
        ..model(
            "llm/invoke",
            "invoke_llm",
            &BASE,
            LLM_FIELDS,
            Is("llm"),
            R::LlmChunks,
        )
    },
    Action {
        shape: Shape::LlmNumTokens,
        ..model(
            "llm/num_tokens",
            "get_llm_num_tokens",
            &BASE,
            &[
                "provider",
                "model",
                "model_type",
                "credentials",
                "credential_type",
                "prompt_messages",
                "tools",
            ],
            Is("llm"),
            R::LlmNumTokens,
        )
    },
    model(
        "text_embedding/invoke",
        "invoke_text_embedding",
        &["provider", "model", "model_type", "texts", "input_type"],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "texts",
            "input_type",
        ],
        Is("text-embedding"),
        R::TextEmbedding,
    ),
    Action {
        shape: Shape::MultimodalEmbedding,
        ..model(
            "multimodal_embedding/invoke",
            "invoke_multimodal_embedding",
            &["provider", "model", "model_type", "documents", "input_type"],
            &[
                "provider",
                "model",
                "model_type",
                "credentials",
                "credential_type",
                "documents",
                "input_type",
            ],
            ModelTypeRule::Any,
            R::MultimodalEmbedding,
        )
    },
    model(
        "text_embedding/num_tokens",
        "get_text_embedding_num_tokens",
        &["provider", "model", "model_type", "texts"],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "texts",
        ],
        Is("text-embedding"),
        R::TextEmbeddingNumTokens,
    ),
    model(
        "rerank/invoke",
        "invoke_rerank",
        &["provider", "model", "model_type", "query", "docs"],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "query",
            "docs",
            "score_threshold",
            "top_n",
        ],
        Is("rerank"),
        R::Rerank,
    ),
    Action {
        shape: Shape::MultimodalRerank,
        ..model(
            "multimodal_rerank/invoke",
            "invoke_multimodal_rerank",
            &["provider", "model", "model_type", "query", "docs"],
            &[
                "provider",
                "model",
                "model_type",
                "credentials",
                "credential_type",
                "query",
                "docs",
                "score_threshold",
                "top_n",
            ],
            ModelTypeRule::Any,
            R::MultimodalRerank,
        )
    },
    model(
        "tts/invoke",
        "invoke_tts",
        &[
            "provider",
            "model",
            "model_type",
            "content_text",
            "voice",
            "tenant_id",
        ],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "content_text",
            "voice",
            "tenant_id",
        ],
        Is("tts"),
        R::Tts,
    ),
    model(
        "tts/model/voices",
        "get_tts_model_voices",
        &BASE,
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "language",
        ],
        Is("tts"),
        R::TtsVoices,
    ),
    model(
        "speech2text/invoke",
        "invoke_speech2text",
        &["provider", "model", "model_type", "file"],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "file",
        ],
        Is("speech2text"),
        R::Speech2Text,
    ),
    model(
        "moderation/invoke",
        "invoke_moderation",
        &["provider", "model", "model_type", "text"],
        &[
            "provider",
            "model",
            "model_type",
            "credentials",
            "credential_type",
            "text",
        ],
        Is("moderation"),
        R::Moderation,
    ),
    act(
        "model/validate_provider_credentials",
        "model",
        "validate_provider_credentials",
        &["provider"],
        CREDENTIALS_FIELDS,
        R::ModelCredentialsValid,
    ),
    model(
        "model/validate_model_credentials",
        "validate_model_credentials",
        &BASE,
        MODEL_FIELDS,
        Valid,
        R::ModelCredentialsValid,
    ),
    model(
        "model/schema",
        "get_ai_model_schemas",
        &BASE,
        MODEL_FIELDS,
        Valid,
        R::ModelSchema,
    ),
    act(
        "oauth/get_authorization_url",
        "oauth",
        "get_authorization_url",
        &["provider", "redirect_uri"],
        &["provider", "redirect_uri", "system_credentials"],
        R::OAuthAuthorizationUrl,
    ),
    act(
        "oauth/get_credentials",
        "oauth",
        "get_credentials",
        &["provider", "redirect_uri", "raw_http_request"],
        &[
            "provider",
            "redirect_uri",
            "system_credentials",
            "raw_http_request",
        ],
        R::OAuthCredentials,
    ),
    act(
        "oauth/refresh_credentials",
        "oauth",
        "refresh_credentials",
        &["provider", "redirect_uri", "credentials"],
        &[
            "provider",
            "redirect_uri",
            "system_credentials",
            "credentials",
        ],
        R::OAuthRefreshedCredentials,
    ),
    act(
        "dynamic_select/fetch_parameter_options",
        "dynamic_parameter",
        "fetch_parameter_options",
        &["credentials", "provider", "provider_action", "parameter"],
        &[
            "credentials",
            "credential_type",
            "provider",
            "provider_action",
            "parameter",
        ],
        R::DynamicSelectOptions,
    ),
    act(
        "datasource/validate_credentials",
        "datasource",
        "validate_datasource_credentials",
        &["provider"],
        CREDENTIALS_FIELDS,
        R::DatasourceCredentialsValid,
    ),
    act(
        "datasource/get_website_crawl",
        "datasource",
        "invoke_website_datasource_get_crawl",
        &["provider", "datasource", "datasource_parameters"],
        DATASOURCE_PARAMETER_FIELDS,
        R::WebsiteCrawl,
    ),
    act(
        "datasource/get_online_document_pages",
        "datasource",
        "invoke_online_document_datasource_get_pages",
        &["provider", "datasource", "datasource_parameters"],
        DATASOURCE_PARAMETER_FIELDS,
        R::OnlineDocumentPages,
    ),
    act(
        "datasource/get_online_document_page_content",
        "datasource",
        "invoke_online_document_datasource_get_page_content",
        &["provider", "datasource", "page"],
        &[
            "provider",
            "datasource",
            "page",
            "credentials",
            "credential_type",
        ],
        R::DatasourceMessages,
    ),
    Action {
        shape: Shape::DriveBrowse,
        ..act(
            "datasource/online_drive_browse_files",
            "datasource",
            "invoke_online_drive_browse_files",
            &["provider", "datasource"],
            DATASOURCE_REQUEST_FIELDS,
            R::OnlineDriveFiles,
        )
    },
    Action {
        shape: Shape::DriveDownload,
        ..act(
            "datasource/online_drive_download_file",
            "datasource",
            "invoke_online_drive_download_file",
            &["provider", "datasource"],
            DATASOURCE_REQUEST_FIELDS,
            R::DatasourceMessages,
        )
    },
    act(
        "trigger/invoke_event",
        "trigger",
        "invoke_trigger_event",
        &["provider", "event", "raw_http_request", "subscription"],
        &[
            "provider",
            "event",
            "raw_http_request",
            "parameters",
            "subscription",
            "payload",
            "credentials",
            "credential_type",
        ],
        R::TriggerEvent,
    ),
    act(
        "trigger/validate_credentials",
        "trigger",
        "validate_trigger_credentials",
        &["provider"],
        CREDENTIALS_FIELDS,
        R::TriggerCredentialsValid,
    ),
    act(
        "trigger/dispatch_event",
        "trigger",
        "dispatch_trigger_event",
        &["provider", "subscription", "raw_http_request"],
        &[
            "provider",
            "subscription",
            "raw_http_request",
            "credentials",
            "credential_type",
        ],
        R::TriggerDispatch,
    ),
    act(
        "trigger/subscribe",
        "trigger",
        "subscribe_trigger",
        &["provider", "endpoint"],
        &[
            "provider",
            "endpoint",
            "parameters",
            "credentials",
            "credential_type",
        ],
        R::TriggerSubscription,
    ),
    act(
        "trigger/unsubscribe",
        "trigger",
        "unsubscribe_trigger",
        &["provider", "subscription"],
        TRIGGER_FIELDS,
        R::TriggerSubscription,
    ),
    act(
        "trigger/refresh",
        "trigger",
        "refresh_trigger",
        &["provider", "subscription"],
        TRIGGER_FIELDS,
        R::TriggerSubscription,
    ),
    act(
        "agent_strategy/invoke",
        "agent_strategy",
        "invoke_agent_strategy",
        &["agent_strategy_provider", "agent_strategy"],
        &[
            "agent_strategy_provider",
            "agent_strategy",
            "agent_strategy_params",
        ],
        R::AgentMessages,
    ),
    Action {
        polling: true,
        shape: Shape::LlmInvoke,
        ..model(
            "model/polling/start",
            "start_polling",
            &BASE,
            LLM_FIELDS,
            Is("llm"),
            R::ModelPolling,
        )
    },
    Action {
        polling: true,
        shape: Shape::CheckPolling,
        ..model(
            "model/polling/check",
            "check_polling",
            &["provider", "model", "model_type", "plugin_state"],
            &[
                "provider",
                "model",
                "model_type",
                "credentials",
                "credential_type",
                "plugin_state",
            ],
            Is("llm"),
            R::ModelPolling,
        )
    },
];

/// The public endpoint action (plugin-protocol §3.2 row 20). Not a dispatch route: reached
/// through `/e/{hook_id}/…` (see `hooks`).
pub(crate) static INVOKE_ENDPOINT: Action =
    act(
        "",
        "endpoint",
        "invoke_endpoint",
        &["raw_http_request"],
        &["raw_http_request", "settings"],
        R::EndpointResponse,
    );

pub fn find_action(path: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.path == path)
}

/// One answer chunk as JSON bytes, the plugin's own encoding unless a check had to change it.
pub type Chunk = RawJson;

/// Chunks of one dispatch; ends after the plugin's `end`, an error, or the deadline. Chunks that
/// arrived together are ready together (one wake-up of the consumer per batch).
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, DaemonError>> + Send>>;

/// Most session messages handled per wake-up of a dispatch.
const BATCH_ITEMS: usize = 64;
/// About the most bytes of session messages handled per wake-up (a single one may be larger).
const BATCH_BYTES: usize = 256 * 1024;
/// Batches waiting for the caller; with [`BATCH_BYTES`], bounds what a dispatch holds beyond
/// the session's own queue (`PLUGIN_SESSION_BUFFER_SIZE`).
const BATCHES_IN_FLIGHT: usize = 4;

/// Upstream's text for a plugin no node runs; Dify matches on it (http-api §6.4, §7.5).
pub const NO_AVAILABLE_NODE: &str = "no available node, plugin runtime not found";

/// A failure before the session exists: HTTP status plus error.
pub type EarlyError = (u16, DaemonError);

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
        let cache = &self.inner.installed;
        if let Some(uid) = cache.get(tenant_id, plugin_id) {
            return Ok(uid);
        }
        let generation = cache.generation();
        let installation = self
            .inner
            .db
            .get_installation(tenant_id, plugin_id)
            .await
            .map_err(|e| (500, DaemonError::internal(e.to_string())))?
            .ok_or_else(|| (404, DaemonError::plugin_not_found("plugin not found")))?;
        let uid =
            PluginUniqueIdentifier::parse(&installation.plugin_unique_identifier).map_err(|e| {
                (
                    400,
                    DaemonError::new(ErrorType::UniqueIdentifier, e.to_string()),
                )
            })?;
        cache.insert(generation, tenant_id, plugin_id, uid.clone());
        Ok(uid)
    }

    /// Opens the stream of `action` on the runtime of `uid` for `tenant_id`.
    pub(crate) fn dispatch_to(
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
        crate::dispatch_request::check(action.action, action.model_type, action.shape, &data)
            .map_err(|why| (400, DaemonError::bad_request(why)))?;

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
        // Findable by id while it runs: a serverless plugin's backwards calls come back through
        // `POST /backwards-invocation/transaction`.
        let registered = self.inner.sessions.register(&request, caller.handle());
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
            let _registered = registered;
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
            let mut relay = Relay::new(action.response);
            let mut session = match opened {
                Ok(session) => session,
                Err(err) => {
                    let _ = tx
                        .send(vec![Err(DaemonError::internal(err.to_string()))])
                        .await;
                    return;
                }
            };
            // Everything the plugin sent since the last wake-up is handled, and handed on, at once.
            let mut events = Vec::with_capacity(BATCH_ITEMS);
            loop {
                let next = session.next_batch(&mut events, BATCH_ITEMS, BATCH_BYTES);
                if cut.run(sleep.as_mut(), next).await.is_none() {
                    return;
                }
                if events.is_empty() {
                    return;
                }
                let mut batch = Vec::with_capacity(events.len());
                let mut stop = false;
                for event in events.drain(..) {
                    let item = match event {
                        SessionEvent::Stream(chunk) => match relay.take(&chunk) {
                            Ok(Some(chunk)) => Ok(chunk),
                            Ok(None) => continue,
                            Err(err) => Err(err),
                        },
                        SessionEvent::Error(err) => Err(plugin_error(&err)),
                        SessionEvent::Invoke(request) => {
                            match caller.start(session.responder(), request) {
                                Ok(()) => continue,
                                Err(err) => Err(err),
                            }
                        }
                        SessionEvent::End => {
                            stop = true;
                            break;
                        }
                        SessionEvent::Closed(reason) => Err(DaemonError::internal(format!(
                            "plugin runtime exited while handling the request: {reason}"
                        ))),
                        SessionEvent::Aborted(reason) => Err(DaemonError::internal(reason)),
                    };
                    let failed = item.is_err();
                    batch.push(item);
                    if failed {
                        stop = true;
                        break;
                    }
                }
                if !batch.is_empty() && tx.send(batch).await.is_err() {
                    return;
                }
                if stop {
                    return;
                }
            }
        });
        Ok(stream)
    }
}

/// What ends a dispatch early: its deadline, its caller going away, or the daemon shutting down.
struct Cut<'a> {
    tx: &'a tokio::sync::mpsc::Sender<Batch>,
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
        let _ = self
            .tx
            .send(vec![Err(DaemonError::internal(message))])
            .await;
        None
    }
}

/// The answer of a model-polling action (§4.3.6): the plugin's last chunk, already checked and
/// trimmed as a `ModelPollingResult` by the relay. Every failure is an error Dify gets with
/// HTTP 500.
pub async fn polling_result(mut chunks: ChunkStream) -> Result<Chunk, DaemonError> {
    use futures::StreamExt;
    let mut last = None;
    while let Some(item) = chunks.next().await {
        last = Some(item?);
    }
    last.ok_or_else(|| DaemonError::invoke("no polling result received from plugin"))
}

/// Decrements the active-dispatch gauge when the stream is dropped.
struct ActiveGuard(Services);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.inner.active_dispatch.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Items handed from the dispatch task to the caller in one channel message.
type Batch = Vec<Result<Chunk, DaemonError>>;

/// Runs `body` as a task feeding a channel of batches, and returns the receiving side as a
/// stream of single items (a batch's items are ready at once). Dropping the stream closes the
/// channel, which the task sees (`tx.closed()`) and stops: that is how a client disconnect
/// cancels the session.
fn async_stream<F, Fut>(body: F) -> ChunkStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Batch>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(BATCHES_IN_FLIGHT);
    tokio::spawn(body(tx));
    let mut ready = VecDeque::new();
    Box::pin(futures::stream::poll_fn(move |cx| loop {
        if let Some(item) = ready.pop_front() {
            return std::task::Poll::Ready(Some(item));
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(Some(batch)) => ready.extend(batch),
            other => return other.map(|_| None),
        }
    }))
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

/// The `data` the plugin receives: `user_id`, `type`, `action`, then the fields of Dify's `data`
/// that upstream's typed request keeps (§3.1; unknown keys are dropped, nested values pass as
/// they are).
fn plugin_data(action: &Action, user_id: &str, data: Value) -> Value {
    let mut out = Map::new();
    out.insert("user_id".into(), Value::String(user_id.to_owned()));
    out.insert("type".into(), Value::String(action.access_type.to_owned()));
    out.insert("action".into(), Value::String(action.action.to_owned()));
    if let Value::Object(fields) = data {
        for (key, value) in fields {
            if !action.fields.contains(&key.as_str()) {
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

/// Turns the plugin's chunks into the answers of one dispatch: each chunk checked as the
/// action's response type; agent-strategy blob chunks merged (§4.3.5).
enum Relay {
    Checked(ResponseKind),
    AgentMessages(BlobMerger),
}

impl Relay {
    fn new(kind: ResponseKind) -> Relay {
        match kind {
            ResponseKind::AgentMessages => Relay::AgentMessages(BlobMerger::default()),
            kind => Relay::Checked(kind),
        }
    }

    /// The answer for one chunk; `None` when the chunk is held back (a blob piece).
    fn take(&mut self, chunk: &RawJson) -> Result<Option<Chunk>, DaemonError> {
        let text = chunk.as_str();
        match self {
            Relay::Checked(kind) => check_chunk(*kind, text).map(Some),
            Relay::AgentMessages(merger) => {
                let message = ResponseKind::AgentMessages
                    .message_chunk(text)
                    .map_err(unmarshal_error)?;
                merger.take(message).map(|out| out.map(RawJson::from_raw_value))
            }
        }
    }
}

/// One chunk decoded as `kind`'s response type, validated and re-encoded as upstream does; a
/// wrong shape is `PluginInvokeError` with upstream's `unmarshal_error` (http-api §2.4, §4.3.3).
pub fn check_chunk(kind: ResponseKind, chunk: &str) -> Result<Chunk, DaemonError> {
    match kind {
        // A model declaration: the package crate knows its upstream form.
        ResponseKind::ModelSchema => crate::model_schema::normalise(chunk),
        kind => kind.normalise(chunk),
    }
    .map(RawJson::from_raw_value)
    .map_err(unmarshal_error)
}

fn unmarshal_error(why: String) -> DaemonError {
    let inner = json!({"error_type": "unmarshal_error", "message": format!("unmarshal json failed: {why}")});
    DaemonError::invoke(inner.to_string())
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
    fn every_action_checks_chunks_as_its_response_type() {
        let llm = find_action("llm/invoke").expect("action");
        assert_eq!(llm.response, ResponseKind::LlmChunks);
        let chunk = json!({"model": "m", "delta": {"index": 0, "message": {"role": "assistant", "content": "x"}},
            "prompt_messages": [{"role": "user", "content": "hi"}]});
        let out = Relay::new(llm.response)
            .take(&chunk.into())
            .expect("valid")
            .expect("answer");
        assert!(out.as_str().ends_with(r#","prompt_messages":[]}"#), "{out}");
        let tool = find_action("tool/invoke").expect("action");
        let err = Relay::new(tool.response)
            .take(&json!({"type": "nonsense"}).into())
            .expect_err("invalid");
        assert_eq!(err.error_type, ErrorType::PluginInvoke);
        assert_eq!(
            err.message,
            r#"{"error_type":"unmarshal_error","message":"unmarshal json failed: Key: 'ToolResponseChunk.Type' Error:Field validation for 'Type' failed on the 'is_valid_tool_response_chunk_type' tag"}"#
        );
        // Agent strategies hold blob pieces back until the file is complete.
        let agent = find_action("agent_strategy/invoke").expect("action");
        let mut relay = Relay::new(agent.response);
        let piece = json!({"type": "blob_chunk", "message": {"id": "f", "total_length": 2, "blob": "aGk=", "end": false}});
        assert!(relay.take(&piece.into()).expect("taken").is_none());
        let end = json!({"type": "blob_chunk", "message": {"id": "f", "total_length": 2, "blob": "", "end": true}});
        let blob = relay.take(&end.into()).expect("merged").expect("answer");
        assert_eq!(
            blob.as_str(),
            r#"{"type":"blob","message":{"blob":"aGk="},"meta":null}"#
        );
    }

    fn raw(v: &str) -> Chunk {
        RawJson::from_json(v).expect("json")
    }

    fn chunks(items: Vec<Result<Chunk, DaemonError>>) -> ChunkStream {
        Box::pin(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn polling_answers_the_last_chunk() {
        let out = polling_result(chunks(vec![
            Ok(raw("1")),
            Ok(raw(r#"{"status":"failed","error":"x"}"#)),
        ]))
        .await
        .expect("valid");
        assert_eq!(out.as_str(), r#"{"status":"failed","error":"x"}"#);
        let none = polling_result(chunks(vec![])).await.expect_err("no chunk");
        assert_eq!(none.error_type, ErrorType::PluginInvoke);
        assert!(none
            .message
            .contains("no polling result received from plugin"));
        let failed = polling_result(chunks(vec![Err(DaemonError::invoke("bad"))])).await;
        assert!(failed.is_err());
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
    fn plugin_data_starts_with_user_type_action_and_keeps_only_the_typed_fields() {
        let tool = find_action("tool/invoke").expect("action");
        let data = plugin_data(
            tool,
            "u",
            json!({"provider": "p", "credential_type": "", "type": "evil", "unknown": 1}),
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
