//! The sans-IO replica: state, construction, time, durability and application.
//!
//! Message handling lives in `acceptor.rs` (what every member does) and `leader.rs` (elections,
//! proposals, commit and the lease); both extend [`ReplicaCore`].

use std::collections::{BTreeMap, VecDeque};

use crate::wal::{Ballot, Entry, Lsn, Operation};

use super::action::Action;
use super::log::{LogPosition, LogWindow};
use super::membership::{Membership, NodeId, Role};
use super::message::Message;

/// Timers of the protocol, in milliseconds of the clock the host passes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timing {
    /// A follower that hears nothing from a leader for this long (plus jitter) campaigns.
    pub election_timeout_ms: u64,
    /// Random extra election delay, up to this much, so that candidates rarely collide.
    pub election_jitter_ms: u64,
    /// How often a leader sends heartbeats (and retransmits unacknowledged entries).
    pub heartbeat_ms: u64,
    /// After hearing from a leader, an acceptor promises no other candidate for this long; the
    /// leader serves strongly consistent reads while a quorum's promises last. Must be shorter
    /// than the election timeout.
    pub lease_ms: u64,
    /// How much faster than a follower's clock the leader's may run over one lease; the leader
    /// gives its lease up this much early.
    pub clock_drift_ms: u64,
    /// Most entries in one Accept message.
    pub max_batch_entries: usize,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            election_timeout_ms: 1_000,
            election_jitter_ms: 500,
            heartbeat_ms: 100,
            lease_ms: 800,
            clock_drift_ms: 50,
            max_batch_entries: 256,
        }
    }
}

/// What a replica recovers from its disk when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredState {
    /// The durable promised ballot (zero for a new replica).
    pub promised: Ballot,
    /// Position of the last committed entry not carried in `entries` (zero for a new log).
    pub base: LogPosition,
    /// The membership in effect at `base`.
    pub base_membership: Membership,
    /// The durable log above `base`, in order.
    pub entries: Vec<Entry>,
    /// The LSN the replica store has applied (full replicas; at least `base.lsn`).
    pub applied_lsn: Lsn,
}

/// Why a proposal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes.
    #[error("this replica is not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<NodeId>,
    },
    /// A membership change is in the log but not yet committed.
    #[error("a membership change is already in progress")]
    MembershipChangeInProgress,
    /// The proposed membership cannot follow the current one.
    #[error("invalid membership change: {0}")]
    InvalidMembership(String),
}

/// Why a strongly consistent read cannot be served here now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Only the leader serves strongly consistent reads.
    #[error("this replica is not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<NodeId>,
    },
    /// The leader's lease has lapsed; it cannot rule out a newer leader.
    #[error("the leader's lease is not held")]
    LeaseNotHeld,
    /// A new leader has not yet committed an entry of its own ballot.
    #[error("the new leader has not caught up yet")]
    NotCaughtUp,
}

/// Why a campaign cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    /// Only full members lead.
    #[error("only a full replica that is a member of the group can lead")]
    CannotLead,
    /// This replica heard from a leader within the lease and promised not to elect another.
    #[error("a leader's lease may still hold")]
    LeaseHeld,
}

