//! The ddbd processes of a local cluster: finding `ddbd`, starting each node from its
//! `ddbd.toml`, waiting for `/healthz`, killing and restarting one node, stopping them all.
//! Shared by `ddbctl local up` and `ddbctl drill power-off`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};

use super::cluster_status::healthy;
use super::local_layout::{LocalCluster, LocalNode};

/// How long every node together may take to answer `/healthz` after starting.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `/healthz` request may take.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
/// Lines of a failed node's log shown when it does not start.
const LOG_TAIL_LINES: usize = 20;
/// The line ddbctl appends to a node's log before starting it.
const START_MARKER: &str = "--- ddbctl local up: starting node";

/// The ddbd processes of one local cluster. Dropping it stops every node still running, so
/// no ddbd outlives ddbctl whatever path ddbctl leaves by.
pub struct Fleet {
    ddbd: PathBuf,
    cluster: LocalCluster,
    /// One per node of `cluster`, in the same order.
    pub nodes: Vec<RunningNode>,
    /// The archiver beside each node and the scrubber (when the cluster archives), and the
    /// canaries.
    archivers: Vec<Child>,
}

/// One node's process.
pub struct RunningNode {
    pub node: LocalNode,
    child: Child,
    /// Set once the process has exited and been reaped.
    pub exit: Option<ExitStatus>,
}

/// How waiting for the nodes to answer `/healthz` ended, when no node failed.
pub enum Started {
    All,
    Interrupted(&'static str),
}

/// A node that did not start: it exited or never answered `/healthz`.
pub struct StartFailure {
    pub node: LocalNode,
    pub reason: String,
}

impl Fleet {
    /// Starts every node of `cluster` (whose configurations [`LocalCluster::prepare`] wrote)
    /// with the `ddbd` at `ddbd`, and an archiver beside each when the cluster archives. Does
    /// not wait for them.
    pub fn launch(ddbd: &Path, cluster: &LocalCluster) -> anyhow::Result<Fleet> {
        let mut fleet = Fleet {
            ddbd: ddbd.to_path_buf(),
            cluster: cluster.clone(),
            nodes: Vec::new(),
            archivers: Vec::new(),
        };
        for node in &cluster.nodes {
            let child = spawn(ddbd, cluster, node)?;
            fleet.nodes.push(RunningNode {
                node: node.clone(),
                child,
                exit: None,
            });
        }
        if cluster.archive.is_some() {
            let archiver = find_binary("ddb-archiver")?;
            for node in &cluster.nodes {
                fleet
                    .archivers
                    .push(spawn_archiver(&archiver, cluster, node)?);
            }
            let scrubber = find_binary("ddb-scrubber")?;
            let log = open_log(&cluster.scrubber_log_path())?;
            fleet.archivers.push(
                spawn_configured(&scrubber, &cluster.scrubber_config_path(), log)
                    .with_context(|| format!("starting {}", scrubber.display()))?,
            );
        }
        if !cluster.canaries.is_empty() {
            let program = find_binary("ddb-canary")?;
            for canary in &cluster.canaries {
                let log = open_log(&cluster.canary_log_path(canary))?;
                fleet.archivers.push(
                    spawn_configured(&program, &cluster.canary_config_path(canary), log)
                        .with_context(|| format!("starting {}", program.display()))?,
                );
            }
        }
        Ok(fleet)
    }

    /// Waits until every node answers `/healthz`, failing when one exits or
    /// [`START_TIMEOUT`] passes; a signal arriving on `signals` ends the wait early.
    pub fn wait_until_healthy(
        &mut self,
        signals: Option<&Receiver<&'static str>>,
    ) -> Result<Started, Box<StartFailure>> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut healthy_nodes = vec![false; self.nodes.len()];
        loop {
            for (running, is_healthy) in self.nodes.iter_mut().zip(&mut healthy_nodes) {
                if *is_healthy {
                    continue;
                }
                if let Ok(Some(status)) = running.child.try_wait() {
                    running.exit = Some(status);
                    return Err(Box::new(StartFailure {
                        node: running.node.clone(),
                        reason: format!("exited while starting ({status})"),
                    }));
                }
                *is_healthy = healthy(&running.node.api.to_string(), HEALTH_TIMEOUT);
            }
            if healthy_nodes.iter().all(|h| *h) {
                return Ok(Started::All);
            }
            if Instant::now() >= deadline {
                let index = healthy_nodes.iter().position(|h| !h).unwrap_or_default();
                return Err(Box::new(StartFailure {
                    node: self.nodes[index].node.clone(),
                    reason: format!(
                        "did not answer /healthz within {} s",
                        START_TIMEOUT.as_secs()
                    ),
                }));
            }
            let pause = Duration::from_millis(100);
            match signals.map(|s| s.recv_timeout(pause)) {
                None => std::thread::sleep(pause),
                Some(Ok(signal)) => return Ok(Started::Interrupted(signal)),
                Some(Err(RecvTimeoutError::Timeout)) => {}
                Some(Err(RecvTimeoutError::Disconnected)) => {
                    return Ok(Started::Interrupted("signal listener gone"));
                }
            }
        }
    }

