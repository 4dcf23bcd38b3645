//! What a plugin writes: the universal event (`{"event","session_id","data"}`, one per line) and
//! the session message carried by `session` events (`{"type","data"}`).
//!
//! Parsing is lenient where the SDK is: the manifest line the SDK prints first has no `event`
//! (it parses with an empty one and callers ignore it), and log lines omit `session_id`. A line
//! that is not a JSON object is a [`StrayLine`], typically a plugin's `print()`, which callers log
//! and otherwise ignore.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest excerpt of a stray line kept for logging.
const STRAY_EXCERPT_BYTES: usize = 1024;

/// One event line from a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PluginEvent {
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// The events the daemon reacts to; everything else is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Heartbeat,
    Session,
    Log,
    Error,
    /// Includes the empty event of the manifest line.
    Other,
}

/// A line that is not a JSON object: a stray print, a partial write, garbage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a plugin event ({error}): {excerpt}")]
pub struct StrayLine {
    /// Why it did not parse.
    pub error: String,
    /// The line, cut to 1024 bytes (plus `...`), lossily decoded.
    pub excerpt: String,
}

impl PluginEvent {
    /// Parses one line as written by the plugin.
    pub fn parse(line: &[u8]) -> Result<PluginEvent, StrayLine> {
        serde_json::from_slice(line).map_err(|e| StrayLine::new(&e, line))
    }

    pub fn kind(&self) -> EventKind {
        EventKind::of(&self.event)
    }
}

impl EventKind {
    /// The kind of an `event` name.
    pub fn of(event: &str) -> EventKind {
        match event {
            "heartbeat" => EventKind::Heartbeat,
            "session" => EventKind::Session,
            "log" => EventKind::Log,
            "error" => EventKind::Error,
            _ => EventKind::Other,
        }
    }
}

impl StrayLine {
    pub(crate) fn new(error: &serde_json::Error, line: &[u8]) -> StrayLine {
        StrayLine {
            error: error.to_string(),
            excerpt: excerpt(line),
        }
    }
}

fn excerpt(line: &[u8]) -> String {
    if line.len() <= STRAY_EXCERPT_BYTES {
        String::from_utf8_lossy(line).into_owned()
    } else {
        format!(
            "{}...",
            String::from_utf8_lossy(&line[..STRAY_EXCERPT_BYTES])
        )
    }
}

/// `data` of a `log` event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogData {
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub timestamp: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogData {
    /// Upstream's mapping, case-insensitive: `debug`; `warn`/`warning`; `error`/`fatal`/`critical`;
    /// anything else is info.
    pub fn level(&self) -> LogLevel {
        match self.level.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "warn" | "warning" => LogLevel::Warn,
            "error" | "fatal" | "critical" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// `type` of a session message. Unknown types are kept so the caller can fail the call with
/// `unknown_stream_message_type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionMessageType {
    Stream,
    End,
    Error,
    Invoke,
    Unknown(String),
}

impl SessionMessageType {
    pub fn as_str(&self) -> &str {
        match self {
            SessionMessageType::Stream => "stream",
            SessionMessageType::End => "end",
            SessionMessageType::Error => "error",
            SessionMessageType::Invoke => "invoke",
            SessionMessageType::Unknown(s) => s,
        }
    }

    fn from_wire(s: String) -> Self {
        match s.as_str() {
            "stream" => SessionMessageType::Stream,
            "end" => SessionMessageType::End,
            "error" => SessionMessageType::Error,
            "invoke" => SessionMessageType::Invoke,
            _ => SessionMessageType::Unknown(s),
        }
    }
}

impl Serialize for SessionMessageType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionMessageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(SessionMessageType::from_wire(String::deserialize(d)?))
    }
}

/// `data` of a `session` event. Both keys are required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionMessage {
    #[serde(rename = "type")]
    pub kind: SessionMessageType,
    pub data: Value,
}

impl SessionMessage {
    pub fn from_value(data: Value) -> Result<SessionMessage, serde_json::Error> {
        serde_json::from_value(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_sdk_frames() {
        let hb = PluginEvent::parse(br#"{"event":"heartbeat","session_id":null,"data":{}}"#)
            .expect("heartbeat");
        assert_eq!(hb.kind(), EventKind::Heartbeat);
        let log = PluginEvent::parse(
            br#"{"event": "log", "data": {"level": "WARNING", "message": "m", "timestamp": 1.5}}"#,
        )
        .expect("log");
        assert_eq!(log.kind(), EventKind::Log);
        let data: LogData = serde_json::from_value(log.data).expect("log data");
        assert_eq!(data.level(), LogLevel::Warn);
        let manifest =
            PluginEvent::parse(br#"{"version":"0.0.1","type":"plugin"}"#).expect("manifest");
        assert_eq!(manifest.kind(), EventKind::Other);
        let session = PluginEvent::parse(
            br#"{"event":"session","session_id":"s","data":{"type":"stream","data":{"type":"text","message":{"text":"hi"}}}}"#,
        )
        .expect("session");
        assert_eq!(session.session_id.as_deref(), Some("s"));
        let msg = SessionMessage::from_value(session.data).expect("message");
        assert_eq!(msg.kind, SessionMessageType::Stream);
        assert_eq!(msg.data["message"]["text"], json!("hi"));
        let odd = SessionMessage::from_value(json!({"type":"weird","data":{}})).expect("odd");
        assert_eq!(odd.kind, SessionMessageType::Unknown("weird".into()));
        assert!(SessionMessage::from_value(json!({"type":"end"})).is_err());
    }

    #[test]
    fn non_objects_are_stray_lines() {
        for line in [&b"hello from print()"[..], b"42", b"[1,2]", b"{\"event\":"] {
            let stray = PluginEvent::parse(line).expect_err("stray");
            assert!(!stray.error.is_empty());
        }
        let long = vec![b'a'; 5000];
        let stray = PluginEvent::parse(&long).expect_err("stray");
        assert_eq!(stray.excerpt.len(), 1024 + 3);
    }
}
