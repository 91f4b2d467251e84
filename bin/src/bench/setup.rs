//! Getting the bench table ready: create it if missing, preload items for read workloads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ddb::client::{Client, ClientError};
use serde_json::{Value, json};

use super::workload::{payload, put_request_entry};
use crate::output::Progress;

/// BatchWriteItem's limit on requests per call.
pub(crate) const BATCH: u64 = 25;

/// Makes sure `table` exists with HASH `pk` (S) and RANGE `sk` (N), creating it
/// PAY_PER_REQUEST if missing and waiting until it is ACTIVE.
pub fn ensure_table(client: &Client, table: &str) -> anyhow::Result<()> {
    match client.call("DescribeTable", &json!({"TableName": table})) {
        Ok(answer) => {
            let schema = answer
                .pointer("/Table/KeySchema")
                .cloned()
                .unwrap_or_default();
            let expected = json!([
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ]);
            if schema != expected {
                bail!(
                    "table {table} exists with key schema {schema}; the bench needs HASH pk (S) and RANGE sk (N): pick another --table"
                );
            }
        }
        Err(ClientError::Service { code, .. }) if code == "ResourceNotFoundException" => {
            client.call(
                "CreateTable",
                &json!({
                    "TableName": table,
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "N"},
                    ],
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "BillingMode": "PAY_PER_REQUEST",
                }),
            )?;
        }
        Err(error) => return Err(error.into()),
    }
    wait_active(client, table)
}

/// Waits up to 60 s until `table` is ACTIVE.
pub fn wait_active(client: &Client, table: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = client.call("DescribeTable", &json!({"TableName": table}))?;
        let status = answer.pointer("/Table/TableStatus").and_then(Value::as_str);
        if status == Some("ACTIVE") {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("table {table} is still {status:?} after 60 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes items `0..items` with BatchWriteItem from `threads` clients made by `make_client`,
/// showing a progress line, resending what the node leaves unprocessed.
pub fn preload(
    make_client: &(dyn Fn() -> anyhow::Result<Client> + Sync),
    table: &str,
    items: u64,
    item_bytes: u64,
    threads: u32,
) -> anyhow::Result<()> {
    let payload = payload(item_bytes);
    let batches = items.div_ceil(BATCH);
    let next_batch = AtomicU64::new(0);
    let written = AtomicU64::new(0);
    let progress = Progress::stderr();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let client = make_client()?;
                    loop {
                        let batch = next_batch.fetch_add(1, Ordering::Relaxed);
                        if batch >= batches {
                            return Ok(());
                        }
                        let first = batch * BATCH;
                        let last = (first + BATCH).min(items);
                        let entries: Vec<Value> = (first..last)
                            .map(|i| put_request_entry(i, &payload))
                            .collect();
                        write_batch(&client, table, entries)?;
                        let done =
                            written.fetch_add(last - first, Ordering::Relaxed) + last - first;
                        progress.update(&format!("preloading {table}: {done}/{items} items"));
                    }
                })
            })
            .collect();
        let mut outcome = Ok(());
        for worker in workers {
            let result = worker
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a preload thread panicked")));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        progress.finish();
        outcome
    })
    .with_context(|| format!("preloading {items} items into {table}"))
}

/// Writes `entries` (at most [`BATCH`] `PutRequest`s) to `table` with BatchWriteItem, resending
/// what the node leaves unprocessed with exponential backoff, up to 10 attempts.
pub(crate) fn write_batch(
    client: &Client,
    table: &str,
    mut entries: Vec<Value>,
) -> anyhow::Result<()> {
    for attempt in 0..10u32 {
        let answer = match client.call("BatchWriteItem", &json!({"RequestItems": {table: entries}}))
        {
            Ok(answer) => answer,
            // A group electing a leader (a new table's, or after a failover) or a throttled
            // partition: worth another try, as the SDKs do.
            Err(ddb::client::ClientError::Service { code, .. })
                if attempt < 9
                    && matches!(
                        code.as_str(),
                        "ServiceUnavailable"
                            | "ThrottlingException"
                            | "ProvisionedThroughputExceededException"
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(50 << attempt.min(5)));
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        match answer
            .pointer(&format!(
                "/UnprocessedItems/{}",
                table.replace('~', "~0").replace('/', "~1")
            ))
            .and_then(Value::as_array)
        {
            Some(left) if !left.is_empty() => {
                entries = left.clone();
                std::thread::sleep(Duration::from_millis(10 << attempt.min(6)));
            }
            _ => return Ok(()),
        }
    }
    bail!("the node left items unprocessed after 10 attempts")
}
