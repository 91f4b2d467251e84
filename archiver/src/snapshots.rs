//! Snapshots and retention, done by the archiver beside a partition's leader.
//!
//! A snapshot is streamed from the node (a consistent view of its replica at its applied LSN),
//! re-encoded as a `.ddbsnap.zst` whose digest the archiver computes from the items itself, and
//! uploaded only if that digest equals the one the node reports for the same LSN — a replica
//! whose items no longer match its own incremental digest (bit rot) is caught here instead of
//! archived. Restore then starts from the newest snapshot below its target instead of LSN 1.
//!
//! Retention keeps point-in-time restore `retention_days` back: the newest snapshot taken at
//! or before the start of that window is the base every restore inside it needs, so snapshots
//! older than it and chunks that end at or below its LSN go. Before anything is deleted that base
//! snapshot is downloaded and checked whole; no chunk is deleted unless a sound snapshot covers
//! it.

use std::time::Duration;

use bytes::Bytes;
use ddb::archive::{
    Archive, ArchiveError, SnapshotName, SnapshotWriter, Uploaded, check_snapshot, list_chunks,
    list_snapshots, snapshot_info, upload_snapshot,
};
use ddb::wal::Lsn;
use object_store::ObjectStoreExt as _;

use crate::node_client::NodeClient;

/// A snapshot this archiver uploaded (or found already there).
#[derive(Clone, Debug)]
pub struct Taken {
    /// Its name.
    pub name: SnapshotName,
    /// When the node took it (ms since the epoch).
    pub taken_at_ms: u64,
    /// Compressed size.
    pub bytes: u64,
    /// Items in it.
    pub items: u64,
}

/// The newest snapshot of the partition in the archive, with the time it was taken.
pub async fn newest(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<Option<(Lsn, u64)>, String> {
    let snapshots = list_snapshots(archive, table_id, partition_id)
        .await
        .map_err(|e| e.to_string())?;
    let Some(name) = snapshots.last() else {
        return Ok(None);
    };
    let info = snapshot_info(archive, name)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some((info.lsn, info.timestamp_ms)))
}

/// Streams a snapshot of `partition_id` from the node, checks it against the node's digest and
/// uploads it create-only.
pub async fn take(
    archive: &Archive,
    node: &NodeClient,
    table_id: u64,
    partition_id: u64,
) -> Result<Taken, String> {
    let node = node.clone();
    let built = tokio::task::spawn_blocking(move || {
        let stream = node.snapshot_stream(partition_id)?;
        let mut writer = SnapshotWriter::new();
        let (head, items) = ddb::server::read_snapshot_stream(stream, |key, item| {
            writer.push(key, item).map_err(|e| e.to_string())
        })?;
        let (bytes, digest) = writer
            .finish(head.lsn, head.taken_at_ms)
            .map_err(|e| e.to_string())?;
        if digest != head.digest {
            return Err(format!(
                "ALARM the replica's items at LSN {} do not add up to its own state digest \
                 ({} computed from the items, {} kept by the node): not archived; scrub the replica",
                head.lsn,
                digest.fingerprint(),
                head.digest.fingerprint()
            ));
        }
        Ok((head, items, bytes))
    })
    .await
    .map_err(|e| format!("snapshot task: {e}"))??;
    let (head, items, bytes) = built;
    let name = SnapshotName {
        table_id,
        partition_id,
        lsn: head.lsn,
    };
    let size = bytes.len() as u64;
    match upload_snapshot(archive, &name, Bytes::from(bytes)).await {
        Ok(Uploaded::Created | Uploaded::AlreadyThere) => Ok(Taken {
            name,
            taken_at_ms: head.taken_at_ms,
            bytes: size,
            items,
        }),
        // Two snapshots of the same LSN taken at different times (a new leader of an idle
        // partition) differ in their time stamp only; the one there serves as well if it
        // holds the same state.
        Err(ArchiveError::SplitBrain { path }) => {
            let there = snapshot_info(archive, &name)
                .await
                .map_err(|e| e.to_string())?;
            if there.digest == head.digest {
                Ok(Taken {
                    name,
                    taken_at_ms: there.timestamp_ms,
                    bytes: size,
                    items,
                })
            } else {
                Err(format!(
                    "ALARM split brain: {path} holds another state at LSN {}",
                    head.lsn
                ))
            }
        }
        Err(e) => Err(format!("uploading {}: {e}", name.key())),
    }
}

/// Deletes what point-in-time restore within `window` no longer needs; returns how many
/// objects went.
pub async fn apply_retention(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    window: Duration,
    now_ms: u64,
) -> Result<u64, String> {
    let cutoff = now_ms.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX));
    let snapshots = list_snapshots(archive, table_id, partition_id)
        .await
        .map_err(|e| e.to_string())?;
    // The base of the oldest restorable point: the newest snapshot taken at or before it.
    let mut base = None;
    for name in snapshots.iter().rev() {
        let info = snapshot_info(archive, name)
            .await
            .map_err(|e| e.to_string())?;
        if info.timestamp_ms <= cutoff {
            base = Some(*name);
            break;
        }
    }
    let Some(base) = base else {
        return Ok(0);
    };
    let older_snapshots: Vec<SnapshotName> = snapshots
        .iter()
        .filter(|name| name.lsn < base.lsn)
        .copied()
        .collect();
    let covered_chunks: Vec<String> = list_chunks(archive, table_id, partition_id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|chunk| chunk.last <= base.lsn)
        .map(|chunk| chunk.key())
        .collect();
    if older_snapshots.is_empty() && covered_chunks.is_empty() {
        return Ok(0);
    }
    // Never delete on the word of a snapshot that would not restore.
    let path = archive.path_of(&base.key()).map_err(|e| e.to_string())?;
    let bytes = archive.get(&path).await.map_err(|e| e.to_string())?;
    check_snapshot(&bytes).map_err(|e| {
        format!(
            "not deleting anything: the retention base {} is unsound: {e}",
            base.key()
        )
    })?;
    let mut deleted = 0;
    // Chunks first, oldest first, then snapshots: a stop part-way leaves every restore point
    // inside the window restorable.
    for key in covered_chunks
        .into_iter()
        .chain(older_snapshots.iter().map(SnapshotName::key))
    {
        let path = archive.path_of(&key).map_err(|e| e.to_string())?;
        match archive.store().delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
            Err(e) => return Err(format!("deleting {key}: {e}")),
        }
    }
    tracing::info!(
        table_id,
        partition = partition_id,
        base = %base.key(),
        deleted,
        "retention: deleted what restores inside the window no longer need"
    );
    Ok(deleted)
}
