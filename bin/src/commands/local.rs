//! `ddbctl local up`: a whole cluster of ddbd processes on this machine, watched until Ctrl-C.
//! The layout (ports, files, modes) is in [`super::local_layout`] and docs/local.md.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::Context;

use super::Outcome;
use super::cluster_status::{NodeAddress, NodeReport, ask_nodes, http_get};
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
    cluster.admission = super::local_layout::admission_limits(&args.admission)?;
    if args.no_canary {
        cluster.canaries.clear();
    }
    anyhow::ensure!(
        args.alarm_window_scale > 0.0,
        "--alarm-window-scale must be positive"
    );
    cluster.alarm_window_scale = args.alarm_window_scale;
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
    if !cluster.canaries.is_empty() {
        for canary in &cluster.canaries {
            out!(
                "canary (az {}): http://{}/report  log {}",
                canary.az,
                canary.listen,
                cluster.canary_log_path(canary).display()
            );
        }
        let canaries = canary_urls(&cluster).join(",");
        out!("alarms: ddbctl alarms ls --canary {canaries}");
        out!("what customers see: ddbctl canary report --canary {canaries}");
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
            let mut text = render(&view);
            text.push_str(&daemons_summary(cluster));
            live.show(&text);
        }
        match signals.recv_timeout(REFRESH_INTERVAL) {
            Ok(signal) => return signal,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return "signal listener gone",
        }
    }
}

fn canary_urls(cluster: &LocalCluster) -> Vec<String> {
    cluster
        .canaries
        .iter()
        .map(|canary| format!("http://{}", canary.listen))
        .collect()
}

/// Below the nodes' table: the archive's lag, the scrubber's proof, what the canaries see and
/// the alarms firing, each from its daemon (a line says so when one does not answer).
fn daemons_summary(cluster: &LocalCluster) -> String {
    use ddb_canary::ops::parse_metrics;
    let get = |address: &str, path: &str| {
        http_get(address, path, STATUS_TIMEOUT)
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    };
    let mut lines = Vec::new();
    if cluster.archive.is_some() {
        let mut lag: Option<f64> = None;
        let mut answered = 0;
        for node in &cluster.nodes {
            if let Some(text) = get(&node.archiver.to_string(), "/metrics") {
                answered += 1;
                for sample in parse_metrics(&text) {
                    if sample.name == "ddb_archiver_lag_seconds" {
                        lag = Some(lag.map_or(sample.value, |lag: f64| lag.max(sample.value)));
                    }
                }
            }
        }
        lines.push(format!(
            "archive: {} of {} archivers answer, largest lag {}",
            answered,
            cluster.nodes.len(),
            lag.map_or_else(|| "-".to_string(), |lag| format!("{lag:.1} s"))
        ));
        let scrub = get(&cluster.scrubber.to_string(), "/status")
            .and_then(|body| serde_json::from_str::<ddb::scrub::Status>(&body).ok());
        lines.push(match scrub {
            Some(status) => {
                let now = ddb::service::now_ms();
                // The stalest proof over all partitions; a partition never proven wins.
                let ages: Vec<Option<u64>> = status
                    .partitions
                    .values()
                    .map(|p| p.proven_at_ms.map(|at| now.saturating_sub(at)))
                    .collect();
                let oldest = if ages.iter().any(Option::is_none) {
                    Some(None)
                } else {
                    ages.into_iter().flatten().max().map(Some)
                };
                format!(
                    "scrub: {} partitions, oldest proof {}, {}",
                    status.partitions.len(),
                    match oldest {
                        Some(Some(age)) => format!("{:.0} s ago", age as f64 / 1000.0),
                        Some(None) => "never".to_string(),
                        None => "-".to_string(),
                    },
                    if status.has_mismatch() {
                        "MISMATCH (ddbctl scrub report)"
                    } else {
                        "no mismatch"
                    }
                )
            }
            None => "scrub: the scrubber does not answer".to_string(),
        });
    }
    let mut availability = Vec::new();
    let mut firing = std::collections::BTreeSet::new();
    for canary in &cluster.canaries {
        let address = canary.listen.to_string();
        match get(&address, "/metrics") {
            Some(text) => {
                let seen: Vec<f64> = parse_metrics(&text)
                    .into_iter()
                    .filter(|sample| sample.name == "ddb_canary_availability")
                    .map(|sample| sample.value)
                    .collect();
                let worst = seen.iter().copied().fold(None, |worst: Option<f64>, a| {
                    Some(worst.map_or(a, |worst| worst.min(a)))
                });
                availability.push(format!(
                    "{} {}",
                    canary.az,
                    worst.map_or_else(|| "-".to_string(), |a| format!("{:.2}%", a * 100.0))
                ));
            }
            None => availability.push(format!("{} not answering", canary.az)),
        }
        if let Some(body) = get(&address, "/alarms")
            && let Ok(answer) = serde_json::from_str::<serde_json::Value>(&body)
        {
            for alarm in answer["alarms"].as_array().into_iter().flatten() {
                if alarm["state"] == "firing" && alarm["silenced"] != true {
                    firing.insert(alarm["key"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    if !cluster.canaries.is_empty() {
        lines.push(format!(
            "canaries (worst endpoint, this window): {}",
            availability.join(", ")
        ));
        lines.push(if firing.is_empty() {
            "alarms firing: none".to_string()
        } else {
            format!(
                "alarms firing: {}",
                firing.into_iter().collect::<Vec<_>>().join(", ")
            )
        });
    }
    let mut text = String::new();
    for line in lines {
        text.push('\n');
        text.push_str(&line);
    }
    text
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
