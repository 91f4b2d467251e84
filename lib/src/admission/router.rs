//! A router's local buckets, refilled at the rates global admission control grants.

use std::collections::HashMap;

use super::{Grant, Kind, TokenBucket};

/// Past this many GAC intervals without a grant, a router's rate starts to decay.
const GRACE_INTERVALS: f64 = 2.0;

/// What a router asks GAC for one table and kind.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RouterAsk {
    /// The table.
    pub table_id: u64,
    /// Reads or writes.
    pub kind: Kind,
    /// Units per second its clients tried to use over the last interval, throttled ones
    /// included (what it would use if granted).
    pub demand: f64,
    /// Units it consumed since its last ask.
    pub consumed: f64,
}

#[derive(Clone, Debug, PartialEq)]
struct LocalBucket {
    bucket: TokenBucket,
    /// What GAC granted last, and when.
    granted: Option<(Grant, u64)>,
    /// Units attempted and consumed since the last ask.
    attempted: f64,
    consumed: f64,
    since_ms: u64,
    consumed_total: f64,
    throttled: u64,
}

/// Counters and rates of one table and kind at one router, for metrics and `ddbctl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RouterKindStats {
    /// The rate the router admits at now (units/s).
    pub rate_units: f64,
    /// Whether that rate is a live GAC grant (false: the floor, or a decaying old grant).
    pub granted: bool,
    /// Units consumed through this router since the node started.
    pub consumed_units: f64,
    /// Requests this router throttled since the node started.
    pub throttled: u64,
}

/// A router's local allowance of every table it routes for.
///
/// Before its first grant, and when GAC cannot be reached, a router admits at a floor: the
/// table's rate divided among the routers (the static split, safe whatever the others do).
/// A grant older than two intervals decays by half per interval toward that floor, so a
/// router cut off from GAC keeps working on its last allowance, never stops cold, and never
/// grants itself more than its last grant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouterAllowance {
    buckets: HashMap<(u64, Kind), LocalBucket>,
}

