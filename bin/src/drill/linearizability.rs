//! Is one key's history that of a single register? A Wing & Gong search with Lowe's
//! memoisation: repeatedly pick an operation that may take effect next (no other pending
//! operation completed before it was invoked), apply it to the register, and backtrack when a
//! read does not see the register's value. Writes carry unique values, so a read names the one
//! write it saw, and the search rarely branches.
//!
//! Operations with an unknown outcome (a timeout, a dropped connection) may take effect at any
//! point after their invocation, or never. A read of unknown outcome returned nothing and
//! constrains nothing, so callers leave it out; an unknown write that no read saw can always be
//! taken as never having happened, so the checker leaves it out; an unknown write that some
//! read saw must have happened, at some point after its invocation.

use std::collections::{HashMap, HashSet};

/// What an operation did to the register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterAction {
    /// Set the register to this value (unique across the history).
    Write(String),
    /// Saw this value; `None` when the register was empty (the key absent).
    Read(Option<String>),
}

/// One operation on the register. Times are any monotonic unit (the drill uses microseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterOp {
    pub action: RegisterAction,
    pub invoked: u64,
    /// When its success was seen; `None` if its outcome is unknown (then it took effect after
    /// `invoked`, or never).
    pub completed: Option<u64>,
    /// Who did it, for explanations (`client 2`, `final read`).
    pub by: String,
}

/// The checker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    /// Some order of the operations, consistent with real time, is a register's history.
    Linearizable,
    /// No such order exists; why, in words (the furthest the search got and what could not
    /// follow).
    Violation(String),
    /// The search gave up after this many states without deciding.
    Undecided(usize),
}

/// Checks `ops`, exploring at most `max_states` search states.
pub fn check_register(ops: &[RegisterOp], max_states: usize) -> Linearizability {
    let read_values: HashSet<&str> = ops
        .iter()
        .filter_map(|op| match &op.action {
            RegisterAction::Read(Some(value)) => Some(value.as_str()),
            _ => None,
        })
        .collect();
    // An unknown write nobody saw may as well never have happened: leave it out.
    let mut ops: Vec<&RegisterOp> = ops
        .iter()
        .filter(|op| match &op.action {
            RegisterAction::Write(value) => {
                op.completed.is_some() || read_values.contains(value.as_str())
            }
            RegisterAction::Read(_) => op.completed.is_some(),
        })
        .collect();
    ops.sort_by_key(|op| op.invoked);

    let mut writer_of: HashMap<&str, usize> = HashMap::new();
    for (index, op) in ops.iter().enumerate() {
        if let RegisterAction::Write(value) = &op.action
            && writer_of.insert(value.as_str(), index).is_some()
        {
            return Linearizability::Violation(format!(
                "value {value:?} was written twice; the drill writes unique values"
            ));
        }
    }
    // What each operation needs the register to hold: reads the index of the write they saw
    // (`None` for empty), writes nothing.
    let mut needs: Vec<Option<Option<usize>>> = Vec::with_capacity(ops.len());
    for op in &ops {
        needs.push(match &op.action {
            RegisterAction::Write(_) => None,
            RegisterAction::Read(None) => Some(None),
            RegisterAction::Read(Some(value)) => match writer_of.get(value.as_str()) {
                Some(&writer) => Some(Some(writer)),
                None => {
                    return Linearizability::Violation(format!(
                        "{} read {value:?}, which no operation wrote",
                        describe(op)
                    ));
                }
            },
        });
    }

    let search = Search {
        ops: &ops,
        needs: &needs,
    };
    search.run(max_states)
}

struct Search<'a> {
    ops: &'a [&'a RegisterOp],
    needs: &'a [Option<Option<usize>>],
}

/// A linearized prefix: which operations are in it and what the register holds after it.
#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    done: Vec<u64>,
    value: Option<usize>,
}

impl State {
    fn is_done(&self, index: usize) -> bool {
        self.done[index / 64] & (1 << (index % 64)) != 0
    }

    fn set(&mut self, index: usize, on: bool) {
        if on {
            self.done[index / 64] |= 1 << (index % 64);
        } else {
            self.done[index / 64] &= !(1 << (index % 64));
        }
    }
}

/// A choice made on the way down: the operation linearized and the value before it.
struct Step {
    op: usize,
    value_before: Option<usize>,
    /// The candidates at this depth and which one is being tried.
    candidates: Vec<usize>,
    tried: usize,
}

