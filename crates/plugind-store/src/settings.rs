//! Upstream's database settings (`DB_TYPE`, `DB_HOST`, `DB_PORT`, …) resolved into a
//! [`DbConfig`], in one place for the daemon and the CLI. The binaries parse the environment
//! (clap) and hand the plain values here.
//!
//! No `DB_HOST` (and `DB_TYPE` unset or `sqlite`) means the embedded SQLite file
//! `<data_dir>/plugind.db`; otherwise PostgreSQL (`postgresql`, `pgbouncer`, the default with a
//! host) or MySQL (`mysql`, `oceanbase`, `seekdb`) as configured. A setting given explicitly is
//! never ignored: `DB_TYPE=mysql` without `DB_HOST` is an error, not SQLite.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DbConfig, PoolSettings};

/// The `DB_*` values as given (empty strings count as unset for type and host).
#[derive(Clone, Debug)]
pub struct DbSettings {
    pub db_type: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: String,
    pub password: String,
    pub database: String,
    /// `DB_SSL_MODE`: `disable` or `require` (TLS for PostgreSQL and MySQL).
    pub ssl_mode: String,
    /// Pool size (`DB_MAX_OPEN_CONNS` for the daemon; a short-lived CLI needs few).
    pub max_open_conns: u32,
    /// `DB_MAX_IDLE_CONNS` (Go clamps it to the open bound; so do we).
    pub max_idle_conns: u32,
    /// `DB_CONN_MAX_LIFETIME`, seconds; 0 = connections are never recycled for age.
    pub conn_max_lifetime: u64,
    /// `DB_EXTRAS`: PostgreSQL `options`; ignored for MySQL (as upstream).
    pub extras: String,
    /// Where the embedded SQLite file lives (`PLUGIND_DATA_DIR`).
    pub data_dir: PathBuf,
}

/// Settings that select no database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbSettingsError {
    #[error("DB_TYPE=sqlite does not take DB_HOST")]
    SqliteWithHost,
    #[error("DB_TYPE={0} needs DB_HOST (and DB_PORT, DB_USERNAME, DB_PASSWORD, DB_DATABASE)")]
    MissingHost(String),
    #[error("DB_TYPE={0} is not one of postgresql, pgbouncer, mysql, oceanbase, seekdb, sqlite")]
    UnknownType(String),
    #[error("DB_SSL_MODE must be disable or require, got {0:?}")]
    SslMode(String),
}

impl DbSettings {
    /// The database these settings select.
    pub fn resolve(&self) -> Result<DbConfig, DbSettingsError> {
        let kind = self
            .db_type
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_ascii_lowercase);
        let host = self.host.clone().filter(|h| !h.is_empty());
        let ssl_mode = self.ssl_mode.trim().to_ascii_lowercase();
        if !matches!(ssl_mode.as_str(), "" | "disable" | "require") {
            return Err(DbSettingsError::SslMode(self.ssl_mode.clone()));
        }
        let pool = PoolSettings {
            max_open: self.max_open_conns.max(1),
            max_idle: self.max_idle_conns.min(self.max_open_conns.max(1)),
            max_lifetime: (self.conn_max_lifetime > 0)
                .then(|| Duration::from_secs(self.conn_max_lifetime)),
        };
        match (kind.as_deref(), host) {
            (None | Some("sqlite"), None) => Ok(DbConfig::Sqlite {
                path: self.data_dir.join("plugind.db"),
            }),
            (Some("sqlite"), Some(_)) => Err(DbSettingsError::SqliteWithHost),
            (None | Some("postgresql" | "pgbouncer"), Some(host)) => Ok(DbConfig::Postgres {
                host,
                port: self.port.unwrap_or(5432),
                user: self.username.clone(),
                password: self.password.clone(),
                database: self.database.clone(),
                sslmode: ssl_mode.clone(),
                extras: self.extras.clone(),
                pool,
            }),
            (Some("mysql" | "oceanbase" | "seekdb"), Some(host)) => Ok(DbConfig::MySql {
                host,
                port: self.port.unwrap_or(3306),
                user: self.username.clone(),
                password: self.password.clone(),
                database: self.database.clone(),
                sslmode: ssl_mode.clone(),
                pool,
            }),
            (
                Some(kind @ ("postgresql" | "pgbouncer" | "mysql" | "oceanbase" | "seekdb")),
                None,
            ) => Err(DbSettingsError::MissingHost(kind.to_owned())),
            (Some(other), _) => Err(DbSettingsError::UnknownType(other.to_owned())),
        }
    }
}

