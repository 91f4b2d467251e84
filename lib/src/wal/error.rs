//! The WAL's error type.

use std::io;
use std::path::PathBuf;

use super::Lsn;

/// Everything that can go wrong in the write-ahead log.
///
/// Callers branch on [`WalError::Corruption`] (stop serving, report), [`WalError::NonContiguous`]
/// (a replication bug or a stale proposal) and [`WalError::Poisoned`] (restart the log).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. `"fsync"` or `"open segment"`.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A durable part of the log is damaged: a bad header, a bad frame that is not a torn tail,
    /// an LSN gap or a frame that does not decode. Nothing was deleted or truncated.
    #[error("WAL corruption in {segment} at offset {offset}: {reason}")]
    Corruption {
        /// The segment file holding the damage.
        segment: PathBuf,
        /// Byte offset in that file where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An appended entry's LSN is not the one right after the last enqueued entry.
    #[error("non-contiguous append: expected LSN {expected}, got {got}")]
    NonContiguous {
        /// The only LSN the log accepts next.
        expected: Lsn,
        /// The LSN that was offered.
        got: Lsn,
    },
    /// The requested LSN is older than the oldest entry the log still retains.
    #[error("LSN {requested} is below the oldest retained LSN {first}")]
    BelowRetained {
        /// The LSN asked for.
        requested: Lsn,
        /// The oldest LSN still retained.
        first: Lsn,
    },
    /// An entry's encoded body is larger than a frame may hold.
    #[error("entry {lsn} is {bytes} bytes; a WAL record holds at most {max}")]
    EntryTooLarge {
        /// The entry's LSN.
        lsn: Lsn,
        /// Its encoded body length.
        bytes: usize,
        /// The largest body a frame may hold.
        max: usize,
    },
    /// Another `Wal` holds the directory's lock file.
    #[error("WAL directory {path} is in use by another writer")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// An earlier write, sync or truncation failed; the log refuses further changes because its
    /// on-disk state is unknown. Reopen it to recover.
    #[error("WAL is poisoned by an earlier failure: {reason}")]
    Poisoned {
        /// The failure that poisoned the log.
        reason: String,
    },
}

impl WalError {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io { op, path, source }
    }
}
