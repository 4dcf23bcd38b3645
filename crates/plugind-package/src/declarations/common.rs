//! Types shared by the provider declarations (PSC §1.4) and the lenient decoding helpers that
//! make serde read YAML the way upstream's YAML decoder does: `null` gives the zero value,
//! scalars are read as their text where a string is expected, free-form values keep Go's number
//! form (an integral float is written as an integer).

use std::fmt;
use std::marker::PhantomData;

use plugind_entities::I18nObject;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The 19 tags a manifest or provider identity may carry (declared rule `plugin_tag`).
pub const PLUGIN_TAGS: [&str; 19] = [
    "search",
    "image",
    "videos",
    "weather",
    "finance",
    "design",
    "travel",
    "social",
    "news",
    "medical",
    "productivity",
    "education",
    "business",
    "entertainment",
    "utilities",
    "agent",
    "rag",
    "other",
    "trigger",
];

/// `null` (or absent, with `#[serde(default)]`) → the zero value.
pub(crate) fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Default, Deserialize)]
struct I18nIn {
    #[serde(rename = "en_US", default, deserialize_with = "nd")]
    en_us: String,
    #[serde(rename = "zh_Hans", default, deserialize_with = "nd")]
    zh_hans: String,
    #[serde(rename = "ja_JP", default, deserialize_with = "nd")]
    ja_jp: String,
    #[serde(rename = "pt_BR", default, deserialize_with = "nd")]
    pt_br: String,
}

impl From<I18nIn> for I18nObject {
    fn from(y: I18nIn) -> Self {
        I18nObject {
            en_us: y.en_us,
            zh_hans: y.zh_hans,
            ja_jp: y.ja_jp,
            pt_br: y.pt_br,
        }
    }
}

/// A localised text; unknown languages are dropped, `null` → all empty.
pub(crate) fn i18n<'de, D: Deserializer<'de>>(d: D) -> Result<I18nObject, D::Error> {
    Ok(Option::<I18nIn>::deserialize(d)?
        .map(Into::into)
        .unwrap_or_default())
}

/// An optional localised text (Go `*I18nObject`).
pub(crate) fn opt_i18n<'de, D: Deserializer<'de>>(d: D) -> Result<Option<I18nObject>, D::Error> {
    Ok(Option::<I18nIn>::deserialize(d)?.map(Into::into))
}

/// Gives a free-form value (Go `any` / `map[string]any`) the form Go's encoder writes: integral
/// floats as integers (`float64(1)` → `1`) and mapping keys sorted, recursively.
pub(crate) fn go_value(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if let Some(i) = integral(f) {
                    *v = Value::from(i);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(go_value),
        Value::Object(map) => go_map(map),
        _ => {}
    }
}

fn go_map(map: &mut Map<String, Value>) {
    map.values_mut().for_each(go_value);
    map.sort_keys();
}

fn integral(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// A free-form value (Go `any`); `null` → `None`.
pub(crate) fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(v.filter(|v| !v.is_null()).map(|mut v| {
        go_value(&mut v);
        v
    }))
}

/// A free-form mapping (Go `map[string]any`); `null` → `None`.
pub(crate) fn any_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    let v = Option::<Map<String, Value>>::deserialize(d)?;
    Ok(v.map(|mut m| {
        go_map(&mut m);
        m
    }))
}

/// Writes an optional float the way Go's JSON encoder does (`1` rather than `1.0`).
pub(crate) fn go_f64<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(f) => match integral(*f) {
            Some(i) => s.serialize_i64(i),
            None => s.serialize_f64(*f),
        },
    }
}

pub(crate) fn map_is_empty(m: &Option<Map<String, Value>>) -> bool {
    m.as_ref().is_none_or(Map::is_empty)
}

/// `ProviderConfig` option (`{value, label}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigOption {
    #[serde(default, deserialize_with = "nd")]
    pub value: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
}

/// A configurable field: credentials, endpoint settings, subscription schema (PSC §1.4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "nd")]
    pub required: bool,
    #[serde(default, deserialize_with = "any")]
    pub default: Option<Value>,
    #[serde(default)]
    pub options: Option<Vec<ConfigOption>>,
    #[serde(default, deserialize_with = "nd")]
    pub multiple: bool,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub help: Option<I18nObject>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "opt_i18n")]
    pub placeholder: Option<I18nObject>,
}

