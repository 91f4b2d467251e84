//! Query and Scan: ordered reads over a partition key's items, or over a whole table.
//!
//! Both read through a store snapshot, evaluate up to `Limit` items and at most 1 MB of item
//! data per page (DynamoDB's page size), apply the filter after counting scanned items, and
//! return `LastEvaluatedKey` (the key attributes of the last item evaluated) when the page
//! stopped early.

use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::admission::KeyHash;
use super::capacity::{ReturnCapacity, UnitKind};
use super::items::{Placeholders, expr_error, projection};
use super::{Node, Partition};
use crate::admission::Kind;
use crate::catalog::TableDef;
use crate::expr::{Condition, ExpressionKind, ExpressionScope, Projection, SortKeyCondition};
use crate::item::{
    AttributeValue, Item, decode_item, decode_key, encode_key, item_size, item_to_json,
    partition_hash, partition_prefix, prefix_successor, sort_key_prefix,
};
use crate::protocol::{ApiError, Params};
use crate::replica::{Direction, KeyRange};

/// Item bytes one page reads at most (DynamoDB's 1 MB).
const PAGE_BYTES: usize = 1024 * 1024;

/// What a page returns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Select {
    AllAttributes,
    Count,
    SpecificAttributes,
}

struct ReadPlan {
    filter: Option<Condition>,
    projection: Option<Projection>,
    select: Select,
    limit: Option<usize>,
    consistent: bool,
    capacity: ReturnCapacity,
}

impl ReadPlan {
    fn from_params<'a>(
        params: &Params<'a>,
        scope: &mut ExpressionScope<'a>,
    ) -> Result<Self, ApiError> {
        let filter = params
            .optional_str("FilterExpression")?
            .map(|text| scope.parse_condition(ExpressionKind::Filter, text))
            .transpose()
            .map_err(expr_error)?;
        let projection = projection(params, scope)?;
        let select = match params.optional_str("Select")? {
            None if projection.is_some() => Select::SpecificAttributes,
            None | Some("ALL_ATTRIBUTES") => Select::AllAttributes,
            Some("COUNT") => Select::Count,
            Some("SPECIFIC_ATTRIBUTES") => Select::SpecificAttributes,
            Some("ALL_PROJECTED_ATTRIBUTES") => {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is not supported when querying a table",
                ));
            }
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
                )));
            }
        };
        if projection.is_some() && select != Select::SpecificAttributes {
            return Err(ApiError::validation(
                "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES or COUNT",
            ));
        }
        if select == Select::SpecificAttributes && projection.is_none() {
            return Err(ApiError::validation(
                "One or more parameter values were invalid: Select SPECIFIC_ATTRIBUTES requires a ProjectionExpression",
            ));
        }
        let limit = match params.optional_u64("Limit")? {
            Some(0) => {
                return Err(ApiError::validation(
                    "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
                ));
            }
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => None,
        };
        Ok(ReadPlan {
            filter,
            projection,
            select,
            limit,
            consistent: params.optional_bool("ConsistentRead")?.unwrap_or(false),
            capacity: ReturnCapacity::from_params(params)?,
        })
    }
}

/// Accumulates one page.
struct Page<'p> {
    plan: &'p ReadPlan,
    items: Vec<Value>,
    count: usize,
    scanned: usize,
    bytes: usize,
    last_key: Option<Vec<u8>>,
    full: bool,
}

impl<'p> Page<'p> {
    fn new(plan: &'p ReadPlan) -> Self {
        Page {
            plan,
            items: Vec::new(),
            count: 0,
            scanned: 0,
            bytes: 0,
            last_key: None,
            full: false,
        }
    }

    /// Evaluates one stored item; returns false once the page is full.
    fn offer(&mut self, key: &[u8], stored: &[u8]) -> Result<bool, ApiError> {
        let item = decode_item(stored)
            .map_err(|e| ApiError::internal(format!("stored item is unreadable: {e}")))?;
        self.scanned += 1;
        self.bytes += item_size(&item);
        self.last_key = Some(key.to_vec());
        if self
            .plan
            .filter
            .as_ref()
            .is_none_or(|f| f.evaluate(Some(&item)))
        {
            self.count += 1;
            if self.plan.select != Select::Count {
                let shown = match &self.plan.projection {
                    Some(projection) => projection.apply(&item),
                    None => item,
                };
                self.items.push(item_to_json(&shown));
            }
        }
        let by_limit = self.plan.limit.is_some_and(|l| self.scanned >= l);
        self.full = by_limit || self.bytes >= PAGE_BYTES;
        Ok(!self.full)
    }

    /// Read units for `bytes` read by this page's kind of read.
    fn units_of(&self, bytes: usize) -> f64 {
        super::capacity::read_units(bytes, self.plan.consistent)
    }

