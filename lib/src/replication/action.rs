//! What the replication core asks its host to do.

use crate::wal::{Ballot, Entry, Lsn};

use super::membership::NodeId;
use super::message::Message;

/// One instruction from the core to its host (the node's network and disk adapters).
///
/// The host executes actions in the order they were emitted. [`Action::PersistPromise`] is
/// synchronous: it must be durable before any later action runs (the messages after it may
/// reveal the promise). [`Action::Append`] is asynchronous: the host reports its durability with
/// [`ReplicaCore::on_append_durable`](super::ReplicaCore::on_append_durable), in order; appends
/// must reach the disk in the order they were emitted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send `message` to replica `to`. Delivery may fail; the core retransmits.
    Send {
        /// Destination replica.
        to: NodeId,
        /// What to send.
        message: Message,
    },
    /// Durably record that this replica promised `ballot` (a small synchronous write).
    PersistPromise {
        /// The promised ballot.
        ballot: Ballot,
    },
    /// Write to the local log: first drop every entry above `truncate_after` (when set), then
    /// append `entries`. Report durability with `on_append_durable(id)`.
    Append {
        /// Identifies this append in the durability report.
        id: u64,
        /// Drop entries above this LSN first.
        truncate_after: Option<Lsn>,
        /// Entries to append, contiguous from `truncate_after + 1` or the current end.
        entries: Vec<Entry>,
    },
    /// Apply committed entries to the replica store, in order (full replicas only), never beyond
    /// what is durable in this replica's own log. Each entry
    /// is emitted exactly once per incarnation of the core, in LSN order without gaps.
    Apply {
        /// Committed entries, consecutive.
        entries: Vec<Entry>,
    },
    /// The replica's view of the leader changed.
    LeaderChanged {
        /// The known leader, if any.
        leader: Option<NodeId>,
        /// The ballot this replica now follows or leads under.
        ballot: Ballot,
    },
    /// Replica `peer` needs entries from `from_lsn`, which this replica no longer holds in
    /// memory: the host streams them from the WAL, or rebuilds the peer from a snapshot.
    CatchUp {
        /// The replica that is behind.
        peer: NodeId,
        /// First LSN it lacks.
        from_lsn: Lsn,
    },
}
