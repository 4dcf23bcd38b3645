//! Field types that decode a plugin chunk the way upstream's Go structs do, borrowing from the
//! chunk's text: `null` for a plain field reads as its zero value, a wrong JSON type is an error,
//! free-form objects and numbers are kept as the plugin wrote them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::decimal;

/// A Go `string`: `null` reads as `""`; borrowed unless the text has escapes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Str<'de>, E> {
                Ok(Str::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Str<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A Go `map[string]any`: an object, or `null` (kept as the plugin wrote it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Map<'a>(pub Option<&'a RawValue>);

impl Map<'_> {
    /// Go's `omitempty` on a map: nil or no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_none_or(|raw| {
            let inner = raw.get().trim_start_matches('{').trim_end_matches('}');
            inner.trim().is_empty()
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Map<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'a RawValue>::deserialize(d)?;
        match raw.get().as_bytes().first() {
            Some(b'{') => Ok(Map(Some(raw))),
            Some(b'n') => Ok(Map(None)),
            _ => Err(de::Error::custom(format_args!(
                "invalid type: {}, expected an object",
                kind_of(raw)
            ))),
        }
    }
}

impl Serialize for Map<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(s),
            None => s.serialize_unit(),
        }
    }
}

/// A Go `float64`: a JSON number, kept as the plugin wrote it.
#[derive(Clone, Copy, Debug)]
pub struct Num<'a>(pub &'a RawValue);

impl<'de: 'a, 'a> Deserialize<'de> for Num<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'a RawValue>::deserialize(d)?;
        match raw.get().as_bytes().first() {
            Some(b'-' | b'0'..=b'9') => Ok(Num(raw)),
            _ => Err(de::Error::custom(format_args!(
                "invalid type: {}, expected a number",
                kind_of(raw)
            ))),
        }
    }
}

impl Serialize for Num<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Any JSON value, passed through verbatim (`json.RawMessage`); a given `null` stays `null`.
pub fn raw_some<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<&'a RawValue>, D::Error> {
    <&'a RawValue>::deserialize(d).map(Some)
}

/// A plain Go value (`int`, `bool`, …): `null` reads as its zero value.
pub fn or_zero<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A shopspring `decimal.Decimal`: a number or a numeric string, `null` for zero; written back
/// as a string in its canonical form (`"0.001"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price(pub String);

impl Default for Price {
    fn default() -> Self {
        Price("0".to_owned())
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&RawValue>::deserialize(d)?;
        let text: Cow<'_, str> = match raw.get().as_bytes().first() {
            Some(b'n') => return Ok(Price::default()),
            Some(b'"') => serde_json::from_str(raw.get()).map_err(de::Error::custom)?,
            Some(b'-' | b'0'..=b'9') => Cow::Borrowed(raw.get()),
            _ => {
                return Err(de::Error::custom(format_args!(
                    "invalid type: {}, expected a decimal",
                    kind_of(raw)
                )))
            }
        };
        decimal::canonical(&text).map(Price).map_err(|e| match e {
            decimal::DecimalError::NotANumber => {
                de::Error::custom(format_args!("can't convert {} to decimal", raw.get()))
            }
            decimal::DecimalError::TooLong => de::Error::custom(format_args!(
                "decimal with more than {} digits",
                decimal::MAX_DECIMAL_DIGITS
            )),
        })
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "map",
        Some(b'[') => "sequence",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

/// Go validator's text for a failed rule (`Key: 'T.F' Error:Field validation for 'F' failed on
/// the 'tag' tag`).
pub fn rule(path: &str, tag: &str) -> String {
    let field = path.rsplit('.').next().unwrap_or(path);
    format!("Key: '{path}' Error:Field validation for '{field}' failed on the '{tag}' tag")
}

/// `required`: `Err` with the validator's text when `missing`.
pub fn required(missing: bool, path: &str) -> Result<(), String> {
    if missing {
        Err(rule(path, "required"))
    } else {
        Ok(())
    }
}
