//! `ddbctl local up`: a whole cluster of ddbd processes on this machine, watched until Ctrl-C.
//! The layout (ports, files, modes) is in [`super::local_layout`] and docs/local.md.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};

use super::Outcome;
use super::cluster_status::{NodeAddress, NodeReport, ask_nodes, healthy};
use super::local_layout::{LocalCluster, LocalNode, REGION};
use super::status_view::{LiveTable, render};
use crate::cli::LocalUpArgs;
use crate::out;

/// How long every node together may take to answer `/healthz` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the status table is refreshed.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one status request may take during a refresh.
const STATUS_TIMEOUT: Duration = Duration::from_millis(800);
/// Lines of a failed node's log shown when it does not start.
const LOG_TAIL_LINES: usize = 20;
/// The line ddbctl appends to a node's log before starting it.
const START_MARKER: &str = "--- ddbctl local up: starting node";

pub fn up(args: &LocalUpArgs) -> anyhow::Result<Outcome> {
    let mut cluster = LocalCluster::plan(&args.dir, args.nodes, args.base_port)?;
    cluster.check_ports_free()?;
    let ddbd = find_ddbd()?;
    std::fs::create_dir_all(&cluster.dir)
        .with_context(|| format!("creating {}", cluster.dir.display()))?;
    cluster.dir = std::fs::canonicalize(&cluster.dir)
        .with_context(|| format!("resolving {}", cluster.dir.display()))?;
    let secrets = cluster.prepare()?;
    // Listen before starting anything, so a Ctrl-C during start-up stops what has started.
    let signals = shutdown_signals()?;

    let mut fleet = Fleet::default();
    for node in &cluster.nodes {
        let child = spawn(&ddbd, &cluster, node)?;
        fleet.nodes.push(RunningNode {
            node: node.clone(),
            child,
            exit: None,
        });
    }
    match wait_until_healthy(&mut fleet, &signals) {
        Ok(Started::All) => {}
        Ok(Started::Interrupted(signal)) => {
            out!("{signal}: stopping");
            fleet.stop();
            return Ok(Outcome::Clean);
        }
        Err(failure) => {
            fleet.stop();
            let log = cluster.log_path(&failure.node);
            eprintln!("last lines of {}:", log.display());
            for line in log_tail(&log, LOG_TAIL_LINES) {
                eprintln!("  {line}");
            }
            bail!("node {} {}", failure.node.id, failure.reason);
        }
    }

    for node in &cluster.nodes {
        out!(
            "node {} (az {}): http://{}  peer {}  log {}",
            node.id,
            node.az,
            node.api,
            node.peer,
            cluster.log_path(node).display()
        );
    }
    out!(
        "credentials (every node accepts them; kept in {}):",
        cluster.credentials_path().display()
    );
    out!(
        "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION={REGION}",
        secrets.access_key.access_key_id,
        secrets.access_key.secret_access_key
    );
    if let Some(first) = cluster.nodes.first() {
        out!(
            "aws dynamodb list-tables --endpoint-url http://{}",
            first.api
        );
        out!("ddbctl cluster status --endpoint http://{}", first.api);
    }
    out!("ready: {} nodes", cluster.nodes.len());

    let signal = watch(&mut fleet, &cluster, &signals, !args.no_status);
    out!("{signal}: stopping the cluster");
    fleet.stop();
    out!("stopped");
    Ok(Outcome::Clean)
}

/// Until a signal arrives: reports nodes that exit and, if `show_status`, keeps the status
/// table current. Returns the signal's name.
fn watch(
    fleet: &mut Fleet,
    cluster: &LocalCluster,
    signals: &Receiver<&'static str>,
    show_status: bool,
) -> &'static str {
    let mut live = LiveTable::stdout();
    let addresses: Vec<NodeAddress> = cluster
        .nodes
        .iter()
        .map(|n| NodeAddress {
            id: n.id,
            az: n.az.clone(),
            api: n.api.to_string(),
        })
        .collect();
    loop {
        // A Ctrl-C on a terminal reaches the nodes too (they share ddbctl's process group):
        // stopping wins over reporting them as died.
        if let Ok(signal) = signals.try_recv() {
            return signal;
        }
        for running in &mut fleet.nodes {
            if running.exit.is_some() {
                continue;
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                running.exit = Some(status);
                live.note(&format!(
                    "node {} (az {}) exited ({status}); it stays down; its log: {}",
                    running.node.id,
                    running.node.az,
                    cluster.log_path(&running.node).display()
                ));
            }
        }
        if show_status {
            let view = ask_nodes(addresses.clone(), STATUS_TIMEOUT, |id| {
                fleet
                    .nodes
                    .iter()
                    .find(|r| r.node.id == id)
                    .and_then(|r| r.exit)
                    .map(|status| NodeReport::Down(format!("exited: {status}")))
            });
            live.show(&render(&view));
        }
        match signals.recv_timeout(REFRESH_INTERVAL) {
            Ok(signal) => return signal,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return "signal listener gone",
        }
    }
}

