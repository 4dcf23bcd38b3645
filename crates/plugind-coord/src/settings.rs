//! Upstream's `REDIS_*` settings (PSC §7.1, §8.7) plus Dify's Cluster-mode names
//! (`REDIS_USE_CLUSTERS`, `REDIS_CLUSTERS`, `REDIS_CLUSTERS_PASSWORD`; upstream's daemon has no
//! Cluster mode). The binaries parse the environment and hand the plain values here.

use std::path::PathBuf;
use std::time::Duration;

use crate::CoordError;

/// The `REDIS_*` values as given. `host` empty and no Sentinel/Cluster means "no Redis".
#[derive(Clone, Default)]
pub struct RedisSettings {
    pub host: Option<String>,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub db: i64,
    /// `REDIS_KEY_PREFIX`; empty (after trimming) means `plugin_daemon`.
    pub key_prefix: String,
    pub use_ssl: bool,
    /// `REDIS_SSL_CERT_REQS`: empty, `CERT_NONE`, `CERT_OPTIONAL` or `CERT_REQUIRED`.
    pub ssl_cert_reqs: String,
    /// `REDIS_SSL_CA_CERTS`: PEM file.
    pub ssl_ca_certs: Option<PathBuf>,
    pub use_sentinel: bool,
    /// `REDIS_SENTINELS`: `host:port,host:port`.
    pub sentinels: String,
    pub sentinel_service_name: String,
    pub sentinel_username: String,
    pub sentinel_password: String,
    /// `REDIS_SENTINEL_SOCKET_TIMEOUT`, seconds; used as the dial timeout when > 0.
    pub sentinel_socket_timeout: f64,
    pub use_clusters: bool,
    /// `REDIS_CLUSTERS`: `host:port,host:port`.
    pub clusters: String,
    pub clusters_password: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("use_ssl", &self.use_ssl)
            .field("use_sentinel", &self.use_sentinel)
            .field("use_clusters", &self.use_clusters)
            .finish_non_exhaustive()
    }
}

/// Where Redis is, once the settings are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    Single {
        host: String,
        port: u16,
    },
    Sentinel {
        sentinels: Vec<(String, u16)>,
        service: String,
    },
    Cluster {
        nodes: Vec<(String, u16)>,
    },
}

/// How the server certificate is checked (`REDIS_SSL_CERT_REQS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertCheck {
    None,
    /// Verify against the system roots, or the given CA bundle.
    Verify(Option<PathBuf>),
}

/// Checked Redis settings.
#[derive(Clone)]
pub struct RedisConfig {
    pub topology: Topology,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub prefix: String,
    /// `Some` when TLS is on.
    pub tls: Option<CertCheck>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub dial_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("db", &self.db)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Default connect timeout when the settings give none.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `host:port,host:port`, items trimmed, empty items dropped (upstream's parsing).
fn parse_addrs(list: &str, what: &str) -> Result<Vec<(String, u16)>, CoordError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (host, port) = item
                .rsplit_once(':')
                .ok_or_else(|| CoordError::Config(format!("{what}: {item:?} is not host:port")))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| CoordError::Config(format!("{what}: {item:?} has no valid port")))?;
            Ok((host.to_owned(), port))
        })
        .collect()
}

impl RedisSettings {
    /// Whether any Redis is configured at all.
    pub fn is_configured(&self) -> bool {
        self.use_sentinel
            || self.use_clusters
            || self.host.as_deref().is_some_and(|h| !h.trim().is_empty())
    }

    /// The checked configuration, or `None` when no Redis is configured (in-process
    /// coordination). Errors name the offending variable.
    pub fn resolve(&self) -> Result<Option<RedisConfig>, CoordError> {
        if !self.is_configured() {
            return Ok(None);
        }
        if self.use_sentinel && self.use_clusters {
            return Err(CoordError::Config(
                "REDIS_USE_SENTINEL and REDIS_USE_CLUSTERS are both true; choose one".into(),
            ));
        }
        let topology = if self.use_sentinel {
            let sentinels = parse_addrs(&self.sentinels, "REDIS_SENTINELS")?;
            if sentinels.is_empty() {
                return Err(CoordError::Config(
                    "REDIS_USE_SENTINEL=true needs REDIS_SENTINELS (host:port,host:port)".into(),
                ));
            }
            let service = non_empty(&self.sentinel_service_name).ok_or_else(|| {
                CoordError::Config(
                    "REDIS_USE_SENTINEL=true needs REDIS_SENTINEL_SERVICE_NAME (the master name)"
                        .into(),
                )
            })?;
            Topology::Sentinel { sentinels, service }
        } else if self.use_clusters {
            let nodes = parse_addrs(&self.clusters, "REDIS_CLUSTERS")?;
            if nodes.is_empty() {
                return Err(CoordError::Config(
                    "REDIS_USE_CLUSTERS=true needs REDIS_CLUSTERS (host:port,host:port)".into(),
                ));
            }
            if self.db != 0 {
                return Err(CoordError::Config(
                    "REDIS_USE_CLUSTERS=true needs REDIS_DB=0 (Redis Cluster has one database)"
                        .into(),
                ));
            }
            Topology::Cluster { nodes }
        } else {
            Topology::Single {
                host: self.host.clone().unwrap_or_default().trim().to_owned(),
                port: self.port,
            }
        };
        let tls = if self.use_ssl {
            Some(cert_check(&self.ssl_cert_reqs, self.ssl_ca_certs.as_ref())?)
        } else {
            None
        };
        let password = if self.use_clusters {
            non_empty(&self.clusters_password).or_else(|| non_empty(&self.password))
        } else {
            non_empty(&self.password)
        };
        let dial_timeout = if self.sentinel_socket_timeout > 0.0 && self.use_sentinel {
            Duration::try_from_secs_f64(self.sentinel_socket_timeout)
                .map_err(|e| CoordError::Config(format!("REDIS_SENTINEL_SOCKET_TIMEOUT: {e}")))?
        } else {
            DEFAULT_DIAL_TIMEOUT
        };
        Ok(Some(RedisConfig {
            topology,
            username: non_empty(&self.username),
            password,
            db: self.db,
            prefix: non_empty(&self.key_prefix).unwrap_or_else(|| "plugin_daemon".into()),
            tls,
            sentinel_username: non_empty(&self.sentinel_username),
            sentinel_password: non_empty(&self.sentinel_password),
            dial_timeout,
        }))
    }
}

