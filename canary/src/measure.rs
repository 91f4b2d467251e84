//! What the canary saw: counters and latency histograms by `{op, az, endpoint, outcome}`, and
//! availability per window (5 minutes by default) for reports.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::probe::{Call, Outcome};

/// Upper bounds of the latency buckets, milliseconds (the last bucket is unbounded).
pub const BUCKETS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// A latency histogram over [`BUCKETS_MS`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Counts per bucket; the last entry counts what exceeds every bound.
    pub counts: Vec<u64>,
    /// Sum of the observations, seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, elapsed: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS_MS.len() + 1];
        }
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.sum_seconds += elapsed.as_secs_f64();
    }

    /// Observations counted.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The upper bound (ms) of the bucket holding quantile `q` (0..1); `None` when empty.
    /// Observations past the last bound report twice it.
    #[must_use]
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(
                    BUCKETS_MS
                        .get(bucket)
                        .copied()
                        .unwrap_or(BUCKETS_MS[BUCKETS_MS.len() - 1] * 2.0),
                );
            }
        }
        None
    }

    fn merge(&mut self, other: &Histogram) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS_MS.len() + 1];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }
}

/// One endpoint and operation in one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Calls that counted for availability.
    pub good: u64,
    /// Calls that counted against it.
    pub bad: u64,
    /// Throttled calls.
    pub throttled: u64,
    /// Client errors (not counted either way).
    pub client_errors: u64,
    /// Latency of every call.
    pub latency: Histogram,
}

impl Cell {
    fn add(&mut self, call: &Call) {
        match call.outcome.against_availability() {
            Some(true) => self.bad += 1,
            Some(false) => self.good += 1,
            None if call.outcome == Outcome::Throttled => self.throttled += 1,
            None => self.client_errors += 1,
        }
        self.latency.observe(call.elapsed);
    }

    /// Merges `other` into this cell.
    pub fn merge(&mut self, other: &Cell) {
        self.good += other.good;
        self.bad += other.bad;
        self.throttled += other.throttled;
        self.client_errors += other.client_errors;
        self.latency.merge(&other.latency);
    }

    /// good / (good + bad), `None` when nothing counted.
    #[must_use]
    pub fn availability(&self) -> Option<f64> {
        let counted = self.good + self.bad;
        (counted > 0).then(|| self.good as f64 / counted as f64)
    }
}

/// One availability window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// When it starts (ms since the epoch; a multiple of the window width).
    pub start_ms: u64,
    /// By endpoint, then operation.
    pub cells: BTreeMap<String, BTreeMap<String, Cell>>,
}

/// The canary's report (`GET /report`), which `ddbctl canary report` renders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The canary's AZ.
    pub az: String,
    /// Window width, ms.
    pub window_ms: u64,
    /// Oldest first; the last is the one under way.
    pub windows: Vec<Window>,
}

