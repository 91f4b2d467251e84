//! Control-plane operations: CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::Node;
use super::describe::table_description;
use crate::catalog::{
    Billing, CatalogError, KeyAttribute, KeySchema, PartitionDef, ScalarType, TableDef,
    TableStatus, initial_partition_count, split_hash_space,
};
use crate::protocol::{ApiError, ErrorCode, Params, missing, validate_table_name};

/// Most tables `ListTables` returns in one page.
const LIST_TABLES_MAX: u64 = 100;

/// DynamoDB's default per-table quota of read capacity units, and of write capacity units.
/// It also bounds how many partitions a provisioned table starts with.
pub const MAX_TABLE_CAPACITY_UNITS: u64 = 40_000;

impl Node {
    pub(super) fn create_table(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let name = params.required_str("TableName")?;
        validate_table_name(name)?;
        let definitions = attribute_definitions(&params)?;
        let key_schema = key_schema(&params, &definitions)?;
        let billing = billing(&params)?;
        let created_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let limits = &self.options.admission;
        let partition_count = initial_partition_count(
            billing,
            self.options.on_demand_partitions,
            limits.partition_read_units,
            limits.partition_write_units,
        );
        let table = self.change_catalog(|catalog| {
            catalog
                .create_table(name, |id, next_partition_id| TableDef {
                    id,
                    name: name.to_string(),
                    key_schema,
                    attribute_definitions: definitions,
                    billing,
                    created_at_ms,
                    partitions: split_hash_space(partition_count)
                        .into_iter()
                        .map(|(hash_start, hash_end)| PartitionDef {
                            id: next_partition_id(),
                            hash_start,
                            hash_end,
                        })
                        .collect(),
                    status: TableStatus::Active,
                    splits: Vec::new(),
                    pending_split: None,
                })
                .map_err(|e| match e {
                    CatalogError::TableExists(_) => ApiError::new(
                        ErrorCode::ResourceInUseException,
                        format!("Table already exists: {name}"),
                    ),
                    other => ApiError::internal(format!("catalog: {other}")),
                })
        })?;
        self.open_partitions(&table)?;
        tracing::info!(table = %name, partitions = table.partitions.len(), "table created");
        Ok(json!({"TableDescription": table_description(&table, &self.options.region, "ACTIVE")}))
    }

    pub(super) fn describe_table(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let name = params.required_str("TableName")?;
        let table = self
            .table(name)
            .ok_or_else(|| ApiError::table_not_found(name))?;
        Ok(json!({"Table": table_description(&table, &self.options.region, table.status.as_str())}))
    }

    pub(super) fn list_tables(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let start = params.optional_str("ExclusiveStartTableName")?;
        let limit = params.optional_u64("Limit")?.unwrap_or(LIST_TABLES_MAX);
        if !(1..=LIST_TABLES_MAX).contains(&limit) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"
            )));
        }
        let names: Vec<String> = self
            .catalog
            .tables()
            .into_iter()
            .map(|t| t.name.clone())
            .filter(|n| start.is_none_or(|s| n.as_str() > s))
            .collect();
        let page: Vec<&String> = names.iter().take(limit as usize).collect();
        let mut response = json!({"TableNames": page});
        if names.len() > page.len()
            && let Some(last) = page.last()
        {
            response["LastEvaluatedTableName"] = json!(last);
        }
        Ok(response)
    }

    pub(super) fn update_table(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let name = params.required_str("TableName")?;
        let current = self
            .table(name)
            .ok_or_else(|| ApiError::table_not_found(name))?;
        let mode = params.optional_str("BillingMode")?;
        let throughput = provisioned_throughput(&params)?;
        if mode.is_none() && throughput.is_none() {
            return Err(ApiError::validation(
                "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates or SSESpecification or ReplicaUpdates is required",
            ));
        }
        let billing = match (mode, throughput, current.billing) {
            (Some("PAY_PER_REQUEST"), None, _) => Billing::PayPerRequest,
            (Some("PAY_PER_REQUEST"), Some(_), _) => {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            (Some("PROVISIONED") | None, Some((r, w)), _) => Billing::Provisioned {
                read_capacity_units: r,
                write_capacity_units: w,
            },
            (Some("PROVISIONED"), None, Billing::Provisioned { .. }) => current.billing,
            (Some("PROVISIONED"), None, Billing::PayPerRequest) => {
                return Err(ApiError::validation(
                    "One or more parameter values were invalid: ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                ));
            }
            (Some(other), _, _) => return Err(billing_mode_error(other)),
            (None, None, _) => current.billing,
        };
        let table = self.change_catalog(|catalog| {
            catalog
                .update_table(name, |t| t.billing = billing)
                .map_err(|e| match e {
                    CatalogError::TableNotFound(_) => ApiError::table_not_found(name),
                    other => ApiError::internal(format!("catalog: {other}")),
                })
        })?;
        Ok(json!({"TableDescription": table_description(&table, &self.options.region, "ACTIVE")}))
    }

    pub(super) fn delete_table(&self, body: &Value) -> Result<Value, ApiError> {
        let params = Params::new(body)?;
        let name = params.required_str("TableName")?;
        let table = self.change_catalog(|catalog| {
            catalog.remove_table(name).map_err(|e| match e {
                CatalogError::TableNotFound(_) => ApiError::table_not_found(name),
                other => ApiError::internal(format!("catalog: {other}")),
            })
        })?;
        self.drop_partitions(&table);
        tracing::info!(table = %name, "table deleted");
        Ok(json!({"TableDescription": table_description(&table, &self.options.region, "DELETING")}))
    }
}

fn attribute_definitions(params: &Params<'_>) -> Result<Vec<KeyAttribute>, ApiError> {
    let list = params
        .optional_array("AttributeDefinitions")?
        .ok_or_else(|| missing("AttributeDefinitions"))?;
    let mut definitions = Vec::new();
    for entry in list {
        let entry = Params::new(entry)?;
        let name = entry.required_str("AttributeName")?;
        let kind = entry.required_str("AttributeType")?;
        let scalar_type = ScalarType::parse(kind).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{kind}' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
            ))
        })?;
        if definitions.iter().any(|d: &KeyAttribute| d.name == name) {
            return Err(ApiError::validation(format!(
                "Cannot have two attributes with the same name: {name}"
            )));
        }
        definitions.push(KeyAttribute {
            name: name.to_string(),
            scalar_type,
        });
    }
    Ok(definitions)
}

