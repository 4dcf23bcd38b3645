//! Coordination between the parts of one daemon, and later between the nodes of a cluster:
//! a cache with expiry, locks with expiry and an owner token, and publish/subscribe. One
//! interface ([`Coord`]), two implementations: in-process (the embedded default, one node) and
//! Redis (single node, Sentinel or Cluster; PSC Part 7).
//!
//! Keys and channels are logical names (`persistence:cache:<tenant>:…`); the Redis backend
//! writes them as `<REDIS_KEY_PREFIX>:<name>` (PSC §7.2) so they match upstream's where another
//! tool reads them. Values are bytes and stored raw (upstream stores strings raw).
//!
//! Every process has a node id (a UUIDv4 per start, as upstream), for cluster membership later.
//!
//! **Invariant:** an operation against an unreachable Redis fails within the response timeout
//! with [`CoordError::Unavailable`] naming the server; it never hangs, and the next operation
//! after Redis is back succeeds (the connection is re-established on demand).

mod local;
mod redis_backend;
pub mod settings;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use settings::{CertCheck, RedisConfig, RedisSettings, Topology};

/// Everything that can go wrong in coordination.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// Invalid `REDIS_*` settings.
    #[error("{0}")]
    Config(String),
    /// Redis did not answer (or answered with an error).
    #[error("{server} is unavailable: {cause}")]
    Unavailable { server: String, cause: String },
    /// The lock is held by someone else and the wait ran out.
    #[error("lock timeout: {0} is held elsewhere")]
    LockTimeout(String),
    /// A lock was asked for with a zero expiry.
    #[error("lock expiration must be positive")]
    BadExpiry,
}

/// How to take a lock (PSC §7.4 "owned lock").
#[derive(Clone, Copy, Debug)]
pub struct LockOptions {
    /// The lock frees itself this long after the last renewal (its holder renews it every
    /// third of it while it holds it, so only a dead holder lets it expire).
    pub expire: Duration,
    /// How long to wait for a held lock; `None` waits until it is free.
    pub wait: Option<Duration>,
}

impl LockOptions {
    /// Expire after `expire`, wait until free.
    pub fn waiting(expire: Duration) -> LockOptions {
        LockOptions { expire, wait: None }
    }
}

pub(crate) enum Backend {
    Local(local::Local),
    Redis(Box<redis_backend::RedisCoord>),
}

/// The coordination handle. Cheap to clone.
#[derive(Clone)]
pub struct Coord {
    backend: Arc<Backend>,
    node_id: Arc<str>,
}

