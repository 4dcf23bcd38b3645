//! Assets (PSC §1.11, §6.3): icons by asset id, and raw files from a stored package's `_assets/`.

use plugind_entities::{DaemonError, PluginUniqueIdentifier};

use crate::Services;

impl Services {
    /// `GET /plugin/{tenant}/asset/{id}`: the bytes, or `None` when there is no such asset.
    pub async fn asset(&self, id: &str) -> Result<Option<Vec<u8>>, DaemonError> {
        if id.is_empty() || id.contains('/') || id.contains("..") {
            return Ok(None);
        }
        let key = format!("{}/{}", self.inner.cfg.media_cache_path, id);
        self.inner
            .blobs
            .load(&key)
            .await
            .map_err(|e| DaemonError::internal(e.to_string()))
    }

    /// `GET /plugin/{tenant}/extract-asset/`: `_assets/<file_path>` of a stored package; `None`
    /// when the package has no such file, an error when the package itself is missing.
    pub async fn extract_asset(
        &self,
        uid: &str,
        file_path: &str,
    ) -> Result<Option<Vec<u8>>, DaemonError> {
        let uid = PluginUniqueIdentifier::parse(uid)
            .map_err(|e| DaemonError::bad_request(e.to_string()))?;
        let bytes = self
            .load_package(uid.as_str(), false)
            .await
            .map_err(DaemonError::internal)?;
        let name = format!("_assets/{}", file_path.trim_start_matches('/'));
        Ok(
            tokio::task::spawn_blocking(move || plugind_package::read_file(&bytes, &name).ok())
                .await
                .map_err(|e| DaemonError::internal(e.to_string()))?,
        )
    }
}
