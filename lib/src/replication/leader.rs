//! Elections (phase 1), proposals and pipelined phase 2, commit, heartbeats and the lease.

use std::collections::BTreeMap;

use crate::wal::{Ballot, Entry, Lsn, Operation};

use super::action::Action;
use super::core::{
    CampaignError, CandidateState, LeaderState, PeerProgress, PromiseInfo, ProposeError, ReadError,
    ReplicaCore, RoleState,
};
use super::log::LogPosition;
use super::membership::{Membership, NodeId};
use super::message::Message;

/// Election timeouts a replica too far behind to lead stays out of elections.
const CANDIDACY_BACKOFF_TIMEOUTS: u64 = 3;

impl ReplicaCore {
    /// Starts an election now instead of waiting for the election timeout (an operator moving
    /// leadership, or a test). Refused while a leader's lease may hold.
    pub fn campaign(&mut self, now_ms: u64) -> Result<(), CampaignError> {
        if !self.can_lead() {
            return Err(CampaignError::CannotLead);
        }
        if self.is_leader() {
            return Ok(());
        }
        if self.lease_forbids_promise(now_ms, self.id) {
            return Err(CampaignError::LeaseHeld);
        }
        self.start_election(now_ms);
        Ok(())
    }

    /// Appends `ops` to the log under this leader's ballot and starts replicating them; returns
    /// the LSN of the last. The host learns the outcome from [`Action::Apply`]: the entry at that
    /// LSN carries this leader's ballot if and only if the proposal was chosen.
    pub fn propose(&mut self, now_ms: u64, ops: Vec<Operation>) -> Result<Lsn, ProposeError> {
        if !self.is_leader() {
            return Err(ProposeError::NotLeader {
                leader: self.leader_hint,
            });
        }
        let mut next_membership: Option<Membership> = None;
        for op in &ops {
            if let Operation::Config(body) = op {
                if next_membership.is_some() || self.membership_change_pending() {
                    return Err(ProposeError::MembershipChangeInProgress);
                }
                let next = Membership::decode(body)
                    .map_err(|error| ProposeError::InvalidMembership(error.to_string()))?;
                self.membership
                    .check_change_to(&next)
                    .map_err(|error| ProposeError::InvalidMembership(error.to_string()))?;
                if next.role(self.id) != self.membership.role(self.id) {
                    return Err(ProposeError::InvalidMembership(
                        "the leader cannot remove or re-role itself; move leadership first"
                            .to_string(),
                    ));
                }
                next_membership = Some(next);
            }
        }
        Ok(self.append_own(now_ms, ops))
    }

    /// The LSN a strongly consistent read must see applied before it is answered, if this
    /// replica may serve one now: it leads, holds the lease and has committed in its ballot.
    pub fn read_index(&self, now_ms: u64) -> Result<Lsn, ReadError> {
        let RoleState::Leader(leader) = &self.state else {
            return Err(ReadError::NotLeader {
                leader: self.leader_hint,
            });
        };
        if self.commit_lsn < leader.first_own_lsn {
            return Err(ReadError::NotCaughtUp);
        }
        if !self.lease_valid(now_ms) {
            return Err(ReadError::LeaseNotHeld);
        }
        Ok(self.commit_lsn)
    }

    pub(super) fn start_election(&mut self, now_ms: u64) {
        let ballot = Ballot {
            round: self.promised.round.max(self.max_seen_round) + 1,
            node: self.id,
        };
        self.become_follower(now_ms);
        self.promise(ballot);
        self.set_leader_hint(None);
        self.reset_election_deadline(now_ms);
        let own = PromiseInfo {
            last: self.log.last(),
            base: self.log.base(),
            entries: Vec::new(),
        };
        self.state = RoleState::Candidate(CandidateState {
            ballot,
            promises: BTreeMap::from([(self.id, own)]),
        });
        let prepare = Message::Prepare {
            ballot,
            commit_lsn: self.commit_lsn,
            last: self.log.last(),
        };
        let peers: Vec<NodeId> = self.membership.ids().filter(|id| *id != self.id).collect();
        for peer in peers {
            self.send(peer, prepare.clone());
        }
        self.maybe_win(now_ms);
    }

