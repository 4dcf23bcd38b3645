//! Assets (PSC §1.11, §6.3): icons by asset id, and raw files from a stored package's `_assets/`.

use plugind_entities::{DaemonError, PluginUniqueIdentifier};

use crate::Services;

impl Services {
    /// `GET /plugin/{tenant}/asset/{id}`: the bytes, or `None` when there is no such asset (an id
    /// that cannot name one, such as a 5,000-character one, is simply not there). Storage errors
    /// are logged and answered with a short text that names no path.
    pub async fn asset(&self, id: &str) -> Result<Option<Vec<u8>>, DaemonError> {
        if !is_asset_id(id) {
            return Ok(None);
        }
        let key = format!("{}/{}", self.inner.cfg.media_cache_path, id);
        self.inner.blobs.load(&key).await.map_err(|err| {
            tracing::warn!(asset = id, error = %err, "reading an asset failed");
            DaemonError::internal("failed to read the asset")
        })
    }

    /// `GET /plugin/{tenant}/extract-asset/`: `_assets/<file_path>` of a stored package; `None`
    /// when the package has no such file, an error when the package itself is missing.
    /// Storage errors are logged and answered with a short text that names no path.
    pub async fn extract_asset(
        &self,
        uid: &PluginUniqueIdentifier,
        file_path: &str,
    ) -> Result<Option<Vec<u8>>, DaemonError> {
        let bytes = self
            .load_package(uid.as_str(), false)
            .await
            .map_err(|err| {
                tracing::warn!(%uid, error = %err, "reading a stored package failed");
                DaemonError::internal(format!("failed to read the package of {uid}"))
            })?;
        let name = format!("_assets/{}", file_path.trim_start_matches('/'));
        tokio::task::spawn_blocking(move || plugind_package::read_file(&bytes, &name).ok())
            .await
            .map_err(|e| DaemonError::internal(e.to_string()))
    }
}

/// Asset ids are content-addressed file names (`<sha256 hex>.<ext>`, PSC §6.3): one path segment
/// of at most 255 bytes made of ASCII letters, digits, `.`, `_` and `-`, not starting with `.`.
fn is_asset_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::is_asset_id;

    #[test]
    fn asset_ids_are_single_short_names() {
        assert!(is_asset_id(
            "0f6a4c1e2b3d4e5f8a9b0c1d2e3f4a5b0f6a4c1e2b3d4e5f8a9b0c1d2e3f4a5b.svg"
        ));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "\u{e9}.svg"] {
            assert!(!is_asset_id(bad), "{bad:?}");
        }
        assert!(!is_asset_id(&"a".repeat(5000)));
    }
}
