//! Partition token buckets with burst credit, and the node-level bucket that gates bursting.

use super::{AdmissionLimits, Kind, TokenBucket};

/// What one partition is allocated per second (see [`AdmissionLimits::partition_share`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionShare {
    /// Read units per second.
    pub read_units: f64,
    /// Write units per second.
    pub write_units: f64,
    /// True under GAC: past its share and burst credit, the partition may still use the node's
    /// spare capacity (up to its ceiling), because GAC bounds the table's total.
    pub adaptive: bool,
}

impl PartitionShare {
    fn units(&self, kind: Kind) -> f64 {
        kind.pick(self.read_units, self.write_units)
    }
}

/// Why a request was admitted by a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Within the partition's allocated rate.
    Allocated,
    /// On burst credit (unused capacity of the last 300 s), the node having spare capacity.
    Burst,
    /// Past share and credit, on the node's spare capacity (GAC bounds the table).
    Adaptive,
}

/// Why a request was throttled by a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    /// The partition is at its ceiling (3,000 RCU or 1,000 WCU per second).
    Ceiling,
    /// Its share and burst credit are spent, or the node has no spare capacity to burst on.
    Exhausted,
}

/// The node's own capacity: every admitted unit is charged to it, and a partition may burst
/// only while it has some left ("spare").
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCapacity {
    read: TokenBucket,
    write: TokenBucket,
}

impl NodeCapacity {
    /// A node with `limits`' capacity, full.
    #[must_use]
    pub fn new(limits: &AdmissionLimits, now_ms: u64) -> Self {
        let bucket = |kind| {
            let rate = limits.node_units(kind);
            TokenBucket::full(rate, rate, now_ms)
        };
        NodeCapacity {
            read: bucket(Kind::Read),
            write: bucket(Kind::Write),
        }
    }

    fn bucket(&mut self, kind: Kind) -> &mut TokenBucket {
        kind.pick(&mut self.read, &mut self.write)
    }

    /// True while the node has capacity to spare for `kind`.
    pub fn spare(&mut self, kind: Kind, now_ms: u64) -> bool {
        self.bucket(kind).balance(now_ms) > 0.0
    }

    /// Charges `units` the node spent.
    pub fn charge(&mut self, kind: Kind, units: f64, now_ms: u64) {
        let bucket = self.bucket(kind);
        bucket.refill(now_ms);
        bucket.take(units);
    }

    /// The node's balance for `kind` (negative: busier than its capacity).
    pub fn balance(&mut self, kind: Kind, now_ms: u64) -> f64 {
        self.bucket(kind).balance(now_ms)
    }
}

/// One kind's buckets of one partition.
#[derive(Clone, Debug, PartialEq)]
struct KindBuckets {
    /// The hard per-partition ceiling, one second deep.
    ceiling: TokenBucket,
    /// The allocated share, one second deep; what overflows it becomes burst credit.
    allocated: TokenBucket,
    /// Burst credit: unused allocated capacity, up to `burst_seconds` of it.
    burst: f64,
    burst_cap: f64,
    consumed: f64,
    throttled: u64,
}

impl KindBuckets {
    fn new(share: f64, ceiling: f64, burst_seconds: f64, now_ms: u64) -> Self {
        KindBuckets {
            ceiling: TokenBucket::full(ceiling, ceiling, now_ms),
            allocated: TokenBucket::full(share, share, now_ms),
            // Credit is earned by leaving capacity unused, never granted up front.
            burst: 0.0,
            burst_cap: share * burst_seconds,
            consumed: 0.0,
            throttled: 0,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        self.ceiling.refill(now_ms);
        let unused = self.allocated.refill(now_ms);
        self.burst = (self.burst + unused).min(self.burst_cap);
    }
}

/// Counters and balances of one kind of one partition, for metrics and `ddbctl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartitionKindStats {
    /// The allocated rate (units/s).
    pub allocated_units: f64,
    /// The ceiling (units/s).
    pub ceiling_units: f64,
    /// Units consumed since the node started.
    pub consumed_units: f64,
    /// Requests throttled since the node started.
    pub throttled: u64,
    /// Burst credit left (units).
    pub burst_balance: f64,
}

/// A partition's admission state on the replica that serves its requests.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionAdmission {
    share: PartitionShare,
    read: KindBuckets,
    write: KindBuckets,
}

impl PartitionAdmission {
    /// A partition allocated `share`, with `limits`' ceilings and burst window.
    #[must_use]
    pub fn new(share: PartitionShare, limits: &AdmissionLimits, now_ms: u64) -> Self {
        let buckets = |kind| {
            KindBuckets::new(
                share.units(kind),
                limits.partition_ceiling(kind),
                limits.burst_seconds as f64,
                now_ms,
            )
        };
        PartitionAdmission {
            share,
            read: buckets(Kind::Read),
            write: buckets(Kind::Write),
        }
    }

