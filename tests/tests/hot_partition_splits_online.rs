//! On a real node: every partition's key heat (the units its requests consumed, by
//! partition-key hash) chooses where a split for consumption would cut, as `ddbctl table
//! capacity` shows — between the hot keys of a skewed workload, so that each side takes about
//! half — and refuses when one partition key carries the traffic, which no cut can divide.
//! `ddbctl partition split` then splits the skewed partition there while writes go on: no
//! write fails, the children's digests add up to the parent's, and traffic moves to them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::admission::{
    AdmissionCluster, Load, Signer, capacity, create_provisioned, put_load,
};
use serde_json::Value;

/// Zipf(1.2) writes over 500 keys into table `skewed` at `rate`/s for `seconds`; none may fail.
fn skewed_writes(signer: &Signer<'_>, rate: u64, seconds: u64, spread: &[String]) -> Load {
    let load = put_load(
        signer,
        "skewed",
        rate,
        seconds,
        spread,
        &["--zipf", "1.2", "--items", "500"],
    );
    assert_eq!((load.throttled, load.other_errors), (0, 0), "{load:?}");
    load
}

/// A `ddbctl partition split` that ran while `load` wrote: it succeeded, the children's digests
/// add up to the parent's, and no write failed.
fn assert_split_kept_everything(code: i32, split: &Value, load: &Load) {
    assert_eq!(code, 0, "{split}");
    assert_eq!(split["ParentDigest"], split["ChildrenDigestSum"], "{split}");
    assert_eq!(
        (load.throttled, load.other_errors),
        (0, 0),
        "writes failed across the split: {load:?} {split}"
    );
}

/// The split plans the node reports for `table`'s partitions that saw traffic.
fn plans(signer: &Signer<'_>, table: &str) -> Vec<Value> {
    let capacity = capacity(signer, table);
    capacity["splits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| row["plan"].clone())
        .filter(|plan| plan["units"].as_f64().unwrap_or(0.0) > 0.0)
        .collect()
}

#[test]
fn key_heat_chooses_the_cut_and_a_split_under_writes_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = AdmissionCluster::start(dir.path(), 1, &["--no-archive"]);
    let signer = node.signer(0);
    let spread = [node.endpoint(0)];

    // One partition (100 WCU), Zipf(1.2) over 500 keys: a few keys carry most writes.
    create_provisioned(&signer, "skewed", 100);
    skewed_writes(&signer, 80, 5, &spread);
    let skewed = plans(&signer, "skewed");
    assert_eq!(skewed.len(), 1, "one partition saw writes: {skewed:?}");
    let plan = &skewed[0];
    assert_eq!(plan["verdict"], "split", "{plan}");
    let lower = plan["lower_share"].as_f64().unwrap();
    let upper = plan["upper_share"].as_f64().unwrap();
    assert!(
        (lower - 0.5).abs() < 0.2,
        "the cut should share the units about evenly: {plan}"
    );
    assert!(
        lower.max(upper) <= plan["middle_busier_share"].as_f64().unwrap() + 1e-9,
        "the chosen cut is no more even than the middle of the range: {plan}"
    );
    assert!(plan["units"].as_f64().unwrap() >= 300.0, "{plan}");
    assert_eq!(plan["boundary"].as_str().unwrap().len(), 16, "{plan}");
    let parent = capacity(&signer, "skewed")["splits"][0]["partition_id"]
        .as_u64()
        .unwrap();

    // Split it where the heat says, while the same workload keeps writing.
    let (load, (code, split)) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            put_load(
                &signer,
                "skewed",
                60,
                6,
                &spread,
                &["--zipf", "1.2", "--items", "500"],
            )
        });
        std::thread::sleep(std::time::Duration::from_secs(2));
        let parent = parent.to_string();
        let split = signer.ddbctl(&[
            "partition",
            "split",
            "--table",
            "skewed",
            "--partition",
            &parent,
        ]);
        (load.join().unwrap(), split)
    });
    assert_split_kept_everything(code, &split, &load);
    let children: Vec<u64> = split["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["Partition"].as_u64().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "{split}");
    assert!(!children.contains(&parent));
    // Traffic now goes to the children.
    skewed_writes(&signer, 60, 3, &spread);
    let after = capacity(&signer, "skewed");
    let served: Vec<u64> = after["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["kind"] == "write" && row["consumed_units"].as_f64().unwrap() > 0.0)
        .map(|row| row["partition_id"].as_u64().unwrap())
        .collect();
    assert!(
        served.iter().all(|id| children.contains(id)) && !served.is_empty(),
        "writes after the split went to {served:?}, not only to the children {children:?}"
    );

    // Every write to one key: no boundary moves any of it.
    create_provisioned(&signer, "one-key", 100);
    let load = put_load(&signer, "one-key", 60, 4, &spread, &["--items", "1"]);
    assert_eq!((load.throttled, load.other_errors), (0, 0), "{load:?}");
    let single = plans(&signer, "one-key");
    assert_eq!(single.len(), 1, "{single:?}");
    let plan = &single[0];
    assert_eq!(plan["verdict"], "one_hot_key", "{plan}");
    assert!(plan["share"].as_f64().unwrap() > 0.99, "{plan}");

    // And a split of it is refused, saying why.
    let one_key_partition = capacity(&signer, "one-key")["splits"][0]["partition_id"]
        .as_u64()
        .unwrap()
        .to_string();
    let (code, text) = signer.ddbctl_text(&[
        "partition",
        "split",
        "--table",
        "one-key",
        "--partition",
        &one_key_partition,
    ]);
    assert_ne!(code, 0, "{text}");

    // The human form says the same.
    let (code, text) = signer.ddbctl_text(&["table", "capacity", "one-key"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("cannot help: one partition key"), "{text}");
}

/// A partition that runs at 90% of its ceiling for `split_hot_after_ms` splits by itself, where
/// its heat says, while the writes go on; the time from the hot spot's start to the switch is
/// printed (docs/benchmarks.md, "Split for consumption").
#[test]
fn a_partition_that_stays_hot_splits_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let node = AdmissionCluster::start(
        dir.path(),
        1,
        &[
            "--no-archive",
            "--admission",
            "partition_write_units=100",
            "--admission",
            "split_hot_after_ms=3000",
        ],
    );
    let signer = node.signer(0);
    let spread = [node.endpoint(0)];
    // 90 WCU with a ceiling of 100 per partition: one partition, which 85 writes/s keep above
    // 80% of its ceiling (and under the table's rate).
    create_provisioned(&signer, "auto", 90);
    let partition_ids = |signer: &Signer<'_>| -> Vec<u64> {
        capacity(signer, "auto")["splits"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["partition_id"].as_u64())
            .collect()
    };

    let started = std::time::Instant::now();
    let (load, parent, switched_after) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            put_load(
                &signer,
                "auto",
                85,
                14,
                &spread,
                &["--zipf", "1.1", "--items", "1000"],
            )
        });
        let mut parent = Vec::new();
        while parent.is_empty() && started.elapsed() < std::time::Duration::from_secs(3) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            parent = partition_ids(&signer);
        }
        let mut switched_after = None;
        while started.elapsed() < std::time::Duration::from_secs(14) {
            if partition_ids(&signer).iter().any(|id| !parent.contains(id)) {
                switched_after = Some(started.elapsed());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        (load.join().unwrap(), parent, switched_after)
    });
    assert_eq!(
        parent.len(),
        1,
        "the table should start with one partition: {parent:?}"
    );
    let switched_after = switched_after.expect("the hot partition did not split within 14 s");
    println!("hot spot to split: {} ms", switched_after.as_millis());
    assert!(
        switched_after >= std::time::Duration::from_secs(3),
        "split before the partition was hot for split_hot_after_ms: {switched_after:?}"
    );
    assert_eq!(
        (load.throttled, load.other_errors),
        (0, 0),
        "writes failed across the automatic split: {load:?}"
    );
}

