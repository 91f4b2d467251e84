//! Restore: rebuild a partition from the archive at an LSN or a point in time.
//!
//! A restore starts from the newest snapshot at or below the target (or from an empty state
//! when the chunks reach back to LSN 1), then applies the chunks after it. Every chunk end it
//! passes is a check: the restored state's digest must equal the one the chunk's footer
//! recorded, so a restore proves what it built matches what the partition held.

use crate::catalog::{Catalog, CatalogError};
use crate::digest::{CheckpointPolicy, StateDigest};
use crate::node::CATALOG_KEY;
use crate::replica::{MemoryReplicaStore, ReplicaError, ReplicaStore};
use crate::wal::Lsn;

use super::ArchiveError;
use super::chunk::ChunkError;
use super::layout::{SnapshotName, WalChunkName};
use super::replay::{ChunkFault, ChunkFetcher, ChunkWalk, Replay, Stop, holes, install_snapshot};
use super::snapshot::{SNAPSHOT_FOOTER_LEN, SnapshotError, SnapshotInfo, read_snapshot_footer};
use super::store::{Archive, Listed, list_partition_objects};

/// How far a restore goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// Everything archived: through the end of the newest chunk.
    Latest,
    /// The state right after this LSN.
    Lsn(Lsn),
    /// The state at this time (milliseconds since the Unix epoch): the longest prefix of the
    /// log whose entries are all stamped at or before it.
    Time(u64),
}

impl std::fmt::Display for RestoreTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreTarget::Latest => f.write_str("the latest archived LSN"),
            RestoreTarget::Lsn(lsn) => write!(f, "LSN {lsn}"),
            RestoreTarget::Time(ms) => write!(f, "time {ms} ms since the epoch"),
        }
    }
}

/// How far a restore has got, reported as it goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreProgress {
    /// Snapshot items installed.
    pub items_installed: u64,
    /// Log entries applied after the snapshot.
    pub entries_applied: u64,
    /// Entries the restore expects to apply: exact for an LSN or the latest; for a time, an
    /// upper bound (up to the end of the archive).
    pub entries_total: u64,
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The snapshot it started from (`None`: from an empty state at LSN 0).
    pub snapshot: Option<SnapshotName>,
    /// Items the snapshot held.
    pub items_installed: u64,
    /// Log entries applied after the snapshot.
    pub entries_applied: u64,
    /// The LSN the restored state stands at.
    pub final_lsn: Lsn,
    /// The timestamp of the entry at `final_lsn` (`None` at LSN 0).
    pub final_timestamp_ms: Option<u64>,
    /// The restored state's digest.
    pub digest: StateDigest,
    /// The last LSN at which the restored state's digest was compared with the archive's and
    /// matched (the snapshot's LSN or a chunk's last LSN; [`Lsn::ZERO`] if none).
    pub verified_lsn: Lsn,
    /// Objects downloaded (snapshot footers, snapshots and chunks).
    pub objects_read: usize,
}

