//! ddb-scrubber: proves a cluster's replicas equal each other and the archive.
//!
//! Every `interval_ms` a pass asks every node for its replicas' digests (at their applied LSN
//! and their checkpoints), brings each partition's **reference replica** — rebuilt only from the
//! archive, kept in the scrubber's own directory — forward to the archive's end, and judges
//! ([`judge`]): check 1, the full replicas agree; check 2, they agree with the reference. Every
//! `deep_every_ms`, or on the `deep_schedule` calendar, or on `POST /run?deep=true`, a pass also
//! has every full replica recompute its digest from its items at rest (check 3). `POST
//! /repair` rebuilds the replicas a pass named odd from good copies. Results, with the last LSN proven equal across
//! all copies and the archive, persist in `<data_dir>/status.json` and are served at
//! `/status`. How it works and what remains: `docs/scrubber.md`.

pub mod config;
mod schedule;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use ddb::archive::{Archive, ArchiveUrl, RestoreError, advance_partition};
use ddb::digest::CheckpointPolicy;
use ddb::node::ScrubReplica;
use ddb::replica::{FjallReplicaStore, ReplicaStore as _};
use tokio::sync::Notify;

pub use config::ScrubberConfig;
use ddb::scrub::{
    AtRest, Check, Copy, Outcome, PartitionReport, Progress, Repair, Status, compare,
};

struct Shared {
    status: Mutex<Status>,
    wake: Notify,
    deep_requested: std::sync::atomic::AtomicBool,
    /// The one partition the next pass is asked to check (`POST /run?partition=P`).
    only_requested: Mutex<Option<u64>>,
    /// How to reach the nodes, for repairs asked over HTTP.
    nodes: Nodes,
    /// The partitions repaired since the current pass began; taken after `status`, never
    /// before it. A pass judges the copies as they were when it fetched them, and starts from
    /// the status as it was when it began; a repair that lands meanwhile resets its
    /// partitions' verdicts, and the pass, finishing, must not write the disagreement it
    /// started from (or found on the copy since rebuilt) back over that reset — later
    /// inconclusive passes would then keep it standing.
    repaired_during_pass: Mutex<BTreeSet<u64>>,
}

/// Into `next`, a finished pass's status, puts back the `current` report of every partition in
/// `repaired` (repaired while the pass ran): as the repair left it.
fn keep_repaired(repaired: &BTreeSet<u64>, next: &mut Status, current: &Status) {
    for partition in repaired {
        match current.partitions.get(partition) {
            Some(report) => {
                next.partitions.insert(*partition, report.clone());
            }
            None => {
                next.partitions.remove(partition);
            }
        }
    }
}

/// The cluster's nodes and how to call their internal API.
#[derive(Clone)]
struct Nodes {
    addresses: Vec<String>,
    token: String,
    agent: ureq::Agent,
}