    pub(super) fn on_promise(
        &mut self,
        now_ms: u64,
        from: NodeId,
        ballot: Ballot,
        promise: PromiseInfo,
    ) {
        let RoleState::Candidate(candidate) = &mut self.state else {
            return;
        };
        if candidate.ballot != ballot || !self.membership.contains(from) {
            return;
        }
        candidate.promises.insert(from, promise);
        self.maybe_win(now_ms);
    }

    fn maybe_win(&mut self, now_ms: u64) {
        let RoleState::Candidate(candidate) = &self.state else {
            return;
        };
        let promised_members = candidate
            .promises
            .keys()
            .filter(|id| self.membership.contains(**id))
            .count();
        if promised_members < self.membership.quorum() {
            return;
        }
        let ballot = candidate.ballot;
        // Adopt the most up-to-date log of the quorum: it holds every committed entry.
        let best = candidate
            .promises
            .iter()
            .max_by_key(|(id, promise)| (promise.last, **id == self.id))
            .map(|(_, promise)| promise.clone());
        if let Some(best) = best
            && best.last > self.log.last()
        {
            if best.base.lsn > self.commit_lsn {
                // Its log starts above what we know; we cannot take it over. Let another lead,
                // and stay out of elections long enough for it to win and catch us up.
                self.become_follower(now_ms);
                self.candidacy_suppressed_until_ms =
                    now_ms + CANDIDACY_BACKOFF_TIMEOUTS * self.timing.election_timeout_ms;
                return;
            }
            self.adopt(best.entries);
        }
        self.become_leader(now_ms, ballot);
    }

