//! `ddbctl archive ls|verify|restore`: what the archive holds, whether it is sound, and
//! rebuilding a table from it.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ddb::archive::{
    Archive, ArchiveUrl, PartitionObjects, decode_chunk, deep_verify_partition,
    list_partition_objects, list_partitions, verify_partition,
};
use serde::Serialize;

use super::{Outcome, archive_restore};
use crate::cli::{ArchiveArgs, ArchiveCommand, ConnectionArgs, OutputFormat};
use crate::output::{bytes, emit, table};

pub fn run(
    command: ArchiveCommand,
    connection: &ConnectionArgs,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting an async runtime")?;
    match command {
        ArchiveCommand::Ls { location } => runtime.block_on(ls(&location, format)),
        ArchiveCommand::Verify {
            location,
            table_id,
            partition,
            deep,
        } => runtime.block_on(verify(&location, table_id.zip(partition), deep, format)),
        #[cfg(feature = "bucket-admin")]
        ArchiveCommand::Bucket(command) => {
            runtime.block_on(super::archive_bucket::run(command, format))
        }
        ArchiveCommand::Restore(args) => archive_restore::run(&args, connection, format),
    }
}

/// Opens the archive the flags name (credentials from the environment).
pub(super) fn open(location: &ArchiveArgs) -> anyhow::Result<Archive> {
    let url = ArchiveUrl::parse(&location.archive)
        .with_context(|| format!("archive URL {}", location.archive))?;
    url.open_archive(|name| std::env::var(name).ok())
        .with_context(|| format!("opening {url}"))
}

#[derive(Serialize)]
struct PartitionListing {
    table_id: u64,
    partition_id: u64,
    chunks: usize,
    snapshots: usize,
    /// Chunks and snapshots.
    objects: usize,
    /// Sum of the objects' sizes.
    bytes: u64,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    newest_snapshot_lsn: Option<u64>,
    /// When the newest archived entry was written (ms since the epoch); `None` when there is
    /// no chunk or the newest one does not decode (`archive verify` says why).
    newest_entry_ms: Option<u64>,
    /// Now minus `newest_entry_ms`.
    lag_ms: Option<u64>,
}

async fn ls(location: &ArchiveArgs, format: OutputFormat) -> anyhow::Result<Outcome> {
    let archive = open(location)?;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let mut rows = Vec::new();
    for (table_id, partition_id) in list_partitions(&archive).await? {
        let objects = list_partition_objects(&archive, table_id, partition_id).await?;
        let newest_entry_ms = newest_entry_ms(&archive, &objects).await?;
        rows.push(PartitionListing {
            table_id,
            partition_id,
            chunks: objects.chunks.len(),
            snapshots: objects.snapshots.len(),
            objects: objects.chunks.len() + objects.snapshots.len(),
            bytes: objects.bytes(),
            first_lsn: objects.chunks.iter().map(|chunk| chunk.name.first.0).min(),
            last_lsn: objects.chunks.iter().map(|chunk| chunk.name.last.0).max(),
            newest_snapshot_lsn: objects.snapshots.last().map(|snapshot| snapshot.name.lsn.0),
            newest_entry_ms,
            lag_ms: newest_entry_ms.map(|ms| now_ms.saturating_sub(ms)),
        });
    }
    emit(format, &rows, |rows| {
        let mut view = table(&[
            "table id",
            "partition",
            "chunks",
            "snapshots",
            "size",
            "LSNs",
            "newest snapshot",
            "lag",
        ]);
        for row in rows {
            view.add_row(vec![
                row.table_id.to_string(),
                row.partition_id.to_string(),
                row.chunks.to_string(),
                row.snapshots.to_string(),
                bytes(row.bytes),
                match (row.first_lsn, row.last_lsn) {
                    (Some(first), Some(last)) => format!("{first}..={last}"),
                    _ => "-".to_string(),
                },
                row.newest_snapshot_lsn
                    .map_or_else(|| "-".to_string(), |lsn| lsn.to_string()),
                row.lag_ms.map_or_else(|| "-".to_string(), duration),
            ]);
        }
        vec![view]
    })?;
    Ok(Outcome::Clean)
}

/// The timestamp of the last entry of the chunk that reaches furthest (the only object read).
async fn newest_entry_ms(
    archive: &Archive,
    objects: &PartitionObjects,
) -> anyhow::Result<Option<u64>> {
    let Some(newest) = objects.chunks.iter().max_by_key(|chunk| chunk.name.last) else {
        return Ok(None);
    };
    let bytes = archive.get(&archive.path_of(&newest.name.key())?).await?;
    Ok(decode_chunk(&bytes)
        .ok()
        .and_then(|chunk| chunk.entries.last().map(|entry| entry.timestamp_ms)))
}

/// A duration for people: `850ms`, `42s`, `3m 05s`, `2h 01m`, `4d 03h`.
fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    match seconds {
        0 => format!("{ms}ms"),
        1..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        3600..86_400 => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
        _ => format!("{}d {:02}h", seconds / 86_400, seconds / 3600 % 24),
    }
}

#[derive(Serialize)]
struct PartitionVerdict {
    table_id: u64,
    partition_id: u64,
    chunks: usize,
    snapshots: usize,
    last_verified_lsn: u64,
    /// With --deep: the LSN the replay reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed_through: Option<u64>,
    problems: Vec<String>,
}

async fn verify(
    location: &ArchiveArgs,
    only: Option<(u64, u64)>,
    deep: bool,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    let archive = open(location)?;
    let partitions = match only {
        Some(one) => vec![one],
        None => list_partitions(&archive).await?,
    };
    let mut verdicts = Vec::new();
    for (table_id, partition_id) in partitions {
        let report = if deep {
            deep_verify_partition(&archive, table_id, partition_id).await?
        } else {
            verify_partition(&archive, table_id, partition_id).await?
        };
        verdicts.push(PartitionVerdict {
            table_id,
            partition_id,
            chunks: report.chunks,
            snapshots: report.snapshots,
            last_verified_lsn: report.last_verified_lsn.0,
            replayed_through: report.replayed_through.map(|lsn| lsn.0),
            problems: report.problems.iter().map(ToString::to_string).collect(),
        });
    }
    let sound = verdicts.iter().all(|verdict| verdict.problems.is_empty());
    emit(format, &verdicts, |verdicts| {
        let mut view = table(&[
            "table id",
            "partition",
            "chunks",
            "snapshots",
            "verified through",
            "verdict",
        ]);
        for verdict in verdicts {
            view.add_row(vec![
                verdict.table_id.to_string(),
                verdict.partition_id.to_string(),
                verdict.chunks.to_string(),
                verdict.snapshots.to_string(),
                verdict.last_verified_lsn.to_string(),
                if verdict.problems.is_empty() {
                    "ok".to_string()
                } else {
                    verdict.problems.join("\n")
                },
            ]);
        }
        vec![view]
    })?;
    Ok(if sound {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(42_000), "42s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(7_260_000), "2h 01m");
        assert_eq!(duration(356_400_000), "4d 03h");
    }
}
