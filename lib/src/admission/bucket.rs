//! The token bucket every admission decision is made of.

/// A token bucket over capacity units: it refills at `rate` units per second up to `capacity`.
///
/// Callers charge what a request actually consumed after it ran, so the balance may go below
/// zero (a debt the refill pays off first) — but never below `-capacity`, so one huge request
/// cannot lock a bucket for longer than a refill of its whole capacity. Time is a parameter
/// (`now_ms`, milliseconds on any monotonic clock): the bucket never reads a clock itself.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at_ms: u64,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` units per second up to `capacity`.
    #[must_use]
    pub fn full(rate: f64, capacity: f64, now_ms: u64) -> Self {
        let capacity = capacity.max(0.0);
        TokenBucket {
            rate: rate.max(0.0),
            capacity,
            tokens: capacity,
            at_ms: now_ms,
        }
    }

    /// Brings the balance up to `now_ms` and returns the units that did not fit (the capacity
    /// that went unused since the last refill: what burst credit is made of).
    pub fn refill(&mut self, now_ms: u64) -> f64 {
        let elapsed_ms = now_ms.saturating_sub(self.at_ms);
        self.at_ms = self.at_ms.max(now_ms);
        let added = self.rate * elapsed_ms as f64 / 1000.0;
        let room = (self.capacity - self.tokens).max(0.0);
        if added > room {
            self.tokens = self.capacity.max(self.tokens);
            added - room
        } else {
            self.tokens += added;
            0.0
        }
    }

    /// The balance at `now_ms` (negative while a debt is being paid off).
    pub fn balance(&mut self, now_ms: u64) -> f64 {
        self.refill(now_ms);
        self.tokens
    }

    /// The balance at the last refill, without refilling.
    #[must_use]
    pub fn last_balance(&self) -> f64 {
        self.tokens
    }

    /// Takes `units` (refill first with [`TokenBucket::refill`] or [`TokenBucket::balance`]).
    pub fn take(&mut self, units: f64) {
        self.tokens = (self.tokens - units).max(-self.capacity);
    }

    /// Takes at most what is there (never below zero); returns what it took.
    pub fn take_available(&mut self, units: f64) -> f64 {
        let taken = units.min(self.tokens.max(0.0));
        self.tokens -= taken;
        taken
    }

    /// Changes the rate and capacity, keeping the balance (cut to the new capacity).
    pub fn reshape(&mut self, rate: f64, capacity: f64) {
        self.rate = rate.max(0.0);
        self.capacity = capacity.max(0.0);
        self.tokens = self.tokens.min(self.capacity);
    }

    /// Units per second it refills at.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_its_rate_up_to_its_capacity_and_reports_the_overflow() {
        let mut bucket = TokenBucket::full(100.0, 50.0, 0);
        bucket.take(50.0);
        assert_eq!(bucket.refill(250), 0.0);
        assert!((bucket.last_balance() - 25.0).abs() < 1e-9);
        // 1 s more brings 100 units: 25 fit, 75 overflow.
        let overflow = bucket.refill(1250);
        assert!((overflow - 75.0).abs() < 1e-9);
        assert!((bucket.last_balance() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_debt_is_bounded_by_the_capacity_and_paid_off_first() {
        let mut bucket = TokenBucket::full(10.0, 10.0, 0);
        bucket.take(1000.0);
        assert_eq!(bucket.last_balance(), -10.0);
        assert!(bucket.balance(1000) <= 0.0 + 1e-9);
        assert!((bucket.balance(2000) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn take_available_never_goes_below_zero() {
        let mut bucket = TokenBucket::full(1.0, 5.0, 0);
        assert_eq!(bucket.take_available(8.0), 5.0);
        assert_eq!(bucket.take_available(1.0), 0.0);
        assert_eq!(bucket.last_balance(), 0.0);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let mut bucket = TokenBucket::full(100.0, 100.0, 5000);
        bucket.take(100.0);
        assert_eq!(bucket.balance(1000), 0.0);
        assert!((bucket.balance(5500) - 50.0).abs() < 1e-9);
    }
}
