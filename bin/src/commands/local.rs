//! `ddbctl local up`: a whole cluster of ddbd processes on this machine, watched until Ctrl-C.
//! The layout (ports, files, modes) is in [`super::local_layout`] and docs/local.md.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context;

use super::Outcome;
use super::cluster_status::{NodeAddress, NodeReport, ask_nodes};
use super::local_fleet::{Fleet, Started, find_ddbd};
use super::local_layout::{LocalCluster, REGION};
use super::status_view::{LiveTable, render};
use crate::cli::LocalUpArgs;
use crate::out;

/// How often the status table is refreshed.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How long one status request may take during a refresh.
const STATUS_TIMEOUT: Duration = Duration::from_millis(800);

pub fn up(args: &LocalUpArgs) -> anyhow::Result<Outcome> {
    let mut cluster = LocalCluster::plan(&args.dir, args.nodes, args.base_port)?;
    cluster.heal_after_ms = args.heal_after_ms;
    cluster.check_ports_free()?;
    let ddbd = find_ddbd()?;
    std::fs::create_dir_all(&cluster.dir)
        .with_context(|| format!("creating {}", cluster.dir.display()))?;
    cluster.dir = std::fs::canonicalize(&cluster.dir)
        .with_context(|| format!("resolving {}", cluster.dir.display()))?;
    cluster.archive = archive_url(args, &cluster.dir)?;
    let secrets = cluster.prepare()?;
    // Listen before starting anything, so a Ctrl-C during start-up stops what has started.
    let signals = shutdown_signals()?;

    let mut fleet = Fleet::launch(&ddbd, &cluster)?;
    match fleet.wait_until_healthy(Some(&signals)) {
        Ok(Started::All) => {}
        Ok(Started::Interrupted(signal)) => {
            out!("{signal}: stopping");
            fleet.stop();
            return Ok(Outcome::Clean);
        }
        Err(failure) => {
            let error = fleet.start_error(&failure);
            fleet.stop();
            return Err(error);
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
    if let Some(archive) = &cluster.archive {
        out!("archive: {archive}");
        for node in &cluster.nodes {
            out!(
                "archiver beside node {}: http://{}/metrics  log {}",
                node.id,
                node.archiver,
                cluster.archiver_log_path(node).display()
            );
        }
        out!(
            "scrubber: http://{}/status  log {}  (ddbctl scrub status --scrubber http://{})",
            cluster.scrubber,
            cluster.scrubber_log_path().display(),
            cluster.scrubber
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

/// The archive the cluster's archivers write to: --archive (with --s3-endpoint added), else
/// a directory in the cluster's; `None` with --no-archive.
fn archive_url(args: &LocalUpArgs, dir: &std::path::Path) -> anyhow::Result<Option<String>> {
    if args.no_archive {
        return Ok(None);
    }
    let Some(archive) = &args.archive else {
        return Ok(Some(format!("file://{}", dir.join("archive").display())));
    };
    let url = match &args.s3_endpoint {
        Some(endpoint) if archive.starts_with("s3://") => {
            let separator = if archive.contains('?') { '&' } else { '?' };
            format!("{archive}{separator}endpoint={endpoint}")
        }
        Some(_) => anyhow::bail!("--s3-endpoint goes with an s3:// --archive"),
        None => archive.clone(),
    };
    ddb::archive::ArchiveUrl::parse(&url).with_context(|| format!("--archive {url}"))?;
    Ok(Some(url))
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
        for (node, status) in fleet.reap_exited() {
            live.note(&format!(
                "node {} (az {}) exited ({status}); it stays down; its log: {}",
                node.id,
                node.az,
                cluster.log_path(&node).display()
            ));
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
