//! `ddbctl table …`

use anyhow::{Context, bail};
use ddb::client::Client;
use serde_json::{Value, json};

use super::Outcome;
use super::table_capacity;
use crate::cli::{Billing, ConnectionArgs, OutputFormat, TableCommand};
use crate::output::{emit, table};

pub fn run(
    client: &Client,
    connection: &ConnectionArgs,
    command: TableCommand,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    match command {
        TableCommand::Create {
            name,
            hash_key,
            range_key,
            billing,
            rcu,
            wcu,
        } => {
            let request =
                create_request(&name, &hash_key, range_key.as_deref(), billing, rcu, wcu)?;
            let answer = client.call("CreateTable", &request)?;
            print_description(format, answer.get("TableDescription"))?;
        }
        TableCommand::Ls => {
            let names = list(client)?;
            emit(format, &json!({"TableNames": names}), |_| {
                let mut t = table(&["table"]);
                for name in &names {
                    t.add_row(vec![name.clone()]);
                }
                vec![t]
            })?;
        }
        TableCommand::Describe { name } => {
            let answer = client.call("DescribeTable", &json!({"TableName": name}))?;
            let timeout = super::connect::timeout(connection)?;
            let capacity = table_capacity::gather(&connection.endpoint, &name, timeout);
            let mut description = answer
                .get("Table")
                .cloned()
                .context("the answer has no table description")?;
            description["Capacity"] = capacity_summary(&capacity);
            print_description(format, Some(&description))?;
        }
        TableCommand::Update { name, rcu, wcu } => {
            let request = json!({
                "TableName": name,
                "BillingMode": "PROVISIONED",
                "ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
            });
            let answer = client.call("UpdateTable", &request)?;
            print_description(format, answer.get("TableDescription"))?;
        }
        TableCommand::Capacity { name } => {
            // The table must exist: a typo should not print empty tables.
            client.call("DescribeTable", &json!({"TableName": name}))?;
            let timeout = super::connect::timeout(connection)?;
            let capacity = table_capacity::gather(&connection.endpoint, &name, timeout);
            emit(format, &capacity, table_capacity::render)?;
        }
        TableCommand::Delete { name } => {
            let answer = client.call("DeleteTable", &json!({"TableName": name}))?;
            print_description(format, answer.get("TableDescription"))?;
        }
    }
    Ok(Outcome::Clean)
}

/// The capacity totals `table describe` shows: consumed units and throttled requests across
/// the cluster, and GAC's burst credit, per kind.
fn capacity_summary(capacity: &table_capacity::TableCapacity) -> Value {
    let kind = |kind: &str| {
        let credit = capacity
            .gac
            .iter()
            .find(|row| row.kind == kind)
            .map(|row| row.burst_balance);
        json!({
            "ConsumedUnits": capacity.consumed(kind),
            "ThrottledRequests": capacity.throttled(kind),
            "BurstCreditUnits": credit,
        })
    };
    json!({"Read": kind("read"), "Write": kind("write")})
}

/// Every table name, following `LastEvaluatedTableName` through all pages.
fn list(client: &Client) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut request = json!({});
    loop {
        let answer = client.call("ListTables", &request)?;
        let page = answer
            .get("TableNames")
            .and_then(Value::as_array)
            .context("ListTables answer has no TableNames")?;
        names.extend(page.iter().filter_map(Value::as_str).map(str::to_owned));
        match answer.get("LastEvaluatedTableName") {
            Some(last) if !last.is_null() => request["ExclusiveStartTableName"] = last.clone(),
            _ => return Ok(names),
        }
    }
}

