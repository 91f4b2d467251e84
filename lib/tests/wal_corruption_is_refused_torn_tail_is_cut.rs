//! Damage that cannot be a torn write makes `open` fail with `Corruption` (and changes nothing);
//! garbage after the last good record of the last segment is cut as a torn tail; zeros there are
//! preallocated space and are kept.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use std::fs;
use std::path::Path;

use ddb::wal::{
    Entry, Lsn, SegmentVerdict, Wal, WalError, WalOptions, frame, inspect, read_entries,
};
use wal_common::{
    entry, logical_len, preallocating, read_all, segment_paths, small_segments, write_at, write_log,
};

fn collect(iter: impl Iterator<Item = Result<Entry, WalError>>) -> Vec<Entry> {
    iter.collect::<Result<Vec<_>, _>>().unwrap()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    segment_paths(dir)
        .into_iter()
        .map(|p| (p.clone(), fs::read(p).unwrap()))
        .collect()
}

/// Offset of the `index`-th record (0-based) in a segment.
fn record_offset(segment: &Path, index: usize) -> u64 {
    let bytes = fs::read(segment).unwrap();
    let mut offset = frame::HEADER_LEN;
    for _ in 0..index {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        offset += frame::FRAME_HEADER_LEN + len;
    }
    offset as u64
}

fn expect_corruption(dir: &Path, segment: &Path, offset: u64) {
    let before = snapshot(dir);
    match Wal::open(dir, small_segments(600)) {
        Err(WalError::Corruption {
            segment: s,
            offset: o,
            ..
        }) => {
            assert_eq!(s, segment);
            assert_eq!(o, offset);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(snapshot(dir), before, "open must not modify a corrupt log");
    let inspection = inspect(dir).unwrap();
    let bad = inspection.first_corruption().unwrap();
    assert_eq!(bad.path, segment);
    assert!(matches!(bad.verdict, SegmentVerdict::Corrupt { offset: o, .. } if o == offset));
    assert!(!inspection.is_recoverable());
}

#[test]
fn bit_flip_in_a_record_of_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(600), 25);
    let segments = segment_paths(dir.path());
    assert!(segments.len() >= 3);
    let victim = &segments[1];
    let offset = record_offset(victim, 2);
    flip_byte(victim, offset + 20);
    expect_corruption(dir.path(), victim, offset);
}

#[test]
fn bit_flip_in_a_sealed_segment_header_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(600), 25);
    let victim = &segment_paths(dir.path())[0];
    flip_byte(victim, 3);
    expect_corruption(dir.path(), victim, 0);
}

#[test]
fn truncated_sealed_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(600), 25);
    let victim = &segment_paths(dir.path())[0];
    let len = fs::metadata(victim).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    // The cut lands inside the segment's last record; the damage starts where that record does.
    let records = fs::read(victim).unwrap();
    let mut last_record = frame::HEADER_LEN;
    loop {
        let len = u32::from_le_bytes(records[last_record..last_record + 4].try_into().unwrap());
        let next = last_record + frame::FRAME_HEADER_LEN + len as usize;
        if next > records.len() {
            break;
        }
        last_record = next;
    }
    let last_record = last_record as u64;
    expect_corruption(dir.path(), victim, last_record);
}

#[test]
fn missing_segment_in_the_middle_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(600), 25);
    let segments = segment_paths(dir.path());
    fs::remove_file(&segments[1]).unwrap();
    expect_corruption(dir.path(), &segments[2], 0);
}

#[test]
fn bit_flip_mid_last_segment_with_good_records_after_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(64 * 1024), 12);
    let victim = segment_paths(dir.path()).pop().unwrap();
    let offset = record_offset(&victim, 5);
    flip_byte(&victim, offset + 12);
    expect_corruption(dir.path(), &victim, offset);
}

#[test]
fn damaged_length_mid_last_segment_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(64 * 1024), 12);
    let victim = segment_paths(dir.path()).pop().unwrap();
    let offset = record_offset(&victim, 4);
    flip_byte(&victim, offset + 3); // the length's high byte: an implausible length
    expect_corruption(dir.path(), &victim, offset);
}

/// Writes `garbage` in place right after the last good record of the last segment (over its
/// preallocated zeros, if any, as a torn write would) and checks that recovery cuts everything
/// from there to the end of the file.
fn check_garbage_tail_is_cut(options: WalOptions, garbage: &[u8]) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let written = write_log(dir.path(), options.clone(), 20);
    let victim = segment_paths(dir.path()).pop().unwrap();
    let good_len = logical_len(&victim);
    write_at(&victim, good_len, garbage);
    let file_len = fs::metadata(&victim).unwrap().len();
    assert!(file_len >= good_len + garbage.len() as u64);

    let inspection = inspect(dir.path()).unwrap();
    assert_eq!(
        inspection.segments.last().unwrap().verdict,
        SegmentVerdict::TornTail {
            offset: good_len,
            bytes: file_len - good_len
        }
    );
    assert_eq!(inspection.segments.last().unwrap().preallocated_bytes, 0);
    assert!(inspection.is_recoverable());
    assert_eq!(
        fs::metadata(&victim).unwrap().len(),
        file_len,
        "inspect is read-only"
    );
    assert_eq!(
        collect(read_entries(dir.path(), Lsn(1)).unwrap()),
        written,
        "a tail reader ends at the torn record"
    );

    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    let cut = wal.recovery_report().cut.clone().unwrap();
    assert_eq!(
        (cut.segment, cut.offset, cut.bytes),
        (victim.clone(), good_len, file_len - good_len)
    );
    assert_eq!(fs::metadata(&victim).unwrap().len(), good_len);
    assert_eq!(read_all(&wal), written);
    wal.append(entry(21)).unwrap();
    assert_eq!(wal.last_lsn().unwrap(), Lsn(21));
    drop(wal);
    let wal = Wal::open(dir.path(), options).unwrap();
    assert!(wal.recovery_report().cut.is_none());
    assert_eq!(read_all(&wal).len(), 21);
}

