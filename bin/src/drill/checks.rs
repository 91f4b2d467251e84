//! The drill's verdicts: no acknowledged write lost, linearizable histories, equal replicas.
//! Each takes recorded facts and returns a [`CheckVerdict`]; none talks to the cluster.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::history::{Actor, Op, OpAction, OpOutcome, key_name};
use super::linearizability::{Linearizability, check_register};
use crate::commands::cluster_status::{GroupStatus, NodeStatus};

/// Search states the linearizability checker may explore per key before giving up.
pub const MAX_STATES_PER_KEY: usize = 2_000_000;
/// Failures listed in full per check; the rest are counted.
const MAX_LISTED_FAILURES: usize = 20;

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckVerdict {
    pub name: &'static str,
    pub passed: bool,
    /// What was checked, in a few words.
    pub summary: String,
    /// Each failure with its evidence (at most [`MAX_LISTED_FAILURES`]).
    pub failures: Vec<String>,
    /// How many failures there were in all.
    pub failure_count: usize,
}

impl CheckVerdict {
    fn new(name: &'static str, summary: String, failures: Vec<String>) -> Self {
        let failure_count = failures.len();
        CheckVerdict {
            name,
            passed: failures.is_empty(),
            summary,
            failures: failures.into_iter().take(MAX_LISTED_FAILURES).collect(),
            failure_count,
        }
    }
}

/// The operations on each key, in invocation order.
pub fn by_key(ops: &[Op]) -> BTreeMap<u32, Vec<&Op>> {
    let mut keys: BTreeMap<u32, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        keys.entry(op.key).or_default().push(op);
    }
    for ops in keys.values_mut() {
        ops.sort_by_key(|op| op.invoked_us);
    }
    keys
}

/// Check 1. For every key of `0..keys`, the final read (the [`Actor::FinalRead`] op in `ops`)
/// must return the value of an acknowledged write or of a write that may have taken effect
/// after it: a final value written by W is stale if some acknowledged write A was invoked
/// after W was acknowledged (A then had to overwrite it). An absent key with any acknowledged
/// write, a value nobody wrote, a failed write's value or a failed final read are failures too.
pub fn no_acknowledged_write_lost(ops: &[Op], keys: u32) -> CheckVerdict {
    let history = by_key(ops);
    let empty = Vec::new();
    let mut failures = Vec::new();
    let mut with_writes = 0usize;
    for key in 0..keys {
        let ops = history.get(&key).unwrap_or(&empty);
        let acknowledged: Vec<&&Op> = ops.iter().filter(|op| op.is_acknowledged_write()).collect();
        if !acknowledged.is_empty() {
            with_writes += 1;
        }
        let name = key_name(key);
        let final_read = ops
            .iter()
            .find(|op| op.by == Actor::FinalRead && op.outcome == OpOutcome::Ok);
        let Some(final_read) = final_read else {
            failures.push(format!("{name}: the final read did not succeed"));
            continue;
        };
        let OpAction::Read(final_value) = &final_read.action else {
            continue;
        };
        let Some(final_value) = final_value else {
            if let Some(last) = acknowledged.iter().max_by_key(|op| op.completed_us) {
                failures.push(format!(
                    "{name}: absent, but {} acknowledged writes, the last {}",
                    acknowledged.len(),
                    describe(last)
                ));
            }
            continue;
        };
        let writer = ops
            .iter()
            .find(|op| matches!(&op.action, OpAction::Write(v) if v == final_value));
        let Some(writer) = writer else {
            failures.push(format!(
                "{name}: holds {final_value:?}, which no client wrote"
            ));
            continue;
        };
        match writer.outcome {
            OpOutcome::Failed => failures.push(format!(
                "{name}: holds {final_value:?} from a write that failed validation: {}",
                describe(writer)
            )),
            // Its acknowledgement may have come at any time, so nothing followed it for sure.
            OpOutcome::Unknown => {}
            OpOutcome::Ok => {
                let overwriting = acknowledged
                    .iter()
                    .filter(|a| a.invoked_us > writer.completed_us)
                    .max_by_key(|a| a.completed_us);
                if let Some(lost) = overwriting {
                    failures.push(format!(
                        "{name}: holds {final_value:?} ({}) but {} began after it was \
                         acknowledged and was lost",
                        describe(writer),
                        describe(lost)
                    ));
                }
            }
        }
    }
    CheckVerdict::new(
        "no acknowledged write lost",
        format!("{keys} keys read back, {with_writes} with acknowledged writes"),
        failures,
    )
}

