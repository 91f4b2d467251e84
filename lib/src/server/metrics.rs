//! Request counters and latency sums per operation and outcome, in Prometheus text format.
//!
//! Metric names (stable; documented in `docs/node.md`):
//! - `ddb_requests_total{operation, outcome}`: requests answered;
//! - `ddb_request_seconds_sum{operation}` and `ddb_request_seconds_count{operation}`.
//!
//! Outcomes: `ok`, `client_error` (4xx that is not throttling), `throttled`, `server_error`
//! (5xx: what counts against availability). The `operation` label is one of
//! [`OPERATIONS`](crate::protocol::OPERATIONS) or `unknown`: clients choose the target header,
//! so any other value would let them create series without bound.

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

/// The node's request metrics.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<&'static str, OperationCounters>>,
}

impl Metrics {
    /// Counts one request.
    pub fn record(&self, operation: &str, outcome: Outcome, elapsed: Duration) {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counters.entry(operation_label(operation)).or_default();
        entry.by_outcome[outcome as usize] += 1;
        entry.seconds += elapsed.as_secs_f64();
    }

    /// Requests counted for `operation` with `outcome`.
    #[must_use]
    pub fn count(&self, operation: &str, outcome: Outcome) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .get(operation_label(operation))
            .map_or(0, |c| c.by_outcome[outcome as usize])
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
            "# HELP ddb_requests_total DynamoDB API requests answered, by operation and outcome.\n",
        );
        out.push_str("# TYPE ddb_requests_total counter\n");
        for (operation, c) in counters.iter() {
            for outcome in Outcome::ALL {
                let n = c.by_outcome[outcome as usize];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "ddb_requests_total{{operation=\"{operation}\",outcome=\"{}\"}} {n}",
                        outcome.label()
                    );
                }
            }
        }
        out.push_str("# HELP ddb_request_seconds Time to answer DynamoDB API requests.\n");
        out.push_str("# TYPE ddb_request_seconds summary\n");
        for (operation, c) in counters.iter() {
            let count: u64 = c.by_outcome.iter().sum();
            let _ = writeln!(
                out,
                "ddb_request_seconds_sum{{operation=\"{operation}\"}} {}",
                c.seconds
            );
            let _ = writeln!(
                out,
                "ddb_request_seconds_count{{operation=\"{operation}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_operation_names_collapse_into_unknown() {
        let metrics = Metrics::default();
        for i in 0..100 {
            metrics.record(&format!("Made{i}Up"), Outcome::ClientError, Duration::ZERO);
        }
        metrics.record("", Outcome::ClientError, Duration::ZERO);
        metrics.record("PutItem", Outcome::Ok, Duration::from_millis(2));
        assert_eq!(metrics.count("unknown", Outcome::ClientError), 101);
        assert_eq!(metrics.count("PutItem", Outcome::Ok), 1);
        let text = metrics.render();
        assert_eq!(text.matches("ddb_requests_total{").count(), 2, "{text}");
        assert!(text.contains("ddb_request_seconds_count{operation=\"PutItem\"} 1"));
    }
}