/// A fixed xorshift stream: reproducible "random" bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn random_tail_after_the_last_good_record_is_cut() {
    check_garbage_tail_is_cut(preallocating(small_segments(600), 0), &random_bytes(3000));
}

#[test]
fn random_bytes_written_into_the_zeroed_region_are_a_torn_tail() {
    let options = preallocating(small_segments(64 * 1024), 1024 * 1024);
    check_garbage_tail_is_cut(options, &random_bytes(3000));
}

#[test]
fn a_torn_record_followed_by_zeros_is_cut() {
    let mut record = Vec::new();
    frame::encode_frame(&entry(21), &mut record).unwrap();
    let half = &record[..record.len() / 2];
    check_garbage_tail_is_cut(WalOptions::default(), half);
    check_garbage_tail_is_cut(small_segments(64 * 1024), half);
}

#[test]
fn a_zeroed_tail_is_preallocated_space_kept_by_recovery() {
    for options in [
        // The writer left the zeros there itself.
        small_segments(64 * 1024),
        WalOptions::default(),
        // Zeros after a log written without preallocation mean the same.
        preallocating(WalOptions::default(), 0),
    ] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let written = write_log(dir.path(), options.clone(), 20);
        let victim = segment_paths(dir.path()).pop().unwrap();
        let good_len = logical_len(&victim);
        if options.preallocate_bytes == 0 {
            assert_eq!(fs::metadata(&victim).unwrap().len(), good_len);
            write_at(&victim, good_len, &[0; 4096]);
        }
        let file_len = fs::metadata(&victim).unwrap().len();
        assert!(file_len > good_len, "{options:?}");

        let inspection = inspect(dir.path()).unwrap();
        let last = inspection.segments.last().unwrap();
        assert_eq!(last.verdict, SegmentVerdict::Ok);
        assert_eq!(
            (last.bytes, last.preallocated_bytes),
            (file_len, file_len - good_len)
        );
        assert!(inspection.to_string().contains("preallocated"));
        assert_eq!(collect(read_entries(dir.path(), Lsn(1)).unwrap()), written);

        let wal = Wal::open(dir.path(), options.clone()).unwrap();
        let report = wal.recovery_report().clone();
        assert_eq!(report.cut, None);
        assert_eq!(report.preallocated_bytes, file_len - good_len);
        assert_eq!(fs::metadata(&victim).unwrap().len(), file_len, "kept");
        assert_eq!(read_all(&wal), written);
        // The next record goes where the last one ended, over the zeros.
        wal.append(entry(21)).unwrap();
        drop(wal);
        let wal = Wal::open(dir.path(), options.clone()).unwrap();
        assert_eq!(wal.recovery_report().cut, None);
        assert_eq!(read_all(&wal).len(), 21);
        assert!(logical_len(&victim) > good_len);
        assert_eq!(fs::metadata(&victim).unwrap().len(), file_len);
    }
}

#[test]
fn a_damaged_record_followed_by_a_valid_one_inside_the_zeroed_region_is_corruption() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), WalOptions::default(), 12);
    let victim = segment_paths(dir.path()).pop().unwrap();
    let good_len = logical_len(&victim);
    // LSN 13, durable once, found beyond the zeros' start; then LSN 12 is damaged.
    let mut record = Vec::new();
    frame::encode_frame(&entry(13), &mut record).unwrap();
    write_at(&victim, good_len + 64, &record);
    let offset = record_offset(&victim, 11);
    flip_byte(&victim, offset + 12);
    expect_corruption(dir.path(), &victim, offset);
}

#[test]
fn inspect_reports_every_segment_of_a_healthy_log() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    write_log(dir.path(), small_segments(600), 25);
    let inspection = inspect(dir.path()).unwrap();
    assert!(inspection.segments.len() >= 3);
    assert!(
        inspection
            .segments
            .iter()
            .all(|s| s.verdict == SegmentVerdict::Ok)
    );
    assert_eq!(inspection.total_entries, 25);
    assert_eq!(
        (inspection.first_lsn, inspection.last_lsn),
        (Some(Lsn(1)), Some(Lsn(25)))
    );
    for pair in inspection.segments.windows(2) {
        assert_eq!(pair[0].last_lsn.next(), pair[1].first_lsn);
    }
    let printed = inspection.to_string();
    assert!(printed.contains("00000000000000000001.wal"), "{printed}");
}
