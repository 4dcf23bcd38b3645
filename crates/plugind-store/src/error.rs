//! The one error type of the store: database, migration, serialisation and object-storage
//! failures, plus a connection error whose message names the server it tried to reach.

/// Everything that can go wrong in `plugind-store`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database server (or file) could not be reached or opened.
    #[error("cannot connect to {backend} at {address} (database {database}): {cause}")]
    Connect {
        /// `PostgreSQL`, `MySQL` or `SQLite`.
        backend: &'static str,
        /// `host:port`, or the file path for SQLite.
        address: String,
        database: String,
        cause: String,
    },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored JSON column could not be decoded, or a value could not be encoded.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A configured service (object storage) did not answer at a check.
    #[error("{what} is unreachable: {cause}")]
    Unreachable { what: String, cause: String },
    #[error("object storage error: {0}")]
    Blob(#[from] opendal::Error),
    /// The caller passed a value the database cannot store (e.g. a non-UUID tenant id on
    /// PostgreSQL).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn json(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
        move |source| StoreError::Json { what, source }
    }

    /// Deadlocks, serialisation failures and SQLite lock contention: the whole transaction may
    /// simply be run again.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(
                    e.code().as_deref(),
                    Some("40001" | "40P01" | "5" | "6" | "517")
                )
            }
            _ => false,
        }
    }

    /// A unique index or constraint was violated.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}