/// Runs the scrubber until `shutdown` completes; `ready` is called once it serves.
pub async fn run(
    config: ScrubberConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    config.validate()?;
    let token = config.internal_token()?;
    let archive = ArchiveUrl::parse(&config.archive)
        .with_context(|| format!("archive URL {}", config.archive))?
        .open_archive(|name| std::env::var(name).ok())
        .context("opening the archive")?;
    std::fs::create_dir_all(config.data_dir.join("reference"))
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let status_path = config.data_dir.join("status.json");
    let status = match std::fs::read(&status_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {}", status_path.display()))?,
        Err(_) => Status::default(),
    };
    let agent = internal_agent();
    let shared = Arc::new(Shared {
        status: Mutex::new(status),
        wake: Notify::new(),
        deep_requested: std::sync::atomic::AtomicBool::new(false),
        only_requested: Mutex::new(None),
        nodes: Nodes {
            addresses: config.nodes.clone(),
            token: token.clone(),
            agent: agent.clone(),
        },
        repaired_during_pass: Mutex::new(BTreeSet::new()),
    });
    let app = Router::new()
        .route("/status", get(status_json))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/run", post(run_now))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .route("/repair", post(repair_now))
        .with_state(Arc::clone(&shared));
    let address = ddb::service::serve_http(config.listen, app).await?;
    tracing::info!(archive = %config.archive, nodes = ?config.nodes, %address, "scrubbing");
    ready(address);

    // The loop below may spend long in a deep pass; the watchdog checks the process is alive
    // and serving, the proven-LSN age shows whether passes complete.
    ddb::service::spawn_watchdog();
    let mut calendar = match &config.deep_schedule {
        Some(expression) => {
            let on_due = Arc::clone(&shared);
            let calendar = schedule::DeepSchedule::start(expression, move || {
                on_due
                    .deep_requested
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                on_due.wake.notify_one();
            })
            .await?;
            tracing::info!(schedule = %expression, "deep passes on a calendar (UTC)");
            Some(calendar)
        }
        None => None,
    };
    let mut references: HashMap<u64, FjallReplicaStore> = HashMap::new();
    let deep_every = Duration::from_millis(config.deep_every_ms);
    let mut last_deep = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let deep = shared
            .deep_requested
            .swap(false, std::sync::atomic::Ordering::SeqCst)
            || (calendar.is_none() && last_deep.elapsed() >= deep_every);
        if deep {
            last_deep = Instant::now();
        }
        let next_deep_ms = match calendar.as_mut() {
            Some(calendar) => calendar.next_ms().await,
            None => {
                Some(now_ms() + (deep_every.saturating_sub(last_deep.elapsed())).as_millis() as u64)
            }
        };
        let previous = {
            let mut status = lock(&shared.status);
            status.next_deep_ms = next_deep_ms;
            lock(&shared.repaired_during_pass).clear();
            status.clone()
        };
        if previous.paused {
            if deep {
                // Owed: run it once scrubbing resumes.
                shared
                    .deep_requested
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        } else {
            let progress = |done: u64, total: u64, started_ms: u64| {
                lock(&shared.status).progress =
                    Some(Progress::at(deep, done, total, started_ms, now_ms()));
            };
            let only = shared
                .only_requested
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let mut next = pass(
                &config,
                &token,
                &agent,
                &archive,
                &mut references,
                previous,
                (deep, only),
                &progress,
            )
            .await;
            let repairs_due = config.auto_repair
                && next
                    .partitions
                    .values()
                    .any(|p| !p.odd_replicas().is_empty());
            {
                let mut current = lock(&shared.status);
                keep_repaired(&lock(&shared.repaired_during_pass), &mut next, &current);
                next.paused = current.paused;
                next.progress = None;
                next.next_deep_ms = next_deep_ms;
                if let Err(e) = write_status(&status_path, &next) {
                    tracing::warn!(error = %e, "cannot persist the scrub status");
                }
                *current = next;
            }
            if repairs_due {
                let repairs = repair(&shared, None).await;
                tracing::warn!(
                    repairs = repairs.len(),
                    "odd replicas repaired automatically"
                );
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(config.interval_ms)) => {}
        }
    }
    if let Some(calendar) = calendar {
        calendar.stop().await;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One pass over every partition, or over `only` one (the others keep their last reports);
/// deep if `deep`; `progress(done, total, started_ms)` after each partition.
#[allow(clippy::too_many_arguments)]
async fn pass(
    config: &ScrubberConfig,
    token: &str,
    agent: &ureq::Agent,
    archive: &Archive,
    references: &mut HashMap<u64, FjallReplicaStore>,
    previous: Status,
    (deep, only): (bool, Option<u64>),
    progress: &(dyn Fn(u64, u64, u64) + Send + Sync),
) -> Status {
    let started_ms = now_ms();
    let mut replicas: BTreeMap<u64, Vec<ScrubReplica>> = BTreeMap::new();
    let mut nodes_down = Vec::new();
    // Which configured address each node id answered from.
    let mut addresses: BTreeMap<u32, String> = BTreeMap::new();
    for node in &config.nodes {
        match internal(agent, node, token, "GET", "/internal/scrub/replicas").await {
            Ok(body) => match serde_json::from_str::<Vec<ScrubReplica>>(&body) {
                Ok(list) => {
                    for replica in list.into_iter().filter(|r| r.full_replica) {
                        addresses.insert(replica.node_id, node.clone());
                        replicas
                            .entry(replica.partition_id)
                            .or_default()
                            .push(replica);
                    }
                }
                Err(e) => nodes_down.push(format!("{node}: {e}")),
            },
            Err(e) => nodes_down.push(format!("{node}: {e}")),
        }
    }
    let mut partitions = BTreeMap::new();
    if let Some(only) = only {
        replicas.retain(|partition_id, _| *partition_id == only);
        partitions.clone_from(&previous.partitions);
    }
    let mut status = Status {
        passes: previous.passes + 1,
        deep_passes: previous.deep_passes + u64::from(deep),
        scanned_bytes: previous.scanned_bytes,
        last_pass_ms: now_ms(),
        nodes_down,
        partitions,
        paused: false,
        progress: None,
        next_deep_ms: previous.next_deep_ms,
    };
    let total = replicas.len() as u64;
    let mut done = 0;
    progress(0, total, started_ms);
    for (partition_id, copies) in replicas {
        let table_id = copies[0].table_id;
        let before = previous.partitions.get(&partition_id);
        let (reference, archive_error) =
            advance_reference(config, archive, references, table_id, partition_id).await;
        let copies_judged: Vec<Copy> = copies
            .iter()
            .map(|replica| {
                Copy::new(
                    format!("node {}", replica.node_id),
                    (replica.applied_lsn, replica.digest.clone()),
                    &replica.checkpoints,
                )
            })
            .collect();
        let peers = keep_disagreement(
            compare(&copies_judged.iter().collect::<Vec<_>>()),
            before.map(|b| &b.peers),
        );
        let archive_check = match (&reference, &archive_error) {
            (_, Some(_)) => Check {
                outcome: Outcome::Disagree,
                lsn: None,
                odd: vec!["archive".to_string()],
            },
            (Some(reference), None) => {
                let mut all: Vec<&Copy> = copies_judged.iter().collect();
                all.push(reference);
                compare(&all)
            }
            (None, None) => Check {
                outcome: Outcome::Pending,
                lsn: None,
                odd: Vec::new(),
            },
        };
        let archive_check = keep_disagreement(archive_check, before.map(|b| &b.archive));
        let (proven_lsn, proven_at_ms) = match (archive_check.outcome, archive_check.lsn) {
            (Outcome::Agree, Some(lsn)) if peers.outcome == Outcome::Agree => {
                (Some(lsn), Some(now_ms()))
            }
            _ => (
                before.and_then(|b| b.proven_lsn),
                before.and_then(|b| b.proven_at_ms),
            ),
        };
        let differing_keys = {
            let disagreement = [&peers, &archive_check]
                .into_iter()
                .find(|check| check.outcome == Outcome::Disagree && !check.odd.is_empty());
            match disagreement {
                Some(check) => {
                    let odd_name = check.odd[0].clone();
                    let good_name = copies_judged
                        .iter()
                        .map(|copy| copy.name.clone())
                        .chain(std::iter::once("archive".to_string()))
                        .find(|name| !check.odd.contains(name));
                    let source = |name: &str| -> Option<KeySource<'_>> {
                        if name == "archive" {
                            return references.get(&partition_id).map(KeySource::Reference);
                        }
                        let id: u32 = name.strip_prefix("node ")?.parse().ok()?;
                        addresses.get(&id).map(|address| KeySource::Node(address))
                    };
                    match (source(&odd_name), good_name.as_deref().and_then(source)) {
                        (Some(odd), Some(good)) => tokio::task::block_in_place(|| {
                            localise(agent, token, partition_id, &odd, &good)
                        })
                        .unwrap_or_else(|e| vec![format!("(cannot localise: {e})")]),
                        _ => Vec::new(),
                    }
                }
                None => Vec::new(),
            }
        };
        let at_rest = if deep {
            let rate = config.scan_bytes_per_sec;
            let scan = scan_at_rest(agent, token, &addresses, &copies, partition_id, rate).await;
            status.scanned_bytes += scan.bytes;
            Some(scan)
        } else {
            before.and_then(|b| b.at_rest.clone())
        };
        let report = PartitionReport {
            table_id,
            partition_id,
            peers,
            archive: archive_check,
            at_rest,
            reference_lsn: reference
                .as_ref()
                .and_then(|r| r.digests.keys().next_back().copied())
                .unwrap_or(0),
            archive_error,
            proven_lsn,
            proven_at_ms,
            checked_at_ms: now_ms(),
            differing_keys,
        };
        alarm_on_change(before, &report);
        status.partitions.insert(partition_id, report);
        done += 1;
        progress(done, total, started_ms);
    }
    status.last_pass_ms = now_ms();
    status
}

/// Logs an `ALARM` line when a check of the partition turns to a mismatch.
fn alarm_on_change(before: Option<&PartitionReport>, now: &PartitionReport) {
    let checks = [
        (
            "peers",
            now.peers.outcome,
            before.map(|b| b.peers.outcome),
            &now.peers.odd,
        ),
        (
            "archive",
            now.archive.outcome,
            before.map(|b| b.archive.outcome),
            &now.archive.odd,
        ),
    ];
    for (check, outcome, was, odd) in checks {
        if outcome == Outcome::Disagree && was != Some(Outcome::Disagree) {
            tracing::error!(
                partition = now.partition_id,
                check,
                ?odd,
                archive_error = ?now.archive_error,
                "ALARM scrub mismatch"
            );
        }
    }
}

/// Brings the partition's reference replica to the archive's end; returns it as a copy to
/// judge (none while nothing is archived) and what is wrong with the archive, if anything.
async fn advance_reference(
    config: &ScrubberConfig,
    archive: &Archive,
    references: &mut HashMap<u64, FjallReplicaStore>,
    table_id: u64,
    partition_id: u64,
) -> (Option<Copy>, Option<String>) {
    let dir = config
        .data_dir
        .join("reference")
        .join(format!("{table_id}-{partition_id}"));
    for attempt in 0..2 {
        let store = match references.entry(partition_id) {
            std::collections::hash_map::Entry::Occupied(store) => store.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                match FjallReplicaStore::open(&dir, CheckpointPolicy::default()) {
                    Ok(store) => slot.insert(store),
                    Err(e) => return (None, Some(format!("opening {}: {e}", dir.display()))),
                }
            }
        };
        match advance_partition(archive, table_id, partition_id, store, &mut |_| {}).await {
            Ok(_) => return (reference_copy(store), None),
            // Behind what retention kept: start over from the newest snapshot.
            Err(RestoreError::Gap { .. }) if attempt == 0 && store.applied_lsn().0 > 0 => {
                references.remove(&partition_id);
                if let Err(e) = remove_dir(&dir) {
                    return (None, Some(e));
                }
            }
            Err(RestoreError::Archive(e)) => {
                tracing::warn!(partition = partition_id, error = %e, "cannot read the archive");
                return (reference_copy(store), None);
            }
            Err(e) => return (None, Some(e.to_string())),
        }
    }
    (
        None,
        Some("the reference replica cannot be rebuilt".to_string()),
    )
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    std::fs::remove_dir_all(dir).map_err(|e| format!("removing {}: {e}", dir.display()))
}

