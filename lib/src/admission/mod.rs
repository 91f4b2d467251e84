//! Admission control: which requests a table's capacity admits, and where.
//!
//! Three layers of token buckets over DynamoDB's capacity units (see `docs/admission.md`):
//!
//! - **Routers** ([`RouterAllowance`]): every node that receives a client request keeps a local
//!   bucket per table and kind, refilled at the rate global admission control granted it.
//! - **Global admission control** ([`GacService`], on the metadata group's leader): tracks each
//!   table's consumption against its provisioned rate (plus up to 300 s of unused capacity as
//!   burst credit) and shares the table's rate among the routers in proportion to their demand,
//!   so the table's total follows its provisioned rate however requests spread.
//! - **Partitions** ([`PartitionAdmission`]) on the replica that serves a request: a ceiling
//!   per partition (3,000 RCU, 1,000 WCU), the partition's allocated share, and burst credit
//!   spent only while the node ([`NodeCapacity`]) has spare capacity, so bursting never takes
//!   another tenant's capacity.
//! - **Key heat** ([`KeyHeat`]) per partition: where in its hash range the units go, and the
//!   boundary a split for consumption would cut at ([`SplitPlan`]), or why none would help.
//!
//! Everything here is plain synchronous code; time is a parameter (`now_ms`).

mod bucket;
mod gac;
mod heat;
mod partition;
mod router;

pub use bucket::TokenBucket;
pub use gac::{GacAsk, GacService, GacTableStats, Grant};
pub use heat::{KeyHeat, SplitPlan};
pub use partition::{Admitted, NodeCapacity, PartitionAdmission, PartitionShare, Throttled};
pub use router::{RouterAllowance, RouterAsk};

use serde::{Deserialize, Serialize};

use crate::catalog::{Billing, TableDef};

/// Reads or writes: each has its own units and buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Read capacity units (4 KB; half for eventually consistent reads).
    Read,
    /// Write capacity units (1 KB).
    Write,
}

impl Kind {
    /// `read` or `write`, as metrics label it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.pick("read", "write")
    }

    /// `read` for reads, `write` for writes: the one place a kind selects between its pair.
    pub fn pick<T>(self, read: T, write: T) -> T {
        match self {
            Kind::Read => read,
            Kind::Write => write,
        }
    }
}

/// How a node admits requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionMode {
    /// Global admission control: routers' buckets refilled by GAC bound each table's total;
    /// partitions are bounded by their ceilings and the node's spare capacity, not by an equal
    /// share of the table (the default).
    Gac,
    /// The scheme GAC replaced, kept to compare against: each partition may use only its equal
    /// share of the table's rate (plus burst credit); no table-level control.
    Static,
    /// Nothing is throttled for capacity.
    Off,
}

impl std::str::FromStr for AdmissionMode {
    type Err = String;

    /// Parses `gac`, `static` or `off`.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "gac" => Ok(AdmissionMode::Gac),
            "static" => Ok(AdmissionMode::Static),
            "off" => Ok(AdmissionMode::Off),
            other => Err(format!(
                "admission mode {other:?}: expected gac, static or off"
            )),
        }
    }
}

/// The numbers admission works with: the `[admission]` section of a node's configuration.
/// The defaults are DynamoDB's where DynamoDB documents one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdmissionLimits {
    /// How requests are admitted.
    pub mode: AdmissionMode,
    /// Most read units per second one partition serves (DynamoDB: 3,000). Also sets how many
    /// partitions a provisioned table starts with.
    pub partition_read_units: u64,
    /// Most write units per second one partition takes (DynamoDB: 1,000); see above.
    pub partition_write_units: u64,
    /// Read units per second the node serves before it has no spare capacity for bursts.
    pub node_read_units: u64,
    /// Write units per second the node takes before it has no spare capacity for bursts.
    pub node_write_units: u64,
    /// Unused capacity is kept as burst credit for this long (DynamoDB: 300 s).
    pub burst_seconds: u64,
    /// How often routers ask GAC for their rates.
    pub gac_interval_ms: u64,
    /// An on-demand table's rate before any traffic (DynamoDB: 12,000 RCU / 4,000 WCU), and its
    /// floor afterwards; above it, twice the previous peak.
    pub on_demand_read_units: u64,
    /// See [`AdmissionLimits::on_demand_read_units`].
    pub on_demand_write_units: u64,
    /// A partition that has served at least 80% of a ceiling for this long is split for
    /// consumption where its key heat says (0: never automatically).
    pub split_hot_after_ms: u64,
    /// Control-plane requests (CreateTable, UpdateTable, DeleteTable, DescribeTable,
    /// ListTables) a node accepts per second, with a burst of twice that; past it they get
    /// `ThrottlingException`. 0: unlimited.
    pub control_plane_per_second: u64,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            mode: AdmissionMode::Gac,
            partition_read_units: 3000,
            partition_write_units: 1000,
            node_read_units: 30_000,
            node_write_units: 10_000,
            burst_seconds: 300,
            gac_interval_ms: 2000,
            on_demand_read_units: 12_000,
            on_demand_write_units: 4000,
            split_hot_after_ms: 60_000,
            control_plane_per_second: 100,
        }
    }
}

impl AdmissionLimits {
    /// The per-partition ceiling for `kind`.
    #[must_use]
    pub fn partition_ceiling(&self, kind: Kind) -> f64 {
        kind.pick(self.partition_read_units, self.partition_write_units) as f64
    }

    /// The node's capacity for `kind`.
    #[must_use]
    pub fn node_units(&self, kind: Kind) -> f64 {
        kind.pick(self.node_read_units, self.node_write_units) as f64
    }

    /// The rate `table` is provisioned with for `kind`; `None` for an on-demand table.
    #[must_use]
    pub fn provisioned_rate(table: &TableDef, kind: Kind) -> Option<f64> {
        match table.billing {
            Billing::PayPerRequest => None,
            Billing::Provisioned {
                read_capacity_units,
                write_capacity_units,
            } => Some(kind.pick(read_capacity_units, write_capacity_units) as f64),
        }
    }

    /// An on-demand table's starting rate for `kind`.
    #[must_use]
    pub fn on_demand_units(&self, kind: Kind) -> f64 {
        kind.pick(self.on_demand_read_units, self.on_demand_write_units) as f64
    }

    /// What one partition of `table` is allocated: an equal share of the table's provisioned
    /// rate, never above the partition ceiling; on-demand partitions are allocated their
    /// ceiling. Under GAC a partition may go past its share while the node has spare capacity
    /// (the table's total is bounded by GAC); under the static scheme it may not.
    #[must_use]
    pub fn partition_share(&self, table: &TableDef) -> PartitionShare {
        let partitions = table.partitions.len().max(1) as f64;
        let share = |kind| {
            let ceiling = self.partition_ceiling(kind);
            Self::provisioned_rate(table, kind)
                .map_or(ceiling, |rate| (rate / partitions).min(ceiling))
        };
        PartitionShare {
            read_units: share(Kind::Read),
            write_units: share(Kind::Write),
            adaptive: self.mode == AdmissionMode::Gac,
        }
    }
}
