//! Settings the services read. The binary fills this from upstream's environment variables.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// `MAX_PLUGIN_PACKAGE_SIZE`.
    pub max_plugin_package_size: u64,
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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_plugin_package_size: 52_428_800,
            force_verifying_signature: true,
            third_party_keys: Vec::new(),
            max_execution_timeout: Duration::from_secs(600),
            install_timeout: Duration::from_secs(15 * 60),
            package_cache_path: "plugin_packages".into(),
            installed_path: "plugin".into(),
            media_cache_path: "assets".into(),
            platform: "local".into(),
        }
    }
}