    /// Follows a change of the table's rate (UpdateTable) or of the mode; keeps balances.
    pub fn reshape(&mut self, share: PartitionShare, limits: &AdmissionLimits, now_ms: u64) {
        if share == self.share {
            return;
        }
        self.share = share;
        for kind in [Kind::Read, Kind::Write] {
            let units = share.units(kind);
            let buckets = self.buckets(kind);
            buckets.refill(now_ms);
            buckets.allocated.reshape(units, units);
            buckets.burst_cap = units * limits.burst_seconds as f64;
            buckets.burst = buckets.burst.min(buckets.burst_cap);
        }
    }

    fn buckets(&mut self, kind: Kind) -> &mut KindBuckets {
        kind.pick(&mut self.read, &mut self.write)
    }

    /// Decides whether a request of `kind` may run now. What it consumes is charged
    /// afterwards with [`PartitionAdmission::charge`] (a read's size is known only then).
    pub fn admit(
        &mut self,
        kind: Kind,
        node: &mut NodeCapacity,
        now_ms: u64,
    ) -> Result<Admitted, Throttled> {
        let adaptive = self.share.adaptive;
        let buckets = self.buckets(kind);
        buckets.refill(now_ms);
        let verdict = if buckets.ceiling.last_balance() <= 0.0 {
            Err(Throttled::Ceiling)
        } else if buckets.allocated.last_balance() > 0.0 {
            Ok(Admitted::Allocated)
        } else if buckets.burst > 0.0 && node.spare(kind, now_ms) {
            Ok(Admitted::Burst)
        } else if adaptive && node.spare(kind, now_ms) {
            Ok(Admitted::Adaptive)
        } else {
            Err(Throttled::Exhausted)
        };
        if verdict.is_err() {
            buckets.throttled += 1;
        }
        verdict
    }

    /// Charges `units` a request of `kind` consumed, admitted as `how`: to the ceiling and the
    /// node, and to the allocated share — a request admitted on burst credit takes what the
    /// share has left and the rest from the credit; anything more is a debt on the share.
    pub fn charge(
        &mut self,
        kind: Kind,
        how: Admitted,
        units: f64,
        node: &mut NodeCapacity,
        now_ms: u64,
    ) {
        let buckets = self.buckets(kind);
        buckets.refill(now_ms);
        buckets.consumed += units;
        buckets.ceiling.take(units);
        let mut rest = units;
        if how == Admitted::Burst {
            rest -= buckets.allocated.take_available(rest);
            let from_burst = rest.min(buckets.burst);
            buckets.burst -= from_burst;
            rest -= from_burst;
        }
        buckets.allocated.take(rest);
        node.charge(kind, units, now_ms);
    }

