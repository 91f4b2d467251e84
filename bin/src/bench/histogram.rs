//! [`LatencyHistogram`]: an HDR-style log-bucket histogram of latencies.
//!
//! Values below 128 are counted exactly; above, each power of two is split into 128 equal
//! buckets, so a reported percentile is within 1/128 (< 0.8%) of the true value, over the
//! whole `u64` range, in a fixed 58 KiB of counters. Recording is an index computation and an
//! increment, cheap enough for the load generator's hot loop.

/// log2 of the number of buckets per power of two.
const SUB_BUCKET_BITS: u32 = 7;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Exact buckets 0..128, then 128 buckets for each power of two from 2^7 to 2^63.
const BUCKETS: usize = (SUB_BUCKETS + (64 - SUB_BUCKET_BITS as u64) * SUB_BUCKETS) as usize;

/// Counts of recorded values (latencies in nanoseconds, for the load generator).
#[derive(Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    /// Adds every value `other` counted.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded (exact), 0 when empty.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the recorded values (exact), 0 when empty.
    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            u64::try_from(self.sum / u128::from(self.count)).unwrap_or(u64::MAX)
        }
    }

    /// The value at `quantile` (0.5 for the median, 0.999 for p99.9): the highest value of the
    /// bucket holding that rank, never above the exact maximum. 0 when empty.
    pub fn value_at_quantile(&self, quantile: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_highest(index).min(self.max);
            }
        }
        self.max
    }
}

fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // >= SUB_BUCKET_BITS
    let shift = exponent - SUB_BUCKET_BITS;
    let sub = (value >> shift) - SUB_BUCKETS;
    (SUB_BUCKETS + u64::from(shift) * SUB_BUCKETS + sub) as usize
}

fn bucket_highest(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let shift = (index - SUB_BUCKETS) / SUB_BUCKETS;
    let sub = (index - SUB_BUCKETS) % SUB_BUCKETS;
    let lowest = (SUB_BUCKETS + sub) << shift;
    lowest + ((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        let mut h = LatencyHistogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.value_at_quantile(0.5), 50);
        assert_eq!(h.value_at_quantile(0.99), 99);
        assert_eq!(h.value_at_quantile(1.0), 100);
        assert_eq!(h.mean(), 50);
    }

    #[test]
    fn large_values_are_within_one_percent() {
        let mut h = LatencyHistogram::new();
        // 1 µs .. 1 s in nanoseconds, spread geometrically.
        let values: Vec<u64> = (0..10_000)
            .map(|i| (1000.0 * 1.0014f64.powi(i)) as u64)
            .collect();
        for v in &values {
            h.record(*v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = values[((q * values.len() as f64).ceil() as usize) - 1];
            let got = h.value_at_quantile(q);
            let error = (got as f64 - exact as f64).abs() / exact as f64;
            assert!(error < 0.01, "q {q}: got {got}, exact {exact}");
        }
        assert_eq!(h.max(), *values.last().unwrap());
    }

    #[test]
    fn every_bucket_holds_its_own_values() {
        for v in [
            0,
            1,
            127,
            128,
            129,
            255,
            256,
            1 << 20,
            (1 << 20) + 12345,
            u64::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(bucket_highest(b) >= v, "{v}");
            if b > 0 {
                assert!(bucket_highest(b - 1) < v, "{v}");
            }
        }
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(10);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.value_at_quantile(0.5), 10);
        assert_eq!(LatencyHistogram::new().value_at_quantile(0.5), 0);
    }
}
