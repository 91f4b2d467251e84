//! Single-item and batch operations: PutItem, GetItem, DeleteItem, UpdateItem, BatchGetItem,
//! BatchWriteItem.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::admission::KeyHash;
use super::capacity::{ReturnCapacity, UnitKind, read_units, write_units};
use super::query::key_item;
use super::{Node, Partition, WriteOp};
use crate::admission::Kind;
use crate::catalog::TableDef;
use crate::expr::{
    Condition, ExprError, ExpressionKind, ExpressionScope, Projection, UpdateExpression,
};
use crate::item::{
    AttributeValue, Item, decode_item, encode_item, encode_key, item_size, item_to_json,
    partition_hash, validate_item,
};
use crate::protocol::ErrorCode;
use crate::protocol::{ApiError, Params, missing, parse_item};

/// Most keys in one BatchGetItem.
const BATCH_GET_MAX_KEYS: usize = 100;
/// Most requests in one BatchWriteItem.
const BATCH_WRITE_MAX_REQUESTS: usize = 25;

/// Maps an expression error to DynamoDB's `ValidationException`.
pub(super) fn expr_error(error: ExprError) -> ApiError {
    ApiError::validation(error.to_string())
}

/// The `ExpressionAttributeNames` and `ExpressionAttributeValues` of a request.
pub(super) struct Placeholders {
    pub names: BTreeMap<String, String>,
    pub values: BTreeMap<String, AttributeValue>,
    names_given: bool,
    values_given: bool,
}

impl Placeholders {
    pub fn from_params(params: &Params<'_>) -> Result<Self, ApiError> {
        let names_given = params.raw("ExpressionAttributeNames").is_some();
        let values_given = params.raw("ExpressionAttributeValues").is_some();
        let names = params.attribute_names()?;
        let values = params.attribute_values()?;
        if values_given && values.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
        if names_given && names.is_empty() {
            return Err(ApiError::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
        Ok(Placeholders {
            names,
            values,
            names_given,
            values_given,
        })
    }

    /// DynamoDB's checks once every expression of the request is parsed: placeholders need an
    /// expression, and every placeholder given must be used.
    pub fn finish(
        &self,
        scope: &ExpressionScope<'_>,
        any_expression: bool,
    ) -> Result<(), ApiError> {
        if !any_expression {
            if self.names_given {
                return Err(ApiError::validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if self.values_given {
                return Err(ApiError::validation(
                    "ExpressionAttributeValues can only be specified when using expressions",
                ));
            }
        }
        scope.check_all_used().map_err(expr_error)
    }
}

/// `ReturnValues` of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReturnValues {
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

impl ReturnValues {
    fn from_params(params: &Params<'_>, allowed: &[ReturnValues]) -> Result<Self, ApiError> {
        let value = match params.optional_str("ReturnValues")? {
            None | Some("NONE") => ReturnValues::None,
            Some("ALL_OLD") => ReturnValues::AllOld,
            Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
            Some("ALL_NEW") => ReturnValues::AllNew,
            Some("UPDATED_NEW") => ReturnValues::UpdatedNew,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]"
                )));
            }
        };
        if !allowed.contains(&value) {
            // DynamoDB's wording: PutItem and DeleteItem accept only NONE and ALL_OLD.
            return Err(ApiError::validation("Return values set to invalid value"));
        }
        Ok(value)
    }
}

