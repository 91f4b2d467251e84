//! A real ddbd times every stage of a write (`ddb_write_stage_seconds{stage}` on `/metrics`):
//! each acknowledged write passes every writer stage once; a write whose condition fails
//! takes the lock but proposes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::{NodeProcess, binary, client, create_hash_table, http_get};
use serde_json::json;

/// The count of `stage` in a `/metrics` text.
fn stage_count(metrics: &str, stage: &str) -> u64 {
    let prefix = format!("ddb_write_stage_seconds_count{{stage=\"{stage}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no count for {stage} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[test]
fn every_write_is_timed_stage_by_stage() {
    let node = NodeProcess::start(&binary("ddbd")).unwrap();
    let writer = client(
        node.port(),
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    create_hash_table(&writer, "timed");
    let before = http_get(node.port(), "/metrics").unwrap();
    for stage in ["handoff", "lock", "decide", "commit", "wake"] {
        assert_eq!(
            stage_count(&before, stage),
            0,
            "{stage}: nothing written yet"
        );
    }
    for i in 0..20 {
        writer
            .call(
                "PutItem",
                &json!({"TableName": "timed", "Item": {"k": {"S": format!("key-{i}")}}}),
            )
            .unwrap();
    }
    // A failed condition: decided under the lock, nothing proposed.
    writer
        .call(
            "PutItem",
            &json!({
                "TableName": "timed",
                "Item": {"k": {"S": "key-0"}},
                "ConditionExpression": "attribute_not_exists(k)",
            }),
        )
        .unwrap_err();

    let metrics = http_get(node.port(), "/metrics").unwrap();
    assert_eq!(stage_count(&metrics, "handoff"), 21);
    assert_eq!(stage_count(&metrics, "lock"), 21);
    for stage in ["decide", "commit", "wake"] {
        assert_eq!(stage_count(&metrics, stage), 20, "{stage}");
    }
    // One client, one write at a time: each write needed its own flush and apply.
    for stage in ["flush", "syncer_lock", "apply"] {
        assert!(stage_count(&metrics, stage) >= 20, "{stage}\n{metrics}");
    }
    // A histogram: the +Inf bucket holds every observation.
    assert!(
        metrics
            .lines()
            .any(|l| l == "ddb_write_stage_seconds_bucket{stage=\"commit\",le=\"+Inf\"} 20"),
        "{metrics}"
    );
}