fn reference_copy(store: &FjallReplicaStore) -> Option<Copy> {
    let state = store.applied_state();
    if state.applied_lsn.0 == 0 {
        return None;
    }
    let checkpoints: Vec<(u64, String)> = store
        .checkpoints()
        .ok()?
        .into_iter()
        .chain(store.recent_points())
        .map(|checkpoint| (checkpoint.lsn.0, checkpoint.digest.identity()))
        .collect();
    Some(Copy::new(
        "archive".to_string(),
        (state.applied_lsn.0, state.digest.identity()),
        &checkpoints,
    ))
}

/// Check 3: every full replica of the partition recomputes its digest from its items.
async fn scan_at_rest(
    agent: &ureq::Agent,
    token: &str,
    addresses: &BTreeMap<u32, String>,
    copies: &[ScrubReplica],
    partition_id: u64,
    bytes_per_sec: u64,
) -> AtRest {
    let mut odd = Vec::new();
    let mut bytes = 0;
    let mut unanswered = false;
    for copy in copies {
        let Some(node) = addresses.get(&copy.node_id) else {
            unanswered = true;
            continue;
        };
        let path =
            format!("/internal/partitions/{partition_id}/full-scan?bytes_per_sec={bytes_per_sec}");
        match internal(agent, node, token, "POST", &path).await {
            Ok(body) => match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(scan) => {
                    bytes += scan["bytes"].as_u64().unwrap_or(0);
                    if scan["matches"] != true {
                        odd.push(format!("node {}", copy.node_id));
                    }
                }
                Err(_) => unanswered = true,
            },
            // The node answered, but its scan failed: its store could not read its own items
            // (a damaged block), which is a fault at rest on that copy. Any other refusal — a
            // 503 for a replica that closed meanwhile (a split's parent retired between the
            // listing and the scan) or is not open yet — proves nothing either way.
            Err(reason) if reason.status == Some(500) => {
                tracing::warn!(partition = partition_id, node = copy.node_id, %reason, "full scan failed");
                odd.push(format!("node {}", copy.node_id));
            }
            Err(_) => unanswered = true,
        }
    }
    let outcome = if !odd.is_empty() {
        tracing::error!(
            partition = partition_id,
            ?odd,
            "ALARM scrub mismatch: items at rest do not add up to the replica's digest"
        );
        Outcome::Disagree
    } else if unanswered {
        Outcome::Pending
    } else {
        Outcome::Agree
    };
    AtRest {
        outcome,
        odd,
        at_ms: now_ms(),
        bytes,
    }
}