/// The `ddbd` next to this `ddbctl` (as cargo and release archives lay them out), else the
/// first on PATH.
fn find_ddbd() -> anyhow::Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ddbd")));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("ddbd"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    on_path.with_context(|| {
        format!(
            "cannot find ddbd: not beside ddbctl ({}) nor on PATH; build it with \
             `cargo build -p ddbctl --bins`",
            beside.map_or_else(|| "?".into(), |p| p.display().to_string())
        )
    })
}

/// Starts `ddbd --config <node's ddbd.toml>`, its output appended to its log. DDB_*
/// variables (which override a config file) are not passed on, except DDB_LOG.
fn spawn(ddbd: &Path, cluster: &LocalCluster, node: &LocalNode) -> anyhow::Result<Child> {
    let log_path = cluster.log_path(node);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(log, "{START_MARKER} {}", node.id)?;
    let mut command = Command::new(ddbd);
    command
        .arg("--config")
        .arg(cluster.config_path(node))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("DDB_") && text != "DDB_LOG" {
            command.env_remove(&name);
        }
    }
    command
        .spawn()
        .with_context(|| format!("starting {} for node {}", ddbd.display(), node.id))
}

/// The ddbd processes this run started.
#[derive(Default)]
struct Fleet {
    nodes: Vec<RunningNode>,
}

struct RunningNode {
    node: LocalNode,
    child: Child,
    /// Set once the process has exited and been reaped.
    exit: Option<ExitStatus>,
}

impl Fleet {
    /// SIGTERM to every node still running, then SIGKILL to any still running after
    /// [`STOP_TIMEOUT`]. Idempotent.
    fn stop(&mut self) {
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
    /// No ddbd outlives ddbctl, whatever path ddbctl leaves by.
    fn drop(&mut self) {
        self.stop();
    }
}

enum Started {
    All,
    Interrupted(&'static str),
}

struct StartFailure {
    node: LocalNode,
    reason: String,
}

/// Waits until every node answers `/healthz`, failing when one exits or [`START_TIMEOUT`]
/// passes.
fn wait_until_healthy(
    fleet: &mut Fleet,
    signals: &Receiver<&'static str>,
) -> Result<Started, StartFailure> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut healthy_nodes = vec![false; fleet.nodes.len()];
    loop {
        for (running, is_healthy) in fleet.nodes.iter_mut().zip(&mut healthy_nodes) {
            if *is_healthy {
                continue;
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                running.exit = Some(status);
                return Err(StartFailure {
                    node: running.node.clone(),
                    reason: format!("exited while starting ({status})"),
                });
            }
            *is_healthy = healthy(&running.node.api.to_string(), Duration::from_millis(500));
        }
        if healthy_nodes.iter().all(|h| *h) {
            return Ok(Started::All);
        }
        if Instant::now() >= deadline {
            let index = healthy_nodes.iter().position(|h| !h).unwrap_or_default();
            return Err(StartFailure {
                node: fleet.nodes[index].node.clone(),
                reason: format!(
                    "did not answer /healthz within {} s",
                    START_TIMEOUT.as_secs()
                ),
            });
        }
        match signals.recv_timeout(Duration::from_millis(100)) {
            Ok(signal) => return Ok(Started::Interrupted(signal)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Ok(Started::Interrupted("signal listener gone"));
            }
        }
    }
}

/// Listens for SIGINT and SIGTERM (from now on they no longer end ddbctl by themselves) and
/// sends each one's name on the returned channel.
fn shutdown_signals() -> anyhow::Result<Receiver<&'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal listener")?;
    let (mut interrupt, mut terminate) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            ))
        })
        .context("listening for SIGINT and SIGTERM")?;
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let name = tokio::select! {
                        _ = interrupt.recv() => "SIGINT",
                        _ = terminate.recv() => "SIGTERM",
                    };
                    if sender.send(name).is_err() {
                        return;
                    }
                }
            });
        })
        .context("starting the signal listener")?;
    Ok(receiver)
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
