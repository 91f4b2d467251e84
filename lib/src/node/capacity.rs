//! Capacity units consumed by a request, as DynamoDB counts them.

use serde_json::{Value, json};

use crate::protocol::{ApiError, Params};

/// Bytes per write capacity unit.
const WRITE_UNIT_BYTES: usize = 1024;
/// Bytes per read capacity unit (strongly consistent).
const READ_UNIT_BYTES: usize = 4096;

/// Write capacity units for writing an item of `size` bytes (at least one).
#[must_use]
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Read capacity units for reading `size` bytes: one per 4 KB (at least one), half for an
/// eventually consistent read.
#[must_use]
pub fn read_units(size: usize, consistent: bool) -> f64 {
    let units = size.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// What `ReturnConsumedCapacity` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnCapacity {
    /// Nothing.
    None,
    /// The total.
    Total,
    /// The total and per-index figures (ddb has no secondary indexes: the table only).
    Indexes,
}

impl ReturnCapacity {
    /// Reads `ReturnConsumedCapacity`.
    pub fn from_params(params: &Params<'_>) -> Result<Self, ApiError> {
        match params.optional_str("ReturnConsumedCapacity")? {
            None | Some("NONE") => Ok(ReturnCapacity::None),
            Some("TOTAL") => Ok(ReturnCapacity::Total),
            Some("INDEXES") => Ok(ReturnCapacity::Indexes),
            Some(other) => Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
            ))),
        }
    }

    /// The `ConsumedCapacity` object for `units` on `table`, if requested.
    #[must_use]
    pub fn report(self, table: &str, units: f64, kind: UnitKind) -> Option<Value> {
        let kind_field = match kind {
            UnitKind::Read => "ReadCapacityUnits",
            UnitKind::Write => "WriteCapacityUnits",
        };
        match self {
            ReturnCapacity::None => None,
            ReturnCapacity::Total => Some(json!({"TableName": table, "CapacityUnits": units})),
            ReturnCapacity::Indexes => Some(json!({
                "TableName": table,
                "CapacityUnits": units,
                kind_field: units,
                "Table": {"CapacityUnits": units, kind_field: units},
            })),
        }
    }
}

/// Read or write units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    /// Read capacity units.
    Read,
    /// Write capacity units.
    Write,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_round_up_and_eventual_reads_cost_half() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(10, false), 0.5);
    }
}
