//! A real `ddbd` with a real `ddb-archiver` beside it, archiving to a directory:
//! - every acknowledged write reaches the archive, and replaying the archive gives, at the same
//!   LSN, the digest the live node reports (every chunk's sealed digest checked on the way);
//! - with no archiver running, the node throttles writes once its unarchived log passes the
//!   bound (ThrottlingException, a metric, nothing deleted), and accepts them again once an
//!   archiver catches up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb::archive::ArchiveUrl;
use ddb::client::ClientError;
use ddb_tests::{
    ArchivedNode, ArchiverProcess, NodeProcess, binary, client, create_hash_table, replay_archive,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_is_archived_under_the_live_digest() {
    let archived = ArchivedNode::start(&[], None, &[], "");
    let (node, archiver, url) = (&archived.node, &archived.archiver, &archived.url);
    let port = node.port();
    let client = archived.client();
    create_hash_table(&client, "archived");

    // Four writers put, update and delete concurrently while chunks are cut and uploaded.
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            std::thread::spawn(move || {
                let client =
                    ddb_tests::client(port, NodeProcess::ACCESS_KEY_ID, NodeProcess::SECRET_ACCESS_KEY);
                for i in 0..120 {
                    let key = format!("w{writer}-{}", i % 40);
                    let request = match i % 3 {
                        0 | 1 => (
                            "PutItem",
                            serde_json::json!({"TableName": "archived",
                                "Item": {"k": {"S": key}, "n": {"N": i.to_string()}, "pad": {"S": "x".repeat(i * 7)}}}),
                        ),
                        _ => (
                            "DeleteItem",
                            serde_json::json!({"TableName": "archived", "Key": {"k": {"S": key}}}),
                        ),
                    };
                    client.call(request.0, &request.1).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let listing = node.wait_archived(Duration::from_secs(30), || archiver.log());

    let archive = ArchiveUrl::parse(url)
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    let replayed = replay_archive(&archive).await;
    assert_eq!(
        replayed.len(),
        listing.partitions.len(),
        "every partition is in the archive"
    );
    for partition in &listing.partitions {
        let archived = replayed
            .iter()
            .find(|r| r.partition_id == partition.partition_id)
            .unwrap();
        assert_eq!(archived.table_id, partition.table_id);
        assert_eq!(archived.lsn.0, partition.applied_lsn);
        let (lsn, live) = node.digest_at(partition.partition_id, partition.applied_lsn);
        assert_eq!(lsn, archived.lsn);
        assert_eq!(
            live, archived.digest,
            "partition {}: the archive replays to a different state than the node holds",
            partition.partition_id
        );
    }
    let (_, catalog) = ddb::archive::catalog::catalog_at(&archive, None)
        .await
        .unwrap()
        .expect("the catalog is archived");
    let catalog = ddb::catalog::Catalog::scratch(Some(&catalog)).unwrap();
    assert!(catalog.table("archived").is_some());
    let uploads = archiver.metric_sum("ddb_archiver_uploads_total");
    assert!(uploads >= 4.0, "{uploads} uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_throttles_past_the_unarchived_bound_and_recovers_once_archived() {
    let node = NodeProcess::start_with_env(
        &binary("ddbd"),
        &[
            ("DDB_ARCHIVE_ENABLED", "true"),
            ("DDB_MAX_UNARCHIVED_BYTES", "20000"),
            ("DDB_ON_DEMAND_PARTITIONS", "1"),
        ],
    )
    .unwrap();
    let port = node.port();
    let client = client(
        port,
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    create_hash_table(&client, "bounded");
    let put = |i: usize| {
        client.call(
            "PutItem",
            &serde_json::json!({"TableName": "bounded",
                "Item": {"k": {"S": format!("k{i}")}, "pad": {"S": "p".repeat(1000)}}}),
        )
    };
    // No archiver: the log grows until the bound throttles.
    let mut acknowledged = Vec::new();
    let mut throttled = false;
    for i in 0..200 {
        match put(i) {
            Ok(_) => acknowledged.push(i),
            Err(ClientError::Service { code, .. }) if code == "ThrottlingException" => {
                throttled = true;
                break;
            }
            Err(e) => panic!("put {i}: {e}"),
        }
    }
    assert!(throttled, "200 KB of unarchived log was never throttled");
    assert!(
        acknowledged.len() >= 15,
        "{} writes before the bound",
        acknowledged.len()
    );
    let metrics = ddb_tests::http_get(port, "/metrics").unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ddb_archive_over_bound{") && l.ends_with(" 1")),
        "{metrics}"
    );
    // Throttled, the node still deleted nothing: every acknowledged write reads back.
    for i in &acknowledged {
        let item = client
            .call(
                "GetItem",
                &serde_json::json!({"TableName": "bounded", "Key": {"k": {"S": format!("k{i}")}},
                    "ConsistentRead": true}),
            )
            .unwrap();
        assert!(item.get("Item").is_some(), "k{i} lost");
    }

    // An archiver catches up, and writes are accepted again.
    let work = tempfile::tempdir().unwrap();
    let url = format!("file://{}", work.path().join("archive").display());
    let archiver = ArchiverProcess::start(
        node.endpoint(),
        &node.data_dir(),
        &url,
        &[],
        &work.path().join("archiver.log"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let next = acknowledged.len() + 1000;
    loop {
        match put(next) {
            Ok(_) => break,
            Err(ClientError::Service { code, .. }) if code == "ThrottlingException" => {
                assert!(
                    Instant::now() < deadline,
                    "still throttled after the archiver started; its log:\n{}",
                    archiver.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("put after catching up: {e}"),
        }
    }
    node.wait_archived(Duration::from_secs(30), || archiver.log());
    let archive = ArchiveUrl::parse(&url)
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    let replayed = replay_archive(&archive).await;
    let table = replayed.iter().find(|r| r.table_id != 0).unwrap();
    let mut keys = 0;
    let snapshot = ddb::replica::ReplicaStore::snapshot(&table.store).unwrap();
    for item in snapshot.scan(
        &ddb::replica::KeyRange::all(),
        ddb::replica::Direction::Forward,
    ) {
        item.unwrap();
        keys += 1;
    }
    assert_eq!(
        keys,
        acknowledged.len() + 1,
        "every acknowledged write is archived"
    );
}
