//! `ddbctl archive restore --into` and `archive ls` on a real `file://` archive of a table with
//! two partitions and its catalog: the restored replica stores hold exactly the partitions'
//! items with their digests, at the latest LSN, an LSN or a time; `ls` shows objects, sizes,
//! the newest snapshot and the lag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ddbctl;
use ddb::digest::CheckpointPolicy;
use ddb::replica::{Direction, FjallReplicaStore, KeyItem, KeyRange, ReplicaStore};
use ddb_tests::archive_fixture::{PARTITION_IDS, START_MS, TABLE_ID, TableArchive};
use serde_json::Value;

/// Runs `ddbctl archive restore --archive URL --table TABLE ARGS…`.
fn restore(url: &str, table: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["archive", "restore", "--archive", url, "--table", table];
    all.extend_from_slice(args);
    ddbctl(&all)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The items and digest of the replica store `ddbctl` left in `dir`.
fn store_state(dir: &std::path::Path) -> (String, Vec<KeyItem>, u64) {
    let store = FjallReplicaStore::open(dir, CheckpointPolicy::default()).unwrap();
    let items = store
        .snapshot()
        .unwrap()
        .scan(&KeyRange::all(), Direction::Forward)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let state = store.applied_state();
    (state.digest.fingerprint(), items, state.applied_lsn.0)
}

#[test]
fn restore_into_a_directory_rebuilds_every_partition_and_reports_it() {
    let archive_dir = tempfile::tempdir().unwrap();
    let fixture = TableArchive::build(archive_dir.path());
    let out = tempfile::tempdir().unwrap();
    let into = out.path().join("orders");
    let into_text = into.to_str().unwrap();

    let (code, stdout, stderr) = restore(
        &fixture.url,
        "orders",
        &["--into", into_text, "--output", "json"],
    );
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    assert_eq!(report["table"]["id"], TABLE_ID);
    assert_eq!(report["target"], "latest");
    let written = json(&std::fs::read_to_string(into.join("restore.json")).unwrap());
    assert_eq!(written, report, "restore.json holds the printed report");

    for (history, partition) in fixture
        .partitions
        .iter()
        .zip(report["partitions"].as_array().unwrap())
    {
        let last = history.last_lsn();
        let (digest, items) = history.state_at(last);
        assert_eq!(partition["partition_id"], history.id);
        assert_eq!(partition["final_lsn"], last);
        assert_eq!(partition["verified_lsn"], last, "the last chunk ends there");
        assert_eq!(partition["digest"], digest.fingerprint());
        let (stored_digest, stored_items, stored_lsn) =
            store_state(&into.join("replicas").join(history.id.to_string()));
        assert_eq!(
            (stored_digest, stored_items, stored_lsn),
            (digest.fingerprint(), items, last)
        );
    }
    let first = &report["partitions"][0];
    assert!(
        first["snapshot"]
            .as_str()
            .unwrap()
            .ends_with("snapshots/00000000000000000010.ddbsnap.zst"),
        "{first}"
    );
    assert_eq!(
        first["entries_applied"],
        fixture.partitions[0].last_lsn() - 10
    );

    let (code, _, stderr) = restore(&fixture.url, "orders", &["--into", into_text]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[test]
fn restore_to_a_time_or_to_one_partitions_lsn() {
    let archive_dir = tempfile::tempdir().unwrap();
    let fixture = TableArchive::build(archive_dir.path());
    let out = tempfile::tempdir().unwrap();

    // Each partition's entry 5 is stamped START_MS + 1050, entry 6 START_MS + 1060.
    let time = chrono::DateTime::from_timestamp_millis((START_MS + 1055) as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let at_time = out.path().join("at-time");
    let at_time = at_time.to_str().unwrap();
    let args = ["--to-time", &time, "--into", at_time, "-o", "json"];
    let (code, stdout, stderr) = restore(&fixture.url, "orders", &args);
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    for (history, partition) in fixture
        .partitions
        .iter()
        .zip(report["partitions"].as_array().unwrap())
    {
        assert_eq!(partition["final_lsn"], 5, "{partition}");
        assert_eq!(partition["digest"], history.state_at(5).0.fingerprint());
        assert_eq!(partition["final_time"], "2026-09-21T14:13:21.050Z");
    }

    let elsewhere = out.path().join("elsewhere");
    let elsewhere = elsewhere.to_str().unwrap();
    let (code, _, stderr) = restore(
        &fixture.url,
        "orders",
        &["--to-lsn", "7", "--into", elsewhere],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("--partition"), "{stderr}");
    assert!(
        !std::path::Path::new(elsewhere).exists(),
        "a failed restore leaves nothing behind"
    );

    let one = out.path().join("one");
    let partition = PARTITION_IDS[1].to_string();
    let args = [
        "--to-lsn",
        "7",
        "--partition",
        &partition,
        "--into",
        one.to_str().unwrap(),
    ];
    let (code, stdout, stderr) = restore(
        &fixture.url,
        "orders",
        &[&args[..], &["-o", "json"]].concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    let report = json(&stdout);
    assert_eq!(report["partitions"].as_array().unwrap().len(), 1);
    assert_eq!(report["partitions"][0]["final_lsn"], 7);
    let (digest, items) = fixture.partitions[1].state_at(7);
    let (stored_digest, stored_items, _) = store_state(&one.join("replicas").join(&partition));
    assert_eq!((stored_digest, stored_items), (digest.fingerprint(), items));

    let (code, _, stderr) = restore(&fixture.url, "invoices", &["--into", elsewhere]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no table invoices"), "{stderr}");
}

#[test]
fn ls_shows_objects_sizes_the_newest_snapshot_and_the_lag() {
    let archive_dir = tempfile::tempdir().unwrap();
    let fixture = TableArchive::build(archive_dir.path());

    let (code, stdout, stderr) =
        ddbctl(&["archive", "ls", "--archive", &fixture.url, "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows = json(&stdout);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "the catalog and two partitions: {rows:?}");
    let first = rows
        .iter()
        .find(|row| row["partition_id"] == PARTITION_IDS[0])
        .unwrap();
    let history = &fixture.partitions[0];
    let chunks = history.last_lsn().div_ceil(10);
    assert_eq!(first["chunks"], chunks);
    assert_eq!(first["snapshots"], 1);
    assert_eq!(first["objects"], chunks + 1);
    assert_eq!(first["newest_snapshot_lsn"], 10);
    let dir = archive_dir
        .path()
        .join(format!("v1/tables/{TABLE_ID}/partitions/{}", history.id));
    let on_disk: u64 = ["wal", "snapshots"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(first["bytes"], on_disk);
    let newest = history.entries.last().unwrap().timestamp_ms;
    assert_eq!(first["newest_entry_ms"], newest);
    assert!(first["lag_ms"].as_u64().is_some(), "{first}");

    let (code, table, _) = ddbctl(&["archive", "ls", "--archive", &fixture.url]);
    assert_eq!(code, 0);
    assert!(
        table.contains("newest snapshot") && table.contains("lag"),
        "{table}"
    );

    let (code, stdout, stderr) =
        ddbctl(&["archive", "verify", "--deep", "--archive", &fixture.url]);
    assert_eq!(code, 0, "{stdout}{stderr}");
}
