//! On a real node: every partition's key heat (the units its requests consumed, by
//! partition-key hash) chooses where a split for consumption would cut, as `ddbctl table
//! capacity` shows — between the hot keys of a skewed workload, so that each side takes about
//! half — and refuses when one partition key carries the traffic, which no cut can divide.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::admission::{Signer, capacity, create_provisioned, put_load};
use ddb_tests::{LocalUp, parse_export};
use serde_json::Value;

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
fn key_heat_places_the_cut_between_hot_keys_and_refuses_a_single_hot_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(1);
    let mut node = LocalUp::start(dir.path(), base, 1, &["--no-archive"]);
    let (key_id, secret) = parse_export(&node.wait_for_ready());
    let endpoint = format!("http://127.0.0.1:{base}");
    let signer = Signer {
        endpoint: endpoint.clone(),
        key_id: &key_id,
        secret: &secret,
    };
    let spread = [endpoint.clone()];

    // One partition (100 WCU), Zipf(1.2) over 500 keys: a few keys carry most writes.
    create_provisioned(&signer, "skewed", 100);
    let load = put_load(
        &signer,
        "skewed",
        80,
        5,
        &spread,
        &["--zipf", "1.2", "--items", "500"],
    );
    assert_eq!((load.throttled, load.other_errors), (0, 0), "{load:?}");
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

    // Every write to one key: no boundary moves any of it.
    create_provisioned(&signer, "one-key", 100);
    let load = put_load(&signer, "one-key", 60, 4, &spread, &["--items", "1"]);
    assert_eq!((load.throttled, load.other_errors), (0, 0), "{load:?}");
    let single = plans(&signer, "one-key");
    assert_eq!(single.len(), 1, "{single:?}");
    let plan = &single[0];
    assert_eq!(plan["verdict"], "one_hot_key", "{plan}");
    assert!(plan["share"].as_f64().unwrap() > 0.99, "{plan}");

    // The human form says the same.
    let (code, text) = signer.ddbctl_text(&["table", "capacity", "one-key"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("cannot help: one partition key"), "{text}");
}
