//! Splitting a partition for consumption: fence, copy, proof, switch (`docs/admission.md`).
//!
//! 1. The catalog records the split as pending and allocates the two children's ids.
//! 2. The parent's leader commits a **fence** in the parent's own log (a put of [`FENCE_KEY`]):
//!    from that entry on, the parent refuses writes, and the router retries them as it does
//!    while a group has no leader, against the catalog as it then is.
//! 3. The parent's state at the fence is divided at the boundary by each item's partition-key
//!    hash and **copied into the children through their own logs**, as ordinary puts, so each
//!    child's WAL and archive holds its whole state from its first LSN.
//! 4. **Proof**: LtHash is additive over disjoint sets, so the children's digests must add up
//!    to the parent's at the fence, less the fence itself. Only then does the catalog switch
//!    the parent's range to the children and record the lineage ([`SplitRecord`]).
//!
//! Any failure before the switch abandons the split: the fence is deleted (writes resume on
//! the parent), the children are dropped and the pending split forgotten. A split a stop
//! interrupted is abandoned the same way when the node runs again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Node, Partition, WriteOp};
use crate::admission::SplitPlan;
use crate::catalog::{CatalogError, PendingSplit, SplitRecord};
use crate::item::{decode_key, partition_hash};
use crate::protocol::{ApiError, Params};
use crate::replica::ReplicaStore as _;

/// The key of a split's fence: outside every table's key space (a table's item keys begin
/// with its 8-byte id, and no table is given id `u64::MAX`).
pub const FENCE_KEY: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffddb split fence";

