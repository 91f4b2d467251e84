//! Key heat: where in a partition's hash range its traffic goes, and where a split for
//! consumption would cut it.
//!
//! A partition that stays at its ceiling can only be helped by moving part of its traffic to
//! another partition. Cutting its hash range in the middle helps only if traffic is spread
//! evenly; under a skewed workload the cut must follow the traffic. [`KeyHeat`] records the
//! capacity units each request consumed against its partition-key hash — a histogram over the
//! partition's range plus the heaviest individual keys (a space-saving sketch) — over the last
//! one to two windows, and [`KeyHeat::plan`] answers the boundary that splits the observed
//! units most evenly, or why no boundary can: one partition key (one item, or one item
//! collection written at its newest sort key) carrying most of the traffic stays on one side of
//! every cut, since ddb partitions by the partition key's hash.
//!
//! Plain synchronous code; time is a parameter.

use serde::Serialize;

/// Histogram buckets over a partition's hash range.
const BUCKETS: usize = 256;
/// Heaviest keys tracked individually.
const HEAVY_KEYS: usize = 16;
/// Fewest units observed before a plan is offered.
const MIN_PLAN_UNITS: f64 = 100.0;
/// A split helps when its busier side carries at most this share of the partition's traffic.
const HELPFUL_SIDE_SHARE: f64 = 0.8;

/// Units per partition-key hash over a partition's range, over the current and previous window.
#[derive(Clone, Debug)]
pub struct KeyHeat {
    start: u64,
    end: u64,
    window_ms: u64,
    current_since_ms: u64,
    current: HeatWindow,
    previous: HeatWindow,
}

#[derive(Clone, Debug)]
struct HeatWindow {
    buckets: Vec<f64>,
    total: f64,
    /// `(hash, units, overcount)`: a space-saving sketch. Any key with more than
    /// `total / HEAVY_KEYS` units is present; its units are overcounted by at most `overcount`.
    heavy: Vec<(u64, f64, f64)>,
}

impl HeatWindow {
    fn new() -> Self {
        HeatWindow {
            buckets: vec![0.0; BUCKETS],
            total: 0.0,
            heavy: Vec::with_capacity(HEAVY_KEYS),
        }
    }

    fn record(&mut self, bucket: usize, hash: u64, units: f64) {
        self.buckets[bucket] += units;
        self.total += units;
        if let Some(entry) = self.heavy.iter_mut().find(|entry| entry.0 == hash) {
            entry.1 += units;
        } else if self.heavy.len() < HEAVY_KEYS {
            self.heavy.push((hash, units, 0.0));
        } else if let Some(lightest) = self.heavy.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1)) {
            *lightest = (hash, lightest.1 + units, lightest.1);
        }
    }
}

/// What a split of a partition at the observed traffic would do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum SplitPlan {
    /// Too little traffic observed to choose a boundary.
    TooLittleTraffic {
        /// Units observed over the last one to two windows.
        units: f64,
    },
    /// Cut at `boundary`: the lower child owns `start..boundary`, the upper `boundary..=end`.
    Split {
        /// First hash of the upper child.
        boundary: u64,
        /// Share of the observed units below the boundary.
        lower_share: f64,
        /// Share of the observed units at or above it.
        upper_share: f64,
        /// The busier side's share had the range been cut in its middle, for comparison.
        middle_busier_share: f64,
        /// Units observed.
        units: f64,
    },
    /// One partition key carries so much of the traffic that every cut leaves it, and so
    /// most of the load, on one side: splitting cannot help.
    OneHotKey {
        /// The key's partition-key hash.
        hash: u64,
        /// Its share of the observed units (a lower bound).
        share: f64,
        /// The busier side's share at the best cut.
        busier_share: f64,
        /// Units observed.
        units: f64,
    },
}

impl KeyHeat {
    /// Heat of the partition owning hashes `start..=end`, in windows of `window_ms`.
    #[must_use]
    pub fn new(start: u64, end: u64, window_ms: u64, now_ms: u64) -> Self {
        KeyHeat {
            start,
            end: end.max(start),
            window_ms: window_ms.max(1),
            current_since_ms: now_ms,
            current: HeatWindow::new(),
            previous: HeatWindow::new(),
        }
    }