    /// Where the partition stands for `kind`.
    pub fn stats(&mut self, kind: Kind, now_ms: u64) -> PartitionKindStats {
        let buckets = self.buckets(kind);
        buckets.refill(now_ms);
        PartitionKindStats {
            allocated_units: buckets.allocated.rate(),
            ceiling_units: buckets.ceiling.rate(),
            consumed_units: buckets.consumed,
            throttled: buckets.throttled,
            burst_balance: buckets.burst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AdmissionLimits {
        AdmissionLimits {
            partition_write_units: 100,
            node_write_units: 1000,
            ..AdmissionLimits::default()
        }
    }

    fn share(write_units: f64, adaptive: bool) -> PartitionShare {
        PartitionShare {
            read_units: 10.0,
            write_units,
            adaptive,
        }
    }

    /// Offers `per_tick` one-unit writes every 10 ms for `ms`; returns (admitted, throttled).
    fn offer(
        partition: &mut PartitionAdmission,
        node: &mut NodeCapacity,
        from_ms: u64,
        ms: u64,
        per_tick: u32,
    ) -> (u32, u32) {
        let (mut admitted, mut throttled) = (0, 0);
        for now in (from_ms..from_ms + ms).step_by(10) {
            for _ in 0..per_tick {
                match partition.admit(Kind::Write, node, now) {
                    Ok(how) => {
                        partition.charge(Kind::Write, how, 1.0, node, now);
                        admitted += 1;
                    }
                    Err(_) => throttled += 1,
                }
            }
        }
        (admitted, throttled)
    }

    #[test]
    fn traffic_within_the_share_is_never_throttled() {
        let limits = limits();
        let mut node = NodeCapacity::new(&limits, 0);
        let mut partition = PartitionAdmission::new(share(50.0, false), &limits, 0);
        // Exactly the share, 50 units/s (one every 20 ms), for a minute.
        let mut throttled = 0;
        for now in (0..60_000).step_by(20) {
            match partition.admit(Kind::Write, &mut node, now) {
                Ok(how) => partition.charge(Kind::Write, how, 1.0, &mut node, now),
                Err(_) => throttled += 1,
            }
        }
        assert_eq!(throttled, 0);
    }

    #[test]
    fn a_short_spike_is_absorbed_by_credit_left_unused() {
        let limits = limits();
        let mut node = NodeCapacity::new(&limits, 0);
        let mut partition = PartitionAdmission::new(share(50.0, false), &limits, 0);
        // Idle for 10 s with its share's bucket full: 500 units of credit (10 s × 50/s).
        let stats = partition.stats(Kind::Write, 10_000);
        assert!((stats.burst_balance - 500.0).abs() < 1.0, "{stats:?}");
        // A spike of 100 units/s for 5 s (500 units, 250 over the share) is admitted whole.
        let (admitted, throttled) = offer(&mut partition, &mut node, 10_000, 5000, 1);
        assert_eq!(throttled, 0);
        assert_eq!(admitted, 500);
        // The same spike sustained runs out of credit and is throttled to the share.
        let (_, throttled) = offer(&mut partition, &mut node, 15_000, 20_000, 1);
        assert!(throttled > 0);
        assert!(partition.stats(Kind::Write, 35_000).burst_balance < 1.0);
        let (admitted, _) = offer(&mut partition, &mut node, 35_000, 20_000, 1);
        let rate = f64::from(admitted) / 20.0;
        assert!((rate - 50.0).abs() < 3.0, "sustained rate {rate}");
    }

    #[test]
    fn no_bursting_while_the_node_has_no_spare_capacity() {
        let limits = limits();
        let mut node = NodeCapacity::new(&limits, 0);
        let mut partition = PartitionAdmission::new(share(50.0, false), &limits, 0);
        assert!(partition.stats(Kind::Write, 10_000).burst_balance >= 499.0);
        // Another tenant keeps the node past its capacity (2,000 units/s of 1,000) while this
        // partition asks for twice its share: only the share gets through, credit unspent.
        let (mut admitted, mut throttled) = (0u32, 0u32);
        for now in (10_000..15_000).step_by(10) {
            node.charge(Kind::Write, 20.0, now);
            match partition.admit(Kind::Write, &mut node, now) {
                Ok(how) => {
                    assert_eq!(how, Admitted::Allocated);
                    partition.charge(Kind::Write, how, 1.0, &mut node, now);
                    admitted += 1;
                }
                Err(_) => throttled += 1,
            }
        }
        assert!(
            throttled > 0,
            "bursting went on while the node was saturated"
        );
        assert!(
            f64::from(admitted) / 5.0 <= 50.0 + 10.0 + 1.0,
            "{admitted} admitted"
        );
        assert!(partition.stats(Kind::Write, 15_000).burst_balance >= 499.0);
    }

    #[test]
    fn the_ceiling_holds_whatever_the_share_or_credit() {
        let limits = limits();
        let mut node = NodeCapacity::new(&limits, 0);
        let mut partition = PartitionAdmission::new(share(100.0, true), &limits, 0);
        partition.stats(Kind::Write, 300_000);
        // 300 units/s offered for 10 s, with credit and node capacity to spare.
        let (admitted, throttled) = offer(&mut partition, &mut node, 300_000, 10_000, 3);
        assert!(throttled > 0);
        let rate = f64::from(admitted) / 10.0;
        assert!(
            rate <= 100.0 + 10.0 + 1.0,
            "rate {rate} past the 100/s ceiling"
        );
    }

    #[test]
    fn under_gac_a_hot_partition_uses_spare_node_capacity_past_its_share() {
        let limits = limits();
        let mut adaptive = PartitionAdmission::new(share(25.0, true), &limits, 0);
        let mut fixed = PartitionAdmission::new(share(25.0, false), &limits, 0);
        let mut node = NodeCapacity::new(&limits, 0);
        let (_, throttled) = offer(&mut adaptive, &mut node, 0, 10_000, 1);
        assert_eq!(
            throttled, 0,
            "GAC mode throttled below the ceiling on an idle node"
        );
        let mut node = NodeCapacity::new(&limits, 0);
        let (_, throttled) = offer(&mut fixed, &mut node, 0, 10_000, 1);
        assert!(throttled > 0, "static mode let a partition past its share");
    }

    #[test]
    fn reshaping_follows_a_new_rate() {
        let limits = limits();
        let mut node = NodeCapacity::new(&limits, 0);
        let mut partition = PartitionAdmission::new(share(10.0, false), &limits, 0);
        partition.reshape(share(80.0, false), &limits, 0);
        let (admitted, throttled) = offer(&mut partition, &mut node, 0, 10_000, 1);
        assert!(f64::from(admitted) / 10.0 >= 79.0, "{admitted} admitted");
        assert!(throttled > 0);
        assert_eq!(partition.stats(Kind::Write, 10_000).allocated_units, 80.0);
    }
}