    fn into_response(self, table: &TableDef, more: bool) -> Result<Value, ApiError> {
        let units = self.units_of(self.bytes);
        let mut response = Map::new();
        if self.plan.select != Select::Count {
            response.insert("Items".into(), Value::Array(self.items));
        }
        response.insert("Count".into(), json!(self.count));
        response.insert("ScannedCount".into(), json!(self.scanned));
        if more && let Some(key) = &self.last_key {
            response.insert(
                "LastEvaluatedKey".into(),
                item_to_json(&key_item(table, key)?),
            );
        }
        if let Some(consumed) = self
            .plan
            .capacity
            .report(&table.name, units, UnitKind::Read)
        {
            response.insert("ConsumedCapacity".into(), consumed);
        }
        Ok(Value::Object(response))
    }
}

/// The key attributes of an encoded key, named by the table's schema.
pub(super) fn key_item(table: &TableDef, key: &[u8]) -> Result<Item, ApiError> {
    let decoded = decode_key(key)
        .map_err(|e| ApiError::internal(format!("stored key is unreadable: {e}")))?;
    let mut item = Item::new();
    item.insert(
        table.key_schema.partition_key.name.clone(),
        decoded.partition_key,
    );
    if let (Some(sort), Some(value)) = (&table.key_schema.sort_key, decoded.sort_key) {
        item.insert(sort.name.clone(), value);
    }
    Ok(item)
}

fn invalid_start_key() -> ApiError {
    ApiError::validation(
        "The provided starting key is invalid: The provided key element does not match the schema",
    )
}

fn schema_mismatch() -> ApiError {
    ApiError::validation(
        "One or more parameter values were invalid: Condition parameter type does not match schema type",
    )
}

impl Node {
    pub(super) fn query(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let text = params.optional_str("KeyConditionExpression")?.ok_or_else(|| {
            ApiError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            )
        })?;
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let schema = &table.key_schema;
        let key_condition = scope
            .parse_key_condition(
                text,
                &schema.partition_key.name,
                schema.sort_key.as_ref().map(|s| s.name.as_str()),
            )
            .map_err(expr_error)?;
        let plan = ReadPlan::from_params(&params, &mut scope)?;
        placeholders.finish(&scope, true)?;
        let forward = params.optional_bool("ScanIndexForward")?.unwrap_or(true);

        let pk = key_condition.partition_value;
        if !schema.partition_key.scalar_type.matches(&pk) {
            return Err(schema_mismatch());
        }
        let sort_type = schema.sort_key.as_ref().map(|s| s.scalar_type);
        let encode_sk = |value: &AttributeValue| -> Result<Vec<u8>, ApiError> {
            if !sort_type.is_some_and(|t| t.matches(value)) {
                return Err(schema_mismatch());
            }
            encode_key(table.id, &pk, Some(value)).map_err(|e| ApiError::validation(e.to_string()))
        };
        let prefix =
            partition_prefix(table.id, &pk).map_err(|e| ApiError::validation(e.to_string()))?;
        let prefix_end = match prefix_successor(&prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        let mut range = match &key_condition.sort {
            None => KeyRange::prefix(&prefix),
            Some(SortKeyCondition::Equal(v)) => {
                let k = encode_sk(v)?;
                KeyRange {
                    start: Bound::Included(k.clone()),
                    end: Bound::Included(k),
                }
            }
            Some(SortKeyCondition::Less(v)) => KeyRange {
                start: Bound::Included(prefix.clone()),
                end: Bound::Excluded(encode_sk(v)?),
            },
            Some(SortKeyCondition::LessOrEqual(v)) => KeyRange {
                start: Bound::Included(prefix.clone()),
                end: Bound::Included(encode_sk(v)?),
            },
            Some(SortKeyCondition::Greater(v)) => KeyRange {
                start: Bound::Excluded(encode_sk(v)?),
                end: prefix_end,
            },
            Some(SortKeyCondition::GreaterOrEqual(v)) => KeyRange {
                start: Bound::Included(encode_sk(v)?),
                end: prefix_end,
            },
            Some(SortKeyCondition::Between(low, high)) => {
                let (low, high) = (encode_sk(low)?, encode_sk(high)?);
                if low > high {
                    return Err(ApiError::validation(
                        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                    ));
                }
                KeyRange {
                    start: Bound::Included(low),
                    end: Bound::Included(high),
                }
            }
            Some(SortKeyCondition::BeginsWith(v)) => {
                if !sort_type.is_some_and(|t| t.matches(v)) {
                    return Err(schema_mismatch());
                }
                let p = sort_key_prefix(table.id, &pk, v)
                    .map_err(|e| ApiError::validation(e.to_string()))?;
                KeyRange::prefix(&p)
            }
        };
        if let Some(start) = params.optional_item("ExclusiveStartKey")? {
            let (start_pk, start_sk) = table
                .key_of(&start, true)
                .map_err(|_| invalid_start_key())?;
            if start_pk != pk {
                return Err(ApiError::validation(
                    "The provided starting key is invalid: The provided starting key does not match the range key predicate",
                ));
            }
            let start_key = encode_key(table.id, &start_pk, start_sk.as_ref())
                .map_err(|_| invalid_start_key())?;
            if forward {
                range.start = Bound::Excluded(start_key);
            } else {
                range.end = Bound::Excluded(start_key);
            }
        }
        let (partition, _, hash) = self.locate(&table, &pk, None)?;
        let admitted = self.admit(&table, &partition, Kind::Read)?;
        partition.read_barrier(plan.consistent)?;
        let snapshot = partition.snapshot()?;
        let direction = if forward {
            Direction::Forward
        } else {
            Direction::Backward
        };
        let mut page = Page::new(&plan);
        let mut iter = snapshot.scan(&range, direction);
        let mut more = false;
        for pair in iter.by_ref() {
            let (key, stored) = pair.map_err(|e| ApiError::internal(e.to_string()))?;
            if !page.offer(&key, &stored)? {
                break;
            }
        }
        if page.full {
            // DynamoDB returns LastEvaluatedKey when the page stopped early, even if nothing
            // follows; ddb looks ahead so a page that ends exactly at the end says so.
            more = iter.next().is_some();
        }
        self.charge(
            &partition,
            Kind::Read,
            admitted,
            page.units_of(page.bytes),
            hash,
        );
        page.into_response(&table, more)
    }

