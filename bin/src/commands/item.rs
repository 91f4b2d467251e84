//! `ddbctl item …`

use ddb::client::Client;
use serde_json::{Value, json};

use super::Outcome;
use super::item_json::{add_placeholders, item_argument, names_argument};
use super::items_view::{items_table, key_names};
use crate::cli::{ConditionArgs, ItemCommand, OutputFormat, PlaceholderArgs, ReadManyArgs};
use crate::output::emit;

pub fn run(client: &Client, command: ItemCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
    match command {
        ItemCommand::Put {
            table,
            item,
            plain,
            condition,
        } => {
            let request = json!({
                "TableName": table,
                "Item": item_argument(&item, plain, "ITEM_JSON")?,
            });
            conditional_write(
                client,
                "PutItem",
                request,
                &condition,
                plain,
                format,
                &format!("put 1 item into {table}"),
            )?;
        }
        ItemCommand::Get {
            table,
            key,
            plain,
            consistent,
            projection,
            names,
        } => {
            let mut request = json!({
                "TableName": table,
                "Key": item_argument(&key, plain, "KEY_JSON")?,
                "ConsistentRead": consistent,
            });
            if let Some(projection) = projection {
                request["ProjectionExpression"] = json!(projection);
            }
            if let Some(names) = names {
                request["ExpressionAttributeNames"] = names_argument(&names)?;
            }
            let answer = client.call("GetItem", &request)?;
            emit(format, &answer, |a| match a.get("Item") {
                Some(item) => vec![items_table(
                    std::slice::from_ref(item),
                    &key_names(client, &table),
                )],
                None => {
                    crate::out!("no item with that key in {table}");
                    Vec::new()
                }
            })?;
        }
        ItemCommand::Delete {
            table,
            key,
            plain,
            condition,
            return_values,
        } => {
            let request = json!({
                "TableName": table,
                "Key": item_argument(&key, plain, "KEY_JSON")?,
                "ReturnValues": return_values.as_api(),
            });
            conditional_write(
                client,
                "DeleteItem",
                request,
                &condition,
                plain,
                format,
                &format!("deleted the item from {table}"),
            )?;
        }
        ItemCommand::Update {
            table,
            key,
            update,
            plain,
            condition,
            return_values,
        } => {
            let request = json!({
                "TableName": table,
                "Key": item_argument(&key, plain, "KEY_JSON")?,
                "UpdateExpression": update,
                "ReturnValues": return_values.as_api(),
            });
            conditional_write(
                client,
                "UpdateItem",
                request,
                &condition,
                plain,
                format,
                &format!("updated the item in {table}"),
            )?;
        }
        ItemCommand::Query {
            table,
            key_condition,
            plain,
            placeholders,
            read,
            reverse,
        } => {
            let mut request = json!({
                "TableName": table,
                "KeyConditionExpression": key_condition,
                "ScanIndexForward": !reverse,
            });
            add_read_many(&mut request, &placeholders, &read, plain)?;
            read_pages(client, "Query", request, read.all, format)?;
        }
        ItemCommand::Scan {
            table,
            plain,
            placeholders,
            read,
            segment,
            total_segments,
        } => {
            let mut request = json!({"TableName": table});
            if let (Some(segment), Some(total)) = (segment, total_segments) {
                request["Segment"] = json!(segment);
                request["TotalSegments"] = json!(total);
            }
            add_read_many(&mut request, &placeholders, &read, plain)?;
            read_pages(client, "Scan", request, read.all, format)?;
        }
    }
    Ok(Outcome::Clean)
}

fn add_condition(
    request: &mut Value,
    condition: &ConditionArgs,
    plain: bool,
) -> anyhow::Result<()> {
    if let Some(expression) = &condition.condition {
        request["ConditionExpression"] = json!(expression);
    }
    add_placeholders(
        request,
        condition.placeholders.names.as_deref(),
        condition.placeholders.values.as_deref(),
        plain,
    )
}

fn add_read_many(
    request: &mut Value,
    placeholders: &PlaceholderArgs,
    read: &ReadManyArgs,
    plain: bool,
) -> anyhow::Result<()> {
    if let Some(filter) = &read.filter {
        request["FilterExpression"] = json!(filter);
    }
    if let Some(projection) = &read.projection {
        request["ProjectionExpression"] = json!(projection);
    }
    if let Some(limit) = read.limit {
        request["Limit"] = json!(limit);
    }
    if read.consistent {
        request["ConsistentRead"] = json!(true);
    }
    add_placeholders(
        request,
        placeholders.names.as_deref(),
        placeholders.values.as_deref(),
        plain,
    )
}

/// Runs a Query or Scan, following `LastEvaluatedKey` when `all`, and prints the items with
/// their counts (and the key to continue from, when there is more).
fn read_pages(
    client: &Client,
    operation: &str,
    mut request: Value,
    all: bool,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let mut items: Vec<Value> = Vec::new();
    let mut scanned = 0u64;
    let mut pages = 0u64;
    let last_key = loop {
        let answer = client.call(operation, &request)?;
        pages += 1;
        if let Some(Value::Array(page)) = answer.get("Items") {
            items.extend(page.iter().cloned());
        }
        scanned += answer
            .get("ScannedCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match answer.get("LastEvaluatedKey") {
            Some(key) if all && !key.is_null() => request["ExclusiveStartKey"] = key.clone(),
            other => break other.cloned(),
        }
    };
    let mut report = json!({
        "Items": items,
        "Count": items.len(),
        "ScannedCount": scanned,
        "Pages": pages,
    });
    if let Some(key) = &last_key {
        report["LastEvaluatedKey"] = key.clone();
    }
    emit(format, &report, |_| {
        if items.is_empty() {
            Vec::new()
        } else {
            let table = request
                .get("TableName")
                .and_then(Value::as_str)
                .unwrap_or("");
            vec![items_table(&items, &key_names(client, table))]
        }
    })?;
    if format == OutputFormat::Table {
        let more = if last_key.is_some() {
            "; more items remain (add --all)"
        } else {
            ""
        };
        let noun = if items.len() == 1 { "item" } else { "items" };
        crate::out!(
            "{} {noun} ({scanned} scanned, {pages} pages){more}",
            items.len()
        );
    }
    Ok(())
}

/// Sends a write (`PutItem`, `DeleteItem`, `UpdateItem`) with the command's condition, then
/// prints the returned attributes, if any, else the one-line confirmation `done`.
fn conditional_write(
    client: &Client,
    operation: &str,
    mut request: Value,
    condition: &ConditionArgs,
    plain: bool,
    format: OutputFormat,
    done: &str,
) -> anyhow::Result<()> {
    add_condition(&mut request, condition, plain)?;
    let answer = client.call(operation, &request)?;
    let table = request["TableName"].as_str().unwrap_or_default();
    emit(format, &answer, |a| match a.get("Attributes") {
        Some(item) => vec![items_table(
            std::slice::from_ref(item),
            &key_names(client, table),
        )],
        None => {
            crate::out!("{done}");
            Vec::new()
        }
    })
}
