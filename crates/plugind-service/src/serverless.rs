//! The serverless platform's share of the service (plugin-protocol §6, PSC §4.5, §4.9): the
//! `serverless_runtimes` rows written after a launch and read back at start-up, the table of
//! open sessions that `POST /backwards-invocation/transaction` looks sessions up in, and the
//! admin reinstall / endpoint switch.
//!
//! Sessions are looked up in memory only. Upstream also writes `session_info:<id>` to Redis
//! (PSC §7.3) so that a function's callback may reach another node; that is for when several
//! nodes share one database (see ARCHITECTURE.md, "Single node, for now").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use plugind_entities::{DaemonError, PluginUniqueIdentifier, RuntimeType};
use plugind_io::{PluginEvent, SessionMessage, SessionMessageType};
use plugind_runtime::{Responder, ServerlessFunction, SessionRequest};
use plugind_store::ServerlessRuntimeRow;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::backwards::CallerRef;
use crate::state::internal;
use crate::Services;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Open dispatch sessions by id: their ids (for the answers' envelope) and backwards caller.
#[derive(Default)]
pub(crate) struct SessionTable(Arc<Mutex<HashMap<String, (SessionRequest, CallerRef)>>>);

/// Removes its session from the table when the dispatch ends.
pub(crate) struct Registered {
    table: Arc<Mutex<HashMap<String, (SessionRequest, CallerRef)>>>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.table).remove(&self.id);
    }
}

impl SessionTable {
    /// Makes `request`'s session findable by id until the returned guard is dropped.
    pub(crate) fn register(&self, request: &SessionRequest, caller: CallerRef) -> Registered {
        let ids = SessionRequest {
            data: Value::Null,
            ..request.clone()
        };
        lock(&self.0).insert(request.session_id.clone(), (ids, caller));
        Registered {
            table: self.0.clone(),
            id: request.session_id.clone(),
        }
    }

    fn get(&self, id: &str) -> Option<(SessionRequest, CallerRef)> {
        lock(&self.0).get(id).cloned()
    }
}

/// How `POST /backwards-invocation/transaction` answers (http-api §4.10).
pub enum Transaction {
    /// HTTP 400 with this text as plain body (unreadable body, undecodable session message).
    BadRequest(String),
    /// HTTP 400 with this JSON (`SessionNotFound`).
    SessionNotFound(Value),
    /// Not a session `invoke` event: upstream does nothing and the request runs into its
    /// timeout, then ends as an empty 200.
    Ignored,
    /// HTTP 500 `failed to parse request`: the call could not start.
    Failed,
    /// `text/event-stream`: each answer line (a whole `backwards_response` message); the channel
    /// closes after the `end` answer.
    Answers(mpsc::Receiver<Vec<u8>>),
}

