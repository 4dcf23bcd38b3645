//! The Redis backend (PSC §7.1–7.4): one multiplexed connection that reconnects on demand
//! (single node and Sentinel: `ConnectionManager`; Cluster: the cluster connection), a separate
//! connection per subscription, owned locks with Lua renew/unlock.

use std::time::Duration;

use futures::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo,
    RedisConnectionInfo, Script, TlsCertificates, TlsMode,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::settings::{CertCheck, RedisConfig, Topology};
use crate::CoordError;

/// How long one command may wait for its answer before the call fails (an outage surfaces as
/// an error on the request, not a hang).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

const RENEW: &str = r#"if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end"#;
const UNLOCK: &str = r#"if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end"#;

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

pub(crate) struct RedisCoord {
    conn: Conn,
    /// Where subscriptions connect (the master, or the first cluster node: Cluster broadcasts
    /// `PUBLISH` to every node).
    pubsub: Client,
    prefix: String,
    describe: String,
    dial_timeout: Duration,
    renew: Script,
    unlock: Script,
}

fn addr(host: &str, port: u16, tls: Option<&CertCheck>) -> ConnectionAddr {
    match tls {
        None => ConnectionAddr::Tcp(host.to_owned(), port),
        Some(check) => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: matches!(check, CertCheck::None),
            tls_params: None,
        },
    }
}

fn redis_info(cfg: &RedisConfig) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default().set_db(cfg.db);
    if let Some(u) = &cfg.username {
        info = info.set_username(u);
    }
    if let Some(p) = &cfg.password {
        info = info.set_password(p);
    }
    info
}

/// The CA bundle of `REDIS_SSL_CA_CERTS`, with upstream's messages.
fn ca_certs(cfg: &RedisConfig) -> Result<Option<TlsCertificates>, CoordError> {
    let Some(CertCheck::Verify(Some(path))) = &cfg.tls else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| {
        CoordError::Config(format!("read REDIS_SSL_CA_CERTS: {}: {e}", path.display()))
    })?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(CoordError::Config(format!(
            "failed to append CA certs from {}",
            path.display()
        )));
    }
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

fn client_for(
    info: ConnectionInfo,
    certs: &Option<TlsCertificates>,
) -> Result<Client, redis::RedisError> {
    match certs {
        Some(c) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: c.root_cert.clone(),
            },
        ),
        None => Client::open(info),
    }
}

