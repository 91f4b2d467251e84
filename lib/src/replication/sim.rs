//! An in-memory host for [`ReplicaCore`]: a disk that loses what was not synced when the replica
//! crashes, and a store that records what was applied. The model checker, the seeded simulation
//! and the unit tests drive replicas through it, so they all execute actions the same way.

use std::collections::VecDeque;

use crate::wal::{Ballot, Entry, Lsn, Operation};

use super::action::Action;
use super::core::{ProposeError, RecoveredState, ReplicaCore, Timing};
use super::membership::{Membership, NodeId};
use super::message::Message;

/// What survives a crash: the promised ballot and the synced log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SimDisk {
    /// The durably promised ballot.
    pub promised: Ballot,
    /// The synced log, from LSN 1.
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct UnsyncedAppend {
    id: u64,
    truncate_after: Option<Lsn>,
    entries: Vec<Entry>,
}

/// One simulated replica: its core (absent while crashed), its disk, its appends not yet synced,
/// and the entries its store applied since it last started.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SimReplica {
    id: NodeId,
    timing: Timing,
    initial_membership: Membership,
    core: Option<ReplicaCore>,
    disk: SimDisk,
    unsynced: VecDeque<UnsyncedAppend>,
    applied: Vec<Entry>,
    restarts: u64,
}

/// A message a replica wants sent.
pub type Outgoing = (NodeId, Message);

impl SimReplica {
    /// A new, empty replica that knows `membership` as the group's initial one.
    pub fn new(id: NodeId, timing: Timing, membership: Membership, now_ms: u64) -> SimReplica {
        let mut replica = SimReplica {
            id,
            timing,
            initial_membership: membership,
            core: None,
            disk: SimDisk::default(),
            unsynced: VecDeque::new(),
            applied: Vec::new(),
            restarts: 0,
        };
        replica.start(now_ms);
        replica
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The running core, `None` while crashed.
    pub fn core(&self) -> Option<&ReplicaCore> {
        self.core.as_ref()
    }

    /// The durable state.
    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }

    /// Entries applied to the store since the last start, in order.
    pub fn applied(&self) -> &[Entry] {
        &self.applied
    }

    /// Appends written but not synced.
    pub fn unsynced_appends(&self) -> usize {
        self.unsynced.len()
    }

    /// Power loss: everything not synced is gone, and so is the (in-memory) store.
    pub fn crash(&mut self) {
        self.core = None;
        self.unsynced.clear();
        self.applied.clear();
    }

    /// Starts (or restarts) from the disk; the store is rebuilt by applying from LSN 1.
    pub fn restart(&mut self, now_ms: u64) {
        self.crash();
        self.restarts += 1;
        self.start(now_ms);
    }

    fn start(&mut self, now_ms: u64) {
        let recovered = RecoveredState {
            promised: self.disk.promised,
            base_membership: self.initial_membership.clone(),
            entries: self.disk.entries.clone(),
            ..RecoveredState::default()
        };
        let seed = u64::from(self.id) * 7919 + self.restarts;
        self.core = Some(ReplicaCore::new(
            self.id,
            self.timing,
            seed,
            recovered,
            now_ms,
        ));
    }

    /// Time passes.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Outgoing> {
        self.drive(now_ms, |core| core.on_tick(now_ms))
    }

    /// A message arrives (and is lost if the replica is down).
    pub fn deliver(&mut self, now_ms: u64, from: NodeId, message: Message) -> Vec<Outgoing> {
        self.drive(now_ms, |core| core.on_message(now_ms, from, message))
    }

    /// Forces a campaign; `false` if the core refused or the replica is down.
    pub fn campaign(&mut self, now_ms: u64) -> (bool, Vec<Outgoing>) {
        let mut started = false;
        let outgoing = self.drive(now_ms, |core| started = core.campaign(now_ms).is_ok());
        (started, outgoing)
    }

    /// Proposes `ops` if this replica leads; returns the LSN of the last and what to send.
    pub fn propose(
        &mut self,
        now_ms: u64,
        ops: Vec<Operation>,
    ) -> Result<(Lsn, Vec<Outgoing>), ProposeError> {
        let mut result = Err(ProposeError::NotLeader { leader: None });
        let outgoing = self.drive(now_ms, |core| result = core.propose(now_ms, ops));
        result.map(|lsn| (lsn, outgoing))
    }

    /// Runs `input` against the core (any of its operations) and executes what it asks for.
    pub fn act(&mut self, now_ms: u64, input: impl FnOnce(&mut ReplicaCore)) -> Vec<Outgoing> {
        self.drive(now_ms, input)
    }

    /// Syncs the oldest written append to disk and tells the core.
    pub fn sync_one(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let Some(append) = self.unsynced.pop_front() else {
            return Vec::new();
        };
        if let Some(truncate_after) = append.truncate_after {
            self.disk
                .entries
                .truncate(usize::try_from(truncate_after.0).unwrap_or(usize::MAX));
        }
        self.disk.entries.extend(append.entries);
        self.drive(now_ms, |core| core.on_append_durable(now_ms, append.id))
    }

    /// Syncs every written append.
    pub fn sync_all(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let mut outgoing = Vec::new();
        while !self.unsynced.is_empty() {
            outgoing.extend(self.sync_one(now_ms));
        }
        outgoing
    }

    fn drive(&mut self, now_ms: u64, input: impl FnOnce(&mut ReplicaCore)) -> Vec<Outgoing> {
        let Some(core) = self.core.as_mut() else {
            return Vec::new();
        };
        input(core);
        let mut outgoing = Vec::new();
        loop {
            let Some(core) = self.core.as_mut() else {
                return outgoing;
            };
            let actions = core.drain_actions();
            if actions.is_empty() {
                return outgoing;
            }
            self.run_actions(now_ms, actions, &mut outgoing);
        }
    }

    fn run_actions(&mut self, now_ms: u64, actions: Vec<Action>, outgoing: &mut Vec<Outgoing>) {
        for action in actions {
            match action {
                Action::Send { to, message } => outgoing.push((to, message)),
                Action::PersistPromise { ballot } => self.disk.promised = ballot,
                Action::Append {
                    id,
                    truncate_after,
                    entries,
                } => self.unsynced.push_back(UnsyncedAppend {
                    id,
                    truncate_after,
                    entries,
                }),
                Action::Apply { entries } => self.applied.extend(entries),
                Action::CatchUp { peer, from_lsn } => {
                    // As ddbd does: read what the peer lacks back from the synced log.
                    let prev_index = usize::try_from(from_lsn.0).unwrap_or(usize::MAX);
                    if let (Some(prev), Some(core)) = (
                        prev_index
                            .checked_sub(2)
                            .and_then(|index| self.disk.entries.get(index))
                            .cloned(),
                        self.core.as_mut(),
                    ) {
                        let entries: Vec<Entry> = self
                            .disk
                            .entries
                            .iter()
                            .skip(prev_index - 1)
                            .take(self.timing.max_batch_entries.max(1))
                            .cloned()
                            .collect();
                        core.send_stored_entries(now_ms, peer, &prev, entries);
                    }
                }
                Action::LeaderChanged { .. } => {}
            }
        }
    }

    /// Lets the core forget in-memory entries through `lsn` (as ddbd does periodically).
    pub fn trim_through(&mut self, lsn: Lsn) -> Lsn {
        self.core
            .as_mut()
            .map_or(Lsn::ZERO, |core| core.trim_through(lsn))
    }
}
