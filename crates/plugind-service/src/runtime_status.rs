//! What operators see of running plugins: readiness, per-plugin runtime statuses and the
//! lifecycle event stream, scoped to a tenant.
//!
//! Scope: with a `plugin_id`, every runtime of that plugin id (so an install can be watched
//! before its installation row exists); without, the runtimes of the tenant's installations.

use std::collections::HashSet;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use plugind_entities::{DaemonError, PluginUniqueIdentifier};
use plugind_runtime::{LifecycleEvent, PluginStatus, Readiness};
use tokio::sync::broadcast::error::RecvError;

use crate::state::{internal, Services};

/// Installations read for a tenant-wide view.
const TENANT_VIEW_LIMIT: i64 = 10_000;

/// Which runtimes a view shows.
enum Scope {
    PluginId(String),
    Uids(HashSet<PluginUniqueIdentifier>),
}

impl Scope {
    fn contains(&self, uid: &PluginUniqueIdentifier) -> bool {
        match self {
            Scope::PluginId(plugin_id) => uid.plugin_id() == plugin_id,
            Scope::Uids(uids) => uids.contains(uid),
        }
    }
}

impl Services {
    /// Ready when every installed plugin runs or has failed for a reason (start-up restore done).
    pub fn readiness(&self) -> Readiness {
        self.inner.runtimes.readiness()
    }

    async fn scope(&self, tenant_id: &str, plugin_id: Option<&str>) -> Result<Scope, DaemonError> {
        if let Some(plugin_id) = plugin_id.filter(|p| !p.is_empty()) {
            return Ok(Scope::PluginId(plugin_id.to_owned()));
        }
        let (installations, _) = self
            .inner
            .db
            .list_installations(tenant_id, 1, TENANT_VIEW_LIMIT)
            .await
            .map_err(internal)?;
        Ok(Scope::Uids(
            installations
                .iter()
                .filter_map(|i| PluginUniqueIdentifier::parse(&i.plugin_unique_identifier).ok())
                .collect(),
        ))
    }

    /// Runtime statuses in scope, sorted by identifier.
    pub async fn runtime_statuses(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
    ) -> Result<Vec<PluginStatus>, DaemonError> {
        let scope = self.scope(tenant_id, plugin_id).await?;
        Ok(self
            .inner
            .runtimes
            .statuses()
            .into_iter()
            .filter(|s| scope.contains(&s.plugin_unique_identifier))
            .collect())
    }

    /// Lifecycle events in scope from now on. A reader that falls behind skips events (it never
    /// slows a plugin); the stream ends when the daemon starts shutting down.
    pub async fn lifecycle_events(
        &self,
        tenant_id: &str,
        plugin_id: Option<&str>,
    ) -> Result<BoxStream<'static, Arc<LifecycleEvent>>, DaemonError> {
        let scope = self.scope(tenant_id, plugin_id).await?;
        let rx = self.inner.runtimes.lifecycle().subscribe();
        let events = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "lifecycle event stream fell behind");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        Ok(events
            .filter(move |event| {
                std::future::ready(scope.contains(&event.plugin_unique_identifier))
            })
            .take_until(self.inner.interrupted.clone().cancelled_owned())
            .boxed())
    }
}
