//! A real `ddb-scrubber` against a three-node `ddbctl local up` cluster and its archive: after
//! writes, `ddbctl scrub run --deep` shows every partition proven equal across its three
//! replicas and the archive, with no copy rotted at rest. Then faults are injected, each caught
//! and pinned on the right copy: a replica made to diverge (checks 1 and 2 name its node), an
//! item flipped at rest (check 3 names its node), a corrupt chunk in the archive (reported as
//! archive damage, not as a replica fault).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ddb_tests::{LocalUp, binary, client, internal_call, parse_export};

const NODES: u16 = 3;

/// A running scrubber, killed when dropped.
struct Scrubber {
    child: Child,
    url: String,
}

impl Drop for Scrubber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_scrubber(
    cluster_dir: &std::path::Path,
    base: u16,
    data_dir: &std::path::Path,
) -> Scrubber {
    let nodes: Vec<String> = (0..NODES)
        .map(|i| format!("\"http://127.0.0.1:{}\"", base + i))
        .collect();
    let config = data_dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "nodes = [{}]\ncluster_secret_file = \"{}\"\narchive = \"file://{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\ninterval_ms = 300\n",
            nodes.join(", "),
            cluster_dir.join("cluster.secret").display(),
            cluster_dir.join("archive").display(),
            data_dir.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(binary("ddb-scrubber"))
        .arg("--config")
        .arg(&config)
        .env("DDB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split("on ")
        .last()
        .map(|url| url.trim().to_string())
        .unwrap_or_else(|| panic!("scrubber said {line:?}"));
    Scrubber { child, url }
}

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

/// `ddbctl -o json scrub run [--deep]`: exit code and the status it printed.
fn scrub_run(scrubber: &Scrubber, deep: bool) -> (i32, serde_json::Value) {
    let mut command = Command::new(binary("ddbctl"));
    command.args(["-o", "json", "scrub", "run", "--scrubber", &scrubber.url]);
    if deep {
        command.arg("--deep");
    }
    let output = command.output().unwrap();
    let status = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), status)
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
    let scrubber = start_scrubber(dir.path(), base, &work.path().join("scrubber"));
    // Passes run until the archive has caught up and every partition is proven.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let (code, status) = scrub_run(&scrubber, true);
        let partitions = status["partitions"].as_object().unwrap();
        let proven = partitions.len() >= 5
            && partitions.values().all(|p| {
                p["archive"]["outcome"] == "agree"
                    && p["peers"]["outcome"] == "agree"
                    && p["at_rest"]["outcome"] == "agree"
            });
        if proven {
            assert_eq!(code, 0, "{status}");
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never proven: {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
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
    let (code, status) = scrub_run(&scrubber, false);
    assert_eq!(code, 1, "{status}");
    let report = &status["partitions"][diverged.to_string()];
    let odd = serde_json::json!([format!("node {follower}")]);
    assert_eq!(report["peers"]["outcome"], "disagree", "{report}");
    assert_eq!(report["peers"]["odd"], odd, "{report}");
    assert_eq!(report["archive"]["odd"], odd, "{report}");
    // The sorted merge names exactly the key the fault changed.
    let changed = serde_json::from_str::<serde_json::Value>(&body).unwrap()["key"].clone();
    assert_eq!(
        report["differing_keys"],
        serde_json::json!([changed]),
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
    let scrubber = start_scrubber(dir.path(), base, &work.path().join("fresh"));
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
