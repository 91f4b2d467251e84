//! Splitting a partition for consumption: copy, fence, tail, proof, switch
//! (`docs/admission.md`).
//!
//! 1. The catalog records the split as pending and allocates the two children's ids.
//! 2. **Copy while writable**: a snapshot of the parent is divided at the boundary by each
//!    item's partition-key hash and **copied into the children through their own logs**, as
//!    ordinary puts, so each child's WAL and archive holds its whole state from its first LSN.
//!    Then the parent's committed log after the snapshot is copied the same way (puts and
//!    deletes, in order), round by round, until what is left is short.
//! 3. The parent's leader commits a **fence** in the parent's own log (a put of [`FENCE_KEY`]):
//!    from that entry on, the parent refuses writes, and the router retries them as it does
//!    while a group has no leader, against the catalog as it then is. Only the log between the
//!    last round and the fence is copied while writes wait.
//! 4. **Proof**: LtHash is additive over disjoint sets, so the children's digests must add up
//!    to the parent's at the fence, less the fence itself. Only then does the catalog switch
//!    the parent's range to the children and record the lineage ([`SplitRecord`]).
//!
//! The coordinator is the parent's leader (a request elsewhere is forwarded to it). Children
//! led by other nodes are loaded through the cluster transport (`DdbLoadSplitChild`, never
//! served on the public API, and only for a pending split's children and their own ranges).
//!
//! Any failure before the switch abandons the split: the catalog forgets it first (atomically
//! against the switch, through the metadata group), then the fence is deleted (writes resume on
//! the parent) and the children are dropped. The parent's leader abandons a split whose
//! coordinator went away, and lifts a fence whose split the catalog no longer holds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::{Node, Partition, WriteOp};
use crate::admission::SplitPlan;
use crate::catalog::{Catalog, CatalogError, PartitionDef, PendingSplit, SplitRecord};
use crate::digest::StateDigest;
use crate::item::{decode_item, decode_key, partition_hash};
use crate::protocol::{ApiError, ErrorCode, Params};
use crate::replica::{Direction, KeyRange, ReplicaStore as _};
use crate::wal::{Lsn, Operation, ResumePoint, WalEntries, resume_entries};

/// The operation a coordinator sends a child's leader (cluster transport only).
pub const LOAD_CHILD_OPERATION: &str = "DdbLoadSplitChild";

/// The operation a node sends the metadata group's leader to change the catalog for a split
/// (cluster transport only).
pub const SPLIT_CATALOG_OPERATION: &str = "DdbSplitCatalog";

/// How long a split's catalog change may wait for the metadata group to have a leader.
const CATALOG_WAIT: Duration = Duration::from_secs(10);

/// Items per load request, and their most bytes: well inside a transport frame.
const LOAD_REQUEST_ITEMS: usize = 2000;
const LOAD_REQUEST_BYTES: usize = 1 << 20;

/// How long a child may take to elect a leader and take one load request.
const LOAD_WAIT: Duration = Duration::from_secs(15);

/// The parent's log left uncopied (entries) below which the fence goes up: copying that many
/// is a few batched commits per child, the time writes wait.
const FENCE_TAIL_ENTRIES: u64 = 512;

/// Rounds of copying the parent's log before the fence at most: under writes faster than the
/// copy, the fence goes up anyway and waits writes for one round's worth.
const CATCH_UP_ROUNDS: u32 = 8;

/// The key of a split's fence: outside every table's key space (a table's item keys begin
/// with its 8-byte id, and no table is given id `u64::MAX`).
pub const FENCE_KEY: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffddb split fence";

impl Node {
    /// `DdbSplitPartition` (`ddbctl partition split`): on the parent's leader; elsewhere the
    /// router forwards it there.
    pub(super) fn split_request(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = params.required_str("TableName")?;
        let partition = params
            .optional_u64("Partition")?
            .ok_or_else(|| ApiError::validation("Partition (a partition id) is required"))?;
        let boundary = match params.optional_str("Boundary")? {
            Some(hex) => Some(u64::from_str_radix(hex, 16).map_err(|_| {
                ApiError::validation(format!(
                    "Boundary must be a partition-key hash in hex (16 digits), not {hex:?}"
                ))
            })?),
            None => None,
        };
        self.split_partition(table, partition, boundary)
    }

    /// Splits partition `parent_id` of `table_name` at `boundary`, or where its key heat says
    /// when `None`; answers what was done. Must run on the parent's leader.
    pub fn split_partition(
        &self,
        table_name: &str,
        parent_id: u64,
        boundary: Option<u64>,
    ) -> Result<Value, ApiError> {
        let table = self.active_table(table_name)?;
        if !table.partitions.iter().any(|def| def.id == parent_id) {
            return Err(ApiError::validation(format!(
                "Table {table_name} has no partition {parent_id}"
            )));
        }
        let parent = self.partition(parent_id)?;
        if !parent.is_leader() {
            return Err(ApiError::not_leader(parent.with_core(|core| core.leader())));
        }
        let boundary = match boundary {
            Some(boundary) => boundary,
            None => match self.admission.split_plan(parent_id) {
                SplitPlan::Split { boundary, .. } => boundary,
                SplitPlan::OneHotKey { hash, share, .. } => {
                    return Err(ApiError::validation(format!(
                        "Splitting cannot help partition {parent_id}: one partition key (hash {hash:016x}) carries {:.0}% of its traffic, and all of a partition key's items stay in one partition",
                        share * 100.0
                    )));
                }
                SplitPlan::TooLittleTraffic { units } => {
                    return Err(ApiError::validation(format!(
                        "Partition {parent_id} has seen too little traffic ({units:.0} units) to choose a boundary; give one with --at"
                    )));
                }
            },
        };
        if self.splitting.swap(true, Ordering::AcqRel) {
            return Err(ApiError::validation(
                "Another split is running on this node; try again when it ends",
            ));
        }
        let result = self.split_pending(table_name, &parent, boundary);
        self.splitting.store(false, Ordering::Release);
        result
    }

