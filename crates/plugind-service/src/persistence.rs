//! Plugin key–value storage, the `storage` backwards call (plugin-protocol §4.6, PSC §6.4).
//!
//! Values live in object storage at `<PERSISTENCE_STORAGE_PATH>/<tenant>/<author>/<name>/<key>`;
//! usage per (tenant, plugin id) is accounted in `tenant_storages`. Unlike upstream, a `set` is
//! checked against the quota **before** the object is written, so a refused write leaves the
//! previous value in place.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::Services;

#[derive(Deserialize)]
struct StorageRequest {
    opt: String,
    key: String,
    #[serde(default)]
    value: String,
}

/// Keys longer than this are refused by `set` (upstream's wording says "less than 256").
const MAX_KEY_BYTES: usize = 256;

/// How long a value read from object storage stays in the cache (upstream: 5 minutes).
const CACHE_TTL: Duration = Duration::from_secs(300);

/// Upstream's cache key of a value: `persistence:cache:<tenant>:<plugin_id>:<key>` (hex value).
fn cache_key(ns: &Namespace<'_>, key: &str) -> String {
    format!(
        "persistence:cache:{}:{}:{}",
        ns.tenant_id, ns.plugin_id, key
    )
}

/// One writer per namespace at a time, on every daemon sharing the coordination backend: the
/// usage read, the check and the write agree.
async fn lock_namespace(
    services: &Services,
    ns: &Namespace<'_>,
) -> Result<plugind_coord::LockGuard, String> {
    services
        .lock(&format!(
            "persistence:lock:{}:{}",
            ns.tenant_id, ns.plugin_id
        ))
        .await
        .map_err(|e| e.to_string())
}

/// Drops the cached value. Before a write a failure stops the write (nothing changed yet);
/// after it, the stale entry expires within [`CACHE_TTL`] and the failure is logged.
async fn forget_cached(services: &Services, ns: &Namespace<'_>, key: &str) -> Result<u64, String> {
    services
        .coord()
        .del(&cache_key(ns, key))
        .await
        .map_err(|e| e.to_string())
}

/// `get`: the cached hex value, else the object (then cached). A cache that cannot be reached
/// is skipped: the object store answers.
async fn get(services: &Services, ns: &Namespace<'_>, key: &str) -> Option<String> {
    let object = object_key(services, ns, key).ok()?;
    let cache = cache_key(ns, key);
    match services.coord().get(&cache).await {
        Ok(Some(hex)) => return String::from_utf8(hex).ok(),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "storage cache unavailable; reading the object"),
    }
    let value = hex::encode(services.inner.blobs.load(&object).await.ok()??);
    if let Err(err) = services
        .coord()
        .set(&cache, value.as_bytes(), Some(CACHE_TTL))
        .await
    {
        tracing::debug!(error = %err, "could not cache a storage value");
    }
    Some(value)
}

/// Whose storage a call works on and how much it may use.
pub(crate) struct Namespace<'a> {
    pub tenant_id: &'a str,
    /// `author/name`, shared across versions.
    pub plugin_id: &'a str,
    /// The manifest's `storage.size`, when it has a storage block.
    pub declared_size: Option<u64>,
}

/// Runs one storage request; `Ok` is the `data` of the plugin's `struct` answer, `Err` the
/// error text it sees.
pub(crate) async fn handle(
    services: &Services,
    ns: &Namespace<'_>,
    request: &Value,
) -> Result<Value, String> {
    let req = StorageRequest::deserialize(request)
        .map_err(|e| format!("unmarshal backwards invoke request failed: {e}"))?;
    if req.key.is_empty() {
        return Err("unmarshal backwards invoke request failed: key is required".into());
    }
    match req.opt.as_str() {
        "set" => set(services, ns, &req).await.map_err(|e| e.to_string()),
        "get" => {
            let value = get(services, ns, &req.key).await;
            value.map(|v| json!({"data": v})).ok_or_else(|| {
                "load data failed, please check if the key is correct or you have not set it"
                    .to_owned()
            })
        }
        "exist" => {
            let key =
                object_key(services, ns, &req.key).map_err(|e| format!("exist data failed: {e}"))?;
            let exists = services
                .inner
                .blobs
                .exists(&key)
                .await
                .map_err(|e| format!("exist data failed: {e}"))?;
            Ok(json!({"data": exists, "exist_num": i32::from(exists)}))
        }
        "del" => delete(services, ns, &req.key)
            .await
            .map_err(|e| format!("delete data failed: {e}")),
        other => Err(format!(
            "unmarshal backwards invoke request failed: opt must be one of get, set, del, exist, not {other:?}"
        )),
    }
}

