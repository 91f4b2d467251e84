//! A real `ddb-scrubber` beside a `ddbctl local up` cluster, driven through `ddbctl scrub`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::Daemon;

/// Starts a scrubber of the `nodes`-node cluster in `cluster_dir` (API ports from `base`,
/// archive in `cluster_dir/archive`), keeping its state in `data_dir`.
///
/// # Panics
/// When its configuration cannot be written or it does not start.
#[allow(clippy::unwrap_used)]
pub fn start_scrubber(cluster_dir: &Path, base: u16, nodes: u16, data_dir: &Path) -> Daemon {
    let nodes: Vec<String> = (0..nodes)
        .map(|i| format!("\"http://127.0.0.1:{}\"", base + i))
        .collect();
    let config = data_dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "nodes = [{}]\ncluster_secret_file = \"{}\"\narchive = \"file://{}\"\ndata_dir = \"{}\"\nlisten = \"127.0.0.1:0\"\ninterval_ms = 300\n",
            nodes.join(", "),
            cluster_dir.join("cluster.secret").display(),
            cluster_dir.join("archive").display(),
            data_dir.display()
        ),
    )
    .unwrap();
    Daemon::start("ddb-scrubber", &config)
}

/// `ddbctl -o json scrub <args> --scrubber URL`: exit code and the JSON it printed.
pub fn scrub(scrubber: &Daemon, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["scrub"];
    all.extend(args);
    all.extend(["--scrubber", &scrubber.url]);
    crate::ddbctl_json(&all)
}

/// `ddbctl -o json scrub run [--deep]`: exit code and the status it printed.
pub fn scrub_run(scrubber: &Daemon, deep: bool) -> (i32, serde_json::Value) {
    let mut args = vec!["run"];
    if deep {
        args.push("--deep");
    }
    scrub(scrubber, &args)
}

/// Runs passes until `done` holds for the status one prints (within a minute); its exit code
/// and that status.
///
/// # Panics
/// When a minute passes first.
#[allow(clippy::panic)]
pub fn scrub_until(
    scrubber: &Daemon,
    deep: bool,
    done: impl Fn(&serde_json::Value) -> bool,
) -> (i32, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, status) = scrub_run(scrubber, deep);
        if done(&status) {
            return (code, status);
        }
        assert!(Instant::now() < deadline, "never came to pass: {status}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Whether every check of `partition` (a status entry) agrees.
#[must_use]
pub fn all_checks_agree(partition: &serde_json::Value) -> bool {
    partition["archive"]["outcome"] == "agree"
        && partition["peers"]["outcome"] == "agree"
        && partition["at_rest"]["outcome"] == "agree"
}

/// Runs deep passes until every check of at least `partitions` partitions agrees (under writes
/// a check may be pending for a pass); the status then.
///
/// # Panics
/// When that does not come to pass within a minute, or the pass exits non-zero.
#[allow(clippy::unwrap_used)]
pub fn proven(scrubber: &Daemon, partitions: usize) -> serde_json::Value {
    let (code, status) = scrub_until(scrubber, true, |status| {
        let reports = status["partitions"].as_object().unwrap();
        reports.len() >= partitions && reports.values().all(all_checks_agree)
    });
    assert_eq!(code, 0, "{status}");
    status
}

/// The body of the scrubber's `/healthz`: `ok` or `scrub mismatch`.
///
/// # Panics
/// When the scrubber does not answer.
#[allow(clippy::unwrap_used)]
pub fn health(scrubber: &Daemon) -> String {
    let port: u16 = scrubber.url.rsplit(':').next().unwrap().parse().unwrap();
    crate::http_get(port, "/healthz")
        .unwrap()
        .trim()
        .to_string()
}
