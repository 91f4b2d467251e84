//! ddb-archiver: ships each partition's committed write-ahead log to S3-compatible object
//! storage (or a directory), beside one `ddbd`.
//!
//! The main loop polls the node's internal API for its partitions; a worker per partition
//! ([`worker`]) archives it while the node leads it and follows the archive's tail while it does
//! not. Alongside: the catalog is archived on every change (so a table can be restored from the
//! bucket alone), and `/metrics` and `/healthz` are served. How it works and what it promises:
//! `docs/archiver.md`.

pub mod config;
pub mod metrics;
pub mod node_client;
pub mod snapshots;
pub mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use ddb::archive::ArchiveUrl;
use ddb::node::ArchivePartition;
use tokio::sync::{Semaphore, watch};

pub use config::ArchiverConfig;
use metrics::Metrics;
use node_client::NodeClient;
use worker::Shared;

/// How often the catalog is checked for changes to archive.
const CATALOG_INTERVAL: Duration = Duration::from_secs(1);

/// How long in-flight uploads may finish after a stop signal.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs the archiver until `shutdown` completes. `ready` is called once it serves.
pub async fn run(
    config: ArchiverConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    config.validate()?;
    let url_text = config.archive_url()?;
    let url = ArchiveUrl::parse(&url_text).with_context(|| format!("archive URL {url_text}"))?;
    let archive = url
        .open_archive(|name| std::env::var(name).ok())
        .with_context(|| format!("opening the archive {url}"))?;
    let node = wait_for_node(&config).await?;
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let address = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .with_state(Arc::clone(&metrics));
    let (stop_sender, stop) = watch::channel(false);
    let mut server_stop = stop.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stopped| *stopped).await;
            })
            .await;
    });
    tracing::info!(archive = %url, node = %config.node_url, metrics = %address, "archiving");
    ready(address);

    let shared = Arc::new(Shared {
        archive,
        node,
        metrics: Arc::clone(&metrics),
        uploads: Semaphore::new(config.parallel_uploads),
        config,
    });
    let mut workers: HashMap<
        u64,
        (
            watch::Sender<Option<ArchivePartition>>,
            tokio::task::JoinHandle<()>,
        ),
    > = HashMap::new();
    let mut catalog_check = Instant::now() - CATALOG_INTERVAL;
    let mut archived_catalog: Option<blake3::Hash> = None;
    let mut archived_tables = std::collections::BTreeSet::new();
    let watchdog = ddb::service::watchdog_period();
    let mut last_watchdog = Instant::now();
    let poll = ArchiverConfig::ms(shared.config.poll_interval_ms);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(poll) => {}
        }
        if watchdog.is_some_and(|period| last_watchdog.elapsed() >= period) {
            ddb::service::notify_systemd("WATCHDOG=1");
            last_watchdog = Instant::now();
        }
        let node = shared.node.clone();
        let listed = tokio::task::spawn_blocking(move || node.partitions()).await;
        let partitions = match listed {
            Ok(Ok(listing)) => {
                metrics.set_node_up(true);
                listing.partitions
            }
            Ok(Err(e)) => {
                if metrics.node_up() {
                    tracing::warn!(error = %e, "cannot reach the node");
                }
                metrics.set_node_up(false);
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "node poll failed");
                continue;
            }
        };
        // The catalog goes first: a table's chunks are archived only once a catalog version
        // naming it is, so a restore can always find the table of what it restores.
        let tables: std::collections::BTreeSet<u64> =
            partitions.iter().map(|p| p.table_id).collect();
        if catalog_check.elapsed() >= CATALOG_INTERVAL || !tables.is_subset(&archived_tables) {
            catalog_check = Instant::now();
            if let Some(archived) = archive_catalog(&shared, &mut archived_catalog).await {
                archived_tables = archived;
            }
        }
        let seen: Vec<u64> = partitions.iter().map(|p| p.partition_id).collect();
        for partition in partitions {
            if partition.table_id != 0 && !archived_tables.contains(&partition.table_id) {
                continue;
            }
            let id = partition.partition_id;
            if let Some((sender, _)) = workers.get(&id) {
                let _ = sender.send(Some(partition));
            } else {
                let (sender, receiver) = watch::channel(Some(partition));
                let task = tokio::spawn(worker::run_partition(
                    Arc::clone(&shared),
                    receiver,
                    stop.clone(),
                ));
                workers.insert(id, (sender, task));
            }
        }
        workers.retain(|id, (sender, _)| {
            let keep = seen.contains(id);
            if !keep {
                let _ = sender.send(None);
            }
            keep
        });
    }
    tracing::info!("stopping: letting in-flight uploads finish");
    ddb::service::notify_systemd("STOPPING=1");
    let _ = stop_sender.send(true);
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for (_, (_, task)) in workers {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
    let _ = server.await;
    Ok(())
}

/// Waits (bounded) for the node's internal token, which the node writes when it first starts.
async fn wait_for_node(config: &ArchiverConfig) -> anyhow::Result<NodeClient> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match NodeClient::new(&config.node_url, &config.node_data_dir) {
            Ok(client) => return Ok(client),
            Err(reason) if Instant::now() < deadline => {
                tracing::info!(%reason, "waiting for the node");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(reason) => anyhow::bail!(reason),
        }
    }
}

/// Archives the node's catalog if it changed since the last time. Once the archive holds the
/// node's current catalog, returns the ids of the tables in it.
async fn archive_catalog(
    shared: &Shared,
    archived: &mut Option<blake3::Hash>,
) -> Option<std::collections::BTreeSet<u64>> {
    let node = shared.node.clone();
    let Ok(Ok(encoded)) = tokio::task::spawn_blocking(move || node.catalog()).await else {
        return None;
    };
    let tables = match ddb::catalog::Catalog::scratch(Some(&encoded)) {
        Ok(catalog) => catalog.tables().iter().map(|table| table.id).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "the node's catalog does not decode");
            return None;
        }
    };
    let hash = blake3::hash(&encoded);
    if *archived == Some(hash) {
        return Some(tables);
    }
    match ddb::archive::catalog::upload_catalog(&shared.archive, &encoded, now_ms()).await {
        Ok(_) => {
            *archived = Some(hash);
            Some(tables)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot archive the catalog; retrying");
            None
        }
    }
}

use ddb::service::now_ms;

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        metrics.render(),
    )
}

async fn healthz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if !metrics.node_up() {
        problems.push("the node does not answer".to_string());
    }
    for (table, partition) in metrics.split_brains() {
        problems.push(format!(
            "split brain on table {table} partition {partition}: archiving stopped"
        ));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}
