//! Recovery on open: check every segment, cut a torn tail, refuse corruption.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::frame::{self, HEADER_LEN};
use super::index::SparseIndex;
use super::inspect::{SegmentVerdict, scan_log};
use super::segment::{self, segment_file_name};
use super::{Lsn, WalError};

/// What recovery found when a [`crate::wal::Wal`] was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Number of segment files found (0 for a new log).
    pub segments: usize,
    /// Oldest retained LSN (for an empty log, the LSN the first entry will get).
    pub first_lsn: Lsn,
    /// Last durable LSN after recovery (`first_lsn - 1` for an empty log).
    pub last_lsn: Lsn,
    /// Number of entries found.
    pub entries: u64,
    /// The torn tail that was cut off, if any.
    pub cut: Option<TornTailCut>,
    /// Zero bytes found after the last record of the newest segment (space the writer had
    /// preallocated). Recovery keeps them: they hold no entry, and the writer overwrites them.
    pub preallocated_bytes: u64,
    /// True when the directory held no segment and a first one was created.
    pub created: bool,
}

/// A torn tail cut off the last segment by recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTailCut {
    /// The segment that was truncated.
    pub segment: PathBuf,
    /// The offset it was truncated to; 0 means its header was torn and has been rewritten.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
}

/// The active segment, open for appending.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub file: File,
    pub path: PathBuf,
    pub first_lsn: Lsn,
    /// Logical length: the end of the last record (or the header); writes go here.
    pub len: u64,
    /// File length; the bytes in `len..zeroed_end` are zeros. Never below `len`.
    pub zeroed_end: u64,
}

/// The writer's starting state after recovery.
pub(crate) struct Recovered {
    pub report: RecoveryReport,
    /// First LSNs of the retained segments, oldest first; the last is the active one.
    pub segments: Vec<Lsn>,
    pub active: ActiveSegment,
    /// Points of every retained segment (see [`SparseIndex`]).
    pub index: SparseIndex,
}

/// Scans the log in `dir`, fails on corruption, cuts a torn tail of the last segment and opens
/// it for appending. A zeroed (preallocated) tail of the last segment is kept, and the writer
/// goes on writing over it. Creates a first segment starting at `start_lsn` if there is none.
/// Builds the sparse index, with points `index_every_bytes` apart, as it checks the segments.
pub(crate) fn recover(
    dir: &Path,
    start_lsn: Lsn,
    index_every_bytes: u64,
) -> Result<Recovered, WalError> {
    let mut index = SparseIndex::new(index_every_bytes);
    let (inspection, scans) = scan_log(dir, &mut |segment_first, lsn, offset| {
        index.note(segment_first, lsn, offset);
    })?;
    if let Some(bad) = inspection.first_corruption()
        && let SegmentVerdict::Corrupt { offset, reason } = &bad.verdict
    {
        return Err(WalError::Corruption {
            segment: bad.path.clone(),
            offset: *offset,
            reason: reason.clone(),
        });
    }
    let Some(last) = scans.last() else {
        let (file, path) = segment::create_segment(dir, start_lsn)?;
        index.note(start_lsn, start_lsn, HEADER_LEN as u64);
        return Ok(Recovered {
            report: RecoveryReport {
                segments: 0,
                first_lsn: start_lsn,
                last_lsn: Lsn(start_lsn.0.saturating_sub(1)),
                entries: 0,
                cut: None,
                preallocated_bytes: 0,
                created: true,
            },
            segments: vec![start_lsn],
            active: ActiveSegment {
                file,
                path,
                first_lsn: start_lsn,
                len: HEADER_LEN as u64,
                zeroed_end: HEADER_LEN as u64,
            },
            index,
        });
    };
    let path = dir.join(segment_file_name(last.first_lsn));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(WalError::io("open segment", &path))?;
    let mut cut = None;
    let mut len = last.good_end;
    if let SegmentVerdict::TornTail { offset, bytes } = last.verdict {
        truncate(&file, &path, offset)?;
        if offset == 0 {
            // The segment was being created when the process stopped: rewrite its header.
            file.write_all(&frame::encode_header(last.first_lsn))
                .map_err(WalError::io("write segment header", &path))?;
            len = HEADER_LEN as u64;
        }
        file.sync_data()
            .map_err(WalError::io("fsync segment", &path))?;
        cut = Some(TornTailCut {
            segment: path.clone(),
            offset,
            bytes,
        });
    }
    file.seek(SeekFrom::Start(len))
        .map_err(WalError::io("seek segment", &path))?;
    // The active segment's start, should it hold no record (or its only ones were cut).
    index.note(last.first_lsn, last.first_lsn, HEADER_LEN as u64);
    Ok(Recovered {
        report: RecoveryReport {
            segments: scans.len(),
            first_lsn: scans[0].first_lsn,
            last_lsn: last.last_lsn,
            entries: inspection.total_entries,
            cut,
            preallocated_bytes: last.preallocated,
            created: false,
        },
        segments: scans.iter().map(|s| s.first_lsn).collect(),
        active: ActiveSegment {
            file,
            path,
            first_lsn: last.first_lsn,
            len,
            // A zeroed tail is only ever found with an `Ok` verdict, never beside a cut.
            zeroed_end: len + last.preallocated,
        },
        index,
    })
}

/// Cuts `file` to `len` bytes and positions it there (the caller syncs).
pub(crate) fn truncate(file: &File, path: &Path, len: u64) -> Result<(), WalError> {
    file.set_len(len)
        .map_err(WalError::io("truncate segment", path))?;
    let mut handle = file;
    handle
        .seek(SeekFrom::Start(len))
        .map_err(WalError::io("seek segment", path))?;
    Ok(())
}
