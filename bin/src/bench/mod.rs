//! `ddbctl bench`: a closed-loop load generator. Each client has its own connection and keeps
//! one request in flight; the connections are driven by `--client-threads` single-threaded
//! event loops (see `engine`), request bodies are written into a reused buffer and answers are
//! not parsed (only checked), so the generator costs little next to the node.

mod engine;
mod histogram;
mod report;
pub(crate) mod setup;
mod stages;
mod sync_baseline;
pub(crate) mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ddb::client::Client;

use self::histogram::LatencyHistogram;
use self::report::{BenchReport, Latency};
use self::workload::{RequestBuilder, SplitMix64};
use crate::cli::{BenchArgs, ConnectionArgs, OutputFormat};
use crate::commands::Outcome;
use crate::commands::connect;
use crate::output::Progress;

/// What one client measured.
struct WorkerResult {
    latencies: LatencyHistogram,
    errors: BTreeMap<String, u64>,
}

pub fn run(
    connection: &ConnectionArgs,
    args: &BenchArgs,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    let make_client = || connect::client(connection);
    let client = make_client()?;
    setup::ensure_table(&client, &args.table)
        .with_context(|| format!("preparing table {}", args.table))?;
    if args.workload.reads() {
        setup::preload(
            &make_client,
            &args.table,
            args.items,
            args.item_bytes,
            args.concurrency.min(8),
        )?;
    }
    // One client per thread, made before the clock starts.
    let clients = (0..args.concurrency)
        .map(|index| match args.spread.as_slice() {
            [] => make_client(),
            endpoints => {
                let mut spread = connection.clone();
                spread.endpoint = endpoints[index as usize % endpoints.len()].clone();
                connect::client(&spread)
            }
        })
        .collect::<anyhow::Result<Vec<Client>>>()?;

    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let zipf = args
        .zipf
        .map(|s| std::sync::Arc::new(workload::ZipfKeys::new(args.items, s)));
    let sync_before = args.sync_baseline.as_deref().map(probe_syncs).transpose()?;
    // The node's stage histograms before and after (the node at --endpoint only).
    let stages_before = stages::fetch(&connection.endpoint);
    let ops = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let timeout = connect::timeout(connection)?;
    let pace = args
        .rate
        .map(|rate| Duration::from_secs_f64(f64::from(args.concurrency) / rate as f64));
    // Clients dealt round-robin to the event loops.
    let loops = args.client_threads.min(args.concurrency) as usize;
    let mut groups: Vec<Vec<(usize, engine::Connection)>> =
        (0..loops).map(|_| Vec::new()).collect();
    for (index, client) in clients.into_iter().enumerate() {
        groups[index % loops].push((index, engine::Connection::new(client, timeout)?));
    }
    let duration = Duration::from_secs(args.duration);
    let started = Instant::now();
    let deadline = started + duration;
    let results: Vec<WorkerResult> = std::thread::scope(|scope| {
        let event_loops: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let (ops, errors, zipf) = (&ops, &errors, &zipf);
                scope.spawn(move || {
                    let clients = group.into_iter().map(|(index, connection)| {
                        let mut seeds = SplitMix64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
                        let builder = RequestBuilder::new(
                            args.workload,
                            &args.table,
                            args.items,
                            args.item_bytes,
                            seeds.next(),
                        )
                        .with_zipf(zipf.clone());
                        client_loop(connection, builder, deadline, pace, ops, errors)
                    });
                    run_event_loop(clients)
                })
            })
            .collect();
        show_progress(started, deadline, &ops, &errors);
        event_loops
            .into_iter()
            .flat_map(|event_loop| {
                event_loop.join().unwrap_or_else(|_| {
                    vec![WorkerResult {
                        latencies: LatencyHistogram::new(),
                        errors: BTreeMap::from([("ClientLoopPanicked".to_owned(), 1)]),
                    }]
                })
            })
            .collect()
    });
    let elapsed_s = started.elapsed().as_secs_f64();
    let node_stages = match (stages_before, stages::fetch(&connection.endpoint)) {
        (Some(before), Some(after)) => after.since(&before),
        _ => Vec::new(),
    };
    let sync_after = args.sync_baseline.as_deref().map(probe_syncs).transpose()?;

    let mut latencies = LatencyHistogram::new();
    let mut errors_by_code: BTreeMap<String, u64> = BTreeMap::new();
    for result in &results {
        latencies.merge(&result.latencies);
        for (code, count) in &result.errors {
            *errors_by_code.entry(code.clone()).or_default() += count;
        }
    }
    let ops_per_sec = (latencies.count() as f64 / elapsed_s).round();
    let disk_sync_baseline = match (&args.sync_baseline, sync_before, sync_after) {
        (Some(dir), Some(before), Some(after)) => Some(sync_baseline::SyncBaseline::new(
            dir,
            before,
            after,
            ops_per_sec,
        )),
        _ => None,
    };
    let report = BenchReport {
        workload: args.workload.name(),
        table: args.table.clone(),
        concurrency: args.concurrency,
        items: args.items,
        item_bytes: args.item_bytes,
        duration_s: args.duration,
        elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
        ops: latencies.count(),
        ops_per_sec,
        errors: errors_by_code.values().sum(),
        errors_by_code,
        latency_us: Latency::from_nanos(&latencies),
        node_stages,
        disk_sync_baseline,
    };
    report.print(format)?;
    Ok(if report.errors == 0 {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}

/// One `--sync-baseline` probe, with a progress line while it runs.
fn probe_syncs(dir: &std::path::Path) -> anyhow::Result<sync_baseline::SyncRate> {
    let progress = Progress::stderr();
    progress.update(&format!(
        "measuring the raw sync rate under {} for {} s",
        dir.display(),
        sync_baseline::PROBE_TIME.as_secs()
    ));
    let rate = sync_baseline::measure(
        dir,
        sync_baseline::PROBE_TIME,
        sync_baseline::PROBE_MAX_SYNCS,
    );
    progress.finish();
    rate
}

/// Runs `clients` to completion on a single-threaded runtime of this thread.
fn run_event_loop(
    clients: impl Iterator<Item = impl std::future::Future<Output = WorkerResult>>,
) -> Vec<WorkerResult> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(futures_util::future::join_all(clients)),
        Err(error) => vec![WorkerResult {
            latencies: LatencyHistogram::new(),
            errors: BTreeMap::from([(format!("ClientLoopNotStarted: {error}"), 1)]),
        }],
    }
}

