//! Package assets (`_assets/**`) and icon remapping (PSC §1.11, §6.3): icon file names in the
//! declaration are replaced by content-addressed asset ids.

use std::collections::BTreeMap;

use plugind_entities::PluginDeclaration;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::archive::{is_dir_entry, Archive};
use crate::error::PackageError;

const ASSETS_PREFIX: &str = "_assets/";
const LANGS: [&str; 4] = ["en_US", "zh_Hans", "ja_JP", "pt_BR"];

/// Asset id: lowercase hex `sha256(bytes ‖ name)` plus the extension of `name` (Go
/// `filepath.Ext`: from the last dot of the last path element, empty when there is none).
pub fn asset_id(name: &str, bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(name.as_bytes());
    format!("{}{}", hex::encode(h.finalize()), extension(name))
}

fn extension(name: &str) -> &str {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.rfind('.').map_or("", |i| &base[i..])
}

/// Every file entry under `_assets/`, keyed by its name without the prefix.
pub(crate) fn collect_assets(
    archive: &mut Archive<'_>,
) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let mut out = BTreeMap::new();
    for (i, name) in archive.names().into_iter().enumerate() {
        let Some(stripped) = name.strip_prefix(ASSETS_PREFIX) else {
            continue;
        };
        if stripped.is_empty() || is_dir_entry(&name) || out.contains_key(stripped) {
            continue;
        }
        let bytes = archive.read_index(i)?;
        out.insert(stripped.to_owned(), bytes);
    }
    Ok(out)
}

struct Remapper<'a> {
    assets: &'a BTreeMap<String, Vec<u8>>,
    out: Vec<(String, Vec<u8>)>,
}

impl Remapper<'_> {
    /// Returns the asset id for `name`, recording the file once.
    fn map(&mut self, name: &str) -> Result<String, PackageError> {
        let bytes = self
            .assets
            .get(name)
            .ok_or_else(|| PackageError::FileNotFound(name.to_owned()))?;
        let id = asset_id(name, bytes);
        if !self.out.iter().any(|(existing, _)| existing == &id) {
            self.out.push((id.clone(), bytes.clone()));
        }
        Ok(id)
    }

    fn field(&mut self, s: &mut String) -> Result<(), PackageError> {
        if !s.is_empty() {
            *s = self.map(s)?;
        }
        Ok(())
    }

    /// Remaps `obj[key]` when it is a non-empty string.
    fn json_field(&mut self, obj: Option<&mut Value>, key: &str) -> Result<(), PackageError> {
        let Some(Value::String(s)) = obj.and_then(|o| o.get_mut(key)) else {
            return Ok(());
        };
        self.field(s)
    }
}

/// Replaces icon file names with asset ids: plugin `icon`/`icon_dark`; tool, agent-strategy and
/// trigger provider `identity.icon`/`icon_dark`; datasource provider `identity.icon` and each
/// datasource `identity.icon`; model `icon_small`/`icon_large`(`_dark`) per language. Returns the
/// referenced assets as `(asset id, bytes)`, each once. A missing file → `file not found: <name>`.
pub fn remap_icons(
    decl: &mut PluginDeclaration,
    assets: &BTreeMap<String, Vec<u8>>,
) -> Result<Vec<(String, Vec<u8>)>, PackageError> {
    let mut r = Remapper {
        assets,
        out: Vec::new(),
    };
    r.field(&mut decl.icon)?;
    r.field(&mut decl.icon_dark)?;
    for provider in [
        decl.tool.as_mut(),
        decl.agent_strategy.as_mut(),
        decl.trigger.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        let identity = provider.get_mut("identity");
        if let Some(identity) = identity {
            r.json_field(Some(identity), "icon")?;
            r.json_field(Some(identity), "icon_dark")?;
        }
    }
    if let Some(ds) = decl.datasource.as_mut() {
        r.json_field(ds.get_mut("identity"), "icon")?;
        if let Some(Value::Array(items)) = ds.get_mut("datasources") {
            for item in items {
                r.json_field(item.get_mut("identity"), "icon")?;
            }
        }
    }
    if let Some(model) = decl.model.as_mut() {
        for key in [
            "icon_small",
            "icon_large",
            "icon_small_dark",
            "icon_large_dark",
        ] {
            for lang in LANGS {
                r.json_field(model.get_mut(key), lang)?;
            }
        }
    }
    Ok(r.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_like_go() {
        assert_eq!(extension("icon.svg"), ".svg");
        assert_eq!(extension("a.b/c"), "");
        assert_eq!(extension("sub/x.tar.gz"), ".gz");
        assert_eq!(extension("noext"), "");
    }
}