    fn split_pending(
        &self,
        table_name: &str,
        parent: &Partition,
        boundary: u64,
    ) -> Result<Value, ApiError> {
        let started = Instant::now();
        let parent_id = parent.def().id;
        let pending: PendingSplit = from_json(self.split_catalog(&json!({
            "Action": "begin", "TableName": table_name, "Parent": parent_id, "Boundary": boundary,
        }))?)?;
        match self.run_split(table_name, parent, &pending, started) {
            Ok(report) => Ok(report),
            Err(error) => {
                tracing::warn!(table = table_name, parent = parent_id, error = %error.message, "split abandoned");
                self.abandon_split(table_name, parent, &pending);
                Err(error)
            }
        }
    }

    fn run_split(
        &self,
        table_name: &str,
        parent: &Partition,
        pending: &PendingSplit,
        started: Instant,
    ) -> Result<Value, ApiError> {
        let boundary = pending.upper.hash_start;
        // Ready the children before writes are held: open them here and wait until each has
        // elected a leader (an empty load), so the fence lasts only as long as the last of the
        // copy.
        for child in [pending.lower, pending.upper] {
            self.open_partition(child)?;
            self.load_child_chunk(child, &[])?;
        }
        // Copy while the parent still takes writes: its snapshot, then its committed log
        // after the snapshot, round by round, until what is left is short.
        let mut loads = [ChildLoad::new(pending.lower), ChildLoad::new(pending.upper)];
        let copy_started = Instant::now();
        let snapshot = parent.snapshot()?;
        let snapshot_lsn = snapshot.applied_state().applied_lsn;
        for pair in snapshot.scan(&KeyRange::all(), Direction::Forward) {
            let (key, item) = pair
                .map_err(|e| ApiError::internal(format!("reading the parent's snapshot: {e}")))?;
            if key == FENCE_KEY {
                continue;
            }
            loads[child_of(&key, boundary)?].push_item(self, key, item)?;
        }
        drop(snapshot);
        for load in &mut loads {
            load.flush(self)?;
        }
        let snapshot_copy_ms = copy_started.elapsed().as_millis();
        let mut log = LogCopy::new(parent, snapshot_lsn, boundary)?;
        let mut catch_up_rounds = 0;
        while catch_up_rounds < CATCH_UP_ROUNDS {
            let applied = parent.store().applied_lsn();
            if applied.0.saturating_sub(log.copied.0) <= FENCE_TAIL_ENTRIES {
                break;
            }
            log.copy_through(self, applied, &mut loads)?;
            for load in &mut loads {
                load.flush(self)?;
            }
            catch_up_rounds += 1;
        }

        let catch_up_ms = copy_started.elapsed().as_millis() - snapshot_copy_ms;
        let fence = fence_value(pending);
        let ((), fence_lsn) = parent.write_at(FENCE_KEY.to_vec(), |_| {
            Ok((WriteOp::Put(fence.clone()), ()))
        })?;
        let fenced_at = Instant::now();
        // Nothing writes to the parent after the fence: its state now is its state at the
        // fence (entries without items, such as a new leader's, change no item), and its log
        // through the fence is all the children still lack.
        let parent_state = parent.store().applied_state();
        let fence_tail = fence_lsn.0 - log.copied.0;
        log.copy_through(self, fence_lsn, &mut loads)?;
        let mut children = Vec::new();
        let mut children_digest = StateDigest::empty();
        for load in loads {
            let loaded = load.finish(self)?;
            children_digest.add(&loaded.digest);
            children.push(loaded);
        }
        let mut expected = parent_state.digest.clone();
        expected.remove_item(FENCE_KEY, &fence);
        if children_digest != expected {
            return Err(ApiError::internal(format!(
                "the children's digests add up to {children_digest}, not to the parent's {expected} at the fence; the split was abandoned"
            )));
        }

        let record = SplitRecord {
            parent: pending.parent,
            lower: pending.lower,
            upper: pending.upper,
            fence_lsn: fence_lsn.0,
            loaded_lsns: [children[0].lsn, children[1].lsn],
            parent_digest: expected.identity(),
            switched_at_ms: crate::service::now_ms(),
        };
        self.split_catalog(&json!({
            "Action": "finish", "TableName": table_name, "Record": record,
        }))?;
        let writes_waited_ms = fenced_at.elapsed().as_millis();
        tracing::info!(
            table = table_name,
            parent = pending.parent.id,
            lower = pending.lower.id,
            upper = pending.upper.id,
            boundary = %format!("{boundary:016x}"),
            writes_waited_ms,
            "partition split"
        );
        let child = |loaded: &LoadedChild| {
            json!({
                "Partition": loaded.def.id,
                "HashStart": format!("{:016x}", loaded.def.hash_start),
                "HashEnd": format!("{:016x}", loaded.def.hash_end),
                "Items": loaded.items,
                "LogChanges": loaded.log_changes,
                "LoadedLsn": loaded.lsn,
            })
        };
        Ok(json!({
            "TableName": table_name,
            "Parent": pending.parent.id,
            "Boundary": format!("{boundary:016x}"),
            "FenceLsn": fence_lsn.0,
            "Children": children.iter().map(child).collect::<Vec<_>>(),
            "ParentDigest": expected.fingerprint(),
            "ChildrenDigestSum": children_digest.fingerprint(),
            "SnapshotLsn": snapshot_lsn.0,
            "SnapshotCopyMs": snapshot_copy_ms,
            "CatchUpRounds": catch_up_rounds,
            "CatchUpMs": catch_up_ms,
            "FenceTailEntries": fence_tail,
            "WritesWaitedMs": writes_waited_ms,
            "TookMs": started.elapsed().as_millis(),
        }))
    }

