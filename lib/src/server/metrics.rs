//! Request counters and latency sums per table, operation and outcome, in Prometheus text
//! format, under the label names the canary uses for what clients see (`op`, `outcome`).
//!
//! Metric names (stable; documented in `docs/node.md`):
//! - `ddb_requests_total{table, op, outcome}`: requests answered;
//! - `ddb_request_seconds_sum{op}` and `ddb_request_seconds_count{op}`.
//!
//! Outcomes: `ok`, `client_error` (4xx that is not throttling), `throttled`, `server_error`
//! (5xx: what counts against availability). The `op` label is one of
//! [`OPERATIONS`](crate::protocol::OPERATIONS) or `unknown`: clients choose the target header,
//! so any other value would let them create series without bound. For the same reason `table`
//! is a table the catalog holds, or `-` (none named, several, or one that does not exist).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::protocol::{ErrorCode, OPERATIONS};

/// How a request ended, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Answered successfully.
    Ok,
    /// Rejected for the client's fault (validation, failed condition, auth).
    ClientError,
    /// Throttled.
    Throttled,
    /// Failed for the server's fault (5xx).
    ServerError,
}

impl Outcome {
    /// The outcome of a request that ended in `code`.
    #[must_use]
    pub fn from_error(code: ErrorCode) -> Self {
        match code {
            ErrorCode::ProvisionedThroughputExceededException | ErrorCode::ThrottlingException => {
                Outcome::Throttled
            }
            code if code.is_server_fault() => Outcome::ServerError,
            _ => Outcome::ClientError,
        }
    }

    const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::Throttled,
        Outcome::ServerError,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
        }
    }
}

/// Counts of one operation; the request count is the sum over outcomes.
#[derive(Default)]
struct OperationCounters {
    by_outcome: [u64; 4],
    seconds: f64,
}

/// The label for `operation`: itself if ddb knows it, else `unknown`.
fn operation_label(operation: &str) -> &'static str {
    OPERATIONS
        .iter()
        .copied()
        .find(|known| *known == operation)
        .unwrap_or("unknown")
}

/// The `table` label of requests that name no single existing table.
pub const NO_TABLE: &str = "-";

/// The node's request metrics.
#[derive(Default)]
pub struct Metrics {
    /// By (table, operation).
    counters: Mutex<BTreeMap<(String, &'static str), OperationCounters>>,
}

impl Metrics {
    /// Counts one request on `table` (a table the catalog holds, or [`NO_TABLE`]).
    pub fn record(&self, table: &str, operation: &str, outcome: Outcome, elapsed: Duration) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (table.to_string(), operation_label(operation));
        let entry = counters.entry(key).or_default();
        entry.by_outcome[outcome as usize] += 1;
        entry.seconds += elapsed.as_secs_f64();
    }

    /// Requests counted for `operation` with `outcome`, over every table.
    #[must_use]
    pub fn count(&self, operation: &str, outcome: Outcome) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let operation = operation_label(operation);
        counters
            .iter()
            .filter(|((_, op), _)| *op == operation)
            .map(|(_, c)| c.by_outcome[outcome as usize])
            .sum()
    }

    /// Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str(
            "# HELP ddb_requests_total DynamoDB API requests answered, by table, operation and outcome.\n",
        );
        out.push_str("# TYPE ddb_requests_total counter\n");
        for ((table, operation), c) in counters.iter() {
            for outcome in Outcome::ALL {
                let n = c.by_outcome[outcome as usize];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "ddb_requests_total{{table=\"{}\",op=\"{operation}\",outcome=\"{}\"}} {n}",
                        escape_label(table),
                        outcome.label()
                    );
                }
            }
        }
        let mut by_operation: BTreeMap<&'static str, (u64, f64)> = BTreeMap::new();
        for ((_, operation), c) in counters.iter() {
            let entry = by_operation.entry(operation).or_default();
            entry.0 += c.by_outcome.iter().sum::<u64>();
            entry.1 += c.seconds;
        }
        out.push_str("# HELP ddb_request_seconds Time to answer DynamoDB API requests.\n");
        out.push_str("# TYPE ddb_request_seconds summary\n");
        for (operation, (count, seconds)) in by_operation {
            let _ = writeln!(
                out,
                "ddb_request_seconds_sum{{op=\"{operation}\"}} {seconds}"
            );
            let _ = writeln!(
                out,
                "ddb_request_seconds_count{{op=\"{operation}\"}} {count}"
            );
        }
        out
    }
}

