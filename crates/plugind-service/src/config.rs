//! Settings the services read. The binary fills this from upstream's environment variables.

use std::time::Duration;

use plugind_entities::naming;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// `MAX_PLUGIN_PACKAGE_SIZE`.
    pub max_plugin_package_size: u64,
    /// `MAX_BUNDLE_PACKAGE_SIZE`.
    pub max_bundle_package_size: u64,
    /// `ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES` (applies to packages inside bundles, as upstream).
    pub enforce_langgenius_signatures: bool,
    /// `FORCE_VERIFYING_SIGNATURE`.
    pub force_verifying_signature: bool,
    /// Third-party public keys (`THIRD_PARTY_SIGNATURE_VERIFICATION_*`).
    pub third_party_keys: Vec<rsa::RsaPublicKey>,
    /// `PLUGIN_MAX_EXECUTION_TIMEOUT`: deadline of one dispatch stream.
    pub max_execution_timeout: Duration,
    /// `PLUGIN_INSTALL_TIMEOUT`: deadline of one install job.
    pub install_timeout: Duration,
    /// `PLUGIN_PACKAGE_CACHE_PATH`: object-storage prefix of uploaded packages.
    pub package_cache_path: String,
    /// `PLUGIN_INSTALLED_PATH`: object-storage prefix of installed packages.
    pub installed_path: String,
    /// `PLUGIN_MEDIA_CACHE_PATH`: object-storage prefix of assets.
    pub media_cache_path: String,
    /// `PLATFORM`.
    pub platform: String,
    /// `PLUGIN_ALLOW_UNSIGNED`: plugins accepted without a valid signature even when
    /// verification is enforced (ours, in the spirit of Grafana's
    /// `allow_loading_unsigned_plugins`).
    pub unsigned_allowlist: Vec<UnsignedAllowed>,
    /// The client of Dify's inner API (`DIFY_INNER_API_URL`/`DIFY_INNER_API_KEY`); without it
    /// every backwards call to Dify fails.
    pub inner_api: Option<plugind_dify::InnerApi>,
    /// `PERSISTENCE_STORAGE_PATH`: object-storage prefix of the plugins' key–value storage.
    pub persistence_storage_path: String,
    /// `PERSISTENCE_STORAGE_MAX_SIZE`: bytes one plugin may store per tenant, whatever its
    /// manifest declares.
    pub persistence_max_size: u64,
}

/// One entry of `PLUGIN_ALLOW_UNSIGNED`: `author/name`, optionally pinned as
/// `author/name@<checksum>` to exactly one build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsignedAllowed {
    pub plugin_id: String,
    pub checksum: Option<String>,
}

impl UnsignedAllowed {
    pub fn matches(&self, plugin_id: &str, checksum: &str) -> bool {
        self.plugin_id == plugin_id && self.checksum.as_deref().is_none_or(|c| c == checksum)
    }
}

/// Parses `PLUGIN_ALLOW_UNSIGNED`: comma-separated `author/name[@checksum]`.
pub fn parse_unsigned_allowlist(value: &str) -> Result<Vec<UnsignedAllowed>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (plugin_id, checksum) = match entry.split_once('@') {
                Some((p, c)) => (p, Some(c)),
                None => (entry, None),
            };
            if !naming::is_plugin_id(plugin_id)
                || checksum.is_some_and(|c| !naming::is_checksum(c))
            {
                return Err(format!(
                    "PLUGIN_ALLOW_UNSIGNED entry {entry:?} is not `author/name` or `author/name@<checksum>`"
                ));
            }
            Ok(UnsignedAllowed { plugin_id: plugin_id.to_owned(), checksum: checksum.map(str::to_owned) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parsing_and_matching() {
        let list =
            parse_unsigned_allowlist(" acme/tool , acme/pinned@0123456789abcdef0123456789abcdef ,")
                .expect("valid");
        assert_eq!(list.len(), 2);
        assert!(list[0].matches("acme/tool", "anything"));
        assert!(list[1].matches("acme/pinned", "0123456789abcdef0123456789abcdef"));
        assert!(!list[1].matches("acme/pinned", "ffffffffffffffffffffffffffffffff"));
        assert!(!list[0].matches("acme/other", "x"));
        assert!(parse_unsigned_allowlist("Acme/Tool").is_err());
        assert!(parse_unsigned_allowlist("acme/tool@xyz").is_err());
        assert!(parse_unsigned_allowlist("").expect("empty").is_empty());
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_plugin_package_size: 52_428_800,
            max_bundle_package_size: 629_145_600,
            enforce_langgenius_signatures: true,
            force_verifying_signature: true,
            third_party_keys: Vec::new(),
            max_execution_timeout: Duration::from_secs(600),
            install_timeout: Duration::from_secs(15 * 60),
            package_cache_path: "plugin_packages".into(),
            installed_path: "plugin".into(),
            media_cache_path: "assets".into(),
            platform: "local".into(),
            unsigned_allowlist: Vec::new(),
            inner_api: None,
            persistence_storage_path: "persistence".into(),
            persistence_max_size: 104_857_600,
        }
    }
}
