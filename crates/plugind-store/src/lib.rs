//! State for plugind: the SQL repositories over the Go daemon's own schema (SQLite, PostgreSQL
//! or MySQL; `Db::connect_and_migrate` for the daemon, `Db::connect` alone for readers), the
//! database settings (`DB_*`, [`DbSettings`]) and object storage over opendal.
//!
//! Table, column, index and constraint names and column types are upstream's (PSC Part 5), so
//! plugind can be pointed at a database the Go daemon has been using.

pub mod blob;
pub mod blob_settings;
pub mod db;
pub mod error;
pub mod settings;

pub use blob::Blobs;
pub use blob_settings::{StorageKind, StorageSettings};
pub use db::{
    new_hook_id, new_id, Db, DbConfig, EndpointRow, InstallOutcome, NewEndpoint, PoolSettings,
    PoolStats, UninstallOutcome, UpgradeOutcome,
};
pub use error::StoreError;
pub use settings::{DbSettings, DbSettingsError};
