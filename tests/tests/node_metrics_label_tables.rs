//! A real ddbd counts requests per table under the canary's label names: a table the catalog
//! holds by name, anything else (a missing table, a request naming none) as `-`, so clients
//! cannot mint series.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::{NodeProcess, binary, client, create_hash_table, http_get};
use serde_json::json;

#[test]
fn requests_are_counted_per_existing_table_and_unknown_names_collapse() {
    let node = NodeProcess::start(&binary("ddbd")).unwrap();
    let writer = client(
        node.port(),
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    create_hash_table(&writer, "labelled");
    writer
        .call(
            "PutItem",
            &json!({"TableName": "labelled", "Item": {"k": {"S": "a"}}}),
        )
        .unwrap();
    for missing in ["nope-1", "nope-2"] {
        writer
            .call(
                "GetItem",
                &json!({"TableName": missing, "Key": {"k": {"S": "a"}}}),
            )
            .unwrap_err();
    }
    writer.call("ListTables", &json!({})).unwrap();
    let metrics = http_get(node.port(), "/metrics").unwrap();
    for line in [
        r#"ddb_requests_total{table="labelled",op="PutItem",outcome="ok"} 1"#,
        r#"ddb_requests_total{table="-",op="GetItem",outcome="client_error"} 2"#,
        r#"ddb_requests_total{table="-",op="ListTables",outcome="ok"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("nope-"), "{metrics}");
}
