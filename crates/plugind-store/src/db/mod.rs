//! The database handle: connection (with database auto-creation), migrations, the per-backend
//! dispatch macro and the one-line SQL dialect rewrite.
//!
//! Queries are written once, in PostgreSQL form (`$1..$n` in ascending order, `::uuid` /
//! `::text` casts where PostgreSQL needs them), and [`rewrite`] turns them into the SQLite or
//! MySQL spelling. [`dispatch!`] then expands the same body once per concrete pool type, so no
//! `Any` driver is involved and PostgreSQL `uuid`/`timestamptz` columns keep their real types.

mod declarations;
mod endpoints;
mod installations;
mod readmes;
mod storages;
mod tasks;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::pool::{Pool, PoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Database, Transaction};

use crate::StoreError;

pub use endpoints::{new_hook_id, EndpointRow, NewEndpoint};
pub use installations::{InstallOutcome, UninstallOutcome, UpgradeOutcome};

/// How long connecting (and waiting for a pooled connection) may take before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// Where the state lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbConfig {
    /// Embedded default: one SQLite file (WAL, created if missing).
    Sqlite { path: PathBuf },
    Postgres {
        host: String,
        port: u16,
        user: String,
        password: String,
        database: String,
        /// `disable` or `require`.
        sslmode: String,
        /// `DB_EXTRAS`: PostgreSQL `options` (`-c name=value …`, an `options=` prefix allowed).
        extras: String,
        pool: PoolSettings,
    },
    MySql {
        host: String,
        port: u16,
        user: String,
        password: String,
        database: String,
        /// `disable` or `require` (TLS).
        sslmode: String,
        pool: PoolSettings,
    },
}

/// Pool bounds (`DB_MAX_OPEN_CONNS`, `DB_MAX_IDLE_CONNS`, `DB_CONN_MAX_LIFETIME`), upstream's
/// defaults 30 / 10 / 3600 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections open at most; more callers wait (up to [`CONNECT_TIMEOUT`]) for one.
    pub max_open: u32,
    /// Idle connections kept; a connection returned to a pool that already has this many idle
    /// ones is closed (Go's `SetMaxIdleConns`).
    pub max_idle: u32,
    /// A connection is closed after this long (`None`: never).
    pub max_lifetime: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_open: 30,
            max_idle: 10,
            max_lifetime: Some(Duration::from_secs(3600)),
        }
    }
}

/// How many connections a pool has, for `/metrics/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections (idle + in use).
    pub open: u32,
    pub idle: u32,
    pub max_open: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

#[derive(Clone, Debug)]
pub(crate) enum Pools {
    Sqlite(Arc<SqlitePool>),
    Postgres(Arc<PgPool>),
    MySql(Arc<MySqlPool>),
}

/// A connected database (migrated by [`Db::connect_and_migrate`] or [`Db::migrate`]). Cheap to
/// clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pools: Pools,
    max_open: u32,
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`; the body is compiled once per
/// backend, so every query in it is written once.
macro_rules! dispatch {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pools {
            $crate::db::Pools::Sqlite(p) => {
                let $pool: &sqlx::SqlitePool = p;
                $body
            }
            $crate::db::Pools::Postgres(p) => {
                let $pool: &sqlx::PgPool = p;
                $body
            }
            $crate::db::Pools::MySql(p) => {
                let $pool: &sqlx::MySqlPool = p;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// Reads a nullable column, mapping SQL NULL to the type's default (gorm writes zero values, but
/// a hand-edited upstream database may hold NULLs).
macro_rules! col {
    ($row:expr, $name:literal, $t:ty) => {
        sqlx::Row::try_get::<Option<$t>, _>(&$row, $name)?.unwrap_or_default()
    };
}
pub(crate) use col;

/// A fresh UUIDv7 id, as upstream generates for every row.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now, truncated to milliseconds: MySQL `datetime(3)` keeps no more, and values read back
/// should equal the ones written on every backend.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// Rewrites PostgreSQL-form SQL for `backend`: `$n` → `?`, casts stripped, `FOR UPDATE` dropped
/// on SQLite, `ON CONFLICT (...) DO NOTHING` → `INSERT IGNORE` on MySQL.
pub(crate) fn rewrite(backend: Backend, sql: &str) -> String {
    if backend == Backend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    for cast in ["::uuid", "::timestamptz", "::text"] {
        out = out.replace(cast, "");
    }
    match backend {
        Backend::Sqlite => out = out.replace(" FOR UPDATE", ""),
        Backend::MySql => {
            if let Some(start) = out.find(" ON CONFLICT") {
                if out[start..].trim_end().ends_with("DO NOTHING") {
                    out.truncate(start);
                    out = out.replacen("INSERT INTO", "INSERT IGNORE INTO", 1);
                }
            }
        }
        Backend::Postgres => {}
    }
    out
}

/// Starts a transaction that will write. SQLite takes the write lock up front (`BEGIN
/// IMMEDIATE`) so concurrent writers queue on the busy timeout instead of failing on a lock
/// upgrade; PostgreSQL and MySQL use row locks (`FOR UPDATE`) inside a plain transaction.
pub(crate) trait BeginWrite {
    type Db: Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

impl BeginWrite for MySqlPool {
    type Db = sqlx::MySql;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send
    {
        self.begin()
    }
}

/// Runs a transactional operation again when the database reports a deadlock, a serialisation
/// failure or SQLite lock contention (a few attempts, short growing pause).
pub(crate) async fn retry<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && attempt < 8 => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "retrying transaction");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