/// Why a restore failed. Problems with objects name the object.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The archive could not be read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The store refused a write.
    #[error("restoring into the store: {0}")]
    Store(#[from] ReplicaError),
    /// A restore writes into an empty store only.
    #[error("the store is not empty (it stands at LSN {applied}): restore into an empty one")]
    StoreNotEmpty {
        /// Where the store stands.
        applied: Lsn,
    },
    /// The archive has no object for the partition.
    #[error("the archive holds nothing for table {table_id} partition {partition_id}")]
    NothingArchived {
        /// The table.
        table_id: u64,
        /// The partition.
        partition_id: u64,
    },
    /// The target lies past the end of the archive.
    #[error("the archive holds LSNs only through {archived}, not {target}")]
    BeyondArchive {
        /// The LSN asked for.
        target: Lsn,
        /// The last archived LSN.
        archived: Lsn,
    },
    /// No snapshot at or before the target, and the chunks do not start at LSN 1.
    #[error(
        "no snapshot at or before {target} and no chunk starting at LSN 1: the archive does not reach back that far"
    )]
    NoStartingPoint {
        /// The target.
        target: RestoreTarget,
    },
    /// A chunk does not decode.
    #[error("{object}: corrupt: {source}")]
    CorruptChunk {
        /// The chunk.
        object: String,
        /// What is wrong with it.
        source: ChunkError,
    },
    /// A chunk holds other LSNs than its name says.
    #[error("{object}: holds LSNs {}..={}, not what its name says", holds.0, holds.1)]
    NameMismatch {
        /// The chunk.
        object: String,
        /// LSNs it holds.
        holds: (Lsn, Lsn),
    },
    /// A snapshot does not decode (its digest check included).
    #[error("{object}: corrupt snapshot: {source}")]
    CorruptSnapshot {
        /// The snapshot.
        object: String,
        /// What is wrong with it.
        source: SnapshotError,
    },
    /// A snapshot holds another LSN than its name says.
    #[error("{object}: holds the state at LSN {holds}, not what its name says")]
    SnapshotNameMismatch {
        /// The snapshot.
        object: String,
        /// The LSN its footer names.
        holds: Lsn,
    },
    /// Two chunks hold different entries at one LSN.
    #[error("split brain: {object} and {other} hold different entries at LSN {lsn}")]
    SplitBrain {
        /// The later chunk.
        object: String,
        /// The earlier chunk.
        other: String,
        /// The first LSN at which they differ.
        lsn: Lsn,
    },
    /// LSNs the restore needs are in no chunk.
    #[error(
        "gap: LSNs {from}..={to} are in no chunk{}{}",
        before.as_deref().map(|object| format!(", after {object}")).unwrap_or_default(),
        after.as_deref().map(|object| format!(", before {object}")).unwrap_or_default()
    )]
    Gap {
        /// First missing LSN.
        from: Lsn,
        /// Last missing LSN.
        to: Lsn,
        /// The object right before the gap.
        before: Option<String>,
        /// The chunk right after it.
        after: Option<String>,
    },
    /// The restored state's digest differs from the one a chunk recorded at its last LSN.
    #[error(
        "{object}: the archived state digest at LSN {lsn} is {archived}, the restored state's is {restored}"
    )]
    DigestMismatch {
        /// The chunk.
        object: String,
        /// Its last LSN.
        lsn: Lsn,
        /// Fingerprint of the digest in its footer.
        archived: String,
        /// Fingerprint of the restored state's digest.
        restored: String,
    },
    /// The restored catalog does not decode.
    #[error("reading the restored catalog: {0}")]
    Catalog(#[from] CatalogError),
}

