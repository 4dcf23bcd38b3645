//! The hot path of what a plugin writes: one pass over a line that reads the few fields the
//! daemon routes on and leaves every payload as raw JSON, sliced out of the line without a copy.
//!
//! [`RawLine::parse`] reads `event`, `session_id` and, inside `data`, the keys the daemon looks
//! at (`type` and `data` of a session message, `level` and `message` of a log); everything else
//! is skipped, never built into a tree. A payload handed on is a [`RawJson`]: the bytes of the
//! line it came from, known to be one valid JSON value. Lines that are not a JSON object are
//! [`StrayLine`]s, as with [`crate::PluginEvent::parse`], which stays the lenient reader for
//! everything that is not routed.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{EventKind, StrayLine};

/// One JSON value as bytes: a slice of the plugin's line, or the encoding of a [`Value`].
/// Cheap to clone; writing it out is a copy of its bytes, never a re-encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct RawJson(Bytes);

impl RawJson {
    /// The encoding of `value`.
    pub fn from_value(value: &Value) -> RawJson {
        // Encoding a `Value` cannot fail (string keys only).
        RawJson(Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
    }

    /// The encoding of any serialisable value (e.g. a typed chunk re-encoded after a check).
    pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<RawJson, serde_json::Error> {
        Ok(RawJson(Bytes::from(serde_json::to_vec(value)?)))
    }

    /// A value already checked and encoded by serde_json (no copy).
    pub fn from_raw_value(raw: Box<RawValue>) -> RawJson {
        let text: Box<str> = raw.into();
        RawJson(Bytes::from(String::from(text)))
    }

    /// `text` if it is exactly one JSON value.
    pub fn from_json(text: &str) -> Result<RawJson, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Ok(RawJson(Bytes::copy_from_slice(raw.get().as_bytes())))
    }

