//! Plugin I/O: the bytes that travel between the daemon and a plugin process.
//!
//! # Layout
//!
//! * [`frame`] splits a byte stream into lines (`\n`, one trailing `\r` dropped, blank lines
//!   skipped) with a per-line size cap that reports an oversized line and carries on.
//! * [`event`] is what a plugin writes: the universal event and the session message inside it.
//! * [`raw`] is the hot path of the same: one pass over a line, payloads kept as raw JSON
//!   ([`RawJson`], sliced out of the line) where the daemon does not look inside.
//! * [`request`] is what the daemon writes: the in-stream message, one JSON object per line.
//!
//! Nothing here knows about processes or sessions; the runtime crate owns those.

pub mod event;
pub mod frame;
pub mod raw;
pub mod request;

pub use event::{
    EventKind, LogData, LogLevel, PluginEvent, SessionMessage, SessionMessageType, StrayLine,
};
pub use frame::{FrameError, LineReader, DEFAULT_MAX_LINE_BYTES};
pub use raw::{RawJson, RawLine, RawSessionMessage};
pub use request::{InStreamEvent, InStreamMessage};
