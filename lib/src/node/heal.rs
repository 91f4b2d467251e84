//! Healing: a group whose replica went silent gets three durable copies back.
//!
//! The leader of a group with a member silent for longer than `heal_after`:
//! 1. starts sending the log to a spare node (a learner: same AZ as the silent member when
//!    possible, else an AZ the group does not use, else any node outside the group);
//! 2. once the spare holds the committed log, adds it as a log replica (four members, quorum
//!    three: the leader, the other full replica and the log replica);
//! 3. removes the silent member (three members again, one of them a log replica).
//!
//! Each step is one membership entry; the next waits for the previous to commit. Rebuilding a
//! full replica in place of the log replica is not done yet (see docs/replication.md).

use std::sync::Arc;
use std::time::Duration;

use crate::replication::{Membership, NodeId, Role};

use super::partition::now_ms;
use super::{Node, Partition};

/// What a leader does next for one group.
#[derive(Debug, PartialEq, Eq)]
enum HealStep {
    Nothing,
    Teach(NodeId),
    Join(NodeId),
    Retire(NodeId),
}

impl Node {
    /// Takes the next healing step for every group this node leads (the ticker calls it).
    pub(super) fn heal_groups(&self, heal_after: Duration) {
        let partitions: Vec<Arc<Partition>> = self.partitions_read().values().cloned().collect();
        for partition in partitions {
            let step = partition.with_core(|core| {
                if !core.is_leader() || core.membership_change_in_progress() {
                    return HealStep::Nothing;
                }
                let threshold_ms = u64::try_from(heal_after.as_millis()).unwrap_or(u64::MAX);
                let silent = core.silent_members(now_ms(), threshold_ms);
                let membership = core.membership();
                if let Some(learner) = core.learners().first() {
                    let caught_up = core
                        .peer_match(*learner)
                        .is_some_and(|matched| matched >= core.commit_lsn());
                    return if caught_up {
                        HealStep::Join(*learner)
                    } else {
                        HealStep::Nothing
                    };
                }
                let Some(dead) = silent.first().copied() else {
                    return HealStep::Nothing;
                };
                if membership.len() > super::placement::REPLICAS {
                    return HealStep::Retire(dead);
                }
                match self.choose_spare(membership, dead) {
                    Some(spare) => HealStep::Teach(spare),
                    None => HealStep::Nothing,
                }
            });
            let group_id = partition.def().id;
            match step {
                HealStep::Nothing => {}
                HealStep::Teach(spare) => {
                    tracing::warn!(
                        group_id,
                        spare,
                        "a replica is silent: teaching a spare node the log"
                    );
                    partition.add_learner(spare);
                }
                HealStep::Join(spare) => {
                    let next =
                        partition.with_core(|core| core.membership().with_member(spare, Role::Log));
                    tracing::warn!(group_id, spare, "adding a log replica");
                    log_proposal(group_id, partition.propose_membership(&next));
                }
                HealStep::Retire(dead) => {
                    let next = partition.with_core(|core| core.membership().without_member(dead));
                    tracing::warn!(group_id, dead, "removing the silent replica");
                    log_proposal(group_id, partition.propose_membership(&next));
                }
            }
        }
    }

    /// A node outside `membership` to replace `dead`: same AZ first, then an AZ the group does
    /// not use, then any.
    fn choose_spare(&self, membership: &Membership, dead: NodeId) -> Option<NodeId> {
        let az_of = |id: NodeId| {
            self.options
                .cluster
                .iter()
                .find(|node| node.id == id)
                .map(|node| node.az.clone())
        };
        let dead_az = az_of(dead);
        let used_azs: Vec<Option<String>> = membership
            .ids()
            .filter(|id| *id != dead)
            .map(az_of)
            .collect();
        let candidates: Vec<&super::PlacementNode> = self
            .options
            .cluster
            .iter()
            .filter(|node| !membership.contains(node.id))
            .collect();
        candidates
            .iter()
            .find(|node| Some(&node.az) == dead_az.as_ref())
            .or_else(|| {
                candidates
                    .iter()
                    .find(|node| !used_azs.contains(&Some(node.az.clone())))
            })
            .or_else(|| candidates.first())
            .map(|node| node.id)
    }
}

fn log_proposal(group_id: u64, result: Result<crate::wal::Lsn, crate::protocol::ApiError>) {
    match result {
        Ok(lsn) => tracing::info!(group_id, %lsn, "membership change proposed"),
        Err(e) => tracing::warn!(group_id, error = %e.message, "membership change refused"),
    }
}
