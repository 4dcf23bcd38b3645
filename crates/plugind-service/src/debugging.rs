//! Remote debugging, the daemon's side (plugin-protocol §5.2, §5.4 step 8, §5.6; http-api §4.7;
//! PSC §4.10): debugging keys, and installing for its tenant a plugin that registered over the
//! debugging listener (and uninstalling it when it goes). The listener and the connection are
//! the runtime crate's; it reaches this module through [`DebuggingHost`]. Dispatch never asks
//! which kind of runtime serves a plugin: a registered debugging plugin is in the registry like
//! any other.
//!
//! Keys live behind [`DebuggingKeys`]. [`MemoryDebuggingKeys`] keeps them in the process (the
//! embedded default, single node). A Redis store shared with other nodes would use upstream's
//! names and values (PSC §7.3), with the hash tag so both keys land in one slot:
//! `{remote:key:manager}:id2key:<tenant_id>` → CBOR `{"key":"<uuid>"}` and
//! `{remote:key:manager}:key2id:<key>` → CBOR `{"tenant_id":"<tenant>"}`, both with a 2-hour TTL
//! refreshed whenever the tenant asks for its key again (not when the key is used), created in
//! one `WATCH id2key` + `MULTI/EXEC` with two set-if-absent commands.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use plugind_entities::{DaemonError, RuntimeType};
use plugind_runtime::{ConnectedPlugin, DebuggingHost};
use plugind_store::{InstallOutcome, UninstallOutcome};
use serde_json::json;
use tokio::time::Instant;

use crate::state::internal;
use crate::Services;

/// How long a debugging key lives after it was last asked for (upstream: 2 hours).
pub const DEBUGGING_KEY_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// Where debugging keys are kept: tenant → key and key → tenant, expiring together.
pub trait DebuggingKeys: Send + Sync + 'static {
    /// The tenant's key: the same one while it lives (its lifetime starts over), else a new
    /// random UUID v4.
    fn key_for<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<String, String>>;

    /// The tenant of a key that has not expired.
    fn tenant_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>>;
}

#[derive(Default)]
struct KeyTable {
    /// tenant → (key, expiry)
    by_tenant: HashMap<String, (String, Instant)>,
    /// key → tenant; the expiry is the tenant's.
    by_key: HashMap<String, String>,
}

/// Debugging keys in the process's memory.
pub struct MemoryDebuggingKeys {
    ttl: Duration,
    table: Mutex<KeyTable>,
}

impl Default for MemoryDebuggingKeys {
    fn default() -> Self {
        Self::with_ttl(DEBUGGING_KEY_TTL)
    }
}

impl MemoryDebuggingKeys {
    pub fn with_ttl(ttl: Duration) -> Self {
        MemoryDebuggingKeys {
            ttl,
            table: Mutex::new(KeyTable::default()),
        }
    }

    fn table(&self) -> MutexGuard<'_, KeyTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key_now(&self, tenant_id: &str, now: Instant) -> String {
        let mut table = self.table();
        let KeyTable { by_tenant, by_key } = &mut *table;
        by_tenant.retain(|_, (key, expiry)| {
            let alive = *expiry > now;
            if !alive {
                by_key.remove(key);
            }
            alive
        });
        let expiry = now + self.ttl;
        if let Some((key, at)) = by_tenant.get_mut(tenant_id) {
            *at = expiry;
            return key.clone();
        }
        let key = uuid::Uuid::new_v4().to_string();
        by_tenant.insert(tenant_id.to_owned(), (key.clone(), expiry));
        by_key.insert(key.clone(), tenant_id.to_owned());
        key
    }

    fn tenant_now(&self, key: &str, now: Instant) -> Option<String> {
        let table = self.table();
        let tenant = table.by_key.get(key)?;
        let (_, expiry) = table.by_tenant.get(tenant)?;
        (*expiry > now).then(|| tenant.clone())
    }
}

impl DebuggingKeys for MemoryDebuggingKeys {
    fn key_for<'a>(&'a self, tenant_id: &'a str) -> BoxFuture<'a, Result<String, String>> {
        let key = self.key_now(tenant_id, Instant::now());
        Box::pin(async move { Ok(key) })
    }

    fn tenant_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        let tenant = self.tenant_now(key, Instant::now());
        Box::pin(async move { Ok(tenant) })
    }
}

impl Services {
    /// Turns remote debugging on with this key store: the `debugging/key` route answers and
    /// debugging plugins can register. Only the first call counts.
    pub fn enable_debugging(&self, keys: Arc<dyn DebuggingKeys>) {
        let _ = self.inner.debugging_keys.set(keys);
    }

    pub fn debugging_enabled(&self) -> bool {
        self.inner.debugging_keys.get().is_some()
    }

    /// `POST /plugin/{tenant}/debugging/key`.
    pub async fn debugging_key(&self, tenant_id: &str) -> Result<String, DaemonError> {
        let keys = self
            .inner
            .debugging_keys
            .get()
            .ok_or_else(|| DaemonError::not_found("remote debugging is disabled"))?;
        keys.key_for(tenant_id).await.map_err(internal)
    }

