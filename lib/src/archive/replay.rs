//! Replaying a partition's archive into a replica store, shared by restore and deep verify.
//!
//! - [`ChunkFetcher`] downloads and decodes chunks in listing order, a few at a time, so a
//!   replay is not bound by the object store's latency.
//! - [`ChunkWalk`] hands out each LSN once although chunks may overlap (two archivers can cut
//!   different boundaries over the same committed entries), and checks that overlapping chunks
//!   hold identical entries: committed entries are the same everywhere, so a difference is a
//!   split brain.
//! - [`Replay`] applies the entries to a store, stopping at a target LSN or time, and records
//!   the store's digest at every chunk end and snapshot LSN it passes, so each chunk footer's
//!   digest can be compared with the replayed state.
//! - [`install_snapshot`] loads a snapshot's items into an empty store, page by page.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::ArchiveError;
use super::chunk::{Chunk, ChunkError, decode_chunk};
use super::layout::{SnapshotName, WalChunkName};
use super::restore::RestoreError;
use super::snapshot::{SnapshotError, SnapshotInfo, open_snapshot};
use super::store::Archive;
use crate::digest::StateDigest;
use crate::replica::{ReplicaError, ReplicaStore};
use crate::wal::{Entry, Lsn};

/// Chunks downloaded and decoded ahead of the one being applied.
const PREFETCH: usize = 4;
/// Entries per store batch during a replay.
const APPLY_BATCH: usize = 1024;
/// Snapshot items per `install_items` call.
const INSTALL_PAGE_ITEMS: usize = 1024;
/// Snapshot bytes (keys and items) per `install_items` call.
const INSTALL_PAGE_BYTES: usize = 4 << 20;

/// Why a chunk that downloaded cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChunkFault {
    /// It does not decode.
    Corrupt(ChunkError),
    /// It decodes, but holds other LSNs than its name says.
    NameMismatch { holds: (Lsn, Lsn) },
}

type Fetched = Result<Result<Chunk, ChunkFault>, ArchiveError>;

/// Downloads and decodes chunks in the order given, up to [`PREFETCH`] at a time, on the
/// current tokio runtime. Dropping it cancels the downloads still running.
pub(crate) struct ChunkFetcher {
    archive: Archive,
    queue: std::vec::IntoIter<WalChunkName>,
    pending: VecDeque<(WalChunkName, JoinHandle<Fetched>)>,
}

impl ChunkFetcher {
    pub(crate) fn new(archive: &Archive, names: Vec<WalChunkName>) -> Self {
        let mut fetcher = ChunkFetcher {
            archive: archive.clone(),
            queue: names.into_iter(),
            pending: VecDeque::new(),
        };
        fetcher.fill();
        fetcher
    }

    fn fill(&mut self) {
        while self.pending.len() < PREFETCH {
            let Some(name) = self.queue.next() else {
                return;
            };
            let archive = self.archive.clone();
            let task = tokio::spawn(async move { fetch_chunk(&archive, &name).await });
            self.pending.push_back((name, task));
        }
    }

    /// The next chunk in order, or `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<(WalChunkName, Fetched)> {
        let (name, task) = self.pending.pop_front()?;
        self.fill();
        let fetched = match task.await {
            Ok(fetched) => fetched,
            // The task only downloads and decodes; a panic there is a bug, raised here as if
            // it had happened in the caller. Nothing cancels these tasks but `Drop`.
            Err(error) => std::panic::resume_unwind(
                error
                    .try_into_panic()
                    .unwrap_or_else(|error| Box::new(error.to_string())),
            ),
        };
        Some((name, fetched))
    }
}

impl Drop for ChunkFetcher {
    fn drop(&mut self) {
        for (_, task) in &self.pending {
            task.abort();
        }
    }
}

async fn fetch_chunk(archive: &Archive, name: &WalChunkName) -> Fetched {
    let bytes = archive.get(&archive.path_of(&name.key())?).await?;
    Ok(match decode_chunk(&bytes) {
        Err(error) => Err(ChunkFault::Corrupt(error)),
        Ok(chunk) if (chunk.first_lsn(), chunk.last_lsn()) != (name.first, name.last) => {
            Err(ChunkFault::NameMismatch {
                holds: (chunk.first_lsn(), chunk.last_lsn()),
            })
        }
        Ok(chunk) => Ok(chunk),
    })
}

/// Two chunks hold different entries at one LSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Disagreement {
    /// The first LSN at which they differ.
    pub lsn: Lsn,
    /// The earlier chunk (the one being admitted is the other).
    pub other: String,
}

/// Walks a partition's chunks in listing order (by first, then last LSN), handing out each LSN
/// once and checking that where chunks overlap they hold the same entries.
pub(crate) struct ChunkWalk {
    /// Entries at or below this LSN are not handed out nor compared (a snapshot covers them).
    start: Lsn,
    /// The highest LSN handed out.
    end: Lsn,
    /// Entries handed out that a later chunk may hold again: the BLAKE3 of each entry's
    /// encoding and the chunk it came from. Chunks arrive sorted by first LSN, so entries below
    /// the latest chunk's first LSN are dropped.
    window: BTreeMap<Lsn, ([u8; 32], Arc<str>)>,
}