/// The request loop of one client: build, send, time, count, until the deadline; with `pace`,
/// one request per `pace` at most.
async fn client_loop(
    mut connection: engine::Connection,
    mut builder: RequestBuilder,
    deadline: Instant,
    pace: Option<Duration>,
    ops: &AtomicU64,
    errors: &AtomicU64,
) -> WorkerResult {
    let mut latencies = LatencyHistogram::new();
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    let mut next_at = Instant::now();
    loop {
        if let Some(pace) = pace {
            let now = Instant::now();
            if next_at > now {
                tokio::time::sleep(next_at - now).await;
            }
            // Behind schedule: start from now rather than burst to catch up.
            next_at = next_at.max(now) + pace;
        }
        let start = Instant::now();
        if start >= deadline {
            break;
        }
        let request = builder.next_request();
        let expects_item = request.expects_item;
        let outcome = connection.call(request.operation, request.body).await;
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let failure = match outcome {
            // `{}`: GetItem found nothing, so the preload or the read is wrong.
            Ok(answer_len) if expects_item && answer_len <= 2 => Some("ItemNotFound"),
            Ok(_) => None,
            Err(error) => {
                *by_code.entry(error.label().to_owned()).or_default() += 1;
                errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match failure {
            None => {
                latencies.record(nanos);
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Some(code) => {
                *by_code.entry(code.to_owned()).or_default() += 1;
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    WorkerResult {
        latencies,
        errors: by_code,
    }
}

/// Updates a progress line every half second until the deadline.
fn show_progress(started: Instant, deadline: Instant, ops: &AtomicU64, errors: &AtomicU64) {
    let progress = Progress::stderr();
    let total = deadline.duration_since(started).as_secs();
    while Instant::now() < deadline {
        std::thread::sleep(
            deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
        let elapsed = started.elapsed().as_secs_f64();
        let done = ops.load(Ordering::Relaxed);
        progress.update(&format!(
            "{elapsed:.0}/{total} s: {done} ops, {:.0} ops/s, {} errors",
            done as f64 / elapsed.max(0.001),
            errors.load(Ordering::Relaxed)
        ));
    }
    progress.finish();
}
