//! `ddbctl drill power-off`: SIGKILL random nodes of a local cluster under a recorded
//! workload, restart them, then check that nothing acknowledged was lost, that the histories
//! are linearizable and that the replicas are equal. docs/drill.md describes it.

mod checks;
mod history;
mod linearizability;
mod report;
mod workload;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use ddb::client::ClientError;
use ddb::sigv4::Credential;
use serde_json::json;

use self::checks::CheckVerdict;
use self::history::{Actor, Op, OpAction, OpOutcome};
use self::report::{DrillReport, Kill, KillToWrite, OpCounts};
use self::workload::{ClientRun, TABLE, Target, run_client, since};
use crate::bench::setup::wait_active;
use crate::bench::workload::SplitMix64;
use crate::cli::{OutputFormat, PowerOffArgs};
use crate::commands::Outcome;
use crate::commands::cluster_status::{NodeReport, NodeStatus, fetch_status};
use crate::commands::local_fleet::{Fleet, find_ddbd};
use crate::commands::local_layout::{LocalCluster, REGION};

/// The drill always runs three nodes: one replica of every group per node.
const NODES: u32 = 3;
/// How long a restarted node may take to answer /healthz.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the replicas may take to apply every group's whole commit after the kills.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the new table may take to accept a write and a strong read.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one status request may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Lines of a node's log quoted when it does not come back.
const LOG_LINES_ON_FAILURE: usize = 4;
/// Attempts at each key's final read (across nodes) before it counts as failed.
const FINAL_READ_ATTEMPTS: u32 = 20;

