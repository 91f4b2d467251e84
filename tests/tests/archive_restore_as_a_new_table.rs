//! `ddbctl archive restore --as-table` against a real `ddbd`: the table comes back under a new
//! name with the source's key schema and billing, holding exactly the items the archived
//! partitions held, read back with Scan through the DynamoDB API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use ddb::client::Client;
use ddb::item::{decode_item, encode_item, item_from_json};
use ddb_tests::NodeProcess;
use ddb_tests::archive_fixture::TableArchive;
use serde_json::{Value, json};

/// Every item of `table`, as canonical encodings, sorted.
fn scan_all(client: &Client, table: &str) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut request = json!({"TableName": table});
    loop {
        let answer = client.call("Scan", &request).unwrap();
        for item in answer["Items"].as_array().unwrap() {
            items.push(encode_item(&item_from_json(item).unwrap()));
        }
        match answer.get("LastEvaluatedKey") {
            Some(key) if !key.is_null() => request["ExclusiveStartKey"] = key.clone(),
            _ => break,
        }
    }
    items.sort();
    items
}

/// Runs `ddbctl archive restore --archive URL --table orders --as-table orders_restored ARGS…`
/// against the node, signed with its key.
fn restore(url: &str, endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(ddb_tests::binary("ddbctl"))
        .args(["archive", "restore", "--archive", url, "--table", "orders"])
        .args(["--as-table", "orders_restored"])
        .args(args)
        .args(["--endpoint", endpoint])
        .args(["--access-key-id", NodeProcess::ACCESS_KEY_ID])
        .env("AWS_SECRET_ACCESS_KEY", NodeProcess::SECRET_ACCESS_KEY)
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap()
}

#[test]
fn restore_as_a_new_table_writes_every_archived_item_through_the_api() {
    let archive_dir = tempfile::tempdir().unwrap();
    let fixture = TableArchive::build(archive_dir.path());
    let node = NodeProcess::start(&ddb_tests::binary("ddbd")).unwrap();

    let output = restore(&fixture.url, node.endpoint(), &["--output", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{}", node.log());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    let mut expected: Vec<Vec<u8>> = fixture
        .partitions
        .iter()
        .flat_map(|history| history.state_at(history.last_lsn()).1)
        .map(|(_, item)| encode_item(&decode_item(&item).unwrap()))
        .collect();
    expected.sort();
    assert_eq!(report["items_written"], expected.len());
    assert_eq!(report["as_table"], "orders_restored");

    let port = node.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let client = ddb_tests::client(
        port,
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    let described = client
        .call("DescribeTable", &json!({"TableName": "orders_restored"}))
        .unwrap();
    assert_eq!(
        described["Table"]["KeySchema"],
        json!([
            {"AttributeName": "customer", "KeyType": "HASH"},
            {"AttributeName": "order", "KeyType": "RANGE"},
        ])
    );
    assert_eq!(
        described["Table"]["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    assert_eq!(scan_all(&client, "orders_restored"), expected);

    // A second restore under the same name refuses before doing anything.
    let again = restore(&fixture.url, node.endpoint(), &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