impl RouterAllowance {
    /// An allowance with no tables yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn local(&mut self, table_id: u64, kind: Kind, floor: f64, now_ms: u64) -> &mut LocalBucket {
        self.buckets
            .entry((table_id, kind))
            .or_insert_with(|| LocalBucket {
                bucket: TokenBucket::full(floor, floor, now_ms),
                granted: None,
                attempted: 0.0,
                consumed: 0.0,
                since_ms: now_ms,
                consumed_total: 0.0,
                throttled: 0,
            })
    }

    /// The rate to admit at and the burst credit to hold: the grant, decayed if stale (the
    /// rate never below `floor`).
    fn effective(
        granted: Option<(Grant, u64)>,
        floor: f64,
        interval_ms: u64,
        now_ms: u64,
    ) -> Grant {
        let Some((grant, at_ms)) = granted else {
            return Grant {
                rate: floor,
                burst: 0.0,
            };
        };
        let intervals = now_ms.saturating_sub(at_ms) as f64 / interval_ms.max(1) as f64;
        let missed = (intervals - GRACE_INTERVALS).max(0.0);
        let decay = 0.5f64.powf(missed);
        Grant {
            rate: (grant.rate * decay).max(floor),
            burst: grant.burst * decay,
        }
    }

    /// Whether a request of `kind` on `table_id` may go ahead. `floor` is the table's rate
    /// divided among the routers; `interval_ms` is GAC's refill interval (the bucket holds one
    /// interval of the rate, so a router can spend its grant in bursts within it).
    pub fn admit(
        &mut self,
        table_id: u64,
        kind: Kind,
        floor: f64,
        interval_ms: u64,
        now_ms: u64,
    ) -> bool {
        let local = self.local(table_id, kind, floor, now_ms);
        let grant = Self::effective(local.granted, floor, interval_ms, now_ms);
        local.bucket.refill(now_ms);
        local.bucket.reshape(
            grant.rate,
            grant.rate * interval_ms as f64 / 1000.0 + grant.burst,
        );
        if local.bucket.last_balance() > 0.0 {
            return true;
        }
        // Counted as demand: one unit, the least a request costs.
        local.attempted += 1.0;
        local.throttled += 1;
        false
    }

    /// Charges `units` a request consumed.
    pub fn charge(&mut self, table_id: u64, kind: Kind, floor: f64, units: f64, now_ms: u64) {
        let local = self.local(table_id, kind, floor, now_ms);
        local.bucket.refill(now_ms);
        local.bucket.take(units);
        local.attempted += units;
        local.consumed += units;
        local.consumed_total += units;
    }

    /// What to ask GAC for, one entry per table and kind seen since the last ask (or ever
    /// granted); resets the per-interval counters.
    pub fn asks(&mut self, now_ms: u64) -> Vec<RouterAsk> {
        let mut asks: Vec<RouterAsk> = self
            .buckets
            .iter_mut()
            .map(|((table_id, kind), local)| {
                let seconds = (now_ms.saturating_sub(local.since_ms) as f64 / 1000.0).max(0.001);
                let ask = RouterAsk {
                    table_id: *table_id,
                    kind: *kind,
                    demand: local.attempted / seconds,
                    consumed: local.consumed,
                };
                local.attempted = 0.0;
                local.consumed = 0.0;
                local.since_ms = now_ms;
                ask
            })
            .collect();
        asks.sort_by_key(|ask| (ask.table_id, ask.kind));
        asks
    }

    /// Installs what GAC granted for `table_id` and `kind` (`interval_ms` as for
    /// [`RouterAllowance::admit`]): the bucket refills at the new rate from now on, and may
    /// hold the granted credit.
    pub fn grant(
        &mut self,
        table_id: u64,
        kind: Kind,
        grant: Grant,
        interval_ms: u64,
        now_ms: u64,
    ) {
        if let Some(local) = self.buckets.get_mut(&(table_id, kind)) {
            let clean = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
            let grant = Grant {
                rate: clean(grant.rate),
                burst: clean(grant.burst),
            };
            local.bucket.refill(now_ms);
            local.bucket.reshape(
                grant.rate,
                grant.rate * interval_ms as f64 / 1000.0 + grant.burst,
            );
            local.granted = Some((grant, now_ms));
        }
    }

    /// Forgets tables that no longer exist.
    pub fn retain_tables(&mut self, exists: impl Fn(u64) -> bool) {
        self.buckets.retain(|(table_id, _), _| exists(*table_id));
    }

    /// Where `table_id` stands for `kind` at this router.
    #[must_use]
    pub fn stats(
        &self,
        table_id: u64,
        kind: Kind,
        floor: f64,
        interval_ms: u64,
        now_ms: u64,
    ) -> RouterKindStats {
        let Some(local) = self.buckets.get(&(table_id, kind)) else {
            return RouterKindStats {
                rate_units: floor,
                ..RouterKindStats::default()
            };
        };
        let fresh = local.granted.is_some_and(|(_, at)| {
            (now_ms.saturating_sub(at) as f64) <= GRACE_INTERVALS * interval_ms as f64
        });
        RouterKindStats {
            rate_units: Self::effective(local.granted, floor, interval_ms, now_ms).rate,
            granted: fresh,
            consumed_units: local.consumed_total,
            throttled: local.throttled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offers one-unit requests every `step_ms` for `ms`; returns the admitted count.
    fn offer(router: &mut RouterAllowance, floor: f64, from_ms: u64, ms: u64, step_ms: u64) -> u32 {
        let mut admitted = 0;
        for now in (from_ms..from_ms + ms).step_by(step_ms as usize) {
            if router.admit(1, Kind::Write, floor, 2000, now) {
                router.charge(1, Kind::Write, floor, 1.0, now);
                admitted += 1;
            }
        }
        admitted
    }

    #[test]
    fn before_any_grant_it_admits_at_the_floor() {
        let mut router = RouterAllowance::new();
        let admitted = offer(&mut router, 10.0, 0, 10_000, 1);
        let rate = f64::from(admitted) / 10.0;
        assert!((rate - 10.0).abs() < 3.0, "rate {rate}");
    }

    #[test]
    fn a_grant_raises_the_rate_and_demand_is_reported() {
        let mut router = RouterAllowance::new();
        offer(&mut router, 10.0, 0, 2000, 1);
        let asks = router.asks(2000);
        assert_eq!(asks.len(), 1);
        // It was offered 1000 units/s and admitted about 10/s: demand says so.
        assert!(asks[0].demand > 500.0, "{asks:?}");
        assert!(
            asks[0].consumed > 10.0 && asks[0].consumed < 40.0,
            "{asks:?}"
        );
        router.grant(
            1,
            Kind::Write,
            Grant {
                rate: 100.0,
                burst: 0.0,
            },
            2000,
            2000,
        );
        let admitted = offer(&mut router, 10.0, 2000, 2000, 1);
        let rate = f64::from(admitted) / 2.0;
        assert!((rate - 100.0).abs() < 30.0, "rate {rate}");
    }

    #[test]
    fn cut_off_from_gac_it_decays_toward_the_floor_but_never_stops() {
        let mut router = RouterAllowance::new();
        offer(&mut router, 10.0, 0, 100, 1);
        router.grant(
            1,
            Kind::Write,
            Grant {
                rate: 160.0,
                burst: 0.0,
            },
            2000,
            0,
        );
        let stats = |router: &RouterAllowance, now| router.stats(1, Kind::Write, 10.0, 2000, now);
        assert_eq!(stats(&router, 4000).rate_units, 160.0);
        assert!(stats(&router, 4000).granted);
        assert_eq!(stats(&router, 6000).rate_units, 80.0);
        assert!(!stats(&router, 6000).granted);
        assert_eq!(stats(&router, 8000).rate_units, 40.0);
        assert_eq!(stats(&router, 60_000).rate_units, 10.0);
        // Still admitting at the floor a minute later.
        let admitted = offer(&mut router, 10.0, 60_000, 10_000, 1);
        assert!(admitted >= 80, "{admitted}");
    }

    #[test]
    fn granted_credit_absorbs_a_spike_at_once() {
        let mut router = RouterAllowance::new();
        offer(&mut router, 10.0, 0, 100, 100);
        // Idle, granted every interval, long enough for the bucket to fill: 20 units of rate
        // plus 200 of credit.
        for now in (100..=30_000).step_by(2000) {
            router.grant(
                1,
                Kind::Write,
                Grant {
                    rate: 10.0,
                    burst: 200.0,
                },
                2000,
                now,
            );
        }
        // A spike of 1,000 units/s for 0.2 s (200 units) passes whole.
        let admitted = offer(&mut router, 10.0, 30_000, 200, 1);
        assert!(admitted >= 200, "{admitted}");
    }

    #[test]
    fn grants_for_tables_never_asked_about_are_ignored() {
        let mut router = RouterAllowance::new();
        router.grant(
            7,
            Kind::Read,
            Grant {
                rate: 1e9,
                burst: 0.0,
            },
            2000,
            0,
        );
        assert!(router.asks(0).is_empty());
        assert_eq!(router.stats(7, Kind::Read, 3.0, 2000, 0).rate_units, 3.0);
    }
}