/// Rebuilds one partition into `store` (which must be empty) from the archive, as of
/// `target`, and checks the state at every chunk end it passes against the chunk's footer.
///
/// Chunks are downloaded a few ahead of the one being applied, on the current tokio runtime.
/// `progress` is called after each snapshot page and each chunk.
pub async fn restore_partition(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    target: RestoreTarget,
    store: &dyn ReplicaStore,
    progress: &mut (dyn FnMut(RestoreProgress) + Send),
) -> Result<RestoreReport, RestoreError> {
    let start = store.applied_state();
    if start.applied_lsn != Lsn::ZERO || !start.digest.is_empty() {
        return Err(RestoreError::StoreNotEmpty {
            applied: start.applied_lsn,
        });
    }
    let objects = list_partition_objects(archive, table_id, partition_id).await?;
    let archived_end = objects
        .chunks
        .iter()
        .map(|chunk| chunk.name.last)
        .chain(objects.snapshots.iter().map(|snapshot| snapshot.name.lsn))
        .max()
        .ok_or(RestoreError::NothingArchived {
            table_id,
            partition_id,
        })?;
    let (limit, until_ms) = match target {
        RestoreTarget::Latest => (archived_end, None),
        RestoreTarget::Lsn(lsn) if lsn > archived_end => {
            return Err(RestoreError::BeyondArchive {
                target: lsn,
                archived: archived_end,
            });
        }
        RestoreTarget::Lsn(lsn) => (lsn, None),
        RestoreTarget::Time(ms) => (archived_end, Some(ms)),
    };
    let mut objects_read = 0;
    let snapshot = match until_ms {
        Some(ms) => snapshot_by_time(archive, &objects.snapshots, ms, &mut objects_read).await?,
        None => objects
            .snapshots
            .iter()
            .rev()
            .map(|snapshot| snapshot.name)
            .find(|name| name.lsn <= limit),
    };
    let base = snapshot.map_or(Lsn::ZERO, |name| name.lsn);
    let chunks: Vec<_> = objects
        .chunks
        .iter()
        .map(|chunk| chunk.name)
        .filter(|name| name.last > base && name.first <= limit)
        .collect();
    if base == Lsn::ZERO
        && limit > Lsn::ZERO
        && chunks.first().is_none_or(|first| first.first != Lsn(1))
    {
        return Err(RestoreError::NoStartingPoint { target });
    }
    if until_ms.is_none()
        && let Some(hole) = holes(&chunks, base.next(), snapshot.map(|name| name.key()))
            .into_iter()
            .find(|hole| hole.from <= limit)
    {
        return Err(hole.into());
    }

    let mut state = RestoreProgress {
        entries_total: limit.0 - base.0,
        ..RestoreProgress::default()
    };
    let mut base_timestamp_ms = None;
    if let Some(name) = &snapshot {
        let bytes = archive.get(&archive.path_of(&name.key())?).await?;
        objects_read += 1;
        let info = install_snapshot(store, name, &bytes, &mut |items| {
            state.items_installed = items;
            progress(state);
        })?;
        base_timestamp_ms = Some(info.timestamp_ms);
    }

    let applied = apply_chunks(
        archive,
        store,
        ChunkPlan {
            base,
            base_object: snapshot.map(|name| name.key()),
            chunks,
            limit,
            until_ms,
        },
        &mut state,
        progress,
    )
    .await?;
    objects_read += applied.objects_read;
    let finish = store.applied_state();
    Ok(RestoreReport {
        snapshot,
        items_installed: state.items_installed,
        entries_applied: applied.entries_applied,
        final_lsn: finish.applied_lsn,
        final_timestamp_ms: applied.last_timestamp_ms.or(base_timestamp_ms),
        digest: finish.digest,
        verified_lsn: applied.verified_lsn,
        objects_read,
    })
}

/// Brings `store` (a replica rebuilt from the archive earlier, such as the scrubber's
/// reference replica) forward to the end of the archive: applies the chunks after its applied
/// LSN, checking the state at every chunk end against the chunk's footer. An empty store is
/// restored from the newest snapshot ([`restore_partition`] to the latest LSN); a partition
/// with nothing archived yet leaves it empty.
///
/// Fails with [`RestoreError::Gap`] when the archive no longer holds the entries right after
/// the store's LSN (retention deleted them): the caller starts over from an empty store.
pub async fn advance_partition(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    store: &dyn ReplicaStore,
    progress: &mut (dyn FnMut(RestoreProgress) + Send),
) -> Result<RestoreReport, RestoreError> {
    let start = store.applied_state();
    if start.applied_lsn == Lsn::ZERO && start.digest.is_empty() {
        return match restore_partition(
            archive,
            table_id,
            partition_id,
            RestoreTarget::Latest,
            store,
            progress,
        )
        .await
        {
            Err(RestoreError::NothingArchived { .. }) => Ok(unchanged(&start)),
            outcome => outcome,
        };
    }
    let base = start.applied_lsn;
    let objects = list_partition_objects(archive, table_id, partition_id).await?;
    let chunks: Vec<_> = objects
        .chunks
        .iter()
        .map(|chunk| chunk.name)
        .filter(|name| name.last > base)
        .collect();
    let Some(limit) = chunks.iter().map(|name| name.last).max() else {
        return Ok(unchanged(&start));
    };
    if let Some(hole) = holes(&chunks, base.next(), None).into_iter().next() {
        return Err(hole.into());
    }
    let mut state = RestoreProgress {
        entries_total: limit.0 - base.0,
        ..RestoreProgress::default()
    };
    let plan = ChunkPlan {
        base,
        base_object: None,
        chunks,
        limit,
        until_ms: None,
    };
    let applied = apply_chunks(archive, store, plan, &mut state, progress).await?;
    let finish = store.applied_state();
    Ok(RestoreReport {
        snapshot: None,
        items_installed: 0,
        entries_applied: applied.entries_applied,
        final_lsn: finish.applied_lsn,
        final_timestamp_ms: applied.last_timestamp_ms,
        digest: finish.digest,
        verified_lsn: applied.verified_lsn,
        objects_read: applied.objects_read,
    })
}