    /// Records `units` consumed by a request for the partition key hashing to `hash`.
    pub fn record(&mut self, hash: u64, units: f64, now_ms: u64) {
        self.rotate(now_ms);
        if units.is_nan() || units <= 0.0 || hash < self.start || hash > self.end {
            return;
        }
        let bucket = self.bucket_of(hash);
        self.current.record(bucket, hash, units);
    }

    /// The boundary that splits the observed units most evenly, or why none helps.
    #[must_use]
    pub fn plan(&mut self, now_ms: u64) -> SplitPlan {
        self.rotate(now_ms);
        let total = self.current.total + self.previous.total;
        if total < MIN_PLAN_UNITS || self.start == self.end {
            return SplitPlan::TooLittleTraffic { units: total };
        }
        let pieces = self.pieces();
        let (boundary, lower) = even_cut(&pieces, total, self.start, self.end);
        let busier_share = lower.max(total - lower) / total;
        let middle = self.start + (self.end - self.start) / 2 + 1;
        let middle_lower = mass_below(&pieces, middle);
        let middle_busier_share = middle_lower.max(total - middle_lower) / total;
        let hottest = pieces
            .iter()
            .filter(|piece| piece.lo == piece.hi)
            .max_by(|a, b| a.mass.total_cmp(&b.mass));
        if busier_share > HELPFUL_SIDE_SHARE
            && let Some(hot) = hottest
        {
            return SplitPlan::OneHotKey {
                hash: hot.lo,
                share: hot.mass / total,
                busier_share,
                units: total,
            };
        }
        SplitPlan::Split {
            boundary,
            lower_share: lower / total,
            upper_share: (total - lower) / total,
            middle_busier_share,
            units: total,
        }
    }

    fn rotate(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.current_since_ms);
        if elapsed < self.window_ms {
            return;
        }
        self.previous = if elapsed < 2 * self.window_ms {
            std::mem::replace(&mut self.current, HeatWindow::new())
        } else {
            self.current = HeatWindow::new();
            HeatWindow::new()
        };
        self.current_since_ms = now_ms;
    }

    fn bucket_of(&self, hash: u64) -> usize {
        let span = u128::from(self.end - self.start) + 1;
        let offset = u128::from(hash - self.start);
        usize::try_from(offset * BUCKETS as u128 / span).unwrap_or(BUCKETS - 1)
    }

    /// First hash of bucket `index` (`end + 1` for `BUCKETS`).
    fn bucket_start(&self, index: usize) -> u128 {
        let span = u128::from(self.end - self.start) + 1;
        u128::from(self.start) + (index as u128 * span).div_ceil(BUCKETS as u128)
    }

    /// The observed units as pieces in hash order: each heavy key as a point, the rest of each
    /// bucket spread evenly over it.
    fn pieces(&self) -> Vec<Piece> {
        let mut heavy: Vec<(u64, f64)> = Vec::new();
        for window in [&self.current, &self.previous] {
            for (hash, units, overcount) in &window.heavy {
                // The guaranteed part only; the overcount stays in the bucket's spread.
                let sure = units - overcount;
                match heavy.iter_mut().find(|entry| entry.0 == *hash) {
                    Some(entry) => entry.1 += sure,
                    None => heavy.push((*hash, sure)),
                }
            }
        }
        heavy.retain(|entry| entry.1 > 0.0);
        heavy.sort_by_key(|entry| entry.0);
        let mut pieces = Vec::new();
        let mut next_heavy = heavy.iter().peekable();
        for index in 0..BUCKETS {
            let mut spread = self.current.buckets[index] + self.previous.buckets[index];
            let lo = self.bucket_start(index);
            let hi = self.bucket_start(index + 1);
            if lo >= hi {
                continue;
            }
            while let Some((hash, units)) = next_heavy.peek()
                && u128::from(*hash) < hi
            {
                spread -= units;
                pieces.push(Piece {
                    lo: *hash,
                    hi: *hash,
                    mass: *units,
                });
                next_heavy.next();
            }
            if spread > 1e-9 {
                pieces.push(Piece {
                    lo: u64::try_from(lo).unwrap_or(u64::MAX),
                    hi: u64::try_from(hi - 1).unwrap_or(u64::MAX),
                    mass: spread,
                });
            }
        }
        pieces
    }
}