#[derive(Debug, thiserror::Error)]
enum SetError {
    #[error("decode data failed: {0}")]
    Decode(String),
    #[error("save data failed: {0}")]
    Save(String),
}

async fn set(
    services: &Services,
    ns: &Namespace<'_>,
    req: &StorageRequest,
) -> Result<Value, SetError> {
    let value = hex::decode(&req.value).map_err(|e| SetError::Decode(e.to_string()))?;
    let key = object_key(services, ns, &req.key).map_err(SetError::Save)?;
    if req.key.len() > MAX_KEY_BYTES {
        return Err(SetError::Save(
            "key length must be less than 256 characters".into(),
        ));
    }
    let global = services.inner.cfg.persistence_max_size;
    let limit = ns.declared_size.map_or(global, |d| d.min(global));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let save = |e: &dyn std::fmt::Display| SetError::Save(e.to_string());

    let _serial = lock_namespace(services, ns).await.map_err(SetError::Save)?;
    forget_cached(services, ns, &req.key)
        .await
        .map_err(SetError::Save)?;
    let old_len = services
        .inner
        .blobs
        .load(&key)
        .await
        .map_err(|e| save(&e))?
        .map_or(0, |v| v.len());
    let diff = len_i64(value.len()) - len_i64(old_len);
    let db = &services.inner.db;
    if !db
        .adjust_storage_size(ns.tenant_id, ns.plugin_id, diff, Some(limit))
        .await
        .map_err(|e| save(&e))?
    {
        return Err(SetError::Save(
            "allocated size is greater than max storage size".into(),
        ));
    }
    if let Err(err) = services.inner.blobs.save(&key, value).await {
        // The object was not replaced: give the reserved bytes back.
        if let Err(undo) = db
            .adjust_storage_size(ns.tenant_id, ns.plugin_id, -diff, None)
            .await
        {
            tracing::warn!(error = %undo, "could not undo a storage reservation");
        }
        return Err(save(&err));
    }
    if let Err(err) = forget_cached(services, ns, &req.key).await {
        tracing::warn!(error = %err, "could not drop a cached storage value; it expires within 5 minutes");
    }
    Ok(json!({"data": "ok"}))
}

async fn delete(services: &Services, ns: &Namespace<'_>, key: &str) -> Result<Value, String> {
    let plugin_key = key;
    let key = object_key(services, ns, key)?;
    let _serial = lock_namespace(services, ns).await?;
    forget_cached(services, ns, plugin_key).await?;
    let blobs = &services.inner.blobs;
    let Some(old) = blobs.load(&key).await.map_err(|e| e.to_string())? else {
        return Err("data not found".into());
    };
    blobs.delete(&key).await.map_err(|e| e.to_string())?;
    services
        .inner
        .db
        .adjust_storage_size(ns.tenant_id, ns.plugin_id, -len_i64(old.len()), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"data": "ok", "deleted_num": 1}))
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The object-storage key of a plugin's key, or the traversal error.
fn object_key(services: &Services, ns: &Namespace<'_>, key: &str) -> Result<String, String> {
    let clean = clean_path(key);
    if clean.contains("..") || clean.contains("//") || clean.contains('\\') {
        return Err("invalid key: path traversal attempt detected".into());
    }
    Ok(format!(
        "{}/{}/{}/{}",
        services
            .inner
            .cfg
            .persistence_storage_path
            .trim_end_matches('/'),
        ns.tenant_id,
        ns.plugin_id,
        clean.trim_start_matches('/')
    ))
}

/// Lexical path cleaning with Go's `path.Clean` rules: `.` segments and empty segments vanish,
/// `..` removes the segment before it (and stays when there is none, unless the path is
/// rooted).
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            seg => out.push(seg),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn clean_path_follows_go() {
        assert_eq!(clean_path("a//b"), "a/b");
        assert_eq!(clean_path("a/../b"), "b");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path("/../etc/passwd"), "/etc/passwd");
        assert_eq!(clean_path("./a/./b/"), "a/b");
        assert_eq!(clean_path(""), ".");
    }
}
