//! A segment that holds a header but no record yet (a log just created, a crash right after
//! rotation) ends `read_entries` instead of making it reopen the same segment forever; found by
//! the `wal_segment` fuzz target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod wal_common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use ddb::wal::frame::encode_header;
use ddb::wal::{Entry, Lsn, Wal, WalOptions, read_entries};

/// The entries `read_entries(dir, from)` yields until it ends, failing the test instead of
/// hanging if it never does.
fn read_all(dir: &Path, from: Lsn) -> Vec<Entry> {
    let dir = dir.to_path_buf();
    let (done, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let entries: Result<Vec<Entry>, _> = read_entries(&dir, from).unwrap().collect();
        let _ = done.send(entries.unwrap());
    });
    answer
        .recv_timeout(Duration::from_secs(10))
        .expect("read_entries ends within 10 s")
}

#[test]
fn a_new_empty_log_reads_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(read_all(dir.path(), Lsn(1)), Vec::<Entry>::new());
}

#[test]
fn an_empty_newest_segment_ends_the_entries_of_the_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        // No preallocated zeros: a real rotation cuts them before creating the next segment,
        // and this test creates that segment by hand.
        let options = WalOptions {
            preallocate_bytes: 0,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir.path(), options).unwrap();
        wal.append_batch((1..=3).map(wal_common::entry).collect())
            .unwrap();
    }
    // What a writer that crashed after creating the next segment leaves behind.
    std::fs::write(
        dir.path().join("00000000000000000004.wal"),
        encode_header(Lsn(4)),
    )
    .unwrap();
    let lsns: Vec<u64> = read_all(dir.path(), Lsn(1))
        .iter()
        .map(|e| e.lsn.0)
        .collect();
    assert_eq!(lsns, [1, 2, 3]);
}

#[test]
fn a_torn_first_record_of_the_newest_segment_is_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut segment = encode_header(Lsn(1)).to_vec();
    segment.extend_from_slice(&[40, 0, 0, 0, 1, 2]);
    std::fs::write(dir.path().join("00000000000000000001.wal"), segment).unwrap();
    assert_eq!(read_all(dir.path(), Lsn(1)), Vec::<Entry>::new());
}
