//! What the daemon writes to a plugin: the in-stream message, one compact JSON object per line.
//!
//! Field order is the wire order the SDK has always seen: `session_id`, `conversation_id`,
//! `message_id`, `app_id`, `endpoint_id`, `context`, `event`, `data`. Absent ids are `null`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InStreamEvent {
    Request,
    BackwardsResponse,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InStreamMessage {
    pub session_id: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub endpoint_id: Option<String>,
    #[serde(default)]
    pub context: Option<Value>,
    pub event: InStreamEvent,
    pub data: Value,
}

impl InStreamMessage {
    /// The message as one line: compact JSON plus exactly one `\n`. serde_json escapes any
    /// newline inside strings, so the result never contains a second line break.
    pub fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut line = serde_json::to_vec(self)?;
        line.push(b'\n');
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_order_and_single_newline() {
        let msg = InStreamMessage {
            session_id: "s".into(),
            conversation_id: None,
            message_id: None,
            app_id: Some("app".into()),
            endpoint_id: None,
            context: None,
            event: InStreamEvent::Request,
            data: json!({"type":"tool","text":"a\nb"}),
        };
        let line = String::from_utf8(msg.to_line().expect("line")).expect("utf8");
        assert_eq!(
            line,
            "{\"session_id\":\"s\",\"conversation_id\":null,\"message_id\":null,\"app_id\":\"app\",\"endpoint_id\":null,\"context\":null,\"event\":\"request\",\"data\":{\"type\":\"tool\",\"text\":\"a\\nb\"}}\n"
        );
        let back = InStreamMessage {
            event: InStreamEvent::BackwardsResponse,
            ..msg
        };
        assert!(String::from_utf8(back.to_line().expect("line"))
            .expect("utf8")
            .contains("\"event\":\"backwards_response\""));
    }
}