impl RedisCoord {
    pub(crate) async fn connect(cfg: &RedisConfig) -> Result<RedisCoord, CoordError> {
        let describe = cfg.describe();
        let fail = |e: &dyn std::fmt::Display| CoordError::Unavailable {
            server: describe.clone(),
            cause: e.to_string(),
        };
        let certs = ca_certs(cfg)?;
        let within = |what: &'static str| {
            let server = describe.clone();
            let timeout = cfg.dial_timeout;
            move |_| CoordError::Unavailable {
                server,
                cause: format!("{what} did not answer within {}s", timeout.as_secs_f64()),
            }
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.dial_timeout))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let (conn, pubsub) = match &cfg.topology {
            Topology::Single { host, port } => {
                let info = addr(host, *port, cfg.tls.as_ref())
                    .into_connection_info()
                    .map_err(|e| fail(&e))?
                    .set_redis_settings(redis_info(cfg));
                let client = client_for(info, &certs).map_err(|e| fail(&e))?;
                let manager = tokio::time::timeout(
                    cfg.dial_timeout,
                    ConnectionManager::new_with_config(client.clone(), manager_config),
                )
                .await
                .map_err(within("the server"))?
                .map_err(|e| fail(&e))?;
                (Conn::Single(manager), client)
            }
            Topology::Sentinel { sentinels, service } => {
                let tls_mode = cfg.tls.as_ref().map(|c| match c {
                    CertCheck::None => TlsMode::Insecure,
                    CertCheck::Verify(_) => TlsMode::Secure,
                });
                let mut builder = SentinelClientBuilder::new(
                    sentinels.iter().map(|(h, p)| addr(h, *p, cfg.tls.as_ref())),
                    service,
                    SentinelServerType::Master,
                )
                .map_err(|e| fail(&e))?
                .set_client_to_redis_db(cfg.db);
                if let Some(mode) = tls_mode {
                    builder = builder
                        .set_client_to_redis_tls_mode(mode)
                        .set_client_to_sentinel_tls_mode(mode);
                }
                if let Some(c) = &certs {
                    builder = builder
                        .set_client_to_redis_certificates(TlsCertificates {
                            client_tls: None,
                            root_cert: c.root_cert.clone(),
                        })
                        .set_client_to_sentinel_certificates(TlsCertificates {
                            client_tls: None,
                            root_cert: c.root_cert.clone(),
                        });
                }
                if let Some(u) = &cfg.username {
                    builder = builder.set_client_to_redis_username(u);
                }
                if let Some(p) = &cfg.password {
                    builder = builder.set_client_to_redis_password(p);
                }
                if let Some(u) = &cfg.sentinel_username {
                    builder = builder.set_client_to_sentinel_username(u);
                }
                if let Some(p) = &cfg.sentinel_password {
                    builder = builder.set_client_to_sentinel_password(p);
                }
                let mut sentinel = builder.build().map_err(|e| fail(&e))?;
                let client = tokio::time::timeout(cfg.dial_timeout, sentinel.async_get_client())
                    .await
                    .map_err(within("the sentinels"))?
                    .map_err(|e| fail(&e))?;
                let manager = tokio::time::timeout(
                    cfg.dial_timeout,
                    ConnectionManager::new_with_config(client.clone(), manager_config),
                )
                .await
                .map_err(within("the master"))?
                .map_err(|e| fail(&e))?;
                (Conn::Single(manager), client)
            }
            Topology::Cluster { nodes } => {
                let infos: Vec<ConnectionInfo> = nodes
                    .iter()
                    .map(|(h, p)| {
                        addr(h, *p, cfg.tls.as_ref())
                            .into_connection_info()
                            .map(|i| i.set_redis_settings(redis_info(cfg)))
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| fail(&e))?;
                let mut builder = redis::cluster::ClusterClientBuilder::new(infos.clone())
                    .connection_timeout(cfg.dial_timeout)
                    .response_timeout(RESPONSE_TIMEOUT);
                if let Some(c) = &certs {
                    builder = builder.certs(TlsCertificates {
                        client_tls: None,
                        root_cert: c.root_cert.clone(),
                    });
                }
                let cluster = builder.build().map_err(|e| fail(&e))?;
                let conn = tokio::time::timeout(cfg.dial_timeout, cluster.get_async_connection())
                    .await
                    .map_err(within("the cluster"))?
                    .map_err(|e| fail(&e))?;
                let first = infos
                    .into_iter()
                    .next()
                    .ok_or_else(|| CoordError::Config("REDIS_CLUSTERS is empty".into()))?;
                let client = client_for(first, &certs).map_err(|e| fail(&e))?;
                (Conn::Cluster(conn), client)
            }
        };
        Ok(RedisCoord {
            conn,
            pubsub,
            prefix: cfg.prefix.clone(),
            describe,
            dial_timeout: cfg.dial_timeout,
            renew: Script::new(RENEW),
            unlock: Script::new(UNLOCK),
        })
    }

    pub(crate) fn describe(&self) -> &str {
        &self.describe
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> CoordError {
        CoordError::Unavailable {
            server: self.describe.clone(),
            cause: e.to_string(),
        }
    }

    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, CoordError> {
        let answer = match &self.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        answer.map_err(|e| self.unavailable(e))
    }

    async fn script(&self, script: &Script, key: &str, args: &[String]) -> Result<i64, CoordError> {
        let mut invocation = script.key(key);
        for a in args {
            invocation.arg(a);
        }
        let answer = match &self.conn {
            Conn::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        };
        answer.map_err(|e| self.unavailable(e))
    }

    pub(crate) async fn ping(&self) -> Result<(), CoordError> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(self.unavailable(format!("PING answered {pong:?}")))
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CoordError> {
        let value: Option<Vec<u8>> = self.query(redis::cmd("GET").arg(self.key(key))).await?;
        // Upstream: an empty value is "not found".
        Ok(value.filter(|v| !v.is_empty()))
    }

    pub(crate) async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), CoordError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        let _: () = self.query(&cmd).await?;
        Ok(())
    }

    pub(crate) async fn del(&self, key: &str) -> Result<u64, CoordError> {
        self.query(redis::cmd("DEL").arg(self.key(key))).await
    }

    pub(crate) async fn try_lock(
        &self,
        name: &str,
        token: &str,
        expire: Duration,
    ) -> Result<bool, CoordError> {
        let answer: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(name))
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(expire)),
            )
            .await?;
        Ok(answer.is_some())
    }

    pub(crate) async fn renew(
        &self,
        name: &str,
        token: &str,
        expire: Duration,
    ) -> Result<bool, CoordError> {
        let n = self
            .script(
                &self.renew,
                &self.key(name),
                &[token.to_owned(), millis(expire).to_string()],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn unlock(&self, name: &str, token: &str) -> Result<bool, CoordError> {
        let n = self
            .script(&self.unlock, &self.key(name), &[token.to_owned()])
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, CoordError> {
        let answer: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(answer.is_some())
    }

    pub(crate) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, CoordError> {
        let n: i64 = self
            .query(redis::cmd("PEXPIRE").arg(self.key(key)).arg(millis(ttl)))
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn hset(&self, key: &str, field: &str, value: &str) -> Result<(), CoordError> {
        let _: i64 = self
            .query(redis::cmd("HSET").arg(self.key(key)).arg(field).arg(value))
            .await?;
        Ok(())
    }

    pub(crate) async fn hget(&self, key: &str, field: &str) -> Result<Option<String>, CoordError> {
        self.query(redis::cmd("HGET").arg(self.key(key)).arg(field))
            .await
    }

    pub(crate) async fn hgetall(&self, key: &str) -> Result<Vec<(String, String)>, CoordError> {
        self.query(redis::cmd("HGETALL").arg(self.key(key))).await
    }

    pub(crate) async fn hdel(&self, key: &str, field: &str) -> Result<u64, CoordError> {
        self.query(redis::cmd("HDEL").arg(self.key(key)).arg(field))
            .await
    }

    pub(crate) async fn publish(&self, channel: &str, message: &str) -> Result<(), CoordError> {
        let _: i64 = self
            .query(redis::cmd("PUBLISH").arg(self.key(channel)).arg(message))
            .await?;
        Ok(())
    }

    async fn open_pubsub(
        client: &Client,
        channel: &str,
        timeout: Duration,
    ) -> Result<redis::aio::PubSub, String> {
        let connect = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f64())),
        }
    }

    pub(crate) async fn subscribe(
        &self,
        channel: &str,
        tx: mpsc::Sender<String>,
        stop: CancellationToken,
    ) -> Result<(), CoordError> {
        let channel = self.key(channel);
        let client = self.pubsub.clone();
        let timeout = self.dial_timeout;
        let first = Self::open_pubsub(&client, &channel, timeout)
            .await
            .map_err(|e| self.unavailable(e))?;
        let server = self.describe.clone();
        tokio::spawn(async move {
            let mut current = Some(first);
            let mut pause = Duration::from_millis(100);
            loop {
                let pubsub = match current.take() {
                    Some(p) => p,
                    None => {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(pause) => {}
                        }
                        match Self::open_pubsub(&client, &channel, timeout).await {
                            Ok(p) => {
                                tracing::info!(%server, %channel, "subscription re-established");
                                pause = Duration::from_millis(100);
                                p
                            }
                            Err(e) => {
                                tracing::debug!(%server, %channel, error = %e, "resubscribe failed");
                                pause = (pause * 2).min(Duration::from_secs(5));
                                continue;
                            }
                        }
                    }
                };
                let mut messages = pubsub.into_on_message();
                loop {
                    let msg = tokio::select! {
                        () = stop.cancelled() => return,
                        msg = messages.next() => msg,
                    };
                    let Some(msg) = msg else { break };
                    let Ok(payload) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if tx.send(payload).await.is_err() {
                        return;
                    }
                }
                tracing::warn!(%server, %channel, "subscription lost; re-subscribing");
            }
        });
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