impl std::fmt::Debug for Coord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coord")
            .field("backend", &self.describe())
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl Coord {
    /// In-process coordination: one node, nothing shared with other processes.
    pub fn in_process() -> Coord {
        Coord::with(Backend::Local(local::Local::default()))
    }

    /// Connects to Redis and checks it answers `PING` (as upstream's start-up does); the error
    /// names the server.
    pub async fn connect(cfg: &RedisConfig) -> Result<Coord, CoordError> {
        let redis = redis_backend::RedisCoord::connect(cfg).await?;
        let coord = Coord::with(Backend::Redis(Box::new(redis)));
        coord.ping().await?;
        Ok(coord)
    }

    /// From the settings: Redis when configured, in-process otherwise.
    pub async fn from_settings(settings: &RedisSettings) -> Result<Coord, CoordError> {
        match settings.resolve()? {
            Some(cfg) => Coord::connect(&cfg).await,
            None => Ok(Coord::in_process()),
        }
    }

    fn with(backend: Backend) -> Coord {
        Coord {
            backend: Arc::new(backend),
            node_id: uuid::Uuid::new_v4().to_string().into(),
        }
    }

    /// This process's node id (a UUIDv4 per start).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Whether state is shared through Redis (several processes may coordinate).
    pub fn is_shared(&self) -> bool {
        matches!(*self.backend, Backend::Redis(_))
    }

    /// `in-process` or the Redis server (no credentials).
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Local(_) => "in-process".into(),
            Backend::Redis(r) => r.describe().to_owned(),
        }
    }

    /// Checks the backend answers.
    pub async fn ping(&self) -> Result<(), CoordError> {
        match &*self.backend {
            Backend::Local(_) => Ok(()),
            Backend::Redis(r) => r.ping().await,
        }
    }

    /// The cached value, `None` when absent or expired.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.get(key)),
            Backend::Redis(r) => r.get(key).await,
        }
    }

    /// Stores `value` under `key`, expiring after `ttl` (`None`: never).
    pub async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), CoordError> {
        match &*self.backend {
            Backend::Local(l) => {
                l.set(key, value, ttl);
                Ok(())
            }
            Backend::Redis(r) => r.set(key, value, ttl).await,
        }
    }

    /// Deletes `key`; the number of keys deleted (0 or 1).
    pub async fn del(&self, key: &str) -> Result<u64, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.del(key)),
            Backend::Redis(r) => r.del(key).await,
        }
    }

    /// Whether `key` holds an unexpired value.
    pub async fn exists(&self, key: &str) -> Result<bool, CoordError> {
        Ok(self.get(key).await?.is_some())
    }

    /// Takes the lock `name` (`SET NX PX` with a random token), waiting as `opts` says. The
    /// guard renews it every `expire / 3` until released or dropped.
    pub async fn lock(&self, name: &str, opts: LockOptions) -> Result<LockGuard, CoordError> {
        if opts.expire.is_zero() {
            return Err(CoordError::BadExpiry);
        }
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = opts.wait.map(|w| tokio::time::Instant::now() + w);
        let mut pause = Duration::from_millis(20);
        loop {
            let taken = match &*self.backend {
                Backend::Local(l) => l.try_lock(name, &token, opts.expire),
                Backend::Redis(r) => r.try_lock(name, &token, opts.expire).await?,
            };
            if taken {
                break;
            }
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(CoordError::LockTimeout(name.to_owned()));
            }
            let sleep = match &*self.backend {
                // Woken at once when a holder in this process releases.
                Backend::Local(l) => l.released(),
                Backend::Redis(_) => None,
            };
            let wake = tokio::time::sleep(match deadline {
                Some(d) => pause.min(d.saturating_duration_since(now)),
                None => pause,
            });
            match sleep {
                Some(notified) => {
                    tokio::select! {
                        () = notified => {},
                        () = wake => {},
                    }
                }
                None => wake.await,
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        }
        let stop = CancellationToken::new();
        let keeper = tokio::spawn(keep_alive(
            self.clone(),
            name.to_owned(),
            token.clone(),
            opts.expire,
            stop.clone(),
        ));
        Ok(LockGuard {
            coord: self.clone(),
            name: name.to_owned(),
            token,
            stop,
            keeper: Some(keeper),
        })
    }

    async fn renew(&self, name: &str, token: &str, expire: Duration) -> Result<bool, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.renew(name, token, expire)),
            Backend::Redis(r) => r.renew(name, token, expire).await,
        }
    }

    async fn unlock(&self, name: &str, token: &str) -> Result<bool, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.unlock(name, token)),
            Backend::Redis(r) => r.unlock(name, token).await,
        }
    }

    /// Stores `value` under `key` only if absent (`SET NX PX`); whether it was stored.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.set_nx(key, value, ttl)),
            Backend::Redis(r) => r.set_nx(key, value, ttl).await,
        }
    }

    /// Sets the expiry of an existing `key`; whether it existed.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.expire(key, ttl)),
            Backend::Redis(r) => r.expire(key, ttl).await,
        }
    }

    /// Sets `field` of the hash `key` (no expiry; hash fields and values are text, upstream
    /// writes JSON there).
    pub async fn hset(&self, key: &str, field: &str, value: &str) -> Result<(), CoordError> {
        match &*self.backend {
            Backend::Local(l) => {
                l.hset(key, field, value);
                Ok(())
            }
            Backend::Redis(r) => r.hset(key, field, value).await,
        }
    }

    /// `field` of the hash `key`.
    pub async fn hget(&self, key: &str, field: &str) -> Result<Option<String>, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.hget(key, field)),
            Backend::Redis(r) => r.hget(key, field).await,
        }
    }

    /// Every field of the hash `key`, in no particular order.
    pub async fn hgetall(&self, key: &str) -> Result<Vec<(String, String)>, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.hgetall(key)),
            Backend::Redis(r) => r.hgetall(key).await,
        }
    }

    /// Deletes `field` of the hash `key`; the number deleted (0 or 1).
    pub async fn hdel(&self, key: &str, field: &str) -> Result<u64, CoordError> {
        match &*self.backend {
            Backend::Local(l) => Ok(l.hdel(key, field)),
            Backend::Redis(r) => r.hdel(key, field).await,
        }
    }

    /// Publishes `message` on `channel` to every subscriber (of every node, with Redis).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), CoordError> {
        match &*self.backend {
            Backend::Local(l) => {
                l.publish(channel, message);
                Ok(())
            }
            Backend::Redis(r) => r.publish(channel, message).await,
        }
    }

    /// Subscribes to `channel`. With Redis, the subscription survives outages: it is
    /// re-established in the background (messages published meanwhile are lost, as with any
    /// Redis pub/sub), so invalidation subscribers must also expire what they cache.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, CoordError> {
        let (tx, rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        match &*self.backend {
            Backend::Local(l) => l.subscribe(channel, tx, stop.clone()),
            Backend::Redis(r) => r.subscribe(channel, tx, stop.clone()).await?,
        }
        Ok(Subscription {
            rx,
            _stop: stop.drop_guard(),
        })
    }
}

async fn keep_alive(
    coord: Coord,
    name: String,
    token: String,
    expire: Duration,
    stop: CancellationToken,
) {
    let every = (expire / 3).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match coord.renew(&name, &token, expire).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lock = %name, "lock expired while held (lock is not owned)");
                return;
            }
            Err(err) => tracing::warn!(lock = %name, error = %err, "could not renew a lock"),
        }
    }
}

/// A held lock. [`LockGuard::release`] frees it; dropping it frees it in the background.
pub struct LockGuard {
    coord: Coord,
    name: String,
    token: String,
    stop: CancellationToken,
    keeper: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .finish()
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frees the lock now (only if this guard still owns it).
    pub async fn release(mut self) -> Result<(), CoordError> {
        self.stop.cancel();
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.await;
        }
        let result = self.coord.unlock(&self.name, &self.token).await;
        self.token.clear();
        result.map(|_| ())
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.cancel();
        if self.token.is_empty() {
            return;
        }
        if let Backend::Local(l) = &*self.coord.backend {
            l.unlock(&self.name, &self.token);
            return;
        }
        let coord = self.coord.clone();
        let name = std::mem::take(&mut self.name);
        let token = std::mem::take(&mut self.token);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(err) = coord.unlock(&name, &token).await {
                    tracing::warn!(lock = %name, error = %err, "could not release a lock; it expires by itself");
                }
            });
        }
    }
}

/// Messages of one channel, in order. Dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<String>,
    _stop: tokio_util::sync::DropGuard,
}

impl Subscription {
    /// The next message; `None` once the backend is gone.
    pub async fn next(&mut self) -> Option<String> {
        self.rx.recv().await
    }
}
