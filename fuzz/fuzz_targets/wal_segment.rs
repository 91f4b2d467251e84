//! Arbitrary bytes as the only segment file of a WAL directory: `inspect`, `read_entries` and
//! `Wal::open` (recovery) answer with a report or an error, never a panic or a hang.
//!
//! Input: with the first byte even, the rest is the segment file as is. With it odd, the rest
//! is a list of records, each a length byte and that many body bytes, written after a valid
//! header with valid frame checksums: so mutations get past the checksums to entry decoding,
//! LSN checks and recovery.

#![no_main]

use ddb::wal::frame::{encode_header, masked_crc};
use ddb::wal::{Lsn, Wal, WalOptions, inspect, read_entries};
use libfuzzer_sys::fuzz_target;

/// The name `segment_file_name(Lsn(1))` gives the first segment of a log.
const SEGMENT_NAME: &str = "00000000000000000001.wal";

fn with_valid_checksums(records: &[u8]) -> Vec<u8> {
    let mut segment = encode_header(Lsn(1)).to_vec();
    let mut rest = records;
    while let Some((&len, tail)) = rest.split_first() {
        let (body, after) = tail.split_at(usize::from(len).min(tail.len()));
        segment.extend_from_slice(&(body.len() as u32).to_le_bytes());
        segment.extend_from_slice(&masked_crc(body).to_le_bytes());
        segment.extend_from_slice(body);
        rest = after;
    }
    segment
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let segment = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        with_valid_checksums(rest)
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join(SEGMENT_NAME), &segment).is_err() {
        return;
    }
    let _ = inspect(dir.path());
    if let Ok(entries) = read_entries(dir.path(), Lsn(1)) {
        // Every record takes bytes and the iterator stops after its first error, so it cannot
        // yield more items than there are bytes; the bound turns an endless iterator into a crash.
        let yielded = entries.take(segment.len() + 2).count();
        assert!(yielded <= segment.len() + 1, "read_entries does not end");
    }
    // Recovery may cut a torn tail, so it runs last, on what the readers saw.
    if let Ok(wal) = Wal::open(dir.path(), WalOptions::default()) {
        let _ = wal.last_lsn();
    }
});
