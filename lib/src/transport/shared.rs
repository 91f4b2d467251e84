//! State shared by the transport handle, its tasks and its responders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::calls::PendingCalls;
use super::error::TransportError;
use super::frame::Frame;
use super::handshake::ClusterKey;
use super::stats::{PeerCounters, TotalCounters, TransportStats, add};

/// Locks a mutex, ignoring poisoning: every critical section here leaves its map consistent
/// (single inserts and removes), so a panic elsewhere cannot leave it half-updated.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The limits tasks need, copied out of the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_frame_bytes: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) reconnect_backoff_min: Duration,
    pub(crate) reconnect_backoff_max: Duration,
}

/// One peer's send queue and the writer task that drains it.
pub(crate) struct PeerLink {
    pub(crate) addr: watch::Sender<SocketAddr>,
    pub(crate) queue: mpsc::Sender<Frame>,
    pub(crate) writer: JoinHandle<()>,
    pub(crate) counters: Arc<PeerCounters>,
}

pub(crate) struct Shared {
    pub(crate) node_id: u64,
    pub(crate) cluster_key: ClusterKey,
    pub(crate) limits: Limits,
    pub(crate) peers: Mutex<BTreeMap<u64, PeerLink>>,
    /// Counters of every node ever sent to or heard from; kept when a peer is removed so that
    /// counters never go backwards.
    counters: Mutex<BTreeMap<u64, Arc<PeerCounters>>>,
    pub(crate) totals: TotalCounters,
    pub(crate) calls: PendingCalls,
}

impl Shared {
    pub(crate) fn new(node_id: u64, cluster_key: ClusterKey, limits: Limits) -> Self {
        Shared {
            node_id,
            cluster_key,
            limits,
            peers: Mutex::new(BTreeMap::new()),
            counters: Mutex::new(BTreeMap::new()),
            totals: TotalCounters::default(),
            calls: PendingCalls::default(),
        }
    }

    /// The counters of node `peer`, created on first use.
    pub(crate) fn counters_for(&self, peer: u64) -> Arc<PeerCounters> {
        Arc::clone(lock(&self.counters).entry(peer).or_default())
    }

    /// Queues `frame` for `to` without waiting. A full queue or an unknown peer drops the frame
    /// and counts it.
    pub(crate) fn enqueue(&self, to: u64, frame: Frame) -> Result<(), TransportError> {
        let body_len = frame.body_len();
        if body_len > self.limits.max_frame_bytes {
            return Err(TransportError::PayloadTooLarge {
                bytes: body_len,
                max: self.limits.max_frame_bytes,
            });
        }
        let peers = lock(&self.peers);
        let Some(link) = peers.get(&to) else {
            add(&self.totals.dropped_unknown_peer, 1);
            return Err(TransportError::UnknownPeer { peer: to });
        };
        match link.queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                add(&link.counters.messages_dropped, 1);
                Err(TransportError::QueueFull { peer: to })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                add(&link.counters.messages_dropped, 1);
                Err(TransportError::Shutdown)
            }
        }
    }

    /// Whether the outbound connection to `peer` is up.
    pub(crate) fn is_connected(&self, peer: u64) -> bool {
        lock(&self.peers)
            .get(&peer)
            .is_some_and(|link| link.counters.connected.load(Ordering::Relaxed))
    }

    pub(crate) fn stats(&self) -> TransportStats {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            peers: lock(&self.counters)
                .iter()
                .map(|(id, counters)| (*id, counters.snapshot()))
                .collect(),
            auth_failures_total: load(&self.totals.auth_failures),
            protocol_errors_total: load(&self.totals.protocol_errors),
            messages_dropped_unknown_peer_total: load(&self.totals.dropped_unknown_peer),
        }
    }

    /// Counts a failure seen on a connection under the right total, if it is one we count.
    pub(crate) fn count_failure(&self, auth_failure: bool, protocol_error: bool) {
        if auth_failure {
            add(&self.totals.auth_failures, 1);
        }
        if protocol_error {
            add(&self.totals.protocol_errors, 1);
        }
    }
}
