//! One partition on a node: its WAL, its replica store, and the ordered write path.
//!
//! Writes to a partition are decided in log order under the partition's writer lock: the
//! current value of the key (the newest pending write, else the store) is read, the caller's
//! decision (condition, update) is made, and the resulting entry is enqueued in the WAL, all
//! under the lock. The fsync happens after the lock is released, so concurrent writers share
//! it (group commit). Once durable, entries are applied to the store in LSN order, and only
//! then is the write acknowledged: an acknowledged write is durable and visible to reads.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::catalog::PartitionDef;
use crate::digest::CheckpointPolicy;
use crate::protocol::{ApiError, ErrorCode};
use crate::replica::{FjallReplicaStore, ReplicaSnapshot, ReplicaStore, replay_committed};
use crate::wal::{Ballot, Entry, Lsn, Operation, Wal, WalOptions};

/// What a write decided to do to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Store this canonical item encoding.
    Put(Vec<u8>),
    /// Remove the item.
    Delete,
    /// Change nothing (e.g. deleting an item that does not exist); nothing is logged.
    Nothing,
}

struct WriterState {
    /// LSN the next entry gets.
    next_lsn: Lsn,
    /// Entries enqueued in the WAL and not yet applied, in LSN order.
    pending: VecDeque<(Entry, Vec<u8>)>,
    /// Newest pending value per key: what the next write of the key must see.
    overlay: HashMap<Vec<u8>, (Lsn, Option<Vec<u8>>)>,
    /// Why the partition stopped accepting writes, if it did.
    failed: Option<String>,
}

/// A partition replica on this node, serving reads and writes.
pub struct Partition {
    def: PartitionDef,
    wal: Wal,
    store: FjallReplicaStore,
    ballot: Ballot,
    writer: Mutex<WriterState>,
}

/// Where a partition's WAL lives under the node's data directory.
#[must_use]
pub fn wal_dir(data_dir: &Path, partition_id: u64) -> std::path::PathBuf {
    data_dir.join("wal").join(partition_id.to_string())
}

/// Where a partition's replica store lives under the node's data directory.
#[must_use]
pub fn store_dir(data_dir: &Path, partition_id: u64) -> std::path::PathBuf {
    data_dir.join("replicas").join(partition_id.to_string())
}

impl Partition {
    /// Opens (or creates) the partition's WAL and store under `data_dir`, recovering both: a
    /// torn WAL tail is cut, WAL corruption is an error, and the store is brought up to the
    /// end of the WAL by replay.
    pub fn open(data_dir: &Path, def: PartitionDef, node_id: u32) -> Result<Self, String> {
        let wal_path = wal_dir(data_dir, def.id);
        let store_path = store_dir(data_dir, def.id);
        for dir in [&wal_path, &store_path] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let wal = Wal::open(&wal_path, WalOptions::default())
            .map_err(|e| format!("partition {}: opening WAL: {e}", def.id))?;
        let store = FjallReplicaStore::open(&store_path, CheckpointPolicy::default())
            .map_err(|e| format!("partition {}: opening replica store: {e}", def.id))?;
        // Single-node: every durable entry is committed.
        let last = wal.last_lsn().map_err(|e| e.to_string())?;
        let from = store.applied_lsn().next();
        if from <= last {
            let log = wal.read_from(from).map_err(|e| e.to_string())?;
            replay_committed(&store, log, last)
                .map_err(|e| format!("partition {}: replaying WAL: {e}", def.id))?;
        }
        Ok(Partition {
            def,
            ballot: Ballot {
                round: 1,
                node: node_id,
            },
            writer: Mutex::new(WriterState {
                next_lsn: last.next(),
                pending: VecDeque::new(),
                overlay: HashMap::new(),
                failed: None,
            }),
            wal,
            store,
        })
    }

    /// The partition's definition.
    #[must_use]
    pub fn def(&self) -> &PartitionDef {
        &self.def
    }

    /// The replica store (reads, snapshots, digests).
    #[must_use]
    pub fn store(&self) -> &FjallReplicaStore {
        &self.store
    }

