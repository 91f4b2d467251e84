//! A real `ddbd` killed with SIGKILL while clients write keeps every acknowledged write: after
//! each restart, every item whose PutItem was acknowledged reads back, strongly consistent,
//! at the version last acknowledged for it or a newer one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ddb::client::{Client, ClientConfig, ClientError};
use ddb::sigv4::Credential;
use ddb_tests::NodeProcess;
use serde_json::json;

const WRITERS: usize = 8;
const KILLS: usize = 5;

fn client(endpoint: &str) -> Client {
    Client::new(ClientConfig {
        endpoint: endpoint.to_string(),
        credential: Credential::new(NodeProcess::ACCESS_KEY_ID, NodeProcess::SECRET_ACCESS_KEY),
        session_token: None,
        region: NodeProcess::REGION.to_string(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

#[test]
fn acknowledged_writes_survive_repeated_sigkill() {
    let mut node = NodeProcess::start(&ddb_tests::binary("ddbd")).unwrap();
    client(node.endpoint())
        .call(
            "CreateTable",
            &json!({
                "TableName": "kill",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        )
        .unwrap();

    // key -> last acknowledged version
    let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    for round in 0..KILLS as u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS as u64)
            .map(|w| {
                let acknowledged = Arc::clone(&acknowledged);
                let stop = Arc::clone(&stop);
                let client = client(node.endpoint());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        // Each writer owns 50 keys and overwrites them, so a lost overwrite
                        // shows up as an old version. Versions grow across rounds.
                        let key = format!("w{w}-k{}", n % 50);
                        let version = round * 1_000_000_000 + n;
                        let put = json!({
                            "TableName": "kill",
                            "Item": {"pk": {"S": key}, "v": {"N": version.to_string()}},
                        });
                        match client.call("PutItem", &put) {
                            Ok(_) => {
                                acknowledged.lock().unwrap().insert(key, version);
                            }
                            Err(ClientError::Service { code, message, .. }) => {
                                panic!("PutItem answered {code}: {message}")
                            }
                            // The node died mid-request: not acknowledged; it may or may not
                            // have been written.
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + 150 * round));
        node.kill_and_restart().unwrap();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }

        let expected = acknowledged.lock().unwrap().clone();
        assert!(
            !expected.is_empty(),
            "round {round}: no write was acknowledged"
        );
        let reader = client(node.endpoint());
        for (key, version) in &expected {
            let item = reader
                .call(
                    "GetItem",
                    &json!({"TableName": "kill", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
                )
                .unwrap();
            let stored: u64 = item["Item"]["v"]["N"]
                .as_str()
                .unwrap_or_else(|| panic!("round {round}: acknowledged {key} lost: {item}"))
                .parse()
                .unwrap();
            // A write in flight at the kill may have landed after the acknowledged one:
            // never older than what was acknowledged.
            assert!(
                stored >= *version,
                "round {round}: {key} went back from {version} to {stored}"
            );
        }
    }
}
