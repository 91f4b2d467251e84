//! `Node::handle` on arbitrary requests: every malformed request gets a client error (4xx),
//! never a panic nor a server fault (`InternalServerError`, `ServiceUnavailable`).
//!
//! Input: the first byte picks the operation, `OPERATIONS[(byte - b'A') % 13]`, so `A` is
//! CreateTable, `F` PutItem and so on; the rest is the JSON body (inputs that are not JSON are
//! skipped). One node serves the whole process; it always holds the tables `fuzz-hash`
//! (key `pk` S) and `fuzz-range` (keys `pk` S, `sk` N), which the seed corpus
//! `fuzz/corpus/request/` uses.

#![no_main]

use std::sync::OnceLock;

use ddb::admission::AdmissionLimits;
use ddb::node::{Node, NodeOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const OPERATIONS: [&str; 13] = [
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "UpdateTable",
    "DeleteTable",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
];

/// Tables the seed requests use, recreated whenever a fuzzed request deletes them.
const BASE_TABLES: [&str; 2] = ["fuzz-hash", "fuzz-range"];

/// Tables created by fuzzed requests beyond this many are dropped, to keep the node small.
const MAX_TABLES: usize = 8;

fn create_table_request(name: &str) -> Value {
    let range = name == "fuzz-range";
    let mut definitions = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
    let mut schema = vec![json!({"AttributeName": "pk", "KeyType": "HASH"})];
    if range {
        definitions.push(json!({"AttributeName": "sk", "AttributeType": "N"}));
        schema.push(json!({"AttributeName": "sk", "KeyType": "RANGE"}));
    }
    json!({
        "TableName": name,
        "AttributeDefinitions": definitions,
        "KeySchema": schema,
        "BillingMode": "PAY_PER_REQUEST",
    })
}

/// Puts the node back in the shape the seeds expect: base tables present, few others.
fn reset_tables(node: &Node) {
    for name in BASE_TABLES {
        if node.catalog().table(name).is_none() {
            let created = node.handle("CreateTable", create_table_request(name));
            assert!(created.is_ok(), "creating {name}: {created:?}");
        }
    }
    let tables = node.catalog().tables();
    if tables.len() > MAX_TABLES {
        for table in tables
            .iter()
            .filter(|t| !BASE_TABLES.contains(&t.name.as_str()))
        {
            let deleted = node.handle("DeleteTable", json!({"TableName": table.name}));
            assert!(deleted.is_ok(), "deleting {}: {deleted:?}", table.name);
        }
    }
}

fn node() -> &'static Node {
    static NODE: OnceLock<(tempfile::TempDir, Node)> = OnceLock::new();
    let (_, node) = NODE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory for the fuzzed node");
        let options = NodeOptions {
            on_demand_partitions: 2,
            // Inputs create, describe and delete tables thousands of times a second, and the
            // harness must be able to reset its tables: no control-plane rate here.
            admission: AdmissionLimits {
                control_plane_per_second: 0,
                ..AdmissionLimits::default()
            },
            ..NodeOptions::default()
        };
        let node = Node::open(dir.path(), options).expect("opening a fresh node");
        (dir, node)
    });
    node
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let operation = OPERATIONS[usize::from(selector.wrapping_sub(b'A')) % OPERATIONS.len()];
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let node = node();
    reset_tables(node);
    if let Err(error) = node.handle(operation, body.clone()) {
        assert!(
            !error.code.is_server_fault(),
            "{operation} answered a server fault {error} to {body}"
        );
    }
});
