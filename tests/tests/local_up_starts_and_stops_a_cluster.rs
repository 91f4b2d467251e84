//! `ddbctl local up` starts three real ddbd processes that all accept one generated key,
//! keeps that key private (mode 0600), stops every node on SIGINT and exits 0, and a second run
//! on the same directory comes back with the same key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use ddb::client::{Client, ClientConfig};
use ddb::sigv4::Credential;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::json;

const NODES: u16 = 3;
/// ddbctl waits up to 30 s for the nodes itself; this leaves room for a slow machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn local_up_starts_three_nodes_stops_them_on_sigint_and_restarts_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);

    let mut first = LocalUp::start(dir.path(), base);
    let export = first.wait_for_ready();
    for port in api_ports(base) {
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
    for port in api_ports(base) {
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
            ddb_tests::port_is_free(port),
            "port {port} still taken after ddbctl exited: a ddbd was left running"
        );
    }

    let mut second = LocalUp::start(dir.path(), base);
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

/// A running `ddbctl local up --no-status` in its own process group; dropping it kills the
/// whole group (ddbctl and the ddbd processes it started) so a failing test leaves nothing
/// behind.
struct LocalUp {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl LocalUp {
    fn start(dir: &Path, base: u16) -> Self {
        let mut child = Command::new(ddb_tests::binary("ddbctl"))
            .args(["local", "up", "--no-status", "--dir"])
            .arg(dir)
            .args(["--base-port", &base.to_string()])
            .env("DDB_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        LocalUp {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for `ready: 3 nodes` and returns the `export AWS_…` line printed before it.
    fn wait_for_ready(&mut self) -> String {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no `ready:` line within {READY_TIMEOUT:?} ({e}); output so far:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if line.starts_with("ready:") {
                assert_eq!(line, format!("ready: {NODES} nodes"));
                return self
                    .seen
                    .iter()
                    .rev()
                    .find(|l| l.starts_with("export AWS_ACCESS_KEY_ID="))
                    .cloned()
                    .unwrap_or_else(|| panic!("no export line in:\n{}", self.seen.join("\n")));
            }
        }
    }

    /// Sends SIGINT to ddbctl (as Ctrl-C would) and waits for it to exit.
    fn interrupt_and_wait(&mut self) -> ExitStatus {
        kill_process(Pid::from_child(&self.child), Signal::INT).unwrap();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ddbctl still running {EXIT_TIMEOUT:?} after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        // The group outlives ddbctl while any ddbd it started is alive; ESRCH means none is.
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}

fn api_ports(base: u16) -> impl Iterator<Item = u16> {
    base..base + NODES
}

/// `export AWS_ACCESS_KEY_ID=K AWS_SECRET_ACCESS_KEY=S AWS_REGION=R` → (K, S).
fn parse_export(line: &str) -> (String, String) {
    let value = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_string()
    };
    (value("AWS_ACCESS_KEY_ID="), value("AWS_SECRET_ACCESS_KEY="))
}

fn client(port: u16, key_id: &str, secret: &str) -> Client {
    Client::new(ClientConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        credential: Credential::new(key_id, secret),
        session_token: None,
        region: "us-east-1".to_string(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}
