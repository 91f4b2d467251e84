//! A four-node cluster (AZs a, b, c, a) loses a node for good: every group it was in gets a log
//! replica on the spare node, rebuilt into a full replica, and drops the lost one; no write is
//! lost and the three replicas of every group hold the same items.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ddb::client::Client;
use ddb_tests::{LocalUp, client, parse_export};
use serde_json::{Value, json};

const NODES: u16 = 4;
const LOST: u32 = 3;
const ITEMS: usize = 60;
const HEAL_TIMEOUT: Duration = Duration::from_secs(60);

/// The two clusters of this file run one after the other (four nodes each on two cores).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_lost_replica_is_replaced_and_nothing_is_lost() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &["--heal-after-ms", "2000"]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let first = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&first, "heal");
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
        let item = get(&second, index);
        assert_eq!(
            item["Item"]["v"]["N"],
            json!(index.to_string()),
            "item {index} after healing"
        );
    }
    assert_replicas_equal(base);
    assert!(cluster.interrupt_and_wait().success());
}

/// `ddbctl partition heal` replaces a healthy member on an operator's word (automatic healing
/// is off here), through whichever node it asks.
#[test]
fn an_operator_replaces_a_member_with_partition_heal() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &["--heal-after-ms", "600000"]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let first = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&first, "heal");
    for index in 0..10 {
        put(&first, index);
    }
    // Pick a table group and a member that does not lead it.
    let before = status(base).unwrap();
    let group = before["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["table"] == json!("heal") && !group["leader"].is_null())
        .unwrap()
        .clone();
    let group_id = group["partition_id"].as_u64().unwrap();
    let replaced = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["id"].as_u64().unwrap())
        .find(|id| json!(id) != group["leader"])
        .unwrap();
    let output = std::process::Command::new(ddb_tests::binary("ddbctl"))
        .args(["partition", "heal", "--group", &group_id.to_string()])
        .args(["--replace", &replaced.to_string()])
        .args(["--endpoint", &format!("http://127.0.0.1:{}", base + 3)])
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "partition heal failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + HEAL_TIMEOUT;
    loop {
        // As the group's leader sees it (a replaced replica is not told and keeps its view).
        let members: Option<Vec<(u64, String)>> =
            (base..base + NODES).filter_map(status).find_map(|status| {
                status["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|group| {
                        group["partition_id"] == json!(group_id)
                            && group["state"] == json!("leader")
                    })
                    .map(|group| {
                        group["members"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|m| {
                                (
                                    m["id"].as_u64().unwrap(),
                                    m["role"].as_str().unwrap().to_string(),
                                )
                            })
                            .collect()
                    })
            });
        if let Some(members) = &members
            && members.len() == 3
            && members
                .iter()
                .all(|(id, role)| *id != replaced && role == "full")
        {
            break;
        }
        assert!(Instant::now() < deadline, "not replaced: {members:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for index in 0..10 {
        // Through node 1 too, which may be the replaced replica: until a member tells it so,
        // it answers 503 and the client retries.
        let item = get(&first, index);
        assert_eq!(item["Item"]["v"]["N"], json!(index.to_string()));
    }
    assert_replicas_equal(base);
    assert!(cluster.interrupt_and_wait().success());
}

/// A strongly consistent read of item `index`, retried while the node answers 503.
fn get(client: &Client, index: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = client.call(
            "GetItem",
            &json!({"TableName": "heal", "Key": {"k": {"S": format!("k{index}")}}, "ConsistentRead": true}),
        );
        match result {
            Ok(item) => return item,
            Err(e) if Instant::now() < deadline => {
                eprintln!("get k{index}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("get k{index}: {e}"),
        }
    }
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
    serde_json::from_str(&ddb_tests::http_get(port, "/cluster/status")?).ok()
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

/// The replicas of every group (its members as its leader sees them) reach the same applied
/// LSN with the same digest.
fn assert_replicas_equal(base: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let statuses: Vec<Value> = (base..base + NODES).filter_map(status).collect();
        let mut members: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut replicas: BTreeMap<String, BTreeMap<u64, (u64, String)>> = BTreeMap::new();
        for status in &statuses {
            let me = status["node_id"].as_u64().unwrap();
            for group in status["groups"].as_array().unwrap() {
                let name = group["group"].as_str().unwrap().to_string();
                if group["state"] == json!("leader") {
                    let ids = group["members"].as_array().unwrap();
                    members.insert(name.clone(), ids.iter().map(|m| m["id"].clone()).collect());
                }
                replicas.entry(name).or_default().insert(
                    me,
                    (
                        group["digest_lsn"].as_u64().unwrap(),
                        group["digest"].as_str().unwrap().to_string(),
                    ),
                );
            }
        }
        let equal = !members.is_empty()
            && members.iter().all(|(group, ids)| {
                let states: Vec<&(u64, String)> = ids
                    .iter()
                    .filter_map(|id| replicas.get(group)?.get(&id.as_u64()?))
                    .collect();
                states.len() == 3 && states.iter().all(|state| *state == states[0])
            });
        if equal {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not converge: members {members:?}, replicas {replicas:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
