//! A four-node cluster (AZs a, b, c, a) loses a node for good: every group it was in gets a log
//! replica on the spare node, rebuilt into a full replica, and drops the lost one; no write is
//! lost and the three replicas of every group hold the same items.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb::client::Client;
use ddb_tests::{LocalUp, client, parse_export};
use serde_json::{Value, json};

const NODES: u16 = 4;
const LOST: u32 = 3;
const ITEMS: usize = 60;
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_lost_replica_is_replaced_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &["--heal-after-ms", "2000"]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let first = client(base, &key_id, &secret);
    first
        .call(
            "CreateTable",
            &json!({
                "TableName": "heal",
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        )
        .unwrap();
    for index in 0..ITEMS / 2 {
        put(&first, index);
    }

    let killed_at = Instant::now();
    ddb_tests::kill_node(dir.path(), LOST);
    // Writes go on while the group heals (retrying while a group elects a leader).
    let second = client(base + 1, &key_id, &secret);
    for index in ITEMS / 2..ITEMS {
        put(&second, index);
    }

    let healed_after = wait_until_healed(base, killed_at);
    println!("every group healed {healed_after:?} after the kill");
    for index in 0..ITEMS {
        let item = second
            .call(
                "GetItem",
                &json!({"TableName": "heal", "Key": {"k": {"S": format!("k{index}")}}, "ConsistentRead": true}),
            )
            .unwrap();
        assert_eq!(
            item["Item"]["v"]["N"],
            json!(index.to_string()),
            "item {index} after healing"
        );
    }
    assert_replicas_equal(base);
    assert!(cluster.interrupt_and_wait().success());
}

fn put(client: &Client, index: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = client.call(
            "PutItem",
            &json!({"TableName": "heal", "Item": {"k": {"S": format!("k{index}")}, "v": {"N": index.to_string()}}}),
        );
        match result {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("put k{index}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("put k{index}: {e}"),
        }
    }
}

fn status(port: u16) -> Option<Value> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /cluster/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let body = response.split("\r\n\r\n").nth(1)?;
    serde_json::from_str(body).ok()
}

/// Every group of the table, seen from node 1: three full members, none of them the lost node,
/// and a leader.
fn wait_until_healed(base: u16, killed_at: Instant) -> Duration {
    loop {
        let healed = status(base).is_some_and(|status| {
            let groups: Vec<&Value> = status["groups"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|group| group["table"] == json!("heal") || group["group"] == json!("meta"))
                .collect();
            !groups.is_empty()
                && groups.iter().all(|group| {
                    let members = group["members"].as_array().unwrap();
                    members.len() == 3
                        && members.iter().all(|member| {
                            member["id"] != json!(LOST) && member["role"] == json!("full")
                        })
                        && !group["leader"].is_null()
                })
        });
        if healed {
            return killed_at.elapsed();
        }
        assert!(
            killed_at.elapsed() < HEAL_TIMEOUT,
            "not healed {HEAL_TIMEOUT:?} after the kill: {:#}",
            status(base).unwrap_or(Value::Null)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The replicas of every group reach the same applied LSN with the same digest.
fn assert_replicas_equal(base: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut by_group: std::collections::BTreeMap<String, Vec<(u64, String)>> =
            std::collections::BTreeMap::new();
        for port in base..base + NODES {
            if port == base + u16::try_from(LOST - 1).unwrap() {
                continue;
            }
            let Some(status) = status(port) else { continue };
            for group in status["groups"].as_array().unwrap() {
                let me = &status["node_id"];
                let member = group["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| &m["id"] == me);
                if member {
                    by_group
                        .entry(group["group"].as_str().unwrap().to_string())
                        .or_default()
                        .push((
                            group["digest_lsn"].as_u64().unwrap(),
                            group["digest"].as_str().unwrap().to_string(),
                        ));
                }
            }
        }
        let equal = by_group.values().all(|replicas| {
            replicas.len() == 3 && replicas.iter().all(|replica| replica == &replicas[0])
        });
        if equal && !by_group.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: {by_group:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
