//! Where a table's capacity goes: every node's `GET /admission/status`, merged for one table
//! (`ddbctl table capacity`, and the capacity lines of `ddbctl table describe`).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::cluster_status::{NodeReport, fetch_status, http_get};
use crate::output::table;

/// One table's capacity across the cluster.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TableCapacity {
    pub table: String,
    /// Per router (node) and kind: the rate it admits at, consumed units, throttled requests.
    pub routers: Vec<RouterRow>,
    /// GAC's view per kind, from the node that runs it (the metadata group's leader).
    pub gac: Vec<GacRow>,
    /// Per partition replica and kind.
    pub partitions: Vec<PartitionRow>,
    /// Per partition replica: where a split for consumption would cut, from the key heat that
    /// replica observed (`verdict` `split`, `one_hot_key` or `too_little_traffic`).
    pub splits: Vec<SplitRow>,
    /// Nodes that gave no admission status, and why.
    pub unreachable: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RouterRow {
    pub node: u64,
    pub kind: String,
    pub rate_units: f64,
    pub granted: bool,
    pub consumed_units: f64,
    pub throttled: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GacRow {
    pub node: u64,
    pub kind: String,
    pub provisioned: Option<f64>,
    pub rate_units: f64,
    pub burst_balance: f64,
    pub demand_units: f64,
    pub routers: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PartitionRow {
    pub partition_id: u64,
    pub node: u64,
    pub leader: bool,
    pub kind: String,
    pub allocated_units: f64,
    pub consumed_units: f64,
    pub throttled: u64,
    pub burst_balance: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SplitRow {
    pub partition_id: u64,
    pub node: u64,
    pub hash_start: String,
    pub hash_end: String,
    /// The node's plan as `/admission/status` gives it.
    pub plan: Value,
}

impl TableCapacity {
    /// Requests throttled anywhere (routers and partitions), by kind.
    pub fn throttled(&self, kind: &str) -> u64 {
        let routers: u64 = self
            .routers
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.throttled)
            .sum();
        let partitions: u64 = self
            .partitions
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.throttled)
            .sum();
        routers + partitions
    }

    /// Units consumed through every router, by kind.
    pub fn consumed(&self, kind: &str) -> f64 {
        self.routers
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.consumed_units)
            .sum()
    }
}

/// The API address of every node `endpoint` knows (itself alone when it is not clustered).
fn node_apis(endpoint: &str, timeout: Duration) -> Vec<String> {
    match fetch_status(endpoint, timeout) {
        NodeReport::Reporting(status) if !status.nodes.is_empty() => {
            status.nodes.into_iter().map(|node| node.api).collect()
        }
        _ => vec![endpoint.to_string()],
    }
}

/// Gathers `name`'s capacity from every node of the cluster `endpoint` belongs to.
pub fn gather(endpoint: &str, name: &str, timeout: Duration) -> TableCapacity {
    let mut capacity = TableCapacity {
        table: name.to_string(),
        ..TableCapacity::default()
    };
    for api in node_apis(endpoint, timeout) {
        match http_get(&api, "/admission/status", timeout) {
            Ok((200, body)) => match serde_json::from_str::<Value>(&body) {
                Ok(status) => add_node(&mut capacity, &status),
                Err(e) => capacity.unreachable.push(format!("{api}: {e}")),
            },
            Ok((code, _)) => capacity
                .unreachable
                .push(format!("{api}: /admission/status answers HTTP {code}")),
            Err(why) => capacity.unreachable.push(format!("{api}: {why}")),
        }
    }
    capacity
        .partitions
        .sort_by(|a, b| (a.partition_id, &a.kind, a.node).cmp(&(b.partition_id, &b.kind, b.node)));
    capacity
}