    /// Writes `changes` (one request's worth of puts, and deletes as `None`) into `child`
    /// through its own log, wherever its leader is, and answers its LSN and digest after
    /// them; with no changes, once it has a leader.
    fn load_child_chunk(
        &self,
        child: PartitionDef,
        changes: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(u64, StateDigest), ApiError> {
        let deadline = Instant::now() + LOAD_WAIT;
        let body = json!({
            "Partition": child.id,
            "Items": changes
                .iter()
                .map(|(key, item)| json!([BASE64.encode(key), item.as_ref().map(|item| BASE64.encode(item))]))
                .collect::<Vec<_>>(),
        });
        loop {
            let local = self.partitions_read().get(&child.id).cloned();
            let attempt = match &local {
                Some(partition) if partition.is_leader() => partition
                    .load_items(changes)
                    .map(|lsn| (lsn.0, partition.store().applied_state().digest)),
                _ => {
                    let leader = local
                        .as_ref()
                        .and_then(|partition| partition.with_core(|core| core.leader()))
                        .or_else(|| self.membership_of(child.id).ids().next());
                    match leader {
                        Some(leader) if leader != self.options.node_id => self
                            .network
                            .forward(leader, LOAD_CHILD_OPERATION, &body, self.catalog_lsn(), 1)
                            .and_then(|answer| load_answer(&answer)),
                        _ => Err(ApiError::not_leader(None)),
                    }
                }
            };
            match attempt {
                Ok(loaded) => return Ok(loaded),
                Err(error)
                    if error.code != ErrorCode::ValidationException
                        && Instant::now() < deadline =>
                {
                    // No leader yet, or one that just changed: a request's changes leave each
                    // key as its last change says, so a load that did land and is sent again
                    // changes nothing.
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `DdbLoadSplitChild`, from a split's coordinator: puts items into (or, for `[key,
    /// null]`, deletes keys from) a pending split's child, each key checked to belong to it
    /// and each item to decode, and answers the child's LSN and digest.
    pub(super) fn load_child_request(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let child_id = params
            .optional_u64("Partition")?
            .ok_or_else(|| ApiError::validation("Partition is required"))?;
        let child = self
            .catalog
            .tables()
            .iter()
            .filter_map(|table| table.pending_split)
            .flat_map(|pending| [pending.lower, pending.upper])
            .find(|def| def.id == child_id)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "Partition {child_id} is not a pending split's child"
                ))
            })?;
        let mut changes = Vec::new();
        for pair in body
            .get("Items")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::validation("Items is required"))?
        {
            let shape =
                || ApiError::validation("Items holds [base64 key, base64 item or null] pairs");
            let decode = |value: &Value| {
                value
                    .as_str()
                    .and_then(|text| BASE64.decode(text).ok())
                    .ok_or_else(shape)
            };
            let (key, item) = match pair.as_array().map(Vec::as_slice) {
                Some([key, Value::Null]) => (decode(key)?, None),
                Some([key, item]) => (decode(key)?, Some(decode(item)?)),
                _ => return Err(shape()),
            };
            let inside = key_hash(&key)
                .is_some_and(|hash| child.hash_start <= hash && hash <= child.hash_end);
            if !inside
                || item
                    .as_deref()
                    .is_some_and(|item| decode_item(item).is_err())
            {
                return Err(ApiError::validation(format!(
                    "An item does not belong to partition {child_id} or does not decode"
                )));
            }
            changes.push((key, item));
        }
        let partition = self.partition(child_id)?;
        if !partition.is_leader() {
            return Err(ApiError::not_leader(
                partition.with_core(|core| core.leader()),
            ));
        }
        let lsn = partition.load_items(&changes)?;
        let digest = partition.store().applied_state().digest;
        Ok(json!({"LoadedLsn": lsn.0, "Digest": BASE64.encode(digest.to_bytes())}))
    }

