//! The archive follows a table across a split: a real `ddbd` with a `ddb-archiver` beside it
//! splits a partition between two rounds of writes, and `ddbctl archive restore` gives back
//! - as of a time before the split: the parent alone, holding the first round (its last entries
//!   archived after the switch, before the node retired it);
//! - at the newest archived entry: the two children, holding the first round less what was
//!   deleted after the split plus the second round — each child from its own log only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use ddb::client::Client;
use ddb_tests::{ArchivedNode, NodeProcess};
use serde_json::{Value, json};

/// Runs ddbctl with the node's key; answers the exit code and the JSON it printed.
fn ddbctl(node: &NodeProcess, args: &[&str]) -> (i32, Value) {
    let output = Command::new(ddb_tests::binary("ddbctl"))
        .args(args)
        .args(["--endpoint", node.endpoint(), "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", NodeProcess::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", NodeProcess::SECRET_ACCESS_KEY)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "ddbctl {args:?} printed no JSON:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap(), value)
}

/// Every key of `table`, by a consistent Scan.
fn scan_keys(client: &Client, table: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut request = json!({"TableName": table, "ConsistentRead": true});
    loop {
        let answer = client.call("Scan", &request).unwrap();
        for item in answer["Items"].as_array().unwrap() {
            keys.insert(item["k"]["S"].as_str().unwrap().to_string());
        }
        match answer.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => request["ExclusiveStartKey"] = key.clone(),
            _ => return keys,
        }
    }
}

fn put(client: &Client, key: &str) {
    client
        .call(
            "PutItem",
            &json!({"TableName": "orders", "Item": {"k": {"S": key}, "v": {"S": "x".repeat(40)}}}),
        )
        .unwrap();
}

/// `ddbctl archive restore` of table `orders` as the new table `as_table` (with `target`: none
/// for the newest state, or `--to-time T`); its report, once it succeeded.
fn restore(archived: &ArchivedNode, as_table: &str, target: &[&str]) -> Value {
    let mut args = vec!["archive", "restore", "--archive", archived.url.as_str()];
    args.extend(["--table", "orders", "--as-table", as_table]);
    args.extend_from_slice(target);
    let (code, report) = ddbctl(&archived.node, &args);
    assert_eq!(code, 0, "{report}\n{}", archived.archiver.log());
    report
}

/// The partitions a restore report names, sorted.
fn restored_partitions(report: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = report["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no partitions in {report}"))
        .iter()
        .map(|p| p["partition_id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_restore_before_a_split_finds_the_parent_and_after_it_the_children() {
    // Admission off: the one-partition table below is provisioned far under this load.
    let archived = ArchivedNode::start(&[("DDB_ADMISSION_MODE", "off")], None, &[], "");
    let node = &archived.node;
    let client = archived.client();
    client
        .call(
            "CreateTable",
            &json!({"TableName": "orders", "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}]}),
        )
        .unwrap();
    let first: Vec<String> = (0..120).map(|i| format!("first-{i}")).collect();
    for key in &first {
        put(&client, key);
    }
    // The split does not wait for the archive: the parent's last entries and its fence are
    // archived after the table switched to the children.
    let parent = node
        .archive_partitions()
        .partitions
        .iter()
        .find(|p| p.table_id != 0)
        .unwrap()
        .partition_id;
    // A point in time after the first round and before the split.
    std::thread::sleep(Duration::from_millis(50));
    let before_split = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(50));

    let parent_text = parent.to_string();
    let (code, split) = ddbctl(
        node,
        &[
            "partition",
            "split",
            "--table",
            "orders",
            "--partition",
            &parent_text,
            "--at",
            "8000000000000000",
        ],
    );
    assert_eq!(code, 0, "{split}\n{}", node.log());
    let mut children: Vec<u64> = split["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["Partition"].as_u64().unwrap())
        .collect();
    children.sort_unstable();

    // After the split: a second round, and some of the first deleted.
    let second: Vec<String> = (0..80).map(|i| format!("second-{i}")).collect();
    for key in &second {
        put(&client, key);
    }
    for key in &first[..30] {
        client
            .call(
                "DeleteItem",
                &json!({"TableName": "orders", "Key": {"k": {"S": key}}}),
            )
            .unwrap();
    }
    let now: BTreeSet<String> = first[30..].iter().chain(&second).cloned().collect();
    assert_eq!(scan_keys(&client, "orders"), now);
    node.wait_archived(Duration::from_secs(30), || archived.archiver.log());
    // Archived through its fence, the parent is retired: its files leave the node.
    let parent_wal = node.data_dir().join("wal").join(parent.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while parent_wal.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the parent was not retired:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // As of before the split: the parent, with the first round.
    let report = restore(&archived, "orders_before", &["--to-time", &before_split]);
    assert_eq!(restored_partitions(&report), vec![parent], "{report}");
    let expected: BTreeSet<String> = first.iter().cloned().collect();
    assert_eq!(scan_keys(&client, "orders_before"), expected);

    // Newest: the children, each rebuilt from its own log, together holding the table now.
    let report = restore(&archived, "orders_after", &[]);
    assert_eq!(restored_partitions(&report), children, "{report}");
    assert_eq!(scan_keys(&client, "orders_after"), now);
}