impl ChunkWalk {
    pub(crate) fn new(start: Lsn) -> Self {
        ChunkWalk {
            start,
            end: start,
            window: BTreeMap::new(),
        }
    }

    /// Admits the next chunk's entries (consecutive, as a decoded chunk's are). Returns the
    /// index of its first entry not handed out before; those from there on are new. A chunk
    /// that disagrees with an earlier one is not admitted.
    pub(crate) fn admit(&mut self, object: &str, entries: &[Entry]) -> Result<usize, Disagreement> {
        let Some(first) = entries.first().map(|entry| entry.lsn) else {
            return Ok(0);
        };
        self.window = self.window.split_off(&first);
        let mut fresh_from = entries.len();
        for (index, entry) in entries.iter().enumerate() {
            if entry.lsn > self.end {
                fresh_from = index;
                break;
            }
            if entry.lsn <= self.start {
                continue;
            }
            if let Some((hash, other)) = self.window.get(&entry.lsn)
                && *hash != entry_hash(entry)
            {
                return Err(Disagreement {
                    lsn: entry.lsn,
                    other: other.to_string(),
                });
            }
        }
        let object: Arc<str> = Arc::from(object);
        for entry in &entries[fresh_from..] {
            self.window
                .insert(entry.lsn, (entry_hash(entry), Arc::clone(&object)));
        }
        if let Some(last) = entries.last() {
            self.end = self.end.max(last.lsn);
        }
        Ok(fresh_from)
    }
}

/// The identity of an entry for comparing overlapping chunks: equal hashes mean the same LSN,
/// ballot, timestamp and operation.
fn entry_hash(entry: &Entry) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(entry.encoded_len());
    entry.encode_into(&mut bytes);
    *blake3::hash(&bytes).as_bytes()
}

/// Why a replay stopped before the end of the chunks it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It applied its last LSN.
    Limit,
    /// The next entry is stamped after its time.
    Time,
    /// No chunk held this LSN when it was next.
    Gap(Lsn),
}

/// The store's digest at an LSN the replay passed, kept small: its BLAKE3 and fingerprint.
struct DigestSeen {
    id: [u8; 32],
    fingerprint: String,
}

impl DigestSeen {
    fn of(digest: &StateDigest) -> Self {
        DigestSeen {
            id: *blake3::hash(&digest.to_bytes()).as_bytes(),
            fingerprint: digest.fingerprint(),
        }
    }
}

/// A comparison of an archived digest with the replayed state's at the same LSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DigestCheck {
    pub matches: bool,
    /// Fingerprint of the archived digest.
    pub archived: String,
    /// Fingerprint of the replayed state's digest.
    pub replayed: String,
}

/// Applies entries to a store in LSN order, up to a limit.
pub(crate) struct Replay<'s> {
    store: &'s dyn ReplicaStore,
    /// LSNs at which the store's digest is recorded (chunk ends, snapshot LSNs).
    marks: BTreeSet<Lsn>,
    passed: BTreeMap<Lsn, DigestSeen>,
    limit: Lsn,
    until_ms: Option<u64>,
    stop: Option<Stop>,
    applied: u64,
    last_timestamp_ms: Option<u64>,
}

impl<'s> Replay<'s> {
    /// A replay into `store` from where it stands, recording its digest there and at each of
    /// `marks`, applying nothing after `limit` nor from the first entry stamped after
    /// `until_ms`.
    pub(crate) fn new(
        store: &'s dyn ReplicaStore,
        marks: impl IntoIterator<Item = Lsn>,
        limit: Lsn,
        until_ms: Option<u64>,
    ) -> Self {
        let state = store.applied_state();
        let mut passed = BTreeMap::new();
        passed.insert(state.applied_lsn, DigestSeen::of(&state.digest));
        Replay {
            store,
            marks: marks.into_iter().collect(),
            passed,
            limit,
            until_ms,
            stop: (state.applied_lsn >= limit).then_some(Stop::Limit),
            applied: 0,
            last_timestamp_ms: None,
        }
    }

