//! Segment rotation, reading across segment boundaries, retention, truncation and the append
//! contract (dense LSNs, one writer per directory).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use std::fs;

use ddb::wal::{Lsn, Wal, WalError, WalOptions, frame, inspect, read_entries};
use wal_common::{
    entry, logical_len, preallocating, read_all, segment_paths, small_segments, write_log,
};

fn collect(iter: impl Iterator<Item = Result<ddb::wal::Entry, WalError>>) -> Vec<ddb::wal::Entry> {
    iter.collect::<Result<Vec<_>, _>>().unwrap()
}

#[test]
fn segments_rotate_past_the_size_limit_and_are_named_by_first_lsn() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(500), 40);
    let inspection = inspect(dir.path()).unwrap();
    assert!(inspection.segments.len() >= 4, "{inspection}");
    for s in &inspection.segments {
        assert_eq!(s.file_name, format!("{:020}.wal", s.first_lsn.0));
    }
    // Every sealed segment reached the limit; appends stopped going to it right after, and it
    // was cut to its last record (recovery requires that of sealed segments).
    for s in &inspection.segments[..inspection.segments.len() - 1] {
        assert_eq!(s.preallocated_bytes, 0, "{inspection}");
        assert!(s.bytes >= 500, "{inspection}");
        assert!(
            s.bytes < 500 + 300,
            "a sealed segment overshoots by at most one record: {inspection}"
        );
    }
}

#[test]
fn read_from_every_lsn_crosses_segment_boundaries() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), small_segments(400), 30);
    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    for from in 1..=31u64 {
        let got = collect(wal.read_from(Lsn(from)).unwrap());
        assert_eq!(got, written[from as usize - 1..], "read_from({from})");
        let got = collect(read_entries(dir.path(), Lsn(from)).unwrap());
        assert_eq!(got, written[from as usize - 1..], "read_entries({from})");
    }
    assert_eq!(collect(wal.read_from(Lsn(99)).unwrap()), vec![]);
}

#[test]
fn read_entries_tolerates_a_torn_tail_but_reports_it_through_inspect() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), small_segments(400), 20);
    let last = segment_paths(dir.path()).pop().unwrap();
    let len = logical_len(&last);
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert_eq!(
        collect(read_entries(dir.path(), Lsn(1)).unwrap()),
        written[..19]
    );
    assert!(inspect(dir.path()).unwrap().is_recoverable());
    assert_eq!(
        collect(read_entries(tempfile::tempdir().unwrap().path(), Lsn(1)).unwrap()),
        vec![]
    );
}

#[test]
fn delete_below_removes_only_sealed_segments_wholly_at_or_below_the_watermark() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), small_segments(400), 30);
    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    let before = inspect(dir.path()).unwrap().segments;
    assert!(before.len() >= 4);

    // One LSN short of the first segment's end: nothing goes.
    assert_eq!(wal.delete_below(Lsn(before[0].last_lsn.0 - 1)).unwrap(), 0);
    assert_eq!(wal.delete_below(before[1].last_lsn).unwrap(), 2);
    assert_eq!(wal.first_lsn().unwrap(), before[2].first_lsn);
    assert_eq!(segment_paths(dir.path()).len(), before.len() - 2);
    match wal.read_from(Lsn(1)) {
        Err(WalError::BelowRetained { requested, first }) => {
            assert_eq!((requested, first), (Lsn(1), before[2].first_lsn));
        }
        other => panic!("expected BelowRetained, got {:?}", other.map(|_| ())),
    }
    let from = before[2].first_lsn;
    assert_eq!(
        collect(wal.read_from(from).unwrap()),
        written[from.0 as usize - 1..]
    );

    // Even a watermark past the end keeps the active segment.
    let deleted = wal.delete_below(Lsn(1000)).unwrap();
    assert_eq!(deleted, before.len() - 3);
    assert_eq!(segment_paths(dir.path()).len(), 1);
    wal.append(entry(31)).unwrap();
    drop(wal);

    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    assert_eq!(wal.first_lsn().unwrap(), before.last().unwrap().first_lsn);
    assert_eq!(wal.last_lsn().unwrap(), Lsn(31));
}

#[test]
fn truncate_after_drops_the_suffix_durably_and_appends_continue() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), small_segments(400), 30);
    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    let segments = inspect(dir.path()).unwrap().segments;

    // Cut inside an older segment: later segments disappear.
    let keep = segments[1].first_lsn.0 + 1;
    wal.truncate_after(Lsn(keep)).unwrap();
    assert_eq!(wal.last_lsn().unwrap(), Lsn(keep));
    assert_eq!(read_all(&wal), written[..keep as usize]);
    assert_eq!(segment_paths(dir.path()).len(), 2);
    assert!(matches!(
        wal.append(entry(keep + 5)),
        Err(WalError::NonContiguous { expected, got }) if expected == Lsn(keep + 1) && got == Lsn(keep + 5)
    ));
    // The replacement suffix differs from what was there.
    let mut replacement = entry(keep + 1);
    replacement.ballot.round += 100;
    wal.append(replacement.clone()).unwrap();
    drop(wal);

    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    assert!(wal.recovery_report().cut.is_none());
    let mut expected = written[..keep as usize].to_vec();
    expected.push(replacement);
    assert_eq!(read_all(&wal), expected);

    // Cut exactly at a segment boundary, then everything.
    wal.truncate_after(Lsn(segments[1].first_lsn.0 - 1))
        .unwrap();
    assert_eq!(
        read_all(&wal),
        written[..segments[1].first_lsn.0 as usize - 1]
    );
    wal.truncate_after(Lsn(0)).unwrap();
    assert_eq!(wal.last_lsn().unwrap(), Lsn(0));
    assert_eq!(read_all(&wal), vec![]);
    wal.append(entry(1)).unwrap();
    // At or above the end, truncation changes nothing.
    wal.truncate_after(Lsn(7)).unwrap();
    assert_eq!(read_all(&wal), vec![entry(1)]);
}

