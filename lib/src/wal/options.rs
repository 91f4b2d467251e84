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
    /// How far ahead of the write position the writer keeps the active segment filled with
    /// synced zero bytes. Whenever a batch would cross the zeroed end, the file is extended by
    /// writing (not `fallocate`-ing) zeros up to this many bytes past the batch, capped at
    /// `segment_max_bytes`, and `fdatasync`ed; batches then overwrite zeros in place, so their
    /// `fdatasync` has no file-size metadata to journal. A segment is truncated to its last
    /// record before it is sealed. 0 disables it: records are appended at the end of the file.
    /// Default: 1 MiB.
    pub preallocate_bytes: u64,
    /// Spacing of the in-memory LSN → offset index the writer keeps of its segments: a read
    /// from an LSN ([`crate::wal::Wal::read_from`]) starts at most this many bytes (plus one
    /// group-commit batch) before the LSN's record instead of at the start of its segment.
    /// Smaller spacing means faster positioning and more memory (16 bytes per point).
    /// Default: 64 KiB.
    pub index_every_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_max_bytes: 64 * 1024 * 1024,
            start_lsn: Lsn(1),
            preallocate_bytes: 1024 * 1024,
            index_every_bytes: 64 * 1024,
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
    /// Extensions of the active segment's zeroed region (see
    /// [`WalOptions::preallocate_bytes`]); each is one write of zeros and one `fdatasync`,
    /// which `syncs` counts too.
    pub zero_fills: u64,
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
