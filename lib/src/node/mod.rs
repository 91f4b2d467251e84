//! A storage node: its catalog and partitions, and the DynamoDB operations it serves.
//!
//! [`Node::handle`] takes an operation name (the part of `X-Amz-Target` after the dot) and a
//! JSON request body and returns the JSON response or a DynamoDB error. It is synchronous and
//! blocks on WAL fsyncs: the HTTP layer runs it on blocking threads.

mod admission;
mod archive;
mod capacity;
mod describe;
mod group;
mod heal;
mod items;
mod partition;
mod placement;
mod query;
mod split;
mod stages;
mod tables;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use serde_json::Value;

use crate::catalog::{Catalog, PartitionDef, TableDef};
use crate::protocol::{ApiError, ErrorCode};
use crate::replica::ReplicaStore;
use crate::replication::{Membership, Message, NodeId, ReplicaStatus, Role, Timing};
use crate::wal::Lsn;

pub use archive::{ArchiveProgress, ArchiveTracking, watermark_path};
pub use group::{GroupNetwork, NoNetwork, SnapshotPage};
pub use heal::RepairReport;
pub use partition::{
    CommitWait, Partition, ReplicaHost, WriteOp, await_commits, store_dir, wal_dir,
    with_deferred_commits,
};
pub use placement::{PlacementNode, place_group};
pub use stages::{Stage, StageTotals, WriteStages};

/// The metadata group's id: its replicated state is the catalog, one item under
/// [`CATALOG_KEY`]. Table partitions are numbered from 1.
pub const META_GROUP: u64 = 0;

/// The key of the catalog item in the metadata group's store.
pub const CATALOG_KEY: &[u8] = b"catalog";

/// A request is forwarded at most this often: the router to a replica, a replica (holding no
/// lease or not the leader) on to the leader it knows.
const MAX_FORWARD_HOPS: u8 = 2;

/// How long a request waits for a group without a leader to elect one.
const LEADER_WAIT: Duration = Duration::from_secs(5);

/// How often a node checks for a newer replicated catalog.
const CATALOG_SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The ticker looks for groups to heal every this many ticks.
const HEAL_EVERY_TICKS: u64 = 20;

/// How often the node's ticker drives every group's timers.
const TICK_INTERVAL: Duration = Duration::from_millis(10);

/// Settings a node needs beyond its data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// This node's id (ballots, request ids).
    pub node_id: u32,
    /// Region reported in table ARNs.
    pub region: String,
    /// Partitions an on-demand table starts with.
    pub on_demand_partitions: u64,
    /// Every node of the cluster with its AZ, this one included; empty for a single node.
    pub cluster: Vec<PlacementNode>,
    /// The replication timers.
    pub timing: Timing,
    /// A group whose member is silent this long is healed by its leader; `None` never heals.
    pub heal_after: Option<Duration>,
    /// Unarchived log bytes per partition past which writes are throttled; `None` when the
    /// node is not archived (no archiver runs beside it).
    pub archive_bound: Option<u64>,
    /// Serve the internal fault-injection route (tests of the scrubber only).
    pub fault_injection: bool,
    /// Capacity admission: mode, ceilings, the node's capacity, burst window, GAC interval.
    pub admission: crate::admission::AdmissionLimits,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            node_id: 1,
            region: "us-east-1".to_string(),
            on_demand_partitions: 4,
            cluster: Vec::new(),
            timing: Timing::default(),
            heal_after: None,
            archive_bound: None,
            fault_injection: false,
            admission: crate::admission::AdmissionLimits::default(),
        }
    }
}

/// One replica's archiving state, as the node's internal API reports it to the archiver.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchivePartition {
    /// The table (0 for the metadata group).
    pub table_id: u64,
    /// The partition (replication group) id.
    pub partition_id: u64,
    /// Its WAL directory.
    pub wal_dir: PathBuf,
    /// True if this replica leads its group: only the archiver beside the leader uploads.
    pub leader: bool,
    /// True for a full replica (a log replica holds no store to digest).
    pub full_replica: bool,
    /// The last LSN applied to the store: every entry through it is committed.
    pub applied_lsn: u64,
    /// The archive watermark the node holds.
    pub watermark: u64,
    /// Log bytes above the watermark (an upper estimate).
    pub unarchived_bytes: u64,
    /// True while writes are throttled for want of archiving.
    pub over_bound: bool,
    /// Writes refused for want of archiving since the node started.
    pub throttled_writes: u64,
}

/// One replica's state for the scrubber: its digest at its applied LSN, at its persisted
/// checkpoints (every 1024 LSNs) and at the digest points its store keeps in memory (every 16
/// LSNs over about the last 2048), as identities (`StateDigest::identity`). Every replica
/// notes digests at the same LSNs, so copies that stand at different LSNs under steady writes
/// still share a recent LSN to compare at.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScrubReplica {
    /// The table (0 for the metadata group).
    pub table_id: u64,
    /// The partition.
    pub partition_id: u64,
    /// The node holding this replica.
    pub node_id: u32,
    /// True for a full replica (a log replica applies nothing).
    pub full_replica: bool,
    /// True if it leads its group.
    pub leader: bool,
    /// Its applied LSN.
    pub applied_lsn: u64,
    /// The identity of its digest there.
    pub digest: String,
    /// `(LSN, digest identity)` of its retained checkpoints and digest points, oldest first.
    pub checkpoints: Vec<(u64, String)>,
}

