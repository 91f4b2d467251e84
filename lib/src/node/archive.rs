//! The node's side of archiving (`DESIGN.md`, "Archive"): each partition replica keeps the
//! archive watermark its archiver reports, persisted; counts the log bytes above it; refuses
//! writes with DynamoDB's throttling error while they pass the configured bound; and remembers
//! recent `(LSN, digest)` points, so the archiver can seal a chunk with the state digest at its
//! last entry.
//!
//! Unarchived bytes are an upper estimate, never an underestimate: the log a node held when it
//! opened is counted by segment file sizes (the segment the watermark falls in counts whole),
//! and every append after that by its record size. The estimate tightens as the watermark
//! passes the appends made since the node opened.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::digest::StateDigest;
use crate::protocol::{ApiError, ErrorCode};
use crate::replica::AppliedState;
use crate::wal::{Entry, Lsn, frame, segment};

/// Digest points kept per partition twice over: the states after the last this-many applies
/// (where the archiver cuts its next chunk, right at the applied LSN it just read up to), and
/// this many more at least [`POINT_SPACING`] apart (where it cuts a backlog). The store's
/// persisted checkpoints (every 1024 LSNs) cover older backlogs.
const POINTS_KEPT: usize = 64;

/// Minimum time between two spaced digest points.
const POINT_SPACING: Duration = Duration::from_millis(100);

/// Where a partition's archive watermark is persisted under the node's data directory.
#[must_use]
pub fn watermark_path(data_dir: &Path, partition_id: u64) -> PathBuf {
    data_dir
        .join("archive-state")
        .join(partition_id.to_string())
}

/// One partition replica's archive bookkeeping.
#[derive(Debug)]
pub struct ArchiveTracking {
    partition_id: u64,
    path: PathBuf,
    /// Unarchived bytes past which writes are throttled; `None` when archiving is off.
    bound: Option<u64>,
    inner: Mutex<Inner>,
    throttled_writes: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    watermark: Lsn,
    /// Log bytes counted so far: the estimate at open plus every append since.
    logged_total: u64,
    /// `(last LSN of an append, logged_total after it)`, LSN-ascending. The first mark stands
    /// for everything at or below the watermark at open.
    marks: VecDeque<(Lsn, u64)>,
    /// The states after the last applies.
    recent: VecDeque<(Lsn, StateDigest)>,
    /// Older states, spaced in time.
    spaced: VecDeque<(Lsn, StateDigest, Instant)>,
    over_bound: bool,
}

/// What the node tells its archiver and `/metrics` about one partition's archiving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveProgress {
    /// Highest LSN the archive holds contiguously, as last reported.
    pub watermark: Lsn,
    /// Log bytes above the watermark (an upper estimate).
    pub unarchived_bytes: u64,
    /// True while writes are throttled because `unarchived_bytes` passed the bound.
    pub over_bound: bool,
    /// Writes refused by the bound since the node started.
    pub throttled_writes: u64,
}