fn connect_error(
    backend: &'static str,
    address: String,
    database: &str,
    cause: impl std::fmt::Display,
) -> StoreError {
    StoreError::Connect {
        backend,
        address,
        database: database.to_owned(),
        cause: cause.to_string(),
    }
}

/// Error code of a database error, if it is one.
fn db_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

fn mysql_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(d) => d
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number()),
        _ => None,
    }
}

/// Why a direct connection attempt failed: the database error code (if any) and the message.
struct ProbeError {
    code: Option<String>,
    message: String,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Connects one connection directly (no pool retry loop), bounded by [`CONNECT_TIMEOUT`].
async fn probe<C: Connection>(opts: &C::Options) -> Result<C, ProbeError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, C::connect_with(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(ProbeError {
            code: db_code(&e),
            message: e.to_string(),
        }),
        Err(_) => Err(ProbeError {
            code: None,
            message: format!("timed out after {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

/// Where the idle cap finds its pool once it exists (weak: it does not keep the pool alive).
type PoolSlot<DB> = Arc<OnceLock<Weak<Pool<DB>>>>;

/// Pool options with upstream's bounds; the idle cap needs the pool itself, handed in through
/// the returned slot once it exists.
fn bounded<DB: Database>(
    options: PoolOptions<DB>,
    settings: PoolSettings,
) -> (PoolOptions<DB>, PoolSlot<DB>) {
    let slot: PoolSlot<DB> = Arc::default();
    let max_idle = usize::try_from(settings.max_idle).unwrap_or(usize::MAX);
    let seen = slot.clone();
    let options = options
        .max_connections(settings.max_open.max(1))
        .min_connections(0)
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_lifetime(settings.max_lifetime)
        .after_release(move |_conn, _meta| {
            let keep = seen
                .get()
                .and_then(Weak::upgrade)
                .is_none_or(|pool| pool.num_idle() < max_idle);
            Box::pin(async move { Ok(keep) })
        });
    (options, slot)
}

/// `DB_EXTRAS` as PostgreSQL run-time parameters: `-c a=b -c c=d`, `-ca=b` or `--a=b`, with
/// or without a leading `options=` (upstream passes it as libpq `options`).
fn pg_options(extras: &str) -> Result<Vec<(String, String)>, StoreError> {
    let text = extras.trim();
    let text = text.strip_prefix("options=").unwrap_or(text).trim();
    let text = text.trim_matches(|c| c == '\'' || c == '"');
    let mut out = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        let pair = if word == "-c" {
            words.next().unwrap_or_default()
        } else if let Some(rest) = word.strip_prefix("-c") {
            rest
        } else if let Some(rest) = word.strip_prefix("--") {
            rest
        } else {
            word
        };
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            StoreError::Invalid(format!(
                "DB_EXTRAS: {word:?} is not a run-time parameter (expected -c name=value)"
            ))
        })?;
        out.push((k.replace('-', "_"), v.to_owned()));
    }
    Ok(out)
}

fn quote_ident(name: &str, quote: char) -> String {
    let doubled: String = [quote, quote].iter().collect();
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

impl Db {
    /// [`Db::connect`], then [`Db::migrate`]: what the daemon does on start.
    pub async fn connect_and_migrate(cfg: &DbConfig) -> Result<Db, StoreError> {
        let db = Self::connect(cfg).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects, and creates the PostgreSQL/MySQL database when it does not exist yet (through
    /// the `postgres`/`mysql` database, as upstream does). Runs no migration: readers such as
    /// `dify plugin cleanup --db` leave the schema as they found it.
    pub async fn connect(cfg: &DbConfig) -> Result<Db, StoreError> {
        let db = match cfg {
            DbConfig::Sqlite { path } => Self::connect_sqlite(path).await?,
            DbConfig::Postgres {
                host,
                port,
                user,
                password,
                database,
                sslmode,
                extras,
                pool,
            } => {
                Self::connect_postgres(
                    host, *port, user, password, database, sslmode, extras, *pool,
                )
                .await?
            }
            DbConfig::MySql {
                host,
                port,
                user,
                password,
                database,
                sslmode,
                pool,
            } => Self::connect_mysql(host, *port, user, password, database, sslmode, *pool).await?,
        };
        Ok(db)
    }

    async fn connect_sqlite(path: &std::path::Path) -> Result<Db, StoreError> {
        let fail = |cause: &dyn std::fmt::Display| {
            connect_error("SQLite", path.display().to_string(), "main", cause)
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| fail(&e))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| fail(&e))?;
        Ok(Db {
            pools: Pools::Sqlite(Arc::new(pool)),
            max_open: 8,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn connect_postgres(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        database: &str,
        sslmode: &str,
        extras: &str,
        pool: PoolSettings,
    ) -> Result<Db, StoreError> {
        let address = format!("{host}:{port}");
        let ssl = match sslmode {
            "" | "disable" => PgSslMode::Disable,
            "require" => PgSslMode::Require,
            other => {
                let sslmode = PgSslMode::from_str(other).map_err(|_| {
                    StoreError::Invalid(format!(
                        "DB_SSL_MODE must be disable or require, got {other:?}"
                    ))
                })?;
                sslmode
            }
        };
        let mut base = PgConnectOptions::new()
            .host(host)
            .port(port)
            .username(user)
            .ssl_mode(ssl)
            .application_name("plugind");
        if !password.is_empty() {
            base = base.password(password);
        }
        let options = pg_options(extras)?;
        if !options.is_empty() {
            base = base.options(options);
        }
        let opts = base.clone().database(database);
        match probe::<sqlx::PgConnection>(&opts).await {
            Ok(conn) => drop(conn.close().await),
            Err(cause) => {
                // Anything but "database does not exist" is a real connection failure.
                if cause.code.as_deref() != Some("3D000") {
                    return Err(connect_error("PostgreSQL", address, database, cause));
                }
                let admin = base.clone().database("postgres");
                let mut conn = probe::<sqlx::PgConnection>(&admin)
                    .await
                    .map_err(|c| connect_error("PostgreSQL", address.clone(), "postgres", c))?;
                let exists: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                        .bind(database)
                        .fetch_optional(&mut conn)
                        .await?;
                if exists.is_none() {
                    tracing::info!(database, "creating PostgreSQL database");
                    let created =
                        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(database, '"')))
                            .execute(&mut conn)
                            .await;
                    if let Err(e) = created {
                        // Lost a race with another process creating it: fine.
                        if !matches!(db_code(&e).as_deref(), Some("42P04" | "23505")) {
                            return Err(e.into());
                        }
                    }
                }
                drop(conn.close().await);
                let conn = probe::<sqlx::PgConnection>(&opts)
                    .await
                    .map_err(|c| connect_error("PostgreSQL", address.clone(), database, c))?;
                drop(conn.close().await);
            }
        }
        let (options, slot) = bounded(PgPoolOptions::new(), pool);
        let pg = options
            .connect_with(opts)
            .await
            .map_err(|e| connect_error("PostgreSQL", address, database, e))?;
        let pg = Arc::new(pg);
        let _ = slot.set(Arc::downgrade(&pg));
        Ok(Db {
            pools: Pools::Postgres(pg),
            max_open: pool.max_open.max(1),
        })
    }

    async fn connect_mysql(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        database: &str,
        sslmode: &str,
        pool: PoolSettings,
    ) -> Result<Db, StoreError> {
        let address = format!("{host}:{port}");
        let ssl = match sslmode {
            "" | "disable" => sqlx::mysql::MySqlSslMode::Disabled,
            "require" => sqlx::mysql::MySqlSslMode::Required,
            other => {
                return Err(StoreError::Invalid(format!(
                    "DB_SSL_MODE must be disable or require, got {other:?}"
                )))
            }
        };
        let mut base = MySqlConnectOptions::new()
            .host(host)
            .port(port)
            .username(user)
            .ssl_mode(ssl)
            .charset("utf8mb4");
        if !password.is_empty() {
            base = base.password(password);
        }
        let opts = base.clone().database(database);
        match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::MySqlConnection::connect_with(&opts))
            .await
        {
            Ok(Ok(conn)) => drop(conn.close().await),
            // ER_BAD_DB_ERROR: unknown database.
            Ok(Err(e)) if mysql_number(&e) == Some(1049) => {
                let admin = base.clone().database("mysql");
                let mut conn = probe::<sqlx::MySqlConnection>(&admin)
                    .await
                    .map_err(|c| connect_error("MySQL", address.clone(), "mysql", c))?;
                tracing::info!(database, "creating MySQL database");
                sqlx::query(&format!(
                    "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4",
                    quote_ident(database, '`')
                ))
                .execute(&mut conn)
                .await?;
                drop(conn.close().await);
            }
            Ok(Err(e)) => return Err(connect_error("MySQL", address, database, e)),
            Err(_) => {
                return Err(connect_error(
                    "MySQL",
                    address,
                    database,
                    format!("timed out after {}s", CONNECT_TIMEOUT.as_secs()),
                ))
            }
        }
        let (options, slot) = bounded(MySqlPoolOptions::new(), pool);
        let my = options
            .connect_with(opts)
            .await
            .map_err(|e| connect_error("MySQL", address, database, e))?;
        let my = Arc::new(my);
        let _ = slot.set(Arc::downgrade(&my));
        Ok(Db {
            pools: Pools::MySql(my),
            max_open: pool.max_open.max(1),
        })
    }

    /// Creates missing tables and indexes; never drops or alters existing ones.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pools {
            Pools::Sqlite(p) => SQLITE_MIGRATOR.run(&**p).await?,
            Pools::Postgres(p) => POSTGRES_MIGRATOR.run(&**p).await?,
            Pools::MySql(p) => MYSQL_MIGRATOR.run(&**p).await?,
        }
        Ok(())
    }

    /// Open and idle connections of the pool, and its bound.
    pub fn pool_stats(&self) -> PoolStats {
        let (open, idle) = match &self.pools {
            Pools::Sqlite(p) => (p.size(), p.num_idle()),
            Pools::Postgres(p) => (p.size(), p.num_idle()),
            Pools::MySql(p) => (p.size(), p.num_idle()),
        };
        PoolStats {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max_open: self.max_open,
        }
    }

    /// Runs one statement that answers one text value (diagnostics: the server version for
    /// `plugind doctor`, settings in tests). Not for application queries.
    pub async fn scalar_text(&self, sql: &str) -> Result<Option<String>, StoreError> {
        let value: Option<Option<String>> = dispatch!(self, pool => {
            sqlx::query_scalar(sql).fetch_optional(pool).await?
        });
        Ok(value.flatten())
    }

    /// `"sqlite"`, `"postgresql"` or `"mysql"`.
    pub fn backend(&self) -> &'static str {
        match self.kind() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        }
    }

