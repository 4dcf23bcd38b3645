//! The in-process backend: the same semantics as the Redis one (expiry, owner tokens,
//! publish/subscribe) inside one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Expired cache entries are swept after this many writes.
const SWEEP_EVERY: u64 = 1024;

#[derive(Default)]
pub(crate) struct Local {
    values: Mutex<Values>,
    locks: Mutex<HashMap<String, Held>>,
    released: Notify,
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

#[derive(Default)]
struct Values {
    map: HashMap<String, (Vec<u8>, Option<Instant>)>,
    writes: u64,
}

struct Held {
    token: String,
    until: Instant,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Local {
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut values = guard(&self.values);
        match values.map.get(key) {
            Some((_, Some(until))) if *until <= Instant::now() => {
                values.map.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    pub(crate) fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        let now = Instant::now();
        let mut values = guard(&self.values);
        values
            .map
            .insert(key.to_owned(), (value.to_vec(), ttl.map(|t| now + t)));
        values.writes += 1;
        if values.writes.is_multiple_of(SWEEP_EVERY) {
            values
                .map
                .retain(|_, (_, until)| until.is_none_or(|u| u > now));
        }
    }

    pub(crate) fn del(&self, key: &str) -> u64 {
        let mut values = guard(&self.values);
        match values.map.remove(key) {
            Some((_, Some(until))) if until <= Instant::now() => 0,
            Some(_) => 1,
            None => 0,
        }
    }

    pub(crate) fn try_lock(&self, name: &str, token: &str, expire: Duration) -> bool {
        let now = Instant::now();
        let mut locks = guard(&self.locks);
        match locks.get(name) {
            Some(held) if held.until > now => false,
            _ => {
                locks.insert(
                    name.to_owned(),
                    Held {
                        token: token.to_owned(),
                        until: now + expire,
                    },
                );
                true
            }
        }
    }

    /// Resolves when some lock is released (or soon after: callers also poll).
    pub(crate) fn released(&self) -> Option<tokio::sync::futures::Notified<'_>> {
        Some(self.released.notified())
    }

    pub(crate) fn renew(&self, name: &str, token: &str, expire: Duration) -> bool {
        let now = Instant::now();
        let mut locks = guard(&self.locks);
        match locks.get_mut(name) {
            Some(held) if held.token == token && held.until > now => {
                held.until = now + expire;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn unlock(&self, name: &str, token: &str) -> bool {
        let removed = {
            let mut locks = guard(&self.locks);
            if locks.get(name).is_some_and(|h| h.token == token) {
                locks.remove(name);
                true
            } else {
                false
            }
        };
        if removed {
            self.released.notify_waiters();
        }
        removed
    }

    pub(crate) fn publish(&self, channel: &str, message: &str) {
        let channels = guard(&self.channels);
        if let Some(tx) = channels.get(channel) {
            let _ = tx.send(message.to_owned());
        }
    }

    pub(crate) fn subscribe(
        &self,
        channel: &str,
        tx: mpsc::Sender<String>,
        stop: CancellationToken,
    ) {
        let mut rx = {
            let mut channels = guard(&self.channels);
            channels
                .entry(channel.to_owned())
                .or_insert_with(|| broadcast::channel(1024).0)
                .subscribe()
        };
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    () = stop.cancelled() => return,
                    msg = rx.recv() => msg,
                };
                match msg {
                    Ok(m) => {
                        if tx.send(m).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}
