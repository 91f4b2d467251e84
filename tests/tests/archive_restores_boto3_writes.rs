//! What the archive is for, end to end: writes made through boto3 to a real ddbd are archived
//! by a real ddb-archiver into a real S3-compatible server (s3s-fs), and `ddbctl archive
//! restore`, reading the bucket alone, rebuilds every partition into a replica whose state
//! digest equals the live node's at the same LSN.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

use ddb::replica::ReplicaStore as _;
use ddb_tests::s3::{S3Server, S3sFs};
use ddb_tests::{ArchivedNode, NodeProcess, binary};

const BUCKET: &str = "restore-e2e";

/// boto3 creates a table and writes to it: puts, updates, deletes, batch writes.
const WRITES: &str = r##"
import sys, boto3
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
ddb.create_table(TableName="orders",
    KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
               {"AttributeName": "order", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                          {"AttributeName": "order", "AttributeType": "N"}],
    BillingMode="PAY_PER_REQUEST")
for i in range(200):
    ddb.put_item(TableName="orders", Item={"customer": {"S": f"c{i % 23}"},
        "order": {"N": str(i)}, "total": {"N": str(i * 3)}, "tags": {"SS": ["new", f"t{i % 5}"]}})
for i in range(0, 200, 7):
    ddb.update_item(TableName="orders", Key={"customer": {"S": f"c{i % 23}"}, "order": {"N": str(i)}},
        UpdateExpression="SET #t = #t + :d REMOVE tags", ExpressionAttributeNames={"#t": "total"},
        ExpressionAttributeValues={":d": {"N": "1"}})
for i in range(0, 200, 11):
    ddb.delete_item(TableName="orders", Key={"customer": {"S": f"c{i % 23}"}, "order": {"N": str(i)}})
for start in range(200, 300, 25):
    ddb.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": {
        "customer": {"S": f"b{i % 4}"}, "order": {"N": str(i)}, "note": {"S": "batched"}}}}
        for i in range(start, start + 25)]})
"##;

#[test]
fn boto3_writes_restore_from_the_bucket_alone_to_the_live_digest() {
    let python = std::env::var("DDB_PYTHON").unwrap_or_else(|_| {
        panic!("DDB_PYTHON must name a Python with boto3: run the tests with scripts/test")
    });
    let work = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&work.path().join("s3"));
    let url = s3.archive_url(BUCKET, "cluster");
    let env = s3.owned_env();
    let ddbctl = |args: &[&str]| {
        Command::new(binary("ddbctl"))
            .args(args)
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    s3.init_bucket(&url, &["--no-versioning"]);

    let archived = ArchivedNode::start(&[], Some(url.clone()), &env, "");
    let (node, archiver) = (&archived.node, &archived.archiver);
    let wrote = Command::new(&python)
        .args(["-c", WRITES, node.endpoint()])
        .args([NodeProcess::ACCESS_KEY_ID, NodeProcess::SECRET_ACCESS_KEY])
        .output()
        .unwrap();
    assert!(
        wrote.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&wrote.stderr)
    );

    let listing = node.wait_archived(Duration::from_secs(60), || archiver.log());

    let into = work.path().join("restored");
    let restored = ddbctl(&[
        "-o",
        "json",
        "archive",
        "restore",
        "--archive",
        &url,
        "--table",
        "orders",
        "--into",
        into.to_str().unwrap(),
    ]);
    assert!(
        restored.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&restored.stdout).unwrap();
    let partitions = report["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), listing.partitions.len());
    for partition in &listing.partitions {
        let (lsn, live) = node.digest_at(partition.partition_id, partition.applied_lsn);
        let summary = partitions
            .iter()
            .find(|p| p["partition_id"] == partition.partition_id)
            .unwrap();
        assert_eq!(summary["final_lsn"], lsn.0);
        assert_eq!(
            summary["verified_lsn"], lsn.0,
            "the last chunk's digest was checked"
        );
        let store = ddb::replica::FjallReplicaStore::open_existing(
            &into
                .join("replicas")
                .join(partition.partition_id.to_string()),
        )
        .unwrap();
        let state = store.applied_state();
        assert_eq!(state.applied_lsn, lsn);
        assert_eq!(
            state.digest, live,
            "partition {}: the restored replica differs from the live one",
            partition.partition_id
        );
    }
}
