//! Model checking of the production replication core (`ddb::replication::ReplicaCore`) with
//! stateright.
//!
//! The model drives the very same core through [`SimReplica`] (an in-memory disk that loses
//! unsynced appends on a crash) over a network that loses, duplicates and reorders messages
//! (a message stays deliverable after delivery until a drop action removes it). Clients write
//! and read one register through whichever replica leads; the checker explores every
//! interleaving of deliveries, drops, syncs, ticks of a global clock, crashes and restarts,
//! client operations and membership changes, within the bounds below, and checks:
//!
//! - **linearizable**: the register history clients observed is linearizable (reads are served
//!   under the leader lease, so a stale leader answering would show up here);
//! - **one value per LSN**: no two replicas ever apply different entries at one LSN;
//! - **log replicas never apply**;
//! - **a store never gets ahead of its own log**: what a replica applied is a prefix of its
//!   synced log (a restart replays the log above the store, so it must hold it).
//!
//! Bounds: `DDB_MODEL_STATES` caps the states explored per scenario (default 500 000, which CI
//! runs); `DDB_MODEL_STATES=0` explores each scenario's whole bounded space. State counts are
//! printed and recorded in `docs/replication.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use ddb::replication::sim::SimReplica;
use ddb::replication::{Membership, Message, NodeId, Role, Timing};
use ddb::wal::{Ballot, Entry, Lsn, Operation};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Checker, Model, Property, UniformChooser};

const TICK_MS: u64 = 10;

fn timing() -> Timing {
    Timing {
        election_timeout_ms: 30,
        election_jitter_ms: 20,
        heartbeat_ms: 10,
        lease_ms: 20,
        clock_drift_ms: 0,
        max_batch_entries: 1,
    }
}

/// One bounded scenario.
#[derive(Clone, Debug)]
struct ReplicationModel {
    name: &'static str,
    /// The group's initial members.
    members: Vec<(NodeId, Role)>,
    /// Replicas that exist but are not members at first (a log replica waiting to be added).
    spares: Vec<NodeId>,
    /// Whether the leader may add the first spare as a log replica and then remove a member.
    membership_changes: bool,
    writes: u8,
    reads: u8,
    max_crashes: u8,
    max_ticks: u64,
    max_in_flight: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PendingWrite {
    replica: NodeId,
    lsn: Lsn,
    ballot: Ballot,
}

#[derive(Clone, Debug, PartialEq, Hash)]
struct State {
    now_ms: u64,
    ticks: u64,
    replicas: BTreeMap<NodeId, SimReplica>,
    network: BTreeSet<(NodeId, NodeId, Message)>,
    history: LinearizabilityTester<u8, Register<u8>>,
    pending: BTreeMap<u8, PendingWrite>,
    writes_started: u8,
    reads_done: u8,
    crashes: u8,
    membership_step: u8,
    /// The entry each LSN was first applied with, anywhere.
    chosen: BTreeMap<Lsn, Entry>,
    conflict: bool,
    log_replica_applied: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Tick,
    Deliver(NodeId, NodeId, Message),
    Drop(NodeId, NodeId, Message),
    Sync(NodeId),
    Crash(NodeId),
    Restart(NodeId),
    Write(u8, NodeId),
    Read(u8, NodeId),
    ChangeMembership(NodeId),
}

fn put(value: u8) -> Operation {
    Operation::Put {
        key: b"r".to_vec(),
        item: vec![value],
    }
}

fn register_value(applied: &[Entry]) -> u8 {
    applied
        .iter()
        .rev()
        .find_map(|entry| match &entry.op {
            Operation::Put { item, .. } => item.first().copied(),
            _ => None,
        })
        .unwrap_or(0)
}

impl ReplicationModel {
    fn initial_membership(&self) -> Membership {
        Membership::new(self.members.iter().copied())
    }

    fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members
            .iter()
            .map(|(id, _)| *id)
            .chain(self.spares.iter().copied())
    }

