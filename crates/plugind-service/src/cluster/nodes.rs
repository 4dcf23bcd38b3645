//! Node records, heartbeat, votes, master election and the master's garbage collection
//! (PSC §7.6), with upstream's keys and encodings: the node table is a hash of JSON records,
//! the master key holds the CBOR text of the master's node id.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use plugind_coord::{CoordError, LockOptions};
use serde::{Deserialize, Serialize};

use super::{
    lock, tasks, Cluster, Shared, MASTER_GC_INTERVAL, MASTER_KEY, MASTER_LOCKING_INTERVAL,
    MASTER_LOCK_EXPIRY, NEW_NODE_CHANNEL, NODES_KEY, NODE_DISCONNECTED_TIMEOUT,
    NODE_STATUS_INTERVAL, NODE_VOTE_INTERVAL, PLUGIN_DEACTIVATED_TIMEOUT, PLUGIN_STATE_KEY,
};
use crate::Services;

/// One node's field of `cluster-nodes-status-hash-map` (JSON).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    #[serde(default)]
    pub ips: Vec<NodeAddress>,
    #[serde(default)]
    pub last_ping_at: i64,
}

/// One address of a node and the votes other nodes cast on it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeAddress {
    pub ip: String,
    pub port: u16,
    #[serde(default)]
    pub vote: Vec<Vote>,
}

/// A health check of an address by another node.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Vote {
    pub node_id: String,
    pub voted_at: i64,
    pub failed: bool,
}

impl NodeRecord {
    fn alive(&self, now: i64) -> bool {
        now - self.last_ping_at < NODE_DISCONNECTED_TIMEOUT.as_secs() as i64
    }

    /// `http://<ip>:<port>` of the address with the most votes (upstream counts failed votes
    /// too), `None` without addresses.
    pub fn best_address(&self) -> Option<String> {
        self.ips
            .iter()
            .enumerate()
            .max_by_key(|(i, a)| (a.vote.len(), std::cmp::Reverse(*i)))
            .map(|(_, a)| format!("http://{}:{}", a.ip, a.port))
    }
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// CBOR text string (major type 3) of `s`, as upstream's set-if-absent helper writes it.
pub(crate) fn cbor_text(s: &str) -> Vec<u8> {
    let len = s.len();
    let mut out = Vec::with_capacity(len + 9);
    match len {
        0..=23 => out.push(0x60 | len as u8),
        24..=0xff => out.extend([0x78, len as u8]),
        0x100..=0xffff => {
            out.push(0x79);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x7a);
            out.extend((len as u32).to_be_bytes());
        }
    }
    out.extend(s.as_bytes());
    out
}

/// `cluster-update-node-status-lock:<node_id>`: expires after 5 s, waited for at most 1 s.
async fn node_lock(shared: &Shared, node_id: &str) -> Result<plugind_coord::LockGuard, CoordError> {
    shared
        .coord
        .lock(
            &format!("cluster-update-node-status-lock:{node_id}"),
            LockOptions {
                expire: Duration::from_secs(5),
                wait: Some(Duration::from_secs(1)),
            },
        )
        .await
}

/// Every node record, unparsable ones skipped.
pub(crate) async fn all_nodes(shared: &Shared) -> Result<HashMap<String, NodeRecord>, CoordError> {
    Ok(shared
        .coord
        .hgetall(NODES_KEY)
        .await?
        .into_iter()
        .filter_map(|(id, json)| match serde_json::from_str(&json) {
            Ok(record) => Some((id, record)),
            Err(err) => {
                tracing::warn!(node = %id, error = %err, "skipping an unreadable node record");
                None
            }
        })
        .collect())
}

/// Writes this node's record (addresses, `last_ping_at`) and reloads the live nodes.
pub(crate) async fn heartbeat(shared: &Shared) -> Result<(), CoordError> {
    let id = shared.coord.node_id().to_owned();
    {
        let guard = node_lock(shared, &id).await?;
        let mut record: NodeRecord = shared
            .coord
            .hget(NODES_KEY, &id)
            .await?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        for ip in &shared.cfg.ips {
            if !record.ips.iter().any(|a| &a.ip == ip) {
                record.ips.push(NodeAddress {
                    ip: ip.clone(),
                    port: shared.cfg.port,
                    vote: Vec::new(),
                });
            }
        }
        record.last_ping_at = now();
        let json = serde_json::to_string(&record).unwrap_or_default();
        shared.coord.hset(NODES_KEY, &id, &json).await?;
        let _ = guard.release().await;
    }
    let at = now();
    let live: HashMap<String, NodeRecord> = all_nodes(shared)
        .await?
        .into_iter()
        .filter(|(_, r)| r.alive(at))
        .collect();
    *lock(&shared.live) = live;
    Ok(())
}

