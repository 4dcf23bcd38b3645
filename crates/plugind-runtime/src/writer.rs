//! The write side of a connection to a plugin, whatever carries it.

use std::io;
use std::sync::Arc;

use futures::future::BoxFuture;

/// Writes whole lines to a plugin (a process's stdin today; a TCP socket or an HTTP request for
/// the other runtimes). Concurrent writers must be serialised by the implementation so lines
/// never interleave. A failed write means the connection is unusable.
pub(crate) trait LineWriter: Send + Sync {
    fn write_line<'a>(&'a self, line: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
}

/// The writer half of a connection, shared by every session on it and by their responders.
pub(crate) type Writer = Arc<dyn LineWriter>;