impl Search<'_> {
    /// The pending operations that may take effect next: those invoked no later than the
    /// earliest completion among pending operations (nothing pending finished before them).
    fn candidates(&self, state: &State) -> Vec<usize> {
        let horizon = (0..self.ops.len())
            .filter(|&i| !state.is_done(i))
            .filter_map(|i| self.ops[i].completed)
            .min()
            .unwrap_or(u64::MAX);
        (0..self.ops.len())
            .filter(|&i| !state.is_done(i))
            .take_while(|&i| self.ops[i].invoked <= horizon)
            .filter(|&i| match self.needs[i] {
                None => true,
                Some(seen) => seen == state.value,
            })
            .collect()
    }

    fn run(&self, max_states: usize) -> Linearizability {
        let total = self.ops.len();
        let mut state = State {
            done: vec![0; total.div_ceil(64)],
            value: None,
        };
        let mut seen: HashSet<State> = HashSet::new();
        let mut path: Vec<Step> = Vec::new();
        let mut deepest = (0usize, state.clone());
        let mut candidates = self.candidates(&state);
        let mut tried = 0usize;
        loop {
            if path.len() == total {
                return Linearizability::Linearizable;
            }
            if seen.len() >= max_states {
                return Linearizability::Undecided(seen.len());
            }
            if let Some(&op) = candidates.get(tried) {
                let value_before = state.value;
                state.set(op, true);
                if matches!(self.ops[op].action, RegisterAction::Write(_)) {
                    state.value = Some(op);
                }
                if seen.insert(state.clone()) {
                    path.push(Step {
                        op,
                        value_before,
                        candidates: std::mem::take(&mut candidates),
                        tried,
                    });
                    if path.len() > deepest.0 {
                        deepest = (path.len(), state.clone());
                    }
                    candidates = self.candidates(&state);
                    tried = 0;
                } else {
                    // Been here by another order: nothing new below.
                    state.set(op, false);
                    state.value = value_before;
                    tried += 1;
                }
                continue;
            }
            // Every candidate at this depth failed: undo the last choice and try the next.
            let Some(step) = path.pop() else {
                return Linearizability::Violation(self.explain(&deepest.1, deepest.0));
            };
            state.set(step.op, false);
            state.value = step.value_before;
            candidates = step.candidates;
            tried = step.tried + 1;
        }
    }

    /// Why the search could not go on from `state`, the furthest it got.
    fn explain(&self, state: &State, depth: usize) -> String {
        let horizon = (0..self.ops.len())
            .filter(|&i| !state.is_done(i))
            .filter_map(|i| self.ops[i].completed)
            .min()
            .unwrap_or(u64::MAX);
        let holds = match state.value {
            None => "nothing (the key is absent)".to_string(),
            Some(w) => match &self.ops[w].action {
                RegisterAction::Write(value) => {
                    format!("{value:?} (written by {})", describe(self.ops[w]))
                }
                RegisterAction::Read(_) => "?".to_string(),
            },
        };
        let blocked: Vec<String> = (0..self.ops.len())
            .filter(|&i| !state.is_done(i))
            .take_while(|&i| self.ops[i].invoked <= horizon)
            .take(4)
            .map(|i| describe(self.ops[i]))
            .collect();
        format!(
            "no linearization: after ordering {depth} of {} operations the register holds {holds}, \
             and none of the operations that must come next fits: {}",
            self.ops.len(),
            blocked.join("; ")
        )
    }
}

/// `client 2 write "c2-17" [1.204500 s, 1.210000 s]`.
fn describe(op: &RegisterOp) -> String {
    let what = match &op.action {
        RegisterAction::Write(value) => format!("write {value:?}"),
        RegisterAction::Read(Some(value)) => format!("read {value:?}"),
        RegisterAction::Read(None) => "read (absent)".to_string(),
    };
    let end = op
        .completed
        .map_or_else(|| "outcome unknown".to_string(), seconds);
    format!("{} {what} [{}, {end}]", op.by, seconds(op.invoked))
}

