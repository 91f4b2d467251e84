//! Global admission control: shares each table's rate among the routers.

use std::collections::HashMap;

use super::{AdmissionLimits, Kind, RouterAsk};

/// A router that has not asked for this many intervals no longer counts toward demand.
const ROUTER_EXPIRY_INTERVALS: u64 = 3;

/// An on-demand table's previous peak is remembered this long (DynamoDB: 30 minutes).
const PEAK_MEMORY_MS: u64 = 30 * 60 * 1000;

/// An on-demand table's served rate is averaged over this many GAC intervals before it counts
/// as a peak: traffic must hold a rate for a while before the allowance doubles past it.
const PEAK_WINDOW_INTERVALS: u64 = 10;

/// What GAC grants a router for one table and kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// Units per second the router may admit.
    pub rate: f64,
    /// Burst credit the router may hold beyond one interval of `rate`: its part of the table's
    /// unused capacity, so a spike is absorbed at once rather than after the next grant.
    pub burst: f64,
}

/// One router's ask for one table, with the table's provisioned rate as the catalog has it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GacAsk {
    /// The router's ask.
    pub ask: RouterAsk,
    /// The table's provisioned rate for the ask's kind; `None` for an on-demand table.
    pub provisioned: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
struct TableAllowance {
    /// Unused capacity: the rate accrued over time less what routers consumed, kept between a
    /// small debt and `burst_seconds` of the rate.
    pool: f64,
    at_ms: u64,
    /// Each router's last demand (units/s) and when it asked.
    routers: HashMap<u32, (f64, u64)>,
    /// Units consumed, as routers reported them, over the last peak window: `(when, units)`.
    served: std::collections::VecDeque<(u64, f64)>,
    /// An on-demand table's peak served rate (averaged over the window) and when it was seen.
    peak: (f64, u64),
    consumed_total: f64,
    rate: f64,
}

/// Where a table stands at GAC, for metrics and `ddbctl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GacTableStats {
    /// The table's rate (provisioned, or an on-demand table's current allowance), units/s.
    pub rate_units: f64,
    /// Burst credit: unused capacity of the last `burst_seconds`, in units.
    pub burst_balance: f64,
    /// The routers' total demand (units/s).
    pub demand_units: f64,
    /// Routers asking.
    pub routers: usize,
    /// Units routers reported consumed since this GAC started.
    pub consumed_units: f64,
}

/// Global admission control for every table: the metadata group's leader runs one.
///
/// Each table's allowance is shared among the routers that asked within the last few
/// intervals: in proportion to their demand when the total demand exceeds what the table may
/// use, else each gets its demand plus an equal part of the headroom (so demand can grow).
/// What a table may use over the next interval is its rate plus burst credit beyond one
/// interval's worth; a GAC that restarts (a new metadata leader) starts with no credit.
#[derive(Clone, Debug, PartialEq)]
pub struct GacService {
    limits: AdmissionLimits,
    tables: HashMap<(u64, Kind), TableAllowance>,
}

impl GacService {
    /// A GAC with `limits` and no tables yet.
    #[must_use]
    pub fn new(limits: AdmissionLimits) -> Self {
        GacService {
            limits,
            tables: HashMap::new(),
        }
    }

    /// Grants `router` a rate (and burst credit) for each of its asks, in order.
    pub fn grant(&mut self, router: u32, asks: &[GacAsk], now_ms: u64) -> Vec<Grant> {
        asks.iter()
            .map(|ask| self.grant_one(router, ask, now_ms))
            .collect()
    }

