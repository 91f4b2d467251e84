//! Helpers shared by the library's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ddb::wal::{Ballot, Entry, Lsn, Operation};

/// A put entry at `lsn`.
pub fn put(lsn: u64, key: &[u8], item: &[u8]) -> Entry {
    entry(
        lsn,
        Operation::Put {
            key: key.to_vec(),
            item: item.to_vec(),
        },
    )
}

/// A delete entry at `lsn`.
pub fn delete(lsn: u64, key: &[u8]) -> Entry {
    entry(lsn, Operation::Delete { key: key.to_vec() })
}

/// An entry at `lsn` with `op`, under a fixed ballot and a timestamp derived from the LSN.
pub fn entry(lsn: u64, op: Operation) -> Entry {
    Entry {
        lsn: Lsn(lsn),
        ballot: Ballot { round: 1, node: 1 },
        timestamp_ms: 1_800_000_000_000 + lsn,
        op,
    }
}