/// On three nodes: a split asked of a node that does not lead the partition is forwarded to the
/// one that does, which fences the parent, loads the children — replicated to all three nodes,
/// led wherever their groups elected — proves their digests and switches the catalog, while
/// writes through every node go on without a failure.
#[test]
fn a_cluster_splits_a_partition_under_writes_through_every_node() {
    const NODES: u16 = 3;
    let dir = tempfile::tempdir().unwrap();
    let cluster = AdmissionCluster::start(dir.path(), NODES, &["--no-archive"]);
    let signer = cluster.signer(0);
    // 900 WCU: one partition, and no throttling of the loads below.
    create_provisioned(&signer, "orders", 900);
    let spread = [
        cluster.endpoint(0),
        cluster.endpoint(1),
        cluster.endpoint(2),
    ];
    let seed = put_load(&signer, "orders", 150, 3, &spread, &["--items", "3000"]);
    assert_eq!((seed.throttled, seed.other_errors), (0, 0), "{seed:?}");

    let (load, (code, split)) = std::thread::scope(|scope| {
        let load =
            scope.spawn(|| put_load(&signer, "orders", 100, 8, &spread, &["--items", "3000"]));
        std::thread::sleep(std::time::Duration::from_secs(2));
        // Asked of node 3, which may or may not lead the partition (it forwards if not).
        let asker = cluster.signer(2);
        let split = asker.ddbctl(&[
            "partition",
            "split",
            "--table",
            "orders",
            "--partition",
            &first_partition(&asker, "orders").to_string(),
            "--at",
            "8000000000000000",
        ]);
        (load.join().unwrap(), split)
    });
    assert_split_kept_everything(code, &split, &load);
    let items: u64 = split["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["Items"].as_u64().unwrap())
        .sum();
    assert!(items >= 300, "{split}");

    // Every node routes to the children now: writes through each of them succeed, and a scan
    // through each finds the same items.
    let after = put_load(&signer, "orders", 60, 2, &spread, &["--items", "3000"]);
    assert_eq!((after.throttled, after.other_errors), (0, 0), "{after:?}");
    let counts: Vec<u64> = (0..NODES)
        .map(|offset| {
            let reader = cluster.signer(offset);
            let (code, scan) = reader.ddbctl(&["item", "scan", "orders", "--all", "--consistent"]);
            assert_eq!(code, 0, "{scan}");
            scan["Items"]
                .as_array()
                .map(|items| items.len() as u64)
                .unwrap()
        })
        .collect();
    assert!(counts.iter().all(|count| *count == counts[0]), "{counts:?}");
    assert!(
        counts[0] >= items,
        "{counts:?} after a split of {items} items"
    );
}

/// The id of `table`'s only partition, from the admission status of the nodes that served it.
fn first_partition(signer: &Signer<'_>, table: &str) -> u64 {
    let ids: std::collections::BTreeSet<u64> = capacity(signer, table)["splits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["partition_id"].as_u64())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "{table} should have one partition: {ids:?} {:#}",
        capacity(signer, table)
    );
    ids.into_iter().next().unwrap()
}
