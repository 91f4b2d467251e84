//! A skewed workload within its table's provisioned capacity, sent unevenly through the
//! routers of a three-node cluster, runs without throttling under global admission control,
//! while the scheme GAC replaced — each partition held to an equal share of the table — throttles
//! the same workload.
//!
//! Scaled down to laptop rates: partitions take at most 200 WCU/s, so a table created with 790
//! WCU has four partitions; lowered to 200 WCU, each partition's equal share is 50 WCU/s. The
//! workload writes 160 WCU/s (80% of the table's rate) with Zipf-distributed keys, so its
//! hottest partition takes about 90 WCU/s, and sends three quarters of it through node 1 (whose
//! even split of the table would be 67 WCU/s). Burst credit is kept for 2 s, so it cannot hide
//! a sustained overload.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::admission::{
    Load, Signer, capacity, create_provisioned, partition_write_units, put_load,
};
use ddb_tests::{LocalUp, parse_export};
use serde_json::Value;

const NODES: u16 = 3;
const RATE: u64 = 160;
const WARMUP_S: u64 = 4;
const MEASURED_S: u64 = 6;

/// Runs the workload on a fresh cluster in admission `mode`; returns the measured run and the
/// table's capacity breakdown afterwards.
fn skewed_run(mode: &str) -> (Load, Value) {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mode_arg = format!("mode={mode}");
    let mut cluster = LocalUp::start(
        dir.path(),
        base,
        NODES,
        &[
            "--no-archive",
            "--admission",
            &mode_arg,
            "--admission",
            "partition_write_units=200",
            "--admission",
            "burst_seconds=2",
            "--admission",
            "gac_interval_ms=500",
        ],
    );
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let signer = Signer {
        endpoint: format!("http://127.0.0.1:{base}"),
        key_id: &key_id,
        secret: &secret,
    };
    create_provisioned(&signer, "skew", 790);
    let update = ["table", "update", "skew", "--rcu", "1", "--wcu", "200"];
    let (code, description) = signer.ddbctl(&update);
    assert_eq!(code, 0, "{description}");
    let node = |offset: u16| format!("http://127.0.0.1:{}", base + offset);
    let spread = [node(0), node(0), node(0), node(1)];
    let zipf = ["--zipf", "1.3", "--items", "1000"];
    // Warm-up: leaders elected, GAC has heard from the routers.
    put_load(&signer, "skew", RATE, WARMUP_S, &spread, &zipf);
    let measured = put_load(&signer, "skew", RATE, MEASURED_S, &spread, &zipf);
    let breakdown = capacity(&signer, "skew");
    assert!(cluster.interrupt_and_wait().success());
    (measured, breakdown)
}

#[test]
fn skewed_traffic_within_capacity_is_admitted_by_gac_and_throttled_by_a_static_split() {
    let (fixed, fixed_capacity) = skewed_run("static");
    let partitions = partition_write_units(&fixed_capacity);
    assert_eq!(partitions.len(), 4, "{fixed_capacity}");
    assert!(
        fixed.throttled_fraction() > 0.05,
        "the static split should throttle the hot partition: {fixed:?}, {fixed_capacity}"
    );

    let (gac, gac_capacity) = skewed_run("gac");
    assert_eq!(
        (gac.throttled, gac.other_errors),
        (0, 0),
        "GAC throttled a workload within its table's capacity: {gac:?}\n{gac_capacity}"
    );
    assert!(
        gac.ops as f64 >= 0.9 * (RATE * MEASURED_S) as f64,
        "{gac:?}"
    );
    // It took both halves of GAC: the hottest partition ran past its equal share (50 WCU/s)...
    let seconds = (WARMUP_S + MEASURED_S) as f64;
    let hottest = partition_write_units(&gac_capacity)
        .iter()
        .map(|(_, units)| *units)
        .fold(0.0, f64::max);
    assert!(
        hottest > 1.2 * 50.0 * seconds,
        "hottest partition {hottest} units in {seconds} s"
    );
    // ...and node 1 routed more than its even split of the table (200/3 WCU/s), on a grant.
    let node1 = gac_capacity["routers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["node"] == 1 && row["kind"] == "write")
        .cloned()
        .unwrap();
    assert!(
        node1["consumed_units"].as_f64().unwrap() > 1.2 * 200.0 / 3.0 * seconds,
        "{node1}"
    );
    assert_eq!(node1["granted"], true, "{node1}");
    let gac_row = &gac_capacity["gac"].as_array().unwrap()[0];
    assert_eq!(gac_row["provisioned"], 200.0, "{gac_capacity}");
}
