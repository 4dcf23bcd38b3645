//! What goes into a session and what comes out of it, independent of any transport.

use plugind_io::{InStreamEvent, InStreamMessage, RawJson};
use serde_json::Value;

use crate::error::InvokeError;

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

    /// The request line written to the plugin.
    pub(crate) fn request_line(&self) -> Result<Vec<u8>, InvokeError> {
        self.message(InStreamEvent::Request, self.data.clone())
            .to_line()
            .map_err(|e| InvokeError::Encode(e.to_string()))
    }
}

/// One message of a session, in the order the plugin sent them.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEvent {
    /// A result chunk (`data` of a `stream` message), as the plugin encoded it.
    Stream(RawJson),
    /// The plugin's error data (`{"error_type","message","args"}`); an `End` normally follows.
    Error(Value),
    /// The plugin finished the request.
    End,
    /// A backwards invocation request (`data` of an `invoke` message).
    Invoke(Value),
    /// The connection to the plugin went away (crash, kill, stop, disconnect) before the session
    /// ended; says why.
    Closed(String),
    /// The daemon ended the session (its caller read too slowly); says why.
    Aborted(String),
}

impl SessionEvent {
    /// After this event the session receives nothing more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SessionEvent::End | SessionEvent::Closed(_) | SessionEvent::Aborted(_)
        )
    }
}