    pub(crate) fn kind(&self) -> Backend {
        match &self.pools {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
            Pools::MySql(_) => Backend::MySql,
        }
    }

    /// The PostgreSQL-form `sql` in this backend's dialect.
    pub(crate) fn sql(&self, sql: &str) -> String {
        rewrite(self.kind(), sql)
    }

    /// False when `value` cannot be stored in a `uuid` column of this backend (only PostgreSQL
    /// checks; MySQL/SQLite accept any string, as upstream's do).
    pub(crate) fn uuid_ok(&self, value: &str) -> bool {
        self.kind() != Backend::Postgres || uuid::Uuid::parse_str(value).is_ok()
    }

    /// Like [`Db::uuid_ok`] but as an error for writes.
    pub(crate) fn require_uuid(&self, what: &str, value: &str) -> Result<(), StoreError> {
        if self.uuid_ok(value) {
            Ok(())
        } else {
            Err(StoreError::Invalid(format!(
                "{what} must be a UUID on PostgreSQL, got {value:?}"
            )))
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every pooled connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_per_backend() {
        let sql = "SELECT id::text AS id FROM t WHERE tenant_id = $1::uuid AND x = $2 FOR UPDATE";
        assert_eq!(rewrite(Backend::Postgres, sql), sql);
        assert_eq!(
            rewrite(Backend::MySql, sql),
            "SELECT id AS id FROM t WHERE tenant_id = ? AND x = ? FOR UPDATE"
        );
        assert_eq!(
            rewrite(Backend::Sqlite, sql),
            "SELECT id AS id FROM t WHERE tenant_id = ? AND x = ?"
        );
        let ins = "INSERT INTO p (a, b) VALUES ($1, $10) ON CONFLICT (a) DO NOTHING";
        assert_eq!(
            rewrite(Backend::MySql, ins),
            "INSERT IGNORE INTO p (a, b) VALUES (?, ?)"
        );
        assert_eq!(
            rewrite(Backend::Sqlite, ins),
            "INSERT INTO p (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING"
        );
    }
}
