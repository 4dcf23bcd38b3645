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
    hashes: Mutex<HashMap<String, HashMap<String, String>>>,
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

    pub(crate) fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        if self.get(key).is_some() {
            return false;
        }
        self.set(key, value, Some(ttl));
        true
    }

    pub(crate) fn expire(&self, key: &str, ttl: Duration) -> bool {
        let mut values = guard(&self.values);
        let now = Instant::now();
        match values.map.get_mut(key) {
            Some((_, until)) if until.is_none_or(|u| u > now) => {
                *until = Some(now + ttl);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn hset(&self, key: &str, field: &str, value: &str) {
        guard(&self.hashes)
            .entry(key.to_owned())
            .or_default()
            .insert(field.to_owned(), value.to_owned());
    }

    pub(crate) fn hget(&self, key: &str, field: &str) -> Option<String> {
        guard(&self.hashes).get(key)?.get(field).cloned()
    }

    pub(crate) fn hgetall(&self, key: &str) -> Vec<(String, String)> {
        guard(&self.hashes)
            .get(key)
            .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    pub(crate) fn hdel(&self, key: &str, field: &str) -> u64 {
        let mut hashes = guard(&self.hashes);
        let Some(hash) = hashes.get_mut(key) else {
            return 0;
        };
        let removed = u64::from(hash.remove(field).is_some());
        if hash.is_empty() {
            hashes.remove(key);
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
