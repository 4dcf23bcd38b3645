//! The registration phase of a debugging connection (plugin-protocol §5.3, §5.4) as a state
//! machine fed one line at a time: `{"type": <event>, "data": <json>}` lines until `end`.
//! Nothing is accepted before a valid handshake (upstream accepts declarations first; it should
//! not). The key lookup is the caller's (it may wait on a store), so a handshake line only
//! yields the key; [`Registration::handshaken`] records the tenant it maps to.
//!
//! Every error text is the one line the plugin receives before the socket closes.

use std::collections::BTreeMap;

use base64::Engine;
use plugind_entities::PluginDeclaration;
use plugind_package::remote::{
    finish_registration, manifest_from_json, provider_from_json, set_provider, Registered,
    RegisteredCategory, RegistrationError,
};
use serde::Deserialize;
use serde_json::Value;

/// Decoded asset bytes a plugin may send (upstream: 50 MiB).
pub(crate) const MAX_ASSET_BYTES: usize = 50 * 1024 * 1024;

const INVALID_HANDSHAKE: &str = "handshake failed, invalid handshake message";

/// What the caller does after a line.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Read the next line.
    More,
    /// A handshake with this key: look it up, then call [`Registration::handshaken`] or refuse.
    Handshake(String),
    /// `end` arrived: take a connection slot, then call [`Registration::finish`].
    End,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: Value,
}

#[derive(Deserialize)]
struct Handshake {
    key: String,
}

#[derive(Deserialize)]
struct AssetChunk {
    filename: String,
    data: String,
}

/// What a plugin has registered so far.
#[derive(Default)]
pub(crate) struct Registration {
    tenant_id: Option<String>,
    manifest: Option<PluginDeclaration>,
    providers: Vec<(RegisteredCategory, Option<Value>)>,
    assets: BTreeMap<String, Vec<u8>>,
    asset_bytes: usize,
}

fn fail<T>(text: impl Into<String>) -> Result<T, RegistrationError> {
    Err(RegistrationError(text.into()))
}

impl Registration {
    pub(crate) fn is_handshaken(&self) -> bool {
        self.tenant_id.is_some()
    }

    /// The key was valid: the plugin registers for `tenant_id`.
    pub(crate) fn handshaken(&mut self, tenant_id: String) {
        self.tenant_id = Some(tenant_id);
    }

    pub(crate) fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// One registration line.
    pub(crate) fn feed(&mut self, line: &[u8]) -> Result<Step, RegistrationError> {
        let Ok(Envelope { kind, data }) = serde_json::from_slice::<Envelope>(line) else {
            return fail(INVALID_HANDSHAKE);
        };
        if kind == "handshake" {
            if self.is_handshaken() {
                return fail("handshake already completed");
            }
            return match Handshake::deserialize(&data) {
                Ok(Handshake { key }) => Ok(Step::Handshake(key)),
                Err(_) => fail(INVALID_HANDSHAKE),
            };
        }
        if !self.is_handshaken() {
            return fail(
                "handshake failed, registration message before handshake \
                 (send {\"type\":\"handshake\",\"data\":{\"key\":\"<debugging key>\"}} first)",
            );
        }
        match kind.as_str() {
            "manifest_declaration" => {
                if self.manifest.is_some() {
                    return fail("declaration already registered");
                }
                self.manifest = Some(manifest_from_json(&data)?);
            }
            "asset_chunk" => self.asset_chunk(&data)?,
            "end" => return Ok(Step::End),
            other => match RegisteredCategory::from_event(other) {
                Some(category) => {
                    if self.providers.iter().any(|(c, _)| *c == category) {
                        return fail(category.already_registered());
                    }
                    let provider = provider_from_json(category, &data)?;
                    self.providers.push((category, provider));
                }
                None => tracing::debug!(event = other, "unknown registration event ignored"),
            },
        }
        Ok(Step::More)
    }

