//! The replica store: applies committed log entries to durable item state.
//!
//! A [`ReplicaStore`] holds one partition replica's items (encoded key → canonical item), the
//! LSN of the last applied entry and the incremental [`StateDigest`], and changes all three in
//! one atomic step per applied batch. The WAL is the source of truth: a store need not be
//! durable at every apply, and after a crash [`replay_committed`] brings it forward from
//! `applied_lsn + 1`.
//!
//! Two implementations pass one conformance suite (`lib/tests/replica_conformance.rs`):
//! [`FjallReplicaStore`] on disk and [`MemoryReplicaStore`] for tests and simulations.

mod apply;
mod error;
mod fjall_store;
mod memory;
mod range;
mod replay;
mod verify;

use crate::digest::{Checkpoint, StateDigest};
use crate::wal::{Entry, Lsn};

pub use error::ReplicaError;
pub use fjall_store::{BareStore, FjallReplicaStore};
pub use memory::MemoryReplicaStore;
pub use range::{Direction, KeyRange};
pub use replay::{ReplayReport, replay_committed};
pub use verify::{FullScanReport, full_scan_digest};

/// An `(encoded key, canonical item)` pair read from a store.
pub type KeyItem = (Vec<u8>, Vec<u8>);

/// A stream of items in key order (or reverse key order).
pub type ItemIter<'a> = Box<dyn Iterator<Item = Result<KeyItem, ReplicaError>> + 'a>;

/// The LSN a replica has applied through and the digest of its state at that LSN.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppliedState {
    /// Last applied LSN ([`Lsn::ZERO`] for an empty replica).
    pub applied_lsn: Lsn,
    /// Incremental digest of the items at `applied_lsn`.
    pub digest: StateDigest,
}

/// One partition replica's item state.
///
/// Applies are serialised by the store; reads may run concurrently with them. Every method that
/// returns state returns a consistent view: never items from one LSN with a digest of another.
pub trait ReplicaStore: Send + Sync {
    /// Applies committed entries in order. The first must be at `applied_lsn + 1` and the rest
    /// dense after it, else [`ReplicaError::OutOfOrder`] and nothing changes. The mutations, the
    /// new `applied_lsn`, the new digest and any checkpoints due are written atomically.
    fn apply_batch(&self, entries: &[Entry]) -> Result<(), ReplicaError>;

    /// Applies one committed entry; see [`ReplicaStore::apply_batch`].
    fn apply(&self, entry: &Entry) -> Result<(), ReplicaError> {
        self.apply_batch(std::slice::from_ref(entry))
    }

    /// Loads items of a peer's snapshot into a store that has applied nothing (rebuilding a
    /// replica), updating the digest, in one atomic step; `applied_lsn` ends the load and sets
    /// the LSN the store stands at. Pages may come from snapshots at different LSNs as long as
    /// `applied_lsn` is the oldest of them: re-applying the log after it converges (puts and
    /// deletes replace whole items). A store that applied anything refuses
    /// ([`ReplicaError::NotRebuilding`]).
    fn install_items(
        &self,
        items: &[(Vec<u8>, Vec<u8>)],
        applied_lsn: Option<Lsn>,
    ) -> Result<(), ReplicaError>;

    /// The last applied LSN and the digest at it.
    fn applied_state(&self) -> AppliedState;

    /// The last applied LSN.
    fn applied_lsn(&self) -> Lsn {
        self.applied_state().applied_lsn
    }

    /// Reads one item at the latest applied state.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError>;

    /// A consistent read-only view at the current applied LSN; later applies do not change it.
    fn snapshot(&self) -> Result<Box<dyn ReplicaSnapshot + '_>, ReplicaError>;

    /// The retained checkpoints, oldest first.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, ReplicaError>;

    /// Makes everything applied so far durable and returns the LSN that now survives a power
    /// loss. WAL below that LSN (and archived) may then be deleted.
    fn persist(&self) -> Result<Lsn, ReplicaError>;
}

/// A consistent, read-only view of a replica at one applied LSN.
pub trait ReplicaSnapshot {
    /// The state (LSN and incremental digest) this view reflects.
    fn applied_state(&self) -> &AppliedState;

    /// Reads one item.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReplicaError>;

    /// Items whose keys lie in `range`, in key order or reverse key order.
    fn scan(&self, range: &KeyRange, direction: Direction) -> ItemIter<'_>;

    /// Calls `each` with every item in key order, borrowed from the store where it can be (a
    /// full scan reads each item once and needs no copy of it); stops at the first error.
    fn for_each_item(&self, each: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), ReplicaError> {
        for pair in self.scan(&KeyRange::all(), Direction::Forward) {
            let (key, item) = pair?;
            each(&key, &item);
        }
        Ok(())
    }
}
