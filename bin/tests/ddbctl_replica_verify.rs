//! `ddbctl replica verify` reports a clean replica as clean and catches items at rest that
//! differ from what was applied, with the exit status scripts rely on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::ddbctl;
use ddb::digest::CheckpointPolicy;
use ddb::replica::{FjallReplicaStore, ReplicaStore};
use ddb::wal::{Ballot, Entry, Lsn, Operation};

fn write_store(dir: &Path, items: u64) {
    let store = FjallReplicaStore::open(dir, CheckpointPolicy::default()).unwrap();
    let entries: Vec<Entry> = (1..=items)
        .map(|lsn| Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round: 1, node: 1 },
            timestamp_ms: lsn,
            op: Operation::Put {
                key: format!("key{lsn:05}").into_bytes(),
                item: vec![7; 100],
            },
        })
        .collect();
    store.apply_batch(&entries).unwrap();
    store.persist().unwrap();
}

#[test]
fn clean_replica_verifies_ok() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path(), 2_000);
    let (code, stdout, stderr) = ddbctl(&[
        "replica",
        "verify",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "ok");
    assert_eq!(report["applied_lsn"], 2_000);
    assert_eq!(report["items"], 2_000);
    assert_eq!(report["checkpoints"], 1);
    assert_eq!(report["incremental_digest"], report["full_scan_digest"]);

    let (code, table, _) = ddbctl(&["replica", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        table.contains("ok: full scan equals incremental digest"),
        "{table}"
    );
}

#[test]
fn item_changed_behind_the_stores_back_is_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path(), 500);
    {
        // Rewrite one item without going through apply: what bit rot or an apply bug leaves.
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let items = db
            .keyspace("items", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        items.insert("key00042", vec![8u8; 100]).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    let (code, stdout, _) = ddbctl(&[
        "replica",
        "verify",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["verdict"], "mismatch");
    assert_ne!(report["incremental_digest"], report["full_scan_digest"]);
}

#[test]
fn a_directory_that_is_not_a_store_is_an_error_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = ddbctl(&["replica", "verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a ddb replica store"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
