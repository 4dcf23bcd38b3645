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

/// Lines into a channel: the serverless transaction route answers a backwards call in its own
/// HTTP response (plugin-protocol §6.4) rather than on the plugin's connection.
pub(crate) struct ChannelWriter(pub(crate) tokio::sync::mpsc::Sender<Vec<u8>>);

impl LineWriter for ChannelWriter {
    fn write_line<'a>(&'a self, line: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            self.0.send(line.to_vec()).await.map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "the transaction request is gone")
            })
        })
    }
}
