//! Reconciliation: what should run on this node (every installed local plugin) against what
//! runs, on a timer and whenever a node announces an installation change. Launches what is
//! missing from the package in object storage (each node builds its own working directory),
//! stops what no installation references any more. Replaces upstream's one-shot restore plus
//! watchdog (PSC §4.6) with the same back-off for plugins that keep failing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use plugind_coord::CoordError;
use plugind_entities::{PluginUniqueIdentifier, RuntimeType};
use plugind_runtime::RuntimeKind;
use tokio::time::Instant;

use super::{Cluster, INSTALLATION_CHANGED_CHANNEL};
use crate::Services;

/// Consecutive launch failures → how long to wait before the next try (upstream's watchdog:
/// 0–2 at once, 3–7 30 s, 8–14 60 s, then never until restart).
fn backoff(failures: u32) -> Option<Duration> {
    match failures {
        0..=2 => Some(Duration::ZERO),
        3..=7 => Some(Duration::from_secs(30)),
        8..=14 => Some(Duration::from_secs(60)),
        _ => None,
    }
}

#[derive(Default)]
struct Attempts(HashMap<String, (u32, Instant)>);

impl Attempts {
    fn allowed(&self, uid: &str) -> bool {
        match self.0.get(uid) {
            None => true,
            Some((n, at)) => backoff(*n).is_some_and(|wait| at.elapsed() >= wait),
        }
    }
}

/// One round: returns (launched, stopped).
async fn reconcile(services: &Services, attempts: &mut Attempts) -> Result<(usize, usize), String> {
    let installed: HashSet<PluginUniqueIdentifier> = services
        .inner
        .db
        .installed_plugins()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|(_, kind)| kind == RuntimeType::Local.as_str())
        .filter_map(|(uid, _)| PluginUniqueIdentifier::parse(&uid).ok())
        .collect();
    let runtimes = services.runtimes();

    // Settle failures recorded by earlier rounds.
    for (uid, entry) in attempts.0.iter_mut() {
        if let Ok(parsed) = PluginUniqueIdentifier::parse(uid) {
            if runtimes.get(&parsed).is_some_and(|h| h.is_ready()) {
                entry.0 = 0;
            }
        }
    }
    attempts.0.retain(|_, (n, _)| *n > 0);

    let mut launches = Vec::new();
    for uid in &installed {
        if runtimes.get(uid).is_some() || !attempts.allowed(uid.as_str()) {
            continue;
        }
        let failed_before = runtimes.failure(uid).is_some();
        if failed_before {
            let entry = attempts
                .0
                .entry(uid.to_string())
                .or_insert((0, Instant::now()));
            entry.0 += 1;
            entry.1 = Instant::now();
            if backoff(entry.0).is_none() {
                tracing::error!(%uid, "plugin failed to start too often on this node; not trying again until restart");
                continue;
            }
        }
        runtimes.schedule(uid);
        launches.push(uid.clone());
    }
    let launched = launches.len();
    for uid in launches {
        let services = services.clone();
        services.inner.jobs.clone().spawn(async move {
            let interrupted = services.inner.interrupted.clone();
            let result = tokio::select! {
                r = services.launch_installed(&uid) => r,
                () = interrupted.cancelled() => Err("the daemon shut down first".to_owned()),
            };
            match result {
                Ok(()) => tracing::info!(%uid, "reconcile: plugin installed through another node runs here now"),
                Err(err) => {
                    tracing::warn!(%uid, error = %err, "reconcile: plugin could not be started here");
                    services.runtimes().fail_scheduled(&uid, &err);
                }
            }
        });
    }

    let mut stopped = 0;
    for uid in runtimes.running() {
        if installed.contains(&uid) {
            continue;
        }
        // Only local runtimes follow installations; remote-debugging ones follow their
        // connection.
        if runtimes.get(&uid).and_then(|h| h.kind()) != Some(RuntimeKind::Local) {
            continue;
        }
        if services.retire_here(&uid).await {
            stopped += 1;
        }
    }
    Ok((launched, stopped))
}

/// The reconcile loop and the subscription that triggers it.
pub(crate) async fn spawn_loops(services: &Services, cluster: &Cluster) -> Result<(), CoordError> {
    let shared = cluster.inner.clone();
    let mut changes = shared.coord.subscribe(INSTALLATION_CHANGED_CHANNEL).await?;
    tokio::spawn({
        let shared = shared.clone();
        let services = services.clone();
        async move {
            loop {
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    msg = changes.next() => {
                        let Some(msg) = msg else { return };
                        let v: serde_json::Value = serde_json::from_str(&msg).unwrap_or_default();
                        let tenant = v.get("tenant_id").and_then(|t| t.as_str()).unwrap_or("");
                        let plugin_id = v.get("plugin_id").and_then(|t| t.as_str()).unwrap_or("");
                        services.installation_invalidated(tenant, plugin_id);
                        shared.reconcile_now.notify_one();
                    }
                }
            }
        }
    });
    let services = services.clone();
    tokio::spawn(async move {
        let mut attempts = Attempts::default();
        let interval = shared.cfg.reconcile_interval.max(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = shared.stop.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
                () = shared.reconcile_now.notified() => {}
            }
            match reconcile(&services, &mut attempts).await {
                Ok((0, 0)) => {}
                Ok((launched, stopped)) => {
                    tracing::info!(launched, stopped, "reconciled plugins with installations")
                }
                Err(err) => tracing::warn!(error = %err, "reconcile failed; trying again later"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_follows_upstreams_watchdog() {
        use std::time::Duration;
        assert_eq!(super::backoff(2), Some(Duration::ZERO));
        assert_eq!(super::backoff(3), Some(Duration::from_secs(30)));
        assert_eq!(super::backoff(14), Some(Duration::from_secs(60)));
        assert_eq!(super::backoff(15), None);
    }
}
