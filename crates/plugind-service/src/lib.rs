//! Services: what the daemon does, with no HTTP types in sight.
//!
//! # Layout
//! - [`config`]: the settings services need (parsed by the binary).
//! - [`state`]: [`Services`], the handle every request works through (store, blobs, runtimes).
//! - [`upload`]: decode, verify and persist an uploaded `.difypkg`.
//! - [`install`]: install tasks, the install job, uninstall, and bringing installed plugins back
//!   at start-up.
//! - [`upgrade`]: moving an installation to another version, and retiring a version nothing
//!   references (runtime stopped, working directory and package objects removed).
//! - [`query`]: listings of installations and tasks; [`providers`]: the tenant's providers by
//!   kind (tools, models, agent strategies, datasources, triggers) and model bindings.
//! - [`readme`], [`assets`]: readmes and asset files of stored packages.
//! - [`runtime_status`]: readiness, runtime statuses and lifecycle events for operators.
//! - [`dispatch`]: turn a Dify dispatch request into a plugin session and a stream of chunks.
//! - [`backwards`]: backwards invocations of a session: permissions, the call to Dify, the
//!   answers to the plugin; [`persistence`]: the plugins' key–value storage.
//! - [`endpoints`]: endpoint management (setup, list, update, enable/disable, remove) with
//!   settings validation, masking and encryption through the inner API; [`hooks`]: the public
//!   `/e/{hook_id}` hooks (hook → `invoke_endpoint` session → response head and body).
//! - [`debugging`]: remote debugging: debugging keys ([`debugging::DebuggingKeys`], in memory
//!   by default) and installing/uninstalling a plugin that registered over the debugging
//!   listener (the runtime crate's `DebuggingHost`, implemented by [`Services`]).
//! - [`cluster`]: several nodes on one database and Redis: heartbeats, master, plugin
//!   registry, redirect decision, install-task ownership, reconciliation.
//! - [`binding`]: lenient field access on JSON bodies, the way upstream's binder behaves.
//!
//! **Architecture invariant:** this crate is the only user of `plugind-store`; the HTTP crate
//! reaches state only through [`Services`].

pub mod assets;
mod backwards;
pub mod binding;
mod blob_merge;
pub mod cluster;
pub mod config;
pub mod debugging;
pub mod dispatch;
mod dispatch_request;
pub mod endpoints;
pub mod hooks;
pub mod install;
mod model_schema;
mod installed;
mod persistence;
pub mod providers;
pub mod query;
pub mod readme;
pub mod runtime_status;
pub mod serverless;
pub mod state;
pub mod upgrade;
pub mod upload;

pub use config::{parse_unsigned_allowlist, ServiceConfig, UnsignedAllowed};
pub use serverless::Transaction;
pub use state::{Services, INSTALLATION_CHANGED_CHANNEL, SHUTDOWN_TASK_MESSAGE};