/// Runs the drill described by `args`; see the module documentation.
pub fn power_off(args: &PowerOffArgs, format: OutputFormat) -> anyhow::Result<Outcome> {
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let mut cluster = LocalCluster::plan(&args.dir, NODES, args.base_port)?;
    cluster.check_ports_free()?;
    let ddbd = find_ddbd()?;
    make_empty_dir(&args.dir, args.fresh)?;
    cluster.dir = std::fs::canonicalize(&cluster.dir)
        .with_context(|| format!("resolving {}", cluster.dir.display()))?;
    let secrets = cluster.prepare()?;

    progress(&format!(
        "starting {NODES} nodes under {} (seed {seed})",
        cluster.dir.display()
    ));
    // The guard: whatever happens from here, dropping the fleet stops every node.
    let mut fleet = Fleet::launch(&ddbd, &cluster)?;
    if let Err(failure) = fleet.wait_until_healthy(None) {
        return Err(fleet.start_error(&failure));
    }
    let target = Target {
        endpoints: cluster
            .nodes
            .iter()
            .map(|n| format!("http://{}", n.api))
            .collect(),
        credential: Credential::new(
            secrets.access_key.access_key_id.clone(),
            secrets.access_key.secret_access_key.clone(),
        ),
        region: REGION.to_string(),
    };
    create_table(&target)?;
    progress(&format!(
        "table {TABLE} ready; {} clients on {} keys, {} kills every {} ms, down {} ms",
        args.clients, args.keys, args.kills, args.interval_ms, args.down_ms
    ));

    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let (runs, kills, mut node_problems) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..args.clients)
            .map(|id| {
                let (target, stop) = (&target, &stop);
                let client_seed = SplitMix64(seed ^ u64::from(id + 1).rotate_left(32)).next();
                scope.spawn(move || run_client(id, target, args.keys, client_seed, epoch, stop))
            })
            .collect();
        let (kills, problems) = kill_loop(&mut fleet, args, seed, epoch);
        stop.store(true, Ordering::Relaxed);
        let runs: Vec<ClientRun> = clients
            .into_iter()
            .map(|c| c.join().unwrap_or_default())
            .collect();
        (runs, kills, problems)
    });
    let workload_s = epoch.elapsed().as_secs_f64();
    for (node, status) in fleet.reap_exited() {
        node_problems.push(format!("node {} exited on its own ({status})", node.id));
    }

    let mut ops: Vec<Op> = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for run in runs {
        ops.extend(run.ops);
        for (kind, count) in run.errors {
            *errors.entry(kind).or_default() += count;
        }
    }
    let counts = OpCounts::of(&ops);

    progress("kills done; waiting for the replicas to converge");
    let (converged, statuses) = wait_converged(&target);
    progress("reading every key back");
    ops.extend(final_reads(&target, args.keys, epoch));
    let sample = sample_keys(seed, args.keys, args.sample_keys);
    progress(&format!("checking {} key histories", sample.len()));

    let checks: Vec<CheckVerdict> = vec![
        checks::nodes_came_back(&node_problems, kills.len() as u32),
        checks::no_acknowledged_write_lost(&ops, args.keys),
        checks::linearizable(&ops, &sample),
        checks::replicas_equal(&statuses, NODES as usize),
    ];
    let passed = checks.iter().all(|c| c.passed);
    let mut kills_by_node = BTreeMap::new();
    for kill in &kills {
        *kills_by_node.entry(kill.node).or_default() += 1;
    }
    let report = DrillReport {
        seed,
        dir: cluster.dir.display().to_string(),
        nodes: NODES as usize,
        clients: args.clients,
        keys: args.keys,
        kills: kills.len(),
        kills_by_node,
        workload_s,
        ops: counts,
        errors,
        kill_to_next_write: KillToWrite::of(&kills, &ops),
        converged,
        checks,
        passed,
        kill_log: kills,
    };
    fleet.stop();
    report.print(format)?;
    Ok(if passed {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}

/// Makes `dir` an empty directory: creates it, accepts it empty, or with `fresh` wipes it if
/// it holds a ddbctl cluster (and refuses anything else, so a mistyped --dir is never erased).
fn make_empty_dir(dir: &Path, fresh: bool) -> anyhow::Result<()> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if !empty {
        if !fresh {
            bail!(
                "{} is not empty: the drill needs a fresh cluster; pass --fresh to wipe it, or \
                 pick another --dir",
                dir.display()
            );
        }
        let is_cluster = ["cluster.secret", "credentials.toml"]
            .iter()
            .any(|f| dir.join(f).is_file());
        if !is_cluster {
            bail!(
                "refusing to wipe {}: it does not hold a ddbctl cluster (no cluster.secret or \
                 credentials.toml)",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Creates table `drill` (hash key `k`, S, PAY_PER_REQUEST) and waits until a write and a
/// strongly consistent read of a probe item both succeed.
fn create_table(target: &Target) -> anyhow::Result<()> {
    let client = target.client(0)?;
    let deadline = Instant::now() + TABLE_READY_TIMEOUT;
    let request = json!({
        "TableName": TABLE,
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    loop {
        match client.call("CreateTable", &request) {
            Ok(_) => break,
            // An earlier attempt that timed out went through.
            Err(e) if e.service_code() == Some("ResourceInUseException") => break,
            Err(e) if Instant::now() < deadline => {
                progress(&format!("creating table {TABLE}: {e}; retrying"));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e).context(format!("creating table {TABLE}")),
        }
    }
    wait_active(&client, TABLE)?;
    let probe = json!({"TableName": TABLE, "Item": {"k": {"S": "probe"}}});
    let read = json!({"TableName": TABLE, "Key": {"k": {"S": "probe"}}, "ConsistentRead": true});
    loop {
        let attempt = client
            .call("PutItem", &probe)
            .and_then(|_| client.call("GetItem", &read));
        match attempt {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                progress(&format!("table {TABLE} not serving yet: {e}"));
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(e).context(format!(
                    "table {TABLE} did not serve a write and a read within {} s",
                    TABLE_READY_TIMEOUT.as_secs()
                ));
            }
        }
    }
}

/// Every `--interval-ms`: SIGKILL a node chosen with the seed, keep it down `--down-ms`,
/// restart it and wait for its /healthz. Stops early if a node does not come back. Returns the
/// kills and any node problems (a node not back, a node that died unasked).
fn kill_loop(
    fleet: &mut Fleet,
    args: &PowerOffArgs,
    seed: u64,
    epoch: Instant,
) -> (Vec<Kill>, Vec<String>) {
    let mut random = SplitMix64(seed);
    let interval = Duration::from_millis(args.interval_ms);
    let mut kills = Vec::new();
    let mut problems = Vec::new();
    let mut next_kill = Instant::now() + interval;
    for number in 1..=args.kills {
        std::thread::sleep(next_kill.saturating_duration_since(Instant::now()));
        for (node, status) in fleet.reap_exited() {
            problems.push(format!("node {} exited on its own ({status})", node.id));
        }
        if !problems.is_empty() {
            break;
        }
        let victim = random.below(fleet.nodes.len() as u64) as usize;
        let node_id = fleet.nodes[victim].node.id;
        let killed = Instant::now();
        let killed_us = since(epoch);
        if let Err(e) = fleet.kill(victim) {
            problems.push(format!("kill {number}: {e:#}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(args.down_ms));
        let restarted_us = since(epoch);
        let back = fleet
            .restart(victim)
            .and_then(|()| fleet.wait_node_healthy(victim, RESTART_TIMEOUT));
        let healthy_us = back.is_ok().then(|| since(epoch));
        kills.push(Kill {
            node: node_id,
            killed_us,
            restarted_us,
            healthy_us,
        });
        match back {
            Ok(()) => progress(&format!(
                "kill {number}/{}: node {node_id}, back after {} ms",
                args.kills,
                (healthy_us.unwrap_or(killed_us) - killed_us) / 1000
            )),
            Err(e) => {
                let log = fleet.last_log_lines(victim, LOG_LINES_ON_FAILURE);
                problems.push(format!(
                    "kill {number}: {e:#}; its log ends: {}",
                    log.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" | ")
                ));
                break;
            }
        }
        next_kill = killed + interval;
    }
    // Let the clients run one more interval, so the last kill is followed by writes too.
    std::thread::sleep(next_kill.saturating_duration_since(Instant::now()));
    (kills, problems)
}

/// Waits until every node reports and every group's replicas have applied the group's commit
/// (bounded by [`CONVERGE_TIMEOUT`]). Returns whether they did and the last statuses seen.
fn wait_converged(target: &Target) -> (bool, Vec<NodeStatus>) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let statuses: Vec<NodeStatus> = target
            .endpoints
            .iter()
            .filter_map(|endpoint| match fetch_status(endpoint, STATUS_TIMEOUT) {
                NodeReport::Reporting(status) => Some(status),
                _ => None,
            })
            .collect();
        if checks::converged(&statuses, target.endpoints.len()) {
            return (true, statuses);
        }
        if Instant::now() >= deadline {
            return (false, statuses);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A strongly consistent read of every key, retried across nodes; each recorded as an
/// operation of [`Actor::FinalRead`] (failed if every attempt failed).
fn final_reads(target: &Target, keys: u32, epoch: Instant) -> Vec<Op> {
    let clients: Vec<_> = (0..target.endpoints.len())
        .filter_map(|i| target.client(i).ok())
        .collect();
    let mut ops = Vec::new();
    for key in 0..keys {
        let mut last: Option<Op> = None;
        for attempt in 0..FINAL_READ_ATTEMPTS {
            let Some(client) = clients.get(attempt as usize % clients.len().max(1)) else {
                break;
            };
            let invoked_us = since(epoch);
            let result = workload::get(client, key);
            let completed_us = since(epoch);
            let (action, outcome) = match &result {
                Ok(value) => (OpAction::Read(value.clone()), OpOutcome::Ok),
                Err(e) => (OpAction::Read(None), failed_read(e)),
            };
            last = Some(Op {
                by: Actor::FinalRead,
                key,
                action,
                invoked_us,
                completed_us,
                outcome,
            });
            if result.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        ops.extend(last);
    }
    ops
}

fn failed_read(error: &ClientError) -> OpOutcome {
    workload::outcome_of(error)
}

/// `count` keys of `0..keys` chosen with the seed (all of them if `count >= keys`), sorted.
fn sample_keys(seed: u64, keys: u32, count: u32) -> Vec<u32> {
    let mut all: Vec<u32> = (0..keys).collect();
    let mut random = SplitMix64(seed ^ 0x5A5A_5A5A_5A5A_5A5A);
    for i in (1..all.len()).rev() {
        let j = random.below(i as u64 + 1) as usize;
        all.swap(i, j);
    }
    all.truncate(count.min(keys) as usize);
    all.sort_unstable();
    all
}

/// One line of progress on standard error (the report goes to standard output).
fn progress(line: &str) {
    eprintln!("drill: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_keys_are_distinct_seeded_and_bounded() {
        let sample = sample_keys(7, 100, 30);
        assert_eq!(sample.len(), 30);
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        assert!(sample.iter().all(|k| *k < 100));
        assert_eq!(sample, sample_keys(7, 100, 30));
        assert_ne!(sample, sample_keys(8, 100, 30));
        assert_eq!(sample_keys(1, 5, 30), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_non_empty_dir_is_refused_and_wiped_only_if_it_holds_a_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill");
        make_empty_dir(&path, false).unwrap();
        std::fs::write(path.join("notes.txt"), "keep me").unwrap();
        let refused = make_empty_dir(&path, false).unwrap_err().to_string();
        assert!(refused.contains("--fresh"), "{refused}");
        let refused = make_empty_dir(&path, true).unwrap_err().to_string();
        assert!(refused.contains("refusing to wipe"), "{refused}");
        assert!(path.join("notes.txt").exists());
        std::fs::write(path.join("cluster.secret"), "s").unwrap();
        make_empty_dir(&path, true).unwrap();
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    }
}
