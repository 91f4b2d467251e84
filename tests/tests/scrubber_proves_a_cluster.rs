//! A real `ddb-scrubber` against a three-node `ddbctl local up` cluster and its archive: after
//! writes, `ddbctl scrub run --deep` shows every partition proven equal across its three
//! replicas and the archive, with no copy rotted at rest, and raises nothing. Then, while a
//! client keeps writing, faults are injected, each caught and pinned on the right copy: a
//! replica made to diverge (checks 1 and 2 name its node), an item flipped at rest (check 3
//! names its node); `ddbctl scrub repair` rebuilds both from good copies and the next passes
//! prove them equal again. Last, a corrupt chunk in the archive is reported as archive damage,
//! not as a replica fault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ddb_tests::scrubber::{health, proven, scrub, scrub_run, scrub_until};
use ddb_tests::{LocalUp, client, internal_call, parse_export};

const NODES: u16 = 3;

/// A node that holds a full replica of `partition` and does not lead it.
fn follower_of(base: u16, token: &str, partition: u64) -> u32 {
    for port in base..base + NODES {
        let (_, body) = internal_call(port, token, "GET", "/internal/scrub/replicas");
        let replicas: Vec<ddb::node::ScrubReplica> = serde_json::from_str(&body).unwrap();
        if let Some(replica) = replicas
            .iter()
            .find(|r| r.partition_id == partition && r.full_replica && !r.leader)
        {
            return replica.node_id;
        }
    }
    panic!("no follower of partition {partition}");
}

