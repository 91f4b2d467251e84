//! Errors of the replica store.

use crate::wal::Lsn;

/// Why a replica store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// An entry was offered out of LSN order; nothing was applied.
    #[error("entry out of order: expected LSN {expected}, got {got}")]
    OutOfOrder {
        /// The LSN the store can apply next.
        expected: Lsn,
        /// The LSN it was offered.
        got: Lsn,
    },
    /// Items of a peer's snapshot were offered to a store that has already applied entries.
    #[error("cannot load a snapshot into a store that applied LSN {applied}")]
    NotRebuilding {
        /// What the store has applied.
        applied: Lsn,
    },
    /// The storage engine failed; the store should be reopened (and replayed from the WAL).
    #[error("storage engine: {0}")]
    Engine(#[from] fjall::Error),
    /// The store's own metadata is unreadable or inconsistent.
    #[error("replica store metadata is corrupt: {0}")]
    CorruptMetadata(String),
    /// The store was created with another checkpoint interval; replicas must share one.
    #[error("store uses checkpoint interval {stored}, but {requested} was requested")]
    CheckpointIntervalMismatch {
        /// Interval recorded in the store.
        stored: u64,
        /// Interval the caller asked for.
        requested: u64,
    },
    /// The directory holds no replica store.
    #[error("{} is not a ddb replica store", .0.display())]
    NotAStore(std::path::PathBuf),
    /// Reading the WAL during replay failed.
    #[error("reading the WAL for replay: {0}")]
    Wal(Box<dyn std::error::Error + Send + Sync>),
}
