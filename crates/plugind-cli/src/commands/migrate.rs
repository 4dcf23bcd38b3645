//! `dify migrate`: the daemon's database settings (upstream names), connect, migrate.
//!
//! The settings are resolved by `plugind_store::DbSettings`, exactly as the daemon does: no
//! `DB_HOST` (and `DB_TYPE` unset or `sqlite`) means the embedded SQLite file
//! `<PLUGIND_DATA_DIR>/plugind.db`; otherwise PostgreSQL or MySQL as configured. `Db::connect`
//! creates a missing PostgreSQL/MySQL database; `migrate` then runs the migrations.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use plugind_store::{Db, DbConfig, DbSettings};

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
    #[arg(long, env = "DB_EXTRAS", default_value = "")]
    pub db_extras: String,
}

impl DbArgs {
    /// The database these settings select (`plugind_store::DbSettings`, like the daemon). The CLI
    /// is short-lived: a pool of two connections.
    pub fn config(&self) -> anyhow::Result<DbConfig> {
        let settings = DbSettings {
            db_type: self.db_type.clone(),
            host: self.db_host.clone(),
            port: self.db_port,
            username: self.db_username.clone(),
            password: self.db_password.clone(),
            database: self.db_database.clone(),
            ssl_mode: self.db_ssl_mode.clone(),
            max_open_conns: 2,
            max_idle_conns: 2,
            conn_max_lifetime: 3600,
            extras: self.db_extras.clone(),
            data_dir: self.data_dir.clone(),
        };
        Ok(settings.resolve()?)
    }
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let cfg = args.db.config()?;
    let what = cfg.describe();
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
