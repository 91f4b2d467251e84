//! `ddbctl drill power-off` (the short form CI runs): 20 SIGKILLs of random nodes of a real
//! three-node cluster under a recorded workload, then every check passes — no acknowledged
//! write lost, linearizable histories, equal replicas — and no ddbd is left running.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

const NODES: u16 = 3;
/// The whole drill, start to report; it takes well under a minute on a 2-core machine.
const DRILL_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn twenty_power_offs_lose_no_acknowledged_write_and_leave_equal_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let base = ddb_tests::free_cluster_base_port(NODES);
    let mut drill = Drill(
        Command::new(ddb_tests::binary("ddbctl"))
            .args(["drill", "power-off", "--fresh", "--seed", "7"])
            .args(["--kills", "20", "--interval-ms", "800", "--down-ms", "200"])
            .args(["--clients", "3", "--keys", "50"])
            .arg("--dir")
            .arg(dir.path())
            .args(["--base-port", &base.to_string()])
            .env("DDB_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let mut stdout = drill.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + DRILL_TIMEOUT;
    let status = loop {
        if let Some(status) = drill.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the drill did not finish within {DRILL_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let report = reader.join().unwrap();
    assert!(
        status.success(),
        "drill exited with {status}; report:\n{report}"
    );
    let line = |prefix: &str| {
        report
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{report}"))
            .to_string()
    };
    assert!(line("drill power-off: seed 7").contains("--seed 7"));
    assert!(line("kills: ").starts_with("kills: 20 ("), "{report}");
    for check in [
        "every node came back",
        "no acknowledged write lost",
        "linearizable",
        "replicas equal",
    ] {
        assert!(
            line(&format!("check {check}: ")).contains(": passed"),
            "{report}"
        );
    }
    assert_eq!(line("verdict: "), "verdict: all checks passed");
    // Writes were acknowledged, so the checks had something to check.
    let writes = line("writes: ");
    let acknowledged: u64 = writes
        .trim_start_matches("writes: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(acknowledged > 0, "{report}");
    // The cluster was stopped and its logs left behind.
    for port in ddb_tests::cluster_ports(base, NODES) {
        assert!(
            ddb_tests::nothing_listens_on(port),
            "port {port} still taken: a ddbd was left running"
        );
    }
    for node in 1..=NODES {
        assert!(dir.path().join(format!("node{node}/ddbd.log")).is_file());
    }
}

/// The drill's process group; dropping it kills ddbctl and every ddbd it started, so a failing
/// test leaves nothing behind.
struct Drill(Child);

impl Drop for Drill {
    fn drop(&mut self) {
        let _ = kill_process_group(Pid::from_child(&self.0), Signal::KILL);
        let _ = self.0.wait();
    }
}
