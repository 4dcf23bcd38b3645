//! Runtimes: where plugin code runs, and how the daemon talks to it.
//!
//! # Layout
//!
//! * [`config`]: settings ([`RuntimeConfig`], upstream names) and rarer knobs ([`RuntimeTuning`]).
//! * [`registry`]: [`Runtimes`] (uid → running plugin), the launch pipeline, [`PluginHandle`].
//! * [`session`]: [`Session`], one request and its answers.
//! * [`error`]: [`LaunchError`] (which step failed, with timings) and [`InvokeError`].
//! * `local`: the stdio runtime: environment build, processes, instances, supervision, and
//!   uid separation ([`PluginUsers`]).
//!
//! **Architecture invariant:** plugin processes never see the daemon's environment beyond an
//! allow-list (and, with [`PluginUsers`], run under their own uid), and nothing a plugin writes
//! can panic the daemon or end the stdout reader.

pub mod config;
pub mod error;
mod local;
pub mod registry;
pub mod session;

pub use config::{RuntimeConfig, RuntimeTuning};
pub use error::{InvokeError, LaunchError, Step};
pub use local::sandbox::{PluginUsers, DEFAULT_FIRST_UID, DEFAULT_UID_COUNT};
pub use registry::{LaunchReport, PluginHandle, Runtimes};
pub use session::{Session, SessionEvent, SessionRequest};
