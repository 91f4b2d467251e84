//! The archive snapshot format, version 1, pinned by a committed object: a snapshot written by
//! this version must stay readable by every later one (`docs/formats.md`, "Archive snapshot").
//!
//! As for the chunk golden object, the body is zstd output that another zstd version may
//! compress differently, so the test decodes the committed bytes and checks every field, and
//! checks that what this build encodes decodes to the same.
//! `DDB_WRITE_GOLDEN=1 cargo test -p ddb --test archive_snapshot_golden` rewrites the object
//! (only for a new format version).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ddb::archive::{SNAPSHOT_FOOTER_LEN, SnapshotWriter, decode_snapshot};
use ddb::digest::digest_of_items;
use ddb::wal::Lsn;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/archive_snapshot_v1.ddbsnap.zst"
);

fn items() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (
            b"\x00\x00\x00\x00\x00\x00\x00\x07orders/ann".to_vec(),
            b"canonical item bytes".to_vec(),
        ),
        (
            b"\x00\x00\x00\x00\x00\x00\x00\x07orders/bob".to_vec(),
            Vec::new(),
        ),
        (
            b"\x00\x00\x00\x00\x00\x00\x00\x08".to_vec(),
            vec![0xff; 300],
        ),
    ]
}

fn encode() -> Vec<u8> {
    let mut writer = SnapshotWriter::new();
    for (key, item) in items() {
        writer.push(&key, &item).unwrap();
    }
    writer.finish(Lsn(43), 1_764_460_800_002).unwrap().0
}

#[test]
fn the_committed_version_1_snapshot_decodes_to_its_items_lsn_time_and_digest() {
    if std::env::var_os("DDB_WRITE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, encode()).unwrap();
    }
    let golden = std::fs::read(GOLDEN).unwrap();
    let snapshot = decode_snapshot(&golden).unwrap();
    assert_eq!(snapshot.items, items());
    assert_eq!(snapshot.lsn, Lsn(43));
    assert_eq!(snapshot.timestamp_ms, 1_764_460_800_002);
    assert_eq!(
        snapshot.digest,
        digest_of_items(items().iter().map(|(key, item)| (key, item)))
    );
    let footer = &golden[golden.len() - SNAPSHOT_FOOTER_LEN..];
    assert_eq!(&footer[..8], b"DDBSNAPF");
    assert_eq!(footer[8..12], 1u32.to_le_bytes());
    assert_eq!(footer[12..20], 3u64.to_le_bytes(), "item count");

    let again = decode_snapshot(&encode()).unwrap();
    assert_eq!(again, snapshot);
}