impl ArchiveTracking {
    /// Reads the partition's persisted watermark (none yet: LSN 0) and estimates the bytes of
    /// `wal_dir` above it. `bound` is `None` when the node does not archive.
    pub fn open(
        data_dir: &Path,
        wal_dir: &Path,
        partition_id: u64,
        bound: Option<u64>,
    ) -> Result<Self, String> {
        let path = watermark_path(data_dir, partition_id);
        let watermark = read_watermark(&path)?;
        // Without an archiver nothing reads the estimate or the digest points: the per-append
        // and per-apply bookkeeping below is skipped, and so is this directory scan.
        let estimate = match bound {
            Some(_) => bytes_above(wal_dir, watermark)?,
            None => 0,
        };
        Ok(ArchiveTracking {
            partition_id,
            path,
            bound,
            inner: Mutex::new(Inner {
                watermark,
                logged_total: estimate,
                marks: VecDeque::from([(watermark, 0)]),
                recent: VecDeque::new(),
                spaced: VecDeque::new(),
                over_bound: false,
            }),
            throttled_writes: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts entries just submitted to the WAL.
    pub fn note_appended(&self, entries: &[Entry]) {
        let Some(last) = entries.last().filter(|_| self.bound.is_some()) else {
            return;
        };
        let bytes: u64 = entries
            .iter()
            .map(|entry| (entry.encoded_len() + frame::FRAME_HEADER_LEN) as u64)
            .sum();
        let mut inner = self.lock();
        inner.logged_total += bytes;
        let total = inner.logged_total;
        inner.marks.push_back((last.lsn, total));
        // Bounded: merging two marks only makes the estimate coarser (larger), never smaller.
        if inner.marks.len() > 4096 {
            let newest = inner.marks.len() - 1;
            inner.marks.remove(newest - 1);
        }
        self.check_bound(&mut inner);
    }

    /// The WAL was cut after `lsn`: marks above it no longer name entries.
    pub fn note_truncated(&self, lsn: Lsn) {
        let mut inner = self.lock();
        while inner.marks.len() > 1 && inner.marks.back().is_some_and(|(mark, _)| *mark > lsn) {
            inner.marks.pop_back();
        }
    }

    /// Drops every digest point: the store was repaired and they described the copy it was.
    pub fn forget_points(&self) {
        let mut inner = self.lock();
        inner.recent.clear();
        inner.spaced.clear();
    }

    /// Records the store's state after an apply as a digest point (`state` is not asked for,
    /// and its 2 KiB digest not copied, when the node does not archive).
    pub fn note_applied(&self, state: impl FnOnce() -> AppliedState) {
        if self.bound.is_none() {
            return;
        }
        let state = state();
        let now = Instant::now();
        let mut inner = self.lock();
        let spaced_due = inner
            .spaced
            .back()
            .is_none_or(|(_, _, at)| now.duration_since(*at) >= POINT_SPACING);
        if spaced_due {
            inner
                .spaced
                .push_back((state.applied_lsn, state.digest.clone(), now));
            if inner.spaced.len() > POINTS_KEPT {
                inner.spaced.pop_front();
            }
        }
        inner.recent.push_back((state.applied_lsn, state.digest));
        if inner.recent.len() > POINTS_KEPT {
            inner.recent.pop_front();
        }
    }

    /// The newest recent digest point at or below `at_most`.
    #[must_use]
    pub fn point_at_or_below(&self, at_most: Lsn) -> Option<(Lsn, StateDigest)> {
        let inner = self.lock();
        let recent = inner.recent.iter().rev().find(|(lsn, _)| *lsn <= at_most);
        let spaced = inner
            .spaced
            .iter()
            .rev()
            .find(|(lsn, _, _)| *lsn <= at_most)
            .map(|(lsn, digest, _)| (lsn, digest));
        match (recent.map(|(lsn, digest)| (lsn, digest)), spaced) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
        .map(|(lsn, digest)| (*lsn, digest.clone()))
    }

    /// Records that the archive holds every entry through `lsn`, persisted before it counts.
    /// A lower LSN than the current watermark changes nothing (reports may arrive out of
    /// order). Returns the watermark now in force.
    pub fn advance_watermark(&self, lsn: Lsn) -> Result<Lsn, String> {
        let mut inner = self.lock();
        if lsn <= inner.watermark {
            return Ok(inner.watermark);
        }
        write_watermark(&self.path, lsn)?;
        inner.watermark = lsn;
        // Keep the newest mark at or below the watermark: it is the base of the estimate.
        while inner.marks.len() > 1 && inner.marks.get(1).is_some_and(|(mark, _)| *mark <= lsn) {
            inner.marks.pop_front();
        }
        self.check_bound(&mut inner);
        Ok(lsn)
    }

    /// Where archiving stands.
    #[must_use]
    pub fn progress(&self) -> ArchiveProgress {
        let inner = self.lock();
        ArchiveProgress {
            watermark: inner.watermark,
            unarchived_bytes: unarchived(&inner),
            over_bound: inner.over_bound,
            throttled_writes: self.throttled_writes.load(Ordering::Relaxed),
        }
    }

    /// Refuses a write with `ThrottlingException` while the unarchived log is past the bound:
    /// the node never deletes unarchived WAL, so it slows writers instead of filling its disk.
    pub fn admit_write(&self) -> Result<(), ApiError> {
        if self.bound.is_none() || !self.lock().over_bound {
            return Ok(());
        }
        self.throttled_writes.fetch_add(1, Ordering::Relaxed);
        Err(ApiError::new(
            ErrorCode::ThrottlingException,
            "Rate of requests exceeds the allowed throughput: the partition's write-ahead log \
             is not archived yet; retry later",
        ))
    }

    fn check_bound(&self, inner: &mut Inner) {
        let Some(bound) = self.bound else {
            return;
        };
        let bytes = unarchived(inner);
        let over = bytes > bound;
        if over != inner.over_bound {
            inner.over_bound = over;
            if over {
                tracing::error!(
                    partition = self.partition_id,
                    unarchived_bytes = bytes,
                    bound,
                    watermark = %inner.watermark,
                    "ALARM unarchived WAL passed its bound: throttling writes until the archiver catches up"
                );
            } else {
                tracing::info!(
                    partition = self.partition_id,
                    unarchived_bytes = bytes,
                    bound,
                    "unarchived WAL back under its bound: writes accepted again"
                );
            }
        }
    }
}

fn unarchived(inner: &Inner) -> u64 {
    let base = inner
        .marks
        .iter()
        .rev()
        .find(|(mark, _)| *mark <= inner.watermark)
        .map_or(0, |(_, total)| *total);
    inner.logged_total.saturating_sub(base)
}

fn read_watermark(path: &Path) -> Result<Lsn, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map(Lsn)
            .map_err(|e| format!("archive watermark {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lsn::ZERO),
        Err(e) => Err(format!("reading archive watermark {}: {e}", path.display())),
    }
}

/// Writes the watermark durably: a temporary file, fsynced, renamed over the old one, and the
/// directory fsynced.
fn write_watermark(path: &Path, lsn: Lsn) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    std::fs::create_dir_all(dir).map_err(|e| fail("creating the directory of", e))?;
    let temporary = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&temporary).map_err(|e| fail("writing archive watermark", e))?;
    writeln!(file, "{}", lsn.0).map_err(|e| fail("writing archive watermark", e))?;
    file.sync_data()
        .map_err(|e| fail("syncing archive watermark", e))?;
    std::fs::rename(&temporary, path).map_err(|e| fail("renaming archive watermark", e))?;
    segment::sync_dir(dir).map_err(|e| format!("syncing {}: {e}", dir.display()))?;
    Ok(())
}

/// Bytes of the segments in `wal_dir` that hold an entry above `watermark` (each counted
/// whole): the unarchived log a node finds when it opens.
fn bytes_above(wal_dir: &Path, watermark: Lsn) -> Result<u64, String> {
    let segments = segment::list_segments(wal_dir).map_err(|e| e.to_string())?;
    let mut total = 0;
    for (index, segment) in segments.iter().enumerate() {
        let holds_above = segments
            .get(index + 1)
            .is_none_or(|next| next.first_lsn.0.saturating_sub(1) > watermark.0);
        if holds_above {
            total += std::fs::metadata(&segment.path)
                .map_err(|e| format!("{}: {e}", segment.path.display()))?
                .len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::{Ballot, Operation};

    fn entry(lsn: u64, bytes: usize) -> Entry {
        Entry {
            lsn: Lsn(lsn),
            ballot: Ballot::default(),
            timestamp_ms: 0,
            op: Operation::Put {
                key: b"k".to_vec(),
                item: vec![0; bytes],
            },
        }
    }

    #[test]
    fn the_bound_throttles_until_the_watermark_passes_the_backlog_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        let tracking = ArchiveTracking::open(dir.path(), &wal, 7, Some(10_000)).unwrap();
        assert!(tracking.admit_write().is_ok());
        for lsn in 1..=30 {
            tracking.note_appended(&[entry(lsn, 500)]);
        }
        let progress = tracking.progress();
        assert!(progress.unarchived_bytes > 15_000, "{progress:?}");
        assert!(progress.over_bound);
        let refused = tracking.admit_write().unwrap_err();
        assert_eq!(refused.code, ErrorCode::ThrottlingException);

        assert_eq!(tracking.advance_watermark(Lsn(25)).unwrap(), Lsn(25));
        let progress = tracking.progress();
        assert!(!progress.over_bound, "{progress:?}");
        assert!(progress.unarchived_bytes < 5 * 600, "{progress:?}");
        assert_eq!(progress.throttled_writes, 1);
        assert!(tracking.admit_write().is_ok());
        // An older report does not move the watermark back.
        assert_eq!(tracking.advance_watermark(Lsn(3)).unwrap(), Lsn(25));

        let reopened = ArchiveTracking::open(dir.path(), &wal, 7, Some(10_000)).unwrap();
        assert_eq!(reopened.progress().watermark, Lsn(25));
    }

    #[test]
    fn digest_points_answer_the_newest_at_or_below() {
        let dir = tempfile::tempdir().unwrap();
        let tracking = ArchiveTracking::open(dir.path(), dir.path(), 1, Some(u64::MAX)).unwrap();
        let mut digest = StateDigest::empty();
        digest.insert_item(b"a", b"1");
        let state = AppliedState {
            applied_lsn: Lsn(5),
            digest: digest.clone(),
        };
        tracking.note_applied(|| state.clone());
        assert_eq!(tracking.point_at_or_below(Lsn(4)), None);
        assert_eq!(tracking.point_at_or_below(Lsn(9)), Some((Lsn(5), digest)));
        // A node that does not archive keeps no points, counts nothing, throttles nothing.
        let off = ArchiveTracking::open(dir.path(), dir.path(), 2, None).unwrap();
        off.note_applied(|| unreachable!("the state is not read when archiving is off"));
        assert_eq!(off.point_at_or_below(Lsn(9)), None);
        for lsn in 1..=100 {
            off.note_appended(&[entry(lsn, 100_000)]);
        }
        assert!(off.admit_write().is_ok());
        assert_eq!(off.progress().unarchived_bytes, 0);
    }
}
