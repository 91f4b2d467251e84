//! `ddbctl wal inspect` reports segments and verdicts, treats a torn tail as recoverable and a
//! damaged sealed segment as corruption (exit status 1), and never changes the files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::ddbctl;
use ddb::wal::{Ballot, Operation, Wal, WalOptions};

fn inspect_json(dir: &Path) -> (i32, serde_json::Value) {
    let (code, stdout, stderr) = ddbctl(&["wal", "inspect", dir.to_str().unwrap(), "-o", "json"]);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout} / {stderr}"));
    (code, report)
}

/// Writes 300 entries into segments of about 4 KiB and returns the segment paths, oldest first.
fn write_log(dir: &Path) -> Vec<std::path::PathBuf> {
    let wal = Wal::open(
        dir,
        WalOptions {
            segment_max_bytes: 4096,
            ..WalOptions::default()
        },
    )
    .unwrap();
    for n in 0..300u64 {
        wal.append_next(
            Ballot { round: 1, node: 1 },
            n,
            Operation::Put {
                key: format!("key{n}").into_bytes(),
                item: vec![n as u8; 50],
            },
        )
        .unwrap();
    }
    drop(wal);
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    segments
}

#[test]
fn sound_log_lists_every_segment_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let segments = write_log(dir.path());
    assert!(segments.len() > 3);
    let (code, report) = inspect_json(dir.path());
    assert_eq!(code, 0);
    assert_eq!(report["verdict"], "ok");
    assert_eq!(report["total_entries"], 300);
    assert_eq!(report["first_lsn"], 1);
    assert_eq!(report["last_lsn"], 300);
    let rows = report["segments"].as_array().unwrap();
    assert_eq!(rows.len(), segments.len());
    // Segments are contiguous: each starts right after the previous one ends.
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1]["first_lsn"].as_u64().unwrap(),
            pair[0]["last_lsn"].as_u64().unwrap() + 1
        );
    }
    let (code, table, _) = ddbctl(&["wal", "inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(table.contains("1..=300"), "{table}");
}

#[test]
fn torn_tail_is_reported_but_recoverable() {
    let dir = tempfile::tempdir().unwrap();
    let segments = write_log(dir.path());
    let last = segments.last().unwrap();
    // The end of the last record, before the zeros the writer preallocated.
    let inspection = ddb::wal::inspect(dir.path()).unwrap();
    let newest = inspection.segments.last().unwrap();
    let len = newest.bytes - newest.preallocated_bytes;
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let (code, report) = inspect_json(dir.path());
    assert_eq!(code, 0);
    assert_eq!(report["verdict"], "torn_tail");
    assert_eq!(report["last_lsn"], 299);
    // Inspecting changed nothing.
    assert_eq!(std::fs::metadata(last).unwrap().len(), len - 10);
}

#[test]
fn preallocated_zeros_of_the_newest_segment_are_reported_and_sound() {
    let dir = tempfile::tempdir().unwrap();
    let segments = write_log(dir.path());
    let (code, report) = inspect_json(dir.path());
    assert_eq!(code, 0);
    assert_eq!(report["verdict"], "ok");
    let rows = report["segments"].as_array().unwrap();
    let (newest, sealed) = rows.split_last().unwrap();
    assert!(sealed.iter().all(|r| r["preallocated_bytes"] == 0));
    let file_len = std::fs::metadata(segments.last().unwrap()).unwrap().len();
    assert_eq!(newest["bytes"].as_u64().unwrap(), file_len);
    let preallocated = newest["preallocated_bytes"].as_u64().unwrap();
    assert!(preallocated > 0 && preallocated < file_len, "{newest}");
    let (code, table, _) = ddbctl(&["wal", "inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(table.contains("preallocated"), "{table}");
}

#[test]
fn flipped_bit_in_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let segments = write_log(dir.path());
    let victim = &segments[1];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[200] ^= 0x10;
    std::fs::write(victim, &bytes).unwrap();
    let (code, report) = inspect_json(dir.path());
    assert_eq!(code, 1);
    assert_eq!(report["verdict"], "corrupt");
    let rows = report["segments"].as_array().unwrap();
    let bad: Vec<_> = rows.iter().filter(|r| r["verdict"] == "corrupt").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0]["file"].as_str().unwrap(),
        victim.file_name().unwrap().to_str().unwrap()
    );
    assert!(bad[0]["offset"].as_u64().unwrap() <= 200);
    let (code, table, _) = ddbctl(&["wal", "inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(table.contains("CORRUPT"), "{table}");
}

#[test]
fn missing_directory_is_an_error() {
    let (code, _, stderr) = ddbctl(&["wal", "inspect", "/nonexistent/ddb/wal"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a directory"), "{stderr}");
}
