//! The writer: dense appends, truncation and retention; group commit is in `group_commit`.

mod group_commit;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Thread;

use super::frame::{self, HEADER_LEN, MAX_BODY_LEN};
use super::index::{SeekPoint, SparseIndex};
use super::options::{AppendTicket, WalOptions, WalStats};
use super::reader::{ResumePoint, WalEntries};
use super::recovery::{self, ActiveSegment, RecoveryReport};
use super::segment::{self, SegmentFile, segment_file_name};
use super::{Ballot, Entry, Lsn, Operation, WalError};

/// Name of the lock file that keeps two writers out of one WAL directory.
const LOCK_FILE: &str = "LOCK";

#[derive(Default)]
struct Counters {
    appends: AtomicU64,
    syncs: AtomicU64,
    flushes: AtomicU64,
    bytes_written: AtomicU64,
    segments_created: AtomicU64,
    segments_deleted: AtomicU64,
    zero_fills: AtomicU64,
}

struct State {
    /// LSN the next enqueued entry must carry.
    next_lsn: Lsn,
    /// Last LSN known durable.
    durable_lsn: Lsn,
    /// Oldest retained LSN.
    first_lsn: Lsn,
    /// Encoded records enqueued but not yet taken by a flusher.
    pending: Vec<u8>,
    /// LSN of the first record in `pending`.
    pending_first: Lsn,
    /// Records ever enqueued and ever made durable. Waiters compare these rather than LSNs
    /// because `truncate_after` moves LSNs backwards.
    enqueued: u64,
    synced: u64,
    /// Sequence number of the batch now pending (the next one a flusher takes); the batch in
    /// flight, if any, is `batch - 1`. `truncate_after` waits on its condition variable.
    batch: u64,
    /// Records in the last batch flushed: how many appenders are likely to come back soon.
    last_batch_records: u64,
    /// A flusher is writing; it holds `active`.
    flushing: bool,
    /// Why the log refuses further changes, if it does.
    poisoned: Option<String>,
    /// The segment being appended to; `None` while a flusher holds it.
    active: Option<ActiveSegment>,
    /// First LSNs of retained segments, oldest first; the last is the active one.
    segments: Vec<Lsn>,
    /// Where records of the retained segments start, sparsely.
    index: SparseIndex,
    /// Appenders parked until `synced` reaches their target record count.
    waiters: Vec<(u64, Thread)>,
    /// The last flush woke other appenders (so more than one thread appends to this log).
    last_flush_woke: bool,
}