fn seconds(micros: u64) -> String {
    format!("{:.6} s", micros as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: usize = 100_000;

    fn write(value: &str, invoked: u64, completed: Option<u64>) -> RegisterOp {
        RegisterOp {
            action: RegisterAction::Write(value.into()),
            invoked,
            completed,
            by: "client".into(),
        }
    }

    fn read(value: Option<&str>, invoked: u64, completed: u64) -> RegisterOp {
        RegisterOp {
            action: RegisterAction::Read(value.map(Into::into)),
            invoked,
            completed: Some(completed),
            by: "client".into(),
        }
    }

    fn violation(ops: &[RegisterOp]) -> String {
        match check_register(ops, BUDGET) {
            Linearizability::Violation(why) => why,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn sequential_and_overlapping_histories_are_linearizable() {
        assert_eq!(check_register(&[], BUDGET), Linearizability::Linearizable);
        let sequential = [
            read(None, 0, 1),
            write("a", 2, Some(3)),
            read(Some("a"), 4, 5),
            write("b", 6, Some(7)),
            read(Some("b"), 8, 9),
        ];
        assert_eq!(
            check_register(&sequential, BUDGET),
            Linearizability::Linearizable
        );
        // Two overlapping writes; reads during and after may see them in either order as long
        // as they agree with each other.
        let overlapping = [
            write("a", 0, Some(10)),
            write("b", 1, Some(11)),
            read(Some("b"), 2, 3),
            read(Some("a"), 4, 12),
            read(Some("a"), 13, 14),
        ];
        assert_eq!(
            check_register(&overlapping, BUDGET),
            Linearizability::Linearizable
        );
    }

    #[test]
    fn a_stale_read_is_a_violation() {
        // b completed before the read started, yet the read saw a.
        let why = violation(&[
            write("a", 0, Some(1)),
            write("b", 2, Some(3)),
            read(Some("a"), 4, 5),
        ]);
        assert!(why.contains("\"b\""), "{why}");
        assert!(why.contains("read \"a\""), "{why}");
    }

    #[test]
    fn a_lost_acknowledged_write_is_a_violation() {
        // The final read finds the key absent although a write was acknowledged.
        let why = violation(&[write("a", 0, Some(1)), read(None, 5, 6)]);
        assert!(why.contains("read (absent)"), "{why}");
        // Or finds an older value.
        violation(&[
            write("a", 0, Some(1)),
            write("b", 2, Some(3)),
            read(Some("b"), 4, 5),
            read(Some("a"), 6, 7),
        ]);
    }

    #[test]
    fn an_unknown_write_may_have_happened_or_not() {
        // It happened: a later read saw it, long after the caller gave up on it.
        let happened = [
            write("a", 0, Some(1)),
            write("b", 2, None),
            read(Some("a"), 3, 4),
            read(Some("b"), 100, 101),
        ];
        assert_eq!(
            check_register(&happened, BUDGET),
            Linearizability::Linearizable
        );
        // It did not happen: nobody ever saw it.
        let vanished = [
            write("a", 0, Some(1)),
            write("b", 2, None),
            read(Some("a"), 50, 51),
        ];
        assert_eq!(
            check_register(&vanished, BUDGET),
            Linearizability::Linearizable
        );
        // But it cannot take effect before it was invoked.
        violation(&[
            write("a", 0, Some(1)),
            read(Some("b"), 2, 3),
            write("b", 4, None),
        ]);
        // Nor flip back and forth: once b was seen, a can no longer be.
        violation(&[
            write("a", 0, Some(1)),
            write("b", 2, None),
            read(Some("b"), 3, 4),
            read(Some("a"), 5, 6),
        ]);
    }

    #[test]
    fn a_read_of_a_value_nobody_wrote_is_a_violation() {
        let why = violation(&[write("a", 0, Some(1)), read(Some("z"), 2, 3)]);
        assert!(why.contains("no operation wrote"), "{why}");
    }

    #[test]
    fn long_histories_with_unique_values_check_quickly() {
        // 3 clients, 3000 operations, everything overlapping its neighbours.
        let mut ops = Vec::new();
        let mut last = None;
        for i in 0..1000u64 {
            let value = format!("v{i}");
            ops.push(write(&value, i * 10, Some(i * 10 + 15)));
            ops.push(read(last.as_deref(), i * 10 + 1, i * 10 + 9));
            ops.push(read(Some(&value), i * 10 + 16, i * 10 + 18));
            last = Some(value);
        }
        assert_eq!(check_register(&ops, BUDGET), Linearizability::Linearizable);
    }
}
