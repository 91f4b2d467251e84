//! Two archivers beside one node both believe they should upload its partitions (as two
//! archivers briefly do around a leadership change), against moto, whose create-only writes are
//! atomic, in a bucket with versioning on. They race on every chunk: each object in the bucket
//! has exactly one version (nothing was ever overwritten), no split brain is raised (both cut
//! the same committed entries), and the bucket replays to the node's state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use ddb_tests::s3::{Moto, S3Server};
use ddb_tests::{ArchiverProcess, NodeProcess, binary, client, create_hash_table, replay_archive};

const BUCKET: &str = "raced";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_archivers_never_overwrite_an_object() {
    let work = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let url = moto.archive_url(BUCKET, "race");
    let env = moto.owned_env();
    moto.init_bucket(&url, &[]);

    let node =
        NodeProcess::start_with_env(&binary("ddbd"), &[("DDB_ARCHIVE_ENABLED", "true")]).unwrap();
    let archivers: Vec<ArchiverProcess> = (0..2)
        .map(|index| {
            ArchiverProcess::start(
                node.endpoint(),
                &node.data_dir(),
                &url,
                &env,
                &work.path().join(format!("archiver{index}.log")),
            )
            .unwrap()
        })
        .collect();
    let client = client(
        node.port(),
        NodeProcess::ACCESS_KEY_ID,
        NodeProcess::SECRET_ACCESS_KEY,
    );
    create_hash_table(&client, "raced");
    for index in 0..150 {
        client
            .call(
                "PutItem",
                &serde_json::json!({"TableName": "raced",
                    "Item": {"k": {"S": format!("k{index}")}, "v": {"N": index.to_string()}}}),
            )
            .unwrap();
        if index % 10 == 0 {
            std::thread::sleep(Duration::from_millis(60));
        }
    }
    let listing = node.wait_archived(Duration::from_secs(60), || archivers[0].log());

    // Every key has exactly one version: no upload replaced another.
    let versions = moto.get(&format!("/{BUCKET}?versions&prefix=race/v1/tables/"));
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for version in versions.split("<Version>").skip(1) {
        let key = version
            .split("<Key>")
            .nth(1)
            .and_then(|rest| rest.split("</Key>").next())
            .unwrap();
        *per_key.entry(key.to_string()).or_default() += 1;
    }
    assert!(!per_key.is_empty(), "no versions listed: {versions}");
    let overwritten: Vec<_> = per_key.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        overwritten.is_empty(),
        "objects with several versions: {overwritten:?}"
    );
    // Both archivers worked on the chunks (the race happened), and neither saw split brain.
    let mut created = 0.0;
    let mut already_there = 0.0;
    for archiver in &archivers {
        created += archiver.metric_sum("ddb_archiver_uploads_total");
        already_there += archiver.metric_sum("ddb_archiver_already_there_total");
        let split = archiver.metric_sum("ddb_archiver_split_brain");
        assert!(split == 0.0, "split brain raised; log:\n{}", archiver.log());
    }
    println!("{created} chunks created, {already_there} found already there");
    assert!(created >= 1.0);

    let archive = moto.open_archive(BUCKET, "race");
    let replayed = replay_archive(&archive).await;
    for partition in &listing.partitions {
        let archived = replayed
            .iter()
            .find(|r| r.partition_id == partition.partition_id)
            .unwrap();
        assert_eq!(archived.lsn.0, partition.applied_lsn);
    }
}
