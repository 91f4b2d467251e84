//! The whole system as a new user meets it, end to end: `ddbctl local up` archiving into a real
//! S3-compatible server (s3s-fs, its bucket made by `ddbctl archive bucket init`) — three nodes,
//! an archiver beside each, the scrubber, a canary per AZ, alarm windows scaled down 100 times.
//!
//! boto3 writes a table; a node is killed and the alarms for it fire, then resolve once it is
//! started again; the scrubber proves every partition equal across its replicas and the
//! archive; and the table restored from the bucket alone has, partition by partition, the
//! live replicas' state digest at the same LSN.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb::replica::ReplicaStore as _;
use ddb_tests::s3::{S3Server, S3sFs};
use ddb_tests::{LocalUp, ddbctl_json, internal_call, kill_node, parse_export, restart_node};
use serde_json::Value;

const NODES: u16 = 3;

/// boto3 makes a table and writes to it: puts, conditional updates, deletes, a batch.
const WRITES: &str = r##"
import sys, boto3
ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
ddb.create_table(TableName="inventory",
    KeySchema=[{"AttributeName": "sku", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "sku", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST")
ddb.get_waiter("table_exists").wait(TableName="inventory")
for i in range(150):
    for attempt in range(20):
        try:
            ddb.put_item(TableName="inventory", Item={"sku": {"S": f"sku-{i}"},
                "count": {"N": str(i)}, "bins": {"L": [{"S": f"b{i % 7}"}]}})
            break
        except ddb.exceptions.ClientError as e:
            # A table that has just been created may answer ServiceUnavailable for a moment.
            if e.response["Error"]["Code"] != "ServiceUnavailable" or attempt == 19:
                raise
            import time; time.sleep(0.2)
for i in range(0, 150, 3):
    ddb.update_item(TableName="inventory", Key={"sku": {"S": f"sku-{i}"}},
        UpdateExpression="ADD #c :one", ConditionExpression="attribute_exists(sku)",
        ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":one": {"N": "1"}})
for i in range(0, 150, 10):
    ddb.delete_item(TableName="inventory", Key={"sku": {"S": f"sku-{i}"}})
ddb.batch_write_item(RequestItems={"inventory": [{"PutRequest": {"Item": {
    "sku": {"S": f"batch-{i}"}, "count": {"N": "0"}}}} for i in range(25)]})
"##;

/// Waits (within `limit`) until `done` holds.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_new_users_cluster_archives_alarms_heals_proves_and_restores() {
    let python = std::env::var("DDB_PYTHON").unwrap_or_else(|_| {
        panic!("DDB_PYTHON must name a Python with boto3: run the tests with scripts/test")
    });
    let work = tempfile::tempdir().unwrap();
    let s3 = S3sFs::start(&work.path().join("s3"));
    let archive = s3.archive_url("ddb-e2e", "local");
    s3.init_bucket(&archive, &["--no-versioning"]);
    let s3_env = s3.owned_env();
    let env: Vec<(&str, &str)> = s3_env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();

    let dir = work.path().join("cluster");
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start_whole(
        &dir,
        base,
        NODES,
        &["--archive", &archive, "--alarm-window-scale", "0.01"],
        &env,
    );
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let endpoint = format!("http://127.0.0.1:{base}");
    let canaries = (0..NODES)
        .map(|i| format!("http://127.0.0.1:{}", base + 400 + i))
        .collect::<Vec<_>>()
        .join(",");
    let scrubber = format!("http://127.0.0.1:{}", base + 300);

    // boto3 writes through node 1.
    let wrote = std::process::Command::new(&python)
        .args(["-c", WRITES, &endpoint, &key_id, &secret])
        .output()
        .unwrap();
    assert!(
        wrote.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&wrote.stderr)
    );

    // Node 3 dies: the alarms for it fire.
    let victim = format!("http://127.0.0.1:{}", base + 2);
    let alarms = || {
        let (_, answer) = ddbctl_json(&["alarms", "ls", "--canary", &canaries]);
        answer["alarms"].as_array().unwrap().clone()
    };
    let firing_for_victim = |alarms: &[Value]| -> Vec<String> {
        alarms
            .iter()
            .filter(|alarm| {
                alarm["state"] == "firing"
                    && (alarm["labels"]["endpoint"] == victim.as_str()
                        || alarm["labels"]["node"] == victim.as_str())
            })
            .map(|alarm| alarm["name"].as_str().unwrap().to_string())
            .collect()
    };
    kill_node(&dir, 3);
    wait_for(
        Duration::from_secs(60),
        "page-fast and node-down fire",
        || {
            let firing = firing_for_victim(&alarms());
            firing.iter().any(|name| name == "page-fast")
                && firing.iter().any(|name| name == "node-down")
        },
    );
    // Back: the page and node-down resolve (the slower alarms keep the outage in their
    // longer windows for minutes, as they should), and the node catches up.
    let _restarted = restart_node(&dir, 3, &[]);
    wait_for(
        Duration::from_secs(120),
        "page-fast and node-down resolve",
        || {
            let firing = firing_for_victim(&alarms());
            !firing
                .iter()
                .any(|name| name == "page-fast" || name == "node-down")
        },
    );
    let (_, history) = ddbctl_json(&["alarms", "history", "--canary", &canaries]);
    assert!(
        history.as_array().unwrap().iter().any(|entry| {
            entry["name"] == "page-fast"
                && entry["event"] == "resolved"
                && entry["labels"]["endpoint"] == victim.as_str()
        }),
        "{history}"
    );

    // The scrubber proves every partition equal across its replicas and the archive.
    wait_for(Duration::from_secs(180), "every partition proven", || {
        let (_, status) = ddbctl_json(&["scrub", "run", "--deep", "--scrubber", scrubber.as_str()]);
        let partitions = status["partitions"].as_object().unwrap();
        !partitions.is_empty()
            && partitions.values().all(|p| {
                p["peers"]["outcome"] == "agree"
                    && p["archive"]["outcome"] == "agree"
                    && p["at_rest"]["outcome"] == "agree"
            })
    });

    // The table restored from the bucket alone equals the live replicas, partition by
    // partition, at the same LSN.
    let into = work.path().join("restored");
    let mut args = vec![
        "-o".to_string(),
        "json".to_string(),
        "archive".to_string(),
        "restore".to_string(),
        "--archive".to_string(),
        archive.clone(),
        "--table".to_string(),
        "inventory".to_string(),
        "--into".to_string(),
        into.display().to_string(),
    ];
    let restored = std::process::Command::new(ddb_tests::binary("ddbctl"))
        .args(args.drain(..))
        .envs(s3_env.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let report: Value = serde_json::from_slice(&restored.stdout).unwrap();
    let token = ddb::server::cluster_internal_token(
        std::fs::read_to_string(dir.join("cluster.secret"))
            .unwrap()
            .trim(),
    );
    let partitions = report["partitions"].as_array().unwrap();
    assert!(!partitions.is_empty(), "{report}");
    for partition in partitions {
        let id = partition["partition_id"].as_u64().unwrap();
        let lsn = partition["final_lsn"].as_u64().unwrap();
        let store = ddb::replica::FjallReplicaStore::open_existing(
            &into.join("replicas").join(id.to_string()),
        )
        .unwrap();
        let restored = store.applied_state();
        assert_eq!(restored.applied_lsn.0, lsn);
        // Every node holds a full replica of every partition of a three-node cluster.
        for port in base..base + NODES {
            let (code, body) = internal_call(
                port,
                &token,
                "GET",
                &format!("/internal/archive/digest?partition={id}&at_most={lsn}"),
            );
            assert_eq!(code, 200, "{body}");
            let (at, live) = serde_json::from_str::<ddb::server::DigestPoint>(&body)
                .ok()
                .and_then(|point| point.decode())
                .unwrap_or_else(|| panic!("no digest of partition {id} at {lsn}: {body}"));
            assert_eq!(at.0, lsn, "node on port {port}, partition {id}");
            assert_eq!(
                restored.digest, live,
                "partition {id}: the restore differs from the replica on port {port}"
            );
        }
    }
    assert!(cluster.interrupt_and_wait().success());
}
