//! The serverless runtime (plugin-protocol §6): plugins run as functions behind a connector;
//! the daemon holds no process, only the function's URL.
//!
//! * `connector`: the SRI client (ping, look-up, launch with its stage stream).
//! * `events`: the function's line-delimited answer, line by line (§6.3), pure.
//! * `invoke`: one `POST <function URL>/invoke` with its retries, feeding session events.
//! * `batch`: text-embedding batching (§6.5), pure.
//!
//! A [`ServerlessRuntime`] is a [`PluginRuntime`] like the local one: one [`Connection`] whose
//! writer turns each request line into an HTTP exchange whose events it routes back to the
//! session, so callers see the same [`Session`](crate::Session)/[`SessionEvent`] API.

mod batch;
pub mod connector;
mod events;
mod invoke;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::SessionLimits;
use crate::connection::Connection;
use crate::error::InvokeError;
use crate::lifecycle::RuntimeKind;
use crate::message::SessionEvent;
use crate::router::SessionRouter;
use crate::runtime::PluginRuntime;
use crate::steps::{LaunchError, LaunchReport, Step, StepTimer};
use crate::writer::LineWriter;

pub use connector::ConnectorError;

/// Settings of the serverless platform (`PLATFORM=serverless`). The binary fills them.
#[derive(Clone, Debug)]
pub struct ServerlessConfig {
    /// `DIFY_PLUGIN_SERVERLESS_CONNECTOR_URL`.
    pub connector_url: String,
    /// `DIFY_PLUGIN_SERVERLESS_CONNECTOR_API_KEY`, sent verbatim as `Authorization`.
    pub connector_api_key: String,
    /// `DIFY_PLUGIN_SERVERLESS_CONNECTOR_LAUNCH_TIMEOUT`.
    pub launch_timeout: Duration,
    /// `MAX_SERVERLESS_REQUEST_BYTES`: larger request bodies are refused (embeddings split).
    pub max_request_bytes: usize,
    /// `MAX_SERVERLESS_RETRY_TIMES`: attempts in total (0 or less means 1).
    pub max_retry_times: i64,
    /// `PLUGIN_MAX_EXECUTION_TIMEOUT`: bounds one exchange and its connect.
    pub execution_timeout: Duration,
    /// `PLUGIN_RUNTIME_MAX_BUFFER_SIZE`: longest line of a function's answer.
    pub max_line_bytes: usize,
}

/// Where a plugin's function lives (a `serverless_runtimes` row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerlessFunction {
    pub url: String,
    pub name: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What every serverless runtime of the daemon shares.
pub(crate) struct Shared {
    pub(crate) cfg: ServerlessConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) connector: connector::Connector,
    sessions: SessionLimits,
    /// The function serving each uid.
    functions: Mutex<HashMap<PluginUniqueIdentifier, ServerlessFunction>>,
}

