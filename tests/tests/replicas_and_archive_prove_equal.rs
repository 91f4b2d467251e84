//! The scrubber's evidence, gathered by hand on a real three-node cluster with its archivers
//! (`ddbctl local up`): after writes, every partition's replicas report the same digest at the
//! same applied LSN (check 1), a reference replica built from the archive alone reaches that
//! LSN with that digest (check 2), and every full replica's items at rest add up to the digest
//! it maintains (check 3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ddb::archive::{ArchiveUrl, advance_partition};
use ddb::digest::CheckpointPolicy;
use ddb::node::ScrubReplica;
use ddb::replica::MemoryReplicaStore;
use ddb_tests::{LocalUp, client, parse_export};

const NODES: u16 = 3;

/// `method path` on node `id`'s internal API, with the token from its data directory.
fn internal(dir: &std::path::Path, base: u16, id: u16, method: &str, path: &str) -> String {
    let token = ddb::server::read_internal_token(&dir.join(format!("node{id}/data"))).unwrap();
    let (status, body) = ddb_tests::internal_call(base + id - 1, &token, method, path);
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}

/// Every full replica of every partition, once all of them stand at the same applied LSN.
fn settled_replicas(dir: &std::path::Path, base: u16) -> BTreeMap<u64, Vec<ScrubReplica>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut by_partition: BTreeMap<u64, Vec<ScrubReplica>> = BTreeMap::new();
        for id in 1..=NODES {
            let body = internal(dir, base, id, "GET", "/internal/scrub/replicas");
            for replica in serde_json::from_str::<Vec<ScrubReplica>>(&body).unwrap() {
                if replica.full_replica {
                    by_partition
                        .entry(replica.partition_id)
                        .or_default()
                        .push(replica);
                }
            }
        }
        let settled = by_partition.values().all(|replicas| {
            replicas.len() == 3
                && replicas
                    .iter()
                    .all(|r| r.applied_lsn == replicas[0].applied_lsn)
        });
        if settled && !by_partition.is_empty() {
            return by_partition;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never settled: {by_partition:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_the_archive_agrees_and_nothing_rotted() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &[]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let writer = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&writer, "proven");
    for index in 0..120 {
        writer
            .call(
                "PutItem",
                &serde_json::json!({"TableName": "proven",
                    "Item": {"k": {"S": format!("k{}", index % 50)}, "v": {"N": index.to_string()}}}),
            )
            .unwrap();
    }

    let replicas = settled_replicas(dir.path(), base);
    let archive = ArchiveUrl::parse(&format!("file://{}", dir.path().join("archive").display()))
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    for (partition, copies) in &replicas {
        // Check 1: peers agree.
        let lsn = copies[0].applied_lsn;
        assert!(
            copies.iter().all(|copy| copy.digest == copies[0].digest),
            "partition {partition}: replicas at LSN {lsn} differ: {copies:?}"
        );
        // Check 2: the archive agrees. The reference replica advances as chunks land.
        let reference = MemoryReplicaStore::new(CheckpointPolicy::default());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let report = advance_partition(
                &archive,
                copies[0].table_id,
                *partition,
                &reference,
                &mut |_| {},
            )
            .await
            .unwrap();
            if report.final_lsn.0 >= lsn {
                assert_eq!(report.final_lsn.0, lsn, "partition {partition}");
                assert_eq!(
                    report.digest.identity(),
                    copies[0].digest,
                    "partition {partition}: the archive replays to another state"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "partition {partition} never archived to {lsn}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Check 3: each copy's items at rest add up to its maintained digest.
        for copy in copies {
            let body = internal(
                dir.path(),
                base,
                u16::try_from(copy.node_id).unwrap(),
                "POST",
                &format!("/internal/partitions/{partition}/full-scan"),
            );
            let scan: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(scan["matches"], true, "node {}: {scan}", copy.node_id);
            assert_eq!(
                scan["full"],
                copy.digest.as_str(),
                "node {}: {scan}",
                copy.node_id
            );
        }
    }
    assert!(cluster.interrupt_and_wait().success());
}
