//! Which node runs which install task. A task's owner is recorded in Redis
//! (`plugind:install_task_owners`, task id → `{"node_id","at"}`) before its row is created, so
//! upstream's `install_tasks` columns stay as they are. A node fails only its own unfinished
//! tasks when it stops; tasks of a node that died are failed with a reason when it joins
//! (start-up) or by the master once the node's heartbeat is [`super::NODE_DISCONNECTED_TIMEOUT`]
//! old.

use std::collections::HashMap;

use plugind_coord::CoordError;

use super::{nodes, Cluster, TASK_OWNERS_KEY};
use crate::Services;

/// Reason on tasks whose node was gone when this node started.
pub(crate) const STARTUP_TAKEOVER_MESSAGE: &str =
    "failed: the daemon node running this install stopped (restarted or killed); retry the install";
/// Reason on tasks whose node stopped sending heartbeats.
pub(crate) const DEAD_NODE_MESSAGE: &str =
    "failed: the daemon node running this install stopped answering (no cluster heartbeat); retry the install";

/// How long an owner entry without an unfinished task is kept (its task row may be about to be
/// created).
const OWNER_GRACE_SECS: i64 = 120;

fn owner_of(json: &str) -> Option<(String, i64)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some((
        v.get("node_id")?.as_str()?.to_owned(),
        v.get("at").and_then(|a| a.as_i64()).unwrap_or(0),
    ))
}

impl Cluster {
    /// Records this node as the owner of `task_id` (before the task row exists).
    pub(crate) async fn claim_task(&self, task_id: &str) -> Result<(), CoordError> {
        let owner = serde_json::json!({ "node_id": self.node_id(), "at": nodes::now() });
        self.inner
            .coord
            .hset(TASK_OWNERS_KEY, task_id, &owner.to_string())
            .await
    }

    /// Ids of this node's tasks.
    pub(crate) async fn own_tasks(&self) -> Result<Vec<String>, CoordError> {
        Ok(self
            .inner
            .coord
            .hgetall(TASK_OWNERS_KEY)
            .await?
            .into_iter()
            .filter(|(_, json)| owner_of(json).is_some_and(|(n, _)| n == self.node_id()))
            .map(|(id, _)| id)
            .collect())
    }
}

impl Services {
    /// In a cluster, records this node as the owner of a task about to be created; an
    /// unreachable Redis fails the request before anything is written.
    pub(crate) async fn claim_task(
        &self,
        task_id: &str,
    ) -> Result<(), plugind_entities::DaemonError> {
        match self.cluster() {
            Some(cluster) => cluster
                .claim_task(task_id)
                .await
                .map_err(crate::state::internal),
            None => Ok(()),
        }
    }
}

/// Fails every unfinished task whose owner is not a live node (or that has no owner: written by
/// a daemon outside the cluster), and forgets owners of finished tasks.
pub(crate) async fn fail_orphaned(services: &Services, cluster: &Cluster, message: &str) {
    let shared = &cluster.inner;
    let unfinished = match services.inner.db.unfinished_task_ids().await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::warn!(error = %err, "could not list unfinished install tasks");
            return;
        }
    };
    let owners: HashMap<String, (String, i64)> = match shared.coord.hgetall(TASK_OWNERS_KEY).await {
        Ok(all) => all
            .into_iter()
            .filter_map(|(id, json)| owner_of(&json).map(|o| (id, o)))
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "could not read install task owners");
            return;
        }
    };
    let live = match nodes::all_nodes(shared).await {
        Ok(all) => {
            let at = nodes::now();
            all.into_iter()
                .filter(|(_, r)| {
                    at - r.last_ping_at < super::NODE_DISCONNECTED_TIMEOUT.as_secs() as i64
                })
                .map(|(id, _)| id)
                .collect::<std::collections::HashSet<_>>()
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not read the cluster's nodes");
            return;
        }
    };
    for id in &unfinished {
        let orphaned = match owners.get(id) {
            Some((node, _)) => !live.contains(node),
            None => true,
        };
        if !orphaned {
            continue;
        }
        match services.inner.db.fail_unfinished_task(id, message).await {
            Ok(true) => {
                let node = owners.get(id).map(|(n, _)| n.as_str()).unwrap_or("unknown");
                tracing::warn!(task_id = %id, node, "failed an install task whose node is gone");
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(task_id = %id, error = %err, "could not fail an orphaned install task")
            }
        }
        let _ = shared.coord.hdel(TASK_OWNERS_KEY, id).await;
    }
    let at = nodes::now();
    for (id, (_, claimed_at)) in &owners {
        if !unfinished.contains(id) && at - claimed_at > OWNER_GRACE_SECS {
            let _ = shared.coord.hdel(TASK_OWNERS_KEY, id).await;
        }
    }
}
