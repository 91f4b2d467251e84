//! The archiver beside a node takes snapshots as entries accumulate and, with a (here very
//! short) retention window, deletes the chunks and snapshots that no restore inside the window
//! needs — never one that a sound snapshot does not cover. Afterwards the archive still passes a
//! deep verify, and a restore starts from a snapshot and ends at the live node's digest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use ddb::archive::{ArchiveUrl, RestoreTarget, list_chunks, list_snapshots, restore_partition};
use ddb::digest::CheckpointPolicy;
use ddb::replica::MemoryReplicaStore;
use ddb_tests::{ArchivedNode, binary, create_hash_table};

/// Two seconds, in days.
const RETENTION: &str = "retention_days = 0.0000231\nsnapshot_every_entries = 40\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_let_retention_delete_old_chunks_and_restore_still_matches() {
    let archived = ArchivedNode::start(&[("DDB_ON_DEMAND_PARTITIONS", "1")], None, &[], RETENTION);
    let (node, archiver, url) = (&archived.node, &archived.archiver, &archived.url);
    let client = archived.client();
    create_hash_table(&client, "kept");
    // Rounds of writes, each followed by a snapshot, more than the window apart.
    let mut written = 0;
    for round in 0..4 {
        // Counted before the writes: the snapshot may come while they are still going on.
        let snapshots_before = archiver.metric_sum("ddb_archiver_snapshots_total");
        for _ in 0..60 {
            client
                .call(
                    "PutItem",
                    &serde_json::json!({"TableName": "kept", "Item": {
                        "k": {"S": format!("k{}", written % 90)}, "round": {"N": round.to_string()}}}),
                )
                .unwrap();
            written += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while archiver.metric_sum("ddb_archiver_snapshots_total") <= snapshots_before {
            assert!(
                Instant::now() < deadline,
                "no snapshot in round {round}:\n{}",
                archiver.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(2500));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while archiver.metric_sum("ddb_archiver_deleted_objects_total") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "retention deleted nothing:\n{}",
            archiver.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing = node.wait_archived(Duration::from_secs(30), || archiver.log());
    let partition = &listing.partitions[0];

    let archive = ArchiveUrl::parse(url)
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    let chunks = list_chunks(&archive, partition.table_id, partition.partition_id)
        .await
        .unwrap();
    let snapshots = list_snapshots(&archive, partition.table_id, partition.partition_id)
        .await
        .unwrap();
    assert!(
        chunks[0].first.0 > 1,
        "the oldest chunks were deleted: {chunks:?}"
    );
    assert!(
        snapshots[0].lsn.0 + 1 >= chunks[0].first.0,
        "the oldest snapshot covers everything before the oldest chunk: {snapshots:?} {chunks:?}"
    );

    let verified = Command::new(binary("ddbctl"))
        .args(["archive", "verify", "--deep", "--archive", url])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    let report = restore_partition(
        &archive,
        partition.table_id,
        partition.partition_id,
        RestoreTarget::Latest,
        &store,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert!(
        report.snapshot.is_some(),
        "the restore started from a snapshot"
    );
    let (lsn, live) = node.digest_at(partition.partition_id, partition.applied_lsn);
    assert_eq!((report.final_lsn, &report.digest), (lsn, &live));
}