#[test]
fn the_scrubber_proves_replicas_and_archive_equal_and_names_archive_damage() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start_with_env(
        dir.path(),
        base,
        NODES,
        &[],
        &[("DDB_FAULT_INJECTION", "1")],
    );
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let writer = client(base, &key_id, &secret);
    ddb_tests::create_hash_table(&writer, "scrubbed");
    for index in 0..100 {
        writer
            .call(
                "PutItem",
                &serde_json::json!({"TableName": "scrubbed",
                    "Item": {"k": {"S": format!("k{}", index % 40)}, "v": {"N": index.to_string()}}}),
            )
            .unwrap();
    }

    let work = tempfile::tempdir().unwrap();
    let scrubber =
        ddb_tests::scrubber::start_scrubber(dir.path(), base, NODES, &work.path().join("scrubber"));
    // Passes run until the archive has caught up and every partition is proven.
    let status = proven(&scrubber, 5);
    // A clean run raises nothing.
    assert_eq!(health(&scrubber), "ok");
    let metrics = ddb_tests::http_get(scrubber.port(), "/metrics").unwrap();
    let scanned: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ddb_scrub_scanned_bytes_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(scanned > 0, "{metrics}");
    assert!(!metrics.contains("check=\"peers\"} 1"), "{metrics}");
    for partition in status["partitions"].as_object().unwrap().values() {
        assert!(partition["proven_lsn"].as_u64().unwrap() > 0, "{partition}");
    }
    let table_partitions: Vec<u64> = status["partitions"]
        .as_object()
        .unwrap()
        .values()
        .filter(|p| p["table_id"] != 0)
        .map(|p| p["partition_id"].as_u64().unwrap())
        .collect();

    // From here on a client keeps writing new items (never overwriting the ones the faults
    // change), so every check runs under writes.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writes = {
        let (stop, key_id, secret) = (Arc::clone(&stop), key_id.clone(), secret.clone());
        let acknowledged = Arc::clone(&acknowledged);
        std::thread::spawn(move || {
            let writer = client(base, &key_id, &secret);
            let mut failed = 0u64;
            for n in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let item = serde_json::json!({"TableName": "scrubbed",
                    "Item": {"k": {"S": format!("w{n}")}, "v": {"S": "x"}}});
                match writer.call("PutItem", &item) {
                    Ok(_) => acknowledged.fetch_add(1, Ordering::Relaxed),
                    Err(_) => {
                        failed += 1;
                        0
                    }
                };
                std::thread::sleep(Duration::from_millis(2));
            }
            failed
        })
    };

    // A follower of the first partition diverges: it holds an item its peers and the archive
    // do not. (A diverged leader would also seal wrong digests into the archive.)
    let token = ddb::server::cluster_internal_token(
        std::fs::read_to_string(dir.path().join("cluster.secret"))
            .unwrap()
            .trim(),
    );
    let diverged = table_partitions[0];
    let follower = follower_of(base, &token, diverged);
    let (code, body) = internal_call(
        base + u16::try_from(follower).unwrap() - 1,
        &token,
        "POST",
        &format!("/internal/partitions/{diverged}/fault?kind=diverge"),
    );
    assert_eq!(code, 200, "{body}");
    // Checks compare at the newest LSN every copy has a digest for: a pass or two may still
    // compare before the fault (and the archive lags the replicas by its chunk interval).
    let (code, status) = scrub_until(&scrubber, false, |status| {
        let report = &status["partitions"][diverged.to_string()];
        report["peers"]["outcome"] == "disagree" && report["archive"]["outcome"] == "disagree"
    });
    assert_eq!(code, 1, "{status}");
    let report = &status["partitions"][diverged.to_string()];
    let odd = serde_json::json!([format!("node {follower}")]);
    assert_eq!(report["peers"]["outcome"], "disagree", "{report}");
    assert_eq!(report["peers"]["odd"], odd, "{report}");
    assert_eq!(report["archive"]["odd"], odd, "{report}");
    // The sorted merge names the key the fault changed (under writes, keys written between
    // the two copies' streams may show too).
    let changed = serde_json::from_str::<serde_json::Value>(&body).unwrap()["key"].clone();
    assert!(
        report["differing_keys"]
            .as_array()
            .unwrap()
            .contains(&changed),
        "{report}"
    );

    // An item of the second partition rots at rest on node 1: only a deep pass sees it.
    let rotten = table_partitions[1];
    let (code, body) = internal_call(
        base,
        &token,
        "POST",
        &format!("/internal/partitions/{rotten}/fault?kind=rot"),
    );
    assert_eq!(code, 200, "{body}");
    let (_, status) = scrub_run(&scrubber, true);
    let report = &status["partitions"][rotten.to_string()];
    assert_eq!(report["at_rest"]["outcome"], "disagree", "{report}");
    assert_eq!(
        report["at_rest"]["odd"],
        serde_json::json!(["node 1"]),
        "{report}"
    );
    assert_eq!(
        report["peers"]["outcome"], "agree",
        "the digests themselves still agree"
    );
    assert_eq!(health(&scrubber), "scrub mismatch");

    // Repair rebuilds both odd copies from good ones while the writes go on; the deep pass
    // that follows finds no difference, and later passes prove the partitions again.
    let before_repair = acknowledged.load(Ordering::Relaxed);
    let (code, answer) = scrub(&scrubber, &["repair"]);
    assert_eq!(code, 0, "{answer}");
    let mut repaired: Vec<(u64, u64)> = answer["repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|repair| {
            assert!(repair["outcome"]["Ok"].is_object(), "{repair}");
            assert_ne!(repair["source"], repair["node_id"], "{repair}");
            (
                repair["partition_id"].as_u64().unwrap(),
                repair["node_id"].as_u64().unwrap(),
            )
        })
        .collect();
    repaired.sort_unstable();
    let mut expected = vec![(diverged, u64::from(follower)), (rotten, 1)];
    expected.sort_unstable();
    assert_eq!(repaired, expected, "{answer}");
    let status = proven(&scrubber, 5);
    for partition in [diverged, rotten] {
        let report = &status["partitions"][partition.to_string()];
        assert_eq!(report["at_rest"]["outcome"], "agree", "{report}");
        assert_eq!(report["differing_keys"], serde_json::json!([]), "{report}");
    }
    assert_eq!(health(&scrubber), "ok");
    // Nothing odd is left: a second repair has nothing to do.
    let (code, answer) = scrub(&scrubber, &["repair"]);
    assert_eq!(
        (code, answer["repairs"].clone()),
        (0, serde_json::json!([]))
    );
    // The client's writes went on through the faults, the repairs and the proofs after them.
    let after_repair = acknowledged.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let failed = writes.join().unwrap();
    assert!(
        before_repair > 0 && after_repair > before_repair,
        "{before_repair} writes before the repair, {after_repair} after, {failed} failed"
    );
    drop(scrubber);

    // Damage one archived chunk of a third partition: a scrubber rebuilding its reference from
    // the archive reports the archive, and names no replica.
    let table_partition = &status["partitions"][table_partitions[2].to_string()];
    let wal_dir = dir.path().join(format!(
        "archive/v1/tables/{}/partitions/{}/wal",
        table_partition["table_id"], table_partition["partition_id"]
    ));
    let chunk = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[10] ^= 0x40;
    std::fs::write(&chunk, bytes).unwrap();
    let scrubber =
        ddb_tests::scrubber::start_scrubber(dir.path(), base, NODES, &work.path().join("fresh"));
    let (code, status) = scrub_run(&scrubber, false);
    assert_eq!(code, 1, "{status}");
    let damaged = &status["partitions"][table_partition["partition_id"].to_string()];
    assert!(
        damaged["archive_error"]
            .as_str()
            .is_some_and(|e| e.contains("wal")),
        "{damaged}"
    );
    assert_eq!(damaged["archive"]["odd"], serde_json::json!(["archive"]));
    assert_eq!(damaged["peers"]["outcome"], "agree", "{damaged}");
    assert!(cluster.interrupt_and_wait().success());
}
