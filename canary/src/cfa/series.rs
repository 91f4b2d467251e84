//! Request counts of one series in fixed-width time buckets, with running totals so any window's
//! counts cost two binary searches.

use std::collections::VecDeque;

/// Running totals up to and including one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    /// `at_ms / width_ms` of the samples it holds.
    index: u64,
    /// Requests recorded in this bucket and every earlier one (retained or dropped).
    cumulative_total: u64,
    /// Failed requests, likewise.
    cumulative_bad: u64,
}

/// The buckets of one series. Bucket `i` holds the samples with `i * width_ms <= at_ms <
/// (i + 1) * width_ms`; only buckets that received a sample exist.
#[derive(Clone, Debug)]
pub(crate) struct SeriesBuckets {
    width_ms: u64,
    /// How many buckets behind the newest one are kept: enough for the longest window plus one.
    retain_buckets: u64,
    /// Ascending by index.
    buckets: VecDeque<Bucket>,
    /// Totals of the buckets already dropped, so the running totals stay comparable.
    dropped_total: u64,
    dropped_bad: u64,
}

impl SeriesBuckets {
    /// `width_ms` must be positive; buckets more than `longest_window_ms` (plus one bucket) behind
    /// the newest are dropped.
    pub(crate) fn new(width_ms: u64, longest_window_ms: u64) -> Self {
        let width_ms = width_ms.max(1);
        Self {
            width_ms,
            retain_buckets: longest_window_ms.div_ceil(width_ms) + 1,
            buckets: VecDeque::new(),
            dropped_total: 0,
            dropped_bad: 0,
        }
    }

    /// Adds `total` requests, `bad` of them failed, at `at_ms`. Samples normally arrive in time
    /// order and cost O(1); a late one lands in its own bucket at O(buckets) cost.
    pub(crate) fn record(&mut self, at_ms: u64, total: u64, bad: u64) {
        let index = at_ms / self.width_ms;
        match self.buckets.back_mut() {
            Some(last) if last.index == index => {
                last.cumulative_total += total;
                last.cumulative_bad += bad;
            }
            Some(last) if last.index > index => self.record_late(index, total, bad),
            last => {
                let (before_total, before_bad) = last
                    .map_or((self.dropped_total, self.dropped_bad), |b| {
                        (b.cumulative_total, b.cumulative_bad)
                    });
                self.buckets.push_back(Bucket {
                    index,
                    cumulative_total: before_total + total,
                    cumulative_bad: before_bad + bad,
                });
                self.prune(at_ms);
            }
        }
    }

    fn record_late(&mut self, index: u64, total: u64, bad: u64) {
        let position = self.buckets.partition_point(|b| b.index < index);
        let first_to_bump = if self.buckets.get(position).is_some_and(|b| b.index == index) {
            position
        } else {
            let (before_total, before_bad) = self.cumulative_before(position);
            self.buckets.insert(
                position,
                Bucket {
                    index,
                    cumulative_total: before_total + total,
                    cumulative_bad: before_bad + bad,
                },
            );
            position + 1
        };
        for bucket in self.buckets.range_mut(first_to_bump..) {
            bucket.cumulative_total += total;
            bucket.cumulative_bad += bad;
        }
    }

    /// Running totals of everything before the bucket at `position`.
    fn cumulative_before(&self, position: usize) -> (u64, u64) {
        match position.checked_sub(1).and_then(|p| self.buckets.get(p)) {
            Some(b) => (b.cumulative_total, b.cumulative_bad),
            None => (self.dropped_total, self.dropped_bad),
        }
    }

    /// Running totals through bucket `index` inclusive.
    fn cumulative_through(&self, index: u64) -> (u64, u64) {
        self.cumulative_before(self.buckets.partition_point(|b| b.index <= index))
    }

    /// Drops the buckets no window ending at `now_ms` or later can reach.
    pub(crate) fn prune(&mut self, now_ms: u64) {
        let oldest_kept = (now_ms / self.width_ms).saturating_sub(self.retain_buckets);
        while let Some(first) = self.buckets.front().copied() {
            if first.index >= oldest_kept {
                break;
            }
            self.dropped_total = first.cumulative_total;
            self.dropped_bad = first.cumulative_bad;
            self.buckets.pop_front();
        }
    }

    /// `(total, bad)` in the window of `window_ms` ending at `now_ms`, at bucket resolution: the
    /// buckets after the one holding `now_ms - window_ms`, up to and including the one holding
    /// `now_ms`. A window reaching past what is retained counts only what is retained.
    pub(crate) fn window_counts(&self, window_ms: u64, now_ms: u64) -> (u64, u64) {
        let (end_total, end_bad) = self.cumulative_through(now_ms / self.width_ms);
        let (start_total, start_bad) = match now_ms.checked_sub(window_ms) {
            Some(start_ms) => self.cumulative_through(start_ms / self.width_ms),
            None => (self.dropped_total, self.dropped_bad),
        };
        (end_total - start_total, end_bad - start_bad)
    }

    /// How many buckets are held in memory.
    #[cfg(test)]
    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_sum_the_buckets_inside_the_window() {
        let mut series = SeriesBuckets::new(10, 1_000);
        for at in (0..200).step_by(5) {
            series.record(at, 2, u64::from(at >= 100));
        }
        // Everything up to 199.
        assert_eq!(series.window_counts(1_000, 199), (80, 20));
        // Buckets 10..=19 hold at 100..=195: 20 samples, all bad.
        assert_eq!(series.window_counts(100, 199), (40, 20));
        // Buckets 15..=19: at 150..=195.
        assert_eq!(series.window_counts(50, 195), (20, 10));
        // The future is not counted.
        assert_eq!(series.window_counts(100, 99), (40, 0));
    }

    #[test]
    fn late_samples_land_in_their_own_bucket() {
        let mut series = SeriesBuckets::new(10, 1_000);
        series.record(50, 1, 0);
        series.record(10, 1, 1);
        series.record(30, 1, 1);
        series.record(30, 1, 0);
        series.record(70, 1, 0);
        assert_eq!(series.window_counts(1_000, 70), (5, 2));
        // Bucket 3 alone, then buckets 4 and 5.
        assert_eq!(series.window_counts(10, 39), (2, 1));
        assert_eq!(series.window_counts(20, 59), (1, 0));
        assert_eq!(series.window_counts(10, 19), (1, 1));
    }

    #[test]
    fn old_buckets_are_dropped_but_recent_windows_stay_exact() {
        let mut series = SeriesBuckets::new(10, 100);
        for at in 0..10_000 {
            series.record(at, 1, u64::from(at.is_multiple_of(2)));
        }
        // 100 ms of window plus one bucket of margin plus the bucket in progress.
        assert!(
            series.bucket_count() <= 12,
            "{} buckets kept",
            series.bucket_count()
        );
        assert_eq!(series.window_counts(100, 9_999), (100, 50));
        series.prune(20_000);
        assert_eq!(series.bucket_count(), 0);
        assert_eq!(series.window_counts(100, 20_000), (0, 0));
    }
}
