//! `ddbctl wal …`

use std::path::Path;

use anyhow::Context;
use ddb::wal::{SegmentVerdict, WalInspection, inspect};
use serde::Serialize;

use super::Outcome;
use crate::cli::OutputFormat;
use crate::output::{bytes, emit, table};

#[derive(Serialize)]
struct SegmentRow {
    file: String,
    first_lsn: u64,
    last_lsn: u64,
    entries: u64,
    /// File size, preallocated tail included.
    bytes: u64,
    /// Zero bytes the writer preallocated after the last record (newest segment only).
    preallocated_bytes: u64,
    /// `ok`, `torn_tail` or `corrupt`.
    verdict: &'static str,
    /// Where the damage starts, for torn tails and corruption.
    offset: Option<u64>,
    detail: Option<String>,
}

#[derive(Serialize)]
struct InspectReport {
    dir: String,
    segments: Vec<SegmentRow>,
    total_entries: u64,
    total_bytes: u64,
    first_lsn: Option<u64>,
    last_lsn: Option<u64>,
    /// `ok` (every frame sound), `torn_tail` (recovery will cut the tail) or `corrupt`.
    verdict: &'static str,
}

fn report(inspection: &WalInspection) -> InspectReport {
    let segments: Vec<SegmentRow> = inspection
        .segments
        .iter()
        .map(|s| {
            let (verdict, offset, detail) = match &s.verdict {
                SegmentVerdict::Ok => ("ok", None, None),
                SegmentVerdict::TornTail { offset, bytes } => (
                    "torn_tail",
                    Some(*offset),
                    Some(format!("recovery cuts {bytes} bytes")),
                ),
                SegmentVerdict::Corrupt { offset, reason } => {
                    ("corrupt", Some(*offset), Some(reason.clone()))
                }
            };
            SegmentRow {
                file: s.file_name.clone(),
                first_lsn: s.first_lsn.0,
                last_lsn: s.last_lsn.0,
                entries: s.entries,
                bytes: s.bytes,
                preallocated_bytes: s.preallocated_bytes,
                verdict,
                offset,
                detail,
            }
        })
        .collect();
    let verdict = if segments.iter().any(|s| s.verdict == "corrupt") {
        "corrupt"
    } else if segments.iter().any(|s| s.verdict == "torn_tail") {
        "torn_tail"
    } else {
        "ok"
    };
    InspectReport {
        dir: inspection.dir.display().to_string(),
        segments,
        total_entries: inspection.total_entries,
        total_bytes: inspection.total_bytes,
        first_lsn: inspection.first_lsn.map(|l| l.0),
        last_lsn: inspection.last_lsn.map(|l| l.0),
        verdict,
    }
}

pub fn inspect_dir(dir: &Path, format: OutputFormat) -> anyhow::Result<Outcome> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let inspection =
        inspect(dir).with_context(|| format!("inspecting WAL directory {}", dir.display()))?;
    let report = report(&inspection);
    emit(format, &report, |r| {
        let mut segments = table(&["segment", "LSNs", "entries", "bytes", "checksums"]);
        for s in &r.segments {
            let lsns = if s.entries == 0 {
                "(empty)".to_string()
            } else {
                format!("{}..={}", s.first_lsn, s.last_lsn)
            };
            let verdict = match (s.verdict, s.offset, &s.detail) {
                ("ok", _, _) => "ok".to_string(),
                ("torn_tail", Some(offset), Some(detail)) => {
                    format!("torn tail at offset {offset}: {detail}")
                }
                (_, Some(offset), Some(detail)) => format!("CORRUPT at offset {offset}: {detail}"),
                (other, _, _) => other.to_string(),
            };
            let size = if s.preallocated_bytes > 0 {
                format!(
                    "{} ({} preallocated)",
                    bytes(s.bytes),
                    bytes(s.preallocated_bytes)
                )
            } else {
                bytes(s.bytes)
            };
            segments.add_row(vec![
                s.file.clone(),
                lsns,
                s.entries.to_string(),
                size,
                verdict,
            ]);
        }
        let mut summary = table(&["WAL", "segments", "LSNs", "entries", "bytes", "verdict"]);
        let lsns = match (r.first_lsn, r.last_lsn) {
            (Some(first), Some(last)) if last >= first => format!("{first}..={last}"),
            _ => "(empty)".to_string(),
        };
        summary.add_row(vec![
            r.dir.clone(),
            r.segments.len().to_string(),
            lsns,
            r.total_entries.to_string(),
            bytes(r.total_bytes),
            match r.verdict {
                "ok" => "ok".to_string(),
                "torn_tail" => "ok (torn tail: recovery cuts it)".to_string(),
                _ => "CORRUPT: the node refuses to open this log".to_string(),
            },
        ]);
        vec![segments, summary]
    })?;
    Ok(if report.verdict == "corrupt" {
        Outcome::ProblemFound
    } else {
        Outcome::Clean
    })
}
