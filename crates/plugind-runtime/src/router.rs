//! Session routing, independent of the transport: session id → a byte-bounded queue.
//!
//! A transport's reader (a process's stdout, a TCP socket, an HTTP response) calls
//! [`SessionRouter::route`] for every session message; the session's owner pops them with
//! [`SessionReceiver::recv`]. Routing never waits, so one slow session cannot stall the others of
//! the same connection: a session whose queued bytes exceed the limit is cut off instead (its
//! queue is emptied, it receives [`SessionEvent::Aborted`], and later output for it is dropped;
//! the plugin protocol has no cancel message, plugin-protocol §1.3).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::message::SessionEvent;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<(SessionEvent, usize)>,
    bytes: usize,
    /// A terminal event was queued: nothing more is accepted.
    closed: bool,
}

/// One session's queue. The router pushes, the session pops.
struct SessionQueue {
    state: Mutex<QueueState>,
    notify: Notify,
}

enum Pushed {
    Queued,
    /// Over the byte limit: the queue was emptied and now holds only the abort.
    Overflowed,
    /// The session already ended; the event was dropped.
    Dropped,
}

impl SessionQueue {
    fn new() -> Self {
        SessionQueue {
            state: Mutex::new(QueueState::default()),
            notify: Notify::new(),
        }
    }

    /// Queues `event` (of `size` bytes on the wire). At least one event is always accepted, so a
    /// single chunk larger than `limit` still reaches a reader that keeps up.
    fn push(&self, event: SessionEvent, size: usize, limit: usize) -> Pushed {
        let outcome = {
            let mut state = lock(&self.state);
            if state.closed {
                return Pushed::Dropped;
            }
            if !state.items.is_empty() && state.bytes.saturating_add(size) > limit {
                state.items.clear();
                state.bytes = 0;
                state.closed = true;
                let reason = format!(
                    "session closed by the daemon: the caller read its answer too slowly \
                     (more than {limit} bytes were waiting; PLUGIN_SESSION_BUFFER_SIZE)"
                );
                state.items.push_back((SessionEvent::Aborted(reason), 0));
                Pushed::Overflowed
            } else {
                state.closed = event.is_terminal();
                state.bytes += size;
                state.items.push_back((event, size));
                Pushed::Queued
            }
        };
        self.notify.notify_one();
        outcome
    }

    /// Queues a terminal event regardless of the limit (connection closed).
    fn close(&self, event: SessionEvent) {
        {
            let mut state = lock(&self.state);
            if state.closed {
                return;
            }
            state.closed = true;
            state.items.push_back((event, 0));
        }
        self.notify.notify_one();
    }

    async fn pop(&self) -> SessionEvent {
        loop {
            {
                let mut state = lock(&self.state);
                if let Some((event, size)) = state.items.pop_front() {
                    state.bytes -= size;
                    return event;
                }
            }
            // `notify_one` stores a permit when nobody waits, so no wake-up is lost here.
            self.notify.notified().await;
        }
    }

    /// Waits for at least one event, then moves every queued event into `out`, up to
    /// `max_items` events and `max_bytes` bytes (at least one): one wake-up per batch.
    async fn pop_batch(&self, out: &mut Vec<SessionEvent>, max_items: usize, max_bytes: usize) {
        let start = out.len();
        loop {
            {
                let mut state = lock(&self.state);
                let mut taken_bytes = 0;
                while out.len() - start < max_items.max(1) {
                    let Some(&(_, size)) = state.items.front() else {
                        break;
                    };
                    if out.len() > start && taken_bytes + size > max_bytes {
                        break;
                    }
                    if let Some((event, _)) = state.items.pop_front() {
                        state.bytes -= size;
                        taken_bytes += size;
                        out.push(event);
                    }
                }
                if out.len() > start {
                    return;
                }
            }
            self.notify.notified().await;
        }
    }
}

/// Why a session could not be registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RegisterError {
    /// The connection is closing or gone.
    Closed,
    Duplicate,
}

type Table = HashMap<String, Arc<SessionQueue>>;

/// The sessions of one connection to a plugin.
pub(crate) struct SessionRouter {
    /// `None` once the connection closed its sessions; registration then fails.
    table: Mutex<Option<Table>>,
    /// Bytes a session may have waiting before it is cut off.
    limit: usize,
}

impl SessionRouter {
    pub(crate) fn new(limit: usize) -> Self {
        SessionRouter {
            table: Mutex::new(Some(HashMap::new())),
            limit: limit.max(1),
        }
    }

    /// Registers `session_id`; the receiver gets everything routed to it from now on.
    pub(crate) fn register(
        self: &Arc<Self>,
        session_id: &str,
    ) -> Result<SessionReceiver, RegisterError> {
        let mut table = lock(&self.table);
        let table = table.as_mut().ok_or(RegisterError::Closed)?;
        if table.contains_key(session_id) {
            return Err(RegisterError::Duplicate);
        }
        let queue = Arc::new(SessionQueue::new());
        table.insert(session_id.to_owned(), queue.clone());
        Ok(SessionReceiver { queue })
    }

    pub(crate) fn unregister(&self, session_id: &str) {
        if let Some(table) = lock(&self.table).as_mut() {
            table.remove(session_id);
        }
    }

