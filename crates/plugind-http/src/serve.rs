//! The HTTP/1.1 server loop: accepts connections on the listener and serves the router on each,
//! with the limits `axum::serve` does not offer.
//!
//! - **Connection limit:** at most `max_connections` connections are served at once; when all are
//!   taken the loop stops accepting, so further clients wait in the kernel's backlog until one
//!   closes (nothing is refused while the backlog has room).
//! - **Header read timeout:** a client must send a whole request head within
//!   `header_read_timeout`, also between requests of a keep-alive connection (an idle connection
//!   is closed after that long). A half-sent header no longer holds a connection forever.
//! - The request-*body* timeout is a router layer (see [`crate::router`]): it bounds the wait
//!   between body bytes, never the response, so long SSE streams are not cut.
//! - `TCP_NODELAY` on every accepted socket: each SSE event is a small write, and Nagle + delayed
//!   ACK would add ~40 ms to each.
//!
//! Shutdown is two steps, both driven by the caller: cancelling `stop` closes the listener and
//! asks every connection to finish its in-flight request and close ([`serve`] then returns the
//! [`Connections`] still open); the caller waits for them with its drain deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the server loop.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Connections served at once (`ROUTINE_POOL_SIZE`).
    pub max_connections: usize,
    /// Longest wait for a complete request head (`HTTP_HEADER_READ_TIMEOUT`; `None`: no limit).
    pub header_read_timeout: Option<Duration>,
}

/// The connections of a stopped server that are still finishing their requests.
pub struct Connections {
    tracker: TaskTracker,
}

impl Connections {
    /// How many connections are still open.
    pub fn open(&self) -> usize {
        self.tracker.len()
    }

    /// Resolves when every connection has closed.
    pub async fn closed(&self) {
        self.tracker.wait().await;
    }
}

/// Serves `app` on `listener` until `stop` is cancelled; see the module docs.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    stop: CancellationToken,
) -> Connections {
    let permits = Arc::new(Semaphore::new(
        config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let tracker = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let mut accept_backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(accept_backoff).await;
                    accept_backoff = (accept_backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        accept_backoff = Duration::from_millis(5);
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let stop = stop.clone();
        tracker.spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracker.close();
    Connections { tracker }
}
