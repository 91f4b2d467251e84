//! `ddbctl archive ls|verify`: what the WAL archive holds, and whether it is sound.

use anyhow::Context;
use ddb::archive::{Archive, ArchiveUrl, list_chunks, list_partitions, verify_partition};
use serde::Serialize;

use super::Outcome;
use crate::cli::{ArchiveArgs, ArchiveCommand, OutputFormat};
use crate::output::{emit, table};

pub fn run(command: ArchiveCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
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
        } => runtime.block_on(verify(&location, table_id.zip(partition), format)),
        #[cfg(feature = "bucket-admin")]
        ArchiveCommand::Bucket(command) => {
            runtime.block_on(super::archive_bucket::run(command, format))
        }
    }
}

fn open(location: &ArchiveArgs) -> anyhow::Result<Archive> {
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
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
}

async fn ls(location: &ArchiveArgs, format: OutputFormat) -> anyhow::Result<Outcome> {
    let archive = open(location)?;
    let mut rows = Vec::new();
    for (table_id, partition_id) in list_partitions(&archive).await? {
        let chunks = list_chunks(&archive, table_id, partition_id).await?;
        rows.push(PartitionListing {
            table_id,
            partition_id,
            chunks: chunks.len(),
            first_lsn: chunks.first().map(|chunk| chunk.first.0),
            last_lsn: chunks.last().map(|chunk| chunk.last.0),
        });
    }
    emit(format, &rows, |rows| {
        let mut view = table(&["table id", "partition", "chunks", "LSNs"]);
        for row in rows {
            view.add_row(vec![
                row.table_id.to_string(),
                row.partition_id.to_string(),
                row.chunks.to_string(),
                match (row.first_lsn, row.last_lsn) {
                    (Some(first), Some(last)) => format!("{first}..={last}"),
                    _ => "-".to_string(),
                },
            ]);
        }
        vec![view]
    })?;
    Ok(Outcome::Clean)
}

#[derive(Serialize)]
struct PartitionVerdict {
    table_id: u64,
    partition_id: u64,
    chunks: usize,
    last_verified_lsn: u64,
    problems: Vec<String>,
}

async fn verify(
    location: &ArchiveArgs,
    only: Option<(u64, u64)>,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    let archive = open(location)?;
    let partitions = match only {
        Some(one) => vec![one],
        None => list_partitions(&archive).await?,
    };
    let mut verdicts = Vec::new();
    for (table_id, partition_id) in partitions {
        let report = verify_partition(&archive, table_id, partition_id).await?;
        verdicts.push(PartitionVerdict {
            table_id,
            partition_id,
            chunks: report.chunks,
            last_verified_lsn: report.last_verified_lsn.0,
            problems: report.problems.iter().map(ToString::to_string).collect(),
        });
    }
    let sound = verdicts.iter().all(|verdict| verdict.problems.is_empty());
    emit(format, &verdicts, |verdicts| {
        let mut view = table(&[
            "table id",
            "partition",
            "chunks",
            "verified through",
            "verdict",
        ]);
        for verdict in verdicts {
            view.add_row(vec![
                verdict.table_id.to_string(),
                verdict.partition_id.to_string(),
                verdict.chunks.to_string(),
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