    /// Delivers `event` (`size` bytes on the wire) to its session. Unknown ids are dropped (the
    /// session ended or was abandoned); returns false then.
    pub(crate) fn route(&self, session_id: &str, event: SessionEvent, size: usize) -> bool {
        let queue = lock(&self.table)
            .as_ref()
            .and_then(|t| t.get(session_id).cloned());
        let Some(queue) = queue else {
            return false;
        };
        match queue.push(event, size, self.limit) {
            Pushed::Queued => true,
            Pushed::Overflowed => {
                tracing::warn!(
                    session_id,
                    limit = self.limit,
                    "session cut off: its caller reads too slowly"
                );
                self.unregister(session_id);
                false
            }
            Pushed::Dropped => false,
        }
    }

    /// Closes every session with `reason` and refuses new ones: the connection is gone.
    pub(crate) fn close_all(&self, reason: &str) {
        let table = lock(&self.table).take();
        for queue in table.into_iter().flat_map(HashMap::into_values) {
            queue.close(SessionEvent::Closed(reason.to_owned()));
        }
    }

    /// Sessions in flight.
    pub(crate) fn len(&self) -> usize {
        lock(&self.table).as_ref().map_or(0, HashMap::len)
    }
}

/// The receiving end of one session's queue.
pub(crate) struct SessionReceiver {
    queue: Arc<SessionQueue>,
}

impl SessionReceiver {
    pub(crate) async fn recv(&mut self) -> SessionEvent {
        self.queue.pop().await
    }

    /// Every event queued right now (at least one, waiting for it), within the bounds.
    pub(crate) async fn recv_batch(
        &mut self,
        out: &mut Vec<SessionEvent>,
        max_items: usize,
        max_bytes: usize,
    ) {
        self.queue.pop_batch(out, max_items, max_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chunk(v: serde_json::Value) -> SessionEvent {
        SessionEvent::Stream(plugind_io::RawJson::from_value(&v))
    }

    #[tokio::test]
    async fn routes_by_id_and_drops_unknown_ids() {
        let router = Arc::new(SessionRouter::new(1024));
        let mut a = router.register("a").expect("register");
        let mut b = router.register("b").expect("register");
        assert_eq!(router.register("a").err(), Some(RegisterError::Duplicate));
        assert!(router.route("b", chunk(json!(2)), 1));
        assert!(router.route("a", chunk(json!(1)), 1));
        assert!(!router.route("zzz", SessionEvent::End, 1));
        assert_eq!(a.recv().await, chunk(json!(1)));
        assert_eq!(b.recv().await, chunk(json!(2)));
        router.unregister("a");
        assert!(!router.route("a", SessionEvent::End, 1));
        assert_eq!(router.len(), 1);
    }

    #[tokio::test]
    async fn a_slow_session_is_cut_off_and_the_others_keep_flowing() {
        let router = Arc::new(SessionRouter::new(100));
        let mut slow = router.register("slow").expect("register");
        let mut fast = router.register("fast").expect("register");
        let mut routed = 0;
        for i in 0..50 {
            if router.route("slow", chunk(json!(i)), 10) {
                routed += 1;
            }
            assert!(router.route("fast", chunk(json!(i)), 10));
            assert_eq!(fast.recv().await, chunk(json!(i)));
        }
        assert_eq!(routed, 10, "only what fits the limit is queued");
        match slow.recv().await {
            SessionEvent::Aborted(reason) => assert!(reason.contains("too slowly"), "{reason}"),
            other => panic!("expected an abort first, got {other:?}"),
        }
        assert_eq!(router.len(), 1, "the slow session left the router");
    }

    #[tokio::test]
    async fn one_chunk_larger_than_the_limit_still_passes() {
        let router = Arc::new(SessionRouter::new(10));
        let mut rx = router.register("s").expect("register");
        assert!(router.route("s", chunk(json!("big")), 1_000));
        assert_eq!(rx.recv().await, chunk(json!("big")));
        assert!(router.route("s", SessionEvent::End, 1));
        assert_eq!(rx.recv().await, SessionEvent::End);
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_queued_within_its_bounds() {
        let router = Arc::new(SessionRouter::new(1024));
        let mut rx = router.register("s").expect("register");
        for i in 0..5 {
            assert!(router.route("s", chunk(json!(i)), 10));
        }
        let mut batch = Vec::new();
        rx.recv_batch(&mut batch, 3, 1024).await;
        assert_eq!(batch, (0..3).map(|i| chunk(json!(i))).collect::<Vec<_>>());
        batch.clear();
        rx.recv_batch(&mut batch, 10, 15).await;
        assert_eq!(batch, vec![chunk(json!(3))], "bytes bound the batch");
        batch.clear();
        rx.recv_batch(&mut batch, 10, 1).await;
        assert_eq!(batch, vec![chunk(json!(4))], "one event always passes");
        router.route("s", SessionEvent::End, 1);
        batch.clear();
        rx.recv_batch(&mut batch, 10, 1024).await;
        assert_eq!(batch, vec![SessionEvent::End]);
    }

    #[tokio::test]
    async fn closing_the_connection_closes_every_session() {
        let router = Arc::new(SessionRouter::new(1024));
        let mut a = router.register("a").expect("register");
        router.route("a", chunk(json!(1)), 1);
        router.close_all("process exited");
        assert_eq!(a.recv().await, chunk(json!(1)));
        assert_eq!(
            a.recv().await,
            SessionEvent::Closed("process exited".into())
        );
        assert_eq!(router.register("b").err(), Some(RegisterError::Closed));
    }
}
