//! A real `ddb-canary` against a three-node `ddbctl local up` cluster, its alarm windows
//! scaled down 500 times (an hour is 7.2 s), notifying a real HTTP receiver in this test as a
//! webhook and as Alertmanager:
//!
//! 1. a healthy run raises nothing;
//! 2. a node killed: the fast page alarm for its endpoint (and `node-down`) fires within the
//!    detection time the burn-rate arithmetic gives, both receivers get it, and it resolves
//!    after the node is started again;
//! 3. a 10% error rate injected into every node (a fresh canary, SLO 99%: burn 10): the slow
//!    page alarm (burn ≥ 6) fires, the fast one (burn ≥ 14.4) does not;
//! 4. `ddbctl canary report`, `alarms ls`, `alarms history` and `alarms silence` show it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ddb_tests::{Daemon, LocalUp, binary, internal_call, kill_node, parse_export, restart_node};
use serde_json::Value;

const NODES: u16 = 3;

/// Every request a receiver got: path and JSON body.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A plain HTTP server on loopback recording every POST; answers 200.
fn receiver() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(json) = serde_json::from_slice(&body) {
                log.lock().unwrap().push((path, json));
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (address, received)
}

fn start_canary(
    work: &Path,
    name: &str,
    base: u16,
    credentials: (&str, &str),
    slo: f64,
    receiver: &str,
) -> Daemon {
    let endpoints: Vec<String> = (0..NODES)
        .map(|i| format!("\"http://127.0.0.1:{}\"", base + i))
        .collect();
    let config = work.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"az = "a"
endpoints = [{endpoints}]
nodes = [{endpoints}]
access_key_id = "{key}"
secret_access_key = "{secret}"
table = "canary-{name}"
interval_ms = 100
timeout_ms = 5000
evaluate_every_ms = 200
window_ms = 2000
listen = "127.0.0.1:0"
data_dir = "{data}"
webhook_url = "{receiver}/webhook"
alertmanager_url = "{receiver}"
alertmanager_resend_ms = 1000

[cfa]
slo = {slo}
window_scale = 0.002
# A scaled 5-minute window holds 0.6 s: about 30 calls to one endpoint.
min_requests = 5
"#,
            endpoints = endpoints.join(", "),
            key = credentials.0,
            secret = credentials.1,
            data = work.join(name).display(),
        ),
    )
    .unwrap();
    Daemon::start("ddb-canary", &config)
}

/// `ddbctl -o json <args> --canary URL`: exit code and JSON.
fn ddbctl(canary: &Daemon, args: &[&str]) -> (i32, Value) {
    let mut args = args.to_vec();
    args.extend(["--canary", &canary.url]);
    ddb_tests::ddbctl_json(&args)
}

/// Alarms pending or firing now.
fn alarms(canary: &Daemon) -> Vec<Value> {
    let (_, answer) = ddbctl(canary, &["alarms", "ls"]);
    answer["alarms"].as_array().unwrap().clone()
}

fn firing<'a>(alarms: &'a [Value], name: &str, label: (&str, &str)) -> Option<&'a Value> {
    alarms.iter().find(|alarm| {
        alarm["name"] == name && alarm["state"] == "firing" && alarm["labels"][label.0] == label.1
    })
}

/// Waits (within `limit`) until `done` holds; how long it took.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

