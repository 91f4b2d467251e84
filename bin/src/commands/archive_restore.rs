//! `ddbctl archive restore`: a table rebuilt from the archive, into replica stores on disk or
//! into a new table on a node.

use std::path::PathBuf;

use anyhow::{Context, bail};
use ddb::archive::{RestoreTarget, restore_catalog, restore_partition};
use ddb::catalog::{KeyAttribute, PartitionDef, TableDef};
use ddb::client::{Client, ClientError};
use ddb::digest::CheckpointPolicy;
use ddb::item::{decode_item, item_to_json};
use ddb::replica::{Direction, FjallReplicaStore, KeyRange, ReplicaStore};
use ddb::wal::Lsn;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Outcome, connect, table};
use crate::bench::setup::{BATCH, wait_active, write_batch};
use crate::cli::{Billing, ConnectionArgs, OutputFormat, RestoreArgs};
use crate::output::{Progress, emit};

/// The name of the report `--into` leaves beside the replica stores.
const REPORT_FILE: &str = "restore.json";

/// What a restore did: printed with `--output json` and written to `DIR/restore.json`.
#[derive(Serialize)]
struct RestoreSummary {
    archive: String,
    /// `latest`, `lsn N` or the RFC 3339 time asked for.
    target: String,
    /// The table as the archived catalog defined it at the target.
    table: TableDef,
    #[serde(skip_serializing_if = "Option::is_none")]
    into: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    items_written: Option<u64>,
    partitions: Vec<PartitionSummary>,
}

#[derive(Serialize)]
struct PartitionSummary {
    partition_id: u64,
    /// The snapshot object restored from (`null`: from LSN 1), and its LSN.
    snapshot: Option<String>,
    snapshot_lsn: Option<u64>,
    items_installed: u64,
    entries_applied: u64,
    final_lsn: u64,
    /// RFC 3339 time of the entry at `final_lsn`.
    final_time: Option<String>,
    /// Fingerprint of the restored state's digest.
    digest: String,
    /// The last LSN at which the restored digest matched the archive's.
    verified_lsn: u64,
    objects_read: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    replica_dir: Option<PathBuf>,
}

/// Where the restored partitions go.
enum Destination {
    /// Replica stores under `DIR/replicas/`, kept. `created`: DIR did not exist before.
    Into { dir: PathBuf, created: bool },
    /// Replica stores in a scratch directory, then a new table on a node.
    Table {
        name: String,
        client: Box<Client>,
        scratch: tempfile::TempDir,
    },
}