impl Node {
    /// `DdbSplitPartition` (`ddbctl partition split`).
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
    /// when `None`; answers what was done. Runs on a single node in this version.
    pub fn split_partition(
        &self,
        table_name: &str,
        parent_id: u64,
        boundary: Option<u64>,
    ) -> Result<Value, ApiError> {
        if self.is_clustered() {
            return Err(ApiError::validation(
                "Splitting a partition runs on a single node in this version; in a cluster it is not built yet (docs/admission.md)",
            ));
        }
        let table = self.active_table(table_name)?;
        if !table.partitions.iter().any(|def| def.id == parent_id) {
            return Err(ApiError::validation(format!(
                "Table {table_name} has no partition {parent_id}"
            )));
        }
        let parent = self.partition(parent_id)?;
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
        let pending = self
            .catalog
            .begin_split(table_name, parent.def().id, boundary)
            .map_err(catalog_error)?;
        match self.run_split(table_name, parent, &pending, started) {
            Ok(report) => Ok(report),
            Err(error) => {
                tracing::warn!(table = table_name, parent = pending.parent.id, error = %error.message, "split abandoned");
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
        let fence = json!({
            "boundary": format!("{boundary:016x}"),
            "lower": pending.lower.id,
            "upper": pending.upper.id,
        })
        .to_string()
        .into_bytes();
        let ((), fence_lsn) = parent.write_at(FENCE_KEY.to_vec(), |_| {
            Ok((WriteOp::Put(fence.clone()), ()))
        })?;
        let fenced_at = Instant::now();

        // Nothing writes to the parent after the fence: any snapshot from now is its state at
        // the fence (entries without items, such as a new leader's, change no item).
        let snapshot = parent.snapshot()?;
        let parent_state = snapshot.applied_state().clone();
        let mut halves: [Vec<(Vec<u8>, Vec<u8>)>; 2] = [Vec::new(), Vec::new()];
        let mut undecodable = None;
        snapshot
            .for_each_item(&mut |key, item| {
                if key == FENCE_KEY {
                    return;
                }
                let hash = decode_key(key)
                    .ok()
                    .and_then(|decoded| partition_hash(&decoded.partition_key).ok());
                match hash {
                    Some(hash) => {
                        halves[usize::from(hash >= boundary)].push((key.to_vec(), item.to_vec()));
                    }
                    None => undecodable = Some(key.to_vec()),
                }
            })
            .map_err(|e| ApiError::internal(format!("reading the parent at the fence: {e}")))?;
        drop(snapshot);
        if let Some(key) = undecodable {
            return Err(ApiError::internal(format!(
                "the parent holds a key that does not decode ({} bytes)",
                key.len()
            )));
        }

        let mut loaded_lsns = [0u64; 2];
        let mut children_digest = crate::digest::StateDigest::empty();
        for (index, (child, items)) in [pending.lower, pending.upper]
            .iter()
            .zip(halves.iter())
            .enumerate()
        {
            self.open_partition(*child)?;
            let partition = self.partition(child.id)?;
            loaded_lsns[index] = partition.load_items(items)?.0;
            children_digest.add(&partition.store().applied_state().digest);
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
            loaded_lsns,
            parent_digest: expected.identity(),
            switched_at_ms: crate::service::now_ms(),
        };
        self.catalog
            .finish_split(table_name, record.clone())
            .map_err(catalog_error)?;
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
        Ok(json!({
            "TableName": table_name,
            "Parent": pending.parent.id,
            "Boundary": format!("{boundary:016x}"),
            "FenceLsn": fence_lsn.0,
            "Children": [
                {"Partition": pending.lower.id, "HashStart": format!("{:016x}", pending.lower.hash_start),
                 "HashEnd": format!("{:016x}", pending.lower.hash_end), "Items": halves[0].len(),
                 "LoadedLsn": loaded_lsns[0]},
                {"Partition": pending.upper.id, "HashStart": format!("{:016x}", pending.upper.hash_start),
                 "HashEnd": format!("{:016x}", pending.upper.hash_end), "Items": halves[1].len(),
                 "LoadedLsn": loaded_lsns[1]},
            ],
            "ParentDigest": expected.fingerprint(),
            "ChildrenDigestSum": children_digest.fingerprint(),
            "WritesWaitedMs": writes_waited_ms,
            "TookMs": started.elapsed().as_millis(),
        }))
    }

    /// Undoes a split that did not switch: the fence goes (writes resume on the parent), the
    /// children go, the catalog forgets the split.
    fn abandon_split(&self, table_name: &str, parent: &Partition, pending: &PendingSplit) {
        let unfenced = parent.write(FENCE_KEY.to_vec(), |current| {
            Ok((
                if current.is_some() {
                    WriteOp::Delete
                } else {
                    WriteOp::Nothing
                },
                (),
            ))
        });
        if let Err(error) = unfenced {
            tracing::error!(parent = pending.parent.id, error = %error.message, "removing a split's fence");
            return;
        }
        self.drop_replica(pending.lower);
        self.drop_replica(pending.upper);
        if let Err(error) = self.catalog.abort_split(table_name) {
            tracing::error!(table = table_name, error = %error, "forgetting an abandoned split");
        }
    }

    /// Splits a partition that has run near its ceiling for `split_hot_after_ms`, where its key
    /// heat says, on its own thread; reports (once per hot spell) a hot partition no split can
    /// help. Called by the ticker; one split at a time.
    pub(super) fn split_hot_partitions(self: &Arc<Self>) {
        let after_ms = self.options.admission.split_hot_after_ms;
        if after_ms == 0 || self.is_clustered() || self.splitting.load(Ordering::Acquire) {
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

    /// Abandons splits a stop left pending (none runs in this process): called by the ticker.
    pub(super) fn abandon_interrupted_splits(&self) {
        if self.is_clustered() || self.splitting.load(Ordering::Acquire) {
            return;
        }
        for table in self.catalog.tables() {
            let Some(pending) = table.pending_split else {
                continue;
            };
            let Ok(parent) = self.partition(pending.parent.id) else {
                continue;
            };
            if !parent.is_leader() {
                continue;
            }
            tracing::warn!(table = %table.name, parent = pending.parent.id, "abandoning a split a stop interrupted");
            self.abandon_split(&table.name, &parent, &pending);
        }
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

    use super::super::{Node, NodeOptions};
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
        let (acknowledged, report) = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..4)
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
            std::thread::sleep(std::time::Duration::from_millis(300));
            let report = node.split_partition("hot", parent, Some(boundary)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
            let acknowledged: Vec<String> = writers
                .into_iter()
                .flat_map(|writer| writer.join().unwrap())
                .collect();
            (acknowledged, report)
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
        assert!(moved >= 300, "{report}");
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