/// Counters, histograms and windows.
pub struct Measurements {
    az: String,
    window_ms: u64,
    windows_kept: usize,
    /// By (endpoint, op, outcome).
    counters: BTreeMap<(String, &'static str, Outcome), u64>,
    /// By (endpoint, op).
    latency: BTreeMap<(String, &'static str), Histogram>,
    windows: VecDeque<Window>,
}

impl Measurements {
    /// Empty measurements of a canary in `az`.
    #[must_use]
    pub fn new(az: &str, window_ms: u64, windows_kept: usize) -> Self {
        Measurements {
            az: az.to_string(),
            window_ms: window_ms.max(1),
            windows_kept: windows_kept.max(1),
            counters: BTreeMap::new(),
            latency: BTreeMap::new(),
            windows: VecDeque::new(),
        }
    }

    /// Counts `call` against `endpoint`, made at `at_ms`.
    pub fn record(&mut self, endpoint: &str, call: &Call, at_ms: u64) {
        *self
            .counters
            .entry((endpoint.to_string(), call.op, call.outcome))
            .or_default() += 1;
        self.latency
            .entry((endpoint.to_string(), call.op))
            .or_default()
            .observe(call.elapsed);
        let start_ms = at_ms - at_ms % self.window_ms;
        if self.windows.back().is_none_or(|w| w.start_ms < start_ms) {
            self.windows.push_back(Window {
                start_ms,
                cells: BTreeMap::new(),
            });
            while self.windows.len() > self.windows_kept {
                self.windows.pop_front();
            }
        }
        let window = self
            .windows
            .iter_mut()
            .rev()
            .find(|w| w.start_ms <= start_ms);
        if let Some(window) = window {
            window
                .cells
                .entry(endpoint.to_string())
                .or_default()
                .entry(call.op.to_string())
                .or_default()
                .add(call);
        }
    }

    /// The windows kept.
    #[must_use]
    pub fn report(&self) -> Report {
        Report {
            az: self.az.clone(),
            window_ms: self.window_ms,
            windows: self.windows.iter().cloned().collect(),
        }
    }

    /// Prometheus text: `ddb_canary_requests_total{op,az,endpoint,outcome}`,
    /// `ddb_canary_request_seconds{op,az,endpoint}` (histogram) and
    /// `ddb_canary_availability{az,endpoint}` over the window under way.
    #[must_use]
    pub fn render(&self) -> String {
        let az = &self.az;
        let mut out = String::new();
        out.push_str("# HELP ddb_canary_requests_total Probe calls, by operation, AZ, endpoint and outcome.\n# TYPE ddb_canary_requests_total counter\n");
        for ((endpoint, op, outcome), n) in &self.counters {
            let _ = writeln!(
                out,
                "ddb_canary_requests_total{{op=\"{op}\",az=\"{az}\",endpoint=\"{endpoint}\",outcome=\"{}\"}} {n}",
                outcome.label()
            );
        }
        out.push_str("# HELP ddb_canary_request_seconds Probe call latency.\n# TYPE ddb_canary_request_seconds histogram\n");
        for ((endpoint, op), histogram) in &self.latency {
            let labels = format!("op=\"{op}\",az=\"{az}\",endpoint=\"{endpoint}\"");
            let mut cumulative = 0;
            for (bound, count) in BUCKETS_MS.iter().zip(&histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "ddb_canary_request_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                    bound / 1000.0
                );
            }
            let _ = writeln!(
                out,
                "ddb_canary_request_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count()
            );
            let _ = writeln!(
                out,
                "ddb_canary_request_seconds_sum{{{labels}}} {}",
                histogram.sum_seconds
            );
            let _ = writeln!(
                out,
                "ddb_canary_request_seconds_count{{{labels}}} {}",
                histogram.count()
            );
        }
        out.push_str("# HELP ddb_canary_availability Share of probe calls that succeeded in the window under way (what customers see).\n# TYPE ddb_canary_availability gauge\n");
        if let Some(window) = self.windows.back() {
            for (endpoint, ops) in &window.cells {
                let mut all = Cell::default();
                for cell in ops.values() {
                    all.merge(cell);
                }
                if let Some(availability) = all.availability() {
                    let _ = writeln!(
                        out,
                        "ddb_canary_availability{{az=\"{az}\",endpoint=\"{endpoint}\"}} {availability}"
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(op: &'static str, outcome: Outcome, ms: u64) -> Call {
        Call {
            op,
            outcome,
            elapsed: Duration::from_millis(ms),
            detail: None,
        }
    }

    #[test]
    fn windows_count_availability_and_roll_over() {
        let mut m = Measurements::new("a", 1_000, 3);
        m.record("http://n1", &call("PutItem", Outcome::Ok, 3), 10_100);
        m.record(
            "http://n1",
            &call("PutItem", Outcome::Connection, 1),
            10_200,
        );
        m.record("http://n1", &call("PutItem", Outcome::Throttled, 1), 10_300);
        m.record(
            "http://n1",
            &call("PutItem", Outcome::ClientError, 1),
            10_400,
        );
        let report = m.report();
        let cell = &report.windows[0].cells["http://n1"]["PutItem"];
        assert_eq!(
            (cell.good, cell.bad, cell.throttled, cell.client_errors),
            (1, 1, 1, 1)
        );
        assert_eq!(cell.availability(), Some(0.5));
        for second in 11..20 {
            m.record(
                "http://n1",
                &call("GetItem", Outcome::Ok, 40),
                second * 1_000,
            );
        }
        let report = m.report();
        assert_eq!(report.windows.len(), 3);
        assert_eq!(report.windows[0].start_ms, 17_000);
        let text = m.render();
        assert!(text.contains(
            "ddb_canary_requests_total{op=\"PutItem\",az=\"a\",endpoint=\"http://n1\",outcome=\"connection\"} 1"
        ));
        assert!(text.contains("ddb_canary_availability{az=\"a\",endpoint=\"http://n1\"} 1"));
        assert!(text.contains("le=\"0.05\"} 9"), "{text}");
    }

    #[test]
    fn quantiles_come_from_bucket_bounds() {
        let mut h = Histogram::default();
        for ms in [1, 3, 3, 3, 8, 8, 8, 8, 8, 300] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(h.quantile_ms(0.5), Some(10.0));
        assert_eq!(h.quantile_ms(0.99), Some(500.0));
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
    }
}