/// A node's tables and their open partitions.
pub struct Node {
    data_dir: PathBuf,
    options: NodeOptions,
    catalog: Catalog,
    network: Arc<dyn GroupNetwork>,
    partitions: RwLock<HashMap<u64, Arc<Partition>>>,
    /// The metadata group's applied LSN whose catalog is installed here.
    catalog_lsn: std::sync::Mutex<Lsn>,
    /// Members operators asked to replace, by group: healed as if they were silent.
    forced_heals: std::sync::Mutex<HashMap<u64, NodeId>>,
    routing: RoutingCounters,
    admission: admission::NodeAdmission,
    /// A partition split runs (one at a time per node).
    splitting: std::sync::atomic::AtomicBool,
    /// Where writes spend their time, shared with every partition (`/metrics`).
    write_stages: Arc<WriteStages>,
}

/// How this node routes requests and serves metadata, counted for `/metrics`.
#[derive(Default)]
struct RoutingCounters {
    requests: std::sync::atomic::AtomicU64,
    cache_hits: std::sync::atomic::AtomicU64,
    cache_misses: std::sync::atomic::AtomicU64,
    lookups_served: std::sync::atomic::AtomicU64,
}

impl Node {
    /// Opens the node's data directory, recovering every partition of every table, with no
    /// peers (a single node).
    pub fn open(data_dir: &Path, options: NodeOptions) -> Result<Self, String> {
        Node::open_with_network(data_dir, options, Arc::new(NoNetwork))
    }

