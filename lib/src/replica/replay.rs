//! Bringing a store forward from the WAL after a restart.

use super::{ReplicaError, ReplicaStore};
use crate::wal::{Entry, Lsn};

/// How many entries are applied per store batch during replay.
const REPLAY_BATCH: usize = 256;

/// What a replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// The store's applied LSN before the replay.
    pub from: Lsn,
    /// The store's applied LSN after it.
    pub to: Lsn,
    /// Entries applied.
    pub applied: u64,
}

/// Applies the committed entries of `log` (entries up to and including `commit_lsn`) that the
/// store has not applied yet. `log` must yield entries in LSN order; entries at or below the
/// store's applied LSN are skipped, so any starting point at or before `applied_lsn + 1` works.
/// A gap in the log is an error ([`ReplicaError::OutOfOrder`]), never skipped.
pub fn replay_committed<E>(
    store: &dyn ReplicaStore,
    log: impl IntoIterator<Item = Result<Entry, E>>,
    commit_lsn: Lsn,
) -> Result<ReplayReport, ReplicaError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let from = store.applied_lsn();
    let mut applied = 0u64;
    let mut batch = Vec::with_capacity(REPLAY_BATCH);
    for entry in log {
        let entry = entry.map_err(|e| ReplicaError::Wal(Box::new(e)))?;
        if entry.lsn <= from {
            continue;
        }
        if entry.lsn > commit_lsn {
            break;
        }
        batch.push(entry);
        if batch.len() == REPLAY_BATCH {
            store.apply_batch(&batch)?;
            applied += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.apply_batch(&batch)?;
        applied += batch.len() as u64;
    }
    Ok(ReplayReport {
        from,
        to: store.applied_lsn(),
        applied,
    })
}
