//! Routers do constant work: every request naming a table also asks the metadata group about
//! it, whether the router's catalog had the table (a hit) or not (a miss), so the metadata
//! group's load follows request load whatever the hit rate, and the metrics show it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb_tests::{LocalUp, client, http_get, parse_export};
use serde_json::json;

const NODES: u16 = 3;
const REQUESTS: u64 = 60;

fn counter(port: u16, name: &str) -> u64 {
    let text = http_get(port, "/metrics").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_request_queries_the_metadata_group_hit_or_miss() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &[]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let router = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&router, "known");
    let served_before: u64 = (base..base + NODES)
        .map(|port| counter(port, "ddb_metadata_lookups_served_total"))
        .sum();
    let sent_before = counter(base, "ddb_router_metadata_lookups_sent_total");
    // Hits: a table the router knows. Misses: one nobody knows.
    for index in 0..REQUESTS {
        let key = json!({"k": {"S": format!("k{index}")}});
        router
            .call("GetItem", &json!({"TableName": "known", "Key": key}))
            .unwrap();
        let missing = router.call("GetItem", &json!({"TableName": "unknown", "Key": key}));
        assert!(missing.is_err(), "a table that does not exist");
    }
    assert!(counter(base, "ddb_router_cache_hits_total") >= REQUESTS);
    assert!(counter(base, "ddb_router_cache_misses_total") >= REQUESTS);
    let sent = counter(base, "ddb_router_metadata_lookups_sent_total") - sent_before;
    assert_eq!(sent, 2 * REQUESTS, "one lookup per request, hit or miss");
    // The lookups are asynchronous: wait for them to land on the metadata replicas.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served: u64 = (base..base + NODES)
            .map(|port| counter(port, "ddb_metadata_lookups_served_total"))
            .sum::<u64>()
            - served_before;
        if served >= 2 * REQUESTS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the metadata group served {served} lookups for {} requests",
            2 * REQUESTS
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cluster.interrupt_and_wait().success());
}

/// A table created through one node is usable through every other node the moment CreateTable
/// returns: a node that has not yet seen it checks with the metadata group before answering
/// "not found".
#[test]
fn a_new_table_is_usable_through_every_node_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &[]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let clients: Vec<_> = (0..NODES)
        .map(|offset| client(base + offset, &key_id, &secret))
        .collect();
    for round in 0..3 {
        let name = format!("fresh{round}");
        ddb_tests::create_hash_table(&clients[0], &name);
        for (node, other) in clients.iter().enumerate().skip(1) {
            other
                .call(
                    "PutItem",
                    &json!({"TableName": name, "Item": {"k": {"S": format!("from{node}")}}}),
                )
                .unwrap_or_else(|e| panic!("PutItem on {name} through node {}: {e}", node + 1));
        }
    }
    assert!(cluster.interrupt_and_wait().success());
}