    /// Clients are numbered: writers first (writing 1, 2, …), then readers.
    fn write_client(&self, index: u8) -> u8 {
        index
    }

    fn read_client(&self, index: u8) -> u8 {
        self.writes + index
    }
}

impl State {
    fn send(&mut self, from: NodeId, outgoing: Vec<(NodeId, Message)>) {
        for (to, message) in outgoing {
            self.network.insert((from, to, message));
        }
    }

    /// Records what was applied, answers clients whose writes were applied by their leader.
    fn observe(&mut self, model: &ReplicationModel) {
        for replica in self.replicas.values() {
            let is_log_replica = model
                .members
                .iter()
                .chain(
                    model
                        .spares
                        .iter()
                        .map(|id| (*id, Role::Log))
                        .collect::<Vec<_>>()
                        .iter(),
                )
                .any(|(id, role)| *id == replica.id() && *role == Role::Log);
            if is_log_replica && !replica.applied().is_empty() {
                self.log_replica_applied = true;
            }
            for entry in replica.applied() {
                match self.chosen.get(&entry.lsn) {
                    Some(chosen) if chosen != entry => self.conflict = true,
                    Some(_) => {}
                    None => {
                        self.chosen.insert(entry.lsn, entry.clone());
                    }
                }
            }
        }
        let mut answered = Vec::new();
        for (client, write) in &self.pending {
            let applied = self.replicas[&write.replica].applied();
            if let Some(entry) = applied.get(usize::try_from(write.lsn.0 - 1).unwrap()) {
                answered.push((*client, entry.ballot == write.ballot));
            }
        }
        for (client, succeeded) in answered {
            self.pending.remove(&client);
            if succeeded {
                let _ = self.history.on_return(client, RegisterRet::WriteOk);
            }
        }
    }
}

impl Model for ReplicationModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        // Start from an elected leader (replica 1) with its no-op committed, so the bounded
        // search spends its depth on what follows.
        let membership = self.initial_membership();
        let start_ms = timing().lease_ms;
        let mut state = State {
            now_ms: start_ms,
            ticks: 0,
            replicas: self
                .ids()
                .map(|id| (id, SimReplica::new(id, timing(), membership.clone(), 0)))
                .collect(),
            network: BTreeSet::new(),
            history: LinearizabilityTester::new(Register(0)),
            pending: BTreeMap::new(),
            writes_started: 0,
            reads_done: 0,
            crashes: 0,
            membership_step: 0,
            chosen: BTreeMap::new(),
            conflict: false,
            log_replica_applied: false,
        };
        let (started, outgoing) = state.replicas.get_mut(&1).unwrap().campaign(start_ms);
        assert!(started, "replica 1 campaigns");
        let mut queue: Vec<(NodeId, NodeId, Message)> =
            outgoing.into_iter().map(|(to, m)| (1, to, m)).collect();
        while !queue.is_empty() {
            for id in self.ids() {
                let outgoing = state.replicas.get_mut(&id).unwrap().sync_all(start_ms);
                queue.extend(outgoing.into_iter().map(|(to, m)| (id, to, m)));
            }
            let batch = std::mem::take(&mut queue);
            for (from, to, message) in batch {
                let outgoing = state
                    .replicas
                    .get_mut(&to)
                    .unwrap()
                    .deliver(start_ms, from, message);
                queue.extend(outgoing.into_iter().map(|(next, m)| (to, next, m)));
            }
        }
        assert!(state.replicas[&1].core().unwrap().is_leader());
        state.observe(self);
        // Then (as if every heartbeat since had been lost) jump to one tick before the first
        // follower's election timeout, so elections happen within the depth the search reaches.
        state.now_ms = start_ms + timing().election_timeout_ms - TICK_MS;
        vec![state]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.ticks < self.max_ticks {
            actions.push(Action::Tick);
        }
        for (from, to, message) in &state.network {
            actions.push(Action::Deliver(*from, *to, message.clone()));
            actions.push(Action::Drop(*from, *to, message.clone()));
        }
        for (id, replica) in &state.replicas {
            match replica.core() {
                Some(core) => {
                    if replica.unsynced_appends() > 0 {
                        actions.push(Action::Sync(*id));
                    }
                    if state.crashes < self.max_crashes {
                        actions.push(Action::Crash(*id));
                    }
                    if core.is_leader() {
                        if state.writes_started < self.writes {
                            let client = self.write_client(state.writes_started);
                            actions.push(Action::Write(client, *id));
                        }
                        if state.reads_done < self.reads {
                            let client = self.read_client(state.reads_done);
                            actions.push(Action::Read(client, *id));
                        }
                        if self.membership_changes && state.membership_step < 2 {
                            actions.push(Action::ChangeMembership(*id));
                        }
                    }
                }
                None => actions.push(Action::Restart(*id)),
            }
        }
    }

    /// An action the replica declines (a proposal refused, a read not yet servable) leaves the
    /// state as it was instead of returning `None`: the random-walk checker records the index of
    /// a declined action in the walk's path as though it had been taken, so a path holding one
    /// cannot be replayed when a discovery is reported.
    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        Some(self.take(last, action).unwrap_or_else(|| last.clone()))
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.network.len() <= self.max_in_flight
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("linearizable", |_, state: &State| {
                state.history.serialized_history().is_some()
            }),
            Property::always("one value per LSN", |_, state: &State| !state.conflict),
            Property::always("log replicas never apply", |_, state: &State| {
                !state.log_replica_applied
            }),
            Property::always(
                "a store never gets ahead of its own log",
                |_, state: &State| {
                    state.replicas.values().all(|replica| {
                        let applied = replica.applied();
                        let disk = &replica.disk().entries;
                        applied.len() <= disk.len() && applied == &disk[..applied.len()]
                    })
                },
            ),
            Property::sometimes("a write is acknowledged", |_, state: &State| {
                state.history.len() > 0 && state.pending.is_empty() && state.writes_started > 0
            }),
        ]
    }
}