/// A label value with Prometheus's escapes (table names may hold `.`, `-`, `_` only, but the
/// exposition stays valid whatever they hold).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the admission metrics (documented in `docs/admission.md`) from a node's
/// `/admission/status` document: per table at this router, per partition this node serves, and
/// per table at GAC when this node runs it.
pub fn render_admission(text: &mut String, status: &serde_json::Value) {
    use serde_json::Value;
    let number =
        |value: &Value, field: &str| value.get(field).and_then(Value::as_f64).unwrap_or(0.0);
    let families: [(&str, &str, &str, &str, &str); 9] = [
        (
            "ddb_router_consumed_units_total",
            "counter",
            "Capacity units consumed by requests this node routed.",
            "router",
            "consumed_units",
        ),
        (
            "ddb_router_throttled_total",
            "counter",
            "Requests this node's router throttled.",
            "router",
            "throttled",
        ),
        (
            "ddb_router_rate_units",
            "gauge",
            "Units per second this router admits for the table (GAC's grant, or the floor).",
            "router",
            "rate_units",
        ),
        (
            "ddb_partition_consumed_units_total",
            "counter",
            "Capacity units consumed at this node's replica of the partition.",
            "partition",
            "consumed_units",
        ),
        (
            "ddb_partition_throttled_total",
            "counter",
            "Requests this node's replica of the partition throttled.",
            "partition",
            "throttled",
        ),
        (
            "ddb_partition_burst_balance_units",
            "gauge",
            "Burst credit the partition has left.",
            "partition",
            "burst_balance",
        ),
        (
            "ddb_gac_rate_units",
            "gauge",
            "The table's rate at global admission control (on the metadata leader).",
            "gac",
            "rate_units",
        ),
        (
            "ddb_gac_burst_balance_units",
            "gauge",
            "The table's burst credit at global admission control.",
            "gac",
            "burst_balance",
        ),
        (
            "ddb_gac_demand_units",
            "gauge",
            "Routers' total demand for the table at global admission control (units/s).",
            "gac",
            "demand_units",
        ),
    ];
    let tables = status
        .get("tables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let partitions = status
        .get("partitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (name, kind, help, level, field) in families {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for capacity in ["read", "write"] {
            if level == "partition" {
                for partition in &partitions {
                    let table = partition
                        .get("table")
                        .and_then(Value::as_str)
                        .unwrap_or("-");
                    let id = partition
                        .get("partition_id")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    let value = number(&partition[capacity], field);
                    let _ = writeln!(
                        text,
                        "{name}{{table=\"{table}\",partition=\"{id}\",kind=\"{capacity}\"}} {value}"
                    );
                }
                continue;
            }
            for table in &tables {
                let stats = &table[capacity][level];
                if stats.is_null() {
                    continue;
                }
                let name_label = table.get("table").and_then(Value::as_str).unwrap_or("-");
                let value = number(stats, field);
                let _ = writeln!(
                    text,
                    "{name}{{table=\"{name_label}\",kind=\"{capacity}\"}} {value}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_operation_names_collapse_into_unknown() {
        let metrics = Metrics::default();
        for i in 0..100 {
            metrics.record(
                NO_TABLE,
                &format!("Made{i}Up"),
                Outcome::ClientError,
                Duration::ZERO,
            );
        }
        metrics.record(NO_TABLE, "", Outcome::ClientError, Duration::ZERO);
        metrics.record("orders", "PutItem", Outcome::Ok, Duration::from_millis(2));
        metrics.record(
            "users",
            "PutItem",
            Outcome::ServerError,
            Duration::from_millis(2),
        );
        assert_eq!(metrics.count("unknown", Outcome::ClientError), 101);
        assert_eq!(metrics.count("PutItem", Outcome::Ok), 1);
        let text = metrics.render();
        assert_eq!(text.matches("ddb_requests_total{").count(), 3, "{text}");
        assert!(text.contains(
            "ddb_requests_total{table=\"users\",op=\"PutItem\",outcome=\"server_error\"} 1"
        ));
        assert!(text.contains("ddb_request_seconds_count{op=\"PutItem\"} 2"));
        assert_eq!(escape_label("a\"b\\c"), "a\\\"b\\\\c");
    }
}