impl Shared {
    pub(crate) fn new(
        cfg: ServerlessConfig,
        sessions: SessionLimits,
    ) -> Result<Self, ConnectorError> {
        let connector = connector::Connector::new(
            &cfg.connector_url,
            &cfg.connector_api_key,
            cfg.launch_timeout,
        )?;
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.execution_timeout)
            .tcp_keepalive(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ConnectorError::Unexpected(e.to_string()))?;
        Ok(Shared {
            cfg,
            http,
            connector,
            sessions,
            functions: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) async fn ping(&self) -> Result<(), ConnectorError> {
        self.connector.ping().await
    }

    pub(crate) fn function(&self, uid: &PluginUniqueIdentifier) -> Option<ServerlessFunction> {
        lock(&self.functions).get(uid).cloned()
    }

    pub(crate) fn forget(&self, uid: &PluginUniqueIdentifier) {
        lock(&self.functions).remove(uid);
    }

    /// A runtime for `function`, remembered as the one serving `uid`.
    pub(crate) fn runtime(
        self: &Arc<Self>,
        uid: &PluginUniqueIdentifier,
        function: ServerlessFunction,
    ) -> Arc<ServerlessRuntime> {
        lock(&self.functions).insert(uid.clone(), function.clone());
        let router = Arc::new(SessionRouter::new(self.sessions.buffer_bytes));
        let writer = Arc::new(FunctionWriter {
            shared: self.clone(),
            url: function.url.clone(),
            router: router.clone(),
        });
        Arc::new(ServerlessRuntime {
            conn: Connection::new(router.clone(), writer, self.sessions),
            router,
        })
    }

    /// Finds the function of `uid` through the connector, launching it when it is not there yet
    /// (or always, with `force`: the admin reinstall).
    pub(crate) async fn launch(
        &self,
        uid: &PluginUniqueIdentifier,
        package: &[u8],
        decl: &PluginDeclaration,
        force: bool,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(ServerlessFunction, LaunchReport), LaunchError> {
        let mut timer = StepTimer::default();
        let connector = &self.connector;
        let function = timer
            .run(Step::Launch, async {
                if !force {
                    let found = connector.lookup(uid).await.map_err(|e| e.to_string())?;
                    if let Some(f) = found.filter(|f| !f.url.is_empty()) {
                        progress("Plugin launched".into());
                        return Ok(f);
                    }
                }
                connector
                    .launch(uid, package.to_vec(), decl.verified, progress)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        let report = LaunchReport {
            steps: timer.done,
            interpreter: format!("serverless function {} at {}", function.name, function.url),
        };
        Ok((function, report))
    }
}

/// One plugin served by a function.
pub(crate) struct ServerlessRuntime {
    conn: Connection,
    router: Arc<SessionRouter>,
}

impl PluginRuntime for ServerlessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Serverless
    }

    fn connection(&self, _deadline: Instant) -> BoxFuture<'_, Result<Connection, InvokeError>> {
        Box::pin(async { Ok(self.conn.clone()) })
    }

    fn connection_wait(&self) -> Duration {
        Duration::ZERO
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn sessions(&self) -> usize {
        self.router.len()
    }

    fn request_stop(&self) {
        self.router.close_all("the plugin was stopped");
    }
}

/// The write side of a serverless connection: a request line becomes one HTTP exchange (or a
/// few, for a split embedding request) run in its own task, routed back by session id.
struct FunctionWriter {
    shared: Arc<Shared>,
    url: String,
    router: Arc<SessionRouter>,
}

impl LineWriter for FunctionWriter {
    fn write_line<'a>(&'a self, line: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { self.start(line) })
    }
}

impl FunctionWriter {
    fn start(&self, line: &[u8]) -> io::Result<()> {
        let message: Value = serde_json::from_slice(line).map_err(io::Error::other)?;
        if message.get("event").and_then(Value::as_str) != Some("request") {
            // Backwards answers go through `POST /backwards-invocation/transaction` instead.
            return Err(io::Error::other(
                "serverless event is not supported by full duplex",
            ));
        }
        let session_id = message
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let action = message
            .pointer("/data/action")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let mut batches = batch::split(&message, &action, self.shared.cfg.max_request_bytes)
            .map_err(io::Error::other)?;
        let shared = self.shared.clone();
        let url = self.url.clone();
        let router = self.router.clone();
        tokio::spawn(async move {
            let mut route =
                |event: SessionEvent, size: usize| router.route(&session_id, event, size);
            if batches.len() == 1 {
                let (body, _) = batches.remove(0);
                invoke::invoke(&shared, &url, &session_id, &action, body, &mut route).await;
                return;
            }
            match run_batches(&shared, &url, &session_id, &action, batches).await {
                Ok(chunk) => {
                    route(SessionEvent::Stream(chunk.into()), 0);
                    route(SessionEvent::End, 0);
                }
                Err(error) => {
                    route(SessionEvent::Error(error), 0);
                }
            }
        });
        Ok(())
    }
}

/// Sends the batches one after the other and merges their chunks; the first error wins.
async fn run_batches(
    shared: &Shared,
    url: &str,
    session_id: &str,
    action: &str,
    batches: Vec<(Vec<u8>, usize)>,
) -> Result<Value, Value> {
    let mut counts = Vec::new();
    let mut results = Vec::new();
    for (body, count) in batches {
        let mut chunks = Vec::new();
        let mut failed = None;
        let mut collect = |event: SessionEvent, _: usize| {
            match event {
                SessionEvent::Stream(chunk) => match chunk.to_value() {
                    Ok(chunk) => chunks.push(chunk),
                    Err(e) => failed = Some(events::inner_error(format!("undecodable chunk: {e}"))),
                },
                SessionEvent::Error(error) => failed = Some(error),
                _ => {}
            }
            true
        };
        invoke::invoke(shared, url, session_id, action, body, &mut collect).await;
        if let Some(error) = failed {
            return Err(error);
        }
        counts.push(count);
        results.push(chunks);
    }
    batch::merge(action, &counts, &results).map_err(events::inner_error)
}
