//! The typed `resource.permission` block of a manifest (PSC §1.2, plugin-protocol §4.3): what a
//! plugin may call back into Dify for. A missing block, or `enabled: false`, denies.

use serde::Deserialize;
use serde_json::Value;

use crate::PluginDeclaration;

/// A block that is only switched on or off (`tool`, `node`, `endpoint`, `app`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Switch {
    #[serde(default)]
    pub enabled: bool,
}

/// `model`: on as a whole, and per model type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ModelPermission {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub llm: bool,
    #[serde(default)]
    pub text_embedding: bool,
    #[serde(default)]
    pub rerank: bool,
    #[serde(default)]
    pub tts: bool,
    #[serde(default)]
    pub speech2text: bool,
    #[serde(default)]
    pub moderation: bool,
}

/// `storage`: on, with a quota in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct StoragePermission {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub size: u64,
}

/// The whole block. Parsed leniently: a malformed block grants nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct PluginPermission {
    #[serde(default)]
    pub tool: Option<Switch>,
    #[serde(default)]
    pub model: Option<ModelPermission>,
    #[serde(default)]
    pub node: Option<Switch>,
    #[serde(default)]
    pub endpoint: Option<Switch>,
    #[serde(default)]
    pub app: Option<Switch>,
    #[serde(default)]
    pub storage: Option<StoragePermission>,
}

/// A model type a backwards call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Llm,
    TextEmbedding,
    Rerank,
    Tts,
    Speech2Text,
    Moderation,
}

impl PluginPermission {
    pub fn from_value(value: Option<&Value>) -> PluginPermission {
        value
            .and_then(|v| PluginPermission::deserialize(v).ok())
            .unwrap_or_default()
    }

    pub fn of(decl: &PluginDeclaration) -> PluginPermission {
        PluginPermission::from_value(decl.resource.permission.as_ref())
    }

    pub fn allows_tool(&self) -> bool {
        self.tool.is_some_and(|s| s.enabled)
    }

    pub fn allows_node(&self) -> bool {
        self.node.is_some_and(|s| s.enabled)
    }

    pub fn allows_endpoint(&self) -> bool {
        self.endpoint.is_some_and(|s| s.enabled)
    }

    pub fn allows_app(&self) -> bool {
        self.app.is_some_and(|s| s.enabled)
    }

    pub fn allows_storage(&self) -> bool {
        self.storage.is_some_and(|s| s.enabled)
    }

    /// `model.enabled` and the type's own flag.
    pub fn allows_model(&self, kind: ModelKind) -> bool {
        let Some(m) = self.model.filter(|m| m.enabled) else {
            return false;
        };
        match kind {
            ModelKind::Llm => m.llm,
            ModelKind::TextEmbedding => m.text_embedding,
            ModelKind::Rerank => m.rerank,
            ModelKind::Tts => m.tts,
            ModelKind::Speech2Text => m.speech2text,
            ModelKind::Moderation => m.moderation,
        }
    }

    /// The declared storage quota, when a storage block exists.
    pub fn storage_size(&self) -> Option<u64> {
        self.storage.map(|s| s.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_or_disabled_blocks_deny() {
        let p = PluginPermission::from_value(Some(&json!({
            "tool": {"enabled": true},
            "model": {"enabled": true, "llm": true, "rerank": false},
            "app": {"enabled": false},
            "storage": {"enabled": true, "size": 2048}
        })));
        assert!(p.allows_tool());
        assert!(p.allows_model(ModelKind::Llm));
        assert!(!p.allows_model(ModelKind::Rerank));
        assert!(!p.allows_model(ModelKind::Tts));
        assert!(!p.allows_app());
        assert!(!p.allows_node());
        assert!(p.allows_storage());
        assert_eq!(p.storage_size(), Some(2048));

        let off =
            PluginPermission::from_value(Some(&json!({"model": {"enabled": false, "llm": true}})));
        assert!(!off.allows_model(ModelKind::Llm));
        assert_eq!(
            PluginPermission::from_value(None),
            PluginPermission::default()
        );
        assert_eq!(
            PluginPermission::from_value(Some(&json!("nonsense"))),
            PluginPermission::default()
        );
    }
}
