//! The LtHash16 state digest of a partition replica, and its checkpoints.
//!
//! Every replica keeps a [`StateDigest`] of its items up to date on each apply. At every LSN
//! that is a multiple of [`CheckpointPolicy::interval`] it records a [`Checkpoint`], so any two
//! copies of a partition (replicas, or the scrubber's reference replica rebuilt from the
//! archive) can be compared at a common LSN without pausing writes. A full scan recomputes the
//! digest from the items at rest and must equal the incremental one.

mod checkpoint;
mod element;
mod lthash;
mod xof;

pub use checkpoint::{Checkpoint, CheckpointPolicy};
pub use lthash::{DIGEST_BYTES, DigestUpdates, LANES, StateDigest};

/// Recomputes a digest from scratch over `(key, item)` pairs: what a full scan does.
pub fn digest_of_items<K, V>(items: impl IntoIterator<Item = (K, V)>) -> StateDigest
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let mut digest = StateDigest::empty();
    let mut updates = digest.updates();
    for (key, item) in items {
        updates.insert_item(key.as_ref(), item.as_ref());
    }
    drop(updates);
    digest
}
