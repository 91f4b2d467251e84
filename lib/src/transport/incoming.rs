//! What arrives from peers: one-way messages and requests to answer.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::error::TransportError;
use super::frame::Frame;
use super::shared::Shared;

/// A payload received from an authenticated peer.
#[derive(Debug)]
pub enum Incoming {
    /// A one-way message sent with [`Transport::send`](super::Transport::send).
    Message {
        /// The sender's node id, as proven in the handshake.
        from: u64,
        /// The payload, exactly as sent.
        payload: Bytes,
    },
    /// A request sent with [`Transport::call`](super::Transport::call).
    Request {
        /// The caller's node id, as proven in the handshake.
        from: u64,
        /// The payload, exactly as sent.
        payload: Bytes,
        /// Answers the caller. Dropping it unanswered fails the call at once.
        reply: Responder,
    },
}

/// The receiving end of a transport: everything peers send to this node, in the order each
/// connection delivered it.
///
/// Returned by [`Transport::start`](super::Transport::start). If it is not drained, readers stop
/// reading their sockets once `inbox_capacity` payloads wait, and peers' queues fill and drop.
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::Receiver<Incoming>,
}

impl Inbox {
    pub(crate) fn new(receiver: mpsc::Receiver<Incoming>) -> Self {
        Inbox { receiver }
    }

    /// The next payload; `None` once the transport has shut down and everything received
    /// before has been taken.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.receiver.recv().await
    }

    /// The next payload if one is waiting now.
    pub fn try_recv(&mut self) -> Option<Incoming> {
        self.receiver.try_recv().ok()
    }

    /// The underlying channel, for callers that want to `select!` on it or wrap it in a stream.
    pub fn into_receiver(self) -> mpsc::Receiver<Incoming> {
        self.receiver
    }
}

/// Answers one request. The reply travels on this node's own outbound connection to the caller,
/// so the caller must be in this node's peer set (else the caller times out).
///
/// Dropping a `Responder` without calling [`Responder::reply`] sends the caller a failure, so it
/// gets [`TransportError::RemoteFailure`] promptly instead of waiting for its timeout.
pub struct Responder {
    shared: Arc<Shared>,
    caller: u64,
    call_id: u64,
    answered: bool,
}

impl Responder {
    pub(crate) fn new(shared: Arc<Shared>, caller: u64, call_id: u64) -> Self {
        Responder {
            shared,
            caller,
            call_id,
            answered: false,
        }
    }

    /// The node waiting for the answer.
    pub fn caller(&self) -> u64 {
        self.caller
    }

    /// Queues `payload` as the answer. Like [`Transport::send`](super::Transport::send), it
    /// never waits; if the reply cannot be queued the error says why, and the caller is sent a
    /// failure instead when possible (a reply too large for a frame, for instance).
    pub fn reply(mut self, payload: Bytes) -> Result<(), TransportError> {
        let frame = Frame::Reply {
            call_id: self.call_id,
            payload,
        };
        self.shared.enqueue(self.caller, frame)?;
        self.answered = true;
        Ok(())
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let frame = Frame::Failure {
            call_id: self.call_id,
            reason: "the request was dropped without a reply".to_owned(),
        };
        // Best effort: if even this cannot be queued, the caller's timeout ends the call.
        let _ = self.shared.enqueue(self.caller, frame);
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("caller", &self.caller)
            .field("call_id", &self.call_id)
            .finish()
    }
}