    /// Replaces this log above the first position where it differs from `entries`.
    fn adopt(&mut self, entries: Vec<Entry>) {
        let first_new = entries
            .iter()
            .position(|entry| self.log.ballot_at(entry.lsn) != Some(entry.ballot));
        let Some(first_new) = first_new else {
            return;
        };
        let new_entries: Vec<Entry> = entries.into_iter().skip(first_new).collect();
        let first_lsn = new_entries[0].lsn;
        let contiguous = new_entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.lsn.0 == first_lsn.0 + offset as u64);
        if !contiguous || first_lsn > self.log.last_lsn().next() || first_lsn <= self.log.base().lsn
        {
            return;
        }
        let truncate_after = (first_lsn <= self.log.last_lsn()).then(|| Lsn(first_lsn.0 - 1));
        if let Some(truncate_after) = truncate_after {
            self.log.truncate_after(truncate_after);
        }
        for entry in &new_entries {
            self.log.push(entry.clone());
        }
        self.refresh_membership();
        self.emit_append(truncate_after, new_entries);
    }

    fn become_leader(&mut self, now_ms: u64, ballot: Ballot) {
        let first_own_lsn = self.log.last_lsn().next();
        let peers = self
            .membership
            .ids()
            .filter(|id| *id != self.id)
            .map(|id| (id, PeerProgress::starting_at(first_own_lsn)))
            .collect();
        self.state = RoleState::Leader(LeaderState {
            ballot,
            peers,
            first_own_lsn,
            learners: std::collections::BTreeSet::new(),
            elected_at_ms: now_ms,
            last_heartbeat_ms: now_ms,
        });
        self.set_leader_hint(Some(self.id));
        // Committing an entry of our own ballot commits everything adopted before it.
        self.append_own(now_ms, vec![Operation::Noop]);
    }

    fn membership_change_pending(&self) -> bool {
        self.membership_lsn.is_some_and(|lsn| lsn > self.commit_lsn)
    }

    /// Appends entries under this leader's ballot and sends them to every peer in step.
    fn append_own(&mut self, now_ms: u64, ops: Vec<Operation>) -> Lsn {
        let RoleState::Leader(leader) = &self.state else {
            return self.log.last_lsn();
        };
        let ballot = leader.ballot;
        let first = self.log.last_lsn().next();
        let mut new_entries = Vec::with_capacity(ops.len());
        let mut changes_membership = false;
        for op in ops {
            changes_membership |= matches!(op, Operation::Config(_));
            let entry = Entry {
                lsn: self.log.last_lsn().next(),
                ballot,
                timestamp_ms: now_ms,
                op,
            };
            self.log.push(entry.clone());
            new_entries.push(entry);
        }
        let last = self.log.last_lsn();
        if changes_membership {
            self.refresh_membership();
            self.sync_peers_with_membership(first);
        }
        self.emit_append(None, new_entries.clone());
        let prev = LogPosition {
            ballot: self.log.ballot_at(Lsn(first.0 - 1)).unwrap_or_default(),
            lsn: Lsn(first.0 - 1),
        };
        let commit_lsn = self.commit_lsn;
        let mut in_step = Vec::new();
        if let RoleState::Leader(leader) = &mut self.state {
            for (peer, progress) in &mut leader.peers {
                if progress.next == first {
                    progress.next = last.next();
                    in_step.push(*peer);
                }
            }
        }
        for peer in in_step {
            self.send(
                peer,
                Message::Accept {
                    ballot,
                    prev,
                    entries: new_entries.clone(),
                    commit_lsn,
                    sent_at_ms: now_ms,
                },
            );
        }
        self.advance_commit(now_ms);
        last
    }

    /// Adds progress for new members (starting at `from`) and drops it for removed ones
    /// (learners keep theirs).
    fn sync_peers_with_membership(&mut self, from: Lsn) {
        let members: Vec<NodeId> = self.membership.ids().filter(|id| *id != self.id).collect();
        if let RoleState::Leader(leader) = &mut self.state {
            leader.learners.retain(|id| !members.contains(id));
            let learners = leader.learners.clone();
            leader
                .peers
                .retain(|id, _| members.contains(id) || learners.contains(id));
            for id in members {
                leader
                    .peers
                    .entry(id)
                    .or_insert_with(|| PeerProgress::starting_at(from));
            }
        }
    }

    pub(super) fn on_accepted(
        &mut self,
        now_ms: u64,
        from: NodeId,
        ballot: Ballot,
        match_lsn: Lsn,
        sent_at_ms: u64,
    ) {
        let last = self.log.last_lsn();
        let Some(progress) = self.peer_of_ballot(ballot, from) else {
            return;
        };
        progress.matched = progress.matched.max(match_lsn.min(last));
        progress.next = progress.next.max(progress.matched.next());
        progress.acked_sent_at_ms = progress.acked_sent_at_ms.max(Some(sent_at_ms));
        let behind = progress.next <= last;
        self.advance_commit(now_ms);
        if behind {
            self.send_entries(now_ms, from);
        }
    }

    /// On a leader: the members that have acknowledged nothing for `threshold_ms` (counted from
    /// the election for peers never heard from). Empty elsewhere.
    pub fn silent_members(&self, now_ms: u64, threshold_ms: u64) -> Vec<NodeId> {
        let RoleState::Leader(leader) = &self.state else {
            return Vec::new();
        };
        leader
            .peers
            .iter()
            .filter(|(id, _)| self.membership.contains(**id))
            .filter(|(_, progress)| {
                let heard = progress
                    .acked_sent_at_ms
                    .unwrap_or(leader.elected_at_ms)
                    .max(leader.elected_at_ms);
                now_ms.saturating_sub(heard) > threshold_ms
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// On a leader: starts sending the log to `id`, a node outside the group, so that it can
    /// join without stalling commits while it catches up. Its acknowledgements count for
    /// nothing until a membership entry makes it a member. `false` elsewhere.
    pub fn add_learner(&mut self, id: NodeId) -> bool {
        let last = self.log.last_lsn();
        let RoleState::Leader(leader) = &mut self.state else {
            return false;
        };
        if id == self.id || self.membership.contains(id) {
            return false;
        }
        leader.learners.insert(id);
        leader
            .peers
            .entry(id)
            .or_insert_with(|| PeerProgress::starting_at(last.next()));
        true
    }

    /// On a leader: how far peer `id` (member or learner) durably holds this leader's log.
    pub fn peer_match(&self, id: NodeId) -> Option<Lsn> {
        match &self.state {
            RoleState::Leader(leader) => leader.peers.get(&id).map(|progress| progress.matched),
            _ => None,
        }
    }

    /// On a leader: the nodes being brought up to date before joining.
    pub fn learners(&self) -> Vec<NodeId> {
        match &self.state {
            RoleState::Leader(leader) => leader.learners.iter().copied().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether a membership change is in the log and not yet committed.
    pub fn membership_change_in_progress(&self) -> bool {
        self.membership_change_pending()
    }

    /// The newest membership whose configuration entry is committed (the base membership when
    /// none in memory is).
    pub fn committed_membership(&self) -> Membership {
        if !self.membership_change_pending() {
            // The newest configuration entry is committed (or there is none): the common case,
            // answered without looking at the log.
            return self.membership.clone();
        }
        self.log
            .entries()
            .rev()
            .filter(|entry| entry.lsn <= self.commit_lsn)
            .find_map(|entry| match &entry.op {
                Operation::Config(body) => Membership::decode(body).ok(),
                _ => None,
            })
            .unwrap_or_else(|| self.base_membership.clone())
    }

    /// Sends `peer` entries this leader no longer holds in memory, read by the host from its
    /// WAL after an [`Action::CatchUp`]: `prev` is the entry just before `entries` (which are
    /// consecutive). Ignored unless this replica leads and the peer still needs them.
    pub fn send_stored_entries(
        &mut self,
        now_ms: u64,
        peer: NodeId,
        prev: &Entry,
        entries: Vec<Entry>,
    ) {
        let commit_lsn = self.commit_lsn;
        let RoleState::Leader(leader) = &mut self.state else {
            return;
        };
        let ballot = leader.ballot;
        let Some(progress) = leader.peers.get_mut(&peer) else {
            return;
        };
        let contiguous = entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.lsn.0 == prev.lsn.0 + 1 + offset as u64);
        if entries.is_empty() || !contiguous || progress.next != prev.lsn.next() {
            return;
        }
        progress.next = Lsn(prev.lsn.0 + 1 + entries.len() as u64);
        self.send(
            peer,
            Message::Accept {
                ballot,
                prev: LogPosition {
                    ballot: prev.ballot,
                    lsn: prev.lsn,
                },
                entries,
                commit_lsn,
                sent_at_ms: now_ms,
            },
        );
    }

    /// On a leader of `ballot`: the progress of peer `peer` (a message answering that ballot).
    fn peer_of_ballot(&mut self, ballot: Ballot, peer: NodeId) -> Option<&mut PeerProgress> {
        match &mut self.state {
            RoleState::Leader(leader) if leader.ballot == ballot => leader.peers.get_mut(&peer),
            _ => None,
        }
    }

    pub(super) fn on_mismatch(&mut self, now_ms: u64, from: NodeId, ballot: Ballot, hint: Lsn) {
        let Some(progress) = self.peer_of_ballot(ballot, from) else {
            return;
        };
        let backed_up = Lsn(progress.next.0.saturating_sub(1)).min(hint.next());
        progress.next = backed_up.max(progress.matched.next());
        self.send_entries(now_ms, from);
    }

    pub(super) fn on_reject(&mut self, now_ms: u64, ballot: Ballot, promised: Ballot) {
        let own = match &self.state {
            RoleState::Leader(leader) => leader.ballot,
            RoleState::Candidate(candidate) => candidate.ballot,
            RoleState::Follower(_) => return,
        };
        if ballot == own && promised > own {
            self.become_follower(now_ms);
        }
    }

    /// Sends `peer` the entries from its `next` (or a heartbeat when it has them all).
    fn send_entries(&mut self, now_ms: u64, peer: NodeId) {
        let max_batch = self.timing.max_batch_entries.max(1);
        let commit_lsn = self.commit_lsn;
        let RoleState::Leader(leader) = &mut self.state else {
            return;
        };
        let ballot = leader.ballot;
        let Some(progress) = leader.peers.get_mut(&peer) else {
            return;
        };
        let prev_lsn = Lsn(progress.next.0.saturating_sub(1));
        let Some(prev_ballot) = self.log.ballot_at(prev_lsn) else {
            let from_lsn = progress.next;
            self.outbox.push(Action::CatchUp { peer, from_lsn });
            return;
        };
        let entries = self.log.entries_from(progress.next, max_batch);
        progress.next = Lsn(progress.next.0 + entries.len() as u64);
        self.send(
            peer,
            Message::Accept {
                ballot,
                prev: LogPosition {
                    ballot: prev_ballot,
                    lsn: prev_lsn,
                },
                entries,
                commit_lsn,
                sent_at_ms: now_ms,
            },
        );
    }

    pub(super) fn leader_tick(&mut self, now_ms: u64) {
        let RoleState::Leader(leader) = &mut self.state else {
            return;
        };
        if now_ms < leader.last_heartbeat_ms + self.timing.heartbeat_ms {
            return;
        }
        leader.last_heartbeat_ms = now_ms;
        let last = self.log.last_lsn();
        let mut peers = Vec::with_capacity(leader.peers.len());
        for (peer, progress) in &mut leader.peers {
            // A peer that made no progress for a whole heartbeat gets its unacknowledged
            // entries again; the others just get a heartbeat and whatever is unsent.
            if progress.matched == progress.matched_at_heartbeat && progress.matched < last {
                progress.next = progress.matched.next();
            }
            progress.matched_at_heartbeat = progress.matched;
            peers.push(*peer);
        }
        for peer in peers {
            self.send_entries(now_ms, peer);
        }
        if self.quorum_silent_for(now_ms) > self.timing.election_timeout_ms {
            // Cut off from a quorum: stop accepting writes that cannot commit here.
            self.become_follower(now_ms);
        }
    }

    /// The newest send time that a quorum (this leader included, at `now_ms`) has echoed.
    fn quorum_contact_ms(&self, now_ms: u64) -> Option<u64> {
        let RoleState::Leader(leader) = &self.state else {
            return None;
        };
        let mut times: Vec<u64> = leader
            .peers
            .iter()
            .filter(|(id, _)| self.membership.contains(**id))
            .filter_map(|(_, progress)| progress.acked_sent_at_ms)
            .collect();
        times.push(now_ms);
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.get(self.membership.quorum() - 1).copied()
    }

    fn quorum_silent_for(&self, now_ms: u64) -> u64 {
        let RoleState::Leader(leader) = &self.state else {
            return 0;
        };
        let contact = self
            .quorum_contact_ms(now_ms)
            .unwrap_or(leader.elected_at_ms)
            .max(leader.elected_at_ms);
        now_ms.saturating_sub(contact)
    }

    /// Whether a quorum's promises not to elect another leader still hold.
    pub(super) fn lease_valid(&self, now_ms: u64) -> bool {
        let lease = self
            .timing
            .lease_ms
            .saturating_sub(self.timing.clock_drift_ms);
        self.quorum_contact_ms(now_ms)
            .is_some_and(|contact| contact + lease > now_ms)
    }

    /// Commits the highest entry of this ballot that a quorum holds durably.
    pub(super) fn advance_commit(&mut self, _now_ms: u64) {
        let RoleState::Leader(leader) = &self.state else {
            return;
        };
        let mut matched: Vec<Lsn> = leader
            .peers
            .iter()
            .filter(|(id, _)| self.membership.contains(**id))
            .map(|(_, progress)| progress.matched)
            .collect();
        if self.membership.contains(self.id) {
            matched.push(self.durable_lsn);
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&quorum_lsn) = matched.get(self.membership.quorum() - 1) else {
            return;
        };
        if quorum_lsn > self.commit_lsn && self.log.ballot_at(quorum_lsn) == Some(leader.ballot) {
            self.commit_lsn = quorum_lsn;
            self.apply_committed();
        }
    }
}

impl PeerProgress {
    fn starting_at(next: Lsn) -> PeerProgress {
        PeerProgress {
            next,
            matched: Lsn::ZERO,
            matched_at_heartbeat: Lsn::ZERO,
            acked_sent_at_ms: None,
        }
    }
}
