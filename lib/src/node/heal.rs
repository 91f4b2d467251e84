//! Healing: a group whose replica went silent gets three durable copies back.
//!
//! The leader of a group with a member silent for longer than `heal_after`:
//! 1. starts sending the log to a spare node (a learner: same AZ as the silent member when
//!    possible, else an AZ the group does not use, else any node outside the group);
//! 2. once the spare holds the committed log, adds it as a log replica (four members, quorum
//!    three: the leader, the other full replica and the log replica);
//! 3. removes the silent member (three members again, one of them a log replica).
//!
//! Each step is one membership entry; the next waits for the previous to commit.
//!
//! Then the log replica's own node rebuilds it into a full replica: it copies a full replica's
//! items page by page (each page from one snapshot; the oldest page's LSN is the base), loads
//! them into its empty store, applies its own log from the base to the commit point, and asks
//! the leader to make it a full member (one more membership entry, re-roling it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::protocol::ApiError;
use crate::replica::ReplicaStore;
use crate::replication::{Membership, NodeId, Role};
use crate::wal::Lsn;

/// Bytes asked for per snapshot page.
const SNAPSHOT_PAGE_BYTES: u32 = 4 << 20;
/// A rebuild holds the whole copied snapshot in memory before loading it; larger partitions
/// are not rebuilt this way yet.
const MAX_REBUILD_BYTES: usize = 512 << 20;

use super::partition::now_ms;
use super::{Node, Partition};

/// An item as copied from a peer: encoded key and canonical item.
type Item = (Vec<u8>, Vec<u8>);

