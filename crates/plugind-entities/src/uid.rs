//! The plugin unique identifier `author/name:version@checksum` (PSC §1.10).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("plugin_unique_identifier is not valid: {0}")]
pub struct UidError(pub String);

/// A validated unique identifier. Accessors split the string the way upstream does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PluginUniqueIdentifier(String);

impl PluginUniqueIdentifier {
    pub fn parse(s: &str) -> Result<Self, UidError> {
        if crate::naming::is_unique_identifier(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(UidError(s.to_owned()))
        }
    }

    /// Builds `author/name:version@checksum` (author omitted when empty) and validates it.
    pub fn build(
        author: &str,
        name: &str,
        version: &str,
        checksum: &str,
    ) -> Result<Self, UidError> {
        let s = if author.is_empty() {
            format!("{name}:{version}@{checksum}")
        } else {
            format!("{author}/{name}:{version}@{checksum}")
        };
        Self::parse(&s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `author/name` (or `name` when the author is omitted).
    pub fn plugin_id(&self) -> &str {
        self.0.split_once(':').map_or(self.0.as_str(), |(id, _)| id)
    }

    pub fn version(&self) -> &str {
        let before_at = self.0.split_once('@').map_or(self.0.as_str(), |(a, _)| a);
        before_at.split_once(':').map_or("", |(_, v)| v)
    }

    pub fn author(&self) -> &str {
        self.plugin_id().split_once('/').map_or("", |(a, _)| a)
    }

    pub fn name(&self) -> &str {
        let id = self.plugin_id();
        id.split_once('/').map_or(id, |(_, n)| n)
    }

    pub fn checksum(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, c)| c)
    }

    /// True when the author parses as a UUID: such identifiers belong to remote-debugging plugins.
    pub fn is_remote_like(&self) -> bool {
        uuid::Uuid::parse_str(self.author()).is_ok()
    }

    /// Directory name of the working directory: `author/name-version@checksum` (PSC §6.5).
    pub fn working_dir_name(&self) -> String {
        format!(
            "{}-{}@{}",
            self.plugin_id(),
            self.version(),
            self.checksum()
        )
    }
}

impl fmt::Display for PluginUniqueIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PluginUniqueIdentifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_split_like_upstream() {
        let uid = PluginUniqueIdentifier::parse(
            "langgenius/agent:0.0.14@26958a0e80a10655ce73812bdb7c35a66ce7b16f5ac346d298bda17ff85efd1e",
        )
        .expect("valid");
        assert_eq!(uid.plugin_id(), "langgenius/agent");
        assert_eq!(uid.author(), "langgenius");
        assert_eq!(uid.name(), "agent");
        assert_eq!(uid.version(), "0.0.14");
        assert!(uid.checksum().starts_with("26958a0e"));
        assert!(!uid.is_remote_like());
        assert_eq!(
            uid.working_dir_name(),
            "langgenius/agent-0.0.14@26958a0e80a10655ce73812bdb7c35a66ce7b16f5ac346d298bda17ff85efd1e"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "a/b:1.0.0",
            "a/b:1.0.0@abc",
            "a/:1.0.0@0123456789abcdef0123456789abcdef",
            "A/b:1.0.0@0123456789abcdef0123456789abcdef",
        ] {
            assert!(PluginUniqueIdentifier::parse(bad).is_err(), "{bad}");
        }
        let ok = PluginUniqueIdentifier::parse("test:1.0.0.0@0123456789abcdef0123456789abcdef")
            .expect("valid");
        assert_eq!(ok.plugin_id(), "test");
        assert_eq!(ok.author(), "");
    }
}