/// The agent every internal-API call goes through: a status other than 200 is an answer to
/// read (see [`CallError`]), not a transport error.
fn internal_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

/// Why an internal-API call brought back no body to use.
#[derive(Debug)]
struct CallError {
    /// The node's HTTP status, when it answered with one other than 200; `None` when there was
    /// no answer (refused, timed out, cut off).
    status: Option<u16>,
    /// The URL and what went wrong: the node's message, or the transport's.
    message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl CallError {
    fn transport(message: String) -> Self {
        CallError {
            status: None,
            message,
        }
    }
}

async fn internal(
    agent: &ureq::Agent,
    node: &str,
    token: &str,
    method: &'static str,
    path: &str,
) -> Result<String, CallError> {
    let (agent, node, token, path) = (
        agent.clone(),
        node.to_string(),
        token.to_string(),
        path.to_string(),
    );
    tokio::task::spawn_blocking(move || call(&agent, &node, &token, method, &path))
        .await
        .map_err(|e| CallError::transport(e.to_string()))?
}

/// One internal-API request, blocking.
fn call(
    agent: &ureq::Agent,
    node: &str,
    token: &str,
    method: &str,
    path: &str,
) -> Result<String, CallError> {
    let base = node.trim_end_matches('/');
    let url = if base.contains("://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    };
    let request = if method == "POST" {
        agent
            .post(&url)
            .header(ddb::server::INTERNAL_TOKEN_HEADER, token)
            .send_empty()
    } else {
        agent
            .get(&url)
            .header(ddb::server::INTERNAL_TOKEN_HEADER, token)
            .call()
    };
    let answer = request.map_err(|e| CallError::transport(format!("{url}: {e}")))?;
    let code = answer.status().as_u16();
    let body = answer
        .into_body()
        .into_with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| CallError::transport(format!("{url}: {e}")))?;
    if code == 200 {
        Ok(body)
    } else {
        Err(CallError {
            status: Some(code),
            message: format!("{url}: HTTP {code}: {}", body.trim()),
        })
    }
}

/// How many differing keys a report names.
const DIFFERING_KEYS_SHOWN: usize = 10;

/// Where to read a copy's `(key, item hash)` stream from.
enum KeySource<'a> {
    /// A node's replica, through its internal API, a page at a time.
    Node(&'a str),
    /// The reference replica.
    Reference(&'a FjallReplicaStore),
}

/// The first keys where copy `odd` differs from copy `good`, by a sorted merge of their
/// `(key, item hash)` streams. Blocking (node pages and a local scan).
fn localise<'a>(
    agent: &'a ureq::Agent,
    token: &'a str,
    partition_id: u64,
    odd: &KeySource<'a>,
    good: &KeySource<'a>,
) -> Result<Vec<String>, String> {
    type Pair = Result<ddb::scrub::KeyHash, String>;
    fn node_stream<'s>(
        agent: &'s ureq::Agent,
        token: &'s str,
        node: &'s str,
        partition_id: u64,
    ) -> Box<dyn Iterator<Item = Pair> + 's> {
        let mut after: Option<String> = None;
        let mut page: std::vec::IntoIter<(String, String)> = Vec::new().into_iter();
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            loop {
                if let Some((key, hash)) = page.next() {
                    after = Some(key.clone());
                    let key = ddb::scrub::unhex(&key);
                    let hash = ddb::scrub::unhex(&hash).and_then(|h| <[u8; 16]>::try_from(h).ok());
                    return Some(
                        key.zip(hash)
                            .ok_or_else(|| "a malformed key page".to_string()),
                    );
                }
                if done {
                    return None;
                }
                let path = format!(
                    "/internal/partitions/{partition_id}/key-hashes?limit=1000{}",
                    after
                        .as_ref()
                        .map_or(String::new(), |key| format!("&after={key}"))
                );
                let body = match call(agent, node, token, "GET", &path) {
                    Ok(body) => body,
                    Err(e) => {
                        done = true;
                        return Some(Err(e.to_string()));
                    }
                };
                let next: Vec<(String, String)> = match serde_json::from_str(&body) {
                    Ok(next) => next,
                    Err(e) => {
                        done = true;
                        return Some(Err(e.to_string()));
                    }
                };
                done = next.len() < 1000;
                page = next.into_iter();
            }
        }))
    }
    fn stream<'a>(
        agent: &'a ureq::Agent,
        token: &'a str,
        partition_id: u64,
        source: &KeySource<'a>,
        snapshot: Option<&'a (dyn ddb::replica::ReplicaSnapshot + 'a)>,
    ) -> Box<dyn Iterator<Item = Pair> + 'a> {
        match (source, snapshot) {
            (KeySource::Node(node), _) => node_stream(agent, token, node, partition_id),
            (KeySource::Reference(_), Some(snapshot)) => Box::new(
                snapshot
                    .scan(
                        &ddb::replica::KeyRange::all(),
                        ddb::replica::Direction::Forward,
                    )
                    .map(|pair| {
                        pair.map(|(key, item)| (key, ddb::scrub::item_hash(&item)))
                            .map_err(|e| e.to_string())
                    }),
            ),
            (KeySource::Reference(_), None) => Box::new(std::iter::once(Err(
                "the reference replica cannot be read".to_string(),
            ))),
        }
    }
    let snapshot_of = |source: &KeySource<'a>| match source {
        KeySource::Reference(store) => store.snapshot().ok(),
        KeySource::Node(_) => None,
    };
    let odd_snapshot = snapshot_of(odd);
    let good_snapshot = snapshot_of(good);
    let left = stream(agent, token, partition_id, odd, odd_snapshot.as_deref());
    let right = stream(agent, token, partition_id, good, good_snapshot.as_deref());
    let keys = ddb::scrub::differing_keys(left, right, DIFFERING_KEYS_SHOWN)?;
    Ok(keys.iter().map(|key| ddb::scrub::hex(key)).collect())
}

