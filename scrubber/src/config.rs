//! The scrubber's configuration: a TOML file, overridden by `DDB_SCRUBBER_*` variables and
//! flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Everything the scrubber is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScrubberConfig {
    /// Every node's API address (`http://host:port`).
    pub nodes: Vec<String>,
    /// A file holding the cluster secret (the nodes' `[cluster] secret`), from which the token
    /// every node's internal API accepts is derived.
    pub cluster_secret_file: Option<PathBuf>,
    /// For a single node without a cluster: its data directory, whose internal token is used.
    pub node_data_dir: Option<PathBuf>,
    /// The archive the reference replicas are rebuilt from (`file://…` or `s3://…`).
    pub archive: String,
    /// The scrubber's own directory: reference replicas and the last results.
    pub data_dir: PathBuf,
    /// Address of `/metrics`, `/healthz`, `/status` and `/run`.
    pub listen: SocketAddr,
    /// How often every partition's checks 1 and 2 run.
    pub interval_ms: u64,
    /// How often every replica is also fully scanned (check 3); `scrub run --deep` runs one now.
    pub deep_every_ms: u64,
    /// A calendar schedule for the deep passes instead of `deep_every_ms`: a cron expression
    /// with seconds, in UTC (`sec min hour day-of-month month day-of-week`; when both days are
    /// given, both must match), e.g. `0 0 3 * * Sun` for Sundays at 03:00 UTC.
    pub deep_schedule: Option<String>,
    /// The pace of each full scan, bytes per second (0: as fast as the disk goes), so the
    /// nodes' foreground latency does not move.
    pub scan_bytes_per_sec: u64,
    /// Rebuild every replica a pass names odd from a good copy at once, without waiting for
    /// `ddbctl scrub repair` (off by default: an operator usually wants to look first).
    pub auto_repair: bool,
}

impl Default for ScrubberConfig {
    fn default() -> Self {
        ScrubberConfig {
            nodes: vec!["http://127.0.0.1:8000".to_string()],
            cluster_secret_file: None,
            node_data_dir: None,
            archive: String::new(),
            data_dir: PathBuf::from("ddb-scrubber"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9500)),
            interval_ms: 10_000,
            deep_every_ms: 24 * 3600 * 1000,
            deep_schedule: None,
            scan_bytes_per_sec: 4 * 1024 * 1024,
            auto_repair: false,
        }
    }
}

impl ScrubberConfig {
    /// Documentation of every key, for `ddb-scrubber --help`.
    pub const HELP: &'static str = "\
Configuration keys (TOML file given with --config; variables in brackets override):
  nodes = [\"http://127.0.0.1:8000\"]  every node of the cluster [DDB_SCRUBBER_NODES, comma-separated]
  cluster_secret_file = \"...\"        the cluster secret (nodes' [cluster] secret), for the
                                     internal API of every node [DDB_SCRUBBER_CLUSTER_SECRET_FILE]
  node_data_dir = \"...\"              a single node's data directory (its internal token), instead
  archive = \"file:///...\"            the archive reference replicas are rebuilt from [DDB_ARCHIVE_URL]
  data_dir = \"ddb-scrubber\"          reference replicas and the last results [DDB_SCRUBBER_DATA_DIR]
  listen = \"127.0.0.1:9500\"          /metrics, /healthz, /status, /run [DDB_SCRUBBER_LISTEN]
  interval_ms = 10000                checks 1 and 2 (peers, archive) this often
  deep_every_ms = 86400000           check 3 (full scans of every replica) this often
  deep_schedule = \"0 0 3 * * Sun\"    or on this calendar instead: cron with seconds, UTC (sec min
                                     hour day-of-month month day-of-week) [DDB_SCRUBBER_DEEP_SCHEDULE]
  scan_bytes_per_sec = 4194304       pace of each full scan; 0: unpaced (docs/benchmarks.md)
  auto_repair = false                rebuild replicas a pass names odd from a good copy at once,
                                     instead of on `ddbctl scrub repair` [DDB_SCRUBBER_AUTO_REPAIR]
S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.";

    /// Loads `path` (if given) over the defaults, then the environment through `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config: ScrubberConfig = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ScrubberConfig::default(),
        };
        if let Some(v) = env("DDB_SCRUBBER_NODES") {
            config.nodes = v.split(',').map(str::to_string).collect();
        }
        if let Some(v) = env("DDB_SCRUBBER_CLUSTER_SECRET_FILE") {
            config.cluster_secret_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("DDB_ARCHIVE_URL") {
            config.archive = v;
        }
        if let Some(v) = env("DDB_SCRUBBER_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DDB_SCRUBBER_DEEP_SCHEDULE") {
            config.deep_schedule = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = env("DDB_SCRUBBER_AUTO_REPAIR") {
            config.auto_repair = v
                .parse()
                .with_context(|| format!("DDB_SCRUBBER_AUTO_REPAIR={v:?} (true or false)"))?;
        }
        if let Some(v) = env("DDB_SCRUBBER_LISTEN") {
            config.listen = v
                .parse()
                .with_context(|| format!("DDB_SCRUBBER_LISTEN={v:?}"))?;
        }
        Ok(config)
    }

    /// The token for the nodes' internal API.
    pub fn internal_token(&self) -> anyhow::Result<String> {
        if let Some(file) = &self.cluster_secret_file {
            let secret = std::fs::read_to_string(file)
                .with_context(|| format!("reading the cluster secret {}", file.display()))?;
            return Ok(ddb::server::cluster_internal_token(secret.trim()));
        }
        if let Some(dir) = &self.node_data_dir {
            return ddb::server::read_internal_token(dir)
                .with_context(|| format!("reading the internal token in {}", dir.display()));
        }
        anyhow::bail!("set cluster_secret_file (a cluster) or node_data_dir (a single node)")
    }

    /// Checks values that would make the scrubber misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.nodes.is_empty(), "nodes lists no node");
        anyhow::ensure!(!self.archive.is_empty(), "archive is required");
        anyhow::ensure!(
            self.interval_ms > 0 && self.deep_every_ms > 0,
            "interval_ms and deep_every_ms must be positive"
        );
        if let Some(schedule) = &self.deep_schedule {
            crate::schedule::check(schedule)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_example_loads_and_validates() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/scrubber.toml");
        let config = ScrubberConfig::load(Some(&example), |_| None).unwrap();
        config.validate().unwrap();
        assert_eq!(config.nodes.len(), 3);
        assert!(!config.auto_repair);
    }

    #[test]
    fn the_environment_sets_the_calendar_and_automatic_repair() {
        let env = |name: &str| match name {
            "DDB_SCRUBBER_DEEP_SCHEDULE" => Some("0 30 2 * * *".to_string()),
            "DDB_SCRUBBER_AUTO_REPAIR" => Some("true".to_string()),
            "DDB_ARCHIVE_URL" => Some("file:///tmp/archive".to_string()),
            _ => None,
        };
        let config = ScrubberConfig::load(None, env).unwrap();
        assert_eq!(config.deep_schedule.as_deref(), Some("0 30 2 * * *"));
        assert!(config.auto_repair);
        config.validate().unwrap();
        let wrong = ScrubberConfig {
            deep_schedule: Some("daily".to_string()),
            ..config
        };
        assert!(wrong.validate().is_err());
        let bad_flag = |name: &str| (name == "DDB_SCRUBBER_AUTO_REPAIR").then(|| "yes".to_string());
        assert!(ScrubberConfig::load(None, bad_flag).is_err());
    }
}
