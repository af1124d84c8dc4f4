//! # Token bucket — pure rate-limiting arithmetic
//!
//! Tokens are bytes. They accrue at `rate` bytes/s up to `burst`; a transfer spends them first.
//! Owned by the [`RateLimiter`](crate::services::rate_limiter) actor (one bucket per direction,
//! global and per torrent); no I/O, no clock of its own: the caller passes `now` to
//! [`TokenBucket::refill`] and then takes. Integer arithmetic throughout (the fractional token
//! is carried in byte·nanoseconds), so long-run throughput is exactly `rate`, with no float drift.
//!
//! Guarantee, whatever the call pattern: over any window of length `t`, the bytes granted are at
//! most `rate · t + burst` (the bucket starts full). A rate change takes effect from the last
//! `refill`: call `refill(now)` before [`TokenBucket::set_rate`] to credit the time up to now at
//! the old rate.
//!
//! `None` (or `Some(0)`, as in most clients' settings) is **unlimited**: every take is granted
//! in full and nothing is counted, so an unlimited bucket costs a branch.

use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    burst: u64,
    tokens: u64,
    /// Fractional token credit in byte·nanoseconds, always below one token (`NANOS_PER_SEC`).
    carry: u128,
    /// The instant the tokens were counted up to; `None` until the first refill.
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `burst` is raised to 1 byte at least: a bucket that can hold nothing could
    /// never grant anything.
    pub fn new(rate: Option<u64>, burst: u64) -> Self {
        let burst = burst.max(1);
        TokenBucket {
            rate: rate.unwrap_or(0),
            burst,
            tokens: burst,
            carry: 0,
            last: None,
        }
    }

    pub fn unlimited() -> Self {
        Self::new(None, 1)
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// The rate in bytes/s; `None` = unlimited.
    pub fn rate(&self) -> Option<u64> {
        (self.rate != 0).then_some(self.rate)
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Tokens available now (after the last refill); `u64::MAX` when unlimited.
    pub fn available(&self) -> u64 {
        if self.is_unlimited() {
            u64::MAX
        } else {
            self.tokens
        }
    }

    /// Credits the time since the last refill at the current rate. Instants earlier than the
    /// last one are ignored (time does not run backwards for the bucket).
    pub fn refill(&mut self, now: Instant) {
        if self.is_unlimited() {
            return;
        }
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        if now <= last {
            return;
        }
        self.last = Some(now);
        if self.tokens >= self.burst {
            return;
        }
        let credit = now.duration_since(last).as_nanos() * u128::from(self.rate) + self.carry;
        let whole = credit / NANOS_PER_SEC;
        let room = u128::from(self.burst - self.tokens);
        if whole >= room {
            self.tokens = self.burst;
            self.carry = 0;
        } else {
            // `whole < room <= u64::MAX`: the cast cannot truncate.
            self.tokens += whole as u64;
            self.carry = credit % NANOS_PER_SEC;
        }
    }

    /// Takes `n` tokens if there are that many; otherwise takes nothing.
    pub fn try_take(&mut self, n: u64) -> bool {
        if self.is_unlimited() {
            return true;
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes as many of `n` tokens as there are; returns how many.
    pub fn take_up_to(&mut self, n: u64) -> u64 {
        if self.is_unlimited() {
            return n;
        }
        let granted = n.min(self.tokens);
        self.tokens -= granted;
        granted
    }

    /// How long until `n` tokens are available (`n` capped at the burst: more can never be
    /// there at once, so callers asking for more take what there is). Zero when unlimited.
    pub fn time_until(&self, n: u64) -> Duration {
        let need = n.min(self.burst);
        if self.is_unlimited() || self.tokens >= need {
            return Duration::ZERO;
        }
        let missing = u128::from(need - self.tokens) * NANOS_PER_SEC - self.carry;
        let rate = u128::from(self.rate);
        let nanos = missing.div_ceil(rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Changes the rate from the last refill on. Going from unlimited to limited starts with a
    /// full bucket (the old regime allowed at least that much); tokens above a smaller burst are
    /// dropped by [`TokenBucket::set_burst`], not here.
    pub fn set_rate(&mut self, rate: Option<u64>) {
        let rate = rate.unwrap_or(0);
        if self.rate == 0 && rate != 0 {
            self.tokens = self.burst;
            self.carry = 0;
            self.last = None;
        }
        self.rate = rate;
    }

    /// Changes the burst; tokens above it are dropped.
    pub fn set_burst(&mut self, burst: u64) {
        self.burst = burst.max(1);
        if self.tokens >= self.burst {
            self.tokens = self.burst;
            self.carry = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_full_and_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(1000), 500);
        b.refill(t0);
        assert!(b.try_take(500));
        assert!(!b.try_take(1));
        b.refill(t0 + 100 * MS);
        assert_eq!(b.available(), 100);
        assert_eq!(b.take_up_to(250), 100);
        b.refill(t0 + 10 * Duration::from_secs(1));
        assert_eq!(b.available(), 500, "capped at the burst");
    }

    #[test]
    fn time_until_is_exact_and_capped_at_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(3), 10);
        b.refill(t0);
        b.take_up_to(10);
        let wait = b.time_until(1);
        assert_eq!(wait, Duration::from_nanos(333_333_334));
        b.refill(t0 + wait);
        assert!(b.try_take(1));
        // More than the burst: the time until the bucket is full.
        b.refill(t0 + wait);
        let full = b.time_until(1000);
        b.refill(t0 + wait + full);
        assert_eq!(b.available(), 10);
    }

    #[test]
    fn unlimited_grants_everything_and_counts_nothing() {
        let mut b = TokenBucket::new(Some(0), 10);
        assert!(b.is_unlimited());
        assert!(b.try_take(u64::MAX));
        assert_eq!(b.take_up_to(1 << 40), 1 << 40);
        assert_eq!(b.time_until(1 << 40), Duration::ZERO);
        b.set_rate(Some(100));
        assert_eq!(b.available(), 10, "limiting starts from a full bucket");
        b.set_rate(None);
        assert_eq!(b.available(), u64::MAX);
    }

    #[test]
    fn rate_changes_take_effect_immediately() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(1000), 5000);
        b.refill(t0);
        b.take_up_to(5000);
        b.refill(t0 + 500 * MS);
        b.set_rate(Some(10_000));
        b.refill(t0 + 600 * MS);
        // 500 ms at the old rate, then 100 ms at the new one.
        assert_eq!(b.available(), 500 + 1000);
        b.take_up_to(u64::MAX);
        b.set_rate(Some(10));
        assert_eq!(b.time_until(10), Duration::from_secs(1));
    }

    #[test]
    fn long_run_throughput_converges_to_the_rate() {
        let t0 = Instant::now();
        let rate = 123_457;
        let mut b = TokenBucket::new(Some(rate), 16 * 1024);
        b.refill(t0);
        // Empty the initial burst: from here on only the rate counts.
        b.take_up_to(u64::MAX);
        let mut granted = 0u64;
        let mut now = t0;
        // A greedy consumer polling every 7 ms (not a divisor of anything) for 100 s.
        while now < t0 + Duration::from_secs(100) {
            now += 7 * MS;
            b.refill(now);
            granted += b.take_up_to(u64::MAX);
        }
        let secs = now.duration_since(t0).as_secs_f64();
        let measured = granted as f64 / secs;
        assert!((measured - rate as f64).abs() < 1.0, "{measured}");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Wait(u64),
        Take(u64),
        TakeUpTo(u64),
        SetRate(Option<u64>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..2_000).prop_map(Op::Wait),
            3 => (0u64..50_000).prop_map(Op::Take),
            3 => (0u64..50_000).prop_map(Op::TakeUpTo),
            1 => proptest::option::of(1u64..100_000).prop_map(Op::SetRate),
        ]
    }

    proptest! {
        /// Over any window, while the rate is fixed: granted ≤ rate·t + burst.
        #[test]
        fn grants_never_exceed_rate_times_time_plus_burst(
            rate in 1u64..1_000_000,
            burst in 1u64..100_000,
            ops in proptest::collection::vec(op(), 1..150),
        ) {
            let t0 = Instant::now();
            let mut b = TokenBucket::new(Some(rate), burst);
            let mut now = t0;
            b.refill(now);
            // (time, granted) for every grant, in order.
            let mut grants: Vec<(Instant, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Wait(ms) => { now += Duration::from_millis(ms); b.refill(now); }
                    Op::Take(n) => if b.try_take(n) { grants.push((now, n)) },
                    Op::TakeUpTo(n) => grants.push((now, b.take_up_to(n))),
                    Op::SetRate(_) => {}
                }
            }
            for i in 0..grants.len() {
                let mut sum = 0u128;
                for &(t, n) in &grants[i..] {
                    sum += u128::from(n);
                    let window = t.duration_since(grants[i].0).as_nanos();
                    let bound = window * u128::from(rate) / NANOS_PER_SEC + u128::from(burst);
                    prop_assert!(sum <= bound, "{sum} > {bound}");
                }
            }
        }

        /// With rate changes: every grant is covered by the tokens accrued at the rate in force
        /// at each moment, plus the burst (plus one burst per switch from unlimited).
        #[test]
        fn grants_follow_the_rate_in_force(
            burst in 1u64..100_000,
            ops in proptest::collection::vec(op(), 1..150),
        ) {
            let mut now = Instant::now();
            let mut b = TokenBucket::new(Some(1000), burst);
            b.refill(now);
            let mut earned = u128::from(burst) * NANOS_PER_SEC; // in byte·ns
            let mut granted = 0u128;
            for op in ops {
                match op {
                    Op::Wait(ms) => {
                        if let Some(r) = b.rate() {
                            earned += u128::from(ms) * 1_000_000 * u128::from(r);
                        }
                        now += Duration::from_millis(ms);
                        b.refill(now);
                    }
                    Op::Take(n) => if b.try_take(n) && !b.is_unlimited() { granted += u128::from(n) },
                    Op::TakeUpTo(n) => {
                        let g = b.take_up_to(n);
                        if !b.is_unlimited() { granted += u128::from(g) }
                    }
                    Op::SetRate(r) => {
                        if b.is_unlimited() && r.is_some() {
                            earned += u128::from(b.burst()) * NANOS_PER_SEC;
                        }
                        b.set_rate(r);
                    }
                }
                prop_assert!(granted * NANOS_PER_SEC <= earned);
                prop_assert!(b.available() == u64::MAX || b.available() <= b.burst());
            }
        }

        /// `time_until` is neither early nor late by more than a nanosecond's worth.
        #[test]
        fn time_until_is_tight(rate in 1u64..10_000_000, burst in 1u64..1_000_000, n in 0u64..2_000_000) {
            let t0 = Instant::now();
            let mut b = TokenBucket::new(Some(rate), burst);
            b.refill(t0);
            b.take_up_to(u64::MAX);
            let wait = b.time_until(n);
            let target = n.min(burst);
            let mut early = b.clone();
            if wait > Duration::ZERO {
                early.refill(t0 + wait - Duration::from_nanos(1));
                prop_assert!(early.available() < target);
            }
            b.refill(t0 + wait);
            prop_assert!(b.available() >= target);
        }
    }
}