fn write_status(path: &PathBuf, status: &Status) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(status)?)?;
    std::fs::rename(&temporary, path)
}

use ddb::service::now_ms;

async fn status_json(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let status = lock(&shared.status).clone();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&status).unwrap_or_default(),
    )
}

async fn run_now(State(shared): State<Arc<Shared>>, uri: Uri) -> impl IntoResponse {
    if uri.query().is_some_and(|query| query.contains("deep=true")) {
        shared
            .deep_requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if let Some(only) = query_partition(&uri) {
        *shared
            .only_requested
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(only);
    }
    let passes = lock(&shared.status).passes;
    shared.wake.notify_one();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "passes": passes }).to_string(),
    )
}

/// A check that could not decide this pass (the copies share no digest LSN yet, as happens
/// under writes) keeps the disagreement an earlier pass found: a mismatch is cleared by a pass
/// that proves agreement or by a repair, never by an inconclusive pass — so neither the alarm
/// nor a repair asked for meanwhile loses sight of it.
fn keep_disagreement(now: Check, before: Option<&Check>) -> Check {
    match before {
        Some(before) if now.outcome == Outcome::Pending && before.outcome == Outcome::Disagree => {
            before.clone()
        }
        _ => now,
    }
}

/// Rebuilds every replica the last pass named odd (in partition `only`, or everywhere) from a
/// replica of the same partition no check named, then asks for a pass (a deep one if a
/// replica failed check 3, so that verdict is renewed too).
async fn repair(shared: &Shared, only: Option<u64>) -> Vec<Repair> {
    let status = lock(&shared.status).clone();
    let Nodes {
        addresses,
        token,
        agent,
    } = &shared.nodes;
    // Who holds which full replica, and where each node answers.
    let mut holders: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut address_of: BTreeMap<u32, String> = BTreeMap::new();
    for node in addresses {
        let Ok(body) = internal(agent, node, token, "GET", "/internal/scrub/replicas").await else {
            continue;
        };
        for replica in serde_json::from_str::<Vec<ScrubReplica>>(&body).unwrap_or_default() {
            address_of.insert(replica.node_id, node.clone());
            if replica.full_replica {
                holders
                    .entry(replica.partition_id)
                    .or_default()
                    .push(replica.node_id);
            }
        }
    }
    let mut repairs = Vec::new();
    let mut deep_due = false;
    for report in status.partitions.values() {
        if only.is_some_and(|only| only != report.partition_id) {
            continue;
        }
        let odd = report.odd_replicas();
        let held_by = holders
            .get(&report.partition_id)
            .cloned()
            .unwrap_or_default();
        let source = held_by.iter().copied().find(|id| !odd.contains(id));
        for &node_id in &odd {
            let outcome = match (source, address_of.get(&node_id)) {
                (None, _) => Err("no replica of the partition is known good to copy".to_string()),
                (Some(_), None) => Err(format!("node {node_id} did not answer")),
                (Some(source), Some(address)) => {
                    let path = format!(
                        "/internal/partitions/{}/repair?from={source}",
                        report.partition_id
                    );
                    internal(agent, address, token, "POST", &path)
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|body| serde_json::from_str(&body).map_err(|e| e.to_string()))
                }
            };
            match &outcome {
                Ok(_) => tracing::warn!(
                    partition = report.partition_id,
                    node = node_id,
                    ?source,
                    "odd replica rebuilt from a good copy"
                ),
                Err(reason) => tracing::error!(
                    partition = report.partition_id,
                    node = node_id,
                    %reason,
                    "ALARM scrub repair failed"
                ),
            }
            deep_due |= outcome.is_ok()
                && report
                    .at_rest
                    .as_ref()
                    .is_some_and(|rest| rest.odd.contains(&format!("node {node_id}")));
            repairs.push(Repair {
                partition_id: report.partition_id,
                node_id,
                source,
                outcome,
            });
        }
    }
    // What a repair rebuilt is judged afresh: the old disagreement must not outlive it, not
    // even through a pass under way now (see `Shared::repaired_during_pass`).
    {
        let mut status = lock(&shared.status);
        lock(&shared.repaired_during_pass).extend(
            repairs
                .iter()
                .filter(|repair| repair.outcome.is_ok())
                .map(|repair| repair.partition_id),
        );
        for repair in repairs.iter().filter(|repair| repair.outcome.is_ok()) {
            if let Some(report) = status.partitions.get_mut(&repair.partition_id) {
                for check in [&mut report.peers, &mut report.archive] {
                    *check = Check {
                        outcome: Outcome::Pending,
                        lsn: None,
                        odd: Vec::new(),
                    };
                }
            }
        }
    }
    if deep_due {
        shared
            .deep_requested
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // The next pass shows whether the repaired copies now agree (none is hurried when every
    // repair failed, so automatic repair cannot spin).
    if repairs.iter().any(|repair| repair.outcome.is_ok()) {
        shared.wake.notify_one();
    }
    repairs
}

