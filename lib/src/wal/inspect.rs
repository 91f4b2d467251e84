//! Read-only inspection of a WAL directory, for `ddbctl wal inspect` and for recovery.

use std::fmt;
use std::path::{Path, PathBuf};

use super::segment::{self, SegmentScan};
use super::{Lsn, WalError};

/// The state of one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentVerdict {
    /// Every byte belongs to a good record (or the header), except, in the newest segment, a
    /// tail of zero bytes the writer preallocated (see [`SegmentInspection::preallocated_bytes`]).
    Ok,
    /// The last segment ends in a partial or damaged record after which nothing valid follows;
    /// recovery cuts `bytes` bytes from `offset`. An offset of 0 means the header itself is torn
    /// (the segment was being created) and recovery rewrites it from the file name.
    TornTail {
        /// Offset of the first byte recovery cuts.
        offset: u64,
        /// Number of bytes recovery cuts.
        bytes: u64,
    },
    /// Damage recovery will not repair: `Wal::open` fails.
    Corrupt {
        /// Offset in the file where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for SegmentVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentVerdict::Ok => write!(f, "ok"),
            SegmentVerdict::TornTail { offset, bytes } => {
                write!(f, "torn tail: {bytes} bytes from offset {offset}")
            }
            SegmentVerdict::Corrupt { offset, reason } => {
                write!(f, "CORRUPT at offset {offset}: {reason}")
            }
        }
    }
}

/// What [`inspect`] found in one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInspection {
    /// The file name, e.g. `00000000000000000001.wal`.
    pub file_name: String,
    /// The full path.
    pub path: PathBuf,
    /// LSN of the segment's first entry (from its name).
    pub first_lsn: Lsn,
    /// LSN of its last good entry; `first_lsn - 1` when it holds none.
    pub last_lsn: Lsn,
    /// Number of good entries.
    pub entries: u64,
    /// File size in bytes, including any preallocated tail.
    pub bytes: u64,
    /// Zero bytes after the last record of the newest segment: space the writer filled ahead of
    /// its write position, which holds no entry. `bytes - preallocated_bytes` is the logical
    /// size. Always 0 for sealed segments, which end at their last record.
    pub preallocated_bytes: u64,
    /// Whether the segment is sound, ends in a torn tail, or is corrupt.
    pub verdict: SegmentVerdict,
}

/// What [`inspect`] found in a WAL directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalInspection {
    /// The inspected directory.
    pub dir: PathBuf,
    /// Every segment, oldest first.
    pub segments: Vec<SegmentInspection>,
    /// Total good entries over all segments.
    pub total_entries: u64,
    /// Total size of all segment files in bytes, preallocated tails included.
    pub total_bytes: u64,
    /// First LSN of the oldest segment, if any.
    pub first_lsn: Option<Lsn>,
    /// LSN of the last good entry of the newest segment, if any segment exists.
    pub last_lsn: Option<Lsn>,
}

impl WalInspection {
    /// True when no segment is corrupt (a torn tail is normal after a crash).
    #[must_use]
    pub fn is_recoverable(&self) -> bool {
        self.first_corruption().is_none()
    }

    /// The oldest corrupt segment and its verdict, if any.
    #[must_use]
    pub fn first_corruption(&self) -> Option<&SegmentInspection> {
        self.segments
            .iter()
            .find(|s| matches!(s.verdict, SegmentVerdict::Corrupt { .. }))
    }
}

impl fmt::Display for WalInspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            write!(
                f,
                "{}  lsn {}..={}  {} entries  {} bytes",
                s.file_name, s.first_lsn, s.last_lsn, s.entries, s.bytes
            )?;
            if s.preallocated_bytes > 0 {
                write!(f, " ({} preallocated)", s.preallocated_bytes)?;
            }
            writeln!(f, "  {}", s.verdict)?;
        }
        write!(
            f,
            "{} segments, {} entries, {} bytes",
            self.segments.len(),
            self.total_entries,
            self.total_bytes
        )
    }
}

/// Scans every segment of the WAL in `dir` and reports what it holds. Never modifies files;
/// safe to run on a live node's log (a record being written may show as a torn tail).
pub fn inspect(dir: &Path) -> Result<WalInspection, WalError> {
    let (inspection, _) = scan_log(dir, &mut |_, _, _| {})?;
    Ok(inspection)
}

/// Scans the log and also returns the raw per-segment scans recovery needs; `on_record(segment
/// first LSN, record LSN, offset)` is called for every good record, in order.
pub(crate) fn scan_log(
    dir: &Path,
    on_record: &mut dyn FnMut(Lsn, Lsn, u64),
) -> Result<(WalInspection, Vec<SegmentScan>), WalError> {
    let files = segment::list_segments(dir)?;
    let mut scans: Vec<SegmentScan> = Vec::with_capacity(files.len());
    let mut segments = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        // After a corrupt segment its true end is unknown, so the next one's start is unchecked.
        let expected_first = scans
            .last()
            .filter(|s| s.verdict == SegmentVerdict::Ok)
            .map(|s| s.last_lsn.next());
        let scan = segment::scan_segment(
            file,
            expected_first,
            i + 1 == files.len(),
            &mut |lsn, offset| on_record(file.first_lsn, lsn, offset),
        )?;
        segments.push(SegmentInspection {
            file_name: file
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: file.path.clone(),
            first_lsn: scan.first_lsn,
            last_lsn: scan.last_lsn,
            entries: scan.entries,
            bytes: scan.bytes,
            preallocated_bytes: scan.preallocated,
            verdict: scan.verdict.clone(),
        });
        scans.push(scan);
    }
    let inspection = WalInspection {
        dir: dir.to_path_buf(),
        total_entries: segments.iter().map(|s| s.entries).sum(),
        total_bytes: segments.iter().map(|s| s.bytes).sum(),
        first_lsn: segments.first().map(|s| s.first_lsn),
        last_lsn: segments.last().map(|s| s.last_lsn),
        segments,
    };
    Ok((inspection, scans))
}