/// `{client_schema, credentials_schema}` (lists only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthSchema {
    #[serde(default)]
    pub client_schema: Option<Vec<ProviderConfig>>,
    #[serde(default)]
    pub credentials_schema: Option<Vec<ProviderConfig>>,
}

/// Parameter option (`{value, label, icon}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterOption {
    #[serde(default, deserialize_with = "nd")]
    pub value: String,
    #[serde(default, deserialize_with = "i18n")]
    pub label: I18nObject,
    #[serde(default, deserialize_with = "nd")]
    pub icon: String,
}

/// `{type: prompt_instruction}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterAutoGenerate {
    #[serde(rename = "type", default, deserialize_with = "nd")]
    pub kind: String,
}

/// `{enabled: bool}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ParameterTemplate {
    #[serde(default, deserialize_with = "nd")]
    pub enabled: bool,
}

/// A list of [`ProviderConfig`] that YAML may also give as a mapping `name → config` (mapping
/// order kept; each key becomes the entry's `name`). `null`/absent → empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ConfigList(pub Vec<ProviderConfig>);

impl<'de> Deserialize<'de> for ConfigList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConfigList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list or a mapping of configuration fields")
            }
            fn visit_unit<E>(self) -> Result<ConfigList, E> {
                Ok(ConfigList::default())
            }
            fn visit_none<E>(self) -> Result<ConfigList, E> {
                Ok(ConfigList::default())
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ConfigList, E> {
                if s.is_empty() {
                    Ok(ConfigList::default())
                } else {
                    Err(E::invalid_type(de::Unexpected::Str(s), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConfigList, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<ProviderConfig>()? {
                    out.push(item);
                }
                Ok(ConfigList(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConfigList, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if let OnlyMap(Some(mut config)) =
                        map.next_value::<OnlyMap<ProviderConfig>>()?
                    {
                        config.name = key;
                        out.push(config);
                    }
                }
                Ok(ConfigList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A value that is a mapping decoded as `T`, or anything else (→ `None`, skipped like upstream).
pub(crate) struct OnlyMap<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OnlyMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OnlyMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OnlyMap<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|c| OnlyMap(Some(c)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OnlyMap<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OnlyMap(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_unit<E>(self) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
            fn visit_none<E>(self) -> Result<OnlyMap<T>, E> {
                Ok(OnlyMap(None))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One entry of a nested declaration list: a string is a file to load, a mapping is an inline
/// declaration; anything else is ignored (upstream skips it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Entry<T> {
    File(String),
    Inline(T),
    Other,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entry<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entry<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a file path or an inline declaration")
            }
            fn visit_str<E>(self, s: &str) -> Result<Entry<T>, E> {
                Ok(Entry::File(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Entry<T>, E> {
                Ok(Entry::File(s))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Entry<T>, E> {
                Ok(Entry::File(b.to_string()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Entry<T>, E> {
                Ok(Entry::File(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Entry<T>, E> {
                Ok(Entry::File(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Entry<T>, E> {
                Ok(Entry::File(n.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Entry<T>, E> {
                Ok(Entry::Other)
            }
            fn visit_none<E>(self) -> Result<Entry<T>, E> {
                Ok(Entry::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry<T>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Entry::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Entry::Inline)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A nested declaration list: inline declarations (in order) and the files still to load.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entries<T> {
    pub inline: Vec<T>,
    pub files: Vec<String>,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self {
            inline: Vec::new(),
            files: Vec::new(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of file paths or inline declarations")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entries<T>, A::Error> {
                let mut out = Entries::default();
                while let Some(item) = seq.next_element::<Entry<T>>()? {
                    match item {
                        Entry::File(f) => out.files.push(f),
                        Entry::Inline(t) => out.inline.push(t),
                        Entry::Other => {}
                    }
                }
                Ok(out)
            }
            // Anything but a sequence is ignored, like upstream.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Entries::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_unit<E>(self) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
            fn visit_none<E>(self) -> Result<Entries<T>, E> {
                Ok(Entries::default())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}