    /// A split's change to the catalog, made by the metadata group's leader (this node, or the
    /// one it is forwarded to), then installed here. Actions: `begin` (answers the pending
    /// split), `finish`, `abort` (answers whether the split was still pending) and `abandoned`
    /// (answers whether a fenced partition's split is gone while it still owns its range).
    fn split_catalog(&self, request: &Value) -> Result<Value, ApiError> {
        let deadline = Instant::now() + CATALOG_WAIT;
        loop {
            let meta = self.partitions_read().get(&super::META_GROUP).cloned();
            let attempt = match meta {
                _ if !self.is_clustered() => self.split_catalog_here(request),
                Some(meta) if meta.is_leader() => self.split_catalog_here(request),
                meta => {
                    let leader = meta
                        .and_then(|meta| meta.with_core(|core| core.leader()))
                        .or_else(|| self.membership_of(super::META_GROUP).ids().next());
                    match leader {
                        Some(leader) if leader != self.options.node_id => self.network.forward(
                            leader,
                            SPLIT_CATALOG_OPERATION,
                            request,
                            self.catalog_lsn(),
                            1,
                        ),
                        _ => Err(ApiError::not_leader(None)),
                    }
                }
            };
            match attempt {
                Ok(answer) => {
                    self.sync_catalog();
                    return Ok(answer);
                }
                Err(error) if error.redirect.is_some() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// [`Node::split_catalog`] on the metadata group's leader (or a single node); also what a
    /// forwarded `DdbSplitCatalog` runs.
    pub(super) fn split_catalog_here(&self, request: &Value) -> Result<Value, ApiError> {
        let params = Params::new(request)?;
        let table = params.required_str("TableName")?.to_string();
        let field = |name: &str| {
            request
                .get(name)
                .cloned()
                .ok_or_else(|| ApiError::validation(format!("{name} is required")))
        };
        match params.required_str("Action")? {
            "begin" => {
                let parent = from_json::<u64>(field("Parent")?)?;
                let boundary = from_json::<u64>(field("Boundary")?)?;
                let pending = self.change_catalog(|catalog| {
                    catalog
                        .begin_split(&table, parent, boundary)
                        .map_err(catalog_error)
                })?;
                Ok(json!(pending))
            }
            "finish" => {
                let record: SplitRecord = from_json(field("Record")?)?;
                self.change_catalog(|catalog| {
                    catalog
                        .finish_split(&table, record)
                        .map(|_| Value::Null)
                        .map_err(catalog_error)
                })
            }
            "abort" => {
                let pending: PendingSplit = from_json(field("Pending")?)?;
                self.change_catalog(|catalog| {
                    catalog
                        .abort_split(&table, &pending)
                        .map(Value::Bool)
                        .map_err(catalog_error)
                })
            }
            "abandoned" => {
                let id = from_json::<u64>(field("Partition")?)?;
                let abandoned = |catalog: &Catalog| {
                    catalog.table(&table).is_some_and(|now| {
                        now.pending_split
                            .is_none_or(|pending| pending.parent.id != id)
                            && now.partitions.iter().any(|def| def.id == id)
                    })
                };
                if !self.is_clustered() {
                    return Ok(Value::Bool(abandoned(&self.catalog)));
                }
                // A read, not a catalog change: the metadata group's committed catalog.
                let meta = self.partition(super::META_GROUP)?;
                meta.read_barrier(true)?;
                let committed = Catalog::scratch(meta.get(super::CATALOG_KEY)?.as_deref())
                    .map_err(|e| ApiError::internal(format!("catalog: {e}")))?;
                Ok(Value::Bool(abandoned(&committed)))
            }
            other => Err(ApiError::validation(format!(
                "unknown split catalog action {other}"
            ))),
        }
    }

    /// Undoes a split that did not switch: the catalog forgets it first (so it can no longer
    /// switch), then the fence goes (writes resume on the parent) and the children's replicas
    /// here go. If the catalog shows the split switched, or cannot be reached, nothing else is
    /// touched: the parent stays fenced until a later look decides.
    fn abandon_split(&self, table_name: &str, parent: &Partition, pending: &PendingSplit) {
        let forgotten = self
            .split_catalog(&json!({"Action": "abort", "TableName": table_name, "Pending": pending}))
            .and_then(from_json::<bool>);
        match forgotten {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(table = table_name, parent = pending.parent.id, error = %error.message, "forgetting an abandoned split");
                return;
            }
        }
        if let Err(error) = unfence(parent) {
            tracing::error!(parent = pending.parent.id, error = %error.message, "removing a split's fence");
        }
        self.drop_replica(pending.lower);
        self.drop_replica(pending.upper);
    }

    /// On the parent's leader: abandons a split no coordinator here is running (a stop or a
    /// leader change interrupted it), and lifts a fence whose split the catalog no longer
    /// holds. Called by the ticker.
    pub(super) fn abandon_interrupted_splits(&self) {
        if self.splitting.load(Ordering::Acquire) {
            return;
        }
        for table in self.catalog.tables() {
            if let Some(pending) = table.pending_split
                && let Ok(parent) = self.partition(pending.parent.id)
                && parent.is_leader()
            {
                tracing::warn!(table = %table.name, parent = pending.parent.id, "abandoning a split no coordinator runs");
                self.abandon_split(&table.name, &parent, &pending);
            }
            for def in &table.partitions {
                let Ok(partition) = self.partition(def.id) else {
                    continue;
                };
                if !partition.is_fenced() || !partition.is_leader() {
                    continue;
                }
                // Only the metadata group can say the split is gone: this node's catalog may
                // not have caught up with one begun a moment ago.
                let abandoned = self
                    .split_catalog(&json!({
                        "Action": "abandoned", "TableName": table.name, "Partition": def.id,
                    }))
                    .and_then(from_json::<bool>);
                if abandoned == Ok(true) {
                    tracing::warn!(table = %table.name, partition = def.id, "lifting the fence of an abandoned split");
                    if let Err(error) = unfence(&partition) {
                        tracing::error!(partition = def.id, error = %error.message, "removing a split's fence");
                    }
                }
            }
        }
    }

    /// Retires this node's replicas of split parents once nothing needs them: the children hold
    /// their state (the split switched), and — where the node archives — the archive holds the
    /// parent's log through the fence, as the watermark the archiver reports says. Deletes the
    /// parent's WAL, store, promise, membership and watermark here. Called by the ticker.
    pub(super) fn retire_split_parents(&self) {
        for table in self.catalog.tables() {
            for split in &table.splits {
                let Some(parent) = self.partitions_read().get(&split.parent.id).cloned() else {
                    continue;
                };
                let watermark = parent.archive().progress().watermark;
                if self.options.archive_bound.is_some() && watermark.0 < split.fence_lsn {
                    continue;
                }
                drop(parent);
                tracing::info!(
                    table = %table.name,
                    parent = split.parent.id,
                    fence_lsn = split.fence_lsn,
                    archived_through = watermark.0,
                    "retiring a split's parent"
                );
                self.drop_replica(split.parent);
                for path in [
                    super::group::membership_path(&self.data_dir, split.parent.id),
                    super::archive::watermark_path(&self.data_dir, split.parent.id),
                ] {
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(path = %path.display(), error = %e, "removing a retired parent's file");
                    }
                }
            }
        }
    }

    /// Splits a partition that has run near its ceiling for `split_hot_after_ms`, where its key
    /// heat says, on its own thread; reports (once per hot spell) a hot partition no split can
    /// help. Called by the ticker; one split at a time.
    pub(super) fn split_hot_partitions(self: &Arc<Self>) {
        let after_ms = self.options.admission.split_hot_after_ms;
        if after_ms == 0 || self.splitting.load(Ordering::Acquire) {
            return;
        }
        for (id, hot_for_ms) in self.admission.sustained_hot(after_ms) {
            let Some(table) = self
                .catalog
                .tables()
                .into_iter()
                .find(|table| table.partitions.iter().any(|def| def.id == id))
            else {
                continue;
            };
            // Writes are admitted, and their heat seen, on the leader: the split runs there.
            if !self
                .partition(id)
                .is_ok_and(|partition| partition.is_leader())
            {
                continue;
            }
            match self.admission.split_plan(id) {
                SplitPlan::Split { .. } => {
                    self.admission.note_hot_handled(id, false);
                    let node = Arc::clone(self);
                    let spawned = std::thread::Builder::new()
                        .name("ddb-split".to_string())
                        .spawn(move || match node.split_partition(&table.name, id, None) {
                            Ok(report) => tracing::info!(
                                table = %table.name,
                                partition = id,
                                hot_for_ms,
                                took_ms = %report["TookMs"],
                                "split a hot partition"
                            ),
                            Err(error) => tracing::warn!(
                                table = %table.name,
                                partition = id,
                                error = %error.message,
                                "splitting a hot partition"
                            ),
                        });
                    if let Err(error) = spawned {
                        tracing::error!(%error, "starting a split thread");
                    }
                    return;
                }
                SplitPlan::OneHotKey { hash, share, .. } => {
                    if !self.admission.note_hot_handled(id, true) {
                        tracing::warn!(
                            table = %table.name,
                            partition = id,
                            hot_for_ms,
                            key_hash = %format!("{hash:016x}"),
                            share,
                            "a partition runs hot on one partition key; splitting cannot help"
                        );
                    }
                }
                SplitPlan::TooLittleTraffic { .. } => {}
            }
        }
    }
}

fn unreadable(e: crate::wal::WalError) -> ApiError {
    ApiError::internal(format!("reading the parent's log: {e}"))
}

/// Where a reader of the parent's log that ended without an error stopped.
fn stopped_at(entries: &WalEntries) -> Result<ResumePoint, ApiError> {
    entries
        .resume_point()
        .ok_or_else(|| ApiError::internal("reading the parent's log: no place to resume at"))
}

/// The parent's committed log, copied into the children round by round: each round reads on
/// from where the last one stopped, never from the start of a segment again.
struct LogCopy {
    dir: std::path::PathBuf,
    boundary: u64,
    /// Every entry through this one is copied.
    copied: Lsn,
    /// Where the last round stopped reading.
    resume: ResumePoint,
}

impl LogCopy {
    /// Starts after `copied`: finds where its successor's record begins, from the nearest
    /// point of the parent log's index, now, while the parent still takes writes.
    fn new(parent: &Partition, copied: Lsn, boundary: u64) -> Result<Self, ApiError> {
        let dir = parent.wal().dir().to_path_buf();
        let near = parent
            .wal()
            .resume_point_near(copied.next())
            .map_err(unreadable)?;
        let mut skipped = resume_entries(&dir, &near)
            .map_err(unreadable)?
            .stop_after(copied);
        for entry in skipped.by_ref() {
            entry.map_err(unreadable)?;
        }
        Ok(LogCopy {
            dir,
            boundary,
            copied,
            resume: stopped_at(&skipped)?,
        })
    }

