//! `ddbctl local up` starts three real ddbd processes that all accept one generated key, and
//! a canary per AZ that probes every node and raises nothing on a healthy cluster; it keeps
//! the key private (mode 0600), stops everything on SIGINT and exits 0, and a second run on
//! the same directory comes back with the same key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use ddb_tests::{LocalUp, client, parse_export};
use serde_json::json;

const NODES: u16 = 3;

#[test]
fn local_up_starts_three_nodes_stops_them_on_sigint_and_restarts_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);

    let mut first = LocalUp::start_whole(dir.path(), base, NODES, &[], &[]);
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

    // Every canary probes every node, and nothing fires on a healthy cluster.
    let canaries = (0..NODES)
        .map(|i| format!("http://127.0.0.1:{}", base + 400 + i))
        .collect::<Vec<_>>()
        .join(",");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, reports) = ddb_tests::ddbctl_json(&["canary", "report", "--canary", &canaries]);
        assert_eq!(code, 0, "{reports}");
        let probed = |report: &serde_json::Value| {
            first.api_ports().all(|port| {
                let endpoint = format!("http://127.0.0.1:{port}");
                report["windows"].as_array().unwrap().iter().any(|window| {
                    window["cells"][endpoint.as_str()]["GetItem"]["good"]
                        .as_u64()
                        .is_some_and(|good| good > 0)
                })
            })
        };
        if reports.as_array().unwrap().iter().all(probed) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the canaries did not probe every node: {reports}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (code, alarms) = ddb_tests::ddbctl_json(&["alarms", "ls", "--canary", &canaries]);
    assert_eq!(code, 0, "a healthy cluster fires no alarm: {alarms}");

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
