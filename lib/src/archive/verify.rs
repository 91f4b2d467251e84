//! Checking what an archive holds for one partition.

use std::fmt;

use bytes::Bytes;

use super::ArchiveError;
use super::chunk::ChunkError;
use super::layout::SnapshotName;
use super::replay::{ChunkFault, ChunkFetcher, ChunkWalk, Replay, holes, install_snapshot};
use super::snapshot::{SnapshotError, check_snapshot};
use super::store::{Archive, list_partition_objects};
use crate::digest::{CheckpointPolicy, StateDigest};
use crate::replica::{MemoryReplicaStore, ReplicaStore};
use crate::wal::Lsn;

/// What [`verify_partition`] or [`deep_verify_partition`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks listed.
    pub chunks: usize,
    /// Snapshots listed.
    pub snapshots: usize,
    /// The end of the run of LSNs, from the start of the log (or from the oldest sound
    /// snapshot), that sound chunks hold without a gap and without a disagreement (and, in a
    /// deep verify, without a digest mismatch); [`Lsn::ZERO`] if the run is empty.
    pub last_verified_lsn: Lsn,
    /// Deep verify only: the LSN the replay reached.
    pub replayed_through: Option<Lsn>,
    /// Every problem: foreign objects, then snapshots, then chunks in LSN order, then gaps.
    /// Empty means the archive is sound.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with a partition's archive. Each names the object(s) concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// An object does not decode as a chunk.
    Corrupt {
        /// The object.
        object: String,
        /// What is wrong with it.
        error: ChunkError,
    },
    /// A chunk decodes, but holds other LSNs than its name says.
    NameMismatch {
        /// The object.
        object: String,
        /// LSNs the chunk holds.
        holds: (Lsn, Lsn),
    },
    /// An object does not decode as a snapshot (its digest check included).
    CorruptSnapshot {
        /// The object.
        object: String,
        /// What is wrong with it.
        error: SnapshotError,
    },
    /// A snapshot decodes, but holds the state at another LSN than its name says.
    SnapshotNameMismatch {
        /// The object.
        object: String,
        /// The LSN its footer names.
        holds: Lsn,
    },
    /// LSNs after the start of the log (or the oldest snapshot) are in no chunk.
    Gap {
        /// The chunk or snapshot before the gap.
        before: String,
        /// The chunk after the gap.
        after: String,
        /// First missing LSN.
        missing_from: Lsn,
        /// Last missing LSN.
        missing_to: Lsn,
    },
    /// Two chunks that overlap hold different entries at one LSN: two writers archived
    /// different histories (split brain).
    SplitBrain {
        /// The later chunk.
        object: String,
        /// The earlier chunk.
        other: String,
        /// The first LSN at which they differ.
        lsn: Lsn,
    },
    /// The first chunk does not start at LSN 1 and no snapshot covers the LSNs before it.
    MissingStart {
        /// The first chunk.
        first: String,
    },
    /// An object in the partition's `wal/` or `snapshots/` directory that is not an object
    /// name of this partition.
    ForeignObject {
        /// The object.
        object: String,
    },
    /// Deep verify: the digest a chunk or snapshot recorded differs from the replayed state's
    /// at the same LSN.
    DigestMismatch {
        /// The chunk or snapshot.
        object: String,
        /// The LSN compared at.
        lsn: Lsn,
        /// Fingerprint of the archived digest.
        archived: String,
        /// Fingerprint of the replayed state's digest.
        replayed: String,
    },
    /// Deep verify: the in-memory store refused what the replay gave it (a bug: the objects
    /// decoded and the replay keeps LSNs in order).
    ReplayFailed {
        /// The chunk or snapshot being replayed.
        object: String,
        /// The store's error.
        error: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Corrupt { object, error } => write!(f, "{object}: corrupt: {error}"),
            Problem::NameMismatch { object, holds } => {
                write!(f, "{object}: holds LSNs {}..={}", holds.0, holds.1)
            }
            Problem::CorruptSnapshot { object, error } => {
                write!(f, "{object}: corrupt snapshot: {error}")
            }
            Problem::SnapshotNameMismatch { object, holds } => {
                write!(f, "{object}: holds the state at LSN {holds}")
            }
            Problem::Gap {
                before,
                after,
                missing_from,
                missing_to,
            } => write!(
                f,
                "gap: LSNs {missing_from}..={missing_to} missing between {before} and {after}"
            ),
            Problem::SplitBrain { object, other, lsn } => write!(
                f,
                "split brain: {object} and {other} hold different entries at LSN {lsn}"
            ),
            Problem::MissingStart { first } => {
                write!(f, "first chunk {first} does not start at LSN 1")
            }
            Problem::ForeignObject { object } => write!(f, "{object}: not an archive object name"),
            Problem::DigestMismatch {
                object,
                lsn,
                archived,
                replayed,
            } => write!(
                f,
                "{object}: state digest at LSN {lsn} is {archived} in the archive, {replayed} replayed"
            ),
            Problem::ReplayFailed { object, error } => {
                write!(f, "{object}: replay failed: {error}")
            }
        }
    }
}