impl ReplicationModel {
    /// The state after `action`, or `None` when the replica declines it.
    fn take(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        let now = state.now_ms;
        match action {
            Action::Tick => {
                state.ticks += 1;
                state.now_ms += TICK_MS;
                let now = state.now_ms;
                for id in self.ids() {
                    let outgoing = state.replicas.get_mut(&id).unwrap().tick(now);
                    state.send(id, outgoing);
                }
            }
            Action::Deliver(from, to, message) => {
                let outgoing = state
                    .replicas
                    .get_mut(&to)
                    .unwrap()
                    .deliver(now, from, message);
                state.send(to, outgoing);
            }
            Action::Drop(from, to, message) => {
                state.network.remove(&(from, to, message));
            }
            Action::Sync(id) => {
                let outgoing = state.replicas.get_mut(&id).unwrap().sync_one(now);
                state.send(id, outgoing);
            }
            Action::Crash(id) => {
                state.crashes += 1;
                state.replicas.get_mut(&id).unwrap().crash();
                // Its clients' connections broke: they will never hear back.
                state.pending.retain(|_, write| write.replica != id);
            }
            Action::Restart(id) => state.replicas.get_mut(&id).unwrap().restart(now),
            Action::Write(client, id) => {
                let value = state.writes_started + 1;
                let ballot = state.replicas[&id].core()?.status().promised;
                let (lsn, outgoing) = state
                    .replicas
                    .get_mut(&id)
                    .unwrap()
                    .propose(now, vec![put(value)])
                    .ok()?;
                state.writes_started += 1;
                state
                    .history
                    .on_invoke(client, RegisterOp::Write(value))
                    .ok()?;
                state.pending.insert(
                    client,
                    PendingWrite {
                        replica: id,
                        lsn,
                        ballot,
                    },
                );
                state.send(id, outgoing);
            }
            Action::Read(client, id) => {
                let replica = &state.replicas[&id];
                let read_index = replica.core()?.read_index(now).ok()?;
                if (replica.applied().len() as u64) < read_index.0 {
                    return None;
                }
                let value = register_value(replica.applied());
                state.reads_done += 1;
                state.history.on_invoke(client, RegisterOp::Read).ok()?;
                state
                    .history
                    .on_return(client, RegisterRet::ReadOk(value))
                    .ok()?;
            }
            Action::ChangeMembership(id) => {
                let current = state.replicas[&id].core()?.membership().clone();
                let spare = *self.spares.first()?;
                let next = if state.membership_step == 0 {
                    current.with_member(spare, Role::Log)
                } else {
                    // Retire the highest-numbered full member other than the leader.
                    let retiring = current
                        .iter()
                        .filter(|(member, role)| *member != id && *role == Role::Full)
                        .map(|(member, _)| member)
                        .max()?;
                    current.without_member(retiring)
                };
                let (_, outgoing) = state
                    .replicas
                    .get_mut(&id)
                    .unwrap()
                    .propose(now, vec![Operation::Config(next.encode())])
                    .ok()?;
                state.membership_step += 1;
                state.send(id, outgoing);
            }
        }
        state.observe(self);
        Some(state)
    }
}

