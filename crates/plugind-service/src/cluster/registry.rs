//! The plugin registry (`plugin_state`, PSC §7.6): field `<node_id>:<sha256hex(uid)>`, JSON
//! state with `scheduled_at`. Upstream registers only remote-debugging runtimes; plugind also
//! registers the local runtimes running on this node, so a node whose launch of a plugin
//! failed (or has not happened yet) redirects to one that runs it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use plugind_coord::CoordError;
use sha2::{Digest, Sha256};

use super::{
    lock, Cluster, Shared, PLUGIN_DEACTIVATED_TIMEOUT, PLUGIN_REFRESH_INTERVAL,
    PLUGIN_SCHEDULER_TICK, PLUGIN_STATE_KEY,
};
use crate::Services;

fn uid_hash(uid: &str) -> String {
    hex::encode(Sha256::digest(uid.as_bytes()))
}

fn field(node_id: &str, uid: &str) -> String {
    format!("{node_id}:{}", uid_hash(uid))
}

pub(crate) fn scheduled_at(json: &str) -> Option<DateTime<Utc>> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    DateTime::parse_from_rfc3339(value.get("scheduled_at")?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Writes (or refreshes) this node's entry for `uid`.
pub(crate) async fn write(shared: &Shared, uid: &str) -> Result<(), CoordError> {
    let now = Utc::now().to_rfc3339();
    let state = serde_json::json!({
        "restarts": 0,
        "status": "active",
        "working_path": "",
        "active_at": now,
        "stopped_at": null,
        "verified": false,
        "scheduled_at": now,
        "logs": [],
        "identity": uid,
    });
    shared
        .coord
        .hset(
            PLUGIN_STATE_KEY,
            &field(shared.coord.node_id(), uid),
            &state.to_string(),
        )
        .await?;
    lock(&shared.registered).insert(uid.to_owned(), tokio::time::Instant::now());
    Ok(())
}

/// Deletes this node's entry for `uid` (3 attempts, as upstream).
pub(crate) async fn remove(shared: &Shared, uid: &str) -> Result<(), CoordError> {
    lock(&shared.registered).remove(uid);
    let key = field(shared.coord.node_id(), uid);
    let mut last = None;
    for pause in [10u64, 20, 0] {
        match shared.coord.hdel(PLUGIN_STATE_KEY, &key).await {
            Ok(_) => return Ok(()),
            Err(err) => last = Some(err),
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    Err(last.unwrap_or(CoordError::Config("unreachable".into())))
}

/// Live nodes other than this one whose registry entry for `uid` is fresh; stale entries are
/// deleted on the way.
pub(crate) async fn nodes_serving(shared: &Shared, uid: &str) -> Result<Vec<String>, CoordError> {
    let suffix = format!(":{}", uid_hash(uid));
    let fresh_since =
        Utc::now() - chrono::Duration::from_std(PLUGIN_DEACTIVATED_TIMEOUT / 2).unwrap_or_default();
    let me = shared.coord.node_id();
    let mut nodes = Vec::new();
    for (field, json) in shared.coord.hgetall(PLUGIN_STATE_KEY).await? {
        let Some(node) = field.strip_suffix(&suffix) else {
            continue;
        };
        if scheduled_at(&json).is_none_or(|t| t < fresh_since) {
            let _ = shared.coord.hdel(PLUGIN_STATE_KEY, &field).await;
            continue;
        }
        if node != me && lock(&shared.live).contains_key(node) {
            nodes.push(node.to_owned());
        }
    }
    nodes.sort();
    Ok(nodes)
}

/// Every [`PLUGIN_SCHEDULER_TICK`]: entries for runtimes that started, refreshes older than
/// [`PLUGIN_REFRESH_INTERVAL`], removals for runtimes that stopped.
pub(crate) fn spawn_loop(services: &Services, cluster: &Cluster) {
    let services = services.clone();
    let shared = cluster.inner.clone();
    tokio::spawn(async move {
        loop {
            let mut serving: HashSet<String> = services
                .runtimes()
                .running()
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect();
            serving.extend(lock(&shared.pinned).iter().cloned());
            let registered: Vec<(String, tokio::time::Instant)> = lock(&shared.registered)
                .iter()
                .map(|(u, t)| (u.clone(), *t))
                .collect();
            for (uid, _) in registered.iter().filter(|(u, _)| !serving.contains(u)) {
                if let Err(err) = remove(&shared, uid).await {
                    tracing::debug!(%uid, error = %err, "could not unregister a plugin");
                }
            }
            for uid in &serving {
                let due = registered
                    .iter()
                    .find(|(u, _)| u == uid)
                    .is_none_or(|(_, at)| at.elapsed() >= PLUGIN_REFRESH_INTERVAL);
                if due {
                    if let Err(err) = write(&shared, uid).await {
                        tracing::debug!(%uid, error = %err, "could not register a plugin");
                    }
                }
            }
            tokio::select! {
                () = shared.stop.cancelled() => return,
                () = tokio::time::sleep(PLUGIN_SCHEDULER_TICK) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_hash_the_uid_as_upstream() {
        let f = super::field("node", "a/b:0.0.1@abc");
        let (node, hash) = f.split_once(':').expect("node:hash");
        assert_eq!(node, "node");
        assert_eq!(hash.len(), 64);
        assert_eq!(
            super::scheduled_at(r#"{"scheduled_at":"2024-05-01T10:00:00.123456789Z"}"#)
                .map(|t| t.timestamp()),
            Some(1_714_557_600)
        );
    }
}