    /// Applies the entries not applied yet; entries at or below the store's LSN are skipped.
    pub(crate) fn apply(&mut self, entries: &[Entry]) -> Result<(), ReplicaError> {
        let mut next = self.store.applied_lsn().next();
        let mut batch_start: Option<usize> = None;
        for (index, entry) in entries.iter().enumerate() {
            if self.stop.is_some() {
                break;
            }
            if entry.lsn < next {
                continue;
            }
            let stop = if entry.lsn > next {
                Some(Stop::Gap(next))
            } else if self
                .until_ms
                .is_some_and(|until| entry.timestamp_ms > until)
            {
                Some(Stop::Time)
            } else {
                None
            };
            if stop.is_some() {
                self.flush(entries, &mut batch_start, index)?;
                self.stop = stop;
                break;
            }
            let start = *batch_start.get_or_insert(index);
            next = entry.lsn.next();
            if self.marks.contains(&entry.lsn)
                || entry.lsn >= self.limit
                || index + 1 - start >= APPLY_BATCH
            {
                self.flush(entries, &mut batch_start, index + 1)?;
            }
            if entry.lsn >= self.limit {
                self.stop = Some(Stop::Limit);
            }
        }
        self.flush(entries, &mut batch_start, entries.len())
    }

    fn flush(
        &mut self,
        entries: &[Entry],
        batch_start: &mut Option<usize>,
        end: usize,
    ) -> Result<(), ReplicaError> {
        let Some(start) = batch_start.take() else {
            return Ok(());
        };
        let batch = &entries[start..end];
        self.store.apply_batch(batch)?;
        self.applied += batch.len() as u64;
        if let Some(last) = batch.last() {
            self.last_timestamp_ms = Some(last.timestamp_ms);
            if self.marks.contains(&last.lsn) {
                let digest = self.store.applied_state().digest;
                self.passed.insert(last.lsn, DigestSeen::of(&digest));
            }
        }
        Ok(())
    }

    /// Compares `archived` with the replayed digest at `lsn`; `None` if the replay did not
    /// record one there (it did not pass `lsn`, or `lsn` is not a mark).
    pub(crate) fn check(&self, lsn: Lsn, archived: &StateDigest) -> Option<DigestCheck> {
        let seen = self.passed.get(&lsn)?;
        let archived_seen = DigestSeen::of(archived);
        Some(DigestCheck {
            matches: archived_seen.id == seen.id,
            archived: archived_seen.fingerprint,
            replayed: seen.fingerprint.clone(),
        })
    }

    /// Why the replay stopped, if it did.
    pub(crate) fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Entries applied so far.
    pub(crate) fn entries_applied(&self) -> u64 {
        self.applied
    }

    /// The timestamp of the last entry applied, if any was.
    pub(crate) fn last_timestamp_ms(&self) -> Option<u64> {
        self.last_timestamp_ms
    }
}

/// Loads the snapshot in `bytes` into `store` (which has applied nothing) in pages, then checks
/// that the store's digest equals the snapshot's. `progress` is told the items installed so far
/// after each page.
pub(crate) fn install_snapshot(
    store: &dyn ReplicaStore,
    name: &SnapshotName,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64),
) -> Result<SnapshotInfo, RestoreError> {
    let corrupt = |source: SnapshotError| RestoreError::CorruptSnapshot {
        object: name.key(),
        source,
    };
    let (info, records) = open_snapshot(bytes).map_err(corrupt)?;
    if info.lsn != name.lsn {
        return Err(RestoreError::SnapshotNameMismatch {
            object: name.key(),
            holds: info.lsn,
        });
    }
    let mut page = Vec::new();
    let mut page_bytes = 0;
    let mut installed = 0u64;
    for record in records {
        let (key, item) = record.map_err(corrupt)?;
        if page.len() == INSTALL_PAGE_ITEMS || page_bytes >= INSTALL_PAGE_BYTES {
            store.install_items(&page, None)?;
            installed += page.len() as u64;
            progress(installed);
            page.clear();
            page_bytes = 0;
        }
        page_bytes += key.len() + item.len();
        page.push((key, item));
    }
    store.install_items(&page, Some(info.lsn))?;
    progress(installed + page.len() as u64);
    if store.applied_state().digest != info.digest {
        return Err(corrupt(SnapshotError::DigestMismatch));
    }
    Ok(info)
}

/// LSNs some chunk should hold but none does, between `floor` and the end of the last chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hole {
    pub from: Lsn,
    pub to: Lsn,
    /// The object that ends right before the hole (`None` when the hole starts at LSN 1).
    pub before: Option<String>,
    /// The chunk right after it.
    pub after: String,
}

/// The holes in the LSNs the named chunks cover, from `floor` on (`floor_object` holds the
/// state right before `floor`, if any). `chunks` are in listing order.
pub(crate) fn holes<'a>(
    chunks: impl IntoIterator<Item = &'a WalChunkName>,
    floor: Lsn,
    floor_object: Option<String>,
) -> Vec<Hole> {
    let mut holes = Vec::new();
    let mut covered = floor.0.saturating_sub(1);
    let mut before = floor_object;
    for chunk in chunks {
        if chunk.last.0 <= covered {
            continue;
        }
        if chunk.first.0 > covered + 1 {
            holes.push(Hole {
                from: Lsn(covered + 1),
                to: Lsn(chunk.first.0 - 1),
                before: before.clone(),
                after: chunk.key(),
            });
        }
        covered = chunk.last.0;
        before = Some(chunk.key());
    }
    holes
}
