//! The archiver's configuration: a TOML file, overridden by `DDB_ARCHIVER_*` environment
//! variables, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Everything the archiver is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiverConfig {
    /// The `ddbd` beside this archiver (its DynamoDB/HTTP address).
    pub node_url: String,
    /// That node's data directory: its WAL files and its internal-API token.
    pub node_data_dir: PathBuf,
    /// Where the archive lives: `file:///path` or `s3://bucket/prefix?endpoint=…&region=…`.
    /// Empty: `file://<node_data_dir>/archive`.
    pub archive: String,
    /// Address of `/metrics` and `/healthz`.
    pub listen: SocketAddr,
    /// How often the node is asked what its partitions have committed.
    pub poll_interval_ms: u64,
    /// A chunk is cut once its entries reach this many bytes...
    pub chunk_target_bytes: u64,
    /// ...or once its oldest entry is this old, which bounds archive lag (plus one upload).
    pub chunk_max_age_ms: u64,
    /// How many partitions upload at once.
    pub parallel_uploads: usize,
    /// First wait after a failed upload; doubled per retry up to `retry_max_ms`, with jitter.
    pub retry_initial_ms: u64,
    /// Longest wait between retries.
    pub retry_max_ms: u64,
    /// On replicas that do not lead, how often the archive's tail is read to keep the node's
    /// watermark current (so a new leader does not throttle on a stale one).
    pub follower_refresh_ms: u64,
    /// A snapshot is taken once this many entries were applied since the last one...
    pub snapshot_every_entries: u64,
    /// ...or this long after the last one, if anything changed.
    pub snapshot_every_ms: u64,
    /// Point-in-time restore is kept this many days back (fractions allowed): older chunks
    /// and snapshots are deleted once a newer snapshot covers them. 0 keeps everything.
    pub retention_days: f64,
}

impl Default for ArchiverConfig {
    fn default() -> Self {
        ArchiverConfig {
            node_url: "http://127.0.0.1:8000".to_string(),
            node_data_dir: PathBuf::from("ddb-data"),
            archive: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9400)),
            poll_interval_ms: 100,
            chunk_target_bytes: 8 * 1024 * 1024,
            chunk_max_age_ms: 500,
            parallel_uploads: 4,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            follower_refresh_ms: 10_000,
            snapshot_every_entries: 1_000_000,
            snapshot_every_ms: 6 * 3600 * 1000,
            retention_days: 35.0,
        }
    }
}

impl ArchiverConfig {
    /// Documentation of every key, for `ddb-archiver --help`.
    pub const HELP: &'static str = "\
Configuration keys (TOML file given with --config; each can be overridden by the environment
variable in brackets):
  node_url = \"http://127.0.0.1:8000\"  the ddbd beside this archiver [DDB_ARCHIVER_NODE_URL]
  node_data_dir = \"ddb-data\"          that node's data directory (WAL, internal token) [DDB_ARCHIVER_NODE_DATA_DIR]
  archive = \"\"                        file:///path or s3://bucket/prefix?endpoint=URL&region=R;
                                      empty: file://<node_data_dir>/archive [DDB_ARCHIVE_URL]
  listen = \"127.0.0.1:9400\"           /metrics and /healthz [DDB_ARCHIVER_LISTEN]
  poll_interval_ms = 100              how often the node is asked what it committed
  chunk_target_bytes = 8388608        cut a chunk at this many bytes of entries...
  chunk_max_age_ms = 500              ...or when its oldest entry is this old (archive lag)
  parallel_uploads = 4                partitions uploading at once
  retry_initial_ms = 100              first retry wait, doubled up to retry_max_ms, jittered
  retry_max_ms = 10000
  follower_refresh_ms = 10000         how often a non-leader reads the archive tail
  snapshot_every_entries = 1000000    snapshot after this many applied entries...
  snapshot_every_ms = 21600000        ...or this long after the last one
  retention_days = 35                 keep point-in-time restore this many days back (fractions
                                      allowed); 0: keep everything
S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN);
the region from the URL, AWS_REGION or AWS_DEFAULT_REGION.
Logs go to standard error: DDB_LOG filters them (e.g. info, ddb_archiver=debug);
DDB_LOG_FORMAT=json prints one JSON object per line.";

    /// Loads `path` (if given) over the defaults, then the environment through `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config: ArchiverConfig = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ArchiverConfig::default(),
        };
        if let Some(v) = env("DDB_ARCHIVER_NODE_URL") {
            config.node_url = v;
        }
        if let Some(v) = env("DDB_ARCHIVER_NODE_DATA_DIR") {
            config.node_data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DDB_ARCHIVE_URL") {
            config.archive = v;
        }
        if let Some(v) = env("DDB_ARCHIVER_LISTEN") {
            config.listen = v
                .parse()
                .with_context(|| format!("DDB_ARCHIVER_LISTEN={v:?}"))?;
        }
        Ok(config)
    }

    /// The archive URL, the embedded default filled in.
    pub fn archive_url(&self) -> anyhow::Result<String> {
        if !self.archive.is_empty() {
            return Ok(self.archive.clone());
        }
        let dir = std::path::absolute(self.node_data_dir.join("archive"))
            .context("resolving the default archive directory")?;
        Ok(format!("file://{}", dir.display()))
    }

    /// Checks values that would make the archiver misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.poll_interval_ms > 0,
            "poll_interval_ms must be positive"
        );
        anyhow::ensure!(
            self.chunk_target_bytes > 0,
            "chunk_target_bytes must be positive"
        );
        anyhow::ensure!(
            self.parallel_uploads > 0,
            "parallel_uploads must be positive"
        );
        anyhow::ensure!(
            self.retry_initial_ms > 0 && self.retry_initial_ms <= self.retry_max_ms,
            "retry_initial_ms must be positive and at most retry_max_ms"
        );
        Ok(())
    }

    pub(crate) fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    /// The retention window, `None` to keep everything.
    pub(crate) fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0.0).then(|| Duration::from_secs_f64(self.retention_days * 86_400.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_the_default_archive_is_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archiver.toml");
        std::fs::write(
            &path,
            "node_url = \"http://127.0.0.1:1\"\nchunk_max_age_ms = 250\n",
        )
        .unwrap();
        let config = ArchiverConfig::load(Some(&path), |name| {
            (name == "DDB_ARCHIVER_NODE_DATA_DIR").then(|| "/srv/ddb".to_string())
        })
        .unwrap();
        assert_eq!(config.node_url, "http://127.0.0.1:1");
        assert_eq!(config.chunk_max_age_ms, 250);
        assert_eq!(config.archive_url().unwrap(), "file:///srv/ddb/archive");
        config.validate().unwrap();
        std::fs::write(&path, "no_such_key = 1\n").unwrap();
        assert!(ArchiverConfig::load(Some(&path), |_| None).is_err());
    }
}