    /// The write-ahead log.
    #[must_use]
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Reads the item under `key` as of the latest acknowledged write.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        self.store.get(key).map_err(|e| self.fail(e.to_string()))
    }

    /// A consistent snapshot for Query and Scan.
    pub fn snapshot(&self) -> Result<Box<dyn ReplicaSnapshot + '_>, ApiError> {
        self.store.snapshot().map_err(|e| self.fail(e.to_string()))
    }

    /// Writes `key`: `decide` sees the key's current canonical item (or `None`) and returns
    /// what to do plus a result for the caller, or an error (a failed condition) that leaves
    /// everything unchanged. Returns once the write is durable and applied.
    pub fn write<T>(
        &self,
        key: Vec<u8>,
        decide: impl FnOnce(Option<&[u8]>) -> Result<(WriteOp, T), ApiError>,
    ) -> Result<T, ApiError> {
        let (ticket, lsn, result) = {
            let mut writer = self.lock();
            if writer.failed.is_some() {
                return Err(unavailable());
            }
            let stored;
            let current = match writer.overlay.get(&key) {
                Some((_, pending)) => pending.as_deref(),
                None => {
                    stored = self.store.get(&key).map_err(|e| self.fail(e.to_string()))?;
                    stored.as_deref()
                }
            };
            let (op, result) = decide(current)?;
            let (op, value) = match op {
                WriteOp::Nothing => return Ok(result),
                WriteOp::Put(item) => (
                    Operation::Put {
                        key: key.clone(),
                        item: item.clone(),
                    },
                    Some(item),
                ),
                WriteOp::Delete => (Operation::Delete { key: key.clone() }, None),
            };
            let lsn = writer.next_lsn;
            let entry = Entry {
                lsn,
                ballot: self.ballot,
                timestamp_ms: now_ms(),
                op,
            };
            let ticket = match self.wal.submit_batch(vec![entry.clone()]) {
                Ok(Some(ticket)) => ticket,
                Ok(None) => return Err(ApiError::internal("empty WAL submission")),
                Err(e) => return Err(Self::fail_locked(&mut writer, e.to_string())),
            };
            writer.next_lsn = lsn.next();
            writer.overlay.insert(key.clone(), (lsn, value));
            writer.pending.push_back((entry, key));
            (ticket, lsn, result)
        };
        if let Err(e) = self.wal.wait(ticket) {
            return Err(self.fail(format!("WAL append failed: {e}")));
        }
        self.apply_through(lsn)?;
        Ok(result)
    }

    /// Applies every pending entry up to `lsn` (all durable: the WAL syncs in order).
    fn apply_through(&self, lsn: Lsn) -> Result<(), ApiError> {
        let mut writer = self.lock();
        if self.store.applied_lsn() >= lsn {
            return Ok(());
        }
        let mut batch = Vec::new();
        let mut keys = Vec::new();
        while writer.pending.front().is_some_and(|(e, _)| e.lsn <= lsn) {
            if let Some((entry, key)) = writer.pending.pop_front() {
                batch.push(entry);
                keys.push(key);
            }
        }
        if let Err(e) = self.store.apply_batch(&batch) {
            return Err(Self::fail_locked(&mut writer, format!("apply failed: {e}")));
        }
        for (entry, key) in batch.iter().zip(keys) {
            if writer
                .overlay
                .get(&key)
                .is_some_and(|(l, _)| *l == entry.lsn)
            {
                writer.overlay.remove(&key);
            }
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // The writer state is changed only in short sections that cannot panic halfway in a
        // way that matters: a poisoned lock still guards a usable state.
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stops the partition from accepting writes after an I/O failure: what was enqueued may
    /// or may not be durable, so only a reopen (recovery from the WAL) can tell.
    fn fail(&self, reason: String) -> ApiError {
        let mut writer = self.lock();
        Self::fail_locked(&mut writer, reason)
    }

    fn fail_locked(writer: &mut WriterState, reason: String) -> ApiError {
        if writer.failed.is_none() {
            tracing::error!(%reason, "partition stops accepting writes");
            writer.failed = Some(reason);
        }
        ApiError::new(
            ErrorCode::InternalServerError,
            "Internal server error: the partition failed and must recover",
        )
    }
}

/// What clients see while a partition is failed; the reason was logged when it failed and is
/// never sent to clients.
fn unavailable() -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        "The partition is unavailable; retry later",
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
