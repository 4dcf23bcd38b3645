//! The response body of a serverless function, line by line (plugin-protocol §6.3): the
//! universal events of §1.2, one JSON per line, no SSE framing. Pure: [`Lines`] splits chunks
//! into lines, [`classify`] says what one line means for the session.

use plugind_io::{PluginEvent, SessionMessage, SessionMessageType};
use serde_json::{json, Value};

/// Splits the body's chunks into lines (`\n`, one trailing `\r` dropped, empty lines skipped).
/// A line longer than `max` is cut off and reported, as the local runtime does.
pub(crate) struct Lines {
    buf: Vec<u8>,
    max: usize,
}

/// A line that grew beyond the limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLong(pub(crate) usize);

impl Lines {
    pub(crate) fn new(max: usize) -> Self {
        Lines {
            buf: Vec::new(),
            max: max.max(1),
        }
    }

    /// Adds `chunk`; returns the complete lines it finished.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, TooLong> {
        self.buf.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > self.max {
                return Err(TooLong(line.len()));
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push(line);
            }
        }
        if self.buf.len() > self.max {
            return Err(TooLong(self.buf.len()));
        }
        Ok(lines)
    }

    /// What is left at the end of the body (a last line without `\n`).
    pub(crate) fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        (!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest)
    }
}

/// What one line means.
#[derive(Debug, PartialEq)]
pub(crate) enum Line {
    /// A session message to forward (`stream`, `error`, `invoke`, unknown types).
    Forward(SessionMessage),
    /// The plugin's `end`, with its data: stop reading.
    End(Value),
    /// The daemon's own error for the session (`{"error_type","message"[,"args"]}`): stop.
    Fail(Value),
    /// A log line of the plugin.
    Log(Value),
    /// Heartbeats and events the daemon does not act on.
    Ignore,
}

/// `{"error_type":"PluginRuntimeError","message":"Plugin runtime request failed: <type>[: <m>]","args":{…}}`.
pub(crate) fn runtime_error(
    error_type: &str,
    message: &str,
    status: u16,
    request_id: &str,
) -> Value {
    let mut text = format!("Plugin runtime request failed: {error_type}");
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    let mut args = json!({ "status_code": status });
    if !request_id.is_empty() {
        args["request_id"] = json!(request_id);
    }
    json!({"error_type": "PluginRuntimeError", "message": text, "args": args})
}

/// `{"error_type":"PluginDaemonInnerError","message":…}`.
pub(crate) fn inner_error(message: String) -> Value {
    json!({"error_type": "PluginDaemonInnerError", "message": message})
}

/// A string field of an object, its name matched case-insensitively (Go's decoder does).
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

pub(crate) fn field_str<'a>(v: &'a Value, name: &str) -> &'a str {
    field(v, name).and_then(Value::as_str).unwrap_or("")
}

/// Applies rule 3 of §6.3 to one non-empty line.
pub(crate) fn classify(line: &[u8]) -> Line {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Line::Fail(inner_error(format!(
                "encountered an error: {e}: {}",
                String::from_utf8_lossy(line)
            )))
        }
    };
    let error_type = field_str(&value, "errorType");
    if !error_type.is_empty() {
        return Line::Fail(runtime_error(
            error_type,
            field_str(&value, "errorMessage"),
            200,
            field_str(&value, "requestId"),
        ));
    }
    let event: PluginEvent = match serde_json::from_value(value) {
        Ok(e) => e,
        Err(e) => {
            return Line::Fail(inner_error(format!(
                "encountered an error: {e}: {}",
                String::from_utf8_lossy(line)
            )))
        }
    };
    match event.event.as_str() {
        "session" => match SessionMessage::from_value(event.data) {
            Ok(msg) if msg.kind == SessionMessageType::End => Line::End(msg.data),
            Ok(msg) => Line::Forward(msg),
            Err(e) => Line::Fail(inner_error(format!(
                "failed to parse session message {}, err: {e}",
                String::from_utf8_lossy(line)
            ))),
        },
        "error" => {
            let detail = match &event.data {
                Value::String(s) => s.clone(),
                Value::Object(_) => {
                    let m = field_str(&event.data, "message");
                    if m.is_empty() {
                        event.data.to_string()
                    } else {
                        m.to_owned()
                    }
                }
                other => other.to_string(),
            };
            Line::Fail(inner_error(format!("encountered an error: {detail}")))
        }
        "log" => Line::Log(event.data),
        _ => Line::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_chunks_into_lines_and_skips_blank_ones() {
        let mut lines = Lines::new(1024);
        assert_eq!(
            lines.push(b"{\"a\":1}\n\n{\"b\"").expect("ok"),
            vec![b"{\"a\":1}".to_vec()]
        );
        assert_eq!(
            lines.push(b":2}\r\n\n").expect("ok"),
            vec![b"{\"b\":2}".to_vec()]
        );
        assert_eq!(lines.push(b"{\"c\":3}").expect("ok"), Vec::<Vec<u8>>::new());
        assert_eq!(lines.finish(), Some(b"{\"c\":3}".to_vec()));
        let mut small = Lines::new(4);
        assert_eq!(small.push(b"123456"), Err(TooLong(6)));
    }

    #[test]
    fn session_messages_end_and_forward() {
        let stream = br#"{"event":"session","session_id":"sl1","data":{"type":"stream","data":{"type":"text","message":{"text":"serverless"},"meta":null}}}"#;
        match classify(stream) {
            Line::Forward(msg) => {
                assert_eq!(msg.kind, SessionMessageType::Stream);
                assert_eq!(msg.data["message"]["text"], json!("serverless"));
            }
            other => panic!("expected a stream message, got {other:?}"),
        }
        let end = br#"{"event":"session","session_id":"sl1","data":{"type":"end","data":{"x":1}}}"#;
        assert_eq!(classify(end), Line::End(json!({"x": 1})));
        let invoke = br#"{"event":"session","session_id":"s","data":{"type":"invoke","data":{}}}"#;
        assert!(
            matches!(classify(invoke), Line::Forward(m) if m.kind == SessionMessageType::Invoke)
        );
        assert_eq!(
            classify(br#"{"event":"heartbeat","session_id":null,"data":{}}"#),
            Line::Ignore
        );
        assert!(matches!(
            classify(br#"{"event":"log","data":{"level":"info","message":"m"}}"#),
            Line::Log(_)
        ));
    }

    #[test]
    fn errors_stop_the_session_with_upstreams_shapes() {
        let Line::Fail(e) = classify(
            br#"{"errorType":"Function.Timeout","errorMessage":"took too long","requestId":"r1"}"#,
        ) else {
            panic!("expected a failure");
        };
        assert_eq!(
            e,
            json!({"error_type":"PluginRuntimeError","message":"Plugin runtime request failed: Function.Timeout: took too long","args":{"status_code":200,"request_id":"r1"}})
        );
        let Line::Fail(e) = classify(b"Traceback (most recent call last)") else {
            panic!("expected a failure");
        };
        assert_eq!(e["error_type"], json!("PluginDaemonInnerError"));
        assert!(e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("encountered an error: ")));
        let Line::Fail(e) = classify(br#"{"event":"error","data":{"message":"boom"}}"#) else {
            panic!("expected a failure");
        };
        assert_eq!(e["message"], json!("encountered an error: boom"));
        let Line::Fail(e) =
            classify(br#"{"event":"session","session_id":"s","data":{"type":"stream"}}"#)
        else {
            panic!("expected a failure");
        };
        assert!(e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("failed to parse session message ")));
    }
}
