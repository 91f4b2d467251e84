//! The archive chunk format, version 1, pinned by a committed object: a chunk written by this
//! version must stay readable by every later one (`docs/formats.md`, "Archive WAL chunk").
//!
//! The golden object's body is zstd output, which another zstd version may compress
//! differently; decoding is what the format promises, so the test decodes the committed bytes and
//! checks every field, and checks that what this build encodes decodes to the same.
//! `DDB_WRITE_GOLDEN=1 cargo test -p ddb --test archive_chunk_golden` rewrites the object (only
//! for a new format version).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ddb::archive::{decode_chunk, encode_chunk};
use ddb::digest::StateDigest;
use ddb::wal::{Ballot, Entry, Lsn, Operation};

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/archive_chunk_v1.ddbwal.zst"
);

fn entries() -> Vec<Entry> {
    let ballot = Ballot { round: 3, node: 2 };
    vec![
        Entry {
            lsn: Lsn(41),
            ballot,
            timestamp_ms: 1_764_460_800_000,
            op: Operation::Put {
                key: b"\x00\x00\x00\x00\x00\x00\x00\x07orders/ann".to_vec(),
                item: b"canonical item bytes".to_vec(),
            },
        },
        Entry {
            lsn: Lsn(42),
            ballot,
            timestamp_ms: 1_764_460_800_001,
            op: Operation::Delete {
                key: b"\x00\x00\x00\x00\x00\x00\x00\x07orders/bob".to_vec(),
            },
        },
        Entry {
            lsn: Lsn(43),
            ballot,
            timestamp_ms: 1_764_460_800_002,
            op: Operation::Noop,
        },
    ]
}

fn digest() -> StateDigest {
    let mut digest = StateDigest::empty();
    digest.insert_item(
        b"\x00\x00\x00\x00\x00\x00\x00\x07orders/ann",
        b"canonical item bytes",
    );
    digest
}

#[test]
fn the_committed_version_1_chunk_decodes_to_its_entries_and_digest() {
    if std::env::var_os("DDB_WRITE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, encode_chunk(&entries(), &digest()).unwrap()).unwrap();
    }
    let golden = std::fs::read(GOLDEN).unwrap();
    let chunk = decode_chunk(&golden).unwrap();
    assert_eq!(chunk.entries, entries());
    assert_eq!(chunk.digest, digest());
    assert_eq!((chunk.first_lsn(), chunk.last_lsn()), (Lsn(41), Lsn(43)));
    // The footer (fixed fields up to the digest) is independent of the compressor.
    assert_eq!(&golden[golden.len() - 2124..][..8], b"DDBWALCK");

    let fresh = encode_chunk(&entries(), &digest()).unwrap();
    let again = decode_chunk(&fresh).unwrap();
    assert_eq!(again.entries, chunk.entries);
    assert_eq!(again.digest, chunk.digest);
}
