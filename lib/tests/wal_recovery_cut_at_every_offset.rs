//! Cutting the log's final file at any byte (a crash mid-write) recovers exactly the entries
//! whose records lie wholly before the cut, and the log accepts the next LSN afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use std::fs::OpenOptions;

use ddb::wal::{Lsn, Wal, WalOptions, frame};
use wal_common::{copy_dir, entry, read_all, segment_paths, small_segments, write_log};

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

fn check_every_cut(options: WalOptions, count: u64) {
    let original = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(original.path(), options.clone(), count);
    let segments = segment_paths(original.path());
    let last = segments.last().unwrap();
    let last_first: u64 = last.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let before_last = (last_first - 1) as usize;
    let ends = record_ends(&written[before_last..]);
    let full_len = std::fs::metadata(last).unwrap().len();
    assert_eq!(*ends.last().unwrap(), full_len);

    for cut in 0..=full_len {
        let copy = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        copy_dir(original.path(), copy.path());
        let victim = copy.path().join(last.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&victim)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let wal = Wal::open(copy.path(), options.clone()).unwrap();
        let survivors = before_last + ends.iter().filter(|end| **end <= cut).count();
        let recovered = read_all(&wal);
        assert_eq!(recovered, written[..survivors], "cut at {cut}");
        assert_eq!(wal.last_lsn().unwrap(), Lsn(survivors as u64));
        let report = wal.recovery_report();
        let clean = cut == full_len || ends.contains(&cut) || cut == frame::HEADER_LEN as u64;
        assert_eq!(report.cut.is_none(), clean, "cut at {cut}: {report:?}");

        let next = entry(survivors as u64 + 1);
        wal.append(next.clone()).unwrap();
        drop(wal);
        let wal = Wal::open(copy.path(), options.clone()).unwrap();
        assert!(wal.recovery_report().cut.is_none());
        let mut expected = written[..survivors].to_vec();
        expected.push(next);
        assert_eq!(read_all(&wal), expected, "append after cut at {cut}");
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
