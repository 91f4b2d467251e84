//! A node and its archiver against a real S3-compatible server (s3s-fs) that goes away under
//! writes: nothing acknowledged is lost, the node throttles once its unarchived log passes the
//! bound (instead of deleting anything), and when the server comes back the archiver catches
//! up by itself; the bucket then replays to exactly the node's state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb::client::{Client, ClientError};
use ddb_tests::s3::{S3Server, S3sFs};
use ddb_tests::{ArchivedNode, create_hash_table, replay_archive};

const BUCKET: &str = "ddb-archive";

fn put(client: &Client, index: usize) -> Result<(), ClientError> {
    client
        .call(
            "PutItem",
            &serde_json::json!({"TableName": "outage",
                "Item": {"k": {"S": format!("k{index}")}, "pad": {"S": "o".repeat(900)}}}),
        )
        .map(|_| ())
}

fn is_throttle(error: &ClientError) -> bool {
    matches!(error, ClientError::Service { code, .. } if code == "ThrottlingException")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_throttles_writes_loses_nothing_and_archiving_catches_up() {
    let work = tempfile::tempdir().unwrap();
    let mut s3 = S3sFs::start(&work.path().join("s3"));
    let url = s3.archive_url(BUCKET, "outage");
    let env = s3.owned_env();
    s3.init_bucket(&url, &["--no-versioning"]);

    let archived = ArchivedNode::start(
        &[
            ("DDB_MAX_UNARCHIVED_BYTES", "60000"),
            ("DDB_ON_DEMAND_PARTITIONS", "1"),
        ],
        Some(url),
        &env,
        "",
    );
    let (node, archiver) = (&archived.node, &archived.archiver);
    let client = archived.client();
    create_hash_table(&client, "outage");
    let mut acknowledged = 0;
    for _ in 0..20 {
        put(&client, acknowledged).unwrap();
        acknowledged += 1;
    }
    node.wait_archived(Duration::from_secs(60), || archiver.log());

    // The server goes away; writes go on until the bound throttles them.
    s3.stop();
    let mut throttled = false;
    for _ in 0..400 {
        match put(&client, acknowledged) {
            Ok(()) => acknowledged += 1,
            Err(e) if is_throttle(&e) => {
                throttled = true;
                break;
            }
            Err(e) => panic!("put {acknowledged} during the outage: {e}"),
        }
    }
    assert!(throttled, "the outage never throttled writes");
    // The archiver keeps trying (with backoff) for as long as the server is away.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if archiver.metric_sum("ddb_archiver_retries_total") >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the archiver never retried; its log:\n{}",
            archiver.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Still throttled, and nothing was deleted to make room: every write reads back.
    assert!(is_throttle(&put(&client, acknowledged).unwrap_err()));
    for index in 0..acknowledged {
        let item = client
            .call(
                "GetItem",
                &serde_json::json!({"TableName": "outage",
                    "Key": {"k": {"S": format!("k{index}")}}, "ConsistentRead": true}),
            )
            .unwrap();
        assert!(
            item.get("Item").is_some(),
            "k{index} lost during the outage"
        );
    }
    let lag: f64 = archiver
        .metric("ddb_archiver_lag_seconds")
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0, f64::max);
    assert!(lag > 0.0, "no archive lag reported during the outage");

    // The server returns: the archiver catches up and the node accepts writes again.
    s3.restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match put(&client, acknowledged) {
            Ok(()) => {
                acknowledged += 1;
                break;
            }
            Err(e) if is_throttle(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("after the outage: {e}; archiver log:\n{}", archiver.log()),
        }
    }
    let listing = node.wait_archived(Duration::from_secs(60), || archiver.log());

    let archive = s3.open_archive(BUCKET, "outage");
    let replayed = replay_archive(&archive).await;
    for partition in &listing.partitions {
        let archived = replayed
            .iter()
            .find(|r| r.partition_id == partition.partition_id)
            .unwrap();
        let (lsn, live) = node.digest_at(partition.partition_id, partition.applied_lsn);
        assert_eq!((lsn, &live), (archived.lsn, &archived.digest));
    }
    let table = replayed.iter().find(|r| r.table_id != 0).unwrap();
    let snapshot = ddb::replica::ReplicaStore::snapshot(&table.store).unwrap();
    let archived_items = snapshot
        .scan(
            &ddb::replica::KeyRange::all(),
            ddb::replica::Direction::Forward,
        )
        .count();
    assert_eq!(
        archived_items, acknowledged,
        "every acknowledged write is in the bucket"
    );
}