/// Health-checks every address of every other live node and records this node's votes.
async fn vote(shared: &Shared) {
    let me = shared.coord.node_id().to_owned();
    let others: Vec<(String, NodeRecord)> = lock(&shared.live)
        .iter()
        .filter(|(id, _)| **id != me)
        .map(|(id, r)| (id.clone(), r.clone()))
        .collect();
    for (id, record) in others {
        let mut results = Vec::new();
        for addr in &record.ips {
            let url = format!("http://{}:{}/health/check", addr.ip, addr.port);
            let ok = match shared.http.get(&url).send().await {
                Ok(resp) => resp
                    .json::<serde_json::Value>()
                    .await
                    .is_ok_and(|v| v.get("status").and_then(|s| s.as_str()) == Some("ok")),
                Err(_) => false,
            };
            results.push((addr.ip.clone(), addr.port, ok));
        }
        let Ok(guard) = node_lock(shared, &id).await else {
            continue;
        };
        let current = shared.coord.hget(NODES_KEY, &id).await;
        if let Ok(Some(json)) = current {
            if let Ok(mut record) = serde_json::from_str::<NodeRecord>(&json) {
                let at = now();
                for (ip, port, ok) in &results {
                    let Some(addr) = record
                        .ips
                        .iter_mut()
                        .find(|a| &a.ip == ip && a.port == *port)
                    else {
                        continue;
                    };
                    match addr.vote.iter_mut().find(|v| v.node_id == me) {
                        Some(v) => {
                            v.voted_at = at;
                            v.failed = !ok;
                        }
                        None => addr.vote.push(Vote {
                            node_id: me.clone(),
                            voted_at: at,
                            failed: !ok,
                        }),
                    }
                }
                let json = serde_json::to_string(&record).unwrap_or_default();
                if let Err(err) = shared.coord.hset(NODES_KEY, &id, &json).await {
                    tracing::debug!(node = %id, error = %err, "could not record votes");
                }
            }
        }
        let _ = guard.release().await;
    }
}

/// Deletes a node's registry entries and record.
pub(crate) async fn remove_node(shared: &Shared, node_id: &str) -> Result<(), CoordError> {
    let prefix = format!("{node_id}:");
    for (field, _) in shared.coord.hgetall(PLUGIN_STATE_KEY).await? {
        if field.starts_with(&prefix) {
            shared.coord.hdel(PLUGIN_STATE_KEY, &field).await?;
        }
    }
    let guard = node_lock(shared, node_id).await?;
    shared.coord.hdel(NODES_KEY, node_id).await?;
    let _ = guard.release().await;
    Ok(())
}

/// The master's clean-up: dead nodes and their registry entries, stale registry entries, the
/// install tasks of dead nodes.
async fn collect_garbage(services: &Services, cluster: &Cluster) -> Result<(), CoordError> {
    let shared = &cluster.inner;
    let at = now();
    for (id, record) in all_nodes(shared).await? {
        if !record.alive(at) {
            tracing::info!(node = %id, last_ping_at = record.last_ping_at, "removing a dead node");
            remove_node(shared, &id).await?;
        }
    }
    let stale = chrono::Utc::now()
        - chrono::Duration::from_std(PLUGIN_DEACTIVATED_TIMEOUT).unwrap_or_default();
    for (field, json) in shared.coord.hgetall(PLUGIN_STATE_KEY).await? {
        let scheduled = super::registry::scheduled_at(&json);
        if scheduled.is_none_or(|t| t < stale) {
            shared.coord.hdel(PLUGIN_STATE_KEY, &field).await?;
        }
    }
    tasks::fail_orphaned(services, cluster, tasks::DEAD_NODE_MESSAGE).await;
    Ok(())
}

