//! The disk's own sync rate, measured beside a run (`--sync-baseline DIR`): the baseline a write
//! workload's throughput is read against. A write is acknowledged only once its WAL record is
//! durable, so on a given disk PutItem/s moves with how fast that disk syncs — and the same
//! machine's disk can sync at half its usual rate for minutes at a time. Measured just before
//! and just after the load (never during it, so the probe takes nothing from the node), the
//! ratio of ops/s to syncs/s says what the node made of the disk it had.
//!
//! The probe is `ddb::wal::sync_probe`, the same one the WAL's own benchmark measures against: a
//! 200-byte record over zeros synced first, then `fdatasync`, as the WAL writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ddb::wal::sync_probe::SyncProbe;
use serde::Serialize;

/// Bytes per probe write: about one small PutItem's WAL record.
pub const RECORD_BYTES: usize = 200;

/// How long each probe runs.
pub const PROBE_TIME: Duration = Duration::from_secs(2);

/// Most syncs one probe makes (bounds the zeros written up front: 20,000 × 200 B = 4 MB).
pub const PROBE_MAX_SYNCS: u64 = 20_000;

/// One probe's result.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SyncRate {
    /// `write` + `fdatasync` pairs completed.
    pub syncs: u64,
    pub seconds: f64,
    pub per_sec: f64,
}

/// The baseline around one run, and the run's throughput as a multiple of it.
#[derive(Debug, Serialize)]
pub struct SyncBaseline {
    /// The directory probed.
    pub dir: PathBuf,
    pub before: SyncRate,
    pub after: SyncRate,
    /// The run's ops/s divided by the mean of `before` and `after` rates.
    pub ops_per_raw_sync: f64,
}

impl SyncBaseline {
    /// Puts `ops_per_sec` against the rates measured before and after it.
    pub fn new(dir: &Path, before: SyncRate, after: SyncRate, ops_per_sec: f64) -> Self {
        let mean = (before.per_sec + after.per_sec) / 2.0;
        let ratio = if mean > 0.0 { ops_per_sec / mean } else { 0.0 };
        SyncBaseline {
            dir: dir.to_path_buf(),
            before,
            after,
            ops_per_raw_sync: (ratio * 100.0).round() / 100.0,
        }
    }
}

/// Measures the raw sync rate of the disk under `dir` for at most `time` and `max_syncs`
/// syncs, with a [`SyncProbe`] in a file it removes afterwards (also when the probe fails).
///
/// # Errors
/// `dir` is missing or not writable, or a write or sync fails; the message names the path.
pub fn measure(dir: &Path, time: Duration, max_syncs: u64) -> anyhow::Result<SyncRate> {
    if !dir.is_dir() {
        anyhow::bail!(
            "--sync-baseline {}: not a directory (give the node's data directory, or one on the same disk)",
            dir.display()
        );
    }
    let path = dir.join(format!(".ddbctl-sync-probe-{}", std::process::id()));
    let context = || format!("probing syncs in {}", path.display());
    let mut probe = SyncProbe::create(&path).with_context(context)?;
    let (syncs, took) = probe
        .measure(RECORD_BYTES, time, max_syncs)
        .with_context(context)?;
    let seconds = took.as_secs_f64();
    Ok(SyncRate {
        syncs,
        seconds: (seconds * 1000.0).round() / 1000.0,
        per_sec: if seconds > 0.0 {
            (syncs as f64 / seconds).round()
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_stops_at_its_count_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        // A time no disk needs for 50 syncs: the count is what stops it. (The probe's own
        // bounds are tested in ddb::wal::sync_probe.)
        let rate = measure(dir.path(), Duration::from_secs(600), 50).unwrap();
        assert_eq!(rate.syncs, 50);
        assert!(rate.per_sec > 0.0, "{rate:?}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "probe file left behind: {left:?}");
    }

    #[test]
    fn a_missing_directory_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-here");
        let error = measure(&missing, PROBE_TIME, 10).unwrap_err().to_string();
        assert!(error.contains("not-here"), "{error}");
        assert!(error.contains("not a directory"), "{error}");
    }

    #[test]
    fn the_ratio_is_throughput_over_the_mean_raw_rate() {
        let rate = |per_sec| SyncRate {
            syncs: 1,
            seconds: 1.0,
            per_sec,
        };
        let baseline = SyncBaseline::new(Path::new("d"), rate(3000.0), rate(5000.0), 10_000.0);
        assert_eq!(baseline.ops_per_raw_sync, 2.5);
        let none = SyncBaseline::new(Path::new("d"), rate(0.0), rate(0.0), 10_000.0);
        assert_eq!(none.ops_per_raw_sync, 0.0);
    }
}
