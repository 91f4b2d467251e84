//! Segment files: naming, listing, creation and the scan that checks one segment's records.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::frame::{self, FrameRead, HEADER_LEN};
use super::inspect::SegmentVerdict;
use super::{Lsn, WalError};

/// File-name suffix of segment files.
const SEGMENT_SUFFIX: &str = ".wal";
/// Digits in a segment file name's LSN.
const NAME_DIGITS: usize = 20;

/// The file name of the segment whose first entry has LSN `first_lsn`: 20 zero-padded decimal
/// digits and `.wal`, so that names sort like LSNs.
#[must_use]
pub fn segment_file_name(first_lsn: Lsn) -> String {
    format!("{:020}{SEGMENT_SUFFIX}", first_lsn.0)
}

/// The first LSN encoded in a segment file name, or `None` if the name is not a segment's.
#[must_use]
pub fn parse_segment_file_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Lsn)
}

/// A segment file found in a WAL directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentFile {
    /// First LSN, from the file name.
    pub first_lsn: Lsn,
    /// Full path of the file.
    pub path: PathBuf,
}

/// Lists the segment files in `dir`, oldest first. Files with other names are ignored; a
/// missing directory holds no segments.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(WalError::io("list directory", dir)(e)),
    };
    let mut segments = Vec::new();
    for item in read {
        let item = item.map_err(WalError::io("list directory", dir))?;
        let name = item.file_name();
        if let Some(first_lsn) = name.to_str().and_then(parse_segment_file_name) {
            segments.push(SegmentFile {
                first_lsn,
                path: item.path(),
            });
        }
    }
    segments.sort_by_key(|s| s.first_lsn);
    Ok(segments)
}

/// Makes creations, renames and deletions of entries in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("fsync directory", dir))
}

/// Creates a new, empty segment whose first entry will be `first_lsn`, makes its header and its
/// directory entry durable, and returns it open for writing, positioned after the header.
pub fn create_segment(dir: &Path, first_lsn: Lsn) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_file_name(first_lsn));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(WalError::io("create segment", &path))?;
    file.write_all(&frame::encode_header(first_lsn))
        .map_err(WalError::io("write segment header", &path))?;
    file.sync_data()
        .map_err(WalError::io("fsync segment", &path))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// What a scan of one segment found.
#[derive(Clone, Debug)]
pub struct SegmentScan {
    /// First LSN (from the file name).
    pub first_lsn: Lsn,
    /// LSN of the last good record; `first_lsn - 1` if there is none.
    pub last_lsn: Lsn,
    /// Number of good records.
    pub entries: u64,
    /// File length in bytes.
    pub bytes: u64,
    /// Offset just past the last good record (or the header).
    pub good_end: u64,
    /// Zero bytes after the last good record of the newest segment: space the writer
    /// preallocated, not a torn tail. 0 for sealed segments.
    pub preallocated: u64,
    /// The verdict.
    pub verdict: SegmentVerdict,
}

