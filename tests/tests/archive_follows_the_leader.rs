//! `ddbctl local up` runs an archiver beside each of three nodes; only the one beside a
//! partition's leader uploads. A node is killed under writes: leadership moves, the archivers
//! beside the new leaders take over from the archive's tail, and in the end the archive replays,
//! partition by partition, to exactly the state (LSN and digest) the live leaders hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use ddb::archive::ArchiveUrl;
use ddb_tests::{LocalUp, client, http_get, kill_node, parse_export, replay_archive};
use serde_json::Value;

const NODES: u16 = 3;

/// The node (1-based, port order) that leads the most groups.
fn busiest_leader(ports: &[u16]) -> u32 {
    let mut best = (0, 1);
    for (index, port) in ports.iter().enumerate() {
        let body = http_get(*port, "/cluster/status").unwrap();
        let status: Value = serde_json::from_str(&body).unwrap();
        let led = status["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|group| group["state"] == "leader")
            .count();
        if led > best.0 {
            best = (led, u32::try_from(index).unwrap() + 1);
        }
    }
    assert!(best.0 > 0, "no node leads anything");
    best.1
}

/// `(partition id, applied LSN, digest fingerprint)` of every group's leader, from the live
/// nodes' `/cluster/status`.
fn leaders(ports: &[u16]) -> Vec<(u64, u64, String)> {
    let mut found = Vec::new();
    for port in ports {
        let Some(body) = http_get(*port, "/cluster/status") else {
            continue;
        };
        let status: Value = serde_json::from_str(&body).unwrap();
        for group in status["groups"].as_array().into_iter().flatten() {
            if group["state"] == "leader" {
                found.push((
                    group["partition_id"].as_u64().unwrap(),
                    group["digest_lsn"].as_u64().unwrap(),
                    group["digest"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_moves_with_leadership_and_the_archive_replays_to_the_leaders_state() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start(dir.path(), base, NODES, &["--heal-after-ms", "0"]);
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let first = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&first, "followed");
    let put = |writer: &ddb::client::Client, index: usize| {
        let request = serde_json::json!({"TableName": "followed",
            "Item": {"k": {"S": format!("k{index}")}, "v": {"N": index.to_string()}}});
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match writer.call("PutItem", &request) {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("put {index}: {e}"),
            }
        }
    };
    for index in 0..60 {
        put(&first, index);
    }
    // Killing the node that leads the most groups moves their leadership, and their
    // archiving, to the other two.
    let all: Vec<u16> = (base..base + NODES).collect();
    let victim = busiest_leader(&all);
    kill_node(dir.path(), victim);
    let writer = client(
        all.iter()
            .copied()
            .find(|port| u32::from(port - base) + 1 != victim)
            .unwrap(),
        &key_id,
        &secret,
    );
    for index in 60..160 {
        put(&writer, index);
    }

    let archive = ArchiveUrl::parse(&format!("file://{}", dir.path().join("archive").display()))
        .unwrap()
        .open_archive(|_| None)
        .unwrap();
    let live_ports: Vec<u16> = all
        .iter()
        .copied()
        .filter(|port| u32::from(port - base) + 1 != victim)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let leaders = leaders(&live_ports);
        let replayed = replay_archive(&archive).await;
        let mismatches: Vec<String> = leaders
            .iter()
            .filter_map(|(partition, lsn, fingerprint)| {
                let archived = replayed.iter().find(|r| r.partition_id == *partition);
                let status_fingerprint = |r: &ddb_tests::Replayed| {
                    blake3::hash(&r.digest.to_bytes()).to_hex()[..32].to_string()
                };
                let matches = archived
                    .is_some_and(|r| r.lsn.0 == *lsn && status_fingerprint(r) == *fingerprint);
                (!matches).then(|| {
                    format!(
                        "partition {partition}: leader at {lsn} {fingerprint}, archive at {:?}",
                        archived.map(|r| (r.lsn.0, status_fingerprint(r)))
                    )
                })
            })
            .collect();
        // Every group has a leader again (the metadata group and the table's partitions).
        if leaders.len() >= 5 && mismatches.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the archive did not reach the leaders' state: {mismatches:?} (leaders {leaders:?})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cluster.interrupt_and_wait().success());
}
