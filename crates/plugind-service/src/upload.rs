//! Upload of a `.difypkg` (PSC §4.2) or a `.difybndl` (PSC §3.2): decode, verify, then store
//! package objects, assets and declaration rows.
//!
//! Upload never installs anything; it makes a uid "known". **Invariant:** on any failure nothing
//! the call wrote is left behind — every write is recorded in a [`Receipt`] and undone.

use plugind_entities::management::DecodedPackage;
use plugind_entities::DaemonError;
use plugind_package::{DecodeOptions, Dependency, Package};
use serde_json::{json, Value};

use crate::Services;

/// A decoded package that passed every check, ready to persist.
struct Prepared {
    package: Package,
    bytes: Vec<u8>,
}

/// What one persist wrote, so that it can be undone.
struct Receipt {
    package_key: String,
    previous_package: Option<Vec<u8>>,
    assets: Vec<String>,
    declaration_uid: Option<String>,
}

const BAD_SIGNATURE: &str =
    "plugin verification has been enabled, and the plugin you want to install has a bad signature";
const UNAUTHORIZED_LANGGENIUS: &str = "\n\tplugin installation blocked: this plugin claims to be from Langgenius but lacks official signature verification.\n\tSet ENFORCE_LANGGENIUS_PLUGIN_SIGNATURES=false to allow installation (not recommended)";

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
    ) -> Result<(Package, Vec<u8>), DaemonError> {
        let opts = self.decode_options();
        tokio::task::spawn_blocking(move || {
            plugind_package::decode(&bytes, &opts).map(|p| (p, bytes))
        })
        .await
        .map_err(|e| DaemonError::internal(format!("decoder task failed: {e}")))?
        .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to decode package")))
    }

    /// `POST …/install/upload/package`.
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
        let prepared = self.prepare(bytes, verify_signature, false).await?;
        let (decoded, _receipt) = self
            .persist(prepared)
            .await
            .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to save package")))?;
        Ok(decoded)
    }

    /// `POST …/install/upload/bundle`: every `package` dependency is checked first; only if all
    /// pass are they stored, and a failure while storing undoes the ones already stored.
    pub async fn upload_bundle(
        &self,
        bytes: Vec<u8>,
        verify_signature: bool,
    ) -> Result<Vec<Value>, DaemonError> {
        if bytes.len() as u64 > self.inner.cfg.max_bundle_package_size {
            return Err(DaemonError::bad_request(
                "file size exceeds the maximum limit",
            ));
        }
        let bundle = tokio::task::spawn_blocking(move || plugind_package::decode_bundle(&bytes))
            .await
            .map_err(|e| DaemonError::internal(format!("decoder task failed: {e}")))?
            .map_err(|e| DaemonError::bad_request(format!("{e}\nfailed to decode bundle")))?;

        enum Item {
            Echo(Value),
            Package(Box<Prepared>),
        }
        let mut items = Vec::new();
        for dependency in &bundle.manifest.dependencies {
            match dependency {
                Dependency::Github(github) => {
                    items.push(Item::Echo(
                        json!({"type": "github", "value": github.parts()}),
                    ));
                }
                Dependency::Marketplace(market) => {
                    items.push(Item::Echo(
                        json!({"type": "marketplace", "value": market.parts()}),
                    ));
                }
                Dependency::Package(package) => {
                    let bytes = bundle
                        .asset(&package.path)
                        .ok_or_else(|| {
                            DaemonError::bad_request(format!(
                                "{} not found\nfailed to fetch package from bundle",
                                package.path
                            ))
                        })?
                        .to_vec();
                    items.push(Item::Package(Box::new(
                        self.prepare(bytes, verify_signature, true).await?,
                    )));
                }
                Dependency::Unknown(_) => {}
            }
        }

        let mut receipts = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Item::Echo(value) => out.push(value),
                Item::Package(prepared) => match self.persist(*prepared).await {
                    Ok((decoded, receipt)) => {
                        receipts.push(receipt);
                        out.push(json!({"type": "package", "value": {
                            "unique_identifier": decoded.unique_identifier,
                            "manifest": decoded.manifest,
                        }}));
                    }
                    Err(err) => {
                        for receipt in receipts.into_iter().rev() {
                            self.undo(receipt).await;
                        }
                        return Err(DaemonError::internal(format!(
                            "{err}\nfailed to save package"
                        )));
                    }
                },
            }
        }
        Ok(out)
    }

    /// Decode and every check that needs no writes (PSC §4.2 steps 2–5).
    async fn prepare(
        &self,
        bytes: Vec<u8>,
        verify_signature: bool,
        in_bundle: bool,
    ) -> Result<Prepared, DaemonError> {
        let (package, bytes) = self.decode_package(bytes).await?;
        if package.uid.is_remote_like() {
            return Err(DaemonError::bad_request("cannot set author to an UUID"));
        }
        self.check_signature_policy(&package, verify_signature)?;
        // Upstream enforces the Langgenius rule for packages inside bundles only.
        if in_bundle
            && self.inner.cfg.enforce_langgenius_signatures
            && claims_langgenius_unsigned(&package)
        {
            return Err(DaemonError::bad_request(UNAUTHORIZED_LANGGENIUS));
        }
        Ok(Prepared { package, bytes })
    }

    /// Signature policy (PSC §2.5): when verification is enforced, an unverified package is
    /// refused unless `PLUGIN_ALLOW_UNSIGNED` names it.
    pub(crate) fn check_signature_policy(
        &self,
        package: &Package,
        verify_signature: bool,
    ) -> Result<(), DaemonError> {
        if package.verified || !(self.inner.cfg.force_verifying_signature || verify_signature) {
            return Ok(());
        }
        let plugin_id = package.uid.plugin_id();
        if self
            .inner
            .cfg
            .unsigned_allowlist
            .iter()
            .any(|a| a.matches(plugin_id, &package.checksum))
        {
            tracing::info!(uid = %package.uid, "accepting an unsigned package: allowed by PLUGIN_ALLOW_UNSIGNED");
            return Ok(());
        }
        Err(DaemonError::bad_request(BAD_SIGNATURE))
    }

    /// Stores assets, the package object and the declaration row; on error undoes its own writes.
    async fn persist(&self, prepared: Prepared) -> Result<(DecodedPackage, Receipt), String> {
        let Prepared { mut package, bytes } = prepared;
        let uid = package.uid.to_string();
        let assets = plugind_package::remap_icons(&mut package.declaration, &package.assets)
            .map_err(|e| e.to_string())?;
        let blobs = &self.inner.blobs;
        let package_key = self.package_key(&uid);
        let mut receipt = Receipt {
            previous_package: blobs.load(&package_key).await.map_err(|e| e.to_string())?,
            package_key,
            assets: Vec::new(),
            declaration_uid: None,
        };
        let written: Result<(), String> = async {
            for (id, content) in assets {
                let key = format!("{}/{}", self.inner.cfg.media_cache_path, id);
                if !blobs.exists(&key).await.map_err(|e| e.to_string())? {
                    blobs.save(&key, content).await.map_err(|e| e.to_string())?;
                    receipt.assets.push(key);
                }
            }
            blobs
                .save(&receipt.package_key, bytes)
                .await
                .map_err(|e| e.to_string())?;
            let declaration = &package.declaration;
            if self
                .inner
                .db
                .insert_declaration_if_absent(&uid, &declaration.plugin_id(), declaration)
                .await
                .map_err(|e| e.to_string())?
            {
                receipt.declaration_uid = Some(uid.clone());
            }
            Ok(())
        }
        .await;
        if let Err(err) = written {
            self.undo(receipt).await;
            return Err(err);
        }
        // The first upload of a uid wins (its `verified` is sticky, PSC §4.2).
        let manifest = match self.inner.db.get_declaration(&uid).await {
            Ok(Some(stored)) => stored,
            _ => package.declaration,
        };
        Ok((
            DecodedPackage {
                manifest,
                unique_identifier: uid,
                verification: package.verification,
            },
            receipt,
        ))
    }

    async fn undo(&self, receipt: Receipt) {
        let blobs = &self.inner.blobs;
        for key in &receipt.assets {
            if let Err(err) = blobs.delete(key).await {
                tracing::warn!(%key, error = %err, "could not roll back an asset");
            }
        }
        let restored = match receipt.previous_package {
            Some(old) => blobs.save(&receipt.package_key, old).await,
            None => blobs.delete(&receipt.package_key).await,
        };
        if let Err(err) = restored {
            tracing::warn!(key = %receipt.package_key, error = %err, "could not roll back a package object");
        }
        if let Some(uid) = receipt.declaration_uid {
            if let Err(err) = self.inner.db.delete_declaration(&uid).await {
                tracing::warn!(%uid, error = %err, "could not roll back a declaration row");
            }
        }
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

/// `lower(author) == "langgenius"` without an official (`langgenius`) verification (PSC §2.5).
fn claims_langgenius_unsigned(package: &Package) -> bool {
    package.declaration.author.to_lowercase() == "langgenius"
        && package
            .verification
            .as_ref()
            .is_none_or(|v| v.authorized_category != "langgenius")
}