    /// Copies the entries after the last copied through `through` (applied on the parent, so
    /// committed and durable) in order: each put or delete to the child its key belongs to.
    fn copy_through(
        &mut self,
        node: &Node,
        through: Lsn,
        loads: &mut [ChildLoad; 2],
    ) -> Result<(), ApiError> {
        if through <= self.copied {
            return Ok(());
        }
        // A round ends right after `copied`, where the resume point is. The reader checks that
        // LSNs are dense; only an early end is left to check.
        let mut entries = resume_entries(&self.dir, &self.resume)
            .map_err(unreadable)?
            .stop_after(through);
        let mut next = self.copied.next();
        for entry in entries.by_ref() {
            let entry = entry.map_err(unreadable)?;
            next = entry.lsn.next();
            let (key, item) = match entry.op {
                Operation::Put { key, item } => (key, Some(item)),
                Operation::Delete { key } => (key, None),
                Operation::Noop | Operation::Config(_) => continue,
            };
            if key != FENCE_KEY {
                loads[child_of(&key, self.boundary)?].push_change(node, key, item)?;
            }
        }
        if next <= through {
            return Err(ApiError::internal(format!(
                "the parent's log ends before LSN {through} (at {next})"
            )));
        }
        self.copied = through;
        self.resume = stopped_at(&entries)?;
        Ok(())
    }
}

/// Changes bound for one child (puts, and deletes as `None`), sent in order in requests of at
/// most [`LOAD_REQUEST_ITEMS`] changes or [`LOAD_REQUEST_BYTES`] bytes.
struct ChildLoad {
    def: PartitionDef,
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pending_bytes: usize,
    items: usize,
    log_changes: usize,
    loaded: Option<(u64, StateDigest)>,
}

/// What a child holds once its load finished.
struct LoadedChild {
    def: PartitionDef,
    /// Items copied from the parent's snapshot.
    items: usize,
    /// Puts and deletes copied from the parent's log after the snapshot.
    log_changes: usize,
    lsn: u64,
    digest: StateDigest,
}

impl ChildLoad {
    fn new(def: PartitionDef) -> Self {
        ChildLoad {
            def,
            pending: Vec::new(),
            pending_bytes: 0,
            items: 0,
            log_changes: 0,
            loaded: None,
        }
    }

