//! What every member does: promise (phase 1b) and accept (phase 2b), log matching included.

use crate::wal::{Ballot, Entry, Lsn, Operation};

use super::core::{FollowerState, ReplicaCore, RoleState};
use super::log::LogPosition;
use super::membership::NodeId;
use super::message::Message;

impl ReplicaCore {
    pub(super) fn on_prepare(
        &mut self,
        now_ms: u64,
        from: NodeId,
        ballot: Ballot,
        candidate_commit: Lsn,
        candidate_last: LogPosition,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            self.send(from, Message::Reject { ballot, promised });
            return;
        }
        if ballot > self.promised {
            if self.lease_forbids_promise(now_ms, from) {
                let promised = self.promised;
                self.send(from, Message::Reject { ballot, promised });
                return;
            }
            self.become_follower(now_ms);
            self.promise(ballot);
            self.set_leader_hint(None);
            self.reset_election_deadline(now_ms);
        } else if matches!(self.state, RoleState::Leader(_) | RoleState::Candidate(_)) {
            // Our own ballot, echoed back: nothing to promise.
            return;
        }
        // A more up-to-date acceptor sends what the candidate lacks above its commit point.
        let last = self.log.last();
        let entries = if last > candidate_last {
            self.log.entries_from(candidate_commit.next(), usize::MAX)
        } else {
            Vec::new()
        };
        let base = self.log.base();
        self.send(
            from,
            Message::Promise {
                ballot,
                last,
                base,
                entries,
            },
        );
    }

    pub(super) fn on_accept(
        &mut self,
        now_ms: u64,
        ballot: Ballot,
        prev: LogPosition,
        entries: Vec<Entry>,
        leader_commit: Lsn,
        sent_at_ms: u64,
    ) {
        let leader = ballot.node;
        if ballot < self.promised {
            let promised = self.promised;
            self.send(leader, Message::Reject { ballot, promised });
            return;
        }
        let contiguous = entries
            .iter()
            .enumerate()
            .all(|(offset, entry)| entry.lsn.0 == prev.lsn.0 + 1 + offset as u64);
        if !contiguous {
            return;
        }
        if ballot > self.promised {
            self.become_follower(now_ms);
            self.promise(ballot);
        }
        let RoleState::Follower(follower) = &mut self.state else {
            // Equal ballots belong to one node; a leader or candidate never gets its own Accept.
            return;
        };
        if follower.stream_ballot != ballot {
            *follower = FollowerState {
                stream_ballot: ballot,
                ..FollowerState::default()
            };
        }
        follower.echo_sent_at_ms = follower.echo_sent_at_ms.max(sent_at_ms);
        self.set_leader_hint(Some(leader));
        self.last_leader_contact_ms = now_ms;
        self.reset_election_deadline(now_ms);

        // Log matching: entries at or below the base are committed, so they equal the leader's.
        let base = self.log.base();
        let matches = prev.lsn < base.lsn || self.log.ballot_at(prev.lsn) == Some(prev.ballot);
        if !matches {
            let hint_lsn = self.log.last_lsn().min(Lsn(prev.lsn.0.saturating_sub(1)));
            self.send(leader, Message::Mismatch { ballot, hint_lsn });
            return;
        }
        let matched_through = Lsn(prev.lsn.0 + entries.len() as u64);
        let mut truncate_after = None;
        let mut new_entries = Vec::new();
        for entry in entries {
            if entry.lsn <= base.lsn {
                continue;
            }
            if new_entries.is_empty() {
                match self.log.ballot_at(entry.lsn) {
                    // Same (LSN, ballot): the same entry, and (log matching) the same prefix.
                    Some(held) if held == entry.ballot => continue,
                    Some(_) => truncate_after = Some(Lsn(entry.lsn.0 - 1)),
                    None => {}
                }
            }
            new_entries.push(entry);
        }
        if let Some(truncate_after) = truncate_after {
            self.log.truncate_after(truncate_after);
        }
        if !new_entries.is_empty() {
            let changes_membership = new_entries
                .iter()
                .any(|entry| matches!(entry.op, Operation::Config(_)));
            for entry in &new_entries {
                self.log.push(entry.clone());
            }
            if changes_membership || truncate_after.is_some() {
                self.refresh_membership();
            }
            self.emit_append(truncate_after, new_entries);
        }
        if let RoleState::Follower(follower) = &mut self.state {
            follower.stream_match = follower.stream_match.max(matched_through);
            let commit = leader_commit.min(follower.stream_match);
            if commit > self.commit_lsn {
                self.commit_lsn = commit;
            }
        }
        // Also when the commit did not move: a replica that just became a full member applies
        // what was committed while it only kept the log.
        self.apply_committed();
        self.acknowledge();
    }

    /// Tells the followed leader how far this log durably matches its own.
    pub(super) fn acknowledge(&mut self) {
        let RoleState::Follower(follower) = &self.state else {
            return;
        };
        if follower.stream_ballot != self.promised || follower.stream_ballot == Ballot::default() {
            return;
        }
        let message = Message::Accepted {
            ballot: follower.stream_ballot,
            match_lsn: follower.stream_match.min(self.durable_lsn),
            sent_at_ms: follower.echo_sent_at_ms,
        };
        self.send(follower.stream_ballot.node, message);
    }

    /// Leaves leadership or candidacy. A former leader keeps refusing promises for one lease,
    /// since reads it served may have relied on it.
    pub(super) fn become_follower(&mut self, now_ms: u64) {
        match self.state {
            RoleState::Follower(_) => return,
            RoleState::Leader(_) => {
                self.last_leader_contact_ms = now_ms;
                self.set_leader_hint(None);
            }
            RoleState::Candidate(_) => {}
        }
        self.state = RoleState::Follower(FollowerState::default());
        self.reset_election_deadline(now_ms);
    }
}
