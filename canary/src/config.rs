//! The canary's configuration: a TOML file, overridden by `DDB_CANARY_*` variables and flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cfa::CfaConfig;

/// Everything the canary is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanaryConfig {
    /// The availability zone the canary runs in (the `az` label of everything it measures).
    pub az: String,
    /// Every endpoint customers use (`http://host:port`): each is probed on its own.
    pub endpoints: Vec<String>,
    /// The region requests are signed for.
    pub region: String,
    /// The access key the probes sign with (else `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Its secret (else `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// The canary's own table (created if missing, hash key `k`).
    pub table: String,
    /// 0: the table is created PAY_PER_REQUEST (cheapest on DynamoDB itself); else PROVISIONED
    /// with this many read and write units, which on ddb gives it a single partition (one
    /// replication group, one archive stream) instead of the on-demand partition count.
    pub table_capacity_units: u64,
    /// How often each endpoint is probed (one round: PutItem, GetItem strongly and eventually
    /// consistent, Query, DeleteItem).
    pub interval_ms: u64,
    /// The timeout of every call; a probe makes one attempt, never retries.
    pub timeout_ms: u64,
    /// Width of the availability windows kept for reports (and `ddbctl canary report`).
    pub window_ms: u64,
    /// How many of those windows are kept.
    pub windows_kept: usize,
    /// `/metrics`, `/healthz`, `/report`, `/alarms`.
    pub listen: SocketAddr,
    /// Alarm history and silences.
    pub data_dir: PathBuf,
    /// How often alarms are evaluated and the other daemons scraped.
    pub evaluate_every_ms: u64,
    /// Nodes whose own request counters join the alarms (their `/metrics`), and whose
    /// `/healthz` raises `node-down`; usually the same as `endpoints`.
    pub nodes: Vec<String>,
    /// Archivers' metrics addresses (`archive-lag`, `archive-split-brain`).
    pub archivers: Vec<String>,
    /// Archive lag past which `archive-lag` fires, seconds.
    pub archive_lag_alarm_seconds: f64,
    /// The scrubber's address (`scrub-mismatch`).
    pub scrubber: Option<String>,
    /// How long an operational condition must hold, scrape after scrape, before it counts
    /// (a daemon still starting, or one failed scrape, is not an alarm); scaled by
    /// `cfa.window_scale` like the alarm windows.
    pub condition_hold_ms: u64,
    /// Where notifications are POSTed as JSON, one per transition.
    pub webhook_url: Option<String>,
    /// An Alertmanager (`http://host:9093`): alerts are POSTed to its `/api/v2/alerts`.
    pub alertmanager_url: Option<String>,
    /// How often firing alerts are sent to Alertmanager again (it forgets alerts not renewed).
    pub alertmanager_resend_ms: u64,
    /// The alarm rules.
    pub cfa: CfaConfig,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            az: "a".to_string(),
            endpoints: vec!["http://127.0.0.1:8000".to_string()],
            region: ddb::client::DEFAULT_REGION.to_string(),
            access_key_id: None,
            secret_access_key: None,
            table: String::new(),
            table_capacity_units: 0,
            interval_ms: 1_000,
            timeout_ms: 2_000,
            window_ms: 300_000,
            windows_kept: 12,
            listen: SocketAddr::from(([127, 0, 0, 1], 9600)),
            data_dir: PathBuf::from("ddb-canary"),
            evaluate_every_ms: 1_000,
            nodes: Vec::new(),
            archivers: Vec::new(),
            archive_lag_alarm_seconds: 60.0,
            scrubber: None,
            condition_hold_ms: 30_000,
            webhook_url: None,
            alertmanager_url: None,
            alertmanager_resend_ms: 60_000,
            cfa: CfaConfig::default(),
        }
    }
}

