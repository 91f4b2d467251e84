//! Table definitions: key schema, billing, and the partitions that cover the hash space.

use serde::{Deserialize, Serialize};

use crate::item::{AttributeValue, Item};
use crate::protocol::ApiError;

/// The type of a key attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarType {
    /// String.
    S,
    /// Number.
    N,
    /// Binary.
    B,
}

impl ScalarType {
    /// Parses `S`, `N` or `B`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    /// The DynamoDB type letter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    /// True if `value` is of this type.
    #[must_use]
    pub fn matches(self, value: &AttributeValue) -> bool {
        matches!(
            (self, value),
            (ScalarType::S, AttributeValue::S(_))
                | (ScalarType::N, AttributeValue::N(_))
                | (ScalarType::B, AttributeValue::B(_))
        )
    }
}

/// One key attribute: its name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    pub scalar_type: ScalarType,
}

/// A table's primary key: a partition (HASH) key and an optional sort (RANGE) key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    /// The partition key.
    pub partition_key: KeyAttribute,
    /// The sort key, if the table has one.
    pub sort_key: Option<KeyAttribute>,
}

/// How a table is billed and how much throughput it is provisioned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Billing {
    /// On-demand: capacity follows traffic.
    PayPerRequest,
    /// Provisioned read and write capacity units.
    Provisioned {
        /// Read capacity units per second.
        read_capacity_units: u64,
        /// Write capacity units per second.
        write_capacity_units: u64,
    },
}

/// One partition of a table: the contiguous range of partition-key hashes it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDef {
    /// Node-wide unique partition id; names its WAL and replica directories.
    pub id: u64,
    /// First hash owned (inclusive).
    pub hash_start: u64,
    /// Last hash owned (inclusive).
    pub hash_end: u64,
}

/// Lifecycle state of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    /// Serving.
    Active,
    /// Being deleted; its data is going away.
    Deleting,
}

impl TableStatus {
    /// DynamoDB's name for the status.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Active => "ACTIVE",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// Everything the node knows about a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Node-wide unique table id: the first 8 bytes of every item key of the table.
    pub id: u64,
    /// Table name.
    pub name: String,
    /// Primary key.
    pub key_schema: KeySchema,
    /// The attribute definitions given at creation (name and type), in the order given.
    pub attribute_definitions: Vec<KeyAttribute>,
    /// Billing mode and provisioned throughput.
    pub billing: Billing,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Partitions in hash order; together they cover `0..=u64::MAX` without overlap.
    pub partitions: Vec<PartitionDef>,
    /// Lifecycle state.
    pub status: TableStatus,
    /// Splits for consumption, oldest first: how today's partitions descend from earlier ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitRecord>,
    /// A split begun and not finished: its children exist but own nothing yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_split: Option<PendingSplit>,
}

/// A split in progress: the parent and the two children that will replace it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSplit {
    /// The partition being split.
    pub parent: PartitionDef,
    /// The child owning `parent.hash_start..boundary`.
    pub lower: PartitionDef,
    /// The child owning `boundary..=parent.hash_end`.
    pub upper: PartitionDef,
}

/// One finished split: the lineage the archive and a restore follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// The partition that was split; it owns nothing after `switched_at_ms`.
    pub parent: PartitionDef,
    /// The lower child.
    pub lower: PartitionDef,
    /// The upper child.
    pub upper: PartitionDef,
    /// The parent's LSN of the fence: its state at that LSN is what the children hold.
    pub fence_lsn: u64,
    /// The children's LSN after their copy of that state (lower, upper).
    pub loaded_lsns: [u64; 2],
    /// The parent's digest at the fence (its identity), which the children's digests added
    /// up to before the switch.
    pub parent_digest: String,
    /// When the catalog switched from the parent to the children (ms since the Unix epoch).
    pub switched_at_ms: u64,
}

impl TableDef {
    /// The partition that owns partition-key hash `hash`.
    #[must_use]
    pub fn partition_for_hash(&self, hash: u64) -> Option<&PartitionDef> {
        self.partitions
            .iter()
            .find(|p| p.hash_start <= hash && hash <= p.hash_end)
    }

    /// Names of the key attributes (partition key first).
    #[must_use]
    pub fn key_names(&self) -> Vec<&str> {
        let mut names = vec![self.key_schema.partition_key.name.as_str()];
        if let Some(sort) = &self.key_schema.sort_key {
            names.push(sort.name.as_str());
        }
        names
    }

    /// Extracts and checks the primary key of `item` (a full item or a `Key` map): the key
    /// attributes must be present with the schema's types and DynamoDB's size limits. With
    /// `exact`, no other attribute may be present (a `Key` parameter).
    pub fn key_of(
        &self,
        item: &Item,
        exact: bool,
    ) -> Result<(AttributeValue, Option<AttributeValue>), ApiError> {
        let schema = &self.key_schema;
        if exact {
            let expected = self.key_names().len();
            if item.len() != expected {
                return Err(ApiError::validation(
                    "The provided key element does not match the schema",
                ));
            }
        }
        let pk = key_value(item, &schema.partition_key, exact)?;
        let sk = match &schema.sort_key {
            Some(sort) => Some(key_value(item, sort, exact)?),
            None => None,
        };
        check_key_value(
            crate::item::KeyRole::Partition,
            &schema.partition_key.name,
            &pk,
        )?;
        if let (Some(sk), Some(sort)) = (&sk, &schema.sort_key) {
            check_key_value(crate::item::KeyRole::Sort, &sort.name, sk)?;
        }
        Ok((pk, sk))
    }
}

