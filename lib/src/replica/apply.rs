//! What applying a batch of entries does, computed once for every store implementation.

use std::collections::BTreeMap;

use super::{AppliedState, ReplicaError};
use crate::digest::{Checkpoint, CheckpointPolicy};
use crate::wal::{Entry, Lsn, Operation};

/// The effect of applying a batch: written by a store in one atomic step.
pub(crate) struct ApplyPlan {
    /// Final value per touched key (`None`: delete), in key order, each key once.
    pub mutations: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// State after the batch.
    pub state: AppliedState,
    /// Checkpoints that fell inside the batch, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// Digest points (every [`DIGEST_POINT_INTERVAL`] LSNs, checkpoints excepted) that fell
    /// inside the batch, oldest first: kept in memory only.
    pub points: Vec<Checkpoint>,
}

/// Every how many LSNs a store notes its digest in memory, between its persisted checkpoints:
/// copies that stand at different LSNs under steady writes still share a recent LSN to be
/// compared at by the scrubber. A 2 KiB copy every 16 entries costs little.
pub const DIGEST_POINT_INTERVAL: u64 = 16;

/// How many digest points a store keeps (the last 2048 LSNs).
pub const DIGEST_POINTS_KEPT: usize = 128;

/// Computes the effect of `entries` on a store at `current`, reading the items they overwrite
/// through `read_current` (called at most once per distinct key).
pub(crate) fn plan_apply(
    entries: &[Entry],
    current: &AppliedState,
    policy: &CheckpointPolicy,
    mut read_current: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, ReplicaError>,
) -> Result<ApplyPlan, ReplicaError> {
    let mut expected = current.applied_lsn.next();
    for entry in entries {
        if entry.lsn != expected {
            return Err(ReplicaError::OutOfOrder {
                expected,
                got: entry.lsn,
            });
        }
        expected = expected.next();
    }

    let mut mutations: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut digest = current.digest.clone();
    let mut checkpoints = Vec::new();
    let mut points = Vec::new();
    let mut applied_lsn = current.applied_lsn;
    // Element hashes are queued and computed several items at a time; the digest is brought
    // up to date wherever the batch records it.
    let mut updates = digest.updates();
    for entry in entries {
        match &entry.op {
            Operation::Put { key, item } => {
                if let Some(old) = previous_value(&mut mutations, key, &mut read_current)? {
                    updates.remove_item(key, &old);
                }
                updates.insert_item(key, item);
                mutations.insert(key.clone(), Some(item.clone()));
            }
            Operation::Delete { key } => {
                if let Some(old) = previous_value(&mut mutations, key, &mut read_current)? {
                    updates.remove_item(key, &old);
                    mutations.insert(key.clone(), None);
                }
            }
            Operation::Noop | Operation::Config(_) => {}
        }
        applied_lsn = entry.lsn;
        if policy.is_checkpoint(applied_lsn) {
            checkpoints.push(Checkpoint {
                lsn: applied_lsn,
                digest: updates.current().clone(),
            });
        } else if applied_lsn.0.is_multiple_of(DIGEST_POINT_INTERVAL) {
            points.push(Checkpoint {
                lsn: applied_lsn,
                digest: updates.current().clone(),
            });
        }
    }
    drop(updates);
    Ok(ApplyPlan {
        mutations,
        state: AppliedState {
            applied_lsn,
            digest,
        },
        checkpoints,
        points,
    })
}

/// Computes the effect of loading `items` (pages of a peer's snapshot) into a store at
/// `current`, which must have applied nothing yet; `applied_lsn` ends the load, setting the LSN
/// the store then stands at (entries after it are applied next).
pub(crate) fn plan_install(
    items: &[(Vec<u8>, Vec<u8>)],
    applied_lsn: Option<Lsn>,
    current: &AppliedState,
    mut read_current: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, ReplicaError>,
) -> Result<ApplyPlan, ReplicaError> {
    if current.applied_lsn != Lsn::ZERO {
        return Err(ReplicaError::NotRebuilding {
            applied: current.applied_lsn,
        });
    }
    let mut mutations: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    let mut digest = current.digest.clone();
    let mut updates = digest.updates();
    for (key, item) in items {
        if let Some(old) = previous_value(&mut mutations, key, &mut read_current)? {
            updates.remove_item(key, &old);
        }
        updates.insert_item(key, item);
        mutations.insert(key.clone(), Some(item.clone()));
    }
    drop(updates);
    Ok(ApplyPlan {
        mutations,
        state: AppliedState {
            applied_lsn: applied_lsn.unwrap_or(Lsn::ZERO),
            digest,
        },
        checkpoints: Vec::new(),
        points: Vec::new(),
    })
}

/// Computes replacing everything a store holds (`existing`, its keys) with `items`, a good
/// copy's snapshot taken at `applied_lsn`: the digest is recomputed from the items alone (the
/// store's own may be the damaged part). The caller drops the store's checkpoints and digest
/// points, which described the damaged copy.
pub(crate) fn plan_replace(
    items: &[(Vec<u8>, Vec<u8>)],
    existing: impl IntoIterator<Item = Result<Vec<u8>, ReplicaError>>,
    applied_lsn: Lsn,
) -> Result<ApplyPlan, ReplicaError> {
    let mut mutations: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for key in existing {
        mutations.insert(key?, None);
    }
    let mut digest = crate::digest::StateDigest::empty();
    let mut updates = digest.updates();
    for (key, item) in items {
        if let Some(Some(earlier)) = mutations.get(key) {
            // A copy lists each key once; if not, the last value wins, as in the store.
            updates.remove_item(key, earlier);
        }
        updates.insert_item(key, item);
        mutations.insert(key.clone(), Some(item.clone()));
    }
    drop(updates);
    Ok(ApplyPlan {
        mutations,
        state: AppliedState {
            applied_lsn,
            digest,
        },
        checkpoints: Vec::new(),
        points: Vec::new(),
    })
}

/// The value `key` holds before the next operation of the batch: the batch's own latest write
/// if it wrote the key, else what the store holds.
fn previous_value(
    mutations: &mut BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    key: &[u8],
    read_current: &mut impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, ReplicaError>,
) -> Result<Option<Vec<u8>>, ReplicaError> {
    match mutations.get(key) {
        Some(pending) => Ok(pending.clone()),
        None => read_current(key),
    }
}

/// The LSN below which checkpoints are dropped once `plan` is written, if any checkpoint was
/// recorded by it.
pub(crate) fn checkpoint_cutoff(plan: &ApplyPlan, policy: &CheckpointPolicy) -> Option<Lsn> {
    plan.checkpoints
        .last()
        .map(|newest| policy.oldest_retained(newest.lsn))
}