/// What a repair did to one replica.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepairReport {
    /// The partition.
    pub partition_id: u64,
    /// The node whose replica was repaired.
    pub node_id: u32,
    /// The node whose copy it was rebuilt from.
    pub source: u32,
    /// The LSN of the copy (the log was replayed after it).
    pub base_lsn: u64,
    /// Where the store stands after the repair (where it stood before).
    pub applied_lsn: u64,
    /// Items copied.
    pub items: u64,
    /// Digest identity before the repair.
    pub digest_before: String,
    /// Digest identity after it.
    pub digest_after: String,
    /// How long it took.
    pub elapsed_ms: u64,
}

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
                let mut silent = core.silent_members(now_ms(), threshold_ms);
                if let Some(forced) = self.forced_heal(partition.def().id, core.membership()) {
                    silent.retain(|id| *id != forced);
                    silent.insert(0, forced);
                }
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

    /// Starts rebuilding every log replica here whose store is empty into a full replica.
    pub(super) fn rebuild_log_replicas(self: &Arc<Self>) {
        let partitions: Vec<Arc<Partition>> = self.partitions_read().values().cloned().collect();
        for partition in partitions {
            let is_log_replica = partition.with_core(|core| {
                core.committed_membership().role(self.options.node_id) == Some(Role::Log)
                    && core.membership().role(self.options.node_id) == Some(Role::Log)
            });
            if !is_log_replica || partition.rebuilding.swap(true, Ordering::AcqRel) {
                continue;
            }
            if partition.store().applied_lsn() != Lsn::ZERO {
                // Rebuilt already (its promotion was refused, e.g. while another membership
                // change was in flight): ask again.
                let node = Arc::clone(self);
                let spawned = std::thread::Builder::new()
                    .name("ddb-promote".to_string())
                    .spawn(move || {
                        if let Err(e) = node.request_promotion(&partition) {
                            tracing::debug!(group_id = partition.def().id, error = %e.message, "promotion not granted yet");
                        }
                        partition.rebuilding.store(false, Ordering::Release);
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "starting a promotion thread");
                }
                continue;
            }
            let node = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("ddb-rebuild".to_string())
                .spawn(move || {
                    let group_id = partition.def().id;
                    let started = std::time::Instant::now();
                    match node.rebuild_replica(&partition) {
                        Ok(lsn) => tracing::warn!(
                            group_id,
                            %lsn,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "log replica rebuilt into a full replica; promotion requested"
                        ),
                        Err(e) => tracing::warn!(
                            group_id,
                            error = %e.message,
                            "rebuilding a log replica (or its promotion) failed; will retry"
                        ),
                    }
                    // While it is still a log replica the next round asks again.
                    partition.rebuilding.store(false, Ordering::Release);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a rebuild thread");
            }
        }
    }

    /// Copies a full replica's items into this log replica's empty store, replays the log
    /// after them, and asks the leader for promotion; returns the LSN the store reached.
    fn rebuild_replica(&self, partition: &Partition) -> Result<Lsn, ApiError> {
        let me = self.options.node_id;
        let source = partition.with_core(|core| {
            let full = |id: &NodeId| *id != me && core.membership().role(*id) == Some(Role::Full);
            core.leader()
                .filter(full)
                .or_else(|| core.membership().ids().find(full))
        });
        let Some(source) = source else {
            return Err(ApiError::not_leader(None));
        };
        // Copy everything first: a failed copy leaves the store untouched.
        let (items, base) = self.copy_replica(partition, source)?;
        // The copy may be newer than what this replica knows is committed and holds durably:
        // wait for its own log to catch up, so the store never gets ahead of it.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (commit, durable) =
                partition.with_core(|core| (core.commit_lsn(), core.status().durable_lsn));
            if commit >= base && durable >= base {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(ApiError::internal(
                    "this replica's log did not reach the copy's LSN",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let store = partition.store();
        store
            .install_items(&items, Some(base))
            .map_err(|e| ApiError::internal(format!("loading the snapshot: {e}")))?;
        // The log after the base: this replica holds it (it caught up before joining).
        let commit = partition.with_core(|core| core.commit_lsn());
        partition.replay_log(base, commit)?;
        let reached = store.applied_lsn();
        partition.set_applied(reached);
        self.request_promotion(partition)?;
        Ok(reached)
    }

    /// Repair (`ddbctl scrub repair`): rebuilds this node's replica of `partition_id`, which
    /// the scrubber found odd, from node `source`'s copy, in place (see
    /// [`Partition::repair_store`]). Returns what was done.
    pub fn repair_replica(
        &self,
        partition_id: u64,
        source: NodeId,
    ) -> Result<RepairReport, ApiError> {
        let partition = self.partition(partition_id)?;
        let me = self.options.node_id;
        let source_is_full =
            partition.with_core(|core| core.membership().role(source) == Some(Role::Full));
        if source == me || !source_is_full {
            return Err(ApiError::validation(format!(
                "node {source} holds no other full replica of partition {partition_id} to copy"
            )));
        }
        let is_full = partition.with_core(|core| core.membership().role(me) == Some(Role::Full));
        if !is_full {
            return Err(ApiError::validation(format!(
                "node {me} holds no full replica of partition {partition_id}: a log replica has no store to repair"
            )));
        }
        let started = std::time::Instant::now();
        let digest_before = partition.store().applied_state().digest.identity();
        let (items, base) = self.copy_replica(&partition, source)?;
        let reached = partition.repair_store(&items, base)?;
        let report = RepairReport {
            partition_id,
            node_id: me,
            source,
            base_lsn: base.0,
            applied_lsn: reached.0,
            items: items.len() as u64,
            digest_before,
            digest_after: partition.store().applied_state().digest.identity(),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        tracing::warn!(
            partition = partition_id,
            source,
            base = report.base_lsn,
            items = report.items,
            "replica repaired from a good copy"
        );
        Ok(report)
    }

    /// Copies replica `source`'s items of `partition`, page by page (each page from one
    /// snapshot), into memory; returns them with the base LSN (the oldest page's: replaying
    /// the log after it brings every item to the newest page's state or beyond).
    pub(super) fn copy_replica(
        &self,
        partition: &Partition,
        source: NodeId,
    ) -> Result<(Vec<Item>, Lsn), ApiError> {
        let group_id = partition.def().id;
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut base: Option<Lsn> = None;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.network.fetch_snapshot_page(
                source,
                group_id,
                after.as_deref(),
                SNAPSHOT_PAGE_BYTES,
            )?;
            base = Some(base.map_or(page.applied_lsn, |base| base.min(page.applied_lsn)));
            bytes += page
                .items
                .iter()
                .map(|(key, value)| key.len() + value.len())
                .sum::<usize>();
            if bytes > MAX_REBUILD_BYTES {
                return Err(ApiError::internal(
                    "partition too large to rebuild in memory",
                ));
            }
            after = page.items.last().map(|(key, _)| key.clone()).or(after);
            items.extend(page.items);
            if !page.more {
                break;
            }
        }
        Ok((items, base.unwrap_or(Lsn::ZERO)))
    }

    /// Asks the group's current leader to make this rebuilt log replica a full member.
    fn request_promotion(&self, partition: &Partition) -> Result<(), ApiError> {
        let leader = partition
            .with_core(|core| core.leader())
            .ok_or_else(|| ApiError::not_leader(None))?;
        self.network
            .request_promotion(leader, partition.def().id, self.options.node_id)
    }

    /// The member an operator asked to replace in `group_id`, while it is still a member.
    fn forced_heal(&self, group_id: u64, membership: &Membership) -> Option<NodeId> {
        let mut forced = self
            .forced_heals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match forced.get(&group_id) {
            Some(id) if membership.contains(*id) => Some(*id),
            Some(_) => {
                forced.remove(&group_id);
                None
            }
            None => None,
        }
    }

    /// `DdbHealGroup` (`ddbctl partition heal`): on the group's leader (requests elsewhere are
    /// forwarded there), replace member `Replace` of group `Group` as if it had gone silent.
    pub(super) fn heal_request(
        &self,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        let params = crate::protocol::Params::new(body)?;
        let group_id = params
            .optional_u64("Group")?
            .ok_or_else(|| ApiError::validation("Group is required"))?;
        let replace = params
            .optional_u64("Replace")?
            .and_then(|id| NodeId::try_from(id).ok())
            .ok_or_else(|| ApiError::validation("Replace (a node id) is required"))?;
        if self.group_def(group_id).is_none() {
            return Err(ApiError::validation(format!(
                "there is no group {group_id}"
            )));
        }
        let partition = self.partition(group_id)?;
        let (leader, membership) = partition.with_core(|core| {
            (
                core.is_leader()
                    .then_some(self.options.node_id)
                    .or(core.leader()),
                core.membership().clone(),
            )
        });
        if leader != Some(self.options.node_id) {
            return Err(ApiError::not_leader(leader));
        }
        if !membership.contains(replace) {
            return Err(ApiError::validation(format!(
                "node {replace} is not a member of group {group_id}"
            )));
        }
        if replace == self.options.node_id {
            return Err(ApiError::validation(
                "the group's leader cannot replace itself; replace another member",
            ));
        }
        if self.options.heal_after.is_none() {
            return Err(ApiError::validation(
                "healing is off on this node (heal_after_ms = 0)",
            ));
        }
        if self.choose_spare(&membership, replace).is_none() {
            return Err(ApiError::validation(format!(
                "no reachable node outside group {group_id} to take node {replace}'s place"
            )));
        }
        self.forced_heals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(group_id, replace);
        tracing::warn!(group_id, replace, "an operator asked to replace a replica");
        Ok(serde_json::json!({
            "Group": group_id,
            "Replacing": replace,
            "Leader": self.options.node_id,
            "Members": membership.ids().collect::<Vec<_>>(),
        }))
    }

    /// A reachable node outside `membership` to replace `dead`: same AZ first, then an AZ the
    /// group does not use, then any.
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
            .filter(|node| !membership.contains(node.id) && self.network.is_reachable(node.id))
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
