//! Request counters and latency sums per operation and outcome, in Prometheus text format.
//!
//! Metric names (stable; documented in `docs/operations.md`):
//! - `ddb_requests_total{operation, outcome}`: requests answered;
//! - `ddb_request_seconds_sum{operation}` and `ddb_request_seconds_count{operation}`.
//!
//! Outcomes: `ok`, `client_error` (4xx that is not throttling), `throttled`, `server_error`
//! (5xx: what counts against availability).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::protocol::ErrorCode;

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

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(String, Outcome), u64>,
    seconds: BTreeMap<String, (f64, u64)>,
}

/// The node's request metrics.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Counts one request.
    pub fn record(&self, operation: &str, outcome: Outcome, elapsed: Duration) {
        let operation = if operation.is_empty() {
            "unknown"
        } else {
            operation
        };
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counters
            .requests
            .entry((operation.to_string(), outcome))
            .or_default() += 1;
        let sum = counters.seconds.entry(operation.to_string()).or_default();
        sum.0 += elapsed.as_secs_f64();
        sum.1 += 1;
    }

    /// Requests counted for `operation` with `outcome`.
    #[must_use]
    pub fn count(&self, operation: &str, outcome: Outcome) -> u64 {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .requests
            .get(&(operation.to_string(), outcome))
            .copied()
            .unwrap_or(0)
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
        for ((operation, outcome), n) in &counters.requests {
            let _ = writeln!(
                out,
                "ddb_requests_total{{operation=\"{operation}\",outcome=\"{}\"}} {n}",
                outcome.label()
            );
        }
        out.push_str("# HELP ddb_request_seconds Time to answer DynamoDB API requests.\n");
        out.push_str("# TYPE ddb_request_seconds summary\n");
        for (operation, (sum, count)) in &counters.seconds {
            let _ = writeln!(
                out,
                "ddb_request_seconds_sum{{operation=\"{operation}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "ddb_request_seconds_count{{operation=\"{operation}\"}} {count}"
            );
        }
        out
    }
}
