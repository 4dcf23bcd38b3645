//! Upload of a `.difypkg` (PSC §4.2): decode, verify, store package, assets and declaration.
//!
//! Upload never installs anything; it makes a uid "known". On any failure nothing this call
//! wrote is left behind.

use plugind_entities::{DaemonError, PluginDeclaration};
use plugind_package::{DecodeOptions, Verification};
use serde::Serialize;

use crate::Services;

/// What upload and decode return to Dify.
#[derive(Debug, Serialize)]
pub struct DecodedPackage {
    pub manifest: PluginDeclaration,
    pub unique_identifier: String,
    pub verification: Option<Verification>,
}

impl Services {
    pub(crate) fn decode_options(&self) -> DecodeOptions {
        DecodeOptions {
            max_uncompressed_size: self.inner.cfg.max_plugin_package_size,
            public_keys: self.inner.cfg.third_party_keys.clone(),
        }
    }

    /// Decodes `bytes` off the async threads (zip + YAML + RSA is CPU work).
    pub(crate) async fn decode_package(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(plugind_package::Package, Vec<u8>), DaemonError> {
        let opts = self.decode_options();
        tokio::task::spawn_blocking(move || {
            plugind_package::decode(&bytes, &opts).map(|p| (p, bytes))
        })
        .await
        .map_err(|e| DaemonError::internal(format!("decoder task failed: {e}")))?
        .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to decode package")))
    }

    pub async fn upload_package(
        &self,
        bytes: Vec<u8>,
        verify_signature: bool,
    ) -> Result<DecodedPackage, DaemonError> {
        if bytes.len() as u64 > self.inner.cfg.max_plugin_package_size {
            return Err(DaemonError::bad_request(
                "file size exceeds the maximum limit",
            ));
        }
        let (mut package, bytes) = self.decode_package(bytes).await?;
        if package.uid.is_remote_like() {
            return Err(DaemonError::bad_request("cannot set author to an UUID"));
        }
        self.check_signature_policy(&package, verify_signature)?;
        let uid = package.uid.to_string();
        let assets = plugind_package::remap_icons(&mut package.declaration, &package.assets)
            .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to save package")))?;

        self.persist(&uid, &package.declaration, assets, bytes)
            .await
            .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to save package")))?;

        let manifest = match self.inner.db.get_declaration(&uid).await {
            Ok(Some(stored)) => stored,
            _ => package.declaration,
        };
        Ok(DecodedPackage {
            manifest,
            unique_identifier: uid,
            verification: package.verification,
        })
    }

    /// Signature policy (PSC §2.5): when verification is enforced, an unverified package is
    /// refused unless `PLUGIN_ALLOW_UNSIGNED` names it.
    pub(crate) fn check_signature_policy(
        &self,
        package: &plugind_package::Package,
        verify_signature: bool,
    ) -> Result<(), DaemonError> {
        if package.verified || !(self.inner.cfg.force_verifying_signature || verify_signature) {
            return Ok(());
        }
        let plugin_id = package.uid.plugin_id();
        if self.inner.cfg.unsigned_allowlist.iter().any(|a| a.matches(plugin_id, &package.checksum)) {
            tracing::info!(uid = %package.uid, "accepting an unsigned package: allowed by PLUGIN_ALLOW_UNSIGNED");
            return Ok(());
        }
        Err(DaemonError::bad_request(
            "plugin verification has been enabled, and the plugin you want to install has a bad signature",
        ))
    }

    /// Writes assets, the package object and the declaration row; undoes its own writes on error.
    async fn persist(
        &self,
        uid: &str,
        declaration: &PluginDeclaration,
        assets: Vec<(String, Vec<u8>)>,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        let blobs = &self.inner.blobs;
        let package_key = self.package_key(uid);
        let previous = blobs.load(&package_key).await.map_err(|e| e.to_string())?;
        let mut written_assets = Vec::new();
        let result: Result<(), String> = async {
            for (id, content) in assets {
                let key = format!("{}/{}", self.inner.cfg.media_cache_path, id);
                if !blobs.exists(&key).await.map_err(|e| e.to_string())? {
                    blobs.save(&key, content).await.map_err(|e| e.to_string())?;
                    written_assets.push(key);
                }
            }
            blobs
                .save(&package_key, bytes)
                .await
                .map_err(|e| e.to_string())?;
            self.inner
                .db
                .insert_declaration_if_absent(uid, &declaration.plugin_id(), declaration)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        if result.is_err() {
            for key in written_assets {
                let _ = blobs.delete(&key).await;
            }
            let _ = match previous {
                Some(old) => blobs.save(&package_key, old).await,
                None => blobs.delete(&package_key).await,
            };
        }
        result
    }

    /// `GET …/decode/from_identifier`: decode the stored package again.
    pub async fn decode_from_identifier(&self, uid: &str) -> Result<DecodedPackage, DaemonError> {
        let bytes = self
            .inner
            .blobs
            .load(&self.package_key(uid))
            .await
            .map_err(|e| DaemonError::bad_request(e.to_string()))?
            .ok_or_else(|| DaemonError::bad_request(format!("package {uid} not found")))?;
        let (package, _) = self.decode_package(bytes).await?;
        Ok(DecodedPackage {
            manifest: package.declaration,
            unique_identifier: package.uid.to_string(),
            verification: package.verification,
        })
    }
}
