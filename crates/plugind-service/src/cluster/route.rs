//! Which node serves a dispatch (http-api §6.2–6.3): this one when the uid's runtime is here
//! (running or starting), else the first live node whose registry entry lists it.

use plugind_entities::{DaemonError, PluginUniqueIdentifier};

use super::{lock, registry};
use crate::dispatch::EarlyError;
use crate::Services;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Serve here (also when no node serves it: the local dispatch answers "no available node").
    Local,
    /// Forward to `base_url` (`http://<ip>:<port>`) of node `node_id`.
    Forward { node_id: String, base_url: String },
}

/// Header a forwarding node adds; a request carrying it is never forwarded again.
pub const FORWARDED_HEADER: &str = "X-Plugind-Forwarded-By";

impl Services {
    /// The route of a tenant dispatch (`X-Plugin-ID`). Errors are the dispatch's own early
    /// errors (missing plugin id, no installation).
    pub async fn route_installed(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
    ) -> Result<Route, EarlyError> {
        if self.cluster().is_none() {
            return Ok(Route::Local);
        }
        let uid = self.installed_uid(tenant_id, plugin_id).await?;
        self.route_uid(&uid).await
    }

    /// The route of a dispatch to `uid` (direct `/v2/invoke` and `/e/` hooks).
    pub async fn route_uid(&self, uid: &PluginUniqueIdentifier) -> Result<Route, EarlyError> {
        let Some(cluster) = self.cluster() else {
            return Ok(Route::Local);
        };
        if self.runtimes().get(uid).is_some() {
            return Ok(Route::Local);
        }
        let nodes = registry::nodes_serving(&cluster.inner, uid.as_str())
            .await
            .map_err(|e| {
                (
                    500,
                    DaemonError::internal(format!(
                        "failed to fetch plugin available nodes, plugin runtime not found, {e}"
                    )),
                )
            })?;
        let live = lock(&cluster.inner.live);
        for node_id in nodes {
            if let Some(base_url) = live.get(&node_id).and_then(|r| r.best_address()) {
                return Ok(Route::Forward { node_id, base_url });
            }
        }
        Ok(Route::Local)
    }
}