impl Destination {
    /// Checks the destination before any work: `DIR` empty or missing, table `NEW` absent.
    fn prepare(args: &RestoreArgs, connection: &ConnectionArgs) -> anyhow::Result<Self> {
        if let Some(dir) = &args.into {
            let occupied = std::fs::read_dir(dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if occupied {
                bail!(
                    "{} is not empty: restore into an empty or missing directory",
                    dir.display()
                );
            }
            let created = !dir.exists();
            std::fs::create_dir_all(dir.join("replicas"))
                .with_context(|| format!("creating {}", dir.display()))?;
            return Ok(Destination::Into {
                dir: dir.clone(),
                created,
            });
        }
        let Some(name) = &args.as_table else {
            bail!("say where to restore: --into DIR or --as-table NEW");
        };
        let client = connect::client(connection)?;
        match client.call("DescribeTable", &json!({"TableName": name})) {
            Ok(_) => bail!(
                "table {name} exists on {}: pick a new name",
                client.endpoint()
            ),
            Err(ClientError::Service { code, .. }) if code == "ResourceNotFoundException" => {}
            Err(error) => return Err(error).context("checking that the new table is free"),
        }
        let scratch = tempfile::Builder::new()
            .prefix("ddbctl-restore-")
            .tempdir()
            .context("creating a scratch directory for the restored partitions")?;
        Ok(Destination::Table {
            name: name.clone(),
            client: Box::new(client),
            scratch,
        })
    }

    /// Removes what a failed restore wrote under `--into` (the directory was empty or missing,
    /// so all of it, and the directory if it made it), so the same command can run again. A
    /// scratch directory goes by itself.
    fn discard(&self) {
        if let Destination::Into { dir, created } = self {
            let _ = std::fs::remove_dir_all(dir.join("replicas"));
            if *created {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    fn replica_dir(&self, partition_id: u64) -> PathBuf {
        match self {
            Destination::Into { dir, .. } => dir.join("replicas").join(partition_id.to_string()),
            Destination::Table { scratch, .. } => scratch.path().join(partition_id.to_string()),
        }
    }
}

pub fn run(
    args: &RestoreArgs,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    let time_ms = args.to_time.as_deref().map(parse_time).transpose()?;
    let destination = Destination::prepare(args, connection)?;
    // Two workers: chunk downloads and decoding run beside the applies.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    let (table, restored) = match runtime.block_on(restore_table(args, time_ms, &destination)) {
        Ok(restored) => restored,
        Err(error) => {
            destination.discard();
            return Err(error);
        }
    };
    let (partitions, stores): (Vec<_>, Vec<_>) = restored.into_iter().unzip();
    let mut summary = RestoreSummary {
        archive: args.location.archive.clone(),
        target: match (args.to_lsn, &args.to_time) {
            (Some(lsn), _) => format!("lsn {lsn}"),
            (None, Some(time)) => time.clone(),
            (None, None) => "latest".to_owned(),
        },
        table,
        into: None,
        as_table: None,
        items_written: None,
        partitions,
    };
    match &destination {
        Destination::Into { dir, .. } => {
            summary.into = Some(dir.clone());
            let path = dir.join(REPORT_FILE);
            std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Destination::Table { name, client, .. } => {
            let written = write_table(client, name, &summary.table, &stores)?;
            summary.as_table = Some(name.clone());
            summary.items_written = Some(written);
        }
    }
    emit(format, &summary, |summary| {
        let mut view = crate::output::table(&[
            "partition",
            "snapshot LSN",
            "entries applied",
            "final LSN",
            "final time",
            "digest",
            "verified through",
        ]);
        for partition in &summary.partitions {
            view.add_row(vec![
                partition.partition_id.to_string(),
                partition
                    .snapshot_lsn
                    .map_or_else(|| "-".to_owned(), |lsn| lsn.to_string()),
                partition.entries_applied.to_string(),
                partition.final_lsn.to_string(),
                partition
                    .final_time
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                partition.digest.clone(),
                partition.verified_lsn.to_string(),
            ]);
        }
        vec![view]
    })?;
    Ok(Outcome::Clean)
}

/// Restores the catalog as of the target, finds the table, and restores the partitions asked
/// for into stores at the destination.
async fn restore_table(
    args: &RestoreArgs,
    time_ms: Option<u64>,
    destination: &Destination,
) -> anyhow::Result<(TableDef, Vec<(PartitionSummary, FjallReplicaStore)>)> {
    let archive = super::archive::open(&args.location)?;
    let catalog_target = time_ms.map_or(RestoreTarget::Latest, RestoreTarget::Time);
    let catalog = restore_catalog(&archive, catalog_target)
        .await
        .context("restoring the catalog (the metadata group: table 0, partition 0)")?;
    let table = catalog
        .table(&args.table)
        .with_context(|| match &args.to_time {
            Some(time) => format!("table {} did not exist at {time}", args.table),
            None => format!("the archived catalog has no table {}", args.table),
        })?;
    let mut restored = Vec::new();
    for (partition, target) in partitions_to_restore(&table, args, time_ms)? {
        let dir = destination.replica_dir(partition.id);
        let store = FjallReplicaStore::open(&dir, CheckpointPolicy::default())
            .with_context(|| format!("opening a replica store in {}", dir.display()))?;
        let bar = Progress::bar(0, "entries");
        bar.update(&format!("partition {}", partition.id));
        let report = restore_partition(
            &archive,
            table.id,
            partition.id,
            target,
            &store,
            &mut |progress| bar.set(progress.entries_applied, progress.entries_total),
        )
        .await
        .with_context(|| format!("restoring partition {} of {}", partition.id, table.name))?;
        bar.finish();
        store
            .persist()
            .with_context(|| format!("syncing {}", dir.display()))?;
        let summary = PartitionSummary {
            partition_id: partition.id,
            snapshot: report.snapshot.map(|name| name.key()),
            snapshot_lsn: report.snapshot.map(|name| name.lsn.0),
            items_installed: report.items_installed,
            entries_applied: report.entries_applied,
            final_lsn: report.final_lsn.0,
            final_time: report.final_timestamp_ms.map(format_time),
            digest: report.digest.fingerprint(),
            verified_lsn: report.verified_lsn.0,
            objects_read: report.objects_read,
            replica_dir: matches!(destination, Destination::Into { .. }).then_some(dir),
        };
        restored.push((summary, store));
    }
    Ok(((*table).clone(), restored))
}

/// The partitions to restore and the target of each.
fn partitions_to_restore(
    table: &TableDef,
    args: &RestoreArgs,
    time_ms: Option<u64>,
) -> anyhow::Result<Vec<(PartitionDef, RestoreTarget)>> {
    let Some(lsn) = args.to_lsn else {
        let target = time_ms.map_or(RestoreTarget::Latest, RestoreTarget::Time);
        return Ok(table.partitions.iter().map(|p| (*p, target)).collect());
    };
    let ids: Vec<String> = table.partitions.iter().map(|p| p.id.to_string()).collect();
    let partition = match (args.partition, table.partitions.as_slice()) {
        (None, [only]) => *only,
        (None, _) => bail!(
            "table {} has {} partitions (ids {}): an LSN names a point in one, pick it with --partition",
            table.name,
            ids.len(),
            ids.join(", ")
        ),
        (Some(id), partitions) => *partitions.iter().find(|p| p.id == id).with_context(|| {
            format!(
                "table {} has no partition {id} (its partitions: {})",
                table.name,
                ids.join(", ")
            )
        })?,
    };
    Ok(vec![(partition, RestoreTarget::Lsn(Lsn(lsn)))])
}

/// Creates table `name` like `table` and writes every item of `stores` into it.
fn write_table(
    client: &Client,
    name: &str,
    table: &TableDef,
    stores: &[FjallReplicaStore],
) -> anyhow::Result<u64> {
    let spec = |key: &KeyAttribute| format!("{}:{}", key.name, key.scalar_type.as_str());
    let schema = &table.key_schema;
    let (billing, rcu, wcu) = match table.billing {
        ddb::catalog::Billing::PayPerRequest => (Billing::OnDemand, None, None),
        ddb::catalog::Billing::Provisioned {
            read_capacity_units,
            write_capacity_units,
        } => (
            Billing::Provisioned,
            Some(read_capacity_units),
            Some(write_capacity_units),
        ),
    };
    let request = table::create_request(
        name,
        &spec(&schema.partition_key),
        schema.sort_key.as_ref().map(spec).as_deref(),
        billing,
        rcu,
        wcu,
    )?;
    client
        .call("CreateTable", &request)
        .with_context(|| format!("creating table {name}"))?;
    wait_active(client, name)?;

    let mut total = 0u64;
    for store in stores {
        total += store
            .snapshot()?
            .scan(&KeyRange::all(), Direction::Forward)
            .count() as u64;
    }
    let bar = Progress::bar(total, "items");
    bar.update(&format!("writing {name}"));
    let mut written = 0u64;
    let mut batch = Vec::new();
    for store in stores {
        let view = store.snapshot()?;
        for pair in view.scan(&KeyRange::all(), Direction::Forward) {
            let (key, bytes) = pair?;
            let item = decode_item(&bytes).with_context(|| {
                format!("restored item under key {key:02x?} is not a canonical item")
            })?;
            batch.push(json!({"PutRequest": {"Item": item_to_json(&item)}}));
            if batch.len() as u64 == BATCH {
                written += flush(client, name, &mut batch)?;
                bar.set(written, total);
            }
        }
    }
    written += flush(client, name, &mut batch)?;
    bar.finish();
    Ok(written)
}

/// Writes the batch (if any) and empties it; returns how many items it held.
fn flush(client: &Client, name: &str, batch: &mut Vec<Value>) -> anyhow::Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let count = batch.len() as u64;
    write_batch(client, name, std::mem::take(batch))
        .with_context(|| format!("writing items into {name}"))?;
    Ok(count)
}

/// `--to-time` in milliseconds since the epoch.
fn parse_time(text: &str) -> anyhow::Result<u64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("--to-time {text:?} is not an RFC 3339 time such as 2026-03-01T09:30:00Z")
    })?;
    u64::try_from(time.timestamp_millis())
        .ok()
        .with_context(|| format!("--to-time {text} is before 1970"))
}

/// Milliseconds since the epoch as RFC 3339 in UTC, to the millisecond.
fn format_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{ms} ms since the epoch"),
            |time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_with_a_zone_or_an_offset_and_print_back_in_utc() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(
            parse_time("2026-03-01T10:30:00.250+01:00").unwrap(),
            parse_time("2026-03-01T09:30:00.250Z").unwrap()
        );
        assert_eq!(
            format_time(parse_time("2026-03-01T09:30:00.250Z").unwrap()),
            "2026-03-01T09:30:00.250Z"
        );
        for bad in [
            "2026-03-01",
            "2026-03-01T09:30:00",
            "yesterday",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
