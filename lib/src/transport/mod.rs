//! The authenticated transport between ddb processes of one cluster.
//!
//! It carries opaque byte payloads (replication traffic, forwarded client requests, metadata
//! queries); the layer above encodes its own messages.
//!
//! - Every connection starts with a mutual handshake proving knowledge of the cluster secret
//!   (keyed BLAKE3) and derives a per-connection session key; every frame after it carries a
//!   MAC over its direction, sequence number, kind and body ([`handshake`], [`frame`]).
//! - Each peer has one outbound connection, owned by a writer task that reconnects with jittered
//!   exponential backoff and writes everything queued in one write per batch. Connections are
//!   one-way: a node sends on the connections it dialed and reads on those it accepted.
//! - [`Transport::send`] never waits: a full queue or unknown peer drops the message and counts
//!   it. [`Transport::call`] adds request/response with call ids on top.
//!
//! The wire protocol is specified in `docs/transport.md`.

mod calls;
mod config;
mod error;
pub mod frame;
pub mod handshake;
mod incoming;
mod listener;
mod peer;
mod shared;
mod stats;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{MIN_SECRET_BYTES, TransportConfig};
pub use error::{FrameError, TransportError};
pub use incoming::{Inbox, Incoming, Responder};
pub use stats::{PeerStats, TransportStats};

use frame::Frame;
use handshake::ClusterKey;
use shared::{Limits, PeerLink, Shared, lock};

