//! A real `ddbd` killed with SIGKILL while clients write keeps every acknowledged write: after
//! each restart, every item whose PutItem was answered 200 reads back, strongly consistent,
//! with the value last acknowledged for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ddb::sigv4::{Credential, RequestParts, Signer};
use serde_json::{Value, json};

const ACCESS_KEY: &str = "AKIDKILLTEST";
const SECRET: &str = "kill-test-secret";
const WRITERS: usize = 8;
const KILLS: usize = 5;

struct Node {
    child: Child,
    address: SocketAddr,
    /// Kept open: the node's later output must have a reader.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_node(data_dir: &std::path::Path, port: u16) -> Node {
    let mut child = Command::new(ddb_tests::binary("ddbd"))
        .args(["--data-dir", data_dir.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DDB_ACCESS_KEY_ID", ACCESS_KEY)
        .env("DDB_SECRET_ACCESS_KEY", SECRET)
        .env("DDB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.contains("serving DynamoDB"),
        "ddbd did not start: {line:?}"
    );
    Node {
        child,
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        _stdout: stdout,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One signed DynamoDB call on a fresh connection; `Err` for transport failures (the node
/// may be dead), `Ok((status, body))` otherwise.
fn call(address: SocketAddr, operation: &str, body: &Value) -> std::io::Result<(u16, Value)> {
    let body = serde_json::to_vec(body)?;
    let host = address.to_string();
    let target = format!("DynamoDB_20120810.{operation}");
    let headers = [
        ("host", host.as_str()),
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", target.as_str()),
    ];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = Signer::new(Credential::new(ACCESS_KEY, SECRET), "us-east-1", "dynamodb")
        .sign(
            &RequestParts {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: &body,
            },
            now,
        )
        .unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "POST / HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers.iter().copied().chain(signature.to_pairs()) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(&body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("incomplete response"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let value = serde_json::from_str(payload).map_err(std::io::Error::other)?;
    Ok((status, value))
}

#[test]
fn acknowledged_writes_survive_repeated_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut node = start_node(dir.path(), port);
    let (status, body) = call(
        node.address,
        "CreateTable",
        &json!({
            "TableName": "kill",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
        }),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // key -> last acknowledged version
    let acknowledged: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut version = 0u64;
    for round in 0..KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let acknowledged = Arc::clone(&acknowledged);
                let stop = Arc::clone(&stop);
                let address = node.address;
                let base = version + (w as u64) * 1_000_000;
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        // Each writer owns 50 keys and overwrites them, so a lost overwrite
                        // shows up as an old version.
                        let key = format!("w{w}-k{}", n % 50);
                        let v = base + n;
                        let put = json!({
                            "TableName": "kill",
                            "Item": {"pk": {"S": key}, "v": {"N": v.to_string()}},
                        });
                        match call(address, "PutItem", &put) {
                            Ok((200, _)) => {
                                acknowledged.lock().unwrap().insert(key, v);
                            }
                            Ok((status, body)) => panic!("PutItem answered {status}: {body}"),
                            // The node died mid-request: not acknowledged, may or may not be there.
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                })
            })
            .collect();
        let run_for = Duration::from_millis(300 + 150 * round as u64);
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(20));
        }
        node.child.kill().unwrap(); // SIGKILL
        node.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
        version += 10_000_000;

        node = start_node(dir.path(), port);
        let expected = acknowledged.lock().unwrap().clone();
        assert!(
            !expected.is_empty(),
            "round {round}: no write was acknowledged"
        );
        for (key, v) in &expected {
            let (status, body) = call(
                node.address,
                "GetItem",
                &json!({"TableName": "kill", "Key": {"pk": {"S": key}}, "ConsistentRead": true}),
            )
            .unwrap_or_else(|e| panic!("round {round}: GetItem {key}: {e}"));
            assert_eq!(status, 200, "{body}");
            let stored: u64 = body["Item"]["v"]["N"]
                .as_str()
                .unwrap_or_else(|| panic!("round {round}: acknowledged {key} lost: {body}"))
                .parse()
                .unwrap();
            // A write that was in flight at the kill may have landed after the acknowledged
            // one: never older than what was acknowledged.
            assert!(
                stored >= *v,
                "round {round}: {key} went back from {v} to {stored}"
            );
        }
    }
}
