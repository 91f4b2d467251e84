//! `Wal::read_from` positions itself through the writer's sparse LSN → offset index: it returns
//! exactly the entries from the LSN asked for — after appends, rotation, truncation, retention
//! and recovery — and it does not read the part of the segment before the nearest index point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use ddb::wal::segment::{SegmentFile, record_offset};
use ddb::wal::{Entry, Lsn, Wal, WalError, WalOptions};
use wal_common::{entry, segment_paths, write_at};

fn collect(iter: impl Iterator<Item = Result<Entry, WalError>>) -> Vec<Entry> {
    iter.collect::<Result<Vec<_>, _>>().unwrap()
}

/// Small segments, an index point at every batch, batches of one to five entries.
fn options() -> WalOptions {
    WalOptions {
        segment_max_bytes: 2_000,
        index_every_bytes: 1,
        ..WalOptions::default()
    }
}

fn append_batches(wal: &Wal, from: u64, through: u64) {
    let mut lsn = from;
    while lsn <= through {
        let last = (lsn + lsn % 5).min(through);
        wal.append_batch((lsn..=last).map(entry).collect()).unwrap();
        lsn = last + 1;
    }
}

/// Reads from every retained LSN (and one past the end) and checks each against `expected`,
/// the entries from the first retained LSN on.
fn check_every_start(wal: &Wal, expected: &[Entry]) {
    let first = wal.first_lsn().unwrap().0;
    for from in first..=first + expected.len() as u64 {
        let got = collect(wal.read_from(Lsn(from)).unwrap());
        assert_eq!(
            got,
            expected[(from - first) as usize..],
            "read_from({from})"
        );
    }
}

#[test]
fn read_from_every_lsn_is_exact_through_rotation_truncation_retention_and_reopen() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    append_batches(&wal, 1, 120);
    assert!(segment_paths(dir.path()).len() >= 4, "segments rotated");
    let mut expected: Vec<Entry> = (1..=120).map(entry).collect();
    check_every_start(&wal, &expected);

    // A cut in the middle of a batch, then new entries (with new contents) after it.
    wal.truncate_after(Lsn(97)).unwrap();
    expected.truncate(97);
    check_every_start(&wal, &expected);
    append_batches(&wal, 98, 150);
    expected.extend((98..=150).map(entry));
    check_every_start(&wal, &expected);

    // Retention drops whole sealed segments.
    let deleted = wal.delete_below(Lsn(60)).unwrap();
    assert!(deleted > 0);
    let first = wal.first_lsn().unwrap();
    expected.drain(..(first.0 - 1) as usize);
    check_every_start(&wal, &expected);

    // Recovery rebuilds the index from the segments.
    drop(wal);
    let wal = Wal::open(dir.path(), options()).unwrap();
    check_every_start(&wal, &expected);
    append_batches(&wal, 151, 170);
    expected.extend((151..=170).map(entry));
    check_every_start(&wal, &expected);
}

#[test]
fn read_from_starts_at_the_nearest_index_point_not_at_the_segment_start() {
    // One segment, an index point at every batch. Damage a record near the start of the
    // segment while the log is open: a read from a later LSN must not touch it (it seeks past
    // it), while a read that has to cross it reports corruption.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let options = WalOptions {
        index_every_bytes: 1,
        ..WalOptions::default()
    };
    let wal = Wal::open(dir.path(), options).unwrap();
    append_batches(&wal, 1, 400);
    let segments = segment_paths(dir.path());
    assert_eq!(segments.len(), 1);
    let segment = SegmentFile {
        first_lsn: Lsn(1),
        path: segments[0].clone(),
    };
    let damaged = record_offset(&segment, Lsn(3)).unwrap();
    write_at(&segment.path, damaged + 9, &[0xff; 4]);

    let from_late = collect(wal.read_from(Lsn(300)).unwrap());
    assert_eq!(from_late, (300..=400).map(entry).collect::<Vec<_>>());
    let across = wal
        .read_from(Lsn(1))
        .unwrap()
        .collect::<Result<Vec<_>, _>>();
    assert!(
        matches!(across, Err(WalError::Corruption { offset, .. }) if offset == damaged),
        "{across:?}"
    );
}

#[test]
fn default_spacing_reads_from_any_lsn_of_a_large_segment() {
    // ~400 KiB of records in one segment with the default spacing (64 KiB): reads start at an
    // index point and read forward to the LSN asked for.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let count = 4_000u64;
    for chunk in (1..=count).collect::<Vec<_>>().chunks(100) {
        wal.append_batch(chunk.iter().map(|lsn| entry(*lsn)).collect())
            .unwrap();
    }
    for from in [1, 2, 99, 100, 101, 1_234, 2_999, 3_001, count, count + 1] {
        let got = collect(wal.read_from(Lsn(from)).unwrap());
        assert_eq!(
            got.first().map(|e| e.lsn),
            (from <= count).then_some(Lsn(from))
        );
        assert_eq!(got.len() as u64, count + 1 - from, "read_from({from})");
        assert_eq!(
            got.last().map(|e| e.lsn),
            (from <= count).then_some(Lsn(count))
        );
    }
}
