//! On one node: a short spike above a table's provisioned rate is absorbed by the capacity it
//! left unused before (burst credit), a sustained one is throttled back to the rate, and a
//! noisy table hammering the node cannot take a quiet table's capacity.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::admission::{Signer, put_load};
use ddb_tests::{LocalUp, parse_export};

fn create(signer: &Signer<'_>, table: &str, wcu: &str) {
    let args = [
        "table",
        "create",
        table,
        "--hash-key",
        "pk:S",
        "--range-key",
        "sk:N",
        "--billing",
        "provisioned",
        "--rcu",
        "1",
        "--wcu",
        wcu,
    ];
    let (code, answer) = signer.ddbctl(&args);
    assert_eq!(code, 0, "{answer}");
}

#[test]
fn spikes_ride_on_unused_capacity_and_a_noisy_table_stays_in_its_lane() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(1);
    let mut node = LocalUp::start(
        dir.path(),
        base,
        1,
        &[
            "--no-archive",
            "--admission",
            "gac_interval_ms=500",
            "--admission",
            "node_write_units=150",
        ],
    );
    let (key_id, secret) = parse_export(&node.wait_for_ready());
    let endpoint = format!("http://127.0.0.1:{base}");
    let signer = Signer {
        endpoint: endpoint.clone(),
        key_id: &key_id,
        secret: &secret,
    };
    let spread = [endpoint.clone()];

    // 50 WCU/s provisioned, used at 10/s for 8 s: about 300 units left unused.
    create(&signer, "spiky", "50");
    let quiet = put_load(&signer, "spiky", 10, 8, &spread, &[]);
    assert_eq!((quiet.throttled, quiet.other_errors), (0, 0), "{quiet:?}");
    // A 3 s spike at twice the rate (150 units over it) is absorbed whole.
    let spike = put_load(&signer, "spiky", 100, 3, &spread, &[]);
    assert_eq!(
        (spike.throttled, spike.other_errors),
        (0, 0),
        "a short spike was throttled despite unused capacity: {spike:?}"
    );
    assert!(spike.ops >= 270, "{spike:?}");
    // The same rate sustained spends the credit and is throttled back to the rate.
    let sustained = put_load(&signer, "spiky", 100, 12, &spread, &[]);
    assert!(
        sustained.throttled_fraction() > 0.1,
        "a sustained overload was not throttled: {sustained:?}"
    );
    let admitted_rate = sustained.ops as f64 / 12.0;
    assert!(admitted_rate < 80.0, "admitted {admitted_rate} WCU/s of 50");

    // Two tables of 50 WCU/s on the one node: one hammered at 250/s, one used at 40/s.
    create(&signer, "noisy", "50");
    create(&signer, "calm", "50");
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
    assert!(node.interrupt_and_wait().success());
}