fn key_schema(params: &Params<'_>, definitions: &[KeyAttribute]) -> Result<KeySchema, ApiError> {
    let list = params
        .optional_array("KeySchema")?
        .ok_or_else(|| missing("KeySchema"))?;
    if list.is_empty() || list.len() > 2 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '[...]' at 'keySchema' failed to satisfy constraint: Member must have length {} 2",
            if list.is_empty() {
                "greater than or equal to 1, and at most"
            } else {
                "less than or equal to"
            }
        )));
    }
    let mut hash = None;
    let mut range = None;
    for entry in list {
        let entry = Params::new(entry)?;
        let name = entry.required_str("AttributeName")?;
        let kind = entry.required_str("KeyType")?;
        let definition = definitions.iter().find(|d| d.name == name).ok_or_else(|| {
            ApiError::validation(
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [".to_string()
                    + name
                    + "], AttributeDefinitions: ["
                    + &definitions.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
                    + "]",
            )
        })?;
        match kind {
            "HASH" if hash.is_none() => hash = Some(definition.clone()),
            "RANGE" if range.is_none() => range = Some(definition.clone()),
            "HASH" | "RANGE" => {
                return Err(ApiError::validation(
                    "Invalid KeySchema: Some index key attribute have no definition",
                ));
            }
            other => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'keySchema.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]"
                )));
            }
        }
    }
    let partition_key = hash.ok_or_else(|| {
        ApiError::validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    })?;
    if range.as_ref().is_some_and(|r| r.name == partition_key.name) {
        return Err(ApiError::validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    let used = 1 + usize::from(range.is_some());
    if definitions.len() != used {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    Ok(KeySchema {
        partition_key,
        sort_key: range,
    })
}

fn billing_mode_error(mode: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{mode}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
    ))
}

fn provisioned_throughput(params: &Params<'_>) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(raw) = params.raw("ProvisionedThroughput") else {
        return Ok(None);
    };
    let throughput = Params::new(raw)?;
    let read = throughput
        .optional_u64("ReadCapacityUnits")?
        .ok_or_else(|| missing("ProvisionedThroughput.ReadCapacityUnits"))?;
    let write = throughput
        .optional_u64("WriteCapacityUnits")?
        .ok_or_else(|| missing("ProvisionedThroughput.WriteCapacityUnits"))?;
    if read == 0 || write == 0 {
        return Err(ApiError::validation(
            "One or more parameter values were invalid: Provisioned throughput for ReadCapacityUnits and WriteCapacityUnits must be at least 1",
        ));
    }
    for (units, kind) in [(read, "ReadCapacityUnits"), (write, "WriteCapacityUnits")] {
        if units > MAX_TABLE_CAPACITY_UNITS {
            return Err(ApiError::new(
                ErrorCode::LimitExceededException,
                format!(
                    "Subscriber limit exceeded: Provisioned throughput for a table cannot exceed {MAX_TABLE_CAPACITY_UNITS} {kind} (requested {units})"
                ),
            ));
        }
    }
    Ok(Some((read, write)))
}

fn billing(params: &Params<'_>) -> Result<Billing, ApiError> {
    let throughput = provisioned_throughput(params)?;
    match (params.optional_str("BillingMode")?, throughput) {
        (Some("PAY_PER_REQUEST"), None) => Ok(Billing::PayPerRequest),
        (Some("PAY_PER_REQUEST"), Some(_)) => Err(ApiError::validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (Some("PROVISIONED") | None, Some((read, write))) => Ok(Billing::Provisioned {
            read_capacity_units: read,
            write_capacity_units: write,
        }),
        (Some("PROVISIONED") | None, None) => Err(ApiError::validation(
            "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
        )),
        (Some(other), _) => Err(billing_mode_error(other)),
    }
}
