//! The archiver's metrics, in Prometheus text format (names documented in `docs/archiver.md`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// One partition's numbers.
#[derive(Clone, Debug, Default)]
pub struct PartitionMetrics {
    /// 1 while the archiver beside the leader uploads this partition.
    pub leader: bool,
    /// Highest LSN the archive holds contiguously, as this archiver knows it.
    pub archived_lsn: u64,
    /// The node's committed (applied) LSN at the last poll.
    pub committed_lsn: u64,
    /// Age of the oldest committed entry not yet archived, in seconds (0: caught up).
    pub lag_seconds: f64,
    /// The node's unarchived log bytes.
    pub lag_bytes: u64,
    /// Chunks uploaded.
    pub uploads: u64,
    /// Compressed chunk bytes uploaded.
    pub upload_bytes: u64,
    /// Failed attempts retried.
    pub retries: u64,
    /// Uploads that found the object already there with equal bytes.
    pub already_there: u64,
    /// Uploads that found the object there with different bytes (split brain).
    pub split_brain: u64,
    /// Snapshots uploaded.
    pub snapshots: u64,
    /// Objects deleted by retention.
    pub deleted: u64,
}

/// Upper bounds (seconds) of the archive-latency histogram's buckets: fine up to 2 s, where
/// the lag target (1 s at p99) lies.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 5.0, 10.0,
];

/// How long committed entries took to reach the archive: from the leader's timestamp on the
/// entry to the end of the upload of its chunk.
#[derive(Default)]
struct LatencyHistogram {
    /// Per bucket of [`LATENCY_BUCKETS`], then one for larger values.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
}

/// Every partition's numbers plus the archiver's own.
#[derive(Default)]
pub struct Metrics {
    partitions: Mutex<BTreeMap<(u64, u64), PartitionMetrics>>,
    node_up: std::sync::atomic::AtomicBool,
    latency: Mutex<LatencyHistogram>,
}

impl Metrics {
    /// Changes partition `(table, partition)`'s numbers.
    pub fn update(
        &self,
        table_id: u64,
        partition_id: u64,
        change: impl FnOnce(&mut PartitionMetrics),
    ) {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(partitions.entry((table_id, partition_id)).or_default());
    }

    /// Records that entries reached the archive `ages` seconds after they were committed.
    pub fn observe_archived(&self, ages: impl Iterator<Item = f64>) {
        let mut histogram = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for age in ages {
            let bucket = LATENCY_BUCKETS
                .iter()
                .position(|bound| age <= *bound)
                .unwrap_or(LATENCY_BUCKETS.len());
            histogram.counts[bucket] += 1;
            histogram.sum += age;
        }
    }

    /// Records whether the last poll reached the node.
    pub fn set_node_up(&self, up: bool) {
        self.node_up.store(up, std::sync::atomic::Ordering::Relaxed);
    }

    /// True if the last poll reached the node.
    pub fn node_up(&self) -> bool {
        self.node_up.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Partitions archiving stopped on for split brain.
    pub fn split_brains(&self) -> Vec<(u64, u64)> {
        self.snapshot()
            .into_iter()
            .filter(|(_, m)| m.split_brain > 0)
            .map(|(key, _)| key)
            .collect()
    }

    /// A copy of every partition's numbers.
    pub fn snapshot(&self) -> BTreeMap<(u64, u64), PartitionMetrics> {
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        type Field = fn(&PartitionMetrics) -> f64;
        let families: [(&str, &str, &str, Field); 12] = [
            (
                "ddb_archiver_leader",
                "gauge",
                "1 while this archiver uploads the partition (its node leads it).",
                |m| f64::from(u8::from(m.leader)),
            ),
            (
                "ddb_archiver_archived_lsn",
                "gauge",
                "Highest LSN the archive holds contiguously.",
                |m| m.archived_lsn as f64,
            ),
            (
                "ddb_archiver_committed_lsn",
                "gauge",
                "The node's committed LSN at the last poll.",
                |m| m.committed_lsn as f64,
            ),
            (
                "ddb_archiver_lag_seconds",
                "gauge",
                "Age of the oldest committed entry not yet archived (0 when caught up).",
                |m| m.lag_seconds,
            ),
            (
                "ddb_archiver_lag_bytes",
                "gauge",
                "Log bytes the node holds above the archive watermark.",
                |m| m.lag_bytes as f64,
            ),
            (
                "ddb_archiver_uploads_total",
                "counter",
                "WAL chunks uploaded.",
                |m| m.uploads as f64,
            ),
            (
                "ddb_archiver_upload_bytes_total",
                "counter",
                "Compressed chunk bytes uploaded.",
                |m| m.upload_bytes as f64,
            ),
            (
                "ddb_archiver_retries_total",
                "counter",
                "Failed archive requests retried.",
                |m| m.retries as f64,
            ),
            (
                "ddb_archiver_already_there_total",
                "counter",
                "Uploads that found an equal object already stored.",
                |m| m.already_there as f64,
            ),
            (
                "ddb_archiver_split_brain",
                "gauge",
                "1 if an upload found a different object under its name: archiving of the partition stopped (an alarm).",
                |m| f64::from(u8::from(m.split_brain > 0)),
            ),
            (
                "ddb_archiver_snapshots_total",
                "counter",
                "Snapshots uploaded.",
                |m| m.snapshots as f64,
            ),
            (
                "ddb_archiver_deleted_objects_total",
                "counter",
                "Chunks and snapshots deleted by retention.",
                |m| m.deleted as f64,
            ),
        ];
        let partitions = self.snapshot();
        let mut text = String::new();
        let _ = write!(
            text,
            "# HELP ddb_archiver_node_up 1 if the last poll reached the node.\n# TYPE ddb_archiver_node_up gauge\nddb_archiver_node_up {}\n",
            u8::from(self.node_up())
        );
        {
            let histogram = self
                .latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let name = "ddb_archiver_entry_archive_seconds";
            let _ = write!(
                text,
                "# HELP {name} Time from an entry's commit (the leader's timestamp) to the end of its chunk's upload.\n# TYPE {name} histogram\n"
            );
            let mut cumulative = 0;
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(text, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
            }
            cumulative += histogram.counts[LATENCY_BUCKETS.len()];
            let _ = writeln!(text, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(text, "{name}_sum {}", histogram.sum);
            let _ = writeln!(text, "{name}_count {cumulative}");
        }
        for (name, kind, help, field) in families {
            let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            for ((table, partition), metrics) in &partitions {
                let _ = writeln!(
                    text,
                    "{name}{{table_id=\"{table}\",partition=\"{partition}\"}} {}",
                    field(metrics)
                );
            }
        }
        text
    }
}
