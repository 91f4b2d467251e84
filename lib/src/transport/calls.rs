//! Calls waiting for their reply, keyed by call id.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::TransportError;
use super::shared::lock;

/// What a pending call receives: the reply's payload or why there is none.
pub(crate) type CallOutcome = Result<Bytes, TransportError>;

struct PendingCall {
    peer: u64,
    outcome: oneshot::Sender<CallOutcome>,
}

/// The calls of one transport that have been sent and not yet answered, timed out or dropped.
#[derive(Default)]
pub(crate) struct PendingCalls {
    next_call_id: AtomicU64,
    pending: Mutex<HashMap<u64, PendingCall>>,
}

impl PendingCalls {
    /// Registers a call to `peer` before its request is queued, so that a fast reply finds it.
    pub(crate) fn register(&self, peer: u64) -> (u64, oneshot::Receiver<CallOutcome>) {
        let call_id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (outcome, receiver) = oneshot::channel();
        lock(&self.pending).insert(call_id, PendingCall { peer, outcome });
        (call_id, receiver)
    }

    /// Hands `outcome` to the call `call_id` if `from` is the node it was sent to. Answers for
    /// calls that already gave up, or from another node, are ignored.
    pub(crate) fn complete(&self, from: u64, call_id: u64, outcome: CallOutcome) {
        let mut pending = lock(&self.pending);
        if let Entry::Occupied(entry) = pending.entry(call_id)
            && entry.get().peer == from
        {
            // The caller may have stopped waiting a moment ago; nothing to do then.
            let _ = entry.remove().outcome.send(outcome);
        }
    }

    /// Forgets a call whose caller stopped waiting.
    pub(crate) fn forget(&self, call_id: u64) {
        lock(&self.pending).remove(&call_id);
    }

    /// Fails every pending call with [`TransportError::Shutdown`].
    pub(crate) fn fail_all(&self) {
        for (_, call) in lock(&self.pending).drain() {
            let _ = call.outcome.send(Err(TransportError::Shutdown));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.pending).len()
    }
}
