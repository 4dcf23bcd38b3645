//! `dify migrate`: the daemon's database settings (upstream names), connect, migrate.
//!
//! Like the daemon: no `DB_HOST` (and `DB_TYPE` unset or `sqlite`) means the embedded SQLite
//! file `<PLUGIND_DATA_DIR>/plugind.db`; otherwise PostgreSQL or MySQL as configured.
//! `Db::connect` creates a missing PostgreSQL/MySQL database and runs the migrations.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use plugind_store::{Db, DbConfig};

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    #[arg(long, env = "PLUGIND_DATA_DIR", default_value = "plugind-data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "DB_TYPE")]
    pub db_type: Option<String>,
    #[arg(long, env = "DB_HOST")]
    pub db_host: Option<String>,
    #[arg(long, env = "DB_PORT")]
    pub db_port: Option<u16>,
    #[arg(long, env = "DB_USERNAME", default_value = "postgres")]
    pub db_username: String,
    #[arg(long, env = "DB_PASSWORD", default_value = "", hide_env_values = true)]
    pub db_password: String,
    #[arg(long, env = "DB_DATABASE", default_value = "dify_plugin")]
    pub db_database: String,
    #[arg(long, env = "DB_SSL_MODE", default_value = "disable")]
    pub db_ssl_mode: String,
}

impl DbArgs {
    pub fn config(&self) -> anyhow::Result<DbConfig> {
        let kind = self.db_type.as_deref().map(str::to_ascii_lowercase);
        let host = self.db_host.clone().filter(|h| !h.is_empty());
        Ok(match (kind.as_deref(), host) {
            (None | Some("sqlite"), None) => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!("cannot create data directory {}", self.data_dir.display())
                })?;
                DbConfig::Sqlite {
                    path: self.data_dir.join("plugind.db"),
                }
            }
            (Some("sqlite"), Some(_)) => bail!("DB_TYPE=sqlite does not take DB_HOST"),
            (None | Some("postgresql" | "pgbouncer"), Some(host)) => DbConfig::Postgres {
                host,
                port: self.db_port.unwrap_or(5432),
                user: self.db_username.clone(),
                password: self.db_password.clone(),
                database: self.db_database.clone(),
                sslmode: self.db_ssl_mode.clone(),
                max_conns: 2,
            },
            (Some("mysql" | "oceanbase" | "seekdb"), Some(host)) => DbConfig::MySql {
                host,
                port: self.db_port.unwrap_or(3306),
                user: self.db_username.clone(),
                password: self.db_password.clone(),
                database: self.db_database.clone(),
                max_conns: 2,
            },
            (Some(kind), None) => {
                bail!("DB_TYPE={kind} needs DB_HOST (and DB_PORT, DB_USERNAME, DB_PASSWORD, DB_DATABASE)")
            }
            (Some(other), _) => {
                bail!("DB_TYPE={other} is not one of postgresql, pgbouncer, mysql, sqlite")
            }
        })
    }

    pub fn describe(cfg: &DbConfig) -> String {
        match cfg {
            DbConfig::Sqlite { path } => format!("SQLite {}", path.display()),
            DbConfig::Postgres {
                host,
                port,
                database,
                ..
            } => {
                format!("PostgreSQL {host}:{port}/{database}")
            }
            DbConfig::MySql {
                host,
                port,
                database,
                ..
            } => {
                format!("MySQL {host}:{port}/{database}")
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let cfg = args.db.config()?;
    let what = DbArgs::describe(&cfg);
    eprintln!("migrating {what}");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let db = Db::connect(&cfg)
            .await
            .with_context(|| format!("cannot connect to {what}"))?;
        db.migrate().await.context("migration failed")?;
        db.close().await;
        anyhow::Ok(())
    })?;
    eprintln!("migration finished");
    Ok(())
}
