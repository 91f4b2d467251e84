//! Cutting the log's final file at any byte (a crash mid-write) recovers exactly the entries
//! whose records lie wholly before the cut, and the log accepts the next LSN afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use std::fs::OpenOptions;

use ddb::wal::{Lsn, Wal, WalOptions, frame};
use wal_common::{
    copy_dir, entry, logical_len, preallocating, read_all, segment_paths, small_segments, write_at,
    write_log,
};

/// A directory for one copy of the log. The test makes thousands of copies and appends to each,
/// which syncs and, past the cut, writes 1 MiB of preallocated zeros ahead: what it checks is
/// how recovery reads the bytes, not the disk, so the copies live in memory (`/dev/shm`) where
/// there is one. In CI: 82 s on disk, 29 s in memory.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Byte offsets where each record of `entries` ends, for a segment holding them in order.
fn record_ends(entries: &[ddb::wal::Entry]) -> Vec<u64> {
    let mut end = frame::HEADER_LEN as u64;
    entries
        .iter()
        .map(|e| {
            end += (frame::FRAME_HEADER_LEN + e.encoded_len()) as u64;
            end
        })
        .collect()
}

/// How a crash leaves the bytes after `cut` of the last segment.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// The file ends at the cut (records appended at the end of the file).
    Truncated,
    /// The file keeps its length and reads as zeros from the cut on (records written over
    /// preallocated zeros).
    Zeroed,
}

fn check_every_cut(options: WalOptions, count: u64) {
    let original = scratch_dir();
    let written = write_log(original.path(), options.clone(), count);
    let segments = segment_paths(original.path());
    let last = segments.last().unwrap();
    let last_first: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let before_last = (last_first - 1) as usize;
    let ends = record_ends(&written[before_last..]);
    let logical = *ends.last().unwrap();
    assert_eq!(logical_len(last), logical);
    let full_len = std::fs::metadata(last).unwrap().len();
    assert_eq!(
        full_len > logical,
        options.preallocate_bytes > 0,
        "the writer keeps zeros ahead of its records exactly when preallocating"
    );
    for sealed in &segments[..segments.len() - 1] {
        assert_eq!(
            std::fs::metadata(sealed).unwrap().len(),
            logical_len(sealed),
            "a sealed segment ends at its last record"
        );
    }
    let original_bytes = std::fs::read(last).unwrap();

    for crash in [Crash::Truncated, Crash::Zeroed] {
        for cut in 0..=logical {
            let copy = scratch_dir();
            copy_dir(original.path(), copy.path());
            let victim = copy.path().join(last.file_name().unwrap());
            match crash {
                Crash::Truncated => OpenOptions::new()
                    .write(true)
                    .open(&victim)
                    .unwrap()
                    .set_len(cut)
                    .unwrap(),
                Crash::Zeroed => write_at(&victim, cut, &vec![0; (logical - cut) as usize]),
            }
            let context = format!("{crash:?} at {cut}");

            let wal = Wal::open(copy.path(), options.clone()).unwrap();
            let survivors = before_last + ends.iter().filter(|end| **end <= cut).count();
            let recovered = read_all(&wal);
            assert_eq!(recovered, written[..survivors], "{context}");
            assert_eq!(wal.last_lsn().unwrap(), Lsn(survivors as u64));
            // Nothing is cut when the cut falls between records (only zeros, if anything,
            // follow the last whole one), or leaves just the header.
            let last_end = ends
                .iter()
                .copied()
                .filter(|end| *end <= cut)
                .max()
                .unwrap_or(frame::HEADER_LEN as u64);
            let clean = cut == frame::HEADER_LEN as u64
                || (cut >= last_end
                    && original_bytes[last_end as usize..cut as usize]
                        .iter()
                        .all(|b| *b == 0));
            let report = wal.recovery_report();
            assert_eq!(report.cut.is_none(), clean, "{context}: {report:?}");

            let next = entry(survivors as u64 + 1);
            wal.append(next.clone()).unwrap();
            drop(wal);
            let wal = Wal::open(copy.path(), options.clone()).unwrap();
            assert!(wal.recovery_report().cut.is_none(), "{context}");
            let mut expected = written[..survivors].to_vec();
            expected.push(next);
            assert_eq!(read_all(&wal), expected, "append after {context}");
        }
    }
}

#[test]
fn every_cut_of_the_last_segment_of_a_multi_segment_log_recovers_a_prefix() {
    check_every_cut(small_segments(700), 30);
}

#[test]
fn every_cut_of_a_single_segment_log_recovers_a_prefix() {
    check_every_cut(WalOptions::default(), 8);
}

#[test]
fn every_cut_without_preallocation_recovers_a_prefix() {
    check_every_cut(preallocating(small_segments(700), 0), 30);
    check_every_cut(preallocating(WalOptions::default(), 0), 8);
}