fn state_budget() -> usize {
    std::env::var("DDB_MODEL_STATES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(500_000)
}

/// Checks `model` twice: breadth-first (every interleaving up to the depth the budget reaches)
/// and by seeded random walks to depth 60 (deep schedules: several elections, crashes and
/// rejoins), each within the state budget.
fn check(model: ReplicationModel) {
    let name = model.name;
    let budget = state_budget();
    let started = Instant::now();
    let mut builder = model.clone().checker().threads(2);
    if budget > 0 {
        builder = builder.target_state_count(budget);
    }
    let checker = builder.spawn_bfs().join();
    println!(
        "model {name}, breadth-first: {} states generated, {} unique, max depth {}, {:.1} s{}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64(),
        if checker.is_done() && budget == 0 {
            " (exhaustive within bounds)"
        } else {
            ""
        }
    );
    checker.assert_properties();

    let started = Instant::now();
    let walk_budget = if budget == 0 { 10_000_000 } else { budget };
    let checker = model
        .checker()
        .threads(2)
        .target_max_depth(60)
        .target_state_count(walk_budget)
        .spawn_simulation(2026, UniformChooser)
        .join();
    println!(
        "model {name}, random walks: {} states generated, max depth {}, {:.1} s",
        checker.state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64(),
    );
    checker.assert_properties();
}

#[test]
fn three_full_replicas_with_crashes_and_a_lossy_network() {
    check(ReplicationModel {
        name: "three full replicas",
        members: vec![(1, Role::Full), (2, Role::Full), (3, Role::Full)],
        spares: vec![],
        membership_changes: false,
        writes: 2,
        reads: 1,
        max_crashes: 1,
        max_ticks: 6,
        max_in_flight: 6,
    });
}

#[test]
fn two_full_replicas_and_a_log_replica() {
    check(ReplicationModel {
        name: "two full replicas and a log replica",
        members: vec![(1, Role::Full), (2, Role::Full), (3, Role::Log)],
        spares: vec![],
        membership_changes: false,
        writes: 2,
        reads: 1,
        max_crashes: 1,
        max_ticks: 6,
        max_in_flight: 6,
    });
}

#[test]
fn a_log_replica_joins_and_a_full_replica_leaves() {
    check(ReplicationModel {
        name: "log replica joins, full replica leaves",
        members: vec![(1, Role::Full), (2, Role::Full), (3, Role::Full)],
        spares: vec![4],
        membership_changes: true,
        writes: 1,
        reads: 1,
        max_crashes: 1,
        max_ticks: 5,
        max_in_flight: 6,
    });
}