impl From<super::replay::Hole> for RestoreError {
    fn from(hole: super::replay::Hole) -> Self {
        RestoreError::Gap {
            from: hole.from,
            to: hole.to,
            before: hole.before,
            after: Some(hole.after),
        }
    }
}

/// The report of an advance that found nothing new.
fn unchanged(state: &crate::replica::AppliedState) -> RestoreReport {
    RestoreReport {
        snapshot: None,
        items_installed: 0,
        entries_applied: 0,
        final_lsn: state.applied_lsn,
        final_timestamp_ms: None,
        digest: state.digest.clone(),
        verified_lsn: Lsn::ZERO,
        objects_read: 0,
    }
}

/// Which chunks to apply on top of a store standing at `base`.
struct ChunkPlan {
    base: Lsn,
    /// The object holding the state at `base` (a snapshot), for naming holes.
    base_object: Option<String>,
    /// In listing order, each ending after `base`.
    chunks: Vec<WalChunkName>,
    /// Apply nothing after this LSN.
    limit: Lsn,
    /// Apply nothing from the first entry stamped after this time.
    until_ms: Option<u64>,
}

/// What [`apply_chunks`] did.
struct Applied {
    entries_applied: u64,
    last_timestamp_ms: Option<u64>,
    verified_lsn: Lsn,
    objects_read: usize,
}

/// Downloads the planned chunks (a few ahead), applies their entries each once, checks the
/// state at every chunk end against the chunk's footer, and fails on a gap before the limit.
async fn apply_chunks(
    archive: &Archive,
    store: &dyn ReplicaStore,
    plan: ChunkPlan,
    state: &mut RestoreProgress,
    progress: &mut (dyn FnMut(RestoreProgress) + Send),
) -> Result<Applied, RestoreError> {
    let ChunkPlan {
        base,
        base_object,
        chunks,
        limit,
        until_ms,
    } = plan;
    let mut objects_read = 0;
    let marks = chunks.iter().map(|name| name.last);
    let mut replay = Replay::new(store, marks, limit, until_ms);
    let mut walk = ChunkWalk::new(base);
    let mut verified_lsn = base;
    let chunk_names = chunks.clone();
    let mut fetcher = ChunkFetcher::new(archive, chunks);
    // Every chunk that reaches into the range is read, even once the target is applied: it is
    // compared with the chunks it overlaps, and its end is one more digest check. After a stop
    // at a time or a gap, what is left lies beyond the restore.
    while !matches!(replay.stop(), Some(Stop::Time | Stop::Gap(_))) {
        let Some((name, fetched)) = fetcher.next().await else {
            break;
        };
        objects_read += 1;
        let chunk = fetched?.map_err(|fault| match fault {
            ChunkFault::Corrupt(source) => RestoreError::CorruptChunk {
                object: name.key(),
                source,
            },
            ChunkFault::NameMismatch { holds } => RestoreError::NameMismatch {
                object: name.key(),
                holds,
            },
        })?;
        let fresh = walk
            .admit(&name.key(), &chunk.entries)
            .map_err(|disagreement| RestoreError::SplitBrain {
                object: name.key(),
                other: disagreement.other,
                lsn: disagreement.lsn,
            })?;
        replay.apply(&chunk.entries[fresh..])?;
        if let Some(check) = replay.check(name.last, &chunk.digest) {
            if !check.matches {
                return Err(RestoreError::DigestMismatch {
                    object: name.key(),
                    lsn: name.last,
                    archived: check.archived,
                    restored: check.replayed,
                });
            }
            verified_lsn = verified_lsn.max(name.last);
        }
        state.entries_applied = replay.entries_applied();
        progress(*state);
    }
    drop(fetcher);

    let finish = store.applied_state();
    let short = match replay.stop() {
        Some(Stop::Gap(missing)) => Some(missing),
        Some(Stop::Time) => None,
        _ if until_ms.is_none() && finish.applied_lsn < limit => Some(finish.applied_lsn.next()),
        _ => None,
    };
    if let Some(missing) = short {
        // Name the hole from the listing when there is one (the usual case); otherwise the
        // LSNs the chunks did not deliver.
        let hole = holes(&chunk_names, base.next(), base_object.clone())
            .into_iter()
            .find(|hole| (hole.from..=hole.to).contains(&missing));
        return Err(match hole {
            Some(hole) => hole.into(),
            None => RestoreError::Gap {
                from: missing,
                to: limit.max(missing),
                before: None,
                after: None,
            },
        });
    }
    Ok(Applied {
        entries_applied: replay.entries_applied(),
        last_timestamp_ms: replay.last_timestamp_ms(),
        verified_lsn,
        objects_read,
    })
}