/// The CreateTable request for the flags.
pub(super) fn create_request(
    name: &str,
    hash_key: &str,
    range_key: Option<&str>,
    billing: Billing,
    rcu: Option<u64>,
    wcu: Option<u64>,
) -> anyhow::Result<Value> {
    let mut definitions = Vec::new();
    let mut schema = Vec::new();
    for (spec, role, flag) in [
        (Some(hash_key), "HASH", "--hash-key"),
        (range_key, "RANGE", "--range-key"),
    ] {
        let Some(spec) = spec else { continue };
        let (attribute, kind) = key_spec(spec).with_context(|| format!("{flag} {spec:?}"))?;
        definitions.push(json!({"AttributeName": attribute, "AttributeType": kind}));
        schema.push(json!({"AttributeName": attribute, "KeyType": role}));
    }
    let mut request = json!({
        "TableName": name,
        "AttributeDefinitions": definitions,
        "KeySchema": schema,
    });
    match (billing, rcu, wcu) {
        (Billing::OnDemand, None, None) => request["BillingMode"] = json!("PAY_PER_REQUEST"),
        (Billing::OnDemand, _, _) => bail!("--rcu and --wcu need --billing provisioned"),
        (Billing::Provisioned, Some(rcu), Some(wcu)) => {
            request["BillingMode"] = json!("PROVISIONED");
            request["ProvisionedThroughput"] =
                json!({"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu});
        }
        (Billing::Provisioned, _, _) => bail!("--billing provisioned needs --rcu and --wcu"),
    }
    Ok(request)
}

/// `NAME:TYPE` → (name, type), TYPE one of S, N, B.
fn key_spec(spec: &str) -> anyhow::Result<(&str, &'static str)> {
    let Some((name, kind)) = spec.rsplit_once(':') else {
        bail!("expected NAME:TYPE, e.g. pk:S");
    };
    if name.is_empty() {
        bail!("the attribute name is empty");
    }
    let kind = match kind.to_ascii_uppercase().as_str() {
        "S" => "S",
        "N" => "N",
        "B" => "B",
        _ => bail!("key type must be S, N or B, not {kind:?}"),
    };
    Ok((name, kind))
}

fn print_description(format: OutputFormat, description: Option<&Value>) -> anyhow::Result<()> {
    let description = description.context("the answer has no table description")?;
    emit(format, description, |d| {
        let text = |name: &str| d.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        let keys: Vec<String> = d
            .get("KeySchema")
            .and_then(Value::as_array)
            .map(|schema| {
                schema
                    .iter()
                    .map(|k| {
                        let name = k
                            .get("AttributeName")
                            .and_then(Value::as_str)
                            .unwrap_or("?");
                        let role = k.get("KeyType").and_then(Value::as_str).unwrap_or("?");
                        let kind = attribute_type(d, name);
                        format!("{name} ({kind}, {role})")
                    })
                    .collect()
            })
            .unwrap_or_default();
        let billing = d
            .pointer("/BillingModeSummary/BillingMode")
            .and_then(Value::as_str)
            .map_or_else(
                || {
                    let rcu = d.pointer("/ProvisionedThroughput/ReadCapacityUnits");
                    let wcu = d.pointer("/ProvisionedThroughput/WriteCapacityUnits");
                    format!(
                        "PROVISIONED ({} RCU, {} WCU)",
                        rcu.unwrap_or(&Value::Null),
                        wcu.unwrap_or(&Value::Null)
                    )
                },
                str::to_owned,
            );
        let mut t = table(&["table", "status", "keys", "billing", "items", "ARN"]);
        t.add_row(vec![
            text("TableName"),
            text("TableStatus"),
            keys.join("\n"),
            billing,
            d.get("ItemCount").map(Value::to_string).unwrap_or_default(),
            text("TableArn"),
        ]);
        let mut out = vec![t];
        if let Some(capacity) = d.get("Capacity") {
            let mut c = table(&[
                "capacity",
                "consumed units",
                "throttled requests",
                "burst credit",
            ]);
            for (label, kind) in [("read", "Read"), ("write", "Write")] {
                let field = |name: &str| capacity[kind][name].clone();
                c.add_row(vec![
                    label.to_string(),
                    field("ConsumedUnits")
                        .as_f64()
                        .map_or_else(String::new, |u| format!("{u:.1}")),
                    field("ThrottledRequests").to_string(),
                    field("BurstCreditUnits")
                        .as_f64()
                        .map_or_else(|| "-".to_string(), |u| format!("{u:.0}")),
                ]);
            }
            out.push(c);
        }
        out
    })
}

fn attribute_type<'a>(description: &'a Value, name: &str) -> &'a str {
    description
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .and_then(|defs| {
            defs.iter()
                .find(|d| d.get("AttributeName").and_then(Value::as_str) == Some(name))
        })
        .and_then(|d| d.get("AttributeType"))
        .and_then(Value::as_str)
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_has_schema_and_billing() {
        let request =
            create_request("t", "pk:S", Some("sk:n"), Billing::OnDemand, None, None).unwrap();
        assert_eq!(request["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(
            request["KeySchema"][1],
            json!({"AttributeName": "sk", "KeyType": "RANGE"})
        );
        assert_eq!(
            request["AttributeDefinitions"][1],
            json!({"AttributeName": "sk", "AttributeType": "N"})
        );
        let provisioned =
            create_request("t", "pk:S", None, Billing::Provisioned, Some(5), Some(2)).unwrap();
        assert_eq!(
            provisioned["ProvisionedThroughput"]["WriteCapacityUnits"],
            2
        );
    }

    #[test]
    fn inconsistent_billing_flags_and_bad_key_specs_are_refused() {
        assert!(create_request("t", "pk:S", None, Billing::Provisioned, Some(5), None).is_err());
        assert!(create_request("t", "pk:S", None, Billing::OnDemand, Some(5), Some(5)).is_err());
        assert!(create_request("t", "pk", None, Billing::OnDemand, None, None).is_err());
        assert!(create_request("t", "pk:X", None, Billing::OnDemand, None, None).is_err());
    }
}
