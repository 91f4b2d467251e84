//! `ddbctl replica …`

use std::path::Path;

use anyhow::Context;
use ddb::replica::{FjallReplicaStore, ReplicaStore, full_scan_digest};
use serde::Serialize;

use super::Outcome;
use crate::cli::OutputFormat;
use crate::output::{Progress, bytes, emit, table};

#[derive(Serialize)]
struct VerifyReport {
    store: String,
    applied_lsn: u64,
    items: u64,
    bytes: u64,
    incremental_digest: String,
    full_scan_digest: String,
    verdict: &'static str,
    checkpoints: usize,
    newest_checkpoint_lsn: Option<u64>,
}

pub fn verify(dir: &Path, format: OutputFormat) -> anyhow::Result<Outcome> {
    let store = FjallReplicaStore::open_existing(dir)
        .with_context(|| format!("opening replica store {}", dir.display()))?;
    let progress = Progress::stderr();
    let scan = full_scan_digest(&store, &mut |items, scanned| {
        progress.update(&format!("scanned {items} items, {}", bytes(scanned)));
    })
    .context("scanning the replica")?;
    progress.finish();
    let checkpoints = store.checkpoints().context("reading checkpoints")?;
    let report = VerifyReport {
        store: dir.display().to_string(),
        applied_lsn: scan.applied_lsn.0,
        items: scan.items,
        bytes: scan.bytes,
        incremental_digest: scan.incremental.fingerprint(),
        full_scan_digest: scan.full.fingerprint(),
        verdict: if scan.matches() { "ok" } else { "mismatch" },
        checkpoints: checkpoints.len(),
        newest_checkpoint_lsn: checkpoints.last().map(|c| c.lsn.0),
    };
    emit(format, &report, |r| {
        let mut t = table(&[
            "replica",
            "applied LSN",
            "items",
            "bytes",
            "digest",
            "verdict",
        ]);
        let digest = if scan.matches() {
            r.incremental_digest.clone()
        } else {
            format!(
                "incremental {}\nfull scan   {}",
                r.incremental_digest, r.full_scan_digest
            )
        };
        t.add_row(vec![
            r.store.clone(),
            r.applied_lsn.to_string(),
            r.items.to_string(),
            bytes(r.bytes),
            digest,
            if scan.matches() {
                "ok: full scan equals incremental digest".to_string()
            } else {
                "MISMATCH: items at rest differ from what was applied".to_string()
            },
        ]);
        vec![t]
    })?;
    Ok(if scan.matches() {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}