impl CanaryConfig {
    /// Documentation of every key, for `ddb-canary --help`.
    pub const HELP: &'static str = "\
Configuration keys (TOML file given with --config; variables in brackets override):
  az = \"a\"                            this canary's availability zone [DDB_CANARY_AZ]
  endpoints = [\"http://127.0.0.1:8000\"] every endpoint customers use [DDB_CANARY_ENDPOINTS, comma-separated]
  region = \"us-east-1\"                the region requests are signed for [AWS_REGION]
  access_key_id, secret_access_key    the probes' credentials [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]
  table = \"ddb-canary-<az>\"           the canary's own table, created if missing
  table_capacity_units = 0            0: PAY_PER_REQUEST; else PROVISIONED with these units
                                      (one partition on ddb)
  interval_ms = 1000                  one probe round per endpoint this often
  timeout_ms = 2000                   timeout of every call (one attempt, no retries)
  window_ms = 300000, windows_kept = 12   availability windows kept for reports
  listen = \"127.0.0.1:9600\"           /metrics /healthz /report /alarms [DDB_CANARY_LISTEN]
  data_dir = \"ddb-canary\"             alarm history and silences [DDB_CANARY_DATA_DIR]
  evaluate_every_ms = 1000            alarms evaluated, other daemons scraped, this often
  nodes = [...]                       nodes whose own request counters and /healthz join the alarms
  archivers = [...]                   archivers' metrics addresses (archive-lag, archive-split-brain)
  archive_lag_alarm_seconds = 60      archive lag that raises archive-lag
  scrubber = \"http://...\"             the scrubber (scrub-mismatch)
  condition_hold_ms = 30000           an operational condition counts once it held this long
  webhook_url = \"http://...\"          JSON notifications, one per transition [DDB_CANARY_WEBHOOK_URL]
  alertmanager_url = \"http://...:9093\" Alertmanager v2 API [DDB_CANARY_ALERTMANAGER_URL]
  alertmanager_resend_ms = 60000      firing alerts renewed this often
  [cfa] slo = 0.999                   the availability objective
        window_scale = 1.0            multiplies every window (tests shrink them)
        pending_for_ms = 0, resolve_after_ms = 300000, min_requests = 10
        [[cfa.rules]] name, severity (page|ticket), long_window_ms, short_window_ms, burn_rate
        (default: page 1h+5m at 14.4 and 6h+30m at 6; ticket 1d+2h at 3 and 3d+6h at 1)";

    /// Loads `path` (if given) over the defaults, then the environment through `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config: CanaryConfig = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => CanaryConfig::default(),
        };
        if let Some(v) = env("DDB_CANARY_AZ") {
            config.az = v;
        }
        if let Some(v) = env("DDB_CANARY_ENDPOINTS") {
            config.endpoints = v.split(',').map(str::to_string).collect();
        }
        if let Some(v) = env("AWS_REGION") {
            config.region = v;
        }
        if config.access_key_id.is_none() {
            config.access_key_id = env("AWS_ACCESS_KEY_ID");
        }
        if config.secret_access_key.is_none() {
            config.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
        }
        if let Some(v) = env("DDB_CANARY_LISTEN") {
            config.listen = v
                .parse()
                .with_context(|| format!("DDB_CANARY_LISTEN={v:?}"))?;
        }
        if let Some(v) = env("DDB_CANARY_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DDB_CANARY_WEBHOOK_URL") {
            config.webhook_url = Some(v);
        }
        if let Some(v) = env("DDB_CANARY_ALERTMANAGER_URL") {
            config.alertmanager_url = Some(v);
        }
        if config.table.is_empty() {
            config.table = format!("ddb-canary-{}", config.az);
        }
        Ok(config)
    }

    /// Checks values that would make the canary misbehave.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.endpoints.is_empty(), "endpoints lists no endpoint");
        anyhow::ensure!(!self.az.is_empty(), "az is empty");
        anyhow::ensure!(
            self.access_key_id.is_some() && self.secret_access_key.is_some(),
            "no credentials: set access_key_id and secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        );
        anyhow::ensure!(
            self.interval_ms > 0 && self.timeout_ms > 0 && self.evaluate_every_ms > 0,
            "interval_ms, timeout_ms and evaluate_every_ms must be positive"
        );
        anyhow::ensure!(
            self.window_ms > 0 && self.windows_kept > 0,
            "window_ms and windows_kept must be positive"
        );
        self.cfa.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployed_example_loads_and_validates() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/canary.toml");
        let config = CanaryConfig::load(Some(&example), |name| {
            (name == "AWS_SECRET_ACCESS_KEY").then(|| "secret".to_string())
        })
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.endpoints.len(), 3);
        assert_eq!(config.table, "ddb-canary-a");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let env = |name: &str| match name {
            "DDB_CANARY_AZ" => Some("c".to_string()),
            "DDB_CANARY_ENDPOINTS" => Some("http://a:1,http://b:2".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let config = CanaryConfig::load(None, env).unwrap();
        config.validate().unwrap();
        assert_eq!(config.az, "c");
        assert_eq!(config.table, "ddb-canary-c");
        assert_eq!(config.endpoints, ["http://a:1", "http://b:2"]);
        let without_credentials = CanaryConfig::load(None, |_| None).unwrap();
        assert!(without_credentials.validate().is_err());
    }
}