/// Reads and checks one segment.
///
/// `expected_first` is the LSN the previous segment implies (its last + 1), if known. A segment
/// that is not `is_last` must be entirely well-formed and end at its last record. In the last
/// segment, a tail of only zero bytes after the last good record is preallocated space
/// (`preallocated`), and the verdict stays `Ok`. In the last segment a short or
/// bad-checksum record (or header) is a torn tail only if no good record with a larger LSN starts
/// anywhere after it: writes are sequential and every acknowledged batch was synced, so a good
/// record after a bad one proves the bad one was once durable, and cutting would lose data.
///
/// `on_record(lsn, offset)` is called for every good record, in order.
pub fn scan_segment(
    segment: &SegmentFile,
    expected_first: Option<Lsn>,
    is_last: bool,
    on_record: &mut dyn FnMut(Lsn, u64),
) -> Result<SegmentScan, WalError> {
    let buf = fs::read(&segment.path).map_err(WalError::io("read segment", &segment.path))?;
    let first = segment.first_lsn;
    let mut scan = SegmentScan {
        first_lsn: first,
        last_lsn: Lsn(first.0.saturating_sub(1)),
        entries: 0,
        bytes: buf.len() as u64,
        good_end: 0,
        preallocated: 0,
        verdict: SegmentVerdict::Ok,
    };
    let corrupt = |offset: usize, reason: String| SegmentVerdict::Corrupt {
        offset: offset as u64,
        reason,
    };
    if let Some(expected) = expected_first
        && expected != first
    {
        scan.verdict = corrupt(
            0,
            format!(
                "segment starts at LSN {first} but the previous one ends at {}",
                Lsn(expected.0 - 1)
            ),
        );
        return Ok(scan);
    }
    match frame::decode_header(&buf) {
        Ok(lsn) if lsn == first => {}
        Ok(lsn) => {
            scan.verdict = corrupt(
                0,
                format!("header says first LSN {lsn}, file name says {first}"),
            );
            return Ok(scan);
        }
        Err(reason) => {
            scan.verdict = torn_or_corrupt(&buf, 0, scan.last_lsn, is_last, reason);
            return Ok(scan);
        }
    }
    let mut offset = HEADER_LEN;
    loop {
        scan.good_end = offset as u64;
        if offset == buf.len() {
            return Ok(scan);
        }
        let reason = match frame::read_frame(&buf, offset) {
            FrameRead::Good { entry, len } => {
                let expected = scan.last_lsn.next();
                if entry.lsn != expected {
                    scan.verdict = corrupt(
                        offset,
                        format!("record has LSN {} where {expected} was expected", entry.lsn),
                    );
                    return Ok(scan);
                }
                on_record(expected, offset as u64);
                scan.last_lsn = expected;
                scan.entries += 1;
                offset += len;
                continue;
            }
            FrameRead::Undecodable(e) => {
                scan.verdict = corrupt(
                    offset,
                    format!("record checksum matches but the entry does not decode: {e}"),
                );
                return Ok(scan);
            }
            FrameRead::Short | FrameRead::BadChecksum(_)
                if is_last && is_zeroed(&buf[offset..]) =>
            {
                // Zeros are never a record (length 0 is implausible), so this is space the
                // writer filled ahead of its write position: the log ends cleanly here.
                scan.preallocated = (buf.len() - offset) as u64;
                return Ok(scan);
            }
            FrameRead::Short => "file ends inside a record".to_string(),
            FrameRead::BadChecksum(reason) => reason,
        };
        scan.verdict = torn_or_corrupt(&buf, offset, scan.last_lsn, is_last, reason);
        return Ok(scan);
    }
}

/// The byte offset where the record of `lsn` starts in a well-formed segment (or the end of the
/// file if `lsn` is one past its last entry).
pub fn record_offset(segment: &SegmentFile, lsn: Lsn) -> Result<u64, WalError> {
    let buf = fs::read(&segment.path).map_err(WalError::io("read segment", &segment.path))?;
    let mut offset = HEADER_LEN;
    let mut next = segment.first_lsn;
    while next < lsn {
        match frame::read_frame(&buf, offset) {
            FrameRead::Good { entry, len } if entry.lsn == next => {
                offset += len;
                next = next.next();
            }
            other => {
                return Err(WalError::Corruption {
                    segment: segment.path.clone(),
                    offset: offset as u64,
                    reason: format!(
                        "looking for LSN {lsn}, found {other:?} where LSN {next} should be"
                    ),
                });
            }
        }
    }
    Ok(offset as u64)
}

/// Whether every byte of `bytes` is zero.
#[must_use]
pub fn is_zeroed(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

fn torn_or_corrupt(
    buf: &[u8],
    offset: usize,
    last_good: Lsn,
    is_last: bool,
    reason: String,
) -> SegmentVerdict {
    if !is_last {
        return SegmentVerdict::Corrupt {
            offset: offset as u64,
            reason: format!("{reason} in a sealed segment"),
        };
    }
    match frame::find_valid_frame_after(buf, offset, last_good) {
        Some(next) => SegmentVerdict::Corrupt {
            offset: offset as u64,
            reason: format!("{reason}, but a valid record follows at offset {next}"),
        },
        None => SegmentVerdict::TornTail {
            offset: offset as u64,
            bytes: (buf.len() - offset) as u64,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_lsns_and_round_trip() {
        assert_eq!(segment_file_name(Lsn(1)), "00000000000000000001.wal");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(Lsn(u64::MAX))),
            Some(Lsn(u64::MAX))
        );
        assert_eq!(parse_segment_file_name("1.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000a.wal"), None);
        assert_eq!(parse_segment_file_name("LOCK"), None);
        assert!(segment_file_name(Lsn(9)) < segment_file_name(Lsn(10)));
    }
}