/// `REDIS_SSL_CERT_REQS` with upstream's rules and messages (PSC §7.1).
fn cert_check(reqs: &str, ca: Option<&PathBuf>) -> Result<CertCheck, CoordError> {
    let ca = ca.filter(|p| !p.as_os_str().is_empty()).cloned();
    match reqs.trim().to_ascii_uppercase().as_str() {
        "CERT_NONE" => Ok(CertCheck::None),
        "" | "CERT_OPTIONAL" => Ok(CertCheck::Verify(ca)),
        "CERT_REQUIRED" => match ca {
            Some(ca) => Ok(CertCheck::Verify(Some(ca))),
            None => Err(CoordError::Config(
                "REDIS_SSL_CA_CERTS must be provided when REDIS_SSL_CERT_REQS is set to CERT_REQUIRED"
                    .into(),
            )),
        },
        _ => Err(CoordError::Config(format!(
            "invalid REDIS_SSL_CERT_REQS value: {} (valid options: CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)",
            reqs.trim()
        ))),
    }
}

impl RedisConfig {
    /// `Redis host:port db N`, `Redis Sentinel <service> via host:port,…`, `Redis Cluster …`
    /// (no credentials).
    pub fn describe(&self) -> String {
        let join = |v: &[(String, u16)]| {
            v.iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let tls = if self.tls.is_some() { " (TLS)" } else { "" };
        match &self.topology {
            Topology::Single { host, port } => format!("Redis {host}:{port} db {}{tls}", self.db),
            Topology::Sentinel { sentinels, service } => format!(
                "Redis Sentinel master {service} via {} db {}{tls}",
                join(sentinels),
                self.db
            ),
            Topology::Cluster { nodes } => format!("Redis Cluster {}{tls}", join(nodes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single() -> RedisSettings {
        RedisSettings {
            host: Some("redis".into()),
            port: 6379,
            ..RedisSettings::default()
        }
    }

    #[test]
    fn no_host_means_in_process() {
        assert!(RedisSettings::default().resolve().expect("ok").is_none());
        let empty = RedisSettings {
            host: Some(" ".into()),
            ..RedisSettings::default()
        };
        assert!(empty.resolve().expect("ok").is_none());
    }

    #[test]
    fn single_node_with_defaults() {
        let cfg = single().resolve().expect("ok").expect("some");
        assert_eq!(cfg.prefix, "plugin_daemon");
        assert_eq!(cfg.describe(), "Redis redis:6379 db 0");
        assert!(cfg.password.is_none() && cfg.tls.is_none());
    }

    #[test]
    fn tls_cert_reqs_follow_upstream() {
        let mut s = single();
        s.use_ssl = true;
        s.ssl_cert_reqs = " cert_none ".into();
        assert_eq!(
            s.resolve().expect("ok").expect("some").tls,
            Some(CertCheck::None)
        );
        s.ssl_cert_reqs = "CERT_REQUIRED".into();
        let err = s.resolve().expect_err("needs CA").to_string();
        assert!(err.contains("REDIS_SSL_CA_CERTS must be provided"), "{err}");
        s.ssl_ca_certs = Some("/ca.pem".into());
        assert_eq!(
            s.resolve().expect("ok").expect("some").tls,
            Some(CertCheck::Verify(Some("/ca.pem".into())))
        );
        s.ssl_cert_reqs = "maybe".into();
        let err = s.resolve().expect_err("bad").to_string();
        assert_eq!(
            err,
            "invalid REDIS_SSL_CERT_REQS value: maybe (valid options: CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)"
        );
    }

    #[test]
    fn sentinel_and_cluster_lists() {
        let s = RedisSettings {
            use_sentinel: true,
            sentinels: " a:26379, ,b:26380 ".into(),
            sentinel_service_name: "mymaster".into(),
            sentinel_socket_timeout: 0.1,
            ..RedisSettings::default()
        };
        let cfg = s.resolve().expect("ok").expect("some");
        assert_eq!(
            cfg.topology,
            Topology::Sentinel {
                sentinels: vec![("a".into(), 26379), ("b".into(), 26380)],
                service: "mymaster".into()
            }
        );
        assert_eq!(cfg.dial_timeout, Duration::from_millis(100));
        let no_name = RedisSettings {
            sentinel_service_name: String::new(),
            ..s
        };
        assert!(no_name
            .resolve()
            .expect_err("name")
            .to_string()
            .contains("REDIS_SENTINEL_SERVICE_NAME"));

        let c = RedisSettings {
            use_clusters: true,
            clusters: "n1:7000,n2:7001".into(),
            clusters_password: "pw".into(),
            ..RedisSettings::default()
        };
        let cfg = c.resolve().expect("ok").expect("some");
        assert_eq!(cfg.password.as_deref(), Some("pw"));
        assert_eq!(cfg.describe(), "Redis Cluster n1:7000,n2:7001");
        let bad = RedisSettings {
            clusters: "n1".into(),
            ..c
        };
        assert!(bad.resolve().is_err());
    }
}