/// Checks one key value, answering DynamoDB's messages (an empty key value names the key).
fn check_key_value(
    role: crate::item::KeyRole,
    name: &str,
    value: &AttributeValue,
) -> Result<(), ApiError> {
    crate::item::validate_key_value(role, value).map_err(|e| match e {
        crate::item::ItemError::EmptyKeyValue { .. } => {
            let kind = if matches!(value, AttributeValue::B(_)) {
                "binary"
            } else {
                "string"
            };
            ApiError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {name}"
            ))
        }
        other => ApiError::validation(other.to_string()),
    })
}

fn key_value(item: &Item, attr: &KeyAttribute, exact: bool) -> Result<AttributeValue, ApiError> {
    match item.get(&attr.name) {
        Some(value) if attr.scalar_type.matches(value) => Ok(value.clone()),
        Some(value) => Err(ApiError::validation(if exact {
            "The provided key element does not match the schema".to_string()
        } else {
            format!(
                "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {}",
                attr.name,
                attr.scalar_type.as_str(),
                value.type_key()
            )
        })),
        None => Err(ApiError::validation(if exact {
            "The provided key element does not match the schema".to_string()
        } else {
            format!(
                "One or more parameter values were invalid: Missing the key {} in the item",
                attr.name
            )
        })),
    }
}

/// Splits the 64-bit hash space into `count` contiguous, near-equal ranges.
#[must_use]
pub fn split_hash_space(count: u64) -> Vec<(u64, u64)> {
    let count = count.max(1);
    let width = u128::from(u64::MAX) + 1;
    (0..count)
        .map(|i| {
            let start = (width * u128::from(i) / u128::from(count)) as u64;
            let end = (width * u128::from(i + 1) / u128::from(count) - 1) as u64;
            (start, end)
        })
        .collect()
}

/// How many partitions a new table starts with, as DynamoDB sizes them: a partition serves up
/// to `partition_read_units` (DynamoDB: 3,000) RCU or `partition_write_units` (1,000) WCU, so
/// `ceil(RCU / read + WCU / write)` (at least one); on-demand tables start with
/// `on_demand_partitions`.
#[must_use]
pub fn initial_partition_count(
    billing: Billing,
    on_demand_partitions: u64,
    partition_read_units: u64,
    partition_write_units: u64,
) -> u64 {
    match billing {
        Billing::PayPerRequest => on_demand_partitions.max(1),
        Billing::Provisioned {
            read_capacity_units,
            write_capacity_units,
        } => {
            let (read, write) = (partition_read_units.max(1), partition_write_units.max(1));
            // In units of 1/(read*write) of a partition, to stay in integers.
            let units = read_capacity_units
                .saturating_mul(write)
                .saturating_add(write_capacity_units.saturating_mul(read));
            units.div_ceil(read.saturating_mul(write)).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::KeyRole;

    #[test]
    fn hash_ranges_cover_the_space_without_overlap() {
        for count in [1, 2, 3, 7, 64] {
            let ranges = split_hash_space(count);
            assert_eq!(ranges.len() as u64, count);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges.last().unwrap().1, u64::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
        }
    }

    #[test]
    fn partition_count_follows_provisioned_throughput() {
        let provisioned = |r, w| Billing::Provisioned {
            read_capacity_units: r,
            write_capacity_units: w,
        };
        assert_eq!(initial_partition_count(provisioned(5, 5), 4, 3000, 1000), 1);
        assert_eq!(
            initial_partition_count(provisioned(3000, 1000), 4, 3000, 1000),
            2
        );
        assert_eq!(
            initial_partition_count(provisioned(6001, 0), 4, 3000, 1000),
            3
        );
        assert_eq!(
            initial_partition_count(Billing::PayPerRequest, 4, 3000, 1000),
            4
        );
        // Smaller ceilings (a scaled-down test cluster) give more partitions.
        assert_eq!(initial_partition_count(provisioned(0, 400), 4, 300, 100), 4);
        assert_eq!(
            initial_partition_count(provisioned(300, 50), 4, 300, 100),
            2
        );
    }

    #[test]
    fn empty_key_values_name_the_key_attribute() {
        let error =
            check_key_value(KeyRole::Sort, "sk", &AttributeValue::B(Vec::new())).unwrap_err();
        assert_eq!(
            error.message,
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty binary value. Key: sk"
        );
        let error = check_key_value(KeyRole::Partition, "pk", &AttributeValue::S(String::new()))
            .unwrap_err();
        assert!(error.message.ends_with("empty string value. Key: pk"));
        let error = check_key_value(
            KeyRole::Partition,
            "pk",
            &AttributeValue::S("k".repeat(2049)),
        )
        .unwrap_err();
        assert!(error.message.ends_with("maximum size limit of2048 bytes"));
    }
}