/// Where a replica stands in its group, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// This replica's id.
    pub id: NodeId,
    /// Its role in the membership it knows, `None` if it is not a member.
    pub role: Option<Role>,
    /// `"leader"`, `"candidate"` or `"follower"`.
    pub state: &'static str,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its promised ballot.
    pub promised: Ballot,
    /// Its commit LSN.
    pub commit_lsn: Lsn,
    /// Highest LSN handed out for applying.
    pub applied_lsn: Lsn,
    /// Highest LSN durable in its log.
    pub durable_lsn: Lsn,
    /// Its last log LSN.
    pub last_lsn: Lsn,
    /// On a leader: each peer's durable match.
    pub peer_match: BTreeMap<NodeId, Lsn>,
    /// The membership it knows.
    pub membership: Membership,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PendingAppend {
    pub(super) id: u64,
    pub(super) last_after: Lsn,
    pub(super) truncate_after: Option<Lsn>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct FollowerState {
    /// Ballot of the leader whose stream `stream_match` refers to.
    pub(super) stream_ballot: Ballot,
    /// This log equals that leader's log through this LSN.
    pub(super) stream_match: Lsn,
    /// Newest `sent_at_ms` received from that leader.
    pub(super) echo_sent_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PromiseInfo {
    pub(super) last: LogPosition,
    pub(super) base: LogPosition,
    pub(super) entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct CandidateState {
    pub(super) ballot: Ballot,
    pub(super) promises: BTreeMap<NodeId, PromiseInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct PeerProgress {
    /// Next LSN to send.
    pub(super) next: Lsn,
    /// Highest LSN the peer durably holds of this leader's log.
    pub(super) matched: Lsn,
    /// `matched` at the previous heartbeat, to spot a stalled peer.
    pub(super) matched_at_heartbeat: Lsn,
    /// Newest send time the peer echoed back.
    pub(super) acked_sent_at_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct LeaderState {
    pub(super) ballot: Ballot,
    pub(super) peers: BTreeMap<NodeId, PeerProgress>,
    /// LSN of the no-op that opened this leadership.
    pub(super) first_own_lsn: Lsn,
    /// Non-members being brought up to date before they join: sent the log, never counted.
    pub(super) learners: std::collections::BTreeSet<NodeId>,
    pub(super) elected_at_ms: u64,
    pub(super) last_heartbeat_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum RoleState {
    Follower(FollowerState),
    Candidate(CandidateState),
    Leader(LeaderState),
}

/// One replica of one partition's replication group, as a deterministic state machine.
///
/// Inputs: [`on_message`](Self::on_message), [`on_tick`](Self::on_tick),
/// [`on_append_durable`](Self::on_append_durable), [`propose`](Self::propose) and
/// [`campaign`](Self::campaign), each given the current time. Outputs: [`Action`]s, collected
/// with [`drain_actions`](Self::drain_actions). The core does no I/O and reads no clock, so the
/// same code runs in `ddbd` and under the model checker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicaCore {
    pub(super) id: NodeId,
    pub(super) timing: Timing,
    pub(super) rng: u64,
    pub(super) promised: Ballot,
    pub(super) max_seen_round: u64,
    pub(super) log: LogWindow,
    pub(super) base_membership: Membership,
    pub(super) membership: Membership,
    /// LSN of the configuration entry `membership` comes from; `None`: the base membership.
    pub(super) membership_lsn: Option<Lsn>,
    pub(super) durable_lsn: Lsn,
    pub(super) pending_appends: VecDeque<PendingAppend>,
    pub(super) next_append_id: u64,
    pub(super) commit_lsn: Lsn,
    pub(super) applied_lsn: Lsn,
    pub(super) state: RoleState,
    pub(super) leader_hint: Option<NodeId>,
    pub(super) last_leader_contact_ms: u64,
    pub(super) election_deadline_ms: u64,
    /// No campaigning before this time (set after losing an election for lack of log).
    pub(super) candidacy_suppressed_until_ms: u64,
    pub(super) outbox: Vec<Action>,
}

impl ReplicaCore {
    /// A replica recovered from `recovered` at time `now_ms`. `seed` drives the election jitter.
    ///
    /// A restarted replica does not know whose lease it granted before the crash, so it promises
    /// no candidate for one lease from `now_ms`.
    pub fn new(
        id: NodeId,
        timing: Timing,
        seed: u64,
        recovered: RecoveredState,
        now_ms: u64,
    ) -> ReplicaCore {
        let log = LogWindow::new(recovered.base, recovered.entries);
        let durable_lsn = log.last_lsn();
        let commit_lsn = recovered
            .base
            .lsn
            .max(recovered.applied_lsn.min(durable_lsn));
        let mut core = ReplicaCore {
            id,
            timing,
            rng: seed | 1,
            promised: recovered.promised,
            max_seen_round: recovered.promised.round,
            log,
            membership: recovered.base_membership.clone(),
            membership_lsn: None,
            base_membership: recovered.base_membership,
            durable_lsn,
            pending_appends: VecDeque::new(),
            next_append_id: 1,
            commit_lsn,
            applied_lsn: commit_lsn,
            state: RoleState::Follower(FollowerState::default()),
            leader_hint: None,
            last_leader_contact_ms: now_ms,
            election_deadline_ms: 0,
            candidacy_suppressed_until_ms: 0,
            outbox: Vec::new(),
        };
        core.refresh_membership();
        core.reset_election_deadline(now_ms);
        core
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The actions emitted since the last call, in order.
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.outbox)
    }

    /// Whether this replica currently leads its group.
    pub fn is_leader(&self) -> bool {
        matches!(self.state, RoleState::Leader(_))
    }

    /// The leader this replica knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader_hint
    }

    /// The membership in effect here: the newest configuration entry in the log.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The ballot this replica promised (a leader's own ballot).
    pub fn promised(&self) -> Ballot {
        self.promised
    }

    /// Highest LSN known committed.
    pub fn commit_lsn(&self) -> Lsn {
        self.commit_lsn
    }

    /// Highest LSN handed to the host in an [`Action::Apply`].
    pub fn applied_lsn(&self) -> Lsn {
        self.applied_lsn
    }

    /// The LSN below which entries are no longer held in memory (see [`Self::trim_through`]).
    pub fn log_base_lsn(&self) -> Lsn {
        self.log.base().lsn
    }

    /// Last LSN in the log (durable or not).
    pub fn last_lsn(&self) -> Lsn {
        self.log.last_lsn()
    }

    /// A snapshot of where this replica stands.
    pub fn status(&self) -> ReplicaStatus {
        let (state, peer_match) = match &self.state {
            RoleState::Follower(_) => ("follower", BTreeMap::new()),
            RoleState::Candidate(_) => ("candidate", BTreeMap::new()),
            RoleState::Leader(leader) => (
                "leader",
                leader
                    .peers
                    .iter()
                    .map(|(id, progress)| (*id, progress.matched))
                    .collect(),
            ),
        };
        ReplicaStatus {
            id: self.id,
            role: self.membership.role(self.id),
            state,
            leader: self.leader_hint,
            promised: self.promised,
            commit_lsn: self.commit_lsn,
            applied_lsn: self.applied_lsn,
            durable_lsn: self.durable_lsn,
            last_lsn: self.log.last_lsn(),
            peer_match,
            membership: self.membership.clone(),
        }
    }

    /// Entries held in memory from `from` on (at most `max`), e.g. to stream to a new replica.
    pub fn entries_from(&self, from: Lsn, max: usize) -> Vec<Entry> {
        self.log.entries_from(from, max)
    }

    /// Time passes: leaders heartbeat, followers whose leader went quiet campaign.
    pub fn on_tick(&mut self, now_ms: u64) {
        match &self.state {
            RoleState::Leader(_) => self.leader_tick(now_ms),
            RoleState::Follower(_) | RoleState::Candidate(_) => {
                if now_ms >= self.election_deadline_ms
                    && now_ms >= self.candidacy_suppressed_until_ms
                    && self.can_lead()
                {
                    self.start_election(now_ms);
                }
            }
        }
    }

    /// A message from replica `from` arrived.
    pub fn on_message(&mut self, now_ms: u64, from: NodeId, message: Message) {
        self.max_seen_round = self.max_seen_round.max(message.ballot().round);
        match message {
            Message::Prepare {
                ballot,
                commit_lsn,
                last,
            } => self.on_prepare(now_ms, from, ballot, commit_lsn, last),
            Message::Promise {
                ballot,
                last,
                base,
                entries,
            } => self.on_promise(
                now_ms,
                from,
                ballot,
                PromiseInfo {
                    last,
                    base,
                    entries,
                },
            ),
            Message::Accept {
                ballot,
                prev,
                entries,
                commit_lsn,
                sent_at_ms,
            } => self.on_accept(now_ms, ballot, prev, entries, commit_lsn, sent_at_ms),
            Message::Accepted {
                ballot,
                match_lsn,
                sent_at_ms,
            } => self.on_accepted(now_ms, from, ballot, match_lsn, sent_at_ms),
            Message::Mismatch { ballot, hint_lsn } => {
                self.on_mismatch(now_ms, from, ballot, hint_lsn);
            }
            Message::Reject { ballot, promised } => self.on_reject(now_ms, ballot, promised),
        }
    }

    /// The host made every append up to and including `append_id` durable.
    pub fn on_append_durable(&mut self, now_ms: u64, append_id: u64) {
        let mut durable = None;
        while let Some(front) = self.pending_appends.front() {
            if front.id > append_id {
                break;
            }
            durable = Some(front.last_after);
            self.pending_appends.pop_front();
        }
        let Some(mut durable) = durable else {
            return;
        };
        // A later, still pending append that truncates will replace what is durable above it.
        for pending in &self.pending_appends {
            if let Some(truncate_after) = pending.truncate_after {
                durable = durable.min(truncate_after);
            }
        }
        self.durable_lsn = durable;
        match &self.state {
            RoleState::Leader(_) => self.advance_commit(now_ms),
            RoleState::Follower(_) => self.acknowledge(),
            RoleState::Candidate(_) => {}
        }
        // Entries committed before they were durable here can be applied now.
        self.apply_committed();
    }

    /// After the host rebuilt this replica's store (from a peer's snapshot and the log) up to
    /// `lsn`, records that entries up to there are applied, so that once this replica becomes
    /// a full member it applies from `lsn + 1`. Ignored on a replica that applies already.
    pub fn set_applied(&mut self, lsn: Lsn) {
        if !self.applies() {
            self.applied_lsn = lsn.min(self.commit_lsn);
        }
    }

    /// Forgets in-memory entries at or below `lsn` once they are committed, applied here and (on
    /// a leader) held by every peer; returns the new base LSN. The WAL keeps them.
    pub fn trim_through(&mut self, lsn: Lsn) -> Lsn {
        let mut safe = lsn.min(self.commit_lsn);
        if self.applies() {
            safe = safe.min(self.applied_lsn);
        }
        if let RoleState::Leader(leader) = &self.state {
            for progress in leader.peers.values() {
                safe = safe.min(progress.matched);
            }
        }
        for entry in self.log.entries() {
            if entry.lsn > safe {
                break;
            }
            if let Operation::Config(body) = &entry.op
                && let Ok(membership) = Membership::decode(body)
            {
                self.base_membership = membership;
            }
        }
        self.log.trim_through(safe);
        self.log.base().lsn
    }

    // ---- shared helpers -------------------------------------------------------------------

    pub(super) fn can_lead(&self) -> bool {
        self.membership.role(self.id) == Some(Role::Full)
    }

    pub(super) fn applies(&self) -> bool {
        self.membership.role(self.id) == Some(Role::Full)
    }

    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        self.outbox.push(Action::Send { to, message });
    }

    pub(super) fn promise(&mut self, ballot: Ballot) {
        self.promised = ballot;
        self.max_seen_round = self.max_seen_round.max(ballot.round);
        self.outbox.push(Action::PersistPromise { ballot });
    }

    pub(super) fn set_leader_hint(&mut self, leader: Option<NodeId>) {
        if self.leader_hint != leader {
            self.leader_hint = leader;
            self.outbox.push(Action::LeaderChanged {
                leader,
                ballot: self.promised,
            });
        }
    }

    pub(super) fn reset_election_deadline(&mut self, now_ms: u64) {
        // xorshift64: deterministic for a given seed, which is all the jitter needs.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = self.rng % (self.timing.election_jitter_ms + 1);
        self.election_deadline_ms = now_ms + self.timing.election_timeout_ms + jitter;
    }

    /// Whether an acceptor's lease obligation forbids promising `candidate` now.
    pub(super) fn lease_forbids_promise(&self, now_ms: u64, candidate: NodeId) -> bool {
        if self.membership.len() == 1 && self.membership.contains(candidate) {
            // A group of one: nobody else can hold a lease.
            return false;
        }
        if let RoleState::Leader(_) = self.state {
            return self.lease_valid(now_ms);
        }
        now_ms < self.last_leader_contact_ms + self.timing.lease_ms
            && self.leader_hint != Some(candidate)
    }

    /// Records an append of `entries` (already in the log window) after truncating above
    /// `truncate_after`, and asks the host to write it.
    pub(super) fn emit_append(&mut self, truncate_after: Option<Lsn>, entries: Vec<Entry>) {
        if let Some(truncate_after) = truncate_after {
            self.durable_lsn = self.durable_lsn.min(truncate_after);
        }
        let id = self.next_append_id;
        self.next_append_id += 1;
        self.pending_appends.push_back(PendingAppend {
            id,
            last_after: self.log.last_lsn(),
            truncate_after,
        });
        self.outbox.push(Action::Append {
            id,
            truncate_after,
            entries,
        });
    }

    /// Recomputes the membership from the newest configuration entry in the log.
    pub(super) fn refresh_membership(&mut self) {
        let newest = self.log.entries().rev().find_map(|entry| match &entry.op {
            Operation::Config(body) => Membership::decode(body).ok().map(|m| (entry.lsn, m)),
            _ => None,
        });
        match newest {
            Some((lsn, membership)) => {
                self.membership = membership;
                self.membership_lsn = Some(lsn);
            }
            None => {
                self.membership = self.base_membership.clone();
                self.membership_lsn = None;
            }
        }
    }

    /// Hands newly committed entries to the host for applying.
    pub(super) fn apply_committed(&mut self) {
        // Only what is durable here: the store must never get ahead of this replica's own log
        // (a restart replays the log above the store's applied LSN, which must hold it).
        let through = self.commit_lsn.min(self.durable_lsn);
        if !self.applies() || through <= self.applied_lsn {
            return;
        }
        let entries = self.log.range(self.applied_lsn.next(), through);
        let Some(last) = entries.last() else {
            return;
        };
        if entries[0].lsn != self.applied_lsn.next() {
            // The next entry to apply is below the window: the host must rebuild this replica.
            return;
        }
        self.applied_lsn = last.lsn;
        self.outbox.push(Action::Apply { entries });
    }
}
