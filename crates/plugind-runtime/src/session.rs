//! Sessions: one request to a plugin and the stream of messages it answers with.
//!
//! A session is registered on its connection before its request line is written, so no early
//! answer is lost; dropping the [`Session`] unregisters it, and anything the plugin still sends
//! for it is dropped. When the connection dies, every registered session receives
//! [`SessionEvent::Closed`] at once. Backwards-invocation answers go through a [`Responder`],
//! which can be cloned into any task.

use std::sync::Arc;

use plugind_io::InStreamEvent;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::InvokeError;
use crate::message::{SessionEvent, SessionRequest};
use crate::router::{SessionReceiver, SessionRouter};
use crate::writer::Writer;

/// Writes backwards-invocation answers for one session. Cheap to clone, `'static`: a backwards
/// call can be answered from its own task while the session keeps streaming.
#[derive(Clone)]
pub struct Responder {
    request: Arc<SessionRequest>,
    writer: Writer,
}

impl Responder {
    /// A responder whose lines (each a whole `backwards_response` message with `request`'s ids)
    /// go to `lines` instead of a plugin connection: the serverless transaction route
    /// (plugin-protocol §6.4) answers a backwards call in its own HTTP response.
    pub fn to_channel(
        request: SessionRequest,
        lines: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Responder {
        Responder {
            request: Arc::new(request),
            writer: Arc::new(crate::writer::ChannelWriter(lines)),
        }
    }

    /// Writes a `backwards_response` line with this session's ids.
    pub async fn send(&self, data: Value) -> Result<(), InvokeError> {
        let line = self
            .request
            .message(InStreamEvent::BackwardsResponse, data)
            .to_line()
            .map_err(|e| InvokeError::Encode(e.to_string()))?;
        self.writer
            .write_line(&line)
            .await
            .map_err(|e| InvokeError::Write(e.to_string()))
    }
}

/// A registered listener plus the way to answer backwards invocations.
pub struct Session {
    rx: SessionReceiver,
    /// The connection's session slot, given back when the session is dropped.
    _slot: OwnedSemaphorePermit,
    router: Arc<SessionRouter>,
    responder: Responder,
    finished: bool,
}

impl Session {
    pub(crate) fn new(
        request: Arc<SessionRequest>,
        rx: SessionReceiver,
        router: Arc<SessionRouter>,
        writer: Writer,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Session {
            rx,
            _slot: slot,
            router,
            responder: Responder { request, writer },
            finished: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.responder.request.session_id
    }

    /// The next message; `None` after a terminal one (`End`, `Closed`, `Aborted`).
    pub async fn next(&mut self) -> Option<SessionEvent> {
        if self.finished {
            return None;
        }
        let event = self.rx.recv().await;
        if event.is_terminal() {
            self.finished = true;
        }
        Some(event)
    }

    /// Every message queued right now, at least one (waiting for it), at most `max_items` and
    /// about `max_bytes` (a single message may be larger); appended to `out`, which is left
    /// empty only after a terminal message was already returned. One wake-up per batch.
    pub async fn next_batch(
        &mut self,
        out: &mut Vec<SessionEvent>,
        max_items: usize,
        max_bytes: usize,
    ) {
        if self.finished {
            return;
        }
        let before = out.len();
        self.rx.recv_batch(out, max_items, max_bytes).await;
        if out[before..].iter().any(SessionEvent::is_terminal) {
            self.finished = true;
        }
    }

    /// A handle that answers backwards invocations of this session from any task.
    pub fn responder(&self) -> Responder {
        self.responder.clone()
    }

    /// Answers a backwards invocation: a `backwards_response` line with this session's ids.
    pub async fn send_backwards_response(&self, data: Value) -> Result<(), InvokeError> {
        self.responder.send(data).await
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.router.unregister(self.id());
    }
}