impl DbConfig {
    /// `SQLite <path>`, `PostgreSQL host:port/db` or `MySQL host:port/db` (no credentials).
    pub fn describe(&self) -> String {
        match self {
            DbConfig::Sqlite { path } => format!("SQLite {}", path.display()),
            DbConfig::Postgres {
                host,
                port,
                database,
                ..
            } => format!("PostgreSQL {host}:{port}/{database}"),
            DbConfig::MySql {
                host,
                port,
                database,
                ..
            } => format!("MySQL {host}:{port}/{database}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(db_type: Option<&str>, host: Option<&str>) -> DbSettings {
        DbSettings {
            db_type: db_type.map(str::to_owned),
            host: host.map(str::to_owned),
            port: None,
            username: "postgres".into(),
            password: "secret".into(),
            database: "dify_plugin".into(),
            ssl_mode: "disable".into(),
            max_open_conns: 7,
            max_idle_conns: 10,
            conn_max_lifetime: 3600,
            extras: String::new(),
            data_dir: PathBuf::from("data"),
        }
    }

    #[test]
    fn settings_select_one_database_or_say_why_not() {
        let sqlite = DbConfig::Sqlite {
            path: PathBuf::from("data/plugind.db"),
        };
        assert_eq!(settings(None, None).resolve(), Ok(sqlite.clone()));
        assert_eq!(
            settings(Some("SQLite"), Some("")).resolve(),
            Ok(sqlite.clone())
        );
        assert_eq!(settings(Some(""), None).resolve(), Ok(sqlite));
        let pg = settings(Some("pgbouncer"), Some("db"))
            .resolve()
            .expect("pg");
        assert_eq!(pg.describe(), "PostgreSQL db:5432/dify_plugin");
        assert!(
            matches!(pg, DbConfig::Postgres { pool: PoolSettings { max_open: 7, max_idle: 7, max_lifetime: Some(_) }, ref sslmode, .. } if sslmode == "disable")
        );
        let pg = settings(None, Some("db")).resolve().expect("pg");
        assert_eq!(pg.describe(), "PostgreSQL db:5432/dify_plugin");
        let mut s = settings(Some("OceanBase"), Some("db"));
        s.port = Some(2881);
        assert_eq!(
            s.resolve().expect("mysql").describe(),
            "MySQL db:2881/dify_plugin"
        );
        assert_eq!(
            settings(Some("sqlite"), Some("db")).resolve(),
            Err(DbSettingsError::SqliteWithHost)
        );
        assert_eq!(
            settings(Some("mysql"), None).resolve(),
            Err(DbSettingsError::MissingHost("mysql".into()))
        );
        let mut bad_ssl = settings(None, Some("db"));
        bad_ssl.ssl_mode = "verify-full".into();
        assert_eq!(
            bad_ssl.resolve(),
            Err(DbSettingsError::SslMode("verify-full".into()))
        );
        let mut forever = settings(None, Some("db"));
        forever.conn_max_lifetime = 0;
        assert!(matches!(
            forever.resolve(),
            Ok(DbConfig::Postgres {
                pool: PoolSettings {
                    max_lifetime: None,
                    ..
                },
                ..
            })
        ));
        let err = settings(Some("oracle"), None)
            .resolve()
            .expect_err("oracle");
        assert_eq!(
            err.to_string(),
            "DB_TYPE=oracle is not one of postgresql, pgbouncer, mysql, oceanbase, seekdb, sqlite"
        );
    }
}