    /// An item of the parent's snapshot.
    fn push_item(&mut self, node: &Node, key: Vec<u8>, item: Vec<u8>) -> Result<(), ApiError> {
        self.items += 1;
        self.push(node, key, Some(item))
    }

    /// A put or delete from the parent's log.
    fn push_change(
        &mut self,
        node: &Node,
        key: Vec<u8>,
        item: Option<Vec<u8>>,
    ) -> Result<(), ApiError> {
        self.log_changes += 1;
        self.push(node, key, item)
    }

    fn push(&mut self, node: &Node, key: Vec<u8>, item: Option<Vec<u8>>) -> Result<(), ApiError> {
        self.pending_bytes += key.len() + item.as_ref().map_or(0, Vec::len);
        self.pending.push((key, item));
        if self.pending.len() >= LOAD_REQUEST_ITEMS || self.pending_bytes >= LOAD_REQUEST_BYTES {
            self.send(node)?;
        }
        Ok(())
    }

    fn send(&mut self, node: &Node) -> Result<(), ApiError> {
        self.loaded = Some(node.load_child_chunk(self.def, &self.pending)?);
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Sends what is buffered, if anything.
    fn flush(&mut self, node: &Node) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.send(node)
    }

    /// Sends what is left (an empty request if nothing was sent: the child's digest is wanted).
    fn finish(mut self, node: &Node) -> Result<LoadedChild, ApiError> {
        if !self.pending.is_empty() || self.loaded.is_none() {
            self.send(node)?;
        }
        let (lsn, digest) = self
            .loaded
            .ok_or_else(|| ApiError::internal("a child's load answered nothing"))?;
        Ok(LoadedChild {
            def: self.def,
            items: self.items,
            log_changes: self.log_changes,
            lsn,
            digest,
        })
    }
}

/// The fence's value: the boundary and the children, for anyone reading the parent's log.
fn fence_value(pending: &PendingSplit) -> Vec<u8> {
    json!({
        "boundary": format!("{:016x}", pending.upper.hash_start),
        "lower": pending.lower.id,
        "upper": pending.upper.id,
    })
    .to_string()
    .into_bytes()
}

/// Deletes the fence through the partition's log (on its leader).
fn unfence(partition: &Partition) -> Result<(), ApiError> {
    partition.write(FENCE_KEY.to_vec(), |current| {
        let op = if current.is_some() {
            WriteOp::Delete
        } else {
            WriteOp::Nothing
        };
        Ok((op, ()))
    })
}

/// Which of a split's two children (0 lower, 1 upper) an encoded item key belongs to.
fn child_of(key: &[u8], boundary: u64) -> Result<usize, ApiError> {
    let hash = key_hash(key).ok_or_else(|| {
        ApiError::internal(format!(
            "the parent holds a key that does not decode ({} bytes)",
            key.len()
        ))
    })?;
    Ok(usize::from(hash >= boundary))
}

/// The partition-key hash of an encoded item key.
fn key_hash(key: &[u8]) -> Option<u64> {
    decode_key(key)
        .ok()
        .and_then(|decoded| partition_hash(&decoded.partition_key).ok())
}

/// A value of a split catalog request field or answer.
fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value)
        .map_err(|e| ApiError::internal(format!("a split's catalog answer does not read: {e}")))
}

/// A child's LSN and digest, as its leader answered a load.
fn load_answer(answer: &Value) -> Result<(u64, StateDigest), ApiError> {
    let lsn = answer.get("LoadedLsn").and_then(Value::as_u64);
    let digest = answer
        .get("Digest")
        .and_then(Value::as_str)
        .and_then(|text| BASE64.decode(text).ok())
        .and_then(|bytes| StateDigest::from_slice(&bytes));
    match (lsn, digest) {
        (Some(lsn), Some(digest)) => Ok((lsn, digest)),
        _ => Err(ApiError::internal(
            "a child's leader answered a load without its LSN and digest",
        )),
    }
}