/// Whether a failed condition returns the item (`ReturnValuesOnConditionCheckFailure`).
fn return_old_on_failure(params: &Params<'_>) -> Result<bool, ApiError> {
    match params.optional_str("ReturnValuesOnConditionCheckFailure")? {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

fn decode_stored(bytes: Option<&[u8]>) -> Result<Option<Item>, ApiError> {
    bytes
        .map(decode_item)
        .transpose()
        .map_err(|e| ApiError::internal(format!("stored item is unreadable: {e}")))
}

fn condition_failed(old: Option<Item>, return_old: bool) -> ApiError {
    let mut error = ApiError::condition_failed();
    if return_old {
        error.item = old;
    }
    error
}

impl Node {
    /// The partition that owns `partition_key` in `table`, the item's encoded key, and the
    /// partition key's hash (for key heat).
    pub(super) fn locate(
        &self,
        table: &TableDef,
        partition_key: &AttributeValue,
        sort_key: Option<&AttributeValue>,
    ) -> Result<(Arc<Partition>, Vec<u8>, KeyHash), ApiError> {
        let hash =
            partition_hash(partition_key).map_err(|e| ApiError::validation(e.to_string()))?;
        let def = table
            .partition_for_hash(hash)
            .ok_or_else(|| ApiError::internal("no partition owns this key's hash"))?;
        let key = encode_key(table.id, partition_key, sort_key)
            .map_err(|e| ApiError::validation(e.to_string()))?;
        Ok((self.partition(def.id)?, key, KeyHash(Some(hash))))
    }

    pub(super) fn put_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let item = params.required_item("Item")?;
        validate_item(&item).map_err(|e| ApiError::validation(e.to_string()))?;
        let (pk, sk) = table.key_of(&item, false)?;
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let condition = condition_expression(&params, &mut scope)?;
        placeholders.finish(&scope, condition.is_some())?;
        let return_values =
            ReturnValues::from_params(&params, &[ReturnValues::None, ReturnValues::AllOld])?;
        let return_old = return_old_on_failure(&params)?;
        let capacity = ReturnCapacity::from_params(&params)?;

        let (partition, key, hash) = self.locate(&table, &pk, sk.as_ref())?;
        let encoded = encode_item(&item);
        let new_size = item_size(&item);
        let (old, admitted) = partition.write(key, |current| {
            let admitted = self.admit(&table, &partition, Kind::Write)?;
            let old = checked_current(current, condition.as_ref(), return_old)?;
            Ok((WriteOp::Put(encoded), (old, admitted)))
        })?;
        let units = write_units(new_size.max(old.as_ref().map_or(0, item_size)));
        self.charge(&partition, Kind::Write, admitted, units, hash);
        Ok(all_old_response(
            old.as_ref(),
            return_values,
            capacity,
            &table.name,
            units,
        ))
    }

    pub(super) fn get_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let key_item = params.required_item("Key")?;
        let (pk, sk) = table.key_of(&key_item, true)?;
        let consistent = params.optional_bool("ConsistentRead")?.unwrap_or(false);
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let projection = projection(&params, &mut scope)?;
        placeholders.finish(&scope, projection.is_some())?;
        let capacity = ReturnCapacity::from_params(&params)?;

        let (partition, key, hash) = self.locate(&table, &pk, sk.as_ref())?;
        let admitted = self.admit(&table, &partition, Kind::Read)?;
        partition.read_barrier(consistent)?;
        let item = decode_stored(partition.get(&key)?.as_deref())?;
        let units = read_units(item.as_ref().map_or(0, item_size), consistent);
        self.charge(&partition, Kind::Read, admitted, units, hash);
        let mut response = Map::new();
        if let Some(item) = item {
            let shown = match &projection {
                Some(projection) => projection.apply(&item),
                None => item,
            };
            response.insert("Item".into(), item_to_json(&shown));
        }
        if let Some(consumed) = capacity.report(&table.name, units, UnitKind::Read) {
            response.insert("ConsumedCapacity".into(), consumed);
        }
        Ok(Value::Object(response))
    }

    pub(super) fn delete_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let key_item = params.required_item("Key")?;
        let (pk, sk) = table.key_of(&key_item, true)?;
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let condition = condition_expression(&params, &mut scope)?;
        placeholders.finish(&scope, condition.is_some())?;
        let return_values =
            ReturnValues::from_params(&params, &[ReturnValues::None, ReturnValues::AllOld])?;
        let return_old = return_old_on_failure(&params)?;
        let capacity = ReturnCapacity::from_params(&params)?;

        let (partition, key, hash) = self.locate(&table, &pk, sk.as_ref())?;
        let (old, admitted) = partition.write(key, |current| {
            let admitted = self.admit(&table, &partition, Kind::Write)?;
            let old = checked_current(current, condition.as_ref(), return_old)?;
            let op = if old.is_some() {
                WriteOp::Delete
            } else {
                WriteOp::Nothing
            };
            Ok((op, (old, admitted)))
        })?;
        let units = write_units(old.as_ref().map_or(0, item_size));
        self.charge(&partition, Kind::Write, admitted, units, hash);
        Ok(all_old_response(
            old.as_ref(),
            return_values,
            capacity,
            &table.name,
            units,
        ))
    }

    pub(super) fn update_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let table = self.active_table(params.required_str("TableName")?)?;
        let key_item = params.required_item("Key")?;
        let (pk, sk) = table.key_of(&key_item, true)?;
        let placeholders = Placeholders::from_params(&params)?;
        let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
        let key_names = table.key_names();
        let update = params
            .optional_str("UpdateExpression")?
            .map(|text| scope.parse_update(text, &key_names))
            .transpose()
            .map_err(expr_error)?;
        let condition = condition_expression(&params, &mut scope)?;
        placeholders.finish(&scope, update.is_some() || condition.is_some())?;
        let return_values = ReturnValues::from_params(
            &params,
            &[
                ReturnValues::None,
                ReturnValues::AllOld,
                ReturnValues::UpdatedOld,
                ReturnValues::AllNew,
                ReturnValues::UpdatedNew,
            ],
        )?;
        let return_old = return_old_on_failure(&params)?;
        let capacity = ReturnCapacity::from_params(&params)?;

        let (partition, key, hash) = self.locate(&table, &pk, sk.as_ref())?;
        let (old, new, admitted) = partition.write(key, |current| {
            let admitted = self.admit(&table, &partition, Kind::Write)?;
            let old = checked_current(current, condition.as_ref(), return_old)?;
            let base = old.clone().unwrap_or_else(|| key_item.clone());
            let new = match &update {
                Some(update) => update.apply(&base).map_err(expr_error)?,
                None => base,
            };
            validate_item(&new).map_err(|e| {
                ApiError::validation(if e.to_string().contains("size") {
                    "Item size to update has exceeded the maximum allowed size".to_string()
                } else {
                    e.to_string()
                })
            })?;
            Ok((WriteOp::Put(encode_item(&new)), (old, new, admitted)))
        })?;
        let units = write_units(item_size(&new).max(old.as_ref().map_or(0, item_size)));
        self.charge(&partition, Kind::Write, admitted, units, hash);
        let attributes = match return_values {
            ReturnValues::None => None,
            ReturnValues::AllOld => old.clone(),
            ReturnValues::AllNew => Some(new.clone()),
            ReturnValues::UpdatedOld | ReturnValues::UpdatedNew => {
                let source = if return_values == ReturnValues::UpdatedOld {
                    old.as_ref()
                } else {
                    Some(&new)
                };
                match (&update, source) {
                    (Some(update), Some(source)) => updated_paths(update, source),
                    _ => None,
                }
            }
        };
        Ok(write_response(
            attributes.as_ref(),
            capacity.report(&table.name, units, UnitKind::Write),
        ))
    }

    pub(super) fn batch_get_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let request_items = params
            .optional_object("RequestItems")?
            .ok_or_else(|| missing("RequestItems"))?;
        if request_items.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let total: usize = request_items
            .values()
            .map(|t| t.get("Keys").and_then(Value::as_array).map_or(0, Vec::len))
            .sum();
        if total > BATCH_GET_MAX_KEYS {
            return Err(ApiError::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        let capacity = ReturnCapacity::from_params(&params)?;
        let mut responses = Map::new();
        let mut consumed = Vec::new();
        let mut unprocessed = Map::new();
        let mut processed = 0usize;
        let mut throttle = None;
        for (table_name, raw_request) in request_items {
            let table = self.active_table(table_name)?;
            let request = Params::new(raw_request)?;
            let keys = request
                .optional_array("Keys")?
                .ok_or_else(|| missing("Keys"))?;
            if keys.is_empty() {
                return Err(ApiError::validation(
                    "1 validation error detected: Value '[]' at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            let consistent = request.optional_bool("ConsistentRead")?.unwrap_or(false);
            let placeholders = Placeholders::from_params(&request)?;
            let mut scope = ExpressionScope::new(&placeholders.names, &placeholders.values);
            let projection = projection(&request, &mut scope)?;
            placeholders.finish(&scope, projection.is_some())?;
            let mut seen = BTreeSet::new();
            let mut located = Vec::new();
            for key in keys {
                let key_item = parse_item(key)?;
                let (pk, sk) = table.key_of(&key_item, true)?;
                let (partition, encoded, hash) = self.locate(&table, &pk, sk.as_ref())?;
                if !seen.insert(encoded.clone()) {
                    return Err(ApiError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                located.push((partition, encoded, hash, key));
            }
            let mut items = Vec::new();
            let mut units = 0.0;
            let mut throttled_keys = Vec::new();
            for (partition, encoded, hash, key) in located {
                // A key whose partition is over its capacity comes back unprocessed.
                let admitted = match self.admit(&table, &partition, Kind::Read) {
                    Ok(admitted) => admitted,
                    Err(error)
                        if error.code == ErrorCode::ProvisionedThroughputExceededException =>
                    {
                        throttled_keys.push(key.clone());
                        throttle = Some(error);
                        continue;
                    }
                    Err(error) => return Err(error),
                };
                processed += 1;
                partition.read_barrier(consistent)?;
                let item = decode_stored(partition.get(&encoded)?.as_deref())?;
                let item_units = read_units(item.as_ref().map_or(0, item_size), consistent);
                self.charge(&partition, Kind::Read, admitted, item_units, hash);
                units += item_units;
                if let Some(item) = item {
                    let shown = match &projection {
                        Some(projection) => projection.apply(&item),
                        None => item,
                    };
                    items.push(item_to_json(&shown));
                }
            }
            responses.insert(table_name.clone(), Value::Array(items));
            if let Some(report) = capacity.report(table_name, units, UnitKind::Read) {
                consumed.push(report);
            }
            if !throttled_keys.is_empty() {
                let mut again = raw_request.clone();
                again["Keys"] = Value::Array(throttled_keys);
                unprocessed.insert(table_name.clone(), again);
            }
        }
        // Nothing could be read: DynamoDB answers with the throttling error itself.
        if processed == 0
            && let Some(error) = throttle
        {
            return Err(error);
        }
        let mut response = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
        if capacity != ReturnCapacity::None {
            response["ConsumedCapacity"] = Value::Array(consumed);
        }
        Ok(response)
    }

    pub(super) fn batch_write_item(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let request_items = params
            .optional_object("RequestItems")?
            .ok_or_else(|| missing("RequestItems"))?;
        if request_items.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        // One table's list over the limit fails the request model's length constraint (as
        // DynamoDB words it); several lists that are each in range but together over it get
        // the "Too many items" message.
        for (table_name, requests) in request_items {
            let count = requests.as_array().map_or(0, Vec::len);
            if count == 0 || count > BATCH_WRITE_MAX_REQUESTS {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{{{table_name}=[{count} write requests]}}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {BATCH_WRITE_MAX_REQUESTS}, Member must have length greater than or equal to 1]"
                )));
            }
        }
        let total: usize = request_items
            .values()
            .map(|t| t.as_array().map_or(0, Vec::len))
            .sum();
        if total > BATCH_WRITE_MAX_REQUESTS {
            return Err(ApiError::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        let capacity = ReturnCapacity::from_params(&params)?;
        // Validate everything before writing anything: a bad request writes nothing.
        let mut writes = Vec::new();
        for (table_name, requests) in request_items {
            let table = self.active_table(table_name)?;
            let requests = requests.as_array().ok_or_else(|| {
                ApiError::serialization("RequestItems values must be lists of write requests")
            })?;
            let mut seen = BTreeSet::new();
            for raw in requests {
                let request = Params::new(raw)?;
                let put = request.raw("PutRequest");
                let delete = request.raw("DeleteRequest");
                let (item, key_item, op_is_put) = match (put, delete) {
                    (Some(put), None) => {
                        let item = Params::new(put)?.required_item("Item")?;
                        validate_item(&item).map_err(|e| ApiError::validation(e.to_string()))?;
                        (Some(item.clone()), item, true)
                    }
                    (None, Some(delete)) => {
                        let key = Params::new(delete)?.required_item("Key")?;
                        (None, key, false)
                    }
                    _ => {
                        return Err(ApiError::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ));
                    }
                };
                let (pk, sk) = table.key_of(&key_item, !op_is_put)?;
                let (partition, encoded, hash) = self.locate(&table, &pk, sk.as_ref())?;
                if !seen.insert(encoded.clone()) {
                    return Err(ApiError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                writes.push((
                    Arc::clone(&table),
                    partition,
                    encoded,
                    hash,
                    item,
                    raw.clone(),
                ));
            }
        }
        let mut units: BTreeMap<String, f64> = BTreeMap::new();
        // Requests whose partition is over its capacity come back unprocessed.
        let mut unprocessed: Map<String, Value> = Map::new();
        let (mut processed, mut throttle) = (0usize, None);
        let is_throttle =
            |error: &ApiError| error.code == ErrorCode::ProvisionedThroughputExceededException;
        for (table, partition, key, hash, item, original) in writes {
            let (op, size) = match &item {
                Some(item) => (WriteOp::Put(encode_item(item)), item_size(item)),
                None => (WriteOp::Delete, 0),
            };
            let written = partition.write(key.clone(), |current| {
                let admitted = self.admit(&table, &partition, Kind::Write)?;
                let old_size = decode_stored(current)?.as_ref().map_or(0, item_size);
                let op = if op == WriteOp::Delete && current.is_none() {
                    WriteOp::Nothing
                } else {
                    op
                };
                Ok((op, (old_size, admitted)))
            });
            let (old_size, admitted) = match written {
                Ok(written) => written,
                Err(error) if is_throttle(&error) => {
                    push_unprocessed(&mut unprocessed, &table.name, original);
                    throttle = Some(error);
                    continue;
                }
                // Items of one batch live in partitions led by different nodes: each item the
                // leader of its partition writes, as a single-item request.
                Err(error) if error.redirect.is_some() => {
                    match self.forward_batch_item(&table, &key, item.as_ref(), error) {
                        Ok(()) => (0, None),
                        Err(error) if is_throttle(&error) => {
                            push_unprocessed(&mut unprocessed, &table.name, original);
                            throttle = Some(error);
                            continue;
                        }
                        Err(error) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            };
            processed += 1;
            let item_units = write_units(size.max(old_size));
            self.charge(&partition, Kind::Write, admitted, item_units, hash);
            *units.entry(table.name.clone()).or_default() += item_units;
        }
        if processed == 0
            && let Some(error) = throttle
        {
            return Err(error);
        }
        let mut response = json!({"UnprocessedItems": unprocessed});
        if capacity != ReturnCapacity::None {
            let consumed: Vec<Value> = units
                .iter()
                .filter_map(|(table, units)| capacity.report(table, *units, UnitKind::Write))
                .collect();
            response["ConsumedCapacity"] = Value::Array(consumed);
        }
        Ok(response)
    }
}

impl Node {
    /// Writes one item of a BatchWriteItem through the leader of its partition, as a PutItem
    /// or DeleteItem request.
    fn forward_batch_item(
        &self,
        table: &TableDef,
        key: &[u8],
        item: Option<&Item>,
        not_leader: ApiError,
    ) -> Result<(), ApiError> {
        let request = match item {
            Some(item) => (
                "PutItem",
                json!({"TableName": table.name, "Item": item_to_json(item)}),
            ),
            None => {
                let key_item = key_item(table, key)?;
                (
                    "DeleteItem",
                    json!({"TableName": table.name, "Key": item_to_json(&key_item)}),
                )
            }
        };
        self.redirect(not_leader, request.0, &request.1, 0)
            .map(|_| ())
    }
}

/// Adds a write request of a BatchWriteItem to the `UnprocessedItems` of `table`.
fn push_unprocessed(unprocessed: &mut Map<String, Value>, table: &str, request: Value) {
    if let Value::Array(list) = unprocessed
        .entry(table.to_string())
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        list.push(request);
    }
}

/// Parses `ConditionExpression`, if present.
fn condition_expression<'a>(
    params: &Params<'a>,
    scope: &mut ExpressionScope<'a>,
) -> Result<Option<Condition>, ApiError> {
    params
        .optional_str("ConditionExpression")?
        .map(|text| scope.parse_condition(ExpressionKind::Condition, text))
        .transpose()
        .map_err(expr_error)
}

/// Decodes the key's current item and checks the write's condition against it: the item (or
/// `None`) when the write may go ahead, DynamoDB's failed-condition error otherwise.
fn checked_current(
    current: Option<&[u8]>,
    condition: Option<&Condition>,
    return_old_on_failure: bool,
) -> Result<Option<Item>, ApiError> {
    let old = decode_stored(current)?;
    match condition {
        Some(condition) if !condition.evaluate(old.as_ref()) => {
            Err(condition_failed(old, return_old_on_failure))
        }
        _ => Ok(old),
    }
}

/// The answer of PutItem and DeleteItem: the old item when `ReturnValues` is `ALL_OLD`, and
/// the write units when asked for.
fn all_old_response(
    old: Option<&Item>,
    return_values: ReturnValues,
    capacity: ReturnCapacity,
    table: &str,
    units: f64,
) -> Value {
    let attributes = old.filter(|_| return_values == ReturnValues::AllOld);
    write_response(attributes, capacity.report(table, units, UnitKind::Write))
}

/// A write's answer: `Attributes` and `ConsumedCapacity` when there are any.
fn write_response(attributes: Option<&Item>, consumed: Option<Value>) -> Value {
    let mut response = Map::new();
    if let Some(attributes) = attributes {
        response.insert("Attributes".into(), item_to_json(attributes));
    }
    if let Some(consumed) = consumed {
        response.insert("ConsumedCapacity".into(), consumed);
    }
    Value::Object(response)
}

/// Parses `ProjectionExpression`, if present.
pub(super) fn projection<'a>(
    params: &Params<'a>,
    scope: &mut ExpressionScope<'a>,
) -> Result<Option<Projection>, ApiError> {
    params
        .optional_str("ProjectionExpression")?
        .map(|text| scope.parse_projection(text))
        .transpose()
        .map_err(expr_error)
}

/// The parts of `item` at the paths `update` writes (`UPDATED_OLD` / `UPDATED_NEW`): like
/// DynamoDB, only the updated nested values, not whole top-level attributes (`SET m.x = :v`
/// returns `{m: {x: …}}`). `None` when none of those paths holds a value.
fn updated_paths(update: &UpdateExpression, item: &Item) -> Option<Item> {
    let paths = update
        .set
        .iter()
        .map(|action| action.path.clone())
        .chain(update.remove.iter().cloned())
        .chain(update.add.iter().map(|(path, _)| path.clone()))
        .chain(update.delete.iter().map(|(path, _)| path.clone()))
        .collect();
    let picked = Projection { paths }.apply(item);
    (!picked.is_empty()).then_some(picked)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::item::item_from_json_str;

    fn parse_update(text: &str) -> UpdateExpression {
        let names = BTreeMap::new();
        let mut values = BTreeMap::new();
        values.insert(":v".to_string(), AttributeValue::N("9".parse().unwrap()));
        let mut scope = ExpressionScope::new(&names, &values);
        scope.parse_update(text, &["pk"]).unwrap()
    }

    #[test]
    fn updated_paths_keep_only_the_written_nested_values() {
        let item = item_from_json_str(
            r#"{"pk": {"S": "k"}, "m": {"M": {"x": {"N": "9"}, "y": {"N": "2"}}}, "z": {"S": "z"}}"#,
        )
        .unwrap();
        let picked = updated_paths(&parse_update("SET m.x = :v"), &item).unwrap();
        let expected = item_from_json_str(r#"{"m": {"M": {"x": {"N": "9"}}}}"#).unwrap();
        assert_eq!(picked, expected);
    }

    #[test]
    fn updated_paths_of_removed_attributes_are_absent_after_the_update() {
        let item = item_from_json_str(r#"{"pk": {"S": "k"}, "z": {"S": "z"}}"#).unwrap();
        assert_eq!(updated_paths(&parse_update("REMOVE gone"), &item), None);
    }
}
