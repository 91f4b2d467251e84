//! The node's side of admission control: its router allowance, its partitions' buckets, the
//! node-level bucket and, on the metadata group's leader, global admission control.
//!
//! Router admission runs once per client request in [`Node::handle`]; partition admission on
//! the replica that serves the request (the leader for writes, any replica for reads). See
//! `docs/admission.md`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Value, json};

use super::{META_GROUP, Node, Partition};
use crate::admission::{
    AdmissionLimits, AdmissionMode, Admitted, GacAsk, GacService, Grant, KeyHeat, Kind,
    NodeCapacity, PartitionAdmission, RouterAllowance, RouterAsk, SplitPlan, TokenBucket,
};
use crate::catalog::{Billing, PartitionDef, TableDef};
use crate::protocol::{ApiError, ErrorCode};
use crate::replication::NodeId;

/// Everything admission keeps on one node, behind one lock (each use is a few arithmetic
/// operations).
pub(super) struct NodeAdmission {
    limits: AdmissionLimits,
    /// Routers of the cluster (every node routes): a table's floor is its rate over these.
    routers: usize,
    started: Instant,
    state: Mutex<AdmissionState>,
}

struct AdmissionState {
    node: NodeCapacity,
    partitions: HashMap<u64, PartitionAdmission>,
    /// Where each partition's units go in its hash range (reads and writes together).
    heat: HashMap<u64, KeyHeat>,
    /// How long each partition has run near a ceiling, for the automatic split.
    hot: HashMap<u64, HotTracking>,
    /// Control-plane requests this node accepts (`None`: unlimited).
    control_plane: Option<TokenBucket>,
    router: RouterAllowance,
    gac: GacService,
}

/// A partition's consumption at its last sample, and since when it has run hot.
struct HotTracking {
    sampled_ms: u64,
    consumed: [f64; 2],
    hot_since_ms: Option<u64>,
    /// A split was refused (one hot key) during this hot spell and has been reported.
    refusal_reported: bool,
}

/// How often a partition's consumption rate is sampled for the automatic split.
const HOT_SAMPLE_MS: u64 = 1000;
/// The share of a ceiling at which a partition counts as hot.
const HOT_SHARE: f64 = 0.8;

/// The partition-key hash a request touched, if it touched one key (not a Scan).
#[derive(Clone, Copy, Debug)]
pub(super) struct KeyHash(pub(super) Option<u64>);

/// Key heat covers the last one to two windows of this length.
const HEAT_WINDOW_MS: u64 = 60_000;

/// The throttling error DynamoDB returns for data-plane requests over capacity.
fn throttled(table: &TableDef) -> ApiError {
    let message = if table.billing != Billing::PayPerRequest {
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."
    } else {
        "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly."
    };
    ApiError::new(ErrorCode::ProvisionedThroughputExceededException, message)
}

/// DynamoDB's control-plane operations among those ddb serves.
fn is_control_plane(operation: &str) -> bool {
    matches!(
        operation,
        "CreateTable" | "UpdateTable" | "DeleteTable" | "DescribeTable" | "ListTables"
    )
}

/// Which kind of capacity `operation` consumes, if any.
pub(super) fn operation_kind(operation: &str) -> Option<Kind> {
    match operation {
        "GetItem" | "Query" | "Scan" | "BatchGetItem" => Some(Kind::Read),
        "PutItem" | "DeleteItem" | "UpdateItem" | "BatchWriteItem" => Some(Kind::Write),
        _ => None,
    }
}