/// Downloads and decodes every snapshot and WAL chunk of a partition and checks that the chunks
/// cover every LSN from 1 (or from the oldest sound snapshot) without a gap, and that chunks
/// that overlap hold identical entries. Problems with objects are reported, not returned as
/// errors; an error means the archive could not be read at all.
pub async fn verify_partition(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<VerifyReport, ArchiveError> {
    verify(archive, table_id, partition_id, false).await
}

/// Everything [`verify_partition`] checks, and also replays the archive (from the oldest sound
/// snapshot, or from LSN 1) into an in-memory store, comparing the replayed state's digest with
/// every chunk footer's at the chunk's last LSN and with every later snapshot's.
pub async fn deep_verify_partition(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
) -> Result<VerifyReport, ArchiveError> {
    verify(archive, table_id, partition_id, true).await
}

async fn verify(
    archive: &Archive,
    table_id: u64,
    partition_id: u64,
    deep: bool,
) -> Result<VerifyReport, ArchiveError> {
    let objects = list_partition_objects(archive, table_id, partition_id).await?;
    let mut report = VerifyReport {
        chunks: objects.chunks.len(),
        snapshots: objects.snapshots.len(),
        ..VerifyReport::default()
    };
    report.problems.extend(
        objects
            .foreign
            .into_iter()
            .map(|object| Problem::ForeignObject { object }),
    );

    let mut sound_snapshots: Vec<(SnapshotName, StateDigest)> = Vec::new();
    let mut oldest_sound: Option<(SnapshotName, Bytes)> = None;
    for snapshot in &objects.snapshots {
        let name = snapshot.name;
        let bytes = archive.get(&archive.path_of(&name.key())?).await?;
        match check_snapshot(&bytes) {
            Err(error) => report.problems.push(Problem::CorruptSnapshot {
                object: name.key(),
                error,
            }),
            Ok(info) if info.lsn != name.lsn => {
                report.problems.push(Problem::SnapshotNameMismatch {
                    object: name.key(),
                    holds: info.lsn,
                });
            }
            Ok(info) => {
                sound_snapshots.push((name, info.digest));
                oldest_sound.get_or_insert((name, bytes));
            }
        }
    }
    let base = oldest_sound
        .as_ref()
        .map_or(Lsn::ZERO, |(name, _)| name.lsn);

    let store = MemoryReplicaStore::new(CheckpointPolicy::default());
    let mut replay = None;
    if deep {
        if let Some((name, bytes)) = &oldest_sound
            && let Err(error) = install_snapshot(&store, name, bytes, &mut |_| {})
        {
            report.problems.push(Problem::ReplayFailed {
                object: name.key(),
                error: error.to_string(),
            });
        }
        let marks = objects.chunks.iter().map(|chunk| chunk.name.last);
        let snapshot_marks = sound_snapshots.iter().map(|(name, _)| name.lsn);
        replay = Some(Replay::new(
            &store,
            marks.chain(snapshot_marks),
            Lsn(u64::MAX),
            None,
        ));
    }

    let names: Vec<_> = objects.chunks.iter().map(|chunk| chunk.name).collect();
    let mut walk = ChunkWalk::new(Lsn::ZERO);
    let mut verified = base;
    let mut cap = Lsn(u64::MAX);
    let mut fetcher = ChunkFetcher::new(archive, names.clone());
    while let Some((name, fetched)) = fetcher.next().await {
        let object = name.key();
        let chunk = match fetched? {
            Err(ChunkFault::Corrupt(error)) => {
                report.problems.push(Problem::Corrupt { object, error });
                continue;
            }
            Err(ChunkFault::NameMismatch { holds }) => {
                report
                    .problems
                    .push(Problem::NameMismatch { object, holds });
                continue;
            }
            Ok(chunk) => chunk,
        };
        let fresh = match walk.admit(&object, &chunk.entries) {
            Ok(fresh) => fresh,
            Err(disagreement) => {
                cap = cap.min(Lsn(disagreement.lsn.0 - 1));
                report.problems.push(Problem::SplitBrain {
                    object,
                    other: disagreement.other,
                    lsn: disagreement.lsn,
                });
                continue;
            }
        };
        if name.first.0 <= verified.0.saturating_add(1) {
            verified = verified.max(name.last);
        }
        let Some(replay) = replay.as_mut() else {
            continue;
        };
        if let Err(error) = replay.apply(&chunk.entries[fresh..]) {
            report.problems.push(Problem::ReplayFailed {
                object,
                error: error.to_string(),
            });
            continue;
        }
        if let Some(check) = replay.check(name.last, &chunk.digest)
            && !check.matches
        {
            cap = cap.min(Lsn(name.first.0 - 1));
            report.problems.push(Problem::DigestMismatch {
                object,
                lsn: name.last,
                archived: check.archived,
                replayed: check.replayed,
            });
        }
    }
    if let Some(replay) = &replay {
        for (name, digest) in &sound_snapshots {
            if let Some(check) = replay.check(name.lsn, digest)
                && !check.matches
            {
                report.problems.push(Problem::DigestMismatch {
                    object: name.key(),
                    lsn: name.lsn,
                    archived: check.archived,
                    replayed: check.replayed,
                });
            }
        }
        report.replayed_through = Some(store.applied_lsn());
    }

    let floor_object = oldest_sound.map(|(name, _)| name.key());
    for hole in holes(&names, base.next(), floor_object) {
        report.problems.push(match hole.before {
            None => Problem::MissingStart { first: hole.after },
            Some(before) => Problem::Gap {
                before,
                after: hole.after,
                missing_from: hole.from,
                missing_to: hole.to,
            },
        });
    }
    report.last_verified_lsn = verified.min(cap);
    Ok(report)
}