impl Services {
    /// The install type a launched plugin gets, after storing where its function lives when it
    /// runs serverless (PSC §4.5: upsert of its `serverless_runtimes` row).
    pub(crate) async fn record_placement(
        &self,
        uid: &PluginUniqueIdentifier,
    ) -> Result<&'static str, String> {
        let Some(function) = self.inner.runtimes.serverless_function(uid) else {
            return Ok(RuntimeType::Local.as_str());
        };
        self.store_function(uid, &function).await.map_err(|e| {
            format!("the plugin launched but storing its serverless runtime failed: {e}")
        })?;
        Ok("serverless")
    }

    async fn store_function(
        &self,
        uid: &PluginUniqueIdentifier,
        function: &ServerlessFunction,
    ) -> Result<(), plugind_store::StoreError> {
        self.inner
            .db
            .upsert_serverless_runtime(&ServerlessRuntimeRow {
                plugin_unique_identifier: uid.to_string(),
                function_url: function.url.clone(),
                function_name: function.name.clone(),
                checksum: uid.checksum().to_owned(),
            })
            .await
    }

    /// Start-up on the serverless platform: serve an installed plugin from its stored row.
    pub(crate) async fn restore_serverless(
        &self,
        uid: &PluginUniqueIdentifier,
    ) -> Result<(), String> {
        let row = self
            .inner
            .db
            .get_serverless_runtime(uid.as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "its serverless_runtimes row is missing".to_owned())?;
        let function = ServerlessFunction {
            url: row.function_url,
            name: row.function_name,
        };
        if self.inner.runtimes.attach_serverless(uid, function) {
            Ok(())
        } else {
            Err("it is a serverless plugin but PLATFORM is not serverless".into())
        }
    }

    /// `POST /backwards-invocation/transaction` (plugin-protocol §6.4): a serverless plugin's
    /// backwards call for one of the sessions this daemon dispatched.
    pub fn serverless_transaction(&self, body: &[u8]) -> Transaction {
        let event = match PluginEvent::parse(body) {
            Ok(event) => event,
            Err(e) => return Transaction::BadRequest(e.to_string()),
        };
        if event.event != "session" {
            return Transaction::Ignored;
        }
        let message = match SessionMessage::from_value(event.data) {
            Ok(m) => m,
            Err(e) => {
                return Transaction::BadRequest(format!("failed to decode session message: {e}"))
            }
        };
        if message.kind != SessionMessageType::Invoke {
            return Transaction::Ignored;
        }
        let session_id = event.session_id.unwrap_or_default();
        let Some((request, caller)) = self.inner.sessions.get(&session_id) else {
            return Transaction::SessionNotFound(json!({
                "backwards_request_id": message.data.get("backwards_request_id").cloned().unwrap_or(Value::String(String::new())),
                "event": "error",
                "message": "failed to get session info from cache",
                "data": {
                    "error_type": "SessionNotFound",
                    "detail": format!("session {session_id} not found: it ended or was never opened on this node"),
                    "session_id": session_id,
                },
            }));
        };
        let (tx, rx) = mpsc::channel(16);
        match caller.start(Responder::to_channel(request, tx), message.data) {
            Ok(()) => Transaction::Answers(rx),
            Err(err) => {
                tracing::warn!(session_id, error = %err.message, "serverless transaction could not start");
                Transaction::Failed
            }
        }
    }

    /// Admin reinstall (PSC §4.9): launches the plugin through the connector again and serves
    /// it from the new function. `progress` gets `info` texts; the result is the `done` text or
    /// the `error` text.
    pub async fn serverless_reinstall(
        &self,
        uid: &str,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<String, String> {
        if !self.inner.runtimes.is_serverless() {
            return Err("reinstall is not supported on local platform".into());
        }
        let uid = PluginUniqueIdentifier::parse(uid).map_err(|e| e.to_string())?;
        let declaration = self
            .inner
            .db
            .get_declaration(uid.as_str())
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("plugin {uid} has not been uploaded"))?;
        let package = self.load_package(uid.as_str(), true).await?;
        progress("reinstalling...".into());
        let relaunched = self
            .inner
            .runtimes
            .relaunch_serverless(&uid, &package, &declaration, &|_| {
                progress("reinstalling...".into())
            })
            .await;
        let function = match relaunched {
            Ok(f) => f,
            Err(err) => {
                tracing::error!(%uid, error = %err, "serverless reinstall failed");
                return Err("failed to reinstall plugin to serverless".into());
            }
        };
        self.store_function(&uid, &function)
            .await
            .map_err(|e| e.to_string())?;
        Ok("successfully reinstalled".into())
    }

    /// Admin endpoint switch (PSC §4.9): serve the plugin from another function (a rollback).
    pub async fn serverless_switch_endpoint(&self, body: &Value) -> Result<bool, DaemonError> {
        let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or("");
        let (uid, name, url) = (
            field("plugin_unique_identifier"),
            field("function_name"),
            field("function_url"),
        );
        for (value, what) in [
            (uid, "PluginUniqueIdentifier"),
            (name, "FunctionName"),
            (url, "FunctionURL"),
        ] {
            if value.is_empty() {
                return Err(DaemonError::bad_request(crate::binding::required_error(
                    &format!("SwitchServerlessEndpointRequest.{what}"),
                )));
            }
        }
        if !self.inner.runtimes.is_serverless() {
            return Err(DaemonError::internal(
                "switch endpoint is not supported on local platform",
            ));
        }
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        if self
            .inner
            .db
            .get_serverless_runtime(uid.as_str())
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(DaemonError::internal(format!(
                "serverless runtime of {uid} not found"
            )));
        }
        let function = ServerlessFunction {
            url: url.to_owned(),
            name: name.to_owned(),
        };
        self.store_function(&uid, &function)
            .await
            .map_err(internal)?;
        self.inner.runtimes.attach_serverless(&uid, function);
        Ok(true)
    }
}
