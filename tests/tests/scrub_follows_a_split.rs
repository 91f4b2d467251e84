//! Scrub and digests go on per partition across a split: on a three-node `ddbctl local up`
//! cluster with its archive and a real `ddb-scrubber`, a partition splits under writes; the
//! scrubber then proves each child equal across its three replicas, against a replica rebuilt
//! from the child's own archive, and at rest, and raises nothing; and every node retires its
//! replica of the parent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ddb_tests::admission::{Signer, capacity};
use ddb_tests::scrubber::{all_checks_agree, health, proven, scrub_until, start_scrubber};
use ddb_tests::{LocalUp, client, create_hash_table, parse_export};

const NODES: u16 = 3;

#[test]
fn the_scrubber_proves_a_split_s_children_like_any_partition() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &[]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let writer = client(base, &key_id, &secret);
    create_hash_table(&writer, "halved");
    for index in 0..200 {
        writer
            .call(
                "PutItem",
                &serde_json::json!({"TableName": "halved",
                    "Item": {"k": {"S": format!("k{index}")}, "v": {"N": index.to_string()}}}),
            )
            .unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let scrubber = start_scrubber(dir.path(), base, NODES, &work.path().join("scrubber"));
    // The metadata group and the table's four partitions.
    proven(&scrubber, 5);

    // Split one partition at the middle of its range while a client keeps writing.
    let signer = Signer {
        endpoint: format!("http://127.0.0.1:{base}"),
        key_id: &key_id,
        secret: &secret,
    };
    let row = capacity(&signer, "halved")["splits"][0].clone();
    let parent = row["partition_id"].as_u64().unwrap();
    let hash = |field: &str| u64::from_str_radix(row[field].as_str().unwrap(), 16).unwrap();
    let middle = hash("hash_start") + (hash("hash_end") - hash("hash_start")) / 2;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = {
        let (stop, key_id, secret) = (Arc::clone(&stop), key_id.clone(), secret.clone());
        std::thread::spawn(move || {
            let writer = client(base, &key_id, &secret);
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                writer
                    .call(
                        "PutItem",
                        &serde_json::json!({"TableName": "halved",
                            "Item": {"k": {"S": format!("w{written}")}}}),
                    )
                    .unwrap();
                written += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            written
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (code, split) = signer.ddbctl(&[
        "partition",
        "split",
        "--table",
        "halved",
        "--partition",
        &parent.to_string(),
        "--at",
        &format!("{middle:016x}"),
    ]);
    assert_eq!(code, 0, "{split}");
    assert_eq!(split["ParentDigest"], split["ChildrenDigestSum"], "{split}");
    let children: Vec<String> = split["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["Partition"].as_u64().unwrap().to_string())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let written = writes.join().unwrap();
    assert!(written > 0);

    // Each child is proven like any partition: its replicas agree, a replica rebuilt from its
    // own archive (from its first LSN) agrees, and nothing rotted at rest.
    let (code, status) = scrub_until(&scrubber, true, |status| {
        children.iter().all(|child| {
            status["partitions"].get(child).is_some_and(|report| {
                all_checks_agree(report) && report["proven_lsn"].as_u64() > Some(0)
            })
        })
    });
    assert_eq!(code, 0, "{status}");
    assert_eq!(health(&scrubber), "ok");

    // Every node retires its replica of the parent once its archive watermark passes the
    // fence — the followers too, whose archivers follow the archive's tail.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for child in &children {
        assert!(dir.path().join(format!("node1/data/wal/{child}")).exists());
    }
    for node in 1..=NODES {
        let wal = dir.path().join(format!("node{node}/data/wal/{parent}"));
        while wal.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "node {node} kept the parent's files: {}",
                wal.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(scrubber);
    assert!(cluster.interrupt_and_wait().success());
}