/// A running transport: a listener, one writer per peer, and a reader per inbound connection,
/// all tokio tasks on the runtime that started it.
///
/// Dropping it stops every task (like [`Transport::shutdown`], without waiting for the sockets
/// to close). Share it behind an `Arc` to send from several places.
pub struct Transport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    closing: watch::Sender<bool>,
    listener: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Transport {
    /// Validates `config`, binds its listen address and starts the transport's tasks.
    ///
    /// Must be called inside a tokio runtime (else [`TransportError::InvalidConfig`]). Returns
    /// the transport and the [`Inbox`] where everything peers send arrives.
    pub fn start(config: TransportConfig) -> Result<(Transport, Inbox), TransportError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::config(
                "Transport::start must be called inside a tokio runtime",
            ));
        }
        let bind_error = |source| TransportError::Bind {
            addr: config.listen,
            source,
        };
        let socket = std::net::TcpListener::bind(config.listen).map_err(bind_error)?;
        socket.set_nonblocking(true).map_err(bind_error)?;
        let listener = tokio::net::TcpListener::from_std(socket).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;

        let limits = Limits {
            max_frame_bytes: config.max_frame_bytes,
            queue_capacity: config.queue_capacity,
            connect_timeout: config.connect_timeout,
            reconnect_backoff_min: config.reconnect_backoff_min,
            reconnect_backoff_max: config.reconnect_backoff_max,
        };
        let shared = Arc::new(Shared::new(
            config.node_id,
            ClusterKey::derive(&config.cluster_secret),
            limits,
        ));
        let (inbox_sender, inbox_receiver) = mpsc::channel(config.inbox_capacity);
        let (closing, closing_receiver) = watch::channel(false);
        let listener = tokio::spawn(listener::run_listener(
            Arc::clone(&shared),
            listener,
            inbox_sender,
            closing_receiver,
        ));
        let transport = Transport {
            shared,
            local_addr,
            closing,
            listener: std::sync::Mutex::new(Some(listener)),
        };
        for (id, addr) in config.peers {
            transport.set_peer(id, addr)?;
        }
        Ok((transport, Inbox::new(inbox_receiver)))
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.shared.node_id
    }

    /// The address the listener is bound to (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Adds peer `id` at `addr`, or moves it there. A moved peer keeps its queue and reconnects
    /// to the new address at once.
    pub fn set_peer(&self, id: u64, addr: SocketAddr) -> Result<(), TransportError> {
        if id == self.shared.node_id {
            return Err(TransportError::config(format!(
                "cannot add this node's own id {id} as a peer"
            )));
        }
        if *self.closing.borrow() {
            return Err(TransportError::Shutdown);
        }
        let mut peers = lock(&self.shared.peers);
        if let Some(link) = peers.get(&id) {
            link.addr.send_if_modified(|current| {
                let changed = *current != addr;
                *current = addr;
                changed
            });
            return Ok(());
        }
        let (addr_sender, addr_receiver) = watch::channel(addr);
        let (queue_sender, queue_receiver) = mpsc::channel(self.shared.limits.queue_capacity);
        let counters = self.shared.counters_for(id);
        let writer = tokio::spawn(peer::run_writer(
            Arc::clone(&self.shared),
            id,
            addr_receiver,
            queue_receiver,
            Arc::clone(&counters),
        ));
        peers.insert(
            id,
            PeerLink {
                addr: addr_sender,
                queue: queue_sender,
                writer,
                counters,
            },
        );
        Ok(())
    }

    /// Removes peer `id`: its writer stops, its connection closes and what was still queued for
    /// it is dropped (and counted). Returns whether it was a peer. Its counters remain in
    /// [`Transport::stats`].
    pub fn remove_peer(&self, id: u64) -> bool {
        let Some(link) = lock(&self.shared.peers).remove(&id) else {
            return false;
        };
        link.writer.abort();
        let unsent = link.queue.max_capacity() - link.queue.capacity();
        stats::add(&link.counters.messages_dropped, unsent as u64);
        link.counters
            .connected
            .store(false, std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// Queues `payload` for peer `to` and returns at once; never waits.
    ///
    /// Delivery is not guaranteed: if the queue is full or `to` is not a peer the message is
    /// dropped, counted, and the error says so; a message in flight when a connection breaks is
    /// lost. Messages to one peer that are delivered arrive in the order they were sent.
    pub fn send(&self, to: u64, payload: Bytes) -> Result<(), TransportError> {
        self.shared.enqueue(to, Frame::Message(payload))
    }

    /// Sends `payload` to `to` as a request and resolves to its reply.
    ///
    /// The request is queued before this returns (so calls to one peer keep their order), and
    /// `timeout` counts from then. The future fails with [`TransportError::CallTimeout`] once
    /// `timeout` has passed without an answer (a peer that is down or unreachable), at once for
    /// an unknown peer or full queue, and promptly with [`TransportError::RemoteFailure`] if the
    /// remote dropped the request unanswered. Dropping the future abandons the call; a late
    /// reply is ignored. Must be called inside a tokio runtime.
    pub fn call(
        &self,
        to: u64,
        payload: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Bytes, TransportError>> + Send + 'static {
        // The timeout runs from now, not from the future's first poll.
        let deadline = tokio::time::Instant::now() + timeout;
        let shared = Arc::clone(&self.shared);
        let (call_id, outcome) = shared.calls.register(to);
        let pending = PendingCallGuard { shared, call_id };
        let queued = pending
            .shared
            .enqueue(to, Frame::Request { call_id, payload });
        async move {
            queued?;
            match tokio::time::timeout_at(deadline, outcome).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(TransportError::Shutdown),
                Err(_) => Err(TransportError::CallTimeout {
                    peer: to,
                    timeout,
                    connected: pending.shared.is_connected(to),
                }),
            }
        }
    }

    /// Whether the outbound connection to `peer` is up now (cheap: one atomic load).
    pub fn is_connected(&self, peer: u64) -> bool {
        self.shared.is_connected(peer)
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> TransportStats {
        self.shared.stats()
    }

    /// Stops every task and waits until the listening socket and every connection are closed.
    /// Pending calls fail with [`TransportError::Shutdown`]; later sends fail too. The
    /// [`Inbox`] yields what it already holds, then `None`.
    pub async fn shutdown(&self) {
        let writers = self.stop();
        let listener = lock(&self.listener).take();
        if let Some(listener) = listener {
            let _ = listener.await;
        }
        for writer in writers {
            let _ = writer.await;
        }
    }

    /// Signals every task to stop and returns the writers to wait for.
    fn stop(&self) -> Vec<JoinHandle<()>> {
        self.closing.send_replace(true);
        let links = std::mem::take(&mut *lock(&self.shared.peers));
        let writers = links
            .into_values()
            .map(|link| {
                link.writer.abort();
                link.counters
                    .connected
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                link.writer
            })
            .collect();
        self.shared.calls.fail_all();
        writers
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.stop();
        if let Some(listener) = lock(&self.listener).take() {
            // The closing signal stops it cleanly; abort in case the runtime is going away.
            listener.abort();
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node_id", &self.shared.node_id)
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Forgets a call when its future finishes or is dropped, so abandoned calls do not pile up.
struct PendingCallGuard {
    shared: Arc<Shared>,
    call_id: u64,
}

impl Drop for PendingCallGuard {
    fn drop(&mut self) {
        self.shared.calls.forget(self.call_id);
    }
}
