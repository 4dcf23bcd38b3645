//! Sessions: one request to a plugin and the stream of messages it answers with.
//!
//! A session is registered on the instance before its request line is written, so no early
//! answer is lost; dropping the [`Session`] unregisters it, and anything the plugin still sends
//! for it is dropped. When the instance dies, every registered session receives
//! [`SessionEvent::Closed`] at once.

use std::sync::Arc;

use plugind_io::{InStreamEvent, InStreamMessage};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::InvokeError;
use crate::local::instance::Instance;

/// What the caller wants to send; the ids are copied into every line of the session.
#[derive(Clone, Debug, Default)]
pub struct SessionRequest {
    pub session_id: String,
    pub conversation_id: Option<String>,
    pub message_id: Option<String>,
    pub app_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub context: Option<Value>,
    /// The action payload (`{"type":"tool","action":"invoke_tool",...}`).
    pub data: Value,
}

impl SessionRequest {
    pub(crate) fn message(&self, event: InStreamEvent, data: Value) -> InStreamMessage {
        InStreamMessage {
            session_id: self.session_id.clone(),
            conversation_id: self.conversation_id.clone(),
            message_id: self.message_id.clone(),
            app_id: self.app_id.clone(),
            endpoint_id: self.endpoint_id.clone(),
            context: self.context.clone(),
            event,
            data,
        }
    }
}

/// One message of a session, in the order the plugin sent them.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// A result chunk (`data` of a `stream` message).
    Stream(Value),
    /// The plugin's error data (`{"error_type","message","args"}`); an `End` normally follows.
    Error(Value),
    /// The plugin finished the request.
    End,
    /// A backwards invocation request (`data` of an `invoke` message).
    Invoke(Value),
    /// The plugin process went away (crash, kill, stop) before the session ended; says why.
    Closed(String),
}

/// A registered listener plus the way to answer backwards invocations.
pub struct Session {
    request: SessionRequest,
    rx: mpsc::UnboundedReceiver<SessionEvent>,
    instance: Arc<Instance>,
    finished: bool,
}

impl Session {
    pub(crate) fn new(
        request: SessionRequest,
        rx: mpsc::UnboundedReceiver<SessionEvent>,
        instance: Arc<Instance>,
    ) -> Self {
        Session {
            request,
            rx,
            instance,
            finished: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.request.session_id
    }

    /// The next message; `None` after `End` or `Closed`.
    pub async fn next(&mut self) -> Option<SessionEvent> {
        if self.finished {
            return None;
        }
        let event = match self.rx.recv().await {
            Some(event) => event,
            // The instance dropped our sender without saying why; only a shut-down runtime does.
            None => SessionEvent::Closed("plugin instance is gone".into()),
        };
        if matches!(event, SessionEvent::End | SessionEvent::Closed(_)) {
            self.finished = true;
        }
        Some(event)
    }

    /// Answers a backwards invocation: a `backwards_response` line with this session's ids.
    pub async fn send_backwards_response(&self, data: Value) -> Result<(), InvokeError> {
        let line = self
            .request
            .message(InStreamEvent::BackwardsResponse, data)
            .to_line()
            .map_err(|e| InvokeError::Encode(e.to_string()))?;
        self.instance
            .write_line(&line)
            .await
            .map_err(|e| InvokeError::Write(e.to_string()))
    }

    /// Pid of the process serving this session.
    pub fn pid(&self) -> u32 {
        self.instance.pid()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.instance.unregister(&self.request.session_id);
    }
}
