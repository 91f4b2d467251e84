//! [`ArchiverProcess`]: a real `ddb-archiver` beside a node, for a test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::node_process::wait_for_line;

/// A running `ddb-archiver` with its `/metrics` on a free port. Dropping it kills it.
pub struct ArchiverProcess {
    child: Child,
    metrics: String,
    log_path: PathBuf,
}

impl ArchiverProcess {
    /// Starts the archiver beside the node at `node_url` whose data directory is
    /// `node_data_dir`, archiving to `archive` (a `file://` or `s3://` URL), polling fast, with
    /// extra environment variables (S3 credentials); its log goes to `log_path`.
    pub fn start(
        node_url: &str,
        node_data_dir: &Path,
        archive: &str,
        env: &[(String, String)],
        log_path: &Path,
    ) -> std::io::Result<Self> {
        ArchiverProcess::start_with_config(node_url, node_data_dir, archive, env, log_path, "")
    }

    /// [`ArchiverProcess::start`] with more configuration lines (TOML), e.g. snapshot and
    /// retention settings.
    pub fn start_with_config(
        node_url: &str,
        node_data_dir: &Path,
        archive: &str,
        env: &[(String, String)],
        log_path: &Path,
        extra_config: &str,
    ) -> std::io::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        let config = log_path.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "poll_interval_ms = 50\nretry_initial_ms = 50\nretry_max_ms = 1000\nfollower_refresh_ms = 500\n{extra_config}\n"
            ),
        )?;
        let mut child = Command::new(crate::binary("ddb-archiver"))
            .arg("--config")
            .arg(&config)
            .args(["--node-url", node_url])
            .arg("--node-data-dir")
            .arg(node_data_dir)
            .args(["--archive", archive])
            .args(["--listen", "127.0.0.1:0"])
            .env("DDB_LOG", "info")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let metrics = child
            .stdout
            .take()
            .and_then(|stdout| wait_for_line(stdout, "/healthz on http://"));
        let Some(metrics) = metrics else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "ddb-archiver did not start; its log:\n{}",
                std::fs::read_to_string(log_path).unwrap_or_default()
            )));
        };
        Ok(ArchiverProcess {
            child,
            metrics: metrics.trim().to_string(),
            log_path: log_path.to_path_buf(),
        })
    }

    /// `host:port` of `/metrics` and `/healthz`.
    pub fn metrics_address(&self) -> &str {
        &self.metrics
    }

    /// The value of every sample of metric `name`, with its labels (`{…}` text).
    pub fn metric(&self, name: &str) -> Vec<(String, f64)> {
        let port: u16 = self
            .metrics
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(0);
        let text = crate::http_get(port, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let labels = series.strip_prefix(name)?;
                (labels.is_empty() || labels.starts_with('{'))
                    .then(|| Some((labels.to_string(), value.parse().ok()?)))?
            })
            .collect()
    }

    /// The sum of every sample of metric `name`.
    pub fn metric_sum(&self, name: &str) -> f64 {
        self.metric(name).iter().map(|(_, value)| value).sum()
    }

    /// What the archiver has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Stops it with SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ArchiverProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `ddbd` with `[archive] enabled` and a `ddb-archiver` beside it, in a fresh directory.
pub struct ArchivedNode {
    /// The archiver (declared first: dropped, so killed, before the node).
    pub archiver: ArchiverProcess,
    /// The node.
    pub node: crate::NodeProcess,
    /// The archive URL.
    pub url: String,
    /// Holds the archiver's log and, for a `file://` archive, the archive.
    pub work: tempfile::TempDir,
}

impl ArchivedNode {
    /// Starts the node with `node_env` (besides `DDB_ARCHIVE_ENABLED=true`) and the archiver
    /// with `archiver_env` and `extra_config`, archiving to `archive` (default: a `file://`
    /// directory in [`ArchivedNode::work`]).
    ///
    /// # Panics
    /// When either does not start.
    pub fn start(
        node_env: &[(&str, &str)],
        archive: Option<String>,
        archiver_env: &[(String, String)],
        extra_config: &str,
    ) -> Self {
        let mut env = vec![("DDB_ARCHIVE_ENABLED", "true")];
        env.extend_from_slice(node_env);
        let node = crate::NodeProcess::start_with_env(&crate::binary("ddbd"), &env)
            .unwrap_or_else(|e| panic!("starting ddbd: {e}"));
        let work = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let url =
            archive.unwrap_or_else(|| format!("file://{}", work.path().join("archive").display()));
        let archiver = ArchiverProcess::start_with_config(
            node.endpoint(),
            &node.data_dir(),
            &url,
            archiver_env,
            &work.path().join("archiver.log"),
            extra_config,
        )
        .unwrap_or_else(|e| panic!("starting ddb-archiver: {e}"));
        ArchivedNode {
            archiver,
            node,
            url,
            work,
        }
    }

    /// A client of the node with its test key.
    pub fn client(&self) -> ddb::client::Client {
        crate::client(
            self.node.port(),
            crate::NodeProcess::ACCESS_KEY_ID,
            crate::NodeProcess::SECRET_ACCESS_KEY,
        )
    }

    /// Opens the archive (S3 credentials from `env`).
    ///
    /// # Panics
    /// When the URL does not open.
    pub fn archive(&self, env: &[(String, String)]) -> ddb::archive::Archive {
        ddb::archive::ArchiveUrl::parse(&self.url)
            .unwrap_or_else(|e| panic!("{e}"))
            .open_archive(|name| {
                env.iter()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.clone())
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