#[test]
fn alarms_fire_for_an_outage_and_a_slow_burn_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut cluster = LocalUp::start_with_env(
        dir.path(),
        base,
        NODES,
        &["--no-archive"],
        &[("DDB_FAULT_INJECTION", "1")],
    );
    let (key_id, secret) = parse_export(&cluster.wait_for_ready());
    let (receiver_url, received) = receiver();
    let work = tempfile::tempdir().unwrap();
    let canary = start_canary(
        work.path(),
        "outage",
        base,
        (&key_id, &secret),
        0.999,
        &receiver_url,
    );

    // 1. Healthy: the windows fill (the long page window is 7.2 s) and nothing fires.
    std::thread::sleep(Duration::from_secs(9));
    let now = alarms(&canary);
    assert!(
        now.iter().all(|alarm| alarm["state"] != "firing"),
        "a healthy run raised {now:?}"
    );
    assert!(
        received.lock().unwrap().is_empty(),
        "{:?}",
        received.lock().unwrap()
    );
    assert_eq!(
        ddb_tests::http_get(canary.port(), "/healthz").as_deref(),
        Some("ok\n"),
        "the canary's probes run"
    );

    // 2. Node 3 dies. Its endpoint fails every call: the fast page alarm needs the 7.2 s
    // window's error ratio to reach 14.4 × 0.1% = 1.44%, about 0.1 s of outage, and the
    // 0.6 s window's too: it fires within a second or so of evaluations.
    let victim = format!("http://127.0.0.1:{}", base + 2);
    kill_node(dir.path(), 3);
    let detected = wait_for(
        Duration::from_secs(20),
        "page-fast for the dead node",
        || firing(&alarms(&canary), "page-fast", ("endpoint", &victim)).is_some(),
    );
    // The arithmetic gives 0.1 s of outage, plus a probe interval (0.1 s), an evaluation
    // (0.2 s) and this test's polling through ddbctl; the 20 s bound leaves room for a loaded
    // machine (scripts/measure-canary measures it: docs/benchmarks.md).
    eprintln!("outage detected after {detected:?}");
    wait_for(Duration::from_secs(10), "node-down", || {
        firing(&alarms(&canary), "node-down", ("node", &victim)).is_some()
    });
    let (code, _) = ddbctl(&canary, &["alarms", "ls"]);
    assert_eq!(code, 1, "alarms ls exits 1 while an alarm fires");
    wait_for(Duration::from_secs(10), "both receivers notified", || {
        let got = received.lock().unwrap();
        let webhook = got.iter().any(|(path, body)| {
            path == "/webhook"
                && body["event"] == "firing"
                && body["alertname"] == "page-fast"
                && body["labels"]["endpoint"] == victim.as_str()
        });
        let alertmanager = got.iter().any(|(path, body)| {
            path == "/api/v2/alerts"
                && body.as_array().is_some_and(|alerts| {
                    alerts.iter().any(|alert| {
                        alert["labels"]["alertname"] == "page-fast"
                            && alert["labels"]["endpoint"] == victim.as_str()
                            && alert["startsAt"].is_string()
                    })
                })
        });
        webhook && alertmanager
    });

    // Back: the alarm resolves once the short window clears and the hysteresis passes.
    let restarted = restart_node(dir.path(), 3, &[("DDB_FAULT_INJECTION", "1")]);
    let reset = wait_for(Duration::from_secs(60), "page-fast resolved", || {
        alarms(&canary).iter().all(|alarm| {
            !(alarm["name"] == "page-fast" && alarm["labels"]["endpoint"] == victim.as_str())
        })
    });
    eprintln!("reset {reset:?} after the restart began");
    wait_for(Duration::from_secs(10), "resolutions delivered", || {
        let got = received.lock().unwrap();
        got.iter().any(|(path, body)| {
            path == "/webhook" && body["event"] == "resolved" && body["alertname"] == "page-fast"
        }) && got.iter().any(|(path, body)| {
            path == "/api/v2/alerts"
                && body.as_array().is_some_and(|alerts| {
                    alerts.iter().any(|alert| {
                        alert["labels"]["alertname"] == "page-fast" && alert["endsAt"].is_string()
                    })
                })
        })
    });
    let (_, history) = ddbctl(&canary, &["alarms", "history"]);
    let events: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["labels"]["endpoint"] == victim.as_str())
        .map(|entry| {
            (
                entry["name"].as_str().unwrap().to_string(),
                entry["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        events.contains(&("page-fast".to_string(), "firing".to_string()))
            && events.contains(&("page-fast".to_string(), "resolved".to_string())),
        "{events:?}"
    );
    // What customers saw, per endpoint and operation.
    let (code, report) = ddbctl(&canary, &["canary", "report"]);
    assert_eq!(code, 0);
    let windows = report[0]["windows"].as_array().unwrap();
    let failed_on_victim: u64 = windows
        .iter()
        .filter_map(|window| window["cells"][victim.as_str()]["PutItem"]["bad"].as_u64())
        .sum();
    assert!(failed_on_victim > 0, "{report}");
    // Node 3 has caught up and calls fail no more: no fast page or node-down alarm, pending
    // or firing, for a while (the slower alarms keep the outage in their longer windows).
    let mut quiet_since = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "the outage's fast alarms resolved",
        || {
            let current = alarms(&canary);
            if current
                .iter()
                .any(|alarm| alarm["name"] == "page-fast" || alarm["name"] == "node-down")
            {
                quiet_since = Instant::now();
            }
            quiet_since.elapsed() > Duration::from_secs(3)
        },
    );
    drop(canary);

    // 3. Every node fails 10% of its requests; a fresh canary with SLO 99% sees burn 10.
    let token = ddb::server::cluster_internal_token(
        std::fs::read_to_string(dir.path().join("cluster.secret"))
            .unwrap()
            .trim(),
    );
    for port in base..base + NODES {
        let (code, body) = internal_call(port, &token, "POST", "/internal/fault/errors?rate=0.1");
        assert_eq!(code, 200, "{body}");
    }
    let canary = start_canary(
        work.path(),
        "slow-burn",
        base,
        (&key_id, &secret),
        0.99,
        &receiver_url,
    );
    let first = format!("http://127.0.0.1:{base}");
    wait_for(
        Duration::from_secs(30),
        "page-slow under a 10% error rate",
        || firing(&alarms(&canary), "page-slow", ("endpoint", &first)).is_some(),
    );
    // The fast alarm never fires at burn 10: watch for a while.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(5) {
        let now = alarms(&canary);
        assert!(
            firing(&now, "page-fast", ("source", "canary")).is_none(),
            "page-fast fired at burn 10: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // 4. A silence keeps the alarm listed but marks it silenced.
    let output = Command::new(binary("ddbctl"))
        .args([
            "-o",
            "json",
            "alarms",
            "silence",
            "--match",
            "alertname=page-slow",
        ])
        .args(["--for", "10m", "--comment", "known: fault injected"])
        .args(["--canary", &canary.url])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    wait_for(Duration::from_secs(5), "silenced", || {
        alarms(&canary)
            .iter()
            .filter(|alarm| alarm["name"] == "page-slow")
            .all(|alarm| alarm["silenced"] == true)
    });
    drop(restarted);
    assert!(cluster.interrupt_and_wait().success());
}
