//! Counters the transport keeps, and the snapshot [`TransportStats`] it reports.
//!
//! Field names are the Prometheus metric names without the `ddb_transport_` prefix; per-peer
//! fields carry a `peer` label. Counters end in `_total` and never decrease, even when a peer is
//! removed; gauges do not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of the transport's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Per peer node id: every node this transport has sent to or received from.
    pub peers: BTreeMap<u64, PeerStats>,
    /// Handshakes refused because the other side's proof of the cluster secret was wrong or it
    /// claimed this node's id, plus frames whose MAC did not verify.
    pub auth_failures_total: u64,
    /// Connections closed because the other side broke the protocol: bad magic, unknown
    /// version, wrong node id, oversized or malformed frames, data on a send-only connection.
    pub protocol_errors_total: u64,
    /// Messages dropped because their destination was not a known peer.
    pub messages_dropped_unknown_peer_total: u64,
}

/// A snapshot of the counters for one peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Frames written to the peer (messages, requests, replies and failures).
    pub messages_sent_total: u64,
    /// Bytes written to the peer, framing included.
    pub bytes_sent_total: u64,
    /// Socket writes: each carries every frame that was queued when it started.
    pub batches_written_total: u64,
    /// Messages dropped: queue full, peer removed, or lost in a write that failed.
    pub messages_dropped_total: u64,
    /// Outbound connections established after the first one.
    pub reconnects_total: u64,
    /// Failed outbound connection attempts (connect, handshake or timeout).
    pub connect_failures_total: u64,
    /// Frames received from the peer.
    pub messages_received_total: u64,
    /// Bytes received from the peer, framing included.
    pub bytes_received_total: u64,
    /// Gauge: whether the outbound connection to the peer is up now.
    pub connected: bool,
    /// Gauge: authenticated inbound connections from the peer open now.
    pub inbound_connections: u64,
}

/// The live counters behind one [`PeerStats`].
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub(crate) messages_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) batches_written: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) inbound_connections: AtomicU64,
}

/// Adds `n` to a counter. Relaxed: counters order nothing.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl PeerCounters {
    pub(crate) fn snapshot(&self) -> PeerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PeerStats {
            messages_sent_total: get(&self.messages_sent),
            bytes_sent_total: get(&self.bytes_sent),
            batches_written_total: get(&self.batches_written),
            messages_dropped_total: get(&self.messages_dropped),
            reconnects_total: get(&self.connections).saturating_sub(1),
            connect_failures_total: get(&self.connect_failures),
            messages_received_total: get(&self.messages_received),
            bytes_received_total: get(&self.bytes_received),
            connected: self.connected.load(Ordering::Relaxed),
            inbound_connections: get(&self.inbound_connections),
        }
    }
}

/// Transport-wide counters.
#[derive(Debug, Default)]
pub(crate) struct TotalCounters {
    pub(crate) auth_failures: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) dropped_unknown_peer: AtomicU64,
}
