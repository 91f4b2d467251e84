//! Helpers shared by the WAL integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use ddb::wal::{Ballot, Entry, Lsn, Operation, Wal, WalOptions};

/// An entry whose size varies with its LSN (37 to ~200 bytes of body), covering every operation.
pub fn entry(lsn: u64) -> Entry {
    let op = match lsn % 7 {
        0 => Operation::Noop,
        1 => Operation::Delete {
            key: format!("key-{lsn}").into_bytes(),
        },
        2 => Operation::Config(vec![lsn as u8; (lsn % 13) as usize]),
        _ => Operation::Put {
            key: format!("key-{lsn}").into_bytes(),
            item: vec![(lsn % 251) as u8; ((lsn * 37) % 160) as usize],
        },
    };
    Entry {
        lsn: Lsn(lsn),
        ballot: Ballot {
            round: 1 + lsn / 10,
            node: (lsn % 3) as u32,
        },
        timestamp_ms: 1_790_000_000_000 + lsn,
        op,
    }
}

/// Options with tiny segments so tests rotate often.
pub fn small_segments(segment_max_bytes: u64) -> WalOptions {
    WalOptions {
        segment_max_bytes,
        ..WalOptions::default()
    }
}

/// Every durable entry, from the oldest retained one.
pub fn read_all(wal: &Wal) -> Vec<Entry> {
    wal.read_from(wal.first_lsn().unwrap())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Copies the segment files of `src` into `dst` (created), leaving out the lock file.
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for item in fs::read_dir(src).unwrap() {
        let item = item.unwrap();
        let name = item.file_name();
        if name.to_string_lossy().ends_with(".wal") {
            fs::copy(item.path(), dst.join(name)).unwrap();
        }
    }
}

/// Segment files of `dir`, oldest first.
pub fn segment_paths(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|i| i.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

/// Writes entries `1..=count` one append at a time and returns them.
pub fn write_log(dir: &Path, options: WalOptions, count: u64) -> Vec<Entry> {
    let wal = Wal::open(dir, options).unwrap();
    let entries: Vec<Entry> = (1..=count).map(entry).collect();
    for e in &entries {
        wal.append(e.clone()).unwrap();
    }
    entries
}

/// `options` with `preallocate_bytes` set.
pub fn preallocating(options: WalOptions, preallocate_bytes: u64) -> WalOptions {
    WalOptions {
        preallocate_bytes,
        ..options
    }
}

/// The logical length of a segment file: where its last good record ends, before any
/// preallocated zeros.
pub fn logical_len(segment: &Path) -> u64 {
    let dir = segment.parent().unwrap();
    let inspection = ddb::wal::inspect(dir).unwrap();
    let s = inspection
        .segments
        .iter()
        .find(|s| s.path == segment)
        .unwrap();
    s.bytes - s.preallocated_bytes
}

/// Writes `bytes` into `path` at `offset`, in place (extending the file if needed).
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}