    /// The part of `line` that `raw` (borrowed from `line`) covers, without a copy.
    fn slice_of(line: &Bytes, raw: &RawValue) -> RawJson {
        let text = raw.get().as_bytes();
        let start = (text.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
        match start.checked_add(text.len()) {
            Some(end) if end <= line.len() => RawJson(line.slice(start..end)),
            _ => RawJson(Bytes::copy_from_slice(text)),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Always valid UTF-8: sliced from a `&str` JSON value or produced by serde_json.
        std::str::from_utf8(&self.0).unwrap_or("null")
    }

    /// Decodes the value (for the paths that look inside a payload).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Decodes into any borrowing type, e.g. a struct of the few fields a check needs.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.0)
    }

    /// Whether the bytes hold a carriage return (only possible as whitespace between tokens);
    /// such a value must be re-encoded before it goes into a line-based format like SSE.
    pub fn has_cr(&self) -> bool {
        self.0.contains(&b'\r')
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written as the JSON it holds (through serde_json's raw-value support).
impl serde::Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue =
            serde_json::from_slice(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl From<Value> for RawJson {
    fn from(value: Value) -> Self {
        RawJson::from_value(&value)
    }
}

/// One plugin line, read once: the routing fields decoded, the payloads left raw.
pub struct RawLine<'a> {
    line: &'a Bytes,
    fields: Fields<'a>,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    session_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Data<'a>,
}

/// The keys of `data` the daemon reads, each still raw; any other shape of `data` reads as empty.
#[derive(Default)]
struct Data<'a> {
    kind: Option<&'a RawValue>,
    data: Option<&'a RawValue>,
    level: Option<&'a RawValue>,
    message: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Data<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Data<'a>, M::Error> {
                let mut out = Data::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "type" => &mut out.kind,
                        "data" => &mut out.data,
                        "level" => &mut out.level,
                        "message" => &mut out.message,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<&'de RawValue>()?);
                }
                Ok(out)
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Data<'a>, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Data::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
            fn visit_unit<E>(self) -> Result<Data<'a>, E> {
                Ok(Data::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A session message (`data` of a `session` event) with its payload raw.
#[derive(Debug)]
pub struct RawSessionMessage<'a> {
    /// `stream`, `end`, `error`, `invoke` or anything else (the caller reports it).
    pub kind: Cow<'a, str>,
    pub data: RawJson,
}

impl<'a> RawLine<'a> {
    /// Reads one line as written by the plugin, in one pass.
    pub fn parse(line: &'a Bytes) -> Result<RawLine<'a>, StrayLine> {
        match serde_json::from_slice::<Fields<'a>>(line) {
            Ok(fields) => Ok(RawLine { line, fields }),
            Err(e) => Err(StrayLine::new(&e, line)),
        }
    }

    pub fn kind(&self) -> EventKind {
        EventKind::of(self.event())
    }

    /// The event name; empty when absent (the manifest line).
    pub fn event(&self) -> &str {
        self.fields.event.as_deref().unwrap_or("")
    }

    pub fn session_id(&self) -> Option<&str> {
        self.fields.session_id.as_deref()
    }

    /// The session message of a `session` event; both `type` (a string) and `data` are required.
    pub fn session_message(&self) -> Result<RawSessionMessage<'a>, String> {
        let kind = self
            .fields
            .data
            .kind
            .ok_or("missing field `type`")
            .and_then(|raw| {
                serde_json::from_str::<Cow<'a, str>>(raw.get())
                    .map_err(|_| "`type` is not a string")
            })
            .map_err(str::to_owned)?;
        let data = self.fields.data.data.ok_or("missing field `data`")?;
        Ok(RawSessionMessage {
            kind,
            data: RawJson::slice_of(self.line, data),
        })
    }

    /// `level` and `message` of a `log` event (missing or non-string ones read as empty).
    pub fn log(&self) -> (Cow<'a, str>, Cow<'a, str>) {
        let text = |raw: Option<&'a RawValue>| {
            raw.and_then(|r| serde_json::from_str::<Cow<'a, str>>(r.get()).ok())
                .unwrap_or_default()
        };
        (text(self.fields.data.level), text(self.fields.data.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn routes_sdk_frames_with_the_payload_raw() {
        let l = line(
            r#"{"event": "session", "session_id": "s-1", "data": {"type": "stream", "data": {"type": "text", "message": {"text": "h\u00e9 \"x\""}}}}"#,
        );
        let parsed = RawLine::parse(&l).expect("parse");
        assert_eq!(parsed.kind(), EventKind::Session);
        assert_eq!(parsed.session_id(), Some("s-1"));
        let msg = parsed.session_message().expect("message");
        assert_eq!(msg.kind, "stream");
        assert_eq!(
            msg.data.as_str(),
            r#"{"type": "text", "message": {"text": "h\u00e9 \"x\""}}"#
        );
        assert_eq!(
            msg.data.to_value().expect("value"),
            json!({"type": "text", "message": {"text": "hé \"x\""}})
        );
        // Sliced out of the line, not copied.
        let start = msg.data.as_bytes().as_ptr() as usize - l.as_ptr() as usize;
        assert_eq!(&l[start..start + msg.data.len()], msg.data.as_bytes());
    }

    #[test]
    fn other_events_and_shapes() {
        let hb = line(r#"{"event":"heartbeat","session_id":null,"data":{}}"#);
        assert_eq!(
            RawLine::parse(&hb).expect("hb").kind(),
            EventKind::Heartbeat
        );
        let log =
            line(r#"{"event":"log","data":{"level":"WARNING","message":"m\n","timestamp":1.5}}"#);
        let parsed = RawLine::parse(&log).expect("log");
        assert_eq!(parsed.kind(), EventKind::Log);
        let (level, message) = parsed.log();
        assert_eq!((level.as_ref(), message.as_ref()), ("WARNING", "m\n"));
        let manifest = line(r#"{"version":"0.0.1","type":"plugin"}"#);
        let parsed = RawLine::parse(&manifest).expect("manifest");
        assert_eq!(parsed.kind(), EventKind::Other);
        assert_eq!(parsed.event(), "");
        for odd in [
            r#"{"event":"session","session_id":"s","data":[1,2]}"#,
            r#"{"event":"session","session_id":"s","data":"x"}"#,
            r#"{"event":"session","session_id":"s","data":{"type":"end"}}"#,
            r#"{"event":"session","session_id":"s","data":{"type":3,"data":{}}}"#,
        ] {
            let l = line(odd);
            let parsed = RawLine::parse(&l).expect("an object line");
            assert!(parsed.session_message().is_err(), "{odd}");
        }
        let end = line(r#"{"event":"session","session_id":"s","data":{"type":"end","data":null}}"#);
        let msg = RawLine::parse(&end)
            .expect("end")
            .session_message()
            .expect("msg");
        assert_eq!((msg.kind.as_ref(), msg.data.as_str()), ("end", "null"));
    }

    #[test]
    fn non_objects_are_stray_lines() {
        for text in ["hello from print()", "42", "[1,2]", "{\"event\":"] {
            let l = line(text);
            assert!(RawLine::parse(&l).is_err(), "{text}");
        }
    }

    #[test]
    fn raw_json_from_values_and_text() {
        let v = json!({"a": [1, "x"]});
        assert_eq!(RawJson::from_value(&v).as_str(), r#"{"a":[1,"x"]}"#);
        assert_eq!(
            RawJson::encode(&v).expect("encode"),
            RawJson::from_value(&v)
        );
        assert_eq!(RawJson::from_json(" [1] ").expect("ok").as_str(), "[1]");
        assert!(RawJson::from_json("[1] 2").is_err());
        assert!(RawJson::from_json("{\"a\":\r1}").expect("ok").has_cr());
    }
}