/// A partition's write-ahead log, open for appending. `Send + Sync`: share it through an `Arc`.
///
/// Every append returns only once its entries are written and `fdatasync`ed. Batches are
/// written at the end of the last record, over zeros preallocated ahead of it when
/// [`WalOptions::preallocate_bytes`] is non-zero. Concurrent
/// appenders share syncs (group commit): the first appender that finds no flush in progress
/// writes everything enqueued so far with one write and one `fdatasync`, outside the lock, while
/// others keep enqueuing. No thread is started. A failed write or sync fails every waiter of that
/// batch and poisons the log: every later change returns [`WalError::Poisoned`].
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    state: Mutex<State>,
    /// `truncate_after` waits on these for an in-flight flush to finish (even and odd batches).
    /// Appenders do not: they park and are unparked individually (see `wait_durable`).
    flushed: [Condvar; 2],
    /// `State::synced`, readable without the lock: a woken appender whose records are durable
    /// returns without queueing for the mutex again.
    synced_fast: AtomicU64,
    counters: Counters,
    report: RecoveryReport,
    _lock: File,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the log in `dir` (created if missing), running recovery: a torn tail of the last
    /// segment is cut off (see [`Wal::recovery_report`]), a tail of zeros after its last record
    /// (space preallocated by a writer, see [`WalOptions::preallocate_bytes`]) is kept; any other damage fails with
    /// [`WalError::Corruption`] and changes nothing. Fails with [`WalError::Locked`] if another
    /// `Wal` has the directory open.
    pub fn open(dir: &Path, options: WalOptions) -> Result<Wal, WalError> {
        fs::create_dir_all(dir).map_err(WalError::io("create directory", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(WalError::io("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(WalError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(WalError::io("lock", &lock_path)(e)),
        }
        let recovered = recovery::recover(dir, options.start_lsn, options.index_every_bytes)?;
        let report = recovered.report;
        let counters = Counters::default();
        if report.created {
            counters.segments_created.store(1, Ordering::Relaxed);
        }
        let state = State {
            next_lsn: report.last_lsn.next(),
            durable_lsn: report.last_lsn,
            first_lsn: report.first_lsn,
            pending: Vec::new(),
            pending_first: report.last_lsn.next(),
            enqueued: 0,
            synced: 0,
            batch: 0,
            last_batch_records: 0,
            flushing: false,
            poisoned: None,
            active: Some(recovered.active),
            segments: recovered.segments,
            index: recovered.index,
            waiters: Vec::new(),
            last_flush_woke: false,
        };
        Ok(Wal {
            dir: dir.to_path_buf(),
            options,
            state: Mutex::new(state),
            flushed: [Condvar::new(), Condvar::new()],
            synced_fast: AtomicU64::new(0),
            counters,
            report,
            _lock: lock,
        })
    }

    /// What recovery found and cut when the log was opened.
    #[must_use]
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The directory holding the segments.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Counters since open.
    #[must_use]
    pub fn stats(&self) -> WalStats {
        let c = &self.counters;
        WalStats {
            appends: c.appends.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            segments_created: c.segments_created.load(Ordering::Relaxed),
            segments_deleted: c.segments_deleted.load(Ordering::Relaxed),
            zero_fills: c.zero_fills.load(Ordering::Relaxed),
        }
    }

    /// The last durable LSN (`first_lsn() - 1` if the log holds no entries).
    pub fn last_lsn(&self) -> Result<Lsn, WalError> {
        Ok(self.lock()?.durable_lsn)
    }

    /// The oldest retained LSN; for a log holding no entries, the LSN the next entry must carry.
    pub fn first_lsn(&self) -> Result<Lsn, WalError> {
        Ok(self.lock()?.first_lsn)
    }

    /// Appends one entry (its LSN must follow the last enqueued one) and returns once it is
    /// durable.
    pub fn append(&self, entry: Entry) -> Result<(), WalError> {
        self.append_batch(vec![entry])
    }

    /// Appends dense entries (the first must follow the last enqueued one) and returns once all
    /// are durable. Either all are enqueued or, on a contiguity or size error, none.
    pub fn append_batch(&self, entries: Vec<Entry>) -> Result<(), WalError> {
        match self.submit_batch(entries)? {
            Some(ticket) => self.wait(ticket).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Appends an entry carrying the next LSN (assigned under the lock) and returns that LSN
    /// once the entry is durable.
    pub fn append_next(
        &self,
        ballot: Ballot,
        timestamp_ms: u64,
        op: Operation,
    ) -> Result<Lsn, WalError> {
        let ticket = self.submit_next(ballot, timestamp_ms, op)?;
        self.wait(ticket)
    }

    /// Enqueues dense entries without waiting for them to become durable; `None` for an empty
    /// batch. The caller must [`Wal::wait`] on the ticket before treating them as durable.
    /// Enqueue order is LSN order, so a caller that enqueues under its own lock keeps its log
    /// order while the fsync happens after it releases that lock (pipelining).
    pub fn submit_batch(&self, entries: Vec<Entry>) -> Result<Option<AppendTicket>, WalError> {
        let Some(first) = entries.first().map(|e| e.lsn) else {
            return Ok(None);
        };
        let mut records = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let expected = Lsn(first.0 + i as u64);
            if entry.lsn != expected {
                return Err(WalError::NonContiguous {
                    expected,
                    got: entry.lsn,
                });
            }
            encode_record(entry, &mut records)?;
        }
        let mut state = self.lock()?;
        check_not_poisoned(&state)?;
        if first != state.next_lsn {
            return Err(WalError::NonContiguous {
                expected: state.next_lsn,
                got: first,
            });
        }
        let target = enqueue(&mut state, &records, entries.len() as u64);
        self.counters
            .appends
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(Some(AppendTicket {
            target,
            last_lsn: Lsn(first.0 + entries.len() as u64 - 1),
        }))
    }

    /// Enqueues an entry carrying the next LSN (assigned under the lock) without waiting for it
    /// to become durable; see [`Wal::submit_batch`].
    pub fn submit_next(
        &self,
        ballot: Ballot,
        timestamp_ms: u64,
        op: Operation,
    ) -> Result<AppendTicket, WalError> {
        let mut state = self.lock()?;
        check_not_poisoned(&state)?;
        let entry = Entry {
            lsn: state.next_lsn,
            ballot,
            timestamp_ms,
            op,
        };
        let mut record = Vec::with_capacity(entry.encoded_len() + frame::FRAME_HEADER_LEN);
        encode_record(&entry, &mut record)?;
        let target = enqueue(&mut state, &record, 1);
        self.counters.appends.fetch_add(1, Ordering::Relaxed);
        Ok(AppendTicket {
            target,
            last_lsn: entry.lsn,
        })
    }

    /// Waits until the entries behind `ticket` are durable (sharing the fsync with every other
    /// waiter) and returns the last LSN it covers.
    pub fn wait(&self, ticket: AppendTicket) -> Result<Lsn, WalError> {
        if self.synced_fast.load(Ordering::Acquire) < ticket.target {
            let state = self.lock()?;
            self.wait_durable(state, ticket.target)?;
        }
        Ok(ticket.last_lsn)
    }

    /// Iterates the durable entries from `lsn` onward, across segments, up to the last LSN that
    /// was durable when this was called. `lsn` below [`Wal::first_lsn`] is
    /// [`WalError::BelowRetained`]; above the last durable LSN yields nothing. A concurrent
    /// `truncate_after` or `delete_below` may end the iteration with an error.
    pub fn read_from(
        &self,
        lsn: Lsn,
    ) -> Result<impl Iterator<Item = Result<Entry, WalError>> + use<>, WalError> {
        let state = self.lock()?;
        let start = seek_point(&state, lsn)?;
        let limit = state.durable_lsn;
        drop(state);
        if lsn > limit {
            return Ok(WalEntries::empty(&self.dir, lsn));
        }
        WalEntries::starting_at(&self.dir, start, lsn, Some(limit))
    }

    /// The nearest record boundary at or before `lsn` that this log's index knows, for a tail
    /// reader ([`crate::wal::resume_entries`]) that should start near `lsn` without reading its
    /// segment from the start: the reader yields from the boundary's LSN on. `lsn` below
    /// [`Wal::first_lsn`] is [`WalError::BelowRetained`].
    pub fn resume_point_near(&self, lsn: Lsn) -> Result<ResumePoint, WalError> {
        let point = seek_point(&*self.lock()?, lsn)?;
        Ok(ResumePoint::at(&self.dir, point))
    }

    /// Drops every entry above `lsn` (Paxos replaces an unaccepted suffix), durably, before
    /// returning. Entries enqueued before the call are first made durable. `lsn` at or above the
    /// last LSN changes nothing; `lsn + 1` below [`Wal::first_lsn`] is
    /// [`WalError::BelowRetained`]; `lsn = first_lsn() - 1` empties the log.
    pub fn truncate_after(&self, lsn: Lsn) -> Result<(), WalError> {
        let mut state = self.lock()?;
        loop {
            check_not_poisoned(&state)?;
            if state.flushing {
                let in_flight = state.batch.wrapping_sub(1);
                state = self.wait_batch(state, in_flight)?;
            } else if !state.pending.is_empty() {
                let target = state.enqueued;
                self.wait_durable(state, target)?;
                state = self.lock()?;
            } else {
                break;
            }
        }
        if lsn >= state.durable_lsn {
            return Ok(());
        }
        if lsn.next() < state.first_lsn {
            return Err(WalError::BelowRetained {
                requested: lsn.next(),
                first: state.first_lsn,
            });
        }
        // The lock is held throughout so that no append interleaves with the cut.
        if let Err(e) = self.cut_after(&mut state, lsn) {
            state.poisoned = Some(format!("truncate_after({lsn}) failed: {e}"));
            return Err(e);
        }
        Ok(())
    }

    /// Deletes sealed segments whose every entry is at or below `watermark`, oldest first,
    /// never the active segment, and returns how many were deleted. The caller passes the
    /// smaller of the archive watermark and the persisted-applied LSN.
    pub fn delete_below(&self, watermark: Lsn) -> Result<usize, WalError> {
        let mut state = self.lock()?;
        check_not_poisoned(&state)?;
        let sealed = state.segments.len().saturating_sub(1);
        let doomed_count = (0..sealed)
            .take_while(|&i| state.segments[i + 1].0 - 1 <= watermark.0)
            .count();
        let doomed: Vec<Lsn> = state.segments.drain(..doomed_count).collect();
        if let Some(first) = state.segments.first().copied() {
            state.first_lsn = state.first_lsn.max(first);
            state.index.retire_below(first);
        }
        drop(state);
        for first in &doomed {
            let path = self.dir.join(segment_file_name(*first));
            fs::remove_file(&path).map_err(WalError::io("delete segment", &path))?;
            self.counters
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            segment::sync_dir(&self.dir)?;
        }
        Ok(doomed.len())
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, WalError> {
        self.state.lock().map_err(|_| poisoned_lock())
    }

    /// Cuts the log after `lsn`; the caller holds the lock, no flush runs and nothing is pending.
    fn cut_after(&self, state: &mut State, lsn: Lsn) -> Result<(), WalError> {
        let keep = state
            .segments
            .iter()
            .rposition(|first| *first <= lsn.next())
            .unwrap_or(0);
        let keep_first = state.segments[keep];
        // Newest first, so a crash part-way leaves a contiguous log.
        let later: Vec<Lsn> = state.segments.drain(keep + 1..).collect();
        let active_first = state.active.as_ref().map(|a| a.first_lsn);
        if !later.is_empty() {
            // Close the active file before deleting it.
            state.active = None;
        }
        for first in later.iter().rev() {
            let path = self.dir.join(segment_file_name(*first));
            fs::remove_file(&path).map_err(WalError::io("delete segment", &path))?;
            self.counters
                .segments_deleted
                .fetch_add(1, Ordering::Relaxed);
        }
        if !later.is_empty() {
            segment::sync_dir(&self.dir)?;
        }
        let path = self.dir.join(segment_file_name(keep_first));
        let offset = segment::record_offset(
            &SegmentFile {
                first_lsn: keep_first,
                path: path.clone(),
            },
            lsn.next(),
        )?;
        let file = match state.active.take() {
            Some(active) if active_first == Some(keep_first) => active.file,
            _ => OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(WalError::io("open segment", &path))?,
        };
        recovery::truncate(&file, &path, offset)?;
        file.sync_data()
            .map_err(WalError::io("fsync segment", &path))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        // The zeroed region, cut with the records, is re-created by the next batch.
        state.active = Some(ActiveSegment {
            file,
            path,
            first_lsn: keep_first,
            len: offset,
            zeroed_end: offset,
        });
        state.next_lsn = lsn.next();
        state.pending_first = lsn.next();
        state.durable_lsn = lsn;
        state.index.cut_after(lsn);
        // The kept segment's start, when the cut emptied it.
        state.index.note(keep_first, keep_first, HEADER_LEN as u64);
        Ok(())
    }
}

/// The index's nearest record boundary at or before `lsn`; `lsn` below the first retained LSN
/// is [`WalError::BelowRetained`].
fn seek_point(state: &State, lsn: Lsn) -> Result<SeekPoint, WalError> {
    if lsn < state.first_lsn {
        return Err(WalError::BelowRetained {
            requested: lsn,
            first: state.first_lsn,
        });
    }
    // Every retained segment has a point at its start, so there is one at or below `lsn`.
    Ok(state
        .index
        .seek(lsn)
        .unwrap_or_else(|| SeekPoint::segment_start(state.first_lsn)))
}

fn encode_record(entry: &Entry, out: &mut Vec<u8>) -> Result<(), WalError> {
    frame::encode_frame(entry, out).map_err(|bytes| WalError::EntryTooLarge {
        lsn: entry.lsn,
        bytes,
        max: MAX_BODY_LEN,
    })
}

/// Adds encoded records to the pending buffer and returns the enqueue count to wait for.
fn enqueue(state: &mut State, records: &[u8], count: u64) -> u64 {
    if state.pending.is_empty() {
        state.pending_first = state.next_lsn;
    }
    state.pending.extend_from_slice(records);
    state.next_lsn = Lsn(state.next_lsn.0 + count);
    state.enqueued += count;
    state.enqueued
}

fn check_not_poisoned(state: &State) -> Result<(), WalError> {
    match &state.poisoned {
        Some(reason) => Err(WalError::Poisoned {
            reason: reason.clone(),
        }),
        None => Ok(()),
    }
}

fn poisoned_lock() -> WalError {
    WalError::Poisoned {
        reason: "a thread panicked while holding the WAL lock".to_string(),
    }
}