/// The `partition=P` of a request's query.
fn query_partition(uri: &Uri) -> Option<u64> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("partition="))
        .and_then(|id| id.parse().ok())
}

async fn repair_now(State(shared): State<Arc<Shared>>, uri: Uri) -> impl IntoResponse {
    let repairs = repair(&shared, query_partition(&uri)).await;
    let passes = lock(&shared.status).passes;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "passes": passes, "repairs": repairs }).to_string(),
    )
}

async fn pause(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    lock(&shared.status).paused = true;
    tracing::info!("scrubbing paused by request");
    "paused\n"
}

async fn resume(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    lock(&shared.status).paused = false;
    shared.wake.notify_one();
    tracing::info!("scrubbing resumed by request");
    "resumed\n"
}

async fn healthz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let status = lock(&shared.status);
    if status.has_mismatch() {
        (StatusCode::SERVICE_UNAVAILABLE, "scrub mismatch\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    use std::fmt::Write as _;
    let status = lock(&shared.status).clone();
    let now = now_ms();
    let mut text = String::new();
    let _ = write!(
        text,
        "# HELP ddb_scrub_passes_total Scrub passes completed.\n# TYPE ddb_scrub_passes_total counter\nddb_scrub_passes_total {}\n",
        status.passes
    );
    let _ = write!(
        text,
        "# HELP ddb_scrub_scanned_bytes_total Bytes read by the replicas' full scans (check 3).\n# TYPE ddb_scrub_scanned_bytes_total counter\nddb_scrub_scanned_bytes_total {}\n",
        status.scanned_bytes
    );
    let _ = write!(
        text,
        "# HELP ddb_scrub_proven_lsn Newest LSN at which every replica and the archive were proven equal.\n# TYPE ddb_scrub_proven_lsn gauge\n"
    );
    for p in status.partitions.values() {
        let _ = writeln!(
            text,
            "ddb_scrub_proven_lsn{{table_id=\"{}\",partition=\"{}\"}} {}",
            p.table_id,
            p.partition_id,
            p.proven_lsn.unwrap_or(0)
        );
    }
    let _ = write!(
        text,
        "# HELP ddb_scrub_proven_age_seconds Age of that proof.\n# TYPE ddb_scrub_proven_age_seconds gauge\n"
    );
    for p in status.partitions.values() {
        let age = p
            .proven_at_ms
            .map_or(f64::INFINITY, |at| now.saturating_sub(at) as f64 / 1000.0);
        let _ = writeln!(
            text,
            "ddb_scrub_proven_age_seconds{{table_id=\"{}\",partition=\"{}\"}} {age}",
            p.table_id, p.partition_id
        );
    }
    let _ = write!(
        text,
        "# HELP ddb_scrub_mismatch 1 while a check finds copies that differ (an alarm).\n# TYPE ddb_scrub_mismatch gauge\n"
    );
    for p in status.partitions.values() {
        let rest = p.at_rest.as_ref().map(|rest| rest.outcome);
        for (check, outcome) in [
            ("peers", Some(p.peers.outcome)),
            ("archive", Some(p.archive.outcome)),
            ("at_rest", rest),
        ] {
            let _ = writeln!(
                text,
                "ddb_scrub_mismatch{{table_id=\"{}\",partition=\"{}\",check=\"{check}\"}} {}",
                p.table_id,
                p.partition_id,
                u8::from(outcome == Some(Outcome::Disagree))
            );
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(outcome: Outcome, lsn: Option<u64>, odd: &[&str]) -> Check {
        Check {
            outcome,
            lsn,
            odd: odd.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    #[test]
    fn a_call_reports_the_node_s_status_apart_from_a_missing_answer() {
        // A node that answers two requests: a scan that failed (500), a replica not open (503).
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let node = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            for (status, body) in [
                ("500 Internal Server Error", "full scan: checksum mismatch"),
                ("503 Service Unavailable", "Partition is not open"),
            ] {
                let (mut socket, _) = listener.accept().unwrap();
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).unwrap();
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).unwrap();
            }
        });
        let agent = internal_agent();
        let path = "/internal/partitions/2/full-scan";
        let failed = call(&agent, &node, "token", "POST", path).unwrap_err();
        assert_eq!(failed.status, Some(500), "{failed}");
        assert!(failed.to_string().contains("checksum mismatch"), "{failed}");
        let closed = call(&agent, &node, "token", "POST", path).unwrap_err();
        assert_eq!(closed.status, Some(503), "{closed}");
        server.join().unwrap();
        // Nobody listens any more: no answer, no status.
        let gone = call(&agent, &node, "token", "POST", path).unwrap_err();
        assert_eq!(gone.status, None, "{gone}");
    }

    fn report(partition_id: u64, peers: Check) -> PartitionReport {
        PartitionReport {
            table_id: 1,
            partition_id,
            peers,
            archive: check(Outcome::Pending, None, &[]),
            at_rest: None,
            reference_lsn: 0,
            archive_error: None,
            proven_lsn: None,
            proven_at_ms: None,
            checked_at_ms: 0,
            differing_keys: Vec::new(),
        }
    }

    #[test]
    fn a_pass_under_way_during_a_repair_leaves_the_repaired_partition_as_the_repair_left_it() {
        let found = check(Outcome::Disagree, Some(48), &["node 1"]);
        let pending = check(Outcome::Pending, None, &[]);
        let agree = check(Outcome::Agree, Some(64), &[]);
        // Partition 1 was repaired while the pass ran, and its status reset.
        let repaired = BTreeSet::from([1]);
        let mut current = Status::default();
        current.partitions.insert(1, report(1, pending.clone()));
        current.partitions.insert(2, report(2, agree));
        // The pass finishes with what it judged before the repair.
        let mut next = Status::default();
        next.partitions.insert(1, report(1, found.clone()));
        next.partitions.insert(2, report(2, found.clone()));
        keep_repaired(&repaired, &mut next, &current);
        assert_eq!(
            next.partitions[&1].peers, pending,
            "the repair's reset stands"
        );
        assert_eq!(
            next.partitions[&2].peers, found,
            "other partitions: the pass's verdict"
        );

        // Nothing repaired during a pass: it reports as it found.
        let mut next = Status::default();
        next.partitions.insert(1, report(1, found.clone()));
        keep_repaired(&BTreeSet::new(), &mut next, &current);
        assert_eq!(next.partitions[&1].peers, found);

        // A repaired partition gone from the status since (it split) is not brought back.
        let mut next = Status::default();
        next.partitions.insert(3, report(3, found));
        keep_repaired(&BTreeSet::from([3]), &mut next, &current);
        assert!(!next.partitions.contains_key(&3));
    }

    #[test]
    fn an_inconclusive_pass_keeps_a_disagreement_and_a_decided_one_replaces_it() {
        let found = check(Outcome::Disagree, Some(32), &["node 1"]);
        let pending = check(Outcome::Pending, None, &[]);
        assert_eq!(keep_disagreement(pending.clone(), Some(&found)), found);
        let agree = check(Outcome::Agree, Some(48), &[]);
        assert_eq!(keep_disagreement(agree.clone(), Some(&found)), agree);
        let other = check(Outcome::Disagree, Some(48), &["node 2"]);
        assert_eq!(keep_disagreement(other.clone(), Some(&found)), other);
        assert_eq!(keep_disagreement(pending.clone(), Some(&agree)), pending);
        assert_eq!(keep_disagreement(pending.clone(), None), pending);
    }
}