    fn grant_one(&mut self, router: u32, ask: &GacAsk, now_ms: u64) -> Grant {
        let interval_ms = self.limits.gac_interval_ms.max(1);
        let interval_s = interval_ms as f64 / 1000.0;
        let burst_seconds = self.limits.burst_seconds as f64;
        let on_demand_floor = self.limits.on_demand_units(ask.ask.kind);
        let table = self
            .tables
            .entry((ask.ask.table_id, ask.ask.kind))
            .or_insert_with(|| TableAllowance {
                pool: 0.0,
                at_ms: now_ms,
                routers: HashMap::new(),
                served: std::collections::VecDeque::new(),
                peak: (0.0, now_ms),
                consumed_total: 0.0,
                rate: 0.0,
            });
        let demand = if ask.ask.demand.is_finite() {
            ask.ask.demand.max(0.0)
        } else {
            0.0
        };
        table.routers.insert(router, (demand, now_ms));
        table.routers.retain(|_, (_, at)| {
            now_ms.saturating_sub(*at) <= ROUTER_EXPIRY_INTERVALS * interval_ms
        });
        let total_demand: f64 = table.routers.values().map(|(d, _)| d).sum();
        let consumed = if ask.ask.consumed.is_finite() {
            ask.ask.consumed.max(0.0)
        } else {
            0.0
        };
        let window_ms = PEAK_WINDOW_INTERVALS * interval_ms;
        table.served.push_back((now_ms, consumed));
        while table
            .served
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) >= window_ms)
        {
            table.served.pop_front();
        }
        let rate = match ask.provisioned {
            Some(rate) => rate,
            None => {
                // On demand: twice the previous peak, never below the floor. The peak is the
                // served rate averaged over a window, so traffic may double at once, and grows
                // further only as it holds a higher rate.
                let served: f64 = table.served.iter().map(|(_, units)| units).sum();
                let average = served / (window_ms as f64 / 1000.0);
                let (peak, seen) = table.peak;
                if average >= peak || now_ms.saturating_sub(seen) > PEAK_MEMORY_MS {
                    table.peak = (average, now_ms);
                }
                (table.peak.0 * 2.0).max(on_demand_floor)
            }
        };
        table.rate = rate;
        let elapsed_s = now_ms.saturating_sub(table.at_ms) as f64 / 1000.0;
        table.at_ms = table.at_ms.max(now_ms);
        table.consumed_total += consumed;
        table.pool = (table.pool + rate * elapsed_s - consumed)
            .clamp(-rate * interval_s, rate * burst_seconds);
        // A provisioned table may use its rate, plus credit beyond one interval's worth, over
        // the next interval. An on-demand table has no credit: its allowance itself follows
        // its traffic.
        let credit = if ask.provisioned.is_some() {
            (table.pool - rate * interval_s).max(0.0)
        } else {
            0.0
        };
        let available = rate + credit / interval_s;
        let routers = table.routers.len().max(1) as f64;
        let rate = if total_demand <= rate {
            demand + (rate - total_demand) / routers
        } else if total_demand <= available {
            demand
        } else {
            demand * available / total_demand
        };
        // Each router holds its part of the credit: by demand, or evenly when nobody asks.
        let part = if total_demand > 0.0 {
            demand / total_demand
        } else {
            1.0 / routers
        };
        Grant {
            rate,
            burst: credit * part,
        }
    }

    /// Where `table_id` stands for `kind`.
    #[must_use]
    pub fn stats(&self, table_id: u64, kind: Kind) -> Option<GacTableStats> {
        let table = self.tables.get(&(table_id, kind))?;
        Some(GacTableStats {
            rate_units: table.rate,
            burst_balance: table.pool.max(0.0),
            demand_units: table.routers.values().map(|(d, _)| d).sum(),
            routers: table.routers.len(),
            consumed_units: table.consumed_total,
        })
    }

    /// Forgets tables that no longer exist.
    pub fn retain_tables(&mut self, exists: impl Fn(u64) -> bool) {
        self.tables.retain(|(table_id, _), _| exists(*table_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(demand: f64, consumed: f64, provisioned: Option<f64>) -> GacAsk {
        GacAsk {
            ask: RouterAsk {
                table_id: 1,
                kind: Kind::Write,
                demand,
                consumed,
            },
            provisioned,
        }
    }

    #[test]
    fn demand_within_the_rate_is_granted_with_the_headroom_shared() {
        let mut gac = GacService::new(AdmissionLimits::default());
        let a = gac.grant(1, &[ask(30.0, 0.0, Some(100.0))], 0)[0].rate;
        let b = gac.grant(2, &[ask(10.0, 0.0, Some(100.0))], 10)[0].rate;
        // Total demand 40 of 100: router 2 gets its 10 plus half of the 60 left.
        assert!((b - 40.0).abs() < 1e-9, "{b}");
        assert!(a >= 30.0);
    }

    #[test]
    fn uneven_demand_over_the_rate_is_shared_in_proportion_and_sums_to_the_rate() {
        let mut gac = GacService::new(AdmissionLimits::default());
        // Three routers, demand 300/100/0 against 200 units/s, every 2 s for a minute, each
        // consuming what it was granted.
        let demands = [300.0, 100.0, 0.0];
        let mut grants = [0.0; 3];
        for round in 0..30u64 {
            let now = round * 2000;
            for (router, demand) in demands.iter().enumerate() {
                let consumed = grants[router] * 2.0;
                grants[router] =
                    gac.grant(router as u32, &[ask(*demand, consumed, Some(200.0))], now)[0].rate;
            }
        }
        let total: f64 = grants.iter().sum();
        assert!((total - 200.0).abs() < 1.0, "{grants:?}");
        assert!((grants[0] / grants[1] - 3.0).abs() < 0.05, "{grants:?}");
    }

    #[test]
    fn unused_capacity_becomes_credit_for_a_spike_and_runs_out() {
        let mut gac = GacService::new(AdmissionLimits::default());
        // Idle (asking, consuming nothing) for 100 s at 100 units/s: 10,000 units of credit.
        for round in 0..=50u64 {
            gac.grant(1, &[ask(0.0, 0.0, Some(100.0))], round * 2000);
        }
        let credit = gac
            .stats(1, Kind::Write)
            .map(|s| s.burst_balance)
            .unwrap_or(0.0);
        assert!((credit - 10_000.0).abs() < 1.0, "{credit}");
        // A spike of 300 units/s is granted whole while credit lasts...
        let mut now = 100_000;
        let grant = gac.grant(1, &[ask(300.0, 0.0, Some(100.0))], now)[0];
        assert_eq!(grant.rate, 300.0);
        // The router may hold the credit beyond one interval, so the spike needs no wait.
        assert!((grant.burst - 9800.0).abs() < 1.0, "{grant:?}");
        let granted = grant.rate;
        // ...and falls back to the rate once the spike has spent it.
        let mut last = granted;
        for _ in 0..100 {
            now += 2000;
            last = gac.grant(1, &[ask(300.0, last * 2.0, Some(100.0))], now)[0].rate;
        }
        assert!((last - 100.0).abs() < 5.0, "{last}");
    }

    #[test]
    fn credit_never_exceeds_burst_seconds_of_the_rate() {
        let mut gac = GacService::new(AdmissionLimits::default());
        gac.grant(1, &[ask(0.0, 0.0, Some(10.0))], 0);
        gac.grant(1, &[ask(0.0, 0.0, Some(10.0))], 3_600_000);
        let credit = gac
            .stats(1, Kind::Write)
            .map(|s| s.burst_balance)
            .unwrap_or(0.0);
        assert_eq!(credit, 3000.0);
    }

    #[test]
    fn routers_that_stop_asking_stop_counting() {
        let mut gac = GacService::new(AdmissionLimits::default());
        gac.grant(1, &[ask(1000.0, 0.0, Some(100.0))], 0);
        let later = gac.grant(2, &[ask(50.0, 0.0, Some(100.0))], 10_000)[0].rate;
        assert_eq!(later, 100.0, "a router silent for 10 s still took a share");
    }

    #[test]
    fn on_demand_follows_twice_the_previous_peak() {
        let limits = AdmissionLimits {
            on_demand_write_units: 100,
            ..AdmissionLimits::default()
        };
        let mut gac = GacService::new(limits);
        let rate = |gac: &GacService| gac.stats(1, Kind::Write).map(|s| s.rate_units);
        // At first, the floor.
        gac.grant(1, &[ask(50.0, 0.0, None)], 0);
        assert_eq!(rate(&gac), Some(100.0));
        // Served at 150 units/s for a whole window (10 intervals of 2 s): twice that.
        let mut now = 0;
        for _ in 0..10 {
            now += 2000;
            gac.grant(1, &[ask(150.0, 300.0, None)], now);
        }
        assert_eq!(rate(&gac), Some(300.0));
        // A jump to ten times the peak is not granted at once, even after a quiet spell that
        // would have given a provisioned table burst credit...
        for _ in 0..30 {
            now += 2000;
            gac.grant(1, &[ask(150.0, 300.0, None)], now);
        }
        now += 2000;
        let granted = gac.grant(1, &[ask(3000.0, 300.0, None)], now)[0].rate;
        assert!(granted < 1000.0, "{granted}");
        // ...but served at the doubled rate for a window, the allowance doubles again.
        for _ in 0..10 {
            now += 2000;
            gac.grant(1, &[ask(3000.0, 600.0, None)], now);
        }
        assert_eq!(rate(&gac), Some(600.0));
    }
}
