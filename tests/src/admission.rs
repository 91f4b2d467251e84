//! Load and capacity helpers for the admission tests: `ddbctl bench` at a fixed rate and
//! `ddbctl table capacity`, both as JSON.

use serde_json::Value;

/// A cluster's API endpoint and the key to sign with.
pub struct Signer<'a> {
    /// `http://host:port` of a node.
    pub endpoint: String,
    /// The access key id.
    pub key_id: &'a str,
    /// Its secret.
    pub secret: &'a str,
}

impl Signer<'_> {
    /// `ddbctl -o json --endpoint … <args>` signed with this key.
    pub fn ddbctl(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec![
            "--endpoint",
            &self.endpoint,
            "--access-key-id",
            self.key_id,
            "--secret-access-key",
            self.secret,
        ];
        all.extend_from_slice(args);
        crate::ddbctl_json(&all)
    }

    /// `ddbctl --endpoint … <args>` as people see it: exit code and standard output.
    ///
    /// # Panics
    /// When ddbctl cannot be started.
    pub fn ddbctl_text(&self, args: &[&str]) -> (i32, String) {
        let output = std::process::Command::new(crate::binary("ddbctl"))
            .args(["--endpoint", &self.endpoint])
            .args(["--access-key-id", self.key_id])
            .args(["--secret-access-key", self.secret])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("starting ddbctl: {e}"));
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

/// A `ddbctl local up` of `nodes` nodes started for an admission test, with the key it printed.
pub struct AdmissionCluster {
    /// The running cluster (stopped when dropped).
    pub cluster: crate::LocalUp,
    /// The first node's API port; node `n` listens on `base + n`.
    pub base: u16,
    /// The access key id.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
}

impl AdmissionCluster {
    /// Starts `nodes` nodes in `dir` with `extra` arguments to `ddbctl local up` and waits until
    /// they are ready.
    pub fn start(dir: &std::path::Path, nodes: u16, extra: &[&str]) -> Self {
        let base = crate::free_cluster_base_port(nodes);
        let mut cluster = crate::LocalUp::start(dir, base, nodes, extra);
        let (key_id, secret) = crate::parse_export(&cluster.wait_for_ready());
        AdmissionCluster {
            cluster,
            base,
            key_id,
            secret,
        }
    }

    /// The API endpoint of node `offset` (0 is the first).
    pub fn endpoint(&self, offset: u16) -> String {
        format!("http://127.0.0.1:{}", self.base + offset)
    }

    /// A signer for node `offset`.
    pub fn signer(&self, offset: u16) -> Signer<'_> {
        Signer {
            endpoint: self.endpoint(offset),
            key_id: &self.key_id,
            secret: &self.secret,
        }
    }
}

/// Creates `table` (hash key `pk`, range key `sk`, as `ddbctl bench` uses them), PROVISIONED
/// with 1 RCU and `wcu` WCU.
///
/// # Panics
/// When ddbctl fails.
#[allow(clippy::panic)]
pub fn create_provisioned(signer: &Signer<'_>, table: &str, wcu: u64) {
    let wcu = wcu.to_string();
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
        &wcu,
    ];
    let (code, answer) = signer.ddbctl(&args);
    assert_eq!(code, 0, "{answer}");
}

/// What one bench run saw.
#[derive(Clone, Debug, Default)]
pub struct Load {
    /// Requests answered successfully.
    pub ops: u64,
    /// Requests throttled (`ProvisionedThroughputExceededException`).
    pub throttled: u64,
    /// Any other error.
    pub other_errors: u64,
}

impl Load {
    /// Throttled requests as a fraction of all requests.
    pub fn throttled_fraction(&self) -> f64 {
        let total = self.ops + self.throttled + self.other_errors;
        if total == 0 {
            0.0
        } else {
            self.throttled as f64 / total as f64
        }
    }
}

/// One `ddbctl bench --workload put` run on `table` at `rate` writes/s for `seconds`, spread
/// over `spread` (an endpoint may repeat to send it more of the threads), with `extra`
/// arguments (`--zipf`, `--items`…).
///
/// # Panics
/// When the bench prints no report.
#[allow(clippy::panic)]
pub fn put_load(
    signer: &Signer<'_>,
    table: &str,
    rate: u64,
    seconds: u64,
    spread: &[String],
    extra: &[&str],
) -> Load {
    let (rate, seconds, spread) = (rate.to_string(), seconds.to_string(), spread.join(","));
    let mut args = vec![
        "bench",
        "--table",
        table,
        "--workload",
        "put",
        "--rate",
        &rate,
        "--duration",
        &seconds,
        "--concurrency",
        "8",
        "--spread",
        &spread,
    ];
    args.extend_from_slice(extra);
    let (_, report) = signer.ddbctl(&args);
    let report = match &report {
        Value::Array(reports) => reports.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let ops = report.get("ops").and_then(Value::as_u64);
    let Some(ops) = ops else {
        panic!("no bench report: {report}");
    };
    let errors = report.get("errors_by_code").cloned().unwrap_or_default();
    let throttled = errors
        .get("ProvisionedThroughputExceededException")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let all_errors: u64 = errors
        .as_object()
        .map(|codes| codes.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    Load {
        ops,
        throttled,
        other_errors: all_errors - throttled,
    }
}

/// `ddbctl table capacity <table>` as JSON.
pub fn capacity(signer: &Signer<'_>, table: &str) -> Value {
    signer.ddbctl(&["table", "capacity", table]).1
}

/// The write units each partition's replicas consumed, by partition id (summed over replicas
/// that served writes: the leaders).
pub fn partition_write_units(capacity: &Value) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> = Vec::new();
    for row in capacity["partitions"].as_array().into_iter().flatten() {
        if row["kind"] != "write" {
            continue;
        }
        let id = row["partition_id"].as_u64().unwrap_or(0);
        let units = row["consumed_units"].as_f64().unwrap_or(0.0);
        match out.iter_mut().find(|(known, _)| *known == id) {
            Some((_, total)) => *total += units,
            None => out.push((id, units)),
        }
    }
    out.sort_by_key(|(id, _)| *id);
    out
}
