//! Check 3 against real bit rot: a byte flipped on disk inside one of a replica's fjall table
//! files, while its node was down, is found by the scrubber's deep pass and pinned on that
//! node — the node's full scan cannot read its own items back — while the node still starts
//! and serves.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ddb_tests::{NodeProcess, binary, internal_call};

/// Every file under `dir`, with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(meta) = entry.metadata() {
            out.push((path, meta.len()));
        }
    }
    out
}

#[test]
fn a_byte_flipped_in_a_table_file_is_named_by_the_deep_pass() {
    // 300 KB items written back to back are far past a partition's 1,000 WCU/s: admission would
    // (rightly) throttle them; this test is about what lies on disk, so it is off.
    let mut node =
        NodeProcess::start_with_env(&binary("ddbd"), &[("DDB_ADMISSION_MODE", "off")]).unwrap();
    let writer = ddb_tests::client(
        node.port(),
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    ddb_tests::create_hash_table(&writer, "rotting");
    // 38 MB of items that do not compress, over the table's four partitions: more than a
    // replica's 8 MiB memtable in at least one of them, so fjall writes a table file.
    for index in 0..128u32 {
        let mut value = String::new();
        let mut hasher = blake3::Hasher::new();
        hasher.update(&index.to_le_bytes());
        let mut bytes = vec![0u8; 150_000];
        hasher.finalize_xof().fill(&mut bytes);
        for byte in bytes {
            value.push_str(&format!("{byte:02x}"));
        }
        writer
            .call(
                "PutItem",
                &serde_json::json!({"TableName": "rotting",
                    "Item": {"k": {"S": format!("k{index}")}, "v": {"S": value}}}),
            )
            .unwrap();
    }
    let replicas = node.data_dir().join("replicas");
    let deadline = Instant::now() + Duration::from_secs(60);
    let table_file = loop {
        let found = files(&replicas)
            .into_iter()
            .filter(|(path, size)| {
                *size > 4 << 20 && path.components().any(|c| c.as_os_str() == "tables")
            })
            .max_by_key(|(_, size)| *size);
        // Only a finished table counts: one still being written would be dropped at recovery
        // (and the journal replayed), taking the flipped byte with it.
        if let Some((path, size)) = found {
            std::thread::sleep(Duration::from_secs(2));
            let settled = std::fs::metadata(&path).is_ok_and(|meta| meta.len() == size);
            if settled {
                break path;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no table file was written: {:?}",
            files(&replicas)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // replicas/<partition>/…
    let partition: u64 = table_file
        .strip_prefix(&replicas)
        .unwrap()
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    node.kill_then_restart(|_| {
        let mut bytes = std::fs::read(&table_file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&table_file, bytes).unwrap();
    })
    .unwrap();

    // The node's own full scan cannot read its items back.
    let token = ddb::server::read_internal_token(&node.data_dir()).unwrap();
    let (code, body) = internal_call(
        node.port(),
        &token,
        "POST",
        &format!("/internal/partitions/{partition}/full-scan"),
    );
    let unreadable = code >= 500;
    let mismatched = code == 200
        && serde_json::from_str::<serde_json::Value>(&body).unwrap()["matches"] == false;
    assert!(unreadable || mismatched, "HTTP {code}: {body}");

    // The scrubber's deep pass names the node.
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("scrubber.toml");
    std::fs::write(
        &config,
        format!(
            "nodes = [\"{}\"]\nnode_data_dir = \"{}\"\narchive = \"file://{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\n",
            node.endpoint(),
            node.data_dir().display(),
            work.path().join("archive").display(),
            work.path().join("scrubber").display()
        ),
    )
    .unwrap();
    let scrubber = ddb_tests::Daemon::start("ddb-scrubber", &config);
    let url = scrubber.url.clone();
    let output = std::process::Command::new(binary("ddbctl"))
        .args(["-o", "json", "scrub", "run", "--deep", "--scrubber", &url])
        .output()
        .unwrap();
    drop(scrubber);
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
    });
    assert_eq!(output.status.code(), Some(1), "{status}");
    let report = &status["partitions"][partition.to_string()];
    assert_eq!(report["at_rest"]["outcome"], "disagree", "{report}");
    let node_id = serde_json::from_str::<Vec<ddb::node::ScrubReplica>>(
        &node.internal_get("/internal/scrub/replicas").unwrap().1,
    )
    .unwrap()[0]
        .node_id;
    assert_eq!(
        report["at_rest"]["odd"],
        serde_json::json!([format!("node {node_id}")]),
        "{report}"
    );
}
