//! State for plugind: the SQL repositories over the Go daemon's own schema (SQLite, PostgreSQL
//! or MySQL, migrated on connect) and object storage over opendal.
//!
//! Table, column, index and constraint names and column types are upstream's (PSC Part 5), so
//! plugind can be pointed at a database the Go daemon has been using.

pub mod blob;
pub mod db;
pub mod error;

pub use blob::Blobs;
pub use db::{new_id, Db, DbConfig, InstallOutcome, UninstallOutcome};
pub use error::StoreError;