/// A snapshot's footer (LSN, time, item count, digest), read from the object's last bytes only;
/// the body is not checked.
pub async fn snapshot_info(
    archive: &Archive,
    name: &SnapshotName,
) -> Result<SnapshotInfo, RestoreError> {
    let path = archive.path_of(&name.key())?;
    let (footer, size) = archive.get_tail(&path, SNAPSHOT_FOOTER_LEN as u64).await?;
    read_snapshot_footer(&footer, size).map_err(|source| RestoreError::CorruptSnapshot {
        object: name.key(),
        source,
    })
}

/// The newest snapshot stamped at or before `until_ms`, reading footers newest first (only
/// their last bytes; the one chosen is checked whole when it is installed).
async fn snapshot_by_time(
    archive: &Archive,
    snapshots: &[Listed<SnapshotName>],
    until_ms: u64,
    objects_read: &mut usize,
) -> Result<Option<SnapshotName>, RestoreError> {
    for snapshot in snapshots.iter().rev() {
        let info = snapshot_info(archive, &snapshot.name).await?;
        *objects_read += 1;
        if info.timestamp_ms <= until_ms {
            return Ok(Some(snapshot.name));
        }
    }
    Ok(None)
}

/// The catalog (every table's definition) as of `target`: the newest catalog version the
/// archivers recorded at or before it (`v1/catalog/`, see [`super::catalog`]; the latest for
/// [`RestoreTarget::Latest`] and [`RestoreTarget::Lsn`]), else — in an archive without catalog
/// versions — the metadata group (archived as table 0, partition 0) restored into memory and
/// its catalog item decoded.
pub async fn restore_catalog(
    archive: &Archive,
    target: RestoreTarget,
) -> Result<Catalog, RestoreError> {
    let at_ms = match target {
        RestoreTarget::Time(at_ms) => Some(at_ms),
        RestoreTarget::Latest | RestoreTarget::Lsn(_) => None,
    };
    if let Some((_, encoded)) = super::catalog::catalog_at(archive, at_ms).await? {
        return Ok(Catalog::scratch(Some(&encoded))?);
    }
    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    restore_partition(archive, 0, 0, target, &store, &mut |_| {}).await?;
    let encoded = store.get(CATALOG_KEY)?;
    Ok(Catalog::scratch(encoded.as_deref())?)
}
