//! Full-scan verification: recompute the digest from the items at rest.

use super::{ReplicaError, ReplicaStore};
use crate::digest::StateDigest;
use crate::wal::Lsn;

/// How often (in items, or in bytes for large items) a full scan reports progress.
const PROGRESS_EVERY_ITEMS: u64 = 65_536;
const PROGRESS_EVERY_BYTES: u64 = 1 << 20;

/// The result of recomputing a replica's digest from its items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullScanReport {
    /// The applied LSN of the snapshot that was scanned.
    pub applied_lsn: Lsn,
    /// The digest the store maintained incrementally, read through the same snapshot.
    pub incremental: StateDigest,
    /// The digest recomputed from every item in the snapshot.
    pub full: StateDigest,
    /// Items scanned.
    pub items: u64,
    /// Bytes of keys and items scanned.
    pub bytes: u64,
}

impl FullScanReport {
    /// True when the items at rest produce the digest the store maintained: no bit rot, no
    /// apply bug, on this copy.
    #[must_use]
    pub fn matches(&self) -> bool {
        self.incremental == self.full
    }
}

/// Recomputes the digest of `store` from a snapshot and compares it with the incremental
/// digest read through the same snapshot; writes may continue meanwhile. `progress` is called
/// with `(items, bytes)` scanned so far every 65,536 items or 1 MiB, whichever comes first, and
/// once at the end (a caller can pace the scan there).
pub fn full_scan_digest(
    store: &dyn ReplicaStore,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FullScanReport, ReplicaError> {
    let snapshot = store.snapshot()?;
    let state = snapshot.applied_state().clone();
    let mut full = StateDigest::empty();
    let mut updates = full.updates();
    let mut items = 0u64;
    let mut bytes = 0u64;
    let mut reported_bytes = 0u64;
    snapshot.for_each_item(&mut |key, item| {
        updates.insert_item(key, item);
        items += 1;
        bytes += (key.len() + item.len()) as u64;
        if items.is_multiple_of(PROGRESS_EVERY_ITEMS)
            || bytes - reported_bytes >= PROGRESS_EVERY_BYTES
        {
            reported_bytes = bytes;
            progress(items, bytes);
        }
    })?;
    drop(updates);
    progress(items, bytes);
    Ok(FullScanReport {
        applied_lsn: state.applied_lsn,
        incremental: state.digest,
        full,
        items,
        bytes,
    })
}