    fn asset_chunk(&mut self, data: &Value) -> Result<(), RegistrationError> {
        let chunk = match AssetChunk::deserialize(data) {
            Ok(chunk) if !chunk.filename.is_empty() && !chunk.data.is_empty() => chunk,
            Ok(_) => return fail("transfer assets failed, error: filename and data are required"),
            Err(e) => return fail(format!("transfer assets failed, error: {e}")),
        };
        if self.asset_bytes.saturating_add(chunk.data.len()) > MAX_ASSET_BYTES {
            return fail("assets too large, at most 50MB");
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(chunk.data.as_bytes())
            .map_err(|e| RegistrationError(format!("assets decode failed, error: {e}")))?;
        self.asset_bytes += bytes.len();
        self.assets
            .entry(chunk.filename)
            .or_default()
            .extend_from_slice(&bytes);
        Ok(())
    }

    /// After `end`: the declaration assembled, icons remapped, defaults filled, checked, and the
    /// identifier from (declaration, tenant).
    pub(crate) fn finish(self) -> Result<Registered, RegistrationError> {
        let Some(tenant_id) = self.tenant_id else {
            return fail(INVALID_HANDSHAKE);
        };
        if self.providers.is_empty() {
            return fail("no registration transferred, cannot initialize");
        }
        let Some(mut decl) = self.manifest else {
            return fail(
                "register failed, invalid manifest detected: no manifest_declaration was sent",
            );
        };
        for (category, provider) in self.providers {
            if let Some(provider) = provider {
                set_provider(&mut decl, category, provider);
            }
        }
        finish_registration(decl, &self.assets, &tenant_id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn line(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).expect("json")
    }

    fn manifest() -> Value {
        json!({"type": "manifest_declaration", "data": {
            "version": "0.0.1", "type": "plugin", "author": "acme", "name": "echo",
            "label": {"en_US": "Echo"}, "description": {"en_US": "Echo"}, "icon": "icon.svg",
            "created_at": "2025-01-01T00:00:00Z", "resource": {"memory": 1},
            "plugins": {"tools": ["provider/echo.yaml"]},
            "meta": {"version": "0.0.1", "arch": ["amd64"],
                     "runner": {"language": "python", "version": "3.12", "entrypoint": "main"}}}})
    }

    fn tools() -> Value {
        json!({"type": "tool_declaration", "data": [{
            "identity": {"author": "acme", "name": "echo", "icon": "icon.svg",
                         "label": {"en_US": "Echo"}, "description": {"en_US": "Echo"}},
            "tools": [{"identity": {"author": "acme", "name": "echo", "label": {"en_US": "Echo"}},
                       "description": {"human": {"en_US": "h"}, "llm": "l"}, "parameters": []}]}]})
    }

    fn asset(data: &str, end: bool) -> Value {
        json!({"type": "asset_chunk", "data": {"filename": "icon.svg", "data": data, "end": end}})
    }

    #[test]
    fn a_full_registration_completes() {
        let mut r = Registration::default();
        let step = r
            .feed(&line(json!({"type": "handshake", "data": {"key": "k"}})))
            .expect("handshake");
        assert_eq!(step, Step::Handshake("k".into()));
        r.handshaken("tenant".into());
        for l in [
            manifest(),
            tools(),
            asset("PHN2", false),
            asset("Zy8+", true),
        ] {
            assert_eq!(r.feed(&line(l)).expect("line"), Step::More);
        }
        assert_eq!(
            r.feed(&line(json!({"type": "bogus", "data": 1})))
                .expect("ignored"),
            Step::More
        );
        assert_eq!(
            r.feed(&line(json!({"type": "end", "data": {}})))
                .expect("end"),
            Step::End
        );
        let registered = r.finish().expect("finished");
        assert_eq!(registered.uid.plugin_id(), "acme/echo");
        assert_eq!(registered.assets.len(), 1);
        assert_eq!(registered.assets[0].1, b"<svg/>");
    }

    #[test]
    fn nothing_is_accepted_before_the_handshake() {
        let mut r = Registration::default();
        let err = r.feed(&line(manifest())).expect_err("refused");
        assert!(
            err.0
                .starts_with("handshake failed, registration message before handshake"),
            "{err}"
        );
        let err = r.feed(b"garbage").expect_err("garbage");
        assert_eq!(err.0, INVALID_HANDSHAKE);
        let err = r
            .feed(&line(json!({"type": "handshake", "data": {}})))
            .expect_err("no key");
        assert_eq!(err.0, INVALID_HANDSHAKE);
    }

    #[test]
    fn repeated_or_missing_parts_are_refused() {
        let mut r = Registration::default();
        r.handshaken("t".into());
        let err = r
            .feed(&line(json!({"type": "handshake", "data": {"key": "k"}})))
            .expect_err("twice");
        assert_eq!(err.0, "handshake already completed");
        r.feed(&line(manifest())).expect("manifest");
        let err = r.feed(&line(manifest())).expect_err("twice");
        assert_eq!(err.0, "declaration already registered");
        r.feed(&line(tools())).expect("tools");
        let err = r.feed(&line(tools())).expect_err("twice");
        assert_eq!(err.0, "tools declaration already registered");
        let err = r.feed(&line(asset("!!!", true))).expect_err("bad base64");
        assert!(err.0.starts_with("assets decode failed, error:"), "{err}");

        let mut r = Registration::default();
        r.handshaken("t".into());
        r.feed(&line(manifest())).expect("manifest");
        assert_eq!(
            r.finish().expect_err("no providers").0,
            "no registration transferred, cannot initialize"
        );
    }

    #[test]
    fn assets_are_bounded() {
        let mut r = Registration::default();
        r.handshaken("t".into());
        r.asset_bytes = MAX_ASSET_BYTES - 2;
        let err = r.feed(&line(asset("PHN2", true))).expect_err("too much");
        assert_eq!(err.0, "assets too large, at most 50MB");
    }
}