fn catalog_error(error: CatalogError) -> ApiError {
    match error {
        CatalogError::InvalidSplit(reason) => {
            ApiError::validation(format!("Cannot split: {reason}"))
        }
        CatalogError::TableNotFound(_) => ApiError::resource_not_found(),
        other => ApiError::internal(format!("catalog: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::json;

    use super::super::{Node, NodeOptions, WriteOp};
    use super::FENCE_KEY;
    use crate::admission::AdmissionMode;
    use crate::protocol::ErrorCode;

    fn node(dir: &std::path::Path) -> Arc<Node> {
        let mut options = NodeOptions::default();
        options.admission.mode = AdmissionMode::Off;
        Arc::new(Node::open(dir, options).unwrap())
    }

    fn create(node: &Node, table: &str) -> u64 {
        node.handle(
            "CreateTable",
            json!({"TableName": table, "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": 10, "WriteCapacityUnits": 10},
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}]}),
        )
        .unwrap();
        let partitions = &node.catalog().table(table).unwrap().partitions;
        assert_eq!(partitions.len(), 1);
        partitions[0].id
    }

    fn scan_keys(node: &Node, table: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let mut start = None;
        loop {
            let mut body = json!({"TableName": table});
            if let Some(start) = start.take() {
                body["ExclusiveStartKey"] = start;
            }
            let page = node.handle("Scan", body).unwrap();
            for item in page["Items"].as_array().unwrap() {
                keys.insert(item["k"]["S"].as_str().unwrap().to_string());
            }
            match page.get("LastEvaluatedKey") {
                Some(next) => start = Some(next.clone()),
                None => return keys,
            }
        }
    }

    #[test]
    fn a_split_under_concurrent_writes_loses_and_duplicates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path());
        let parent = create(&node, "hot");
        for i in 0..300 {
            node.handle(
                "PutItem",
                json!({"TableName": "hot", "Item": {"k": {"S": format!("before-{i}")}, "v": {"N": "1"}}}),
            )
            .unwrap();
        }
        let stop = AtomicBool::new(false);
        let boundary = 0x6000_0000_0000_0000u64;
        // Three writers put new keys; a fourth deletes the keys written before, one by one, so
        // the log the split copies after its snapshot holds deletes as well as puts.
        let (acknowledged, deleted, report) = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..3)
                .map(|writer| {
                    let (node, stop) = (&node, &stop);
                    scope.spawn(move || {
                        let mut acknowledged = Vec::new();
                        let mut i = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let key = format!("w{writer}-{i}");
                            let put = node.handle(
                                "PutItem",
                                json!({"TableName": "hot", "Item": {"k": {"S": key.clone()}}}),
                            );
                            match put {
                                Ok(_) => acknowledged.push(key),
                                Err(error) => panic!("a write failed during the split: {error:?}"),
                            }
                            i += 1;
                        }
                        acknowledged
                    })
                })
                .collect();
            let deleter = {
                let (node, stop) = (&node, &stop);
                scope.spawn(move || {
                    let mut deleted = Vec::new();
                    for i in 0..300 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("before-{i}");
                        let delete = node.handle(
                            "DeleteItem",
                            json!({"TableName": "hot", "Key": {"k": {"S": key.clone()}}}),
                        );
                        match delete {
                            Ok(_) => deleted.push(key),
                            Err(error) => panic!("a delete failed during the split: {error:?}"),
                        }
                        // Slower than the writers: deletes go on across the whole split.
                        std::thread::sleep(std::time::Duration::from_millis(3));
                    }
                    deleted
                })
            };
            std::thread::sleep(std::time::Duration::from_millis(300));
            let report = node.split_partition("hot", parent, Some(boundary)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            let acknowledged: Vec<String> = writers
                .into_iter()
                .flat_map(|writer| writer.join().unwrap())
                .collect();
            (acknowledged, deleter.join().unwrap(), report)
        });

        let table = node.catalog().table("hot").unwrap();
        eprintln!(
            "{report:#} after {} acknowledged writes",
            acknowledged.len()
        );
        assert_eq!(table.partitions.len(), 2, "{report}");
        assert_eq!(table.partitions[0].hash_end, boundary - 1);
        assert_eq!(table.partitions[1].hash_start, boundary);
        assert!(table.pending_split.is_none());
        assert_eq!(table.splits.len(), 1);
        assert_eq!(table.splits[0].parent.id, parent);
        assert_eq!(
            report["ParentDigest"], report["ChildrenDigestSum"],
            "{report}"
        );
        // Writes went on before and after the switch.
        let after: usize = acknowledged.len();
        assert!(after > 20, "{after} writes during the test");
        let keys = scan_keys(&node, "hot");
        let expected: BTreeSet<String> = (0..300)
            .map(|i| format!("before-{i}"))
            .filter(|key| !deleted.contains(key))
            .chain(acknowledged.iter().cloned())
            .collect();
        assert_eq!(
            keys, expected,
            "the scan after the split differs from what was acknowledged"
        );
        // Each child holds only its own half, and every copy adds up.
        for def in &table.partitions {
            let partition = node.partition(def.id).unwrap();
            let report =
                crate::replica::full_scan_digest(partition.store(), &mut |_, _| {}).unwrap();
            assert!(report.matches(), "child {}", def.id);
        }
        let moved: u64 = report["Children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|child| child["Items"].as_u64().unwrap())
            .sum();
        assert!(moved > 0, "{report}");
        // The writes made while the snapshot was copied reached the children from the log.
        let from_log: u64 = report["Children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|child| child["LogChanges"].as_u64().unwrap())
            .sum();
        assert!(from_log > 0, "{report}");
        assert!(
            !deleted.is_empty() && deleted.len() < 300,
            "{} deleted",
            deleted.len()
        );
        // Without an archive nothing waits for the parent: it is retired at the next pass.
        node.retire_split_parents();
        assert!(node.partition(parent).is_err());
        assert!(!super::super::wal_dir(dir.path(), parent).exists());
        // A second split of the retired parent is refused; the children serve reads and writes.
        let again = node
            .split_partition("hot", parent, Some(boundary))
            .unwrap_err();
        assert_eq!(again.code, ErrorCode::ValidationException);
        node.handle(
            "PutItem",
            json!({"TableName": "hot", "Item": {"k": {"S": "after"}}}),
        )
        .unwrap();
        let got = node
            .handle(
                "GetItem",
                json!({"TableName": "hot", "Key": {"k": {"S": "w0-0"}}}),
            )
            .unwrap();
        assert_eq!(got["Item"]["k"]["S"], "w0-0");
    }

    #[test]
    fn a_split_its_coordinator_left_is_abandoned_and_a_stray_fence_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path());
        let parent_id = create(&node, "left");
        let put = |key: &str| {
            node.handle(
                "PutItem",
                json!({"TableName": "left", "Item": {"k": {"S": key}}}),
            )
        };
        put("a").unwrap();
        // A coordinator that stopped after fencing: pending split, children open, fence logged.
        let pending = node
            .catalog()
            .begin_split("left", parent_id, 0x8000_0000_0000_0000)
            .unwrap();
        node.open_partition(pending.lower).unwrap();
        node.open_partition(pending.upper).unwrap();
        let parent = node.partition(parent_id).unwrap();
        parent
            .write(FENCE_KEY.to_vec(), |_| {
                Ok((WriteOp::Put(super::fence_value(&pending)), ()))
            })
            .unwrap();
        assert!(parent.is_fenced());

        node.abandon_interrupted_splits();
        let table = node.catalog().table("left").unwrap();
        assert!(table.pending_split.is_none());
        assert_eq!(table.partitions.len(), 1);
        assert!(
            !parent.is_fenced(),
            "the fence of the abandoned split is lifted"
        );
        assert!(
            node.partition(pending.lower.id).is_err(),
            "children dropped"
        );
        assert!(node.partition(pending.upper.id).is_err());
        put("b").unwrap();

        // A fence no split holds (a restore to an instant inside a split): lifted too.
        parent
            .write(FENCE_KEY.to_vec(), |_| {
                Ok((WriteOp::Put(b"{}".to_vec()), ()))
            })
            .unwrap();
        assert!(parent.is_fenced());
        node.abandon_interrupted_splits();
        assert!(!parent.is_fenced());
        put("c").unwrap();
        assert_eq!(scan_keys(&node, "left").len(), 3);
    }

    #[test]
    fn a_split_parent_is_retired_once_archived_through_its_fence_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let mut options = NodeOptions::default();
            options.admission.mode = AdmissionMode::Off;
            options.archive_bound = Some(1 << 30);
            Arc::new(Node::open(dir.path(), options).unwrap())
        };
        let node = open();
        let parent = create(&node, "kept");
        for i in 0..50 {
            node.handle(
                "PutItem",
                json!({"TableName": "kept", "Item": {"k": {"S": format!("k-{i}")}}}),
            )
            .unwrap();
        }
        let report = node
            .split_partition("kept", parent, Some(0x8000_0000_0000_0000))
            .unwrap();
        let fence_lsn = report["FenceLsn"].as_u64().unwrap();
        let parent_wal = super::super::wal_dir(dir.path(), parent);

        // Not archived: the parent stays, and is still offered to the archiver.
        node.retire_split_parents();
        assert!(node.partition(parent).unwrap().is_fenced());
        assert!(
            node.archive_partitions()
                .iter()
                .any(|p| p.partition_id == parent)
        );
        // A restart opens it again, fenced, while its log is not archived through the fence.
        drop(node);
        let node = open();
        assert!(node.partition(parent).unwrap().is_fenced());
        node.advance_archive_watermark(parent, crate::wal::Lsn(fence_lsn - 1))
            .unwrap();
        node.retire_split_parents();
        assert!(parent_wal.exists());

        // Archived through the fence: retired, its files gone, and gone after a restart too.
        node.advance_archive_watermark(parent, crate::wal::Lsn(fence_lsn))
            .unwrap();
        node.retire_split_parents();
        assert!(node.partition(parent).is_err());
        assert!(!parent_wal.exists());
        assert!(!super::super::store_dir(dir.path(), parent).exists());
        assert!(
            !node
                .archive_partitions()
                .iter()
                .any(|p| p.partition_id == parent)
        );
        drop(node);
        let node = open();
        assert!(node.partition(parent).is_err());
        assert_eq!(scan_keys(&node, "kept").len(), 50);
    }

    #[test]
    fn a_split_that_cannot_be_made_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let node = node(dir.path());
        let parent = create(&node, "tbl");
        node.handle(
            "PutItem",
            json!({"TableName": "tbl", "Item": {"k": {"S": "a"}}}),
        )
        .unwrap();
        // A boundary outside the partition (its first hash cannot start the upper child).
        let error = node.split_partition("tbl", parent, Some(0)).unwrap_err();
        assert_eq!(error.code, ErrorCode::ValidationException, "{error:?}");
        // No boundary and no traffic seen (admission off): nothing to choose from.
        let error = node.split_partition("tbl", parent, None).unwrap_err();
        assert!(error.message.contains("too little traffic"), "{error:?}");
        let table = node.catalog().table("tbl").unwrap();
        assert_eq!(table.partitions.len(), 1);
        assert!(table.pending_split.is_none());
        // The partition still takes writes: no fence was left behind.
        node.handle(
            "PutItem",
            json!({"TableName": "tbl", "Item": {"k": {"S": "b"}}}),
        )
        .unwrap();
    }
}
