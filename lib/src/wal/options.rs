//! Configuration, counters and append tickets of the WAL writer.

use super::Lsn;

/// How a [`Wal`] is configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment is sealed and a new one started once the active segment reaches this size.
    /// A segment may exceed it by one group-commit batch. Default: 64 MiB.
    pub segment_max_bytes: u64,
    /// The LSN a brand-new, empty log expects first (a log replica may start mid-way). Ignored
    /// when the directory already holds segments. Default: 1.
    pub start_lsn: Lsn,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_max_bytes: 64 * 1024 * 1024,
            start_lsn: Lsn(1),
        }
    }
}

/// Counters describing what a [`Wal`] has done since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Entries appended (acknowledged or not).
    pub appends: u64,
    /// `fdatasync` calls on segment files (group commit makes this smaller than `appends`).
    pub syncs: u64,
    /// Batches written by a flusher.
    pub flushes: u64,
    /// Record bytes written.
    pub bytes_written: u64,
    /// Segment files created (including the first one of a new log).
    pub segments_created: u64,
    /// Segment files deleted by `delete_below` and `truncate_after`.
    pub segments_deleted: u64,
}

/// Entries enqueued by [`Wal::submit_batch`] or [`Wal::submit_next`] and not yet known to be
/// durable; [`Wal::wait`] turns it into durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "entries are durable only once the ticket has been waited on"]
pub struct AppendTicket {
    /// Record count that must be synced for these entries to be durable.
    pub(super) target: u64,
    /// LSN of the last entry behind the ticket.
    pub(super) last_lsn: Lsn,
}

impl AppendTicket {
    /// LSN of the last entry behind the ticket.
    #[must_use]
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }
}
