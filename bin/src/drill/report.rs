//! The drill's report: what was done, what happened, and each check's verdict.

use std::collections::BTreeMap;

use serde::Serialize;

use super::checks::CheckVerdict;
use super::history::{Op, OpAction, OpOutcome};
use crate::cli::OutputFormat;
use crate::out;

/// One SIGKILL and its restart, in microseconds since the drill started.
#[derive(Clone, Debug, Serialize)]
pub struct Kill {
    pub node: u32,
    pub killed_us: u64,
    pub restarted_us: u64,
    /// When it answered /healthz again; `None` if it did not.
    pub healthy_us: Option<u64>,
}

/// Operations by kind and outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    pub writes_ok: u64,
    pub writes_failed: u64,
    pub writes_unknown: u64,
    pub reads_ok: u64,
    pub reads_failed: u64,
    pub reads_unknown: u64,
}

impl OpCounts {
    /// Counts the workload's operations (not the final reads).
    pub fn of(ops: &[Op]) -> Self {
        let mut counts = OpCounts::default();
        for op in ops {
            let slot = match (&op.action, op.outcome) {
                (OpAction::Write(_), OpOutcome::Ok) => &mut counts.writes_ok,
                (OpAction::Write(_), OpOutcome::Failed) => &mut counts.writes_failed,
                (OpAction::Write(_), OpOutcome::Unknown) => &mut counts.writes_unknown,
                (OpAction::Read(_), OpOutcome::Ok) => &mut counts.reads_ok,
                (OpAction::Read(_), OpOutcome::Failed) => &mut counts.reads_failed,
                (OpAction::Read(_), OpOutcome::Unknown) => &mut counts.reads_unknown,
            };
            *slot += 1;
        }
        counts
    }
}

/// Milliseconds from a kill to the first acknowledged write invoked after it, over all kills.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KillToWrite {
    pub min_ms: Option<f64>,
    pub median_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Kills after which no write was acknowledged before the clients stopped.
    pub kills_without_write: usize,
}

impl KillToWrite {
    /// For every kill, the first write invoked after it that was acknowledged.
    pub fn of(kills: &[Kill], ops: &[Op]) -> Self {
        let mut writes: Vec<(u64, u64)> = ops
            .iter()
            .filter(|op| op.is_acknowledged_write())
            .map(|op| (op.invoked_us, op.completed_us))
            .collect();
        writes.sort_unstable();
        let mut gaps: Vec<f64> = Vec::new();
        let mut without = 0;
        for kill in kills {
            let first = writes.partition_point(|(invoked, _)| *invoked < kill.killed_us);
            let next = writes[first..]
                .iter()
                .map(|(_, completed)| *completed)
                .min();
            match next {
                Some(completed) => gaps.push((completed - kill.killed_us) as f64 / 1000.0),
                None => without += 1,
            }
        }
        gaps.sort_by(f64::total_cmp);
        KillToWrite {
            min_ms: gaps.first().copied(),
            median_ms: gaps.get(gaps.len() / 2).copied(),
            max_ms: gaps.last().copied(),
            kills_without_write: without,
        }
    }
}

/// Everything the drill prints.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub seed: u64,
    pub dir: String,
    pub nodes: usize,
    pub clients: u32,
    pub keys: u32,
    /// Kills performed (fewer than asked if a node did not come back).
    pub kills: usize,
    pub kills_by_node: BTreeMap<u32, usize>,
    /// Seconds the workload ran.
    pub workload_s: f64,
    pub ops: OpCounts,
    /// Client errors by kind.
    pub errors: BTreeMap<String, u64>,
    pub kill_to_next_write: KillToWrite,
    /// True if every group's replicas applied its whole commit within the wait.
    pub converged: bool,
    pub checks: Vec<CheckVerdict>,
    pub passed: bool,
    pub kill_log: Vec<Kill>,
}

impl DrillReport {
    /// Prints the report as lines for people or one JSON document.
    pub fn print(&self, format: OutputFormat) -> anyhow::Result<()> {
        if format == OutputFormat::Json {
            out!("{}", serde_json::to_string_pretty(self)?);
            return Ok(());
        }
        out!(
            "drill power-off: seed {} (repeat with --seed {})",
            self.seed,
            self.seed
        );
        let by_node: Vec<String> = self
            .kills_by_node
            .iter()
            .map(|(node, count)| format!("node {node} x{count}"))
            .collect();
        out!("kills: {} ({})", self.kills, by_node.join(", "));
        out!(
            "workload: {:.1} s, {} clients, {} keys, {} nodes",
            self.workload_s,
            self.clients,
            self.keys,
            self.nodes
        );
        let o = &self.ops;
        out!(
            "writes: {} ok, {} failed, {} unknown",
            o.writes_ok,
            o.writes_failed,
            o.writes_unknown
        );
        out!(
            "reads: {} ok, {} failed, {} unknown",
            o.reads_ok,
            o.reads_failed,
            o.reads_unknown
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        out!(
            "errors: {}",
            if errors.is_empty() {
                "none".to_string()
            } else {
                errors.join(", ")
            }
        );
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0} ms"));
        let k = &self.kill_to_next_write;
        out!(
            "kill to next acknowledged write: min {}, median {}, max {}{}",
            ms(k.min_ms),
            ms(k.median_ms),
            ms(k.max_ms),
            if k.kills_without_write > 0 {
                format!(
                    " ({} kills with no write after them)",
                    k.kills_without_write
                )
            } else {
                String::new()
            }
        );
        out!(
            "replicas converged after the kills: {}",
            if self.converged { "yes" } else { "NO" }
        );
        for check in &self.checks {
            if check.passed {
                out!("check {}: passed ({})", check.name, check.summary);
            } else {
                out!(
                    "check {}: FAILED, {} failures ({})",
                    check.name,
                    check.failure_count,
                    check.summary
                );
                for failure in &check.failures {
                    out!("  {failure}");
                }
                if check.failure_count > check.failures.len() {
                    out!(
                        "  … and {} more",
                        check.failure_count - check.failures.len()
                    );
                }
            }
        }
        out!("node logs: {}/node<i>/ddbd.log", self.dir);
        if self.passed {
            out!("verdict: all checks passed");
        } else {
            let failed: Vec<&str> = self
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name)
                .collect();
            out!("verdict: FAILED ({})", failed.join(", "));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::Actor;
    use super::*;

    #[test]
    fn kill_to_write_counts_from_the_kill_to_the_first_write_started_after_it() {
        let write = |invoked_us, completed_us, outcome| Op {
            by: Actor::Client(0),
            key: 0,
            action: OpAction::Write(format!("w{invoked_us}")),
            invoked_us,
            completed_us,
            outcome,
        };
        let ops = vec![
            write(900, 1_500, OpOutcome::Ok), // began before the kill: not counted
            write(1_100, 9_000, OpOutcome::Unknown),
            write(1_200, 4_000, OpOutcome::Ok),
            write(1_300, 3_000, OpOutcome::Ok),
            write(20_000, 21_000, OpOutcome::Ok),
        ];
        let kill = |killed_us| Kill {
            node: 1,
            killed_us,
            restarted_us: killed_us,
            healthy_us: None,
        };
        let latency = KillToWrite::of(&[kill(1_000), kill(10_000), kill(30_000)], &ops);
        assert_eq!(latency.min_ms, Some(2.0));
        assert_eq!(latency.max_ms, Some(11.0));
        assert_eq!(latency.kills_without_write, 1);
    }
}
