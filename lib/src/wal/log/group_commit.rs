//! Group commit: appenders share `fdatasync`s. The first appender that finds records pending
//! and no flush running becomes the flusher; the others park until their records are durable.
//! Batches are written over zeros preallocated (and synced) ahead of the last record, so a
//! batch's `fdatasync` has no file-size change to journal.

use std::os::unix::fs::FileExt;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{State, Wal, check_not_poisoned, poisoned_lock};
use crate::wal::frame::HEADER_LEN;
use crate::wal::recovery::ActiveSegment;
use crate::wal::segment;
use crate::wal::{Lsn, WalError};

/// How many batches in a row one appender flushes before handing the job to a parked one.
const CONSECUTIVE_FLUSHES: u32 = 4;

/// Batches of at least this many records count as "under load" for gathering.
const GATHER_MIN_BATCH: u64 = 4;
/// Longest a flusher waits for appenders of the previous batch to enqueue again.
const GATHER_MAX: std::time::Duration = std::time::Duration::from_micros(100);

/// Largest piece of zeros written at once when preallocating.
const ZERO_CHUNK: u64 = 1024 * 1024;

impl Wal {
    /// Waits until batch `batch` is finished (or, if it is pending, until it may be flushed).
    pub(super) fn wait_batch<'a>(
        &self,
        state: MutexGuard<'a, State>,
        batch: u64,
    ) -> Result<MutexGuard<'a, State>, WalError> {
        self.flushed[(batch % 2) as usize]
            .wait(state)
            .map_err(|_| poisoned_lock())
    }

    /// Waits until `target` records have been made durable, becoming the flusher when no flush
    /// is in progress and records are pending.
    ///
    /// While a flush runs, the caller registers `(target, thread)` and parks. The flusher, once
    /// its batch is durable, unparks exactly the waiters it satisfied (they see `synced_fast`
    /// and return without taking the lock again) and one unsatisfied waiter to flush the next
    /// batch. Waking only those threads, and not making each of them queue for the mutex, is
    /// what lets many appenders share fsyncs on few cores.
    pub(super) fn wait_durable<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        target: u64,
    ) -> Result<(), WalError> {
        loop {
            if state.synced >= target {
                return Ok(());
            }
            check_not_poisoned(&state)?;
            if !state.flushing && !state.pending.is_empty() {
                // Become the flusher, and stay it for a few batches while records keep
                // arriving: handing off to a parked thread costs a wake-up and a trip through
                // the run queue per batch, which on few cores is most of a sync's time.
                for round in 1..=CONSECUTIVE_FLUSHES {
                    // Let appenders that are already runnable (woken by the previous batch)
                    // enqueue before the batch is cut: on few cores this roughly doubles it.
                    // Under load, give the appenders the last batch woke up a moment to enqueue
                    // again (at most GATHER_MAX, far below a sync), so batches stay large.
                    // Only with other appenders, though: a lone one (a partition's syncer,
                    // which waits for every writer's appends) would give its core away to
                    // unrelated threads and delay the sync it alone is waiting for.
                    let gather_until = Instant::now() + GATHER_MAX;
                    while !state.waiters.is_empty() || state.last_flush_woke {
                        drop(state);
                        std::thread::yield_now();
                        state = self.lock()?;
                        let pending_records = state.enqueued - state.synced;
                        if state.flushing
                            || state.last_batch_records < GATHER_MIN_BATCH
                            || pending_records >= state.last_batch_records
                            || Instant::now() >= gather_until
                        {
                            break;
                        }
                    }
                    if state.flushing || state.pending.is_empty() {
                        break;
                    }
                    let last = round == CONSECUTIVE_FLUSHES;
                    state = self.flush(state, last)?;
                    if state.synced >= target && state.pending.is_empty() {
                        break;
                    }
                }
                continue;
            }
            if !state.flushing {
                // Records not yet durable are pending or in flight; anything else is a bug,
                // and parking would never end.
                return Err(WalError::Poisoned {
                    reason: "awaited records are neither pending nor being flushed".to_string(),
                });
            }
            state.waiters.push((target, std::thread::current()));
            drop(state);
            // Unparked when our records are durable, to become the next flusher, or on poison;
            // a spurious wake-up just re-checks under the lock.
            std::thread::park();
            if self.synced_fast.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            state = self.lock()?;
        }
    }

    /// Writes and syncs everything pending, with the lock released during I/O. With
    /// `hand_off`, a parked appender is woken to flush what was enqueued meanwhile; without,
    /// the caller flushes it itself.
    fn flush<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
        hand_off: bool,
    ) -> Result<MutexGuard<'a, State>, WalError> {
        let Some(mut active) = state.active.take() else {
            state.poisoned = Some("active segment missing".to_string());
            return Err(WalError::Poisoned {
                reason: "active segment missing".to_string(),
            });
        };
        let batch = std::mem::take(&mut state.pending);
        let batch_first = state.pending_first;
        let batch_last = Lsn(state.next_lsn.0 - 1);
        let batch_end = state.enqueued;
        state.last_batch_records = batch_end - state.synced;
        state.pending_first = state.next_lsn;
        state.flushing = true;
        let batch_number = state.batch;
        state.batch = state.batch.wrapping_add(1);
        drop(state);

        let result = self.write_batch(&mut active, &batch, batch_first);

        let mut state = self.lock()?;
        state.flushing = false;
        let rotated_to = active.first_lsn;
        state.active = Some(active);
        let outcome = match result {
            Ok(offset) => {
                if state.segments.last() != Some(&rotated_to) {
                    state.segments.push(rotated_to);
                }
                if !batch.is_empty() {
                    state.index.note(rotated_to, batch_first, offset);
                }
                state.synced = batch_end;
                state.durable_lsn = batch_last;
                // Hand the buffer back for reuse if nothing new arrived meanwhile.
                if state.pending.is_empty() {
                    let mut reuse = batch;
                    reuse.clear();
                    state.pending = reuse;
                }
                Ok(())
            }
            Err(e) => {
                state.poisoned = Some(format!(
                    "flush of LSNs {batch_first}..={batch_last} failed: {e}"
                ));
                Err(e)
            }
        };
        self.synced_fast.store(state.synced, Ordering::Release);
        // Wake the waiters this batch satisfied (all of them on failure, to see the poison),
        // and one waiter of the pending records to flush them.
        let mut next_flusher_woken = !hand_off || state.pending.is_empty();
        let synced = state.synced;
        let failed = outcome.is_err();
        let mut wake = Vec::new();
        state.waiters.retain(|(target, thread)| {
            let satisfied = failed || *target <= synced;
            if satisfied || !next_flusher_woken {
                next_flusher_woken |= !satisfied;
                wake.push(thread.clone());
                false
            } else {
                true
            }
        });
        state.last_flush_woke = !wake.is_empty();
        // truncate_after waits for the in-flight batch on these.
        self.flushed[(batch_number % 2) as usize].notify_all();
        if failed {
            self.flushed[((batch_number + 1) % 2) as usize].notify_all();
        }
        // Unpark outside the lock: the woken threads mostly return at once (their records are
        // durable), and the ones that need the lock should not find the flusher holding it.
        drop(state);
        for thread in wake {
            thread.unpark();
        }
        outcome?;
        self.lock()
    }

    /// Writes and syncs `batch` (records from `batch_first` on), first rotating to a new
    /// segment if the active one is full; returns the offset the batch was written at.
    fn write_batch(
        &self,
        active: &mut ActiveSegment,
        batch: &[u8],
        batch_first: Lsn,
    ) -> Result<u64, WalError> {
        if active.len >= self.options.segment_max_bytes && active.len > HEADER_LEN as u64 {
            self.seal(active)?;
            let (file, path) = segment::create_segment(&self.dir, batch_first)?;
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
            self.counters
                .segments_created
                .fetch_add(1, Ordering::Relaxed);
            *active = ActiveSegment {
                file,
                path,
                first_lsn: batch_first,
                len: HEADER_LEN as u64,
                zeroed_end: HEADER_LEN as u64,
            };
        }
        let offset = active.len;
        let batch_end = offset + batch.len() as u64;
        if self.options.preallocate_bytes > 0 && batch_end > active.zeroed_end {
            self.extend_zeroed(active, batch_end)?;
        }
        active
            .file
            .write_all_at(batch, active.len)
            .map_err(WalError::io("write segment", &active.path))?;
        active.len = batch_end;
        active.zeroed_end = active.zeroed_end.max(batch_end);
        active
            .file
            .sync_data()
            .map_err(WalError::io("fsync segment", &active.path))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes_written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(offset)
    }

    /// Extends the zeroed region of the active segment past `needed_end` (by
    /// `preallocate_bytes`, but not beyond `segment_max_bytes` unless the batch itself is) with
    /// real zero bytes, and syncs them: a later `fdatasync` of records written over them then
    /// has no file size or extent change to journal, which makes it about twice as fast.
    fn extend_zeroed(&self, active: &mut ActiveSegment, needed_end: u64) -> Result<(), WalError> {
        let target = needed_end
            .saturating_add(self.options.preallocate_bytes)
            .min(needed_end.max(self.options.segment_max_bytes));
        let zeros = vec![0u8; (target - active.zeroed_end).min(ZERO_CHUNK) as usize];
        while active.zeroed_end < target {
            let piece = (target - active.zeroed_end).min(zeros.len() as u64) as usize;
            active
                .file
                .write_all_at(&zeros[..piece], active.zeroed_end)
                .map_err(WalError::io("preallocate segment", &active.path))?;
            active.zeroed_end += piece as u64;
        }
        active
            .file
            .sync_data()
            .map_err(WalError::io("fsync segment", &active.path))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        self.counters.zero_fills.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Truncates the active segment to its last record before it is sealed: recovery requires
    /// a sealed segment to end exactly there.
    fn seal(&self, active: &mut ActiveSegment) -> Result<(), WalError> {
        if active.zeroed_end == active.len {
            return Ok(());
        }
        active
            .file
            .set_len(active.len)
            .map_err(WalError::io("truncate segment", &active.path))?;
        active
            .file
            .sync_data()
            .map_err(WalError::io("fsync segment", &active.path))?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        active.zeroed_end = active.len;
        Ok(())
    }
}