    /// Start-up: a debugging plugin cannot be connected to a daemon that just started, so the
    /// installations debugging plugins left behind (a crash, a kill) are removed. Returns how
    /// many.
    pub async fn forget_debugging_plugins(&self) -> Result<usize, DaemonError> {
        let db = &self.inner.db;
        let mut removed = 0;
        for (uid, install_type) in db.installed_plugins().await.map_err(internal)? {
            if install_type != RuntimeType::Remote.as_str() {
                continue;
            }
            for installation in db.installations_of(&uid).await.map_err(internal)? {
                db.uninstall_plugin(&installation.tenant_id, &installation.id)
                    .await
                    .map_err(internal)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn install_debugging(&self, plugin: &ConnectedPlugin) -> Result<String, String> {
        let db = &self.inner.db;
        let uid = &plugin.uid;
        let tenant = plugin.tenant_id.as_str();
        let failed = |e: plugind_store::StoreError| format!("failed to install the plugin: {e}");
        for (id, bytes) in &plugin.assets {
            let key = format!("{}/{}", self.inner.cfg.media_cache_path, id);
            self.inner
                .blobs
                .save(&key, bytes.clone())
                .await
                .map_err(|e| format!("failed to store the plugin's assets: {e}"))?;
        }
        let refuse = |installed_uid: &str, source: &str| {
            format!(
                "plugin {} is already installed in this workspace ({installed_uid}, source \
                 {source}); uninstall it in Dify before debugging it",
                uid.plugin_id()
            )
        };
        if let Some(existing) = db
            .get_installation(tenant, uid.plugin_id())
            .await
            .map_err(failed)?
        {
            if existing.plugin_unique_identifier == uid.as_str() {
                return Ok(existing.id);
            }
            if existing.runtime_type != RuntimeType::Remote.as_str() {
                return Err(refuse(&existing.plugin_unique_identifier, &existing.source));
            }
            // An earlier build of the plugin being debugged: the newest registration wins.
            db.uninstall_plugin(tenant, &existing.id)
                .await
                .map_err(failed)?;
        }
        let inserted = db
            .insert_declaration_if_absent(uid.as_str(), uid.plugin_id(), &plugin.declaration)
            .await
            .map_err(failed)?;
        let outcome = db
            .install_plugin(
                tenant,
                uid,
                RuntimeType::Remote.as_str(),
                "remote",
                &json!({}),
                &plugin.declaration,
            )
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(err) => {
                // Nothing half-written: the declaration row goes with the failed install.
                if inserted && !db.plugin_exists(uid.as_str()).await.unwrap_or(true) {
                    if let Err(e) = db.delete_declaration(uid.as_str()).await {
                        tracing::warn!(plugin = %uid, error = %e, "could not remove the declaration of a failed debugging install");
                    }
                }
                return Err(failed(err));
            }
        };
        match outcome {
            InstallOutcome::Installed(installation) => Ok(installation.id),
            InstallOutcome::AlreadyInstalled(existing)
                if existing.plugin_unique_identifier == uid.as_str() =>
            {
                Ok(existing.id)
            }
            InstallOutcome::AlreadyInstalled(existing) => {
                Err(refuse(&existing.plugin_unique_identifier, &existing.source))
            }
        }
    }
}

impl DebuggingHost for Services {
    fn tenant_of<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, String>> {
        Box::pin(async move {
            match self.inner.debugging_keys.get() {
                Some(keys) => keys.tenant_of(key).await,
                None => Ok(None),
            }
        })
    }

    fn connected<'a>(
        &'a self,
        plugin: &'a ConnectedPlugin,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.install_debugging(plugin))
    }

    fn disconnected<'a>(
        &'a self,
        plugin: &'a ConnectedPlugin,
        installation_id: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match self
                .inner
                .db
                .uninstall_plugin(&plugin.tenant_id, installation_id)
                .await
            {
                Ok(UninstallOutcome::Removed { .. } | UninstallOutcome::NotFound) => {}
                Err(err) => {
                    tracing::error!(plugin = %plugin.uid, tenant = %plugin.tenant_id, error = %err, "could not uninstall a disconnected debugging plugin");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_keeps_its_key_while_it_lives() {
        let keys = MemoryDebuggingKeys::with_ttl(Duration::from_secs(60));
        let t0 = Instant::now();
        let a = keys.key_now("tenant-a", t0);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
        assert_eq!(keys.key_now("tenant-a", t0 + Duration::from_secs(30)), a);
        assert_eq!(
            keys.tenant_now(&a, t0 + Duration::from_secs(80)).as_deref(),
            Some("tenant-a"),
            "asking again refreshed the key's lifetime"
        );
        let b = keys.key_now("tenant-b", t0);
        assert_ne!(a, b);
        assert_eq!(keys.tenant_now(&b, t0).as_deref(), Some("tenant-b"));
        assert_eq!(keys.tenant_now("unknown", t0), None);
        assert_eq!(keys.tenant_now(&a, t0 + Duration::from_secs(91)), None);
        let fresh = keys.key_now("tenant-a", t0 + Duration::from_secs(200));
        assert_ne!(fresh, a, "an expired key is replaced");
        assert_eq!(keys.tenant_now(&a, t0 + Duration::from_secs(200)), None);
    }
}
