//! Runtimes: where plugin code runs, and how the daemon talks to it.
//!
//! # Layout (data flows top to bottom)
//!
//! * [`registry`]: [`Runtimes`] (uid → running plugin of any kind), the launch entry points,
//!   readiness, and [`PluginHandle`], the one handle callers get.
//! * `runtime`: the trait every runtime kind implements for the registry.
//! * `local`: the stdio runtime: launch pipeline, environment build, processes, instances,
//!   supervision, and uid separation ([`PluginUsers`]).
//! * `connection`, `router`, `writer`: one connection to a plugin, whatever the transport: the
//!   session router (id → byte-bounded queue) and the cloneable line writer.
//! * [`session`] and [`message`]: [`Session`] (one request and its answers), [`Responder`]
//!   (answers backwards invocations from any task), [`SessionRequest`], [`SessionEvent`].
//! * [`lifecycle`]: typed [`LifecycleEvent`]s, the status board and its subscribers (logging,
//!   metrics).
//! * [`toolchain`]: uv and the plugins' Python, found as a launch finds them (start-up checks).
//! * [`config`], [`steps`] (launch steps, [`LaunchError`], [`LaunchReport`]), [`error`]
//!   ([`InvokeError`]).
//!
//! **Architecture invariants:** nothing outside this crate knows which runtime kind serves a
//! plugin; plugin processes never see the daemon's environment beyond an allow-list (and, with
//! [`PluginUsers`], run under their own uid); nothing a
//! plugin writes can panic the daemon, end a reader, or make one session wait for another.

pub mod config;
mod connection;
pub mod error;
pub mod lifecycle;
mod local;
pub mod message;
pub mod registry;
mod router;
mod runtime;
pub mod session;
pub mod steps;
pub mod toolchain;
mod writer;

pub use config::{RuntimeConfig, RuntimeTuning, SessionLimits};
pub use error::InvokeError;
pub use lifecycle::{
    Lifecycle, LifecycleEvent, LifecycleKind, PluginStatus, RuntimeKind, RuntimeState,
};
pub use local::sandbox::{PluginUsers, DEFAULT_FIRST_UID, DEFAULT_UID_COUNT};
pub use message::{SessionEvent, SessionRequest};
pub use registry::{PluginHandle, Readiness, Runtimes};
pub use session::{Responder, Session};
pub use steps::{LaunchError, LaunchReport, Step};