/// Observed units over `lo..=hi`: a single key when `lo == hi`, else spread evenly.
#[derive(Clone, Copy, Debug)]
struct Piece {
    lo: u64,
    hi: u64,
    mass: f64,
}

/// Units on hashes below `boundary`.
fn mass_below(pieces: &[Piece], boundary: u64) -> f64 {
    pieces
        .iter()
        .map(|piece| {
            if piece.hi < boundary {
                piece.mass
            } else if piece.lo >= boundary {
                0.0
            } else {
                let width = (piece.hi - piece.lo) as f64 + 1.0;
                piece.mass * (boundary - piece.lo) as f64 / width
            }
        })
        .sum()
}

/// The boundary in `start+1..=end` whose lower side holds closest to half of `total`, and the
/// units below it.
fn even_cut(pieces: &[Piece], total: f64, start: u64, end: u64) -> (u64, f64) {
    let half = total / 2.0;
    let mut below = 0.0;
    let mut best = (start + (end - start) / 2 + 1, f64::INFINITY, 0.0);
    let mut consider = |boundary: u64, lower: f64| {
        let boundary = boundary.clamp(start + 1, end);
        let imbalance = (lower - half).abs();
        if imbalance < best.1 {
            best = (boundary, imbalance, lower);
        }
    };
    for piece in pieces {
        if piece.lo == piece.hi {
            // A single key: cut just before it or just after it.
            consider(piece.lo, below);
            consider(piece.lo.saturating_add(1), below + piece.mass);
        } else if below < half && below + piece.mass >= half {
            let width = (piece.hi - piece.lo) as f64 + 1.0;
            let into = ((half - below) / piece.mass * width).round();
            // `into` is within 0..=width, which fits the piece's own range.
            let boundary = piece.lo.saturating_add(into as u64);
            consider(
                boundary,
                mass_below(std::slice::from_ref(piece), boundary) + below,
            );
        }
        below += piece.mass;
    }
    (best.0, best.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 30_000;

    fn share_of(plan: &SplitPlan) -> (u64, f64, f64) {
        match plan {
            SplitPlan::Split {
                boundary,
                lower_share,
                middle_busier_share,
                ..
            } => (*boundary, *lower_share, *middle_busier_share),
            other => panic!("expected a split, got {other:?}"),
        }
    }

    #[test]
    fn uniform_traffic_is_cut_near_the_middle() {
        let mut heat = KeyHeat::new(0, u64::MAX, WINDOW, 0);
        for i in 0..20_000u64 {
            heat.record(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1.0, 10);
        }
        let (boundary, lower, _) = share_of(&heat.plan(20));
        assert!((lower - 0.5).abs() < 0.02, "lower share {lower}");
        let middle = u64::MAX / 2;
        assert!(
            boundary.abs_diff(middle) < u64::MAX / 50,
            "boundary {boundary:x}"
        );
    }

    #[test]
    fn skewed_traffic_is_cut_where_the_traffic_is_not_in_the_middle() {
        // Three quarters of the traffic on the lowest eighth of the range.
        let mut heat = KeyHeat::new(0, u64::MAX, WINDOW, 0);
        let eighth = u64::MAX / 8;
        for i in 0..30_000u64 {
            let spread = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let hash = if i % 4 == 3 { spread } else { spread % eighth };
            heat.record(hash, 1.0, 10);
        }
        let (boundary, lower, middle_busier) = share_of(&heat.plan(20));
        assert!((lower - 0.5).abs() < 0.03, "lower share {lower}");
        assert!(
            boundary < eighth,
            "boundary {boundary:x} should fall in the hot eighth"
        );
        assert!(
            middle_busier > 0.75,
            "a middle cut leaves {middle_busier} on one side"
        );
    }

    #[test]
    fn one_hot_key_cannot_be_split_away() {
        let mut heat = KeyHeat::new(1000, 1_000_000, WINDOW, 0);
        for i in 0..10_000u64 {
            let hash = if i % 10 < 9 {
                4242
            } else {
                1000 + (i * 7919) % 999_000
            };
            heat.record(hash, 1.0, 10);
        }
        match heat.plan(20) {
            SplitPlan::OneHotKey {
                hash,
                share,
                busier_share,
                ..
            } => {
                assert_eq!(hash, 4242);
                assert!(share > 0.85, "share {share}");
                assert!(busier_share > 0.85);
            }
            other => panic!("expected one hot key, got {other:?}"),
        }
    }

    #[test]
    fn a_few_hot_keys_are_separated_by_the_cut() {
        // Two keys with 40% each and a thin spread: the cut goes between them.
        let mut heat = KeyHeat::new(0, u64::MAX, WINDOW, 0);
        let (a, b) = (u64::MAX / 10, u64::MAX / 10 * 3);
        for i in 0..10_000u64 {
            let hash = match i % 10 {
                0..=3 => a,
                4..=7 => b,
                _ => i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            };
            heat.record(hash, 1.0, 10);
        }
        let (boundary, lower, _) = share_of(&heat.plan(20));
        assert!(boundary > a && boundary <= b, "boundary {boundary:x}");
        assert!((lower - 0.5).abs() < 0.1, "lower share {lower}");
    }

    #[test]
    fn heat_is_forgotten_after_two_windows_and_needs_enough_traffic() {
        let mut heat = KeyHeat::new(0, u64::MAX, WINDOW, 0);
        for i in 0..50u64 {
            heat.record(i << 40, 1.0, 10);
        }
        assert!(matches!(
            heat.plan(20),
            SplitPlan::TooLittleTraffic { units } if units == 50.0
        ));
        for i in 0..500u64 {
            heat.record(i << 40, 1.0, 100);
        }
        assert!(matches!(heat.plan(WINDOW + 200), SplitPlan::Split { .. }));
        assert!(matches!(
            heat.plan(3 * WINDOW + 300),
            SplitPlan::TooLittleTraffic { units } if units == 0.0
        ));
    }

    #[test]
    fn sequential_partition_keys_hash_apart_and_split_evenly() {
        // Sequential partition keys (order ids, timestamps) land all over the hash range, so the
        // cut divides them as it would any spread. Sequential *sort* keys under one partition
        // key are the one-hot-key case above: they share one hash.
        use crate::item::{AttributeValue, partition_hash};
        let mut heat = KeyHeat::new(0, u64::MAX, WINDOW, 0);
        for order in 0..5000u64 {
            let key = AttributeValue::S(format!("order-{order:08}"));
            heat.record(partition_hash(&key).unwrap(), 1.0, 10);
        }
        let (_, lower, middle_busier) = share_of(&heat.plan(20));
        assert!((lower - 0.5).abs() < 0.02, "lower share {lower}");
        assert!(
            middle_busier < 0.55,
            "a middle cut is about as even: {middle_busier}"
        );
    }

    #[test]
    fn a_narrow_partition_cuts_inside_its_own_range() {
        let mut heat = KeyHeat::new(5000, 5100, WINDOW, 0);
        for i in 0..1000u64 {
            heat.record(5000 + i % 101, 2.0, 10);
        }
        let (boundary, lower, _) = share_of(&heat.plan(20));
        assert!(boundary > 5000 && boundary <= 5100, "boundary {boundary}");
        assert!((lower - 0.5).abs() < 0.1, "lower share {lower}");
        // Hashes outside the partition are not its heat.
        let before = heat.plan(30);
        heat.record(4999, 1000.0, 30);
        heat.record(5101, 1000.0, 30);
        assert_eq!(heat.plan(30), before);
    }
}
