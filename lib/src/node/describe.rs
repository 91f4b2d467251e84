//! `TableDescription`: how a table looks to DynamoDB clients.

use serde_json::{Value, json};

use crate::catalog::{Billing, TableDef};

/// The `TableDescription` object of DescribeTable, CreateTable, UpdateTable and DeleteTable.
pub fn table_description(table: &TableDef, region: &str, status: &str) -> Value {
    let mut key_schema = vec![json!({
        "AttributeName": table.key_schema.partition_key.name,
        "KeyType": "HASH",
    })];
    if let Some(sort) = &table.key_schema.sort_key {
        key_schema.push(json!({"AttributeName": sort.name, "KeyType": "RANGE"}));
    }
    let definitions: Vec<Value> = table
        .attribute_definitions
        .iter()
        .map(|d| json!({"AttributeName": d.name, "AttributeType": d.scalar_type.as_str()}))
        .collect();
    let (read, write, mode) = match table.billing {
        Billing::PayPerRequest => (0, 0, "PAY_PER_REQUEST"),
        Billing::Provisioned {
            read_capacity_units,
            write_capacity_units,
        } => (read_capacity_units, write_capacity_units, "PROVISIONED"),
    };
    let created = table.created_at_ms as f64 / 1000.0;
    let mut description = json!({
        "TableName": table.name,
        "TableId": format!("{:016x}-ddb", table.id),
        "TableArn": format!("arn:aws:dynamodb:{region}:000000000000:table/{}", table.name),
        "TableStatus": status,
        "CreationDateTime": created,
        "KeySchema": key_schema,
        "AttributeDefinitions": definitions,
        "ProvisionedThroughput": {
            "ReadCapacityUnits": read,
            "WriteCapacityUnits": write,
            "NumberOfDecreasesToday": 0,
        },
        "ItemCount": 0,
        "TableSizeBytes": 0,
        "DeletionProtectionEnabled": false,
    });
    if table.billing == Billing::PayPerRequest {
        description["BillingModeSummary"] = json!({
            "BillingMode": mode,
            "LastUpdateToPayPerRequestDateTime": created,
        });
    }
    description
}