    /// Opens the node's data directory, recovering every partition this node holds a replica
    /// of; replication traffic goes through `network`.
    pub fn open_with_network(
        data_dir: &Path,
        options: NodeOptions,
        network: Arc<dyn GroupNetwork>,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("creating data directory {}: {e}", data_dir.display()))?;
        let catalog = Catalog::open(data_dir).map_err(|e| e.to_string())?;
        let admission =
            admission::NodeAdmission::new(options.admission.clone(), options.cluster.len());
        let node = Node {
            data_dir: data_dir.to_path_buf(),
            options,
            catalog,
            network,
            partitions: RwLock::new(HashMap::new()),
            catalog_lsn: std::sync::Mutex::new(Lsn::ZERO),
            forced_heals: std::sync::Mutex::new(HashMap::new()),
            routing: RoutingCounters::default(),
            admission,
            splitting: std::sync::atomic::AtomicBool::new(false),
            write_stages: Arc::new(WriteStages::default()),
        };
        if node.is_clustered() {
            node.open_partition(PartitionDef {
                id: META_GROUP,
                hash_start: 0,
                hash_end: u64::MAX,
            })
            .map_err(|e| e.message)?;
        }
        for table in node.catalog.tables() {
            node.open_partitions(&table).map_err(|e| e.message)?;
            // A split's parent whose files are still here was not retired yet (its log may
            // not be archived through the fence): open it, fenced, so its archiver can finish.
            for split in &table.splits {
                if wal_dir(&node.data_dir, split.parent.id).exists() {
                    node.open_partition(split.parent).map_err(|e| e.message)?;
                }
            }
        }
        Ok(node)
    }

    /// Changes the catalog: on a single node directly; in a cluster through the metadata
    /// group, whose leader applies `change` to a scratch copy of the replicated catalog and
    /// replicates the result (elsewhere the request is forwarded to it).
    fn change_catalog<T>(
        &self,
        change: impl FnOnce(&Catalog) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if !self.is_clustered() {
            return change(&self.catalog);
        }
        let meta = self.partition(META_GROUP)?;
        let result = meta.write(CATALOG_KEY.to_vec(), |current| {
            let scratch = Catalog::scratch(current)
                .map_err(|e| ApiError::internal(format!("catalog: {e}")))?;
            let result = change(&scratch)?;
            Ok((WriteOp::Put(scratch.encode()), result))
        })?;
        self.sync_catalog();
        Ok(result)
    }

    /// The metadata group's applied LSN whose catalog is installed here.
    fn catalog_lsn(&self) -> Lsn {
        *self
            .catalog_lsn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The replicated catalog as this node's metadata replica holds it: its applied LSN and
    /// the catalog item. Fails on a node outside the metadata group.
    /// The catalog item is read only when that LSN is newer than `newer_than`.
    pub fn local_catalog(&self, newer_than: Lsn) -> Result<(Lsn, Option<Vec<u8>>), ApiError> {
        let meta = self
            .partitions_read()
            .get(&META_GROUP)
            .cloned()
            .ok_or_else(|| ApiError::not_leader(self.membership_of(META_GROUP).ids().next()))?;
        // Read the LSN first: the item read after it is at least that new.
        let lsn = meta.store().applied_lsn();
        if lsn <= newer_than {
            return Ok((lsn, None));
        }
        Ok((lsn, meta.get(CATALOG_KEY)?))
    }

    /// Installs the replicated catalog here if it changed, opening the partitions of new
    /// tables and dropping those of deleted ones. A node with a metadata replica reads its own;
    /// any other fetches it from one. The ticker calls it continuously.
    pub fn sync_catalog(&self) {
        if !self.is_clustered() {
            return;
        }
        let known = self.catalog_lsn();
        let fetched = match self.local_catalog(known) {
            Ok(local) => Ok(local),
            Err(_) => {
                let members: Vec<NodeId> = self.membership_of(META_GROUP).ids().collect();
                let start = usize::try_from(self.catalog_lsn().0).unwrap_or(0);
                // Ask the metadata replicas in turn, starting from a different one each time.
                (0..members.len())
                    .map(|offset| members[(start + offset) % members.len()])
                    .find_map(|member| self.network.fetch_catalog(member, known).ok())
                    .ok_or(())
            }
        };
        let Ok((lsn, encoded)) = fetched else {
            return;
        };
        let mut installed = self
            .catalog_lsn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lsn <= *installed {
            return;
        }
        let before: Vec<Arc<TableDef>> = self.catalog.tables();
        if let Some(encoded) = encoded {
            // Partitions open before their table becomes visible, so no request finds a table
            // whose partitions are missing here.
            if let Ok(next) = Catalog::scratch(Some(&encoded)) {
                for table in next.tables() {
                    if let Err(e) = self.open_partitions(&table) {
                        tracing::error!(table = %table.name, error = %e.message, "opening partitions");
                    }
                }
            }
            if let Err(e) = self.catalog.install(&encoded) {
                tracing::error!(error = %e, "installing the replicated catalog");
                return;
            }
        }
        *installed = lsn;
        drop(installed);
        for table in &before {
            let still = self
                .catalog
                .table(&table.name)
                .is_some_and(|now| now.id == table.id);
            if !still {
                self.drop_partitions(table);
            }
        }
        self.drop_abandoned_children();
    }

    /// Drops replicas of groups the catalog no longer names anywhere — the children of a split
    /// that was abandoned. A split's parent stays: the lineage names it, and its log is the
    /// archive's until the fence.
    fn drop_abandoned_children(&self) {
        let mut named: std::collections::HashSet<u64> =
            std::collections::HashSet::from([META_GROUP]);
        for table in self.catalog.tables() {
            named.extend(table.partitions.iter().map(|def| def.id));
            if let Some(pending) = table.pending_split {
                named.extend([pending.parent.id, pending.lower.id, pending.upper.id]);
            }
            for split in &table.splits {
                named.extend([split.parent.id, split.lower.id, split.upper.id]);
            }
        }
        let orphans: Vec<PartitionDef> = self
            .partitions_read()
            .values()
            .map(|partition| *partition.def())
            .filter(|def| !named.contains(&def.id))
            .collect();
        for def in orphans {
            tracing::info!(
                partition = def.id,
                "dropping the replica of an abandoned split's child"
            );
            self.drop_replica(def);
        }
    }

    /// Closes this node's replicas of `table`'s partitions and deletes their files (once the
    /// last in-flight request lets go of them).
    fn drop_partitions(&self, table: &TableDef) {
        for def in &table.partitions {
            self.drop_replica(*def);
            let _ = std::fs::remove_file(group::membership_path(&self.data_dir, def.id));
        }
    }

    /// Closes this node's replica of group `def` and deletes its WAL, store and promise.
    fn drop_replica(&self, def: PartitionDef) {
        let removed = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&def.id);
        drop(removed);
        for dir in [
            wal_dir(&self.data_dir, def.id),
            store_dir(&self.data_dir, def.id),
        ] {
            if dir.exists()
                && let Err(e) = std::fs::remove_dir_all(&dir)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "removing a replica's files");
            }
        }
        let _ = std::fs::remove_file(group::promise_path(&self.data_dir, def.id));
    }

    /// Where this node's writes spend their time, by stage.
    #[must_use]
    pub fn write_stages(&self) -> &WriteStages {
        &self.write_stages
    }

    /// Whether this node is one of several (replicas elsewhere, requests may be forwarded).
    #[must_use]
    pub fn is_clustered(&self) -> bool {
        self.options.cluster.len() > 1
    }

    /// The members of group `group_id`'s replication group.
    #[must_use]
    pub fn membership_of(&self, group_id: u64) -> Membership {
        if self.options.cluster.is_empty() {
            return Membership::new([(self.options.node_id, Role::Full)]);
        }
        // A group that healed has a membership of its own, persisted by its replicas here.
        match group::read_membership(&group::membership_path(&self.data_dir, group_id)) {
            Ok(Some(membership)) => membership,
            Ok(None) => place_group(group_id, &self.options.cluster),
            Err(reason) => {
                tracing::error!(group_id, %reason, "falling back to the placed membership");
                place_group(group_id, &self.options.cluster)
            }
        }
    }

    /// Opens this node's replicas of `table`'s partitions (those placed here).
    fn open_partitions(&self, table: &TableDef) -> Result<(), ApiError> {
        for def in &table.partitions {
            self.open_partition(*def)?;
        }
        // A split's children take their items before the table switches to them.
        if let Some(pending) = table.pending_split {
            self.open_partition(pending.lower)?;
            self.open_partition(pending.upper)?;
        }
        Ok(())
    }

    fn open_partition(&self, def: PartitionDef) -> Result<(), ApiError> {
        self.open_replica(def, false)
    }

    /// Opens this node's replica of group `def`; `as_newcomer` opens it even where placement
    /// does not put one (a leader is adding this node to the group).
    fn open_replica(&self, def: PartitionDef, as_newcomer: bool) -> Result<(), ApiError> {
        if self.partitions_read().contains_key(&def.id) {
            return Ok(());
        }
        let membership = self.membership_of(def.id);
        if !membership.contains(self.options.node_id) && !as_newcomer {
            return Ok(());
        }
        let host = ReplicaHost {
            node_id: self.options.node_id,
            timing: self.options.timing,
            network: Arc::clone(&self.network),
            archive_bound: self.options.archive_bound,
            stages: Arc::clone(&self.write_stages),
        };
        let partition =
            Partition::open(&self.data_dir, def, membership, &host).map_err(ApiError::internal)?;
        self.partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(def.id, partition);
        Ok(())
    }

    fn partitions_read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Arc<Partition>>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the thread that drives every group's timers (heartbeats, elections, healing)
    /// and, in a cluster, the one that keeps the catalog current; both stop when the node is
    /// dropped.
    pub fn start_ticker(self: &Arc<Self>) -> std::io::Result<()> {
        let node: Weak<Node> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("ddb-ticker".to_string())
            .spawn(move || {
                let mut ticks: u64 = 0;
                while let Some(node) = node.upgrade() {
                    let partitions: Vec<Arc<Partition>> =
                        node.partitions_read().values().cloned().collect();
                    for partition in partitions {
                        partition.tick();
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(HEAL_EVERY_TICKS) {
                        node.abandon_interrupted_splits();
                        node.retire_split_parents();
                        node.split_hot_partitions();
                    }
                    if ticks.is_multiple_of(HEAL_EVERY_TICKS)
                        && let Some(heal_after) = node.options.heal_after
                    {
                        node.heal_groups(heal_after);
                        node.rebuild_log_replicas();
                    }
                    drop(node);
                    std::thread::sleep(TICK_INTERVAL);
                }
            })
            .map(|_| ())?;
        // Its own thread: asking GAC (on another node) must never delay ticks either.
        let node: Weak<Node> = Arc::downgrade(self);
        let interval = Duration::from_millis(self.options.admission.gac_interval_ms.max(10));
        std::thread::Builder::new()
            .name("ddb-admission".to_string())
            .spawn(move || {
                while let Some(node) = node.upgrade() {
                    node.refresh_allowances();
                    drop(node);
                    std::thread::sleep(interval);
                }
            })?;
        if self.is_clustered() {
            // Its own thread: fetching the catalog from another node must never delay ticks.
            let node: Weak<Node> = Arc::downgrade(self);
            std::thread::Builder::new()
                .name("ddb-catalog".to_string())
                .spawn(move || {
                    while let Some(node) = node.upgrade() {
                        node.sync_catalog();
                        let members = match node.partitions_read().get(&META_GROUP) {
                            Some(meta) => meta.with_core(|core| core.membership().ids().collect()),
                            None => node.membership_of(META_GROUP).ids().collect(),
                        };
                        node.network.set_metadata_members(members);
                        drop(node);
                        std::thread::sleep(CATALOG_SYNC_INTERVAL);
                    }
                })?;
        }
        Ok(())
    }

    /// A replication message for group `group_id` arrived from node `from`.
    pub fn deliver(&self, group_id: u64, from: NodeId, message: Message) {
        let mut partition = self.partitions_read().get(&group_id).cloned();
        if partition.is_none()
            && let Some(def) = self.group_def(group_id)
        {
            // A leader is bringing this node into the group (healing): start a replica that
            // accepts its log; the membership entry will tell it its role.
            tracing::info!(group_id, from, "joining a group as a new replica");
            if let Err(e) = self.open_replica(def, true) {
                tracing::error!(group_id, error = %e.message, "opening a new replica");
            }
            partition = self.partitions_read().get(&group_id).cloned();
        }
        let Some(partition) = partition else {
            tracing::debug!(group_id, from, "message for a group unknown here");
            return;
        };
        if matches!(message, Message::Prepare { .. }) {
            // A replica removed while it was away campaigns with its old view of the group:
            // tell it, so it stops and lets requests go to the members.
            let committed = partition.with_core(|core| core.committed_membership());
            if committed.contains(self.options.node_id) && !committed.contains(from) {
                self.network.send_removed(from, group_id, &committed);
                return;
            }
        }
        partition.deliver(from, message);
    }

    /// A member of group `group_id` says this node's replica was removed from it: record the
    /// membership and drop the replica (its files go too).
    pub fn removed_from(&self, group_id: u64, membership: &Membership) {
        if membership.contains(self.options.node_id) {
            return;
        }
        let Some(partition) = self.partitions_read().get(&group_id).cloned() else {
            return;
        };
        let still_member = partition.with_core(|core| {
            core.committed_membership().contains(self.options.node_id) && core.is_leader()
        });
        if still_member {
            return;
        }
        let path = group::membership_path(&self.data_dir, group_id);
        if let Err(reason) = group::write_membership(&path, membership) {
            tracing::error!(group_id, %reason, "recording a removal");
            return;
        }
        tracing::warn!(
            group_id,
            "this replica was removed from its group; dropping it"
        );
        let def = *partition.def();
        drop(partition);
        self.drop_replica(def);
    }

    /// The definition of group `group_id`: the metadata group or a table partition.
    fn group_def(&self, group_id: u64) -> Option<PartitionDef> {
        if group_id == META_GROUP {
            return self.is_clustered().then_some(PartitionDef {
                id: META_GROUP,
                hash_start: 0,
                hash_end: u64::MAX,
            });
        }
        self.catalog
            .tables()
            .iter()
            .flat_map(|table| table.partitions.iter())
            .find(|def| def.id == group_id)
            .copied()
    }

    /// A page of this node's replica of group `group_id`: items after `after`, up to about
    /// `max_bytes`, from one snapshot of the store (for a peer rebuilding its replica).
    pub fn snapshot_page(
        &self,
        group_id: u64,
        after: Option<&[u8]>,
        max_bytes: u32,
    ) -> Result<SnapshotPage, ApiError> {
        let partition = self.partition(group_id)?;
        if partition.with_core(|core| core.membership().role(self.options.node_id))
            != Some(Role::Full)
        {
            return Err(ApiError::new(
                ErrorCode::ServiceUnavailable,
                "This replica holds no items to copy",
            ));
        }
        let snapshot = partition.snapshot()?;
        let mut range = crate::replica::KeyRange::all();
        if let Some(after) = after {
            range.start = std::ops::Bound::Excluded(after.to_vec());
        }
        let mut page = SnapshotPage {
            applied_lsn: snapshot.applied_state().applied_lsn,
            ..SnapshotPage::default()
        };
        let mut bytes = 0usize;
        for item in snapshot.scan(&range, crate::replica::Direction::Forward) {
            if bytes >= max_bytes as usize {
                page.more = true;
                break;
            }
            let (key, value) = item.map_err(|e| ApiError::internal(e.to_string()))?;
            bytes += key.len() + value.len();
            page.items.push((key, value));
        }
        Ok(page)
    }

    /// On the leader of group `group_id`: makes `node`, a log replica that rebuilt its store,
    /// a full member.
    pub fn promote(&self, group_id: u64, node: NodeId) -> Result<(), ApiError> {
        let partition = self.partition(group_id)?;
        let next = partition.with_core(|core| {
            (core.membership().role(node) == Some(Role::Log))
                .then(|| core.membership().with_member(node, Role::Full))
        });
        let Some(next) = next else {
            return Err(ApiError::validation("not a log replica of this group"));
        };
        tracing::warn!(
            group_id,
            node,
            "promoting a rebuilt log replica to a full replica"
        );
        partition.propose_membership(&next).map(|_| ())
    }

    /// This node's read index for group `group_id`, if it leads it with a valid lease.
    pub fn read_index(&self, group_id: u64) -> Result<Lsn, ApiError> {
        self.partition(group_id)?.local_read_index()
    }

    /// The cluster status document served at `/cluster/status`: this node, every node of the
    /// cluster, and where each of this node's replicas stands (see `docs/replication.md`).
    pub fn cluster_status(&self) -> Value {
        let table_of: HashMap<u64, String> = self
            .catalog
            .tables()
            .iter()
            .flat_map(|table| {
                table
                    .partitions
                    .iter()
                    .map(|def| (def.id, table.name.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let role_name = |role: Option<Role>| match role {
            Some(Role::Full) => Value::from("full"),
            Some(Role::Log) => Value::from("log"),
            None => Value::Null,
        };
        let digests: HashMap<u64, (Lsn, String)> = self
            .group_digests()
            .into_iter()
            .map(|(id, lsn, digest)| (id, (lsn, digest)))
            .collect();
        let groups: Vec<Value> = self
            .group_status()
            .into_iter()
            .map(|(id, status)| {
                let (digest_lsn, digest) = digests.get(&id).cloned().unwrap_or_default();
                let table = table_of.get(&id).cloned();
                let group = match (&table, id) {
                    (_, META_GROUP) => "meta".to_string(),
                    (Some(table), _) => format!("{table}/{id}"),
                    (None, _) => format!("?/{id}"),
                };
                let members: Vec<Value> = status
                    .membership
                    .iter()
                    .map(|(member, role)| {
                        let matched = if member == status.id && status.state == "leader" {
                            Some(status.durable_lsn.0)
                        } else {
                            status.peer_match.get(&member).map(|lsn| lsn.0)
                        };
                        serde_json::json!({
                            "id": member,
                            "role": role_name(Some(role)),
                            "match_lsn": matched,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "group": group,
                    "table": table,
                    "partition_id": id,
                    "state": status.state,
                    "role": role_name(status.role),
                    "leader": status.leader,
                    "ballot": status.promised.to_string(),
                    "commit_lsn": status.commit_lsn.0,
                    "applied_lsn": status.applied_lsn.0,
                    "durable_lsn": status.durable_lsn.0,
                    "last_lsn": status.last_lsn.0,
                    "digest_lsn": digest_lsn.0,
                    "digest": digest,
                    "members": members,
                })
            })
            .collect();
        let nodes: Vec<Value> = self
            .options
            .cluster
            .iter()
            .map(|node| {
                serde_json::json!({
                    "id": node.id,
                    "az": node.az,
                    "api": node.api.map(|api| api.to_string()),
                })
            })
            .collect();
        let az = self
            .options
            .cluster
            .iter()
            .find(|node| node.id == self.options.node_id)
            .map(|node| node.az.clone());
        serde_json::json!({
            "node_id": self.options.node_id,
            "az": az,
            "nodes": nodes,
            "groups": groups,
        })
    }

    /// Where each of this node's replicas stands, by group id.
    pub fn group_status(&self) -> Vec<(u64, ReplicaStatus)> {
        let mut statuses: Vec<(u64, ReplicaStatus)> = self
            .partitions_read()
            .iter()
            .map(|(id, partition)| (*id, partition.status()))
            .collect();
        statuses.sort_by_key(|(id, _)| *id);
        statuses
    }

    /// Each replica's applied LSN and a short fingerprint of its state digest there (the first
    /// 16 bytes of blake3 over the digest, in hex), by group id: equal at equal LSNs iff the
    /// replicas hold the same items.
    pub fn group_digests(&self) -> Vec<(u64, Lsn, String)> {
        let mut digests: Vec<(u64, Lsn, String)> = self
            .partitions_read()
            .iter()
            .map(|(id, partition)| {
                let state = partition.store().applied_state();
                let fingerprint = blake3::hash(&state.digest.to_bytes()).to_hex();
                (*id, state.applied_lsn, fingerprint[..32].to_string())
            })
            .collect();
        digests.sort_by_key(|(id, _, _)| *id);
        digests
    }

    /// Every replica this node holds, with its table (0 for the metadata group), for the
    /// archiver beside the node and for `/metrics`.
    #[must_use]
    pub fn archive_partitions(&self) -> Vec<ArchivePartition> {
        // A split's parent is archived until it is retired: its log through the fence may not
        // all be in the archive when the table switches to the children.
        let tables: HashMap<u64, u64> = self
            .catalog
            .tables()
            .iter()
            .flat_map(|table| {
                table
                    .partitions
                    .iter()
                    .copied()
                    .chain(table.splits.iter().map(|split| split.parent))
                    .map(move |def| (def.id, table.id))
            })
            .collect();
        let mut out: Vec<ArchivePartition> = self
            .partitions_read()
            .iter()
            .filter_map(|(id, partition)| {
                let table_id = if *id == META_GROUP {
                    0
                } else {
                    *tables.get(id)?
                };
                let status = partition.status();
                let progress = partition.archive().progress();
                Some(ArchivePartition {
                    table_id,
                    partition_id: *id,
                    wal_dir: wal_dir(&self.data_dir, *id),
                    leader: status.state == "leader",
                    full_replica: status.role == Some(Role::Full),
                    applied_lsn: partition.store().applied_lsn().0,
                    watermark: progress.watermark.0,
                    unarchived_bytes: progress.unarchived_bytes,
                    over_bound: progress.over_bound,
                    throttled_writes: progress.throttled_writes,
                })
            })
            .collect();
        out.sort_by_key(|partition| partition.partition_id);
        out
    }

    /// The newest known state digest of replica `partition_id` at or below `at_most`: its
    /// current state, a recent apply, or a persisted checkpoint. `None` if none is known (the
    /// archiver then cuts its chunk elsewhere).
    pub fn archive_digest(
        &self,
        partition_id: u64,
        at_most: Lsn,
    ) -> Result<Option<(Lsn, crate::digest::StateDigest)>, ApiError> {
        let partition = self.partition(partition_id)?;
        let current = partition.store().applied_state();
        if current.applied_lsn <= at_most {
            return Ok(Some((current.applied_lsn, current.digest)));
        }
        let recent = partition.archive().point_at_or_below(at_most);
        let checkpoint = stored_digests(&partition)?
            .into_iter()
            .rev()
            .find(|checkpoint| checkpoint.lsn <= at_most)
            .map(|checkpoint| (checkpoint.lsn, checkpoint.digest));
        Ok(match (recent, checkpoint) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }

    /// Records that the archive holds replica `partition_id`'s log through `lsn`.
    pub fn advance_archive_watermark(&self, partition_id: u64, lsn: Lsn) -> Result<Lsn, ApiError> {
        self.partition(partition_id)?
            .archive()
            .advance_watermark(lsn)
            .map_err(ApiError::internal)
    }

    /// Every replica's digests, for the scrubber.
    pub fn scrub_replicas(&self) -> Result<Vec<ScrubReplica>, ApiError> {
        let mut out = Vec::new();
        for partition in self.archive_partitions() {
            let replica = self.partition(partition.partition_id)?;
            let state = replica.store().applied_state();
            let checkpoints = stored_digests(&replica)?
                .into_iter()
                .map(|checkpoint| (checkpoint.lsn.0, checkpoint.digest.identity()))
                .collect();
            out.push(ScrubReplica {
                table_id: partition.table_id,
                partition_id: partition.partition_id,
                node_id: self.options.node_id,
                full_replica: partition.full_replica,
                leader: partition.leader,
                applied_lsn: state.applied_lsn.0,
                digest: state.digest.identity(),
                checkpoints,
            });
        }
        Ok(out)
    }

    /// Recomputes replica `partition_id`'s digest from its items at rest and compares it with
    /// the one it maintains (bit rot, apply bugs); writes go on meanwhile. Slow: a full scan,
    /// paced to at most `bytes_per_sec` when given, so foreground requests keep their latency.
    pub fn full_scan(
        &self,
        partition_id: u64,
        bytes_per_sec: Option<u64>,
    ) -> Result<crate::replica::FullScanReport, ApiError> {
        let partition = self.partition(partition_id)?;
        let started = std::time::Instant::now();
        let mut pace = |_items: u64, bytes: u64| {
            if let Some(rate) = bytes_per_sec.filter(|rate| *rate > 0) {
                let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                if let Some(early) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(early);
                }
            }
        };
        crate::replica::full_scan_digest(partition.store(), &mut pace)
            .map_err(|e| ApiError::internal(format!("full scan: {e}")))
    }

    /// A page of replica `partition_id`'s items as `(key, first 16 bytes of blake3(item))`, in
    /// key order, after `after` (from the first key for `None`), at most `limit` of them: the
    /// scrubber merges such streams of two copies to name the keys where they differ.
    pub fn key_hashes(
        &self,
        partition_id: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<crate::scrub::KeyHash>, ApiError> {
        let partition = self.partition(partition_id)?;
        let snapshot = partition
            .store()
            .snapshot()
            .map_err(|e| ApiError::internal(format!("snapshot: {e}")))?;
        let range = crate::replica::KeyRange {
            start: after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
            end: std::ops::Bound::Unbounded,
        };
        snapshot
            .scan(&range, crate::replica::Direction::Forward)
            .take(limit)
            .map(|pair| {
                let (key, item) = pair.map_err(|e| ApiError::internal(format!("scan: {e}")))?;
                Ok((key, crate::scrub::item_hash(&item)))
            })
            .collect()
    }

    /// Injects a fault into replica `partition_id` (`diverge` or `rot`, see
    /// [`crate::replica::FjallReplicaStore::inject_divergence`]), for tests of the scrubber.
    /// Refused unless the node runs with fault injection on. Returns the key changed.
    pub fn inject_fault(&self, partition_id: u64, kind: &str) -> Result<Vec<u8>, ApiError> {
        if !self.options.fault_injection {
            return Err(ApiError::new(
                ErrorCode::ValidationException,
                "fault injection is off (start the node with DDB_FAULT_INJECTION=1)",
            ));
        }
        let partition = self.partition(partition_id)?;
        let injected = match kind {
            "diverge" => partition
                .store()
                .inject_divergence(b"\x00injected by a fault-injection test"),
            "rot" => partition.store().inject_rot(),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::ValidationException,
                    format!("unknown fault {kind:?}: diverge or rot"),
                ));
            }
        };
        tracing::warn!(partition = partition_id, kind, "FAULT INJECTED by request");
        injected
            .map_err(|e| ApiError::internal(format!("injecting: {e}")))?
            .ok_or_else(|| {
                ApiError::new(ErrorCode::ValidationException, "the replica holds no item")
            })
    }

    /// The replica `partition_id` on this node (for streaming a snapshot of its store).
    pub fn local_partition(&self, partition_id: u64) -> Result<Arc<Partition>, ApiError> {
        self.partition(partition_id)
    }

    /// The node's data directory.
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's options.
    #[must_use]
    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    /// The catalog.
    #[must_use]
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs one DynamoDB operation. Parts that need a group this node does not lead (writes,
    /// catalog changes) go to the node that does; while a group has no leader the request
    /// waits for one (bounded).
    /// Requests that read or write items are admitted first (`docs/admission.md`): a table
    /// over its capacity gets `ProvisionedThroughputExceededException`.
    pub fn handle(&self, operation: &str, body: Value) -> Result<Value, ApiError> {
        self.handle_admitted(operation, body, |body| self.route(operation, body))
    }

    /// Runs a request here or where it must go (see [`Node::handle`]).
    fn route(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        self.route_metadata(body);
        let deadline = std::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.handle_here(operation, body) {
                Err(error) if error.redirect == Some(None) => {
                    if std::time::Instant::now() >= deadline {
                        return Err(ApiError {
                            redirect: None,
                            ..error
                        });
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(error) if error.redirect.is_some() => {
                    match self.redirect(error, operation, body, 0) {
                        // The leader was unreachable or has just lost its leadership; nothing
                        // happened there. Look again once the group has moved on.
                        Err(error)
                            if error.code == ErrorCode::ServiceUnavailable
                                && std::time::Instant::now() < deadline =>
                        {
                            std::thread::sleep(Duration::from_millis(25));
                        }
                        other => return other,
                    }
                }
                other => return other,
            }
        }
    }

    /// The constant-work half of routing: the request's table is looked up in the local catalog
    /// (a hit or a miss, counted) and, in a cluster, also asked of the metadata group, always.
    fn route_metadata(&self, body: &Value) {
        use std::sync::atomic::Ordering;
        if !self.is_clustered() {
            return;
        }
        let Some(table) = body.get("TableName").and_then(Value::as_str) else {
            return;
        };
        self.routing.requests.fetch_add(1, Ordering::Relaxed);
        if self.catalog.table(table).is_some() {
            self.routing.cache_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.routing.cache_misses.fetch_add(1, Ordering::Relaxed);
        }
        self.network.query_metadata(table);
    }

    /// Answers a router's metadata lookup from this node's metadata replica: the catalog's
    /// metadata LSN and whether `table` (UTF-8 bytes) exists.
    pub fn lookup_table(&self, table: &[u8]) -> Result<(Lsn, bool), ApiError> {
        use std::sync::atomic::Ordering;
        self.routing.lookups_served.fetch_add(1, Ordering::Relaxed);
        let name = std::str::from_utf8(table)
            .map_err(|_| ApiError::validation("table names are UTF-8"))?;
        let lsn = self.local_catalog(Lsn(u64::MAX))?.0;
        Ok((lsn, self.catalog.table(name).is_some()))
    }

    /// Routing and metadata counters for `/metrics`, as `(name, help, value)`.
    pub fn routing_counters(&self) -> Vec<(&'static str, &'static str, u64)> {
        use std::sync::atomic::Ordering;
        let mut counters = vec![
            (
                "ddb_router_requests_total",
                "Requests naming a table that this node routed.",
                self.routing.requests.load(Ordering::Relaxed),
            ),
            (
                "ddb_router_cache_hits_total",
                "Routed requests whose table was in this node's catalog.",
                self.routing.cache_hits.load(Ordering::Relaxed),
            ),
            (
                "ddb_router_cache_misses_total",
                "Routed requests whose table was not in this node's catalog.",
                self.routing.cache_misses.load(Ordering::Relaxed),
            ),
            (
                "ddb_metadata_lookups_served_total",
                "Routers' metadata lookups this node's metadata replica answered.",
                self.routing.lookups_served.load(Ordering::Relaxed),
            ),
        ];
        counters.extend(self.network.routing_counters());
        counters
    }

    /// Runs a request another node forwarded here (`hops` forwards so far). It is served here,
    /// or, if this node holds no replica of the group and knows who leads it, forwarded once
    /// more; never further (a leader change in between makes the client retry).
    pub fn handle_forwarded(
        &self,
        operation: &str,
        body: &Value,
        catalog_lsn: Lsn,
        hops: u8,
    ) -> Result<Value, ApiError> {
        // The router saw a catalog this new: serve against at least that one.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while self.catalog_lsn() < catalog_lsn && std::time::Instant::now() < deadline {
            self.sync_catalog();
            std::thread::sleep(Duration::from_millis(5));
        }
        // Between nodes only, never on the public API: a split's coordinator loading a child.
        let served = match operation {
            split::LOAD_CHILD_OPERATION => self.load_child_request(body),
            split::SPLIT_CATALOG_OPERATION => self.split_catalog_here(body),
            _ => self.handle_here(operation, body),
        };
        match served {
            Err(error) if hops < MAX_FORWARD_HOPS => self.redirect(error, operation, body, hops),
            Err(error) => Err(ApiError {
                redirect: None,
                ..error
            }),
            Ok(response) => Ok(response),
        }
    }

    /// Sends a request that failed with a redirect to the node named in it (`hops` forwards
    /// so far).
    fn redirect(
        &self,
        error: ApiError,
        operation: &str,
        body: &Value,
        hops: u8,
    ) -> Result<Value, ApiError> {
        match error.redirect {
            Some(Some(leader)) if leader != self.options.node_id => {
                let response =
                    self.network
                        .forward(leader, operation, body, self.catalog_lsn(), hops + 1)?;
                self.await_catalog_change(operation, body);
                Ok(response)
            }
            _ => Err(ApiError {
                redirect: None,
                ..error
            }),
        }
    }

    /// After a catalog change made by the metadata leader elsewhere, waits (briefly) until this
    /// node has installed it, so the client's next request here sees its table.
    fn await_catalog_change(&self, operation: &str, body: &Value) {
        let Some(name) = body.get("TableName").and_then(Value::as_str) else {
            return;
        };
        let visible = |node: &Node| node.catalog.table(name).is_some();
        let wanted = match operation {
            "CreateTable" => true,
            "DeleteTable" => false,
            _ => return,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while visible(self) != wanted && std::time::Instant::now() < deadline {
            self.sync_catalog();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn handle_here(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        match operation {
            "CreateTable" => self.create_table(body),
            "DescribeTable" => self.describe_table(body),
            "ListTables" => self.list_tables(body),
            "UpdateTable" => self.update_table(body),
            "DeleteTable" => self.delete_table(body),
            "PutItem" => self.put_item(body),
            "GetItem" => self.get_item(body),
            "DeleteItem" => self.delete_item(body),
            "UpdateItem" => self.update_item(body),
            "Query" => self.query(body),
            "Scan" => self.scan(body),
            "BatchGetItem" => self.batch_get_item(body),
            "BatchWriteItem" => self.batch_write_item(body),
            "DdbHealGroup" => self.heal_request(body),
            "DdbSplitPartition" => self.split_request(body),
            _ => Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                format!("Unknown operation: {operation}"),
            )),
        }
    }

    /// The active table named `name`, or DynamoDB's not-found error.
    fn active_table(&self, name: &str) -> Result<Arc<TableDef>, ApiError> {
        match self.table(name) {
            Some(table) if table.status == crate::catalog::TableStatus::Active => Ok(table),
            _ => Err(ApiError::resource_not_found()),
        }
    }

    /// Table `name` from the catalog. In a cluster a miss is checked against the metadata
    /// group before it is believed: a table created through another node a moment ago may not
    /// have reached this node's catalog yet, and "not found" must not contradict a CreateTable
    /// that already returned.
    fn table(&self, name: &str) -> Option<Arc<TableDef>> {
        if let Some(table) = self.catalog.table(name) {
            return Some(table);
        }
        if !self.is_clustered() {
            return None;
        }
        // Catch up with everything the metadata group committed before this request (a node
        // without a metadata replica fetches the catalog from one in sync_catalog).
        let meta = self.partitions_read().get(&META_GROUP).cloned();
        if let Some(meta) = meta
            && meta.read_barrier(true).is_err()
        {
            return None;
        }
        self.sync_catalog();
        self.catalog.table(name)
    }

    /// The open partition with id `id`.
    fn partition(&self, id: u64) -> Result<Arc<Partition>, ApiError> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| {
                let membership = self.membership_of(id);
                if membership.contains(self.options.node_id) {
                    ApiError::new(ErrorCode::ServiceUnavailable, "Partition is not open")
                } else {
                    // No replica here: a node that holds one serves the request.
                    ApiError::not_leader(membership.ids().next())
                }
            })
    }
}

/// A replica's persisted checkpoints and the digest points its store keeps in memory between
/// them, in LSN order.
fn stored_digests(partition: &Partition) -> Result<Vec<crate::digest::Checkpoint>, ApiError> {
    let mut digests = partition
        .store()
        .checkpoints()
        .map_err(|e| ApiError::internal(format!("reading checkpoints: {e}")))?;
    digests.extend(partition.store().recent_points());
    digests.sort_by_key(|checkpoint| checkpoint.lsn);
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::OPERATIONS;

    #[tokio::test]
    async fn a_deferred_write_is_acknowledged_once_awaited_and_the_deferral_ends_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), NodeOptions::default()).unwrap();
        node.handle(
            "CreateTable",
            serde_json::json!({"TableName": "deferred", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}]}),
        )
        .unwrap();
        let put = |key: &str| {
            node.handle(
                "PutItem",
                serde_json::json!({"TableName": "deferred", "Item": {"k": {"S": key}}}),
            )
        };
        let get = |key: &str| {
            node.handle(
                "GetItem",
                serde_json::json!({"TableName": "deferred", "Key": {"k": {"S": key}},
                    "ConsistentRead": true}),
            )
            .unwrap()
        };
        let (answer, commits) = with_deferred_commits(|| put("a"));
        answer.unwrap();
        assert_eq!(commits.len(), 1, "one write proposed, one commit to await");
        await_commits(commits).await.unwrap();
        assert_eq!(get("a")["Item"]["k"]["S"], "a");
        // A failed condition proposes nothing: nothing to await.
        let (answer, commits) = with_deferred_commits(|| {
            node.handle(
                "PutItem",
                serde_json::json!({"TableName": "deferred", "Item": {"k": {"S": "a"}},
                    "ConditionExpression": "attribute_not_exists(k)"}),
            )
        });
        assert!(answer.is_err());
        assert!(commits.is_empty());
        // The deferral ends with its call, even one that panics: a later write on this thread
        // waits for its own commit.
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_deferred_commits(|| {
                put("b").unwrap();
                panic!("a handler bug");
            })
        }));
        assert!(unwound.is_err());
        assert!(!partition::deferring());
        put("c").unwrap();
        assert_eq!(get("c")["Item"]["k"]["S"], "c");
    }

    #[test]
    fn every_listed_operation_is_served_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), NodeOptions::default()).unwrap();
        for operation in OPERATIONS {
            let answer = node.handle(operation, serde_json::json!({}));
            assert!(
                !matches!(&answer, Err(e) if e.code == ErrorCode::UnknownOperationException),
                "{operation} is listed in protocol::OPERATIONS but not served"
            );
        }
        let unknown = node.handle("TransactWriteItems", serde_json::json!({}));
        assert!(matches!(unknown, Err(e) if e.code == ErrorCode::UnknownOperationException));
    }
}