/// Check 2. The whole history of each key in `sample` (final read included) is linearizable as
/// a register.
pub fn linearizable(ops: &[Op], sample: &[u32]) -> CheckVerdict {
    let history = by_key(ops);
    let mut failures = Vec::new();
    let mut checked_ops = 0usize;
    for key in sample {
        let register_ops: Vec<_> = history
            .get(key)
            .map(|ops| ops.iter().filter_map(|op| op.as_register_op()).collect())
            .unwrap_or_default();
        checked_ops += register_ops.len();
        match check_register(&register_ops, MAX_STATES_PER_KEY) {
            Linearizability::Linearizable => {}
            Linearizability::Violation(why) => failures.push(format!("{}: {why}", key_name(*key))),
            Linearizability::Undecided(states) => failures.push(format!(
                "{}: undecided, the checker gave up after {states} states",
                key_name(*key)
            )),
        }
    }
    CheckVerdict::new(
        "linearizable",
        format!("{} keys, {checked_ops} operations", sample.len()),
        failures,
    )
}

/// Check 3. Every group's replicas, as `statuses` report them, hold the same state digest at
/// the same applied LSN, and each group has a replica on every node that reported. A failure
/// says whether replicas *diverged* (different digests at one LSN) or one *lags* (a lower
/// LSN: it did not apply the whole commit in time), with the lagging replica's state.
pub fn replicas_equal(statuses: &[NodeStatus], nodes: usize) -> CheckVerdict {
    let mut failures = Vec::new();
    if statuses.len() < nodes {
        failures.push(format!(
            "only {} of {nodes} nodes reported their status",
            statuses.len()
        ));
    }
    let mut groups: BTreeMap<&str, Vec<(u32, &GroupStatus)>> = BTreeMap::new();
    for status in statuses {
        for group in &status.groups {
            groups
                .entry(&group.group)
                .or_default()
                .push((status.node_id, group));
        }
    }
    let mut summary = Vec::new();
    for (name, replicas) in &groups {
        let top = replicas.iter().filter_map(|(_, g)| g.digest_lsn).max();
        summary.push(format!(
            "{name} @ {}",
            top.map_or("?".into(), |l| l.to_string())
        ));
        if replicas.len() != statuses.len() {
            let holders: Vec<String> = replicas.iter().map(|(n, _)| n.to_string()).collect();
            failures.push(format!(
                "group {name}: only nodes {} report a replica",
                holders.join(", ")
            ));
        }
        // LSN -> digest -> nodes
        let mut at: BTreeMap<Option<u64>, BTreeMap<Option<&str>, Vec<u32>>> = BTreeMap::new();
        for (node, group) in replicas {
            at.entry(group.digest_lsn)
                .or_default()
                .entry(group.digest.as_deref())
                .or_default()
                .push(*node);
        }
        for (lsn, digests) in &at {
            if digests.len() > 1 || digests.contains_key(&None) {
                let shown: Vec<String> = digests
                    .iter()
                    .map(|(digest, nodes)| {
                        format!("nodes {:?} {}", nodes, digest.unwrap_or("no digest"))
                    })
                    .collect();
                failures.push(format!(
                    "group {name} DIVERGED at LSN {}: {}",
                    lsn.map_or("?".into(), |l| l.to_string()),
                    shown.join(", ")
                ));
            }
        }
        for (node, group) in replicas {
            if group.digest_lsn < top {
                failures.push(format!(
                    "group {name}: node {node} lags at LSN {} behind {} ({}, leader {}, \
                     commit {}, applied {}, durable {}, last {})",
                    group.digest_lsn.map_or("?".into(), |l| l.to_string()),
                    top.unwrap_or_default(),
                    group.state,
                    group.leader.map_or("none".into(), |l| l.to_string()),
                    group.commit_lsn,
                    group.applied_lsn,
                    group.durable_lsn,
                    group.last_lsn
                ));
            }
        }
    }
    CheckVerdict::new(
        "replicas equal",
        format!("{} groups: {}", groups.len(), summary.join(", ")),
        failures,
    )
}

