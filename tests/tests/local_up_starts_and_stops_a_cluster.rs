//! `ddbctl local up` starts three real ddbd processes that all accept one generated key,
//! keeps that key private (mode 0600), stops every node on SIGINT and exits 0, and a second run
//! on the same directory comes back with the same key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use ddb_tests::{LocalUp, client, parse_export};
use serde_json::json;

const NODES: u16 = 3;

#[test]
fn local_up_starts_three_nodes_stops_them_on_sigint_and_restarts_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);

    let mut first = LocalUp::start(dir.path(), base, NODES, &[]);
    let export = first.wait_for_ready();
    for port in first.api_ports() {
        assert!(
            ddb_tests::healthz_ok(&format!("127.0.0.1:{port}")),
            "node on port {port} is not healthy"
        );
    }
    let credentials_file = dir.path().join("credentials.toml");
    let mode = std::fs::metadata(&credentials_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials.toml must be private");
    let (key_id, secret) = parse_export(&export);
    for port in first.api_ports() {
        // Every node accepts the one printed key.
        client(port, &key_id, &secret)
            .call("ListTables", &json!({}))
            .unwrap_or_else(|e| panic!("ListTables on port {port}: {e}"));
    }
    let stored_key = std::fs::read_to_string(&credentials_file).unwrap();

    let status = first.interrupt_and_wait();
    assert!(status.success(), "ddbctl exited with {status}");
    for port in ddb_tests::cluster_ports(base, NODES) {
        assert!(
            ddb_tests::nothing_listens_on(port),
            "port {port} still taken after ddbctl exited: a ddbd was left running"
        );
    }

    let mut second = LocalUp::start(dir.path(), base, NODES, &[]);
    assert_eq!(
        second.wait_for_ready(),
        export,
        "a restart must print the same key"
    );
    assert_eq!(
        std::fs::read_to_string(&credentials_file).unwrap(),
        stored_key
    );
    client(base + 1, &key_id, &secret)
        .call("ListTables", &json!({}))
        .unwrap();
    let status = second.interrupt_and_wait();
    assert!(status.success(), "ddbctl exited with {status}");
}
