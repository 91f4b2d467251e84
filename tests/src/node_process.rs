//! [`NodeProcess`]: a real `ddbd` process for a test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a node may take to start serving before the test gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `ddbd` on `127.0.0.1` with a fresh data directory and fixed credentials
/// ([`NodeProcess::ACCESS_KEY_ID`], [`NodeProcess::SECRET_ACCESS_KEY`]). The node picks a free
/// port itself (`--listen 127.0.0.1:0`), so tests never race for ports. Dropping it kills the
/// process and removes the data directory.
pub struct NodeProcess {
    child: Child,
    endpoint: String,
    ddbd: PathBuf,
    data_dir: tempfile::TempDir,
    log_path: PathBuf,
    env: Vec<(String, String)>,
}

impl NodeProcess {
    /// The access key id the node accepts.
    pub const ACCESS_KEY_ID: &'static str = "DDBTESTKEY0000000001";
    /// The secret of [`NodeProcess::ACCESS_KEY_ID`].
    pub const SECRET_ACCESS_KEY: &'static str = "ddb-tests-secret-access-key-000000000000";
    /// The region the node serves (ddbd's default).
    pub const REGION: &'static str = "us-east-1";

    /// Starts the `ddbd` binary at `ddbd` (from `env!("CARGO_BIN_EXE_ddbd")` in `bin`'s tests,
    /// or [`crate::binary`]) and waits until `/healthz` answers. On failure the error includes
    /// the node's log.
    pub fn start(ddbd: &Path) -> std::io::Result<Self> {
        NodeProcess::start_with_env(ddbd, &[])
    }

    /// [`NodeProcess::start`] with extra environment variables (configuration overrides such
    /// as `DDB_ARCHIVE_ENABLED`), kept across restarts.
    pub fn start_with_env(ddbd: &Path, env: &[(&str, &str)]) -> std::io::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let log_path = data_dir.path().join("ddbd.log");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
            .collect();
        let (child, endpoint) = spawn(ddbd, &data_dir.path().join("data"), &log_path, &env)?;
        let mut node = NodeProcess {
            child,
            endpoint: endpoint.unwrap_or_default(),
            ddbd: ddbd.to_path_buf(),
            data_dir,
            log_path,
            env,
        };
        node.wait_started()?;
        Ok(node)
    }

    /// Kills the node with SIGKILL (no shutdown of any kind) and starts it again on the same
    /// data directory; the endpoint (port) changes.
    pub fn kill_and_restart(&mut self) -> std::io::Result<()> {
        self.kill_then_restart(|_| {})
    }

    /// [`NodeProcess::kill_and_restart`], calling `while_down` with the data directory while
    /// the node is not running (to damage its files, say).
    pub fn kill_then_restart(&mut self, while_down: impl FnOnce(&Path)) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        while_down(&self.data_dir());
        let (child, endpoint) = spawn(&self.ddbd, &self.data_dir(), &self.log_path, &self.env)?;
        self.child = child;
        self.endpoint = endpoint.unwrap_or_default();
        self.wait_started()
    }

    fn wait_started(&mut self) -> std::io::Result<()> {
        if self.endpoint.is_empty() {
            return Err(self.failure("ddbd did not print its endpoint"));
        }
        self.wait_healthy()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The node's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// `GET path` on the node's internal API (authenticated with the token in its data
    /// directory): the status code and body.
    pub fn internal_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let token = ddb::server::read_internal_token(&self.data_dir())?;
        Ok(crate::internal_call(self.port(), &token, "GET", path))
    }

    /// The node's API port.
    ///
    /// # Panics
    /// When the endpoint has no port (it always has one).
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.endpoint))
    }

    /// Every replica's archiving state, from the internal API.
    ///
    /// # Panics
    /// When the node does not answer.
    pub fn archive_partitions(&self) -> ddb::server::ArchivePartitions {
        let (status, body) = self
            .internal_get("/internal/archive/partitions")
            .unwrap_or_else(|e| panic!("internal API: {e}"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Waits (up to `limit`) until the node's archive watermark reached its applied LSN on
    /// every partition, and returns that state; `context` (an archiver's log) goes into the
    /// panic message otherwise.
    ///
    /// # Panics
    /// When the archive does not catch up in time.
    pub fn wait_archived(
        &self,
        limit: Duration,
        context: impl Fn() -> String,
    ) -> ddb::server::ArchivePartitions {
        let deadline = Instant::now() + limit;
        loop {
            let listing = self.archive_partitions();
            if listing
                .partitions
                .iter()
                .all(|p| p.watermark == p.applied_lsn)
            {
                return listing;
            }
            assert!(
                Instant::now() < deadline,
                "the archive did not catch up in {limit:?}: {listing:?}\n{}",
                context()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The node's state digest of `partition` at `lsn` (its applied LSN, or one it still knows).
    ///
    /// # Panics
    /// When the node knows no digest at or below `lsn`.
    pub fn digest_at(&self, partition: u64, lsn: u64) -> (ddb::wal::Lsn, ddb::digest::StateDigest) {
        let (_, body) = self
            .internal_get(&format!(
                "/internal/archive/digest?partition={partition}&at_most={lsn}"
            ))
            .unwrap_or_else(|e| panic!("internal API: {e}"));
        serde_json::from_str::<ddb::server::DigestPoint>(&body)
            .ok()
            .and_then(|point| point.decode())
            .unwrap_or_else(|| panic!("no digest of partition {partition} at {lsn}: {body}"))
    }

    /// What the node has logged so far (its standard error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn failure(&mut self, what: &str) -> std::io::Error {
        let status = self.child.try_wait().ok().flatten();
        std::io::Error::other(format!(
            "{what} (exit status {status:?}); its log:\n{}",
            self.log()
        ))
    }

    fn wait_healthy(&mut self) -> std::io::Result<()> {
        let address = self.endpoint.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthz_ok(&address) {
                return Ok(());
            }
            if Instant::now() > deadline || self.child.try_wait()?.is_some() {
                return Err(self.failure("ddbd did not become healthy"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ddbd` on `data_dir`, appending its log to `log_path`, and returns it with the
/// endpoint it printed (if it printed one in time).
fn spawn(
    ddbd: &Path,
    data_dir: &Path,
    log_path: &Path,
    env: &[(String, String)],
) -> std::io::Result<(Child, Option<String>)> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut child = Command::new(ddbd)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("DDB_ACCESS_KEY_ID", NodeProcess::ACCESS_KEY_ID)
        .env("DDB_SECRET_ACCESS_KEY", NodeProcess::SECRET_ACCESS_KEY)
        .env("DDB_LOG", "warn")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let endpoint = child.stdout.take().and_then(wait_for_endpoint);
    Ok((child, endpoint))
}

/// Reads ddbd's standard output until the `serving DynamoDB on http://…` line and returns
/// the endpoint; a thread keeps draining the pipe afterwards so the node never blocks on it.
fn wait_for_endpoint(stdout: impl Read + Send + 'static) -> Option<String> {
    wait_for_line(stdout, " serving DynamoDB on ")
}

/// Reads a process's standard output until a line containing `marker` and returns what
/// follows the marker; a thread keeps draining the pipe afterwards.
pub(crate) fn wait_for_line(
    stdout: impl Read + Send + 'static,
    marker: &'static str,
) -> Option<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some((_, endpoint)) = line.split_once(marker) {
                let _ = sender.send(endpoint.trim().to_owned());
                sent = true;
            }
        }
    });
    receiver.recv_timeout(START_TIMEOUT).ok()
}

/// True if `GET /healthz` on `address` (`host:port`) answers 200.
pub fn healthz_ok(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