/// Check 0. Every killed node came back, and no node died unless the drill killed it.
pub fn nodes_came_back(problems: &[String], kills: u32) -> CheckVerdict {
    CheckVerdict::new(
        "every node came back",
        format!("{kills} kills and restarts"),
        problems.to_vec(),
    )
}

/// True when every replica of every group in `statuses` has applied its group's commit (the
/// highest commit LSN any replica reports) and says so in its digest LSN.
pub fn converged(statuses: &[NodeStatus], nodes: usize) -> bool {
    if statuses.len() < nodes {
        return false;
    }
    let mut commit: HashMap<&str, u64> = HashMap::new();
    let mut replicas: HashMap<&str, usize> = HashMap::new();
    for group in statuses.iter().flat_map(|s| &s.groups) {
        let c = commit.entry(&group.group).or_default();
        *c = (*c).max(group.commit_lsn);
        *replicas.entry(&group.group).or_default() += 1;
    }
    replicas.values().all(|&count| count == nodes)
        && statuses
            .iter()
            .flat_map(|s| &s.groups)
            .all(|group| group.digest_lsn == Some(commit[group.group.as_str()]))
}

/// `client 2 write "c2-17" [1.204500 s, 1.210000 s, ok]`.
fn describe(op: &Op) -> String {
    let who = match op.by {
        Actor::Client(n) => format!("client {n}"),
        Actor::FinalRead => "final read".to_string(),
    };
    let what = match &op.action {
        OpAction::Write(value) => format!("write {value:?}"),
        OpAction::Read(Some(value)) => format!("read {value:?}"),
        OpAction::Read(None) => "read (absent)".to_string(),
    };
    let outcome = match op.outcome {
        OpOutcome::Ok => "ok",
        OpOutcome::Failed => "failed",
        OpOutcome::Unknown => "unknown",
    };
    format!(
        "{who} {what} [{:.6} s, {:.6} s, {outcome}]",
        op.invoked_us as f64 / 1e6,
        op.completed_us as f64 / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(by: Actor, key: u32, action: OpAction, span: (u64, u64), outcome: OpOutcome) -> Op {
        Op {
            by,
            key,
            action,
            invoked_us: span.0,
            completed_us: span.1,
            outcome,
        }
    }

    fn write(client: u32, key: u32, value: &str, span: (u64, u64), outcome: OpOutcome) -> Op {
        op(
            Actor::Client(client),
            key,
            OpAction::Write(value.into()),
            span,
            outcome,
        )
    }

    fn final_read(key: u32, value: Option<&str>) -> Op {
        op(
            Actor::FinalRead,
            key,
            OpAction::Read(value.map(Into::into)),
            (1000, 1001),
            OpOutcome::Ok,
        )
    }

    #[test]
    fn a_history_where_every_acknowledged_write_survives_passes_every_check() {
        let ops = vec![
            write(1, 0, "c1-1", (0, 10), OpOutcome::Ok),
            write(2, 0, "c2-1", (5, 20), OpOutcome::Ok),
            // Never acknowledged, and it won: allowed.
            write(1, 0, "c1-2", (30, 40), OpOutcome::Unknown),
            final_read(0, Some("c1-2")),
            final_read(1, None),
        ];
        let verdict = no_acknowledged_write_lost(&ops, 2);
        assert!(verdict.passed, "{verdict:?}");
        let verdict = linearizable(&ops, &[0, 1]);
        assert!(verdict.passed, "{verdict:?}");
    }

    #[test]
    fn a_lost_acknowledged_write_fails_both_history_checks() {
        let ops = vec![
            write(1, 0, "c1-1", (0, 10), OpOutcome::Ok),
            write(2, 0, "c2-1", (15, 20), OpOutcome::Ok),
            final_read(0, Some("c1-1")),
        ];
        let verdict = no_acknowledged_write_lost(&ops, 1);
        assert!(!verdict.passed);
        assert_eq!(verdict.failure_count, 1, "{verdict:?}");
        assert!(verdict.failures[0].starts_with("k0: holds \"c1-1\""));
        assert!(verdict.failures[0].contains("client 2 write \"c2-1\""));
        let verdict = linearizable(&ops, &[0]);
        assert!(!verdict.passed, "{verdict:?}");
        assert!(verdict.failures[0].starts_with("k0: no linearization"));
    }

    #[test]
    fn an_absent_key_a_phantom_value_and_a_missing_final_read_fail() {
        let ops = vec![
            write(1, 0, "c1-1", (0, 10), OpOutcome::Ok),
            final_read(0, None),
            final_read(1, Some("c9-9")),
            write(1, 2, "c1-2", (0, 10), OpOutcome::Failed),
            final_read(2, Some("c1-2")),
        ];
        let verdict = no_acknowledged_write_lost(&ops, 4);
        assert_eq!(verdict.failure_count, 4, "{verdict:?}");
        assert!(verdict.failures[0].contains("k0: absent"));
        assert!(verdict.failures[1].contains("which no client wrote"));
        assert!(verdict.failures[2].contains("failed validation"));
        assert!(verdict.failures[3].contains("k3: the final read did not succeed"));
    }

    fn status(node_id: u32, groups: &[(&str, u64, &str)]) -> NodeStatus {
        serde_json::from_value(serde_json::json!({
            "node_id": node_id, "az": "a", "nodes": [],
            "groups": groups.iter().map(|(name, lsn, digest)| serde_json::json!({
                "group": name, "table": null, "partition_id": 0, "state": "follower",
                "role": "full", "leader": 1, "ballot": null, "commit_lsn": lsn,
                "applied_lsn": lsn, "durable_lsn": lsn, "last_lsn": lsn,
                "digest_lsn": lsn, "digest": digest, "members": [],
            })).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn replicas_are_equal_only_with_one_digest_at_one_lsn() {
        let same: Vec<NodeStatus> = (1..=3)
            .map(|n| status(n, &[("meta", 4, "aa"), ("drill/1", 90, "bb")]))
            .collect();
        assert!(replicas_equal(&same, 3).passed);
        assert!(converged(&same, 3));
        let mut diverged = same.clone();
        diverged[2] = status(3, &[("meta", 4, "aa"), ("drill/1", 90, "cc")]);
        let verdict = replicas_equal(&diverged, 3);
        assert!(!verdict.passed);
        assert_eq!(
            verdict.failures,
            ["group drill/1 DIVERGED at LSN 90: nodes [1, 2] bb, nodes [3] cc"]
        );
        let mut behind = same.clone();
        behind[1] = status(2, &[("meta", 4, "aa"), ("drill/1", 88, "dd")]);
        let verdict = replicas_equal(&behind, 3);
        assert_eq!(verdict.failure_count, 1, "{verdict:?}");
        assert!(
            verdict.failures[0].starts_with("group drill/1: node 2 lags at LSN 88 behind 90"),
            "{verdict:?}"
        );
        assert!(!converged(&behind, 3));
        assert!(!replicas_equal(&same[..2], 3).passed, "a node missing");
    }
}
