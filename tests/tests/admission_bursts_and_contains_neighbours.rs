//! On one node: a short spike above a table's provisioned rate is absorbed by the capacity it
//! left unused before (burst credit), a sustained one is throttled back to the rate, a noisy
//! table hammering the node cannot take a quiet table's capacity, and an on-demand table's
//! capacity follows its traffic up to twice its previous peak.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::admission::{AdmissionCluster, create_provisioned, put_load};

#[test]
fn spikes_ride_on_unused_capacity_noisy_tables_stay_in_their_lane_and_on_demand_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = AdmissionCluster::start(
        dir.path(),
        1,
        &[
            "--no-archive",
            "--admission",
            "gac_interval_ms=500",
            "--admission",
            "node_write_units=150",
            "--admission",
            "on_demand_write_units=20",
        ],
    );
    let signer = node.signer(0);
    let spread = [node.endpoint(0)];

    // 50 WCU/s provisioned, used at 10/s for 8 s: about 300 units left unused.
    create_provisioned(&signer, "spiky", 50);
    let quiet = put_load(&signer, "spiky", 10, 8, &spread, &[]);
    assert_eq!((quiet.throttled, quiet.other_errors), (0, 0), "{quiet:?}");
    // A 3 s spike asked at twice the rate (150 units over it) is absorbed whole. The generator
    // paces its clients and does not catch up after a slow answer, so on a busy machine (a
    // debug build beside other tests, a disk that stalls) it may send less than asked: what
    // matters is that what it sent was well over the rate, and none of it was refused.
    let spike = put_load(&signer, "spiky", 100, 3, &spread, &[]);
    assert_eq!(
        (spike.throttled, spike.other_errors),
        (0, 0),
        "a short spike was throttled despite unused capacity: {spike:?}"
    );
    assert!(
        spike.ops >= 195,
        "the spike did not reach 1.3x the provisioned 50/s, so it proves nothing: {spike:?}"
    );
    // The same rate sustained spends the credit and is throttled back to the rate.
    let sustained = put_load(&signer, "spiky", 100, 12, &spread, &[]);
    assert!(
        sustained.throttled_fraction() > 0.1,
        "a sustained overload was not throttled: {sustained:?}"
    );
    let admitted_rate = sustained.ops as f64 / 12.0;
    assert!(admitted_rate < 80.0, "admitted {admitted_rate} WCU/s of 50");

    // Two tables of 50 WCU/s on the one node: one hammered at 250/s, one used at 40/s.
    create_provisioned(&signer, "noisy", 50);
    create_provisioned(&signer, "calm", 50);
    let (noisy, calm) = std::thread::scope(|scope| {
        let noisy = scope.spawn(|| put_load(&signer, "noisy", 250, 6, &spread, &[]));
        let calm = scope.spawn(|| put_load(&signer, "calm", 40, 6, &spread, &[]));
        (noisy.join().unwrap(), calm.join().unwrap())
    });
    assert_eq!(
        (calm.throttled, calm.other_errors),
        (0, 0),
        "the calm table lost capacity to its noisy neighbour: {calm:?} beside {noisy:?}"
    );
    assert!(calm.ops >= 200, "{calm:?}");
    assert!(noisy.throttled_fraction() > 0.5, "{noisy:?}");
    assert!(
        (noisy.ops as f64 / 6.0) < 80.0,
        "the noisy table got past its rate: {noisy:?}"
    );

    // On demand, starting at 20 WCU/s (scaled down from DynamoDB's 4,000): 15/s runs, and once
    // it has held for a peak window (10 GAC intervals, 5 s here), 28/s — under twice that peak
    // — runs too; a jump to 150/s is throttled.
    let (code, answer) = signer.ddbctl(&[
        "table",
        "create",
        "elastic",
        "--hash-key",
        "pk:S",
        "--range-key",
        "sk:N",
    ]);
    assert_eq!(code, 0, "{answer}");
    for (rate, seconds) in [(15, 6), (28, 4)] {
        let load = put_load(&signer, "elastic", rate, seconds, &spread, &[]);
        assert_eq!(
            (load.throttled, load.other_errors),
            (0, 0),
            "on demand at {rate}/s after a lower peak: {load:?}"
        );
    }
    let jump = put_load(&signer, "elastic", 150, 4, &spread, &[]);
    assert!(
        jump.throttled_fraction() > 0.2,
        "a fivefold jump was not throttled: {jump:?}"
    );
    assert!(node.cluster.interrupt_and_wait().success());
}
