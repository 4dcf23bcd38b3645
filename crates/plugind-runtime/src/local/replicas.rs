//! The replica set of one local plugin: a member per replica slot (its ready instance, if any,
//! and whether it is being retired), the picker that sends each new session to the ready
//! instance with the fewest sessions in flight (round-robin among equals), and the wake-up a
//! request gives the scaling loop when a plugin scaled to zero has no instance at all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::instance::Instance;
use crate::lifecycle::InstanceStatus;

/// One replica slot: kept alive by its own supervisor task.
#[derive(Clone)]
pub(crate) struct Member {
    slot: u64,
    /// The ready instance; `None` while (re)starting.
    instance: Option<Arc<Instance>>,
    /// Being retired: takes no new sessions.
    draining: bool,
}

pub(crate) struct Replicas {
    members: watch::Sender<Vec<Member>>,
    /// Round-robin position among instances with equally few sessions.
    turn: AtomicUsize,
    /// A request found no member at all (scaled to zero): the scaling loop starts one.
    wake: Notify,
    /// When a session last was in flight or picked an instance (scale to zero).
    last_used: Mutex<Instant>,
}

impl Default for Replicas {
    fn default() -> Self {
        Replicas {
            members: watch::channel(Vec::new()).0,
            turn: AtomicUsize::new(0),
            wake: Notify::new(),
            last_used: Mutex::new(Instant::now()),
        }
    }
}

impl Replicas {
    /// Adds replica slot `slot` (no-op if it is there already).
    pub(crate) fn add(&self, slot: u64) {
        self.members.send_if_modified(|m| {
            if m.iter().any(|m| m.slot == slot) {
                return false;
            }
            m.push(Member {
                slot,
                instance: None,
                draining: false,
            });
            true
        });
    }

    pub(crate) fn remove(&self, slot: u64) {
        self.members.send_if_modified(|m| {
            let before = m.len();
            m.retain(|m| m.slot != slot);
            m.len() != before
        });
    }

    /// Publishes (or withdraws, with `None`) the ready instance of `slot`.
    pub(crate) fn set_instance(&self, slot: u64, instance: Option<Arc<Instance>>) {
        self.members.send_modify(|m| {
            if let Some(member) = m.iter_mut().find(|m| m.slot == slot) {
                member.instance = instance;
            }
        });
    }

    pub(crate) fn set_draining(&self, slot: u64) {
        self.members.send_modify(|m| {
            if let Some(member) = m.iter_mut().find(|m| m.slot == slot) {
                member.draining = true;
            }
        });
    }

    /// The ready instance with the fewest sessions in flight, round-robin among equals;
    /// retiring instances are skipped.
    pub(crate) fn pick(&self) -> Option<Arc<Instance>> {
        let members = self.members.borrow();
        let ready: Vec<&Arc<Instance>> = members
            .iter()
            .filter(|m| !m.draining)
            .filter_map(|m| m.instance.as_ref())
            .filter(|i| i.is_ready())
            .collect();
        if ready.is_empty() {
            return None;
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % ready.len();
        let mut best: Option<(&Arc<Instance>, usize)> = None;
        for k in 0..ready.len() {
            let instance = ready[(start + k) % ready.len()];
            let sessions = instance.session_count();
            if best.is_none_or(|(_, fewest)| sessions < fewest) {
                best = Some((instance, sessions));
            }
        }
        best.map(|(instance, _)| instance.clone())
    }

    /// True when no member is serving or starting (scaled to zero, or every member retiring).
    pub(crate) fn is_empty(&self) -> bool {
        self.members.borrow().iter().all(|m| m.draining)
    }

    /// True when an instance serves new sessions.
    pub(crate) fn has_ready(&self) -> bool {
        self.members
            .borrow()
            .iter()
            .any(|m| !m.draining && m.instance.as_ref().is_some_and(|i| i.is_ready()))
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Vec<Member>> {
        self.members.subscribe()
    }

    /// Sessions in flight over every instance, retiring ones included.
    pub(crate) fn sessions(&self) -> usize {
        self.members
            .borrow()
            .iter()
            .filter_map(|m| m.instance.as_ref())
            .map(|i| i.session_count())
            .sum()
    }

    /// The pid of the first serving instance.
    pub(crate) fn first_pid(&self) -> Option<u32> {
        self.members
            .borrow()
            .iter()
            .filter(|m| !m.draining)
            .find_map(|m| m.instance.as_ref().map(|i| i.pid()))
    }

    pub(crate) fn statuses(&self) -> Vec<InstanceStatus> {
        self.members
            .borrow()
            .iter()
            .filter_map(|m| {
                m.instance.as_ref().map(|i| InstanceStatus {
                    pid: i.pid(),
                    sessions: i.session_count(),
                    draining: m.draining,
                })
            })
            .collect()
    }

    /// Records that the plugin is in use now.
    pub(crate) fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long the plugin has been unused.
    pub(crate) fn idle_for(&self) -> std::time::Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Asks the scaling loop for an instance (kept if nobody waits yet).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}