/// Heartbeat, election, clean-up, votes and the new-node channel.
pub(crate) async fn spawn_loops(services: &Services, cluster: &Cluster) -> Result<(), CoordError> {
    let shared = cluster.inner.clone();
    let stop = shared.stop.clone();
    let mut new_nodes = shared.coord.subscribe(NEW_NODE_CHANNEL).await?;
    let hello = serde_json::json!({ "node_id": shared.coord.node_id() }).to_string();
    shared.coord.publish(NEW_NODE_CHANNEL, &hello).await?;

    tokio::spawn({
        let shared = shared.clone();
        let stop = stop.clone();
        async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(NODE_STATUS_INTERVAL) => {}
                }
                if let Err(err) = heartbeat(&shared).await {
                    tracing::warn!(error = %err, "cluster heartbeat failed");
                }
            }
        }
    });

    tokio::spawn({
        let cluster = cluster.clone();
        let services = services.clone();
        let stop = stop.clone();
        async move {
            let shared = &cluster.inner;
            let me = cbor_text(shared.coord.node_id());
            let mut last_gc = tokio::time::Instant::now();
            loop {
                if shared.master.load(Ordering::Relaxed) {
                    if let Err(err) = shared.coord.expire(MASTER_KEY, MASTER_LOCK_EXPIRY).await {
                        tracing::debug!(error = %err, "could not refresh the master key");
                    }
                    if last_gc.elapsed() >= MASTER_GC_INTERVAL {
                        last_gc = tokio::time::Instant::now();
                        if let Err(err) = collect_garbage(&services, &cluster).await {
                            tracing::warn!(error = %err, "cluster clean-up failed");
                        }
                    }
                } else {
                    match shared
                        .coord
                        .set_nx(MASTER_KEY, &me, MASTER_LOCK_EXPIRY)
                        .await
                    {
                        Ok(true) => {
                            shared.master.store(true, Ordering::Relaxed);
                            last_gc = tokio::time::Instant::now() - MASTER_GC_INTERVAL;
                            tracing::info!(
                                node_id = shared.coord.node_id(),
                                "this node is the cluster master"
                            );
                        }
                        Ok(false) => {}
                        Err(err) => tracing::debug!(error = %err, "master election failed"),
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(MASTER_LOCKING_INTERVAL) => {}
                }
            }
        }
    });

    tokio::spawn({
        let shared = shared.clone();
        async move {
            let me = shared.coord.node_id().to_owned();
            vote(&shared).await;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(NODE_VOTE_INTERVAL) => {}
                    msg = new_nodes.next() => {
                        let Some(msg) = msg else { return };
                        let from = serde_json::from_str::<serde_json::Value>(&msg)
                            .ok()
                            .and_then(|v| v.get("node_id").and_then(|n| n.as_str()).map(str::to_owned));
                        if from.as_deref() == Some(me.as_str()) {
                            continue;
                        }
                        // The new node's record is there since its first heartbeat.
                        if let Err(err) = heartbeat(&shared).await {
                            tracing::debug!(error = %err, "heartbeat after a new node failed");
                        }
                    }
                }
                vote(&shared).await;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_text_matches_the_encoding_of_a_uuid_string() {
        let id = "0b6a4c9e-3f2d-4a8b-9c1e-5d7f8a9b0c1d";
        let bytes = cbor_text(id);
        assert_eq!(&bytes[..2], &[0x78, 36]);
        assert_eq!(&bytes[2..], id.as_bytes());
        assert_eq!(cbor_text("ab"), vec![0x62, b'a', b'b']);
    }

    #[test]
    fn a_node_record_reads_upstreams_json() {
        let json = r#"{"ips":[{"ip":"10.0.0.5","port":5002,"vote":[{"node_id":"n2","voted_at":1717000000,"failed":false}]},{"ip":"10.0.0.6","port":5002,"vote":[]}],"last_ping_at":1717000003}"#;
        let record: NodeRecord = serde_json::from_str(json).expect("upstream's record");
        assert_eq!(record.last_ping_at, 1_717_000_003);
        assert_eq!(
            record.best_address().as_deref(),
            Some("http://10.0.0.5:5002")
        );
        assert!(record.alive(1_717_000_012));
        assert!(!record.alive(1_717_000_013));
    }
}