#[test]
fn the_active_segment_keeps_zeros_ahead_of_its_records_and_inspect_reports_them() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), WalOptions::default(), 5);
    let inspection = inspect(dir.path()).unwrap();
    let s = &inspection.segments[0];
    let first_record = (frame::FRAME_HEADER_LEN + written[0].encoded_len()) as u64;
    // The first batch extended the file by 1 MiB past its end; the next ones fit in the zeros.
    assert_eq!(
        s.bytes,
        frame::HEADER_LEN as u64 + first_record + 1024 * 1024
    );
    assert_eq!(
        s.bytes - s.preallocated_bytes,
        logical_len(&segment_paths(dir.path())[0])
    );
    let records: u64 = written
        .iter()
        .map(|e| (frame::FRAME_HEADER_LEN + e.encoded_len()) as u64)
        .sum();
    assert_eq!(
        s.preallocated_bytes,
        s.bytes - frame::HEADER_LEN as u64 - records
    );
    assert_eq!(s.verdict, ddb::wal::SegmentVerdict::Ok);
    assert!(
        inspection
            .to_string()
            .contains(&format!("({} preallocated)", s.preallocated_bytes))
    );

    // Without preallocation, the file ends at its last record.
    let plain = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(plain.path(), preallocating(WalOptions::default(), 0), 5);
    let s = &inspect(plain.path()).unwrap().segments[0];
    assert_eq!(s.preallocated_bytes, 0);
    assert_eq!(s.bytes, frame::HEADER_LEN as u64 + records);
}

#[test]
fn truncate_after_cuts_the_zeros_too_and_the_next_append_recreates_them() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let options = WalOptions::default();
    let written = write_log(dir.path(), options.clone(), 10);
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    let segment = segment_paths(dir.path()).pop().unwrap();
    wal.truncate_after(Lsn(6)).unwrap();
    let cut_len = fs::metadata(&segment).unwrap().len();
    assert_eq!(cut_len, logical_len(&segment));
    assert_eq!(
        inspect(dir.path()).unwrap().segments[0].preallocated_bytes,
        0
    );

    let mut replacement = entry(7);
    replacement.ballot.round += 100;
    wal.append(replacement.clone()).unwrap();
    let s = &inspect(dir.path()).unwrap().segments[0];
    assert!(s.preallocated_bytes >= 1024 * 1024, "{s:?}");
    assert!(s.bytes - s.preallocated_bytes > cut_len);
    drop(wal);

    let wal = Wal::open(dir.path(), options).unwrap();
    assert!(wal.recovery_report().cut.is_none());
    let mut expected = written[..6].to_vec();
    expected.push(replacement);
    assert_eq!(read_all(&wal), expected);
}

#[test]
fn truncate_after_below_the_retained_range_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(400), 30);
    let wal = Wal::open(dir.path(), small_segments(400)).unwrap();
    wal.delete_below(Lsn(20)).unwrap();
    let first = wal.first_lsn().unwrap();
    assert!(first > Lsn(2));
    assert!(matches!(
        wal.truncate_after(Lsn(1)),
        Err(WalError::BelowRetained { .. })
    ));
    wal.truncate_after(Lsn(first.0 - 1)).unwrap();
    assert_eq!(read_all(&wal), vec![]);
    wal.append(entry(first.0)).unwrap();
    assert_eq!(read_all(&wal), vec![entry(first.0)]);
}

#[test]
fn appends_must_be_dense() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(matches!(
        wal.append(entry(2)),
        Err(WalError::NonContiguous {
            expected: Lsn(1),
            got: Lsn(2)
        })
    ));
    wal.append(entry(1)).unwrap();
    assert!(matches!(
        wal.append(entry(1)),
        Err(WalError::NonContiguous {
            expected: Lsn(2),
            got: Lsn(1)
        })
    ));
    // A batch with a hole is refused whole.
    assert!(matches!(
        wal.append_batch(vec![entry(2), entry(4)]),
        Err(WalError::NonContiguous {
            expected: Lsn(3),
            got: Lsn(4)
        })
    ));
    assert_eq!(wal.last_lsn().unwrap(), Lsn(1));
    wal.append_batch(vec![entry(2), entry(3)]).unwrap();
    wal.append_batch(vec![]).unwrap();
    let lsn = wal
        .append_next(ddb::wal::Ballot::default(), 5, ddb::wal::Operation::Noop)
        .unwrap();
    assert_eq!(lsn, Lsn(4));
    assert_eq!(read_all(&wal).len(), 4);
}

#[test]
fn a_new_log_can_start_mid_way() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let options = WalOptions {
        start_lsn: Lsn(500),
        ..WalOptions::default()
    };
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    assert!(wal.recovery_report().created);
    assert_eq!(
        (wal.first_lsn().unwrap(), wal.last_lsn().unwrap()),
        (Lsn(500), Lsn(499))
    );
    assert!(matches!(
        wal.append(entry(1)),
        Err(WalError::NonContiguous { .. })
    ));
    drop(wal);
    // The empty segment remembers where the log starts.
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.append(entry(500)).unwrap();
    assert_eq!(read_all(&wal), vec![entry(500)]);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::Locked { .. })
    ));
    drop(wal);
    Wal::open(dir.path(), WalOptions::default()).unwrap();
}

#[test]
fn wal_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Wal>();
}
