//! `ddbctl archive ls` and `archive verify` on a real `file://` archive: a sound archive lists
//! its partitions and verifies (exit 0); a chunk changed on disk or a chunk deleted is named
//! (exit 1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use ddb::archive::{ArchiveUrl, WalChunkName, encode_chunk, upload_chunk};
use ddb::digest::StateDigest;
use ddb::wal::{Ballot, Entry, Lsn, Operation};

fn entries(first: u64, last: u64) -> Vec<Entry> {
    (first..=last)
        .map(|lsn| Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round: 1, node: 1 },
            timestamp_ms: 1_764_460_800_000 + lsn,
            op: Operation::Put {
                key: format!("key{lsn}").into_bytes(),
                item: vec![lsn as u8; 32],
            },
        })
        .collect()
}

/// An archive with table 7's partitions 2 (LSNs 1..=9 in three chunks) and 3 (1..=2).
fn build_archive(root: &std::path::Path) -> String {
    let url = format!("file://{}", root.display());
    let archive = ArchiveUrl::parse(&url)
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (partition, first, last) in [(2, 1, 3), (2, 4, 6), (2, 7, 9), (3, 1, 2)] {
        let name = WalChunkName {
            table_id: 7,
            partition_id: partition,
            first: Lsn(first),
            last: Lsn(last),
        };
        let bytes = encode_chunk(&entries(first, last), &StateDigest::empty()).unwrap();
        runtime
            .block_on(upload_chunk(&archive, &name, bytes::Bytes::from(bytes)))
            .unwrap();
    }
    url
}

fn ddbctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ddbctl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn verify_passes_a_sound_archive_and_names_a_corrupt_or_missing_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let url = build_archive(dir.path());

    let listing = ddbctl(&["archive", "ls", "--archive", &url]);
    assert!(listing.status.success());
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains("1..=9") && text.contains("1..=2"), "{text}");

    let sound = ddbctl(&["archive", "verify", "--archive", &url]);
    assert_eq!(sound.status.code(), Some(0), "{sound:?}");

    let middle = "00000000000000000004-00000000000000000006.ddbwal.zst";
    let path = dir.path().join("v1/tables/7/partitions/2/wal").join(middle);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let corrupt = ddbctl(&["archive", "verify", "--archive", &url, "--output", "json"]);
    assert_eq!(corrupt.status.code(), Some(1));
    let report = String::from_utf8_lossy(&corrupt.stdout);
    assert!(
        report.contains(middle) && report.contains("corrupt"),
        "{report}"
    );

    std::fs::remove_file(&path).unwrap();
    let missing = ddbctl(&[
        "archive",
        "verify",
        "--archive",
        &url,
        "--table-id",
        "7",
        "--partition",
        "2",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let report = String::from_utf8_lossy(&missing.stdout);
    assert!(report.contains("gap"), "{report}");

    let unreadable = ddbctl(&["archive", "verify", "--archive", "ftp://nowhere"]);
    assert_eq!(unreadable.status.code(), Some(2));
}
