//! Keeps a local plugin's replicas alive and scales them.
//!
//! [`supervise`] is the plugin's background task (the registry holds it; aborting it kills every
//! instance). It runs the scaling loop ([`super::scaling`]) and one task per replica slot
//! ([`keep_replica`]): when a slot's instance exits, the slot starts another after an exponential
//! back-off (0.5 s, 1 s, 2 s, … capped at 30 s; reset once an instance ran for 60 s) while the
//! other slots keep serving. A retired slot (scale-down, scale to zero) takes no new sessions,
//! waits until its sessions have ended, then stops its process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::instance::InstanceOwner;
use super::scaling::{decide, Decision, LoadWindow};
use super::LocalRuntime;
use crate::config::RuntimeTuning;
use crate::lifecycle::LifecycleKind;

/// The restart delay sequence.
#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(tuning: &RuntimeTuning) -> Self {
        Backoff {
            initial: tuning.restart_backoff_initial,
            max: tuning.restart_backoff_max,
            next: tuning.restart_backoff_initial,
        }
    }

    /// The delay to wait now; the following one doubles.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

fn set_last_exit(plugin: &LocalRuntime, reason: String) {
    *plugin.last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
}

/// How often a retiring instance is checked for sessions still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Removes the slot's member when its task ends, however it ends (an abort included).
struct MemberGuard<'a> {
    plugin: &'a LocalRuntime,
    slot: u64,
}

impl Drop for MemberGuard<'_> {
    fn drop(&mut self) {
        self.plugin.replicas.set_instance(self.slot, None);
        self.plugin.replicas.remove(self.slot);
    }
}

/// The plugin's background task: starts the other initial replicas beside the ready `first`
/// (none: restored idle), then scales until the plugin is stopped; returns once every instance
/// is gone.
pub(crate) async fn supervise(plugin: Arc<LocalRuntime>, first: Option<InstanceOwner>) {
    let mut slots: JoinSet<()> = JoinSet::new();
    // Retire tokens of the slots that are not retiring, oldest first.
    let mut active: BTreeMap<u64, CancellationToken> = BTreeMap::new();
    let mut next_slot = 0u64;
    let mut spawn = |first: Option<InstanceOwner>,
                     slots: &mut JoinSet<()>,
                     active: &mut BTreeMap<u64, CancellationToken>| {
        let slot = next_slot;
        next_slot += 1;
        let retire = CancellationToken::new();
        active.insert(slot, retire.clone());
        plugin.replicas.add(slot);
        slots.spawn(keep_replica(plugin.clone(), slot, first, retire));
    };
    if let Some(first) = first {
        spawn(Some(first), &mut slots, &mut active);
        for _ in 1..plugin.bounds.initial() {
            spawn(None, &mut slots, &mut active);
        }
    }
    let scaling = &plugin.tuning.scaling;
    let mut ticks = tokio::time::interval(scaling.tick());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut window = LoadWindow::default();
    loop {
        tokio::select! {
            _ = plugin.cancel.cancelled() => break,
            Some(_) = slots.join_next() => {
                active.retain(|_, retire| !retire.is_cancelled());
            }
            () = plugin.replicas.woken() => {
                if active.is_empty() && !plugin.cancel.is_cancelled() {
                    tracing::info!(plugin = %plugin.uid, "a request for a plugin scaled to zero: starting an instance");
                    plugin.replicas.touch();
                    spawn(None, &mut slots, &mut active);
                    plugin.emit(LifecycleKind::ScaleUp { replicas: 1 });
                }
            }
            _ = ticks.tick() => {
                let sessions = plugin.replicas.sessions();
                // Idle means an instance is ready and nothing is in flight: a slow cold start
                // is not idleness.
                if sessions > 0 || !plugin.replicas.has_ready() {
                    plugin.replicas.touch();
                }
                let decision = decide(
                    scaling,
                    plugin.bounds,
                    active.len(),
                    sessions,
                    plugin.replicas.idle_for(),
                    &mut window,
                    tokio::time::Instant::now(),
                );
                match decision {
                    Decision::Hold => {}
                    Decision::Up => {
                        spawn(None, &mut slots, &mut active);
                        plugin.emit(LifecycleKind::ScaleUp { replicas: active.len() });
                    }
                    Decision::Down => {
                        // The newest slot goes: the oldest instances have warm caches.
                        if let Some((_, retire)) = active.pop_last() {
                            plugin.emit(LifecycleKind::ScaleDown { replicas: active.len() });
                            retire.cancel();
                        }
                    }
                    Decision::ToZero => {
                        plugin.emit(LifecycleKind::ScaleDown { replicas: 0 });
                        for (_, retire) in std::mem::take(&mut active) {
                            retire.cancel();
                        }
                    }
                }
            }
        }
    }
    // Every slot sees the stop and kills its instance.
    while slots.join_next().await.is_some() {}
}

/// Keeps one replica slot running until the plugin stops or the slot is retired.
async fn keep_replica(
    plugin: Arc<LocalRuntime>,
    slot: u64,
    first: Option<InstanceOwner>,
    retire: CancellationToken,
) {
    let _member = MemberGuard {
        plugin: &plugin,
        slot,
    };
    let mut backoff = Backoff::new(&plugin.tuning);
    let mut instance = first;
    let mut delay = None;
    loop {
        if instance.is_none() {
            if let Some(delay) = delay {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = plugin.cancel.cancelled() => return,
                    _ = retire.cancelled() => return,
                }
            }
            match plugin.start_instance().await {
                Ok(started) => instance = Some(started),
                Err(message) => {
                    if plugin.cancel.is_cancelled() || retire.is_cancelled() {
                        return;
                    }
                    set_last_exit(&plugin, message);
                    delay = Some(backoff.next_delay());
                    continue;
                }
            }
        }
        let Some(running) = instance.take() else {
            continue;
        };
        plugin.replicas.set_instance(slot, Some(running.shared()));
        let started = Instant::now();
        let reason = tokio::select! {
            reason = running.wait_exit() => reason,
            _ = plugin.cancel.cancelled() => {
                plugin.replicas.set_instance(slot, None);
                running.kill_and_wait("plugin stopped").await;
                return;
            }
            _ = retire.cancelled() => {
                drain(&plugin, slot, &running).await;
                return;
            }
        };
        plugin.replicas.set_instance(slot, None);
        if started.elapsed() >= plugin.tuning.healthy_after {
            backoff.reset();
        }
        tracing::warn!(plugin = %plugin.uid, pid = running.pid(), reason = %reason, "plugin instance exited; restarting");
        set_last_exit(&plugin, reason);
        delay = Some(backoff.next_delay());
    }
}

/// Retires a slot's instance: no new sessions, then a stop once its sessions have ended (or at
/// once when the plugin is stopped).
async fn drain(plugin: &LocalRuntime, slot: u64, running: &InstanceOwner) {
    plugin.replicas.set_draining(slot);
    plugin.emit(LifecycleKind::InstanceRetiring {
        pid: running.pid(),
        reason: "scaled down".into(),
    });
    loop {
        // A session that picked this instance just before it was marked draining registers
        // within this pause.
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_POLL) => {}
            _ = running.wait_exit() => break,
            _ = plugin.cancel.cancelled() => break,
        }
        if running.session_count() == 0 {
            break;
        }
    }
    plugin.replicas.set_instance(slot, None);
    running.kill_and_wait("scaled down").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut backoff = Backoff::new(&RuntimeTuning::default());
        let delays: Vec<f64> = (0..9).map(|_| backoff.next_delay().as_secs_f64()).collect();
        assert_eq!(delays, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }
}