    pub(super) fn scan(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let plan = ReadPlan::from_params(&params, &mut scope)?;
        placeholders.finish(&scope, plan.filter.is_some() || plan.projection.is_some())?;
        let segment = segment_range(&params)?;

        // Where to resume: after the start key, in the partition that owns it.
        let start = match params.optional_item("ExclusiveStartKey")? {
            Some(start) => {
                let (pk, sk) = table
                    .key_of(&start, true)
                    .map_err(|_| invalid_start_key())?;
                let hash = partition_hash(&pk).map_err(|_| invalid_start_key())?;
                let key =
                    encode_key(table.id, &pk, sk.as_ref()).map_err(|_| invalid_start_key())?;
                Some((hash, key))
            }
            None => None,
        };
        let mut page = Page::new(&plan);
        let mut more = false;
        let partitions: Vec<_> = table
            .partitions
            .iter()
            .filter(|p| p.hash_end >= segment.0 && p.hash_start <= segment.1)
            .filter(|p| start.as_ref().is_none_or(|(hash, _)| p.hash_end >= *hash))
            .collect();
        'partitions: for (index, def) in partitions.iter().enumerate() {
            let partition: std::sync::Arc<Partition> = self.partition(def.id)?;
            let admitted = self.admit(&table, &partition, Kind::Read)?;
            let bytes_before = page.bytes;
            partition.read_barrier(plan.consistent)?;
            let snapshot = partition.snapshot()?;
            let mut range = KeyRange::all();
            if let Some((hash, key)) = &start
                && def.hash_start <= *hash
                && *hash <= def.hash_end
            {
                range.start = Bound::Excluded(key.clone());
            }
            let mut iter = snapshot.scan(&range, Direction::Forward);
            while let Some(pair) = iter.next() {
                let (key, stored) = pair.map_err(|e| ApiError::internal(e.to_string()))?;
                if segment != (0, u64::MAX) {
                    let decoded = decode_key(&key)
                        .map_err(|e| ApiError::internal(format!("stored key: {e}")))?;
                    let hash = partition_hash(&decoded.partition_key)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    if hash < segment.0 || hash > segment.1 {
                        continue;
                    }
                }
                if !page.offer(&key, &stored)? {
                    more = iter.next().is_some() || index + 1 < partitions.len();
                    self.charge(
                        &partition,
                        Kind::Read,
                        admitted,
                        page.units_of(page.bytes - bytes_before),
                        KeyHash(None),
                    );
                    break 'partitions;
                }
            }
            self.charge(
                &partition,
                Kind::Read,
                admitted,
                page.units_of(page.bytes - bytes_before),
                KeyHash(None),
            );
        }
        page.into_response(&table, more)
    }
}

/// The hash range of `Segment` of `TotalSegments` (the whole space without them).
fn segment_range(params: &Params<'_>) -> Result<(u64, u64), ApiError> {
    match (
        params.optional_u64("Segment")?,
        params.optional_u64("TotalSegments")?,
    ) {
        (None, None) => Ok((0, u64::MAX)),
        (Some(segment), Some(total)) => {
            if total == 0 || total > 1_000_000 {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{total}' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000"
                )));
            }
            if segment >= total {
                return Err(ApiError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {segment} is not less than TotalSegments: {total}"
                )));
            }
            let ranges = crate::catalog::split_hash_space(total);
            Ok(ranges[usize::try_from(segment).unwrap_or(0)])
        }
        (Some(_), None) => Err(ApiError::validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        )),
        (None, Some(_)) => Err(ApiError::validation(
            "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
        )),
    }
}