/// The tables a request names: `TableName`, or the keys of a batch's `RequestItems`.
fn named_tables(body: &Value) -> Vec<&str> {
    if let Some(name) = body.get("TableName").and_then(Value::as_str) {
        return vec![name];
    }
    body.get("RequestItems")
        .and_then(Value::as_object)
        .map(|items| items.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Capacity units per table in a response's `ConsumedCapacity` (an object or a list).
fn consumed_units(response: &Value) -> Vec<(String, f64)> {
    let one = |entry: &Value| {
        Some((
            entry.get("TableName")?.as_str()?.to_string(),
            entry.get("CapacityUnits")?.as_f64()?,
        ))
    };
    match response.get("ConsumedCapacity") {
        Some(Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(entry) => one(entry).into_iter().collect(),
        None => Vec::new(),
    }
}

impl NodeAdmission {
    pub(super) fn new(limits: AdmissionLimits, routers: usize) -> Self {
        let started = Instant::now();
        NodeAdmission {
            state: Mutex::new(AdmissionState {
                node: NodeCapacity::new(&limits, 0),
                partitions: HashMap::new(),
                heat: HashMap::new(),
                hot: HashMap::new(),
                control_plane: (limits.control_plane_per_second > 0).then(|| {
                    let rate = limits.control_plane_per_second as f64;
                    TokenBucket::full(rate, 2.0 * rate, 0)
                }),
                router: RouterAllowance::new(),
                gac: GacService::new(limits.clone()),
            }),
            limits,
            routers: routers.max(1),
            started,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, AdmissionState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    /// A table's rate for `kind` divided among the routers: what a router admits without GAC.
    fn floor(&self, table: &TableDef, kind: Kind) -> f64 {
        AdmissionLimits::provisioned_rate(table, kind)
            .unwrap_or_else(|| self.limits.on_demand_units(kind))
            / self.routers as f64
    }

    /// Admits one control-plane request, or refuses it with DynamoDB's `ThrottlingException`
    /// when the node's control-plane bucket is empty (any mode but `off`).
    fn admit_control_plane(&self) -> Result<(), ApiError> {
        if self.limits.mode == AdmissionMode::Off {
            return Ok(());
        }
        let now = self.now_ms();
        let mut state = self.lock();
        let Some(bucket) = state.control_plane.as_mut() else {
            return Ok(());
        };
        if bucket.balance(now) < 1.0 {
            return Err(ApiError::new(
                ErrorCode::ThrottlingException,
                "Rate of requests exceeds the allowed throughput.",
            ));
        }
        bucket.take(1.0);
        Ok(())
    }

    /// Router admission of a request of `kind` on `tables`: refused if any table's local
    /// bucket is empty. Only under GAC.
    fn admit_router(
        &self,
        tables: &[std::sync::Arc<TableDef>],
        kind: Kind,
    ) -> Result<(), ApiError> {
        if self.limits.mode != AdmissionMode::Gac {
            return Ok(());
        }
        let now = self.now_ms();
        let mut state = self.lock();
        for table in tables {
            let floor = self.floor(table, kind);
            if !state
                .router
                .admit(table.id, kind, floor, self.limits.gac_interval_ms, now)
            {
                return Err(throttled(table));
            }
        }
        Ok(())
    }

    fn charge_router(&self, table: &TableDef, kind: Kind, units: f64) {
        if self.limits.mode != AdmissionMode::Gac {
            return;
        }
        let floor = self.floor(table, kind);
        let now = self.now_ms();
        self.lock().router.charge(table.id, kind, floor, units, now);
    }

    /// Partition admission on the replica serving the request.
    pub(super) fn admit_partition(
        &self,
        table: &TableDef,
        partition_id: u64,
        kind: Kind,
    ) -> Result<Option<Admitted>, ApiError> {
        if self.limits.mode == AdmissionMode::Off {
            return Ok(None);
        }
        let now = self.now_ms();
        let share = self.limits.partition_share(table);
        let mut state = self.lock();
        let AdmissionState {
            node, partitions, ..
        } = &mut *state;
        let partition = partitions
            .entry(partition_id)
            .or_insert_with(|| PartitionAdmission::new(share, &self.limits, now));
        partition.reshape(share, &self.limits, now);
        partition
            .admit(kind, node, now)
            .map(Some)
            .map_err(|_| throttled(table))
    }

    /// Charges `units` to a partition that admitted a request as `how`, and notes them against
    /// the request's partition-key hash (when it had one) in the partition's key heat.
    pub(super) fn charge_partition(
        &self,
        def: &PartitionDef,
        kind: Kind,
        how: Option<Admitted>,
        units: f64,
        hash: KeyHash,
    ) {
        let Some(how) = how else {
            return;
        };
        let now = self.now_ms();
        let mut state = self.lock();
        let AdmissionState {
            node,
            partitions,
            heat,
            ..
        } = &mut *state;
        if let Some(partition) = partitions.get_mut(&def.id) {
            partition.charge(kind, how, units, node, now);
        }
        if let KeyHash(Some(hash)) = hash {
            heat.entry(def.id)
                .or_insert_with(|| KeyHeat::new(def.hash_start, def.hash_end, HEAT_WINDOW_MS, now))
                .record(hash, units, now);
        }
    }

    /// Partitions whose read or write rate has stayed at 80% of the partition ceiling or more,
    /// sampled every second, for at least `after_ms`, with how long: candidates for a split.
    /// Throttling alone does not count: a partition throttled at its share of a table's rate,
    /// or on a node without spare capacity, gains nothing from a split (its children would
    /// share the same rate, on the same kind of node), and splitting on it would never end.
    pub(super) fn sustained_hot(&self, after_ms: u64) -> Vec<(u64, u64)> {
        let now = self.now_ms();
        let ceilings = [
            self.limits.partition_ceiling(Kind::Read),
            self.limits.partition_ceiling(Kind::Write),
        ];
        let mut state = self.lock();
        let AdmissionState {
            partitions, hot, ..
        } = &mut *state;
        let mut out = Vec::new();
        for (id, partition) in partitions.iter_mut() {
            let consumed = [
                partition.stats(Kind::Read, now).consumed_units,
                partition.stats(Kind::Write, now).consumed_units,
            ];
            let tracking = hot.entry(*id).or_insert(HotTracking {
                sampled_ms: now,
                consumed,
                hot_since_ms: None,
                refusal_reported: false,
            });
            let elapsed_ms = now.saturating_sub(tracking.sampled_ms);
            if elapsed_ms >= HOT_SAMPLE_MS {
                let is_hot = (0..2).any(|kind| {
                    let rate =
                        (consumed[kind] - tracking.consumed[kind]) * 1000.0 / elapsed_ms as f64;
                    rate >= HOT_SHARE * ceilings[kind]
                });
                tracking.hot_since_ms = if is_hot {
                    Some(tracking.hot_since_ms.unwrap_or(tracking.sampled_ms))
                } else {
                    tracking.refusal_reported = false;
                    None
                };
                tracking.sampled_ms = now;
                tracking.consumed = consumed;
            }
            if let Some(since) = tracking.hot_since_ms
                && now.saturating_sub(since) >= after_ms
            {
                out.push((*id, now - since));
            }
        }
        out
    }

    /// Starts partition `id`'s hot spell afresh (a split of it was started), or marks a refused
    /// split as reported; answers whether it had been reported before.
    pub(super) fn note_hot_handled(&self, id: u64, refused: bool) -> bool {
        let mut state = self.lock();
        let Some(tracking) = state.hot.get_mut(&id) else {
            return false;
        };
        if refused {
            return std::mem::replace(&mut tracking.refusal_reported, true);
        }
        tracking.hot_since_ms = None;
        false
    }

    /// Where partition `partition_id`'s key heat would have it split now.
    pub(super) fn split_plan(&self, partition_id: u64) -> SplitPlan {
        let now = self.now_ms();
        plan_of(&mut self.lock().heat, partition_id, now)
    }

    /// Forgets partitions this node no longer holds and tables that no longer exist.
    fn retain(&self, partitions: &[u64], tables: &[u64]) {
        let mut state = self.lock();
        state.partitions.retain(|id, _| partitions.contains(id));
        state.heat.retain(|id, _| partitions.contains(id));
        state.hot.retain(|id, _| partitions.contains(id));
        state.router.retain_tables(|id| tables.contains(&id));
        state.gac.retain_tables(|id| tables.contains(&id));
    }
}

impl Node {
    /// Runs a client's request through router admission: refused at once when a table it
    /// names has no capacity left at this router; otherwise run, and what it consumed charged
    /// (the response's `ConsumedCapacity`, asked for on the client's behalf and removed again
    /// when the client did not ask).
    pub(super) fn handle_admitted(
        &self,
        operation: &str,
        mut body: Value,
        run: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let admission = &self.admission;
        if is_control_plane(operation) {
            admission.admit_control_plane()?;
            return run(&body);
        }
        let kind = operation_kind(operation);
        let Some(kind) =
            kind.filter(|_| admission.limits().mode == AdmissionMode::Gac && body.is_object())
        else {
            return run(&body);
        };
        let tables: Vec<std::sync::Arc<TableDef>> = named_tables(&body)
            .into_iter()
            .filter_map(|name| self.catalog.table(name))
            .collect();
        if tables.is_empty() {
            return run(&body);
        }
        admission.admit_router(&tables, kind)?;
        // Absent or NONE: asked for here and removed from the answer. Anything else is the
        // client's own (an invalid value must still get the client its validation error).
        let asked = match body.get("ReturnConsumedCapacity") {
            None | Some(Value::Null) => false,
            Some(value) => value.as_str() != Some("NONE"),
        };
        if !asked {
            body["ReturnConsumedCapacity"] = json!("TOTAL");
        }
        let result = run(&body);
        match result {
            Ok(mut response) => {
                for (name, units) in consumed_units(&response) {
                    if let Some(table) = tables.iter().find(|table| table.name == name) {
                        admission.charge_router(table, kind, units);
                    }
                }
                if !asked && let Some(object) = response.as_object_mut() {
                    object.remove("ConsumedCapacity");
                }
                Ok(response)
            }
            Err(error) => {
                // A failed condition still read the item: DynamoDB charges it.
                if error.code == ErrorCode::ConditionalCheckFailedException {
                    for table in &tables {
                        admission.charge_router(table, kind, 1.0);
                    }
                }
                Err(error)
            }
        }
    }

    /// Partition admission of a request of `kind` on this node's replica of `partition`: a
    /// read served here, or a write from within [`Partition::write`]'s `decide`, which runs on
    /// the leader only, under the group's lock (a replica that does not lead never admits a
    /// write: it goes to the leader, whose node admits it).
    pub(super) fn admit(
        &self,
        table: &TableDef,
        partition: &Partition,
        kind: Kind,
    ) -> Result<Option<Admitted>, ApiError> {
        self.admission
            .admit_partition(table, partition.def().id, kind)
    }

    /// Charges what a request admitted by [`Node::admit`] consumed.
    pub(super) fn charge(
        &self,
        partition: &Partition,
        kind: Kind,
        how: Option<Admitted>,
        units: f64,
        hash: KeyHash,
    ) {
        self.admission
            .charge_partition(partition.def(), kind, how, units, hash);
    }

    /// On the metadata group's leader (or a single node): grants `router` its rates.
    pub fn gac_grant(&self, router: NodeId, asks: &[RouterAsk]) -> Result<Vec<Grant>, ApiError> {
        if self.is_clustered() {
            let meta = self.partition(META_GROUP)?;
            if !meta.is_leader() {
                return Err(ApiError::not_leader(meta.with_core(|core| core.leader())));
            }
        }
        let tables = self.catalog.tables();
        let asks: Vec<GacAsk> = asks
            .iter()
            .map(|ask| GacAsk {
                ask: *ask,
                provisioned: match tables.iter().find(|table| table.id == ask.table_id) {
                    Some(table) => AdmissionLimits::provisioned_rate(table, ask.kind),
                    // A table GAC does not know (yet): nothing beyond the router's floor.
                    None => Some(0.0),
                },
            })
            .collect();
        let now = self.admission.now_ms();
        Ok(self.admission.lock().gac.grant(router, &asks, now))
    }

    /// Asks GAC for this router's rates and installs them; the admission thread calls it
    /// every GAC interval. When GAC cannot be reached the router keeps its decaying rates.
    pub fn refresh_allowances(&self) {
        let admission = &self.admission;
        let partitions: Vec<u64> = self.partitions_read().keys().copied().collect();
        let tables: Vec<u64> = self.catalog.tables().iter().map(|t| t.id).collect();
        admission.retain(&partitions, &tables);
        if admission.limits().mode != AdmissionMode::Gac {
            return;
        }
        let now = admission.now_ms();
        let asks = admission.lock().router.asks(now);
        if asks.is_empty() {
            return;
        }
        let me = self.options.node_id;
        let granted = if self.is_clustered() {
            self.ask_gac(me, &asks)
        } else {
            self.gac_grant(me, &asks)
        };
        match granted {
            Ok(grants) if grants.len() == asks.len() => {
                let now = admission.now_ms();
                let mut state = admission.lock();
                for (ask, grant) in asks.iter().zip(grants) {
                    state.router.grant(
                        ask.table_id,
                        ask.kind,
                        grant,
                        admission.limits().gac_interval_ms,
                        now,
                    );
                }
            }
            Ok(_) => tracing::warn!("GAC answered a different number of grants than asked"),
            Err(error) => tracing::debug!(error = %error.message, "GAC not reached; rates decay"),
        }
    }

    /// Sends `asks` to the metadata group's leader: this node's own metadata replica if it
    /// leads, else the leader it knows, else each metadata member in turn.
    fn ask_gac(&self, me: NodeId, asks: &[RouterAsk]) -> Result<Vec<Grant>, ApiError> {
        let known_leader = self
            .partitions_read()
            .get(&META_GROUP)
            .and_then(|meta| meta.with_core(|core| core.leader()));
        if known_leader == Some(me) {
            return self.gac_grant(me, asks);
        }
        let mut candidates: Vec<NodeId> = known_leader.into_iter().collect();
        candidates.extend(self.membership_of(META_GROUP).ids().filter(|id| *id != me));
        candidates.dedup();
        let mut last = ApiError::new(ErrorCode::ServiceUnavailable, "no metadata leader known");
        for candidate in candidates {
            match self.network.gac_grant(candidate, me, asks) {
                Ok(rates) => return Ok(rates),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Where every table's capacity stands as this node sees it (router, GAC if it leads the
    /// metadata group, the partitions it serves), for `/admission/status` and `ddbctl`.
    pub fn admission_status(&self) -> Value {
        let admission = &self.admission;
        let limits = admission.limits();
        let now = admission.now_ms();
        let tables = self.catalog.tables();
        let leads: HashMap<u64, bool> = self
            .partitions_read()
            .iter()
            .map(|(id, partition)| (*id, partition.is_leader()))
            .collect();
        let mut state = admission.lock();
        let kinds = [Kind::Read, Kind::Write];
        let table_status: Vec<Value> = tables
            .iter()
            .map(|table| {
                let mut entry = json!({"table": table.name, "table_id": table.id});
                for kind in kinds {
                    let floor = admission.floor(table, kind);
                    let router =
                        state
                            .router
                            .stats(table.id, kind, floor, limits.gac_interval_ms, now);
                    entry[kind.as_str()] = json!({
                        "provisioned": AdmissionLimits::provisioned_rate(table, kind),
                        "router": router,
                        "gac": state.gac.stats(table.id, kind),
                    });
                }
                entry
            })
            .collect();
        let AdmissionState {
            node,
            partitions,
            heat,
            ..
        } = &mut *state;
        let mut partition_status: Vec<Value> = Vec::new();
        for table in tables.iter() {
            for def in &table.partitions {
                let Some(partition) = partitions.get_mut(&def.id) else {
                    continue;
                };
                let split = plan_of(heat, def.id, now);
                partition_status.push(json!({
                    "table": table.name,
                    "partition_id": def.id,
                    "hash_start": format!("{:016x}", def.hash_start),
                    "hash_end": format!("{:016x}", def.hash_end),
                    "leader": leads.get(&def.id).copied().unwrap_or(false),
                    "read": partition.stats(Kind::Read, now),
                    "write": partition.stats(Kind::Write, now),
                    "split": split_json(&split),
                }));
            }
        }
        json!({
            "node_id": self.options.node_id,
            "mode": limits.mode,
            "node": {
                "read_units": limits.node_read_units,
                "write_units": limits.node_write_units,
                "read_balance": node.balance(Kind::Read, now),
                "write_balance": node.balance(Kind::Write, now),
            },
            "tables": table_status,
            "partitions": partition_status,
        })
    }
}

/// Where partition `id`'s key heat would split it (no heat yet: too little traffic).
fn plan_of(heat: &mut HashMap<u64, KeyHeat>, id: u64, now_ms: u64) -> SplitPlan {
    heat.get_mut(&id)
        .map_or(SplitPlan::TooLittleTraffic { units: 0.0 }, |heat| {
            heat.plan(now_ms)
        })
}

/// A split plan as `/admission/status` shows it: hashes in hex, as the partition ranges are.
fn split_json(plan: &SplitPlan) -> Value {
    let mut value = serde_json::to_value(plan).unwrap_or(Value::Null);
    for field in ["boundary", "hash"] {
        if let Some(hash) = value.get(field).and_then(Value::as_u64) {
            value[field] = Value::String(format!("{hash:016x}"));
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumed_capacity_is_read_from_objects_and_lists() {
        let one = json!({"ConsumedCapacity": {"TableName": "a", "CapacityUnits": 2.5}});
        assert_eq!(consumed_units(&one), vec![("a".to_string(), 2.5)]);
        let many = json!({"ConsumedCapacity": [
            {"TableName": "a", "CapacityUnits": 1.0},
            {"TableName": "b", "CapacityUnits": 3.0},
        ]});
        assert_eq!(consumed_units(&many).len(), 2);
        assert!(consumed_units(&json!({})).is_empty());
    }

    #[test]
    fn consumed_capacity_is_shown_only_when_asked_and_bad_values_stay_errors() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path(), super::super::NodeOptions::default()).unwrap();
        node.handle(
            "CreateTable",
            json!({"TableName": "shown", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}]}),
        )
        .unwrap();
        let put = |capacity: Option<Value>| {
            let mut body = json!({"TableName": "shown", "Item": {"k": {"S": "a"}}});
            if let Some(capacity) = capacity {
                body["ReturnConsumedCapacity"] = capacity;
            }
            node.handle("PutItem", body)
        };
        assert!(put(None).unwrap().get("ConsumedCapacity").is_none());
        assert!(
            put(Some(json!("NONE")))
                .unwrap()
                .get("ConsumedCapacity")
                .is_none()
        );
        let total = put(Some(json!("TOTAL"))).unwrap();
        assert_eq!(total["ConsumedCapacity"]["CapacityUnits"], 1.0);
        // An invalid value is the client's error, as without admission; not overwritten.
        for bad in [json!(5), json!("total")] {
            let error = put(Some(bad.clone())).unwrap_err();
            assert!(
                matches!(
                    error.code,
                    ErrorCode::ValidationException | ErrorCode::SerializationException
                ),
                "{bad}: {error:?}"
            );
        }
        // What was written is counted at the router all the same.
        let status = node.admission_status();
        let router = &status["tables"][0]["write"]["router"];
        assert_eq!(router["consumed_units"], 3.0, "{status}");
    }

    #[test]
    fn control_plane_requests_past_the_rate_get_throttling_exception() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = super::super::NodeOptions::default();
        options.admission.control_plane_per_second = 5;
        let node = Node::open(dir.path(), options).unwrap();
        // A burst of twice the rate passes; the next ones are throttled, not served.
        let answers: Vec<_> = (0..14)
            .map(|_| node.handle("ListTables", json!({})))
            .collect();
        let throttled: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
        // At least one (a slow machine refills a token or two meanwhile), at most four.
        assert!(!throttled.is_empty(), "{answers:?}");
        assert!(throttled.len() <= 4, "{answers:?}");
        for error in throttled {
            assert_eq!(error.code, ErrorCode::ThrottlingException);
            assert_eq!(
                error.message,
                "Rate of requests exceeds the allowed throughput."
            );
        }
        // Data-plane requests do not draw on it, and the bucket refills.
        std::thread::sleep(std::time::Duration::from_millis(450));
        node.handle("ListTables", json!({})).unwrap();
        node.handle("ListTables", json!({})).unwrap();
    }

    #[test]
    fn batches_name_every_table() {
        let batch = json!({"RequestItems": {"a": [], "b": []}});
        assert_eq!(named_tables(&batch), vec!["a", "b"]);
        assert_eq!(named_tables(&json!({"TableName": "t"})), vec!["t"]);
        assert_eq!(operation_kind("Scan"), Some(Kind::Read));
        assert_eq!(operation_kind("UpdateItem"), Some(Kind::Write));
        assert_eq!(operation_kind("CreateTable"), None);
    }
}
