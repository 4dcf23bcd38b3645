//! Endpoint group (PSC §1.5 "Endpoint group"): settings and endpoints.

use std::fmt;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::common::nd;
use super::common::ProviderConfig;

/// Endpoint methods (`is_available_endpoint_method`).
pub const ENDPOINT_METHODS: [&str; 6] = ["HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointDeclaration {
    #[serde(default, deserialize_with = "nd")]
    pub path: String,
    #[serde(default, deserialize_with = "nd")]
    pub method: String,
    #[serde(default, deserialize_with = "nd")]
    pub hidden: bool,
}

/// An endpoint group. `endpoint_files` are the nested files still to load (never serialised).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EndpointProviderDeclaration {
    pub settings: Option<Vec<ProviderConfig>>,
    pub endpoints: Option<Vec<EndpointDeclaration>>,
    #[serde(skip)]
    pub endpoint_files: Vec<String>,
}

#[derive(Deserialize)]
struct EndpointProviderIn {
    #[serde(default)]
    settings: Option<Vec<ProviderConfig>>,
    #[serde(default)]
    endpoints: Option<EndpointList>,
}

/// Strings are files, mappings inline declarations; an inline entry that does not decode ends
/// the list without an error (upstream's behaviour).
#[derive(Default)]
struct EndpointList {
    inline: Vec<EndpointDeclaration>,
    files: Vec<String>,
}

impl<'de> Deserialize<'de> for EndpointList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EndpointList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of endpoints")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EndpointList, A::Error> {
                let mut out = EndpointList::default();
                let mut stopped = false;
                while let Some(item) = seq.next_element::<Value>()? {
                    if stopped {
                        continue;
                    }
                    match item {
                        Value::String(s) => out.files.push(s),
                        Value::Number(n) => out.files.push(n.to_string()),
                        Value::Bool(b) => out.files.push(b.to_string()),
                        other => match EndpointDeclaration::deserialize(other) {
                            Ok(e) => out.inline.push(e),
                            Err(_) => stopped = true,
                        },
                    }
                }
                Ok(out)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EndpointList, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(EndpointList::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_unit<E>(self) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
            fn visit_none<E>(self) -> Result<EndpointList, E> {
                Ok(EndpointList::default())
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EndpointProviderDeclaration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = EndpointProviderIn::deserialize(d)?;
        let list = e.endpoints.unwrap_or_default();
        Ok(Self {
            settings: e.settings,
            endpoints: (!list.inline.is_empty()).then_some(list.inline),
            endpoint_files: list.files,
        })
    }
}