    /// An error for a node that did not start, after printing the last lines it logged in
    /// this run on standard error.
    pub fn start_error(&self, failure: &StartFailure) -> anyhow::Error {
        let log = self.cluster.log_path(&failure.node);
        eprintln!("last lines of {}:", log.display());
        for line in log_tail(&log, LOG_TAIL_LINES) {
            eprintln!("  {line}");
        }
        anyhow::anyhow!("node {} {}", failure.node.id, failure.reason)
    }

    /// The last `count` non-blank lines node `index` logged since it was last started (a
    /// backtrace left out), for explaining why it stopped.
    pub fn last_log_lines(&self, index: usize, count: usize) -> Vec<String> {
        let lines = log_tail(&self.cluster.log_path(&self.nodes[index].node), count * 2);
        let kept: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
        kept[kept.len().saturating_sub(count)..].to_vec()
    }

    /// SIGKILL to node `index` (no shutdown of any kind), reaping it.
    pub fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        let running = &mut self.nodes[index];
        if running.exit.is_some() {
            bail!("node {} is not running", running.node.id);
        }
        running
            .child
            .kill()
            .with_context(|| format!("killing node {}", running.node.id))?;
        running.exit = Some(
            running
                .child
                .wait()
                .with_context(|| format!("reaping node {}", running.node.id))?,
        );
        Ok(())
    }

    /// Starts node `index` again from its `ddbd.toml` (its data stays); it must have exited.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        let running = &mut self.nodes[index];
        if running.exit.is_none() {
            bail!("node {} is still running", running.node.id);
        }
        running.child = spawn(&self.ddbd, &self.cluster, &running.node)?;
        running.exit = None;
        Ok(())
    }

    /// Waits until node `index` answers `/healthz`, failing if it exits or `timeout` passes.
    pub fn wait_node_healthy(&mut self, index: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let running = &mut self.nodes[index];
        loop {
            if let Ok(Some(status)) = running.child.try_wait() {
                running.exit = Some(status);
                bail!("node {} exited while starting ({status})", running.node.id);
            }
            if healthy(&running.node.api.to_string(), HEALTH_TIMEOUT) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {} did not answer /healthz within {} s of starting",
                    running.node.id,
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Notes every node that has exited since the last look; returns the newly exited ones.
    pub fn reap_exited(&mut self) -> Vec<(LocalNode, ExitStatus)> {
        let mut exited = Vec::new();
        for running in self.nodes.iter_mut().filter(|r| r.exit.is_none()) {
            if let Ok(Some(status)) = running.child.try_wait() {
                running.exit = Some(status);
                exited.push((running.node.clone(), status));
            }
        }
        exited
    }

    /// SIGTERM to every node still running, then SIGKILL to any still running after
    /// [`STOP_TIMEOUT`]. Idempotent.
    pub fn stop(&mut self) {
        // Archivers, the scrubber and the canaries first, so they stop polling nodes that are
        // going away (and no canary pages for a cluster being stopped);
        // archivers finish their in-flight uploads within their own grace period.
        for archiver in &self.archivers {
            let _ = kill_process(Pid::from_child(archiver), Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for mut archiver in self.archivers.drain(..) {
            while matches!(archiver.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = archiver.kill();
            let _ = archiver.wait();
        }
        for running in self.nodes.iter_mut().filter(|r| r.exit.is_none()) {
            // An error means it is already gone; the wait below reaps it.
            let _ = kill_process(Pid::from_child(&running.child), Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            for running in self.nodes.iter_mut().filter(|r| r.exit.is_none()) {
                match running.child.try_wait() {
                    Ok(Some(status)) => running.exit = Some(status),
                    Ok(None) => {}
                    // Not ours to wait for any more: nothing left to stop.
                    Err(_) => running.exit = Some(ExitStatus::default()),
                }
            }
            if self.nodes.iter().all(|r| r.exit.is_some()) {
                return;
            }
            if Instant::now() >= deadline {
                for running in self.nodes.iter_mut().filter(|r| r.exit.is_none()) {
                    eprintln!(
                        "node {} did not stop within {} s: killing it",
                        running.node.id,
                        STOP_TIMEOUT.as_secs()
                    );
                    let _ = running.child.kill();
                    running.exit = Some(running.child.wait().unwrap_or_default());
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `ddbd` next to this `ddbctl` (as cargo and release archives lay them out), else the
/// first on PATH.
pub fn find_ddbd() -> anyhow::Result<PathBuf> {
    find_binary("ddbd")
}

/// The program `name` (`ddbd`, `ddb-archiver`) next to this `ddbctl`, else the first on PATH.
pub fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.with_context(|| {
        format!(
            "cannot find {name}: not beside ddbctl ({}) nor on PATH; build it with \
             `cargo build -p ddbctl -p ddb-archiver -p ddb-scrubber -p ddb-canary --bins`",
            beside.map_or_else(|| "?".into(), |p| p.display().to_string())
        )
    })
}

/// Starts `ddb-archiver --config <node's archiver.toml>`, its output appended to its log, with
/// the same environment rule as nodes (S3 credentials pass through).
fn spawn_archiver(
    archiver: &Path,
    cluster: &LocalCluster,
    node: &LocalNode,
) -> anyhow::Result<Child> {
    let log = open_log(&cluster.archiver_log_path(node))?;
    spawn_configured(archiver, &cluster.archiver_config_path(node), log)
        .with_context(|| format!("starting {} beside node {}", archiver.display(), node.id))
}

/// Starts `ddbd --config <node's ddbd.toml>`, its output appended to its log after a start
/// marker.
fn spawn(ddbd: &Path, cluster: &LocalCluster, node: &LocalNode) -> anyhow::Result<Child> {
    let mut log = open_log(&cluster.log_path(node))?;
    writeln!(log, "{START_MARKER} {}", node.id)?;
    spawn_configured(ddbd, &cluster.config_path(node), log)
        .with_context(|| format!("starting {} for node {}", ddbd.display(), node.id))
}

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Starts `program --config <config>` with standard output and error going to `log`. DDB_*
/// variables (which override a config file) are not passed on, except DDB_LOG and
/// DDB_FAULT_INJECTION (for tests of the scrubber).
fn spawn_configured(program: &Path, config: &Path, log: std::fs::File) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("DDB_") && text != "DDB_LOG" && text != "DDB_FAULT_INJECTION" {
            command.env_remove(&name);
        }
    }
    command.spawn()
}

/// The last `count` lines this run wrote to the log at `path` (after ddbctl's start marker),
/// leaving out a backtrace that follows ddbd's error (when RUST_BACKTRACE is set) so that the
/// error itself shows.
fn log_tail(path: &Path, count: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let this_run = text
        .rfind(START_MARKER)
        .and_then(|at| text[at..].split_once('\n'))
        .map_or(text.as_str(), |(_, rest)| rest);
    let lines: Vec<&str> = this_run
        .lines()
        .take_while(|line| line.trim() != "Stack backtrace:")
        .collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|l| (*l).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_shows_this_runs_error_without_its_backtrace() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ddbd.log");
        std::fs::write(
            &log,
            format!(
                "{START_MARKER} 2\nold run\n{START_MARKER} 2\nError: opening node data\n\n\
                 Caused by:\n    Not a directory\n\nStack backtrace:\n   0: main\n"
            ),
        )
        .unwrap();
        assert_eq!(
            log_tail(&log, 20),
            [
                "Error: opening node data",
                "",
                "Caused by:",
                "    Not a directory",
                ""
            ]
        );
        assert_eq!(log_tail(&log, 2), ["    Not a directory", ""]);
    }
}
