//! Arbitrary bytes as the only segment file of a WAL directory: `inspect`, `read_entries` and
//! `Wal::open` (recovery) answer with a report or an error, never a panic or a hang.

#![no_main]

use ddb::wal::{Lsn, Wal, WalOptions, inspect, read_entries};
use libfuzzer_sys::fuzz_target;

/// The name `segment_file_name(Lsn(1))` gives the first segment of a log.
const SEGMENT_NAME: &str = "00000000000000000001.wal";

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join(SEGMENT_NAME), data).is_err() {
        return;
    }
    let _ = inspect(dir.path());
    if let Ok(entries) = read_entries(dir.path(), Lsn(1)) {
        // Every record takes bytes and the iterator stops after its first error, so it cannot
        // yield more items than there are bytes; the bound turns an endless iterator into a crash.
        let yielded = entries.take(data.len() + 2).count();
        assert!(yielded <= data.len() + 1, "read_entries does not end");
    }
    // Recovery may cut a torn tail, so it runs last, on what the readers saw.
    if let Ok(wal) = Wal::open(dir.path(), WalOptions::default()) {
        let _ = wal.last_lsn();
    }
});