fn add_node(capacity: &mut TableCapacity, status: &Value) {
    let node = status.get("node_id").and_then(Value::as_u64).unwrap_or(0);
    let tables = status.get("tables").and_then(Value::as_array);
    for table in tables.into_iter().flatten() {
        if table.get("table").and_then(Value::as_str) != Some(capacity.table.as_str()) {
            continue;
        }
        for kind in ["read", "write"] {
            let router = &table[kind]["router"];
            capacity.routers.push(RouterRow {
                node,
                kind: kind.to_string(),
                rate_units: number(router, "rate_units"),
                granted: router
                    .get("granted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                consumed_units: number(router, "consumed_units"),
                throttled: count(router, "throttled"),
            });
            let gac = &table[kind]["gac"];
            if !gac.is_null() && count(gac, "routers") > 0 {
                capacity.gac.push(GacRow {
                    node,
                    kind: kind.to_string(),
                    provisioned: table[kind]["provisioned"].as_f64(),
                    rate_units: number(gac, "rate_units"),
                    burst_balance: number(gac, "burst_balance"),
                    demand_units: number(gac, "demand_units"),
                    routers: count(gac, "routers"),
                });
            }
        }
    }
    let partitions = status.get("partitions").and_then(Value::as_array);
    for partition in partitions.into_iter().flatten() {
        if partition.get("table").and_then(Value::as_str) != Some(capacity.table.as_str()) {
            continue;
        }
        if let Some(plan) = partition.get("split") {
            capacity.splits.push(SplitRow {
                partition_id: count(partition, "partition_id"),
                node,
                hash_start: text(partition, "hash_start"),
                hash_end: text(partition, "hash_end"),
                plan: plan.clone(),
            });
        }
        for kind in ["read", "write"] {
            let stats = &partition[kind];
            capacity.partitions.push(PartitionRow {
                partition_id: count(partition, "partition_id"),
                node,
                leader: partition
                    .get("leader")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                kind: kind.to_string(),
                allocated_units: number(stats, "allocated_units"),
                consumed_units: number(stats, "consumed_units"),
                throttled: count(stats, "throttled"),
                burst_balance: number(stats, "burst_balance"),
            });
        }
    }
}

/// The tables `ddbctl table capacity` prints.
pub fn render(capacity: &TableCapacity) -> Vec<comfy_table::Table> {
    let mut routers = table(&[
        "router",
        "kind",
        "admits units/s",
        "from",
        "consumed",
        "throttled",
    ]);
    for row in &capacity.routers {
        routers.add_row(vec![
            format!("node {}", row.node),
            row.kind.clone(),
            format!("{:.1}", row.rate_units),
            if row.granted {
                "GAC grant"
            } else {
                "floor/decaying"
            }
            .to_string(),
            format!("{:.1}", row.consumed_units),
            row.throttled.to_string(),
        ]);
    }
    let mut gac = table(&[
        "GAC (on node)",
        "kind",
        "provisioned",
        "rate",
        "burst credit",
        "demand units/s",
        "routers",
    ]);
    for row in &capacity.gac {
        gac.add_row(vec![
            format!("node {}", row.node),
            row.kind.clone(),
            row.provisioned
                .map_or_else(|| "on demand".to_string(), |p| format!("{p:.0}")),
            format!("{:.1}", row.rate_units),
            format!("{:.0}", row.burst_balance),
            format!("{:.1}", row.demand_units),
            row.routers.to_string(),
        ]);
    }
    let mut partitions = table(&[
        "partition",
        "replica",
        "kind",
        "allocated units/s",
        "consumed",
        "throttled",
        "burst credit",
    ]);
    for row in capacity
        .partitions
        .iter()
        .filter(|p| p.consumed_units > 0.0 || p.throttled > 0)
    {
        partitions.add_row(vec![
            row.partition_id.to_string(),
            format!(
                "node {}{}",
                row.node,
                if row.leader { " (leader)" } else { "" }
            ),
            row.kind.clone(),
            format!("{:.1}", row.allocated_units),
            format!("{:.1}", row.consumed_units),
            row.throttled.to_string(),
            format!("{:.0}", row.burst_balance),
        ]);
    }
    let mut splits = table(&[
        "partition",
        "replica",
        "hash range",
        "units seen",
        "split for consumption",
    ]);
    for row in capacity
        .splits
        .iter()
        .filter(|row| number(&row.plan, "units") > 0.0)
    {
        splits.add_row(vec![
            row.partition_id.to_string(),
            format!("node {}", row.node),
            format!("{}..{}", row.hash_start, row.hash_end),
            format!("{:.0}", number(&row.plan, "units")),
            describe_plan(&row.plan),
        ]);
    }
    let mut out = vec![routers, gac, partitions, splits];
    if !capacity.unreachable.is_empty() {
        let mut missing = table(&["no admission status from"]);
        for why in &capacity.unreachable {
            missing.add_row(vec![why.clone()]);
        }
        out.push(missing);
    }
    out
}

/// One line for a partition's split plan.
fn describe_plan(plan: &Value) -> String {
    let percent = |field: &str| number(plan, field) * 100.0;
    match plan.get("verdict").and_then(Value::as_str) {
        Some("split") => format!(
            "cut at {}: {:.0}% / {:.0}% of units (a middle cut: {:.0}% on one side)",
            text(plan, "boundary"),
            percent("lower_share"),
            percent("upper_share"),
            percent("middle_busier_share"),
        ),
        Some("one_hot_key") => format!(
            "cannot help: one partition key (hash {}) has {:.0}% of units",
            text(plan, "hash"),
            percent("share"),
        ),
        _ => "too little traffic to choose".to_string(),
    }
}

fn number(value: &Value, field: &str) -> f64 {
    value.get(field).and_then(Value::as_f64).unwrap_or(0.0)
}

fn count(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

fn text(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
}
