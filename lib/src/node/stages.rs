//! Where a write's time goes inside a node, stage by stage, as histograms on `/metrics`
//! (`ddb_write_stage_seconds{stage}`; docs/node.md lists the stages).
//!
//! A write's path through the node is a relay between threads — the HTTP worker hands it to a
//! blocking thread, which decides it under the partition's group lock and proposes it; the
//! partition's syncer waits for the WAL flush, applies, and wakes the writer — so its latency is
//! the sum of the stages below plus the time each thread waits to run. Each stage is timed where
//! it happens; the handing over between threads shows up as `handoff` and `wake`.
//!
//! Recording is two relaxed atomic adds and one increment per stage: cheap enough to leave on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A stage of a write (or of the syncer's work for a batch of writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// From the HTTP worker handing the request over to the blocking thread starting it.
    Handoff,
    /// A writer waiting for its partition's group lock.
    Lock,
    /// Under the lock: reading the current item, the caller's decision (condition, update),
    /// proposing, and enqueueing the WAL record.
    Decide,
    /// From the proposal to its outcome being decided: WAL flush, quorum, apply.
    Commit,
    /// From the outcome being decided to the writer running again (a wake-up through the
    /// scheduler).
    Wake,
    /// The syncer waiting for a WAL batch to become durable (`fdatasync`, shared).
    Flush,
    /// The syncer waiting for the group lock after a flush.
    SyncerLock,
    /// The syncer, under the lock, reporting durability and applying what committed.
    Apply,
}

impl Stage {
    /// Every stage, in the order of a write's path.
    pub const ALL: [Stage; 8] = [
        Stage::Handoff,
        Stage::Lock,
        Stage::Decide,
        Stage::Commit,
        Stage::Wake,
        Stage::Flush,
        Stage::SyncerLock,
        Stage::Apply,
    ];

    /// The `stage` label.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Stage::Handoff => "handoff",
            Stage::Lock => "lock",
            Stage::Decide => "decide",
            Stage::Commit => "commit",
            Stage::Wake => "wake",
            Stage::Flush => "flush",
            Stage::SyncerLock => "syncer_lock",
            Stage::Apply => "apply",
        }
    }
}

/// Upper bounds of the histogram buckets, in microseconds (then `+Inf`).
const BUCKET_BOUNDS_US: [u64; 15] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000,
];

/// One stage's histogram: counts per bucket (not cumulative), the sum and the count.
struct Histogram {
    buckets: [AtomicU64; BUCKET_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_US.partition_point(|bound| *bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The node's write-stage histograms, shared by its partitions and its HTTP layer.
pub struct WriteStages {
    histograms: [Histogram; Stage::ALL.len()],
}

impl Default for WriteStages {
    fn default() -> Self {
        WriteStages {
            histograms: std::array::from_fn(|_| Histogram::new()),
        }
    }
}

/// One stage's totals at an instant.
#[derive(Clone, Debug, PartialEq)]
pub struct StageTotals {
    /// The stage.
    pub stage: Stage,
    /// Times recorded.
    pub count: u64,
    /// Their total, in seconds.
    pub seconds: f64,
    /// Cumulative counts at each bound of [`WriteStages::bounds_seconds`], then `+Inf`.
    pub cumulative: Vec<u64>,
}

impl WriteStages {
    /// Records `elapsed` for `stage`.
    pub fn record(&self, stage: Stage, elapsed: Duration) {
        self.histograms[stage as usize].record(elapsed);
    }

    /// The bucket bounds, in seconds (the last bucket, `+Inf`, is not listed).
    #[must_use]
    pub fn bounds_seconds() -> Vec<f64> {
        BUCKET_BOUNDS_US
            .iter()
            .map(|us| Duration::from_micros(*us).as_secs_f64())
            .collect()
    }

    /// Every stage's totals so far.
    #[must_use]
    pub fn totals(&self) -> Vec<StageTotals> {
        Stage::ALL
            .iter()
            .map(|stage| {
                let histogram = &self.histograms[*stage as usize];
                let mut running = 0;
                let cumulative = histogram
                    .buckets
                    .iter()
                    .map(|bucket| {
                        running += bucket.load(Ordering::Relaxed);
                        running
                    })
                    .collect();
                StageTotals {
                    stage: *stage,
                    count: histogram.count.load(Ordering::Relaxed),
                    seconds: Duration::from_nanos(histogram.sum_ns.load(Ordering::Relaxed))
                        .as_secs_f64(),
                    cumulative,
                }
            })
            .collect()
    }

    /// Appends the histograms in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str(
            "# HELP ddb_write_stage_seconds Time a write spends in each stage inside the node.\n",
        );
        out.push_str("# TYPE ddb_write_stage_seconds histogram\n");
        let bounds = Self::bounds_seconds();
        for totals in self.totals() {
            let stage = totals.stage.label();
            for (bound, count) in bounds.iter().zip(&totals.cumulative) {
                let _ = writeln!(
                    out,
                    "ddb_write_stage_seconds_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "ddb_write_stage_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
                totals.count
            );
            let _ = writeln!(
                out,
                "ddb_write_stage_seconds_sum{{stage=\"{stage}\"}} {}",
                totals.seconds
            );
            let _ = writeln!(
                out,
                "ddb_write_stage_seconds_count{{stage=\"{stage}\"}} {}",
                totals.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_buckets_and_the_exposition_is_cumulative() {
        let stages = WriteStages::default();
        stages.record(Stage::Flush, Duration::from_micros(5));
        stages.record(Stage::Flush, Duration::from_micros(10));
        stages.record(Stage::Flush, Duration::from_micros(300));
        stages.record(Stage::Flush, Duration::from_secs(3));
        stages.record(Stage::Lock, Duration::from_micros(40));

        let totals = stages.totals();
        let flush = totals.iter().find(|t| t.stage == Stage::Flush).unwrap();
        assert_eq!(flush.count, 4);
        // ≤ 10 µs: two (a bound is inclusive); ≤ 250 µs still two; ≤ 500 µs three; +Inf four.
        assert_eq!(flush.cumulative[0], 2);
        assert_eq!(flush.cumulative[4], 2);
        assert_eq!(flush.cumulative[5], 3);
        assert_eq!(flush.cumulative[BUCKET_BOUNDS_US.len() - 1], 3);
        assert_eq!(*flush.cumulative.last().unwrap(), 4);
        assert!((flush.seconds - 3.000_315).abs() < 1e-9);

        let mut text = String::new();
        stages.render(&mut text);
        assert!(text.contains("ddb_write_stage_seconds_bucket{stage=\"lock\",le=\"0.00005\"} 1\n"));
        assert!(
            text.contains("ddb_write_stage_seconds_bucket{stage=\"lock\",le=\"0.000025\"} 0\n")
        );
        assert!(text.contains("ddb_write_stage_seconds_count{stage=\"flush\"} 4\n"));
        assert!(text.contains("ddb_write_stage_seconds_bucket{stage=\"apply\",le=\"+Inf\"} 0\n"));
        // Every stage is exposed, recorded or not, so dashboards need no special cases.
        for stage in Stage::ALL {
            assert!(text.contains(&format!(
                "ddb_write_stage_seconds_count{{stage=\"{}\"}}",
                stage.label()
            )));
        }
    }
}
