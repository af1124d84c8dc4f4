//! Per-source token buckets for incoming queries, so one flooder cannot take the node's whole
//! attention (or turn it into an amplifier).
//!
//! Pure: `now` is passed in. A source is an IP address, except on loopback, where it is the
//! full socket address: a test swarm runs many nodes on 127.0.0.1 that must not share a
//! budget. The table of sources is bounded; when it is full, idle sources (whose buckets have
//! refilled) are forgotten, and if that frees nothing the newcomer is refused.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained queries per second per source.
    pub per_second: f64,
    /// Queries a source may send in a burst.
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 50.0,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct SourceLimiter {
    limit: RateLimit,
    max_sources: usize,
    buckets: HashMap<(IpAddr, u16), Bucket>,
}

impl SourceLimiter {
    pub fn new(limit: RateLimit, max_sources: usize) -> Self {
        SourceLimiter {
            limit,
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
        }
    }

    fn key(src: SocketAddr) -> (IpAddr, u16) {
        if src.ip().is_loopback() {
            (src.ip(), src.port())
        } else {
            (src.ip(), 0)
        }
    }

    /// Takes one token from `src`'s bucket; false when it has none left.
    pub fn allow(&mut self, src: SocketAddr, now: Instant) -> bool {
        let key = Self::key(src);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max_sources {
            self.forget_idle(now);
            if self.buckets.len() >= self.max_sources {
                return false;
            }
        }
        let limit = self.limit;
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: limit.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * limit.per_second).min(limit.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops sources whose bucket would be full by now: they cost nothing to recreate.
    pub fn forget_idle(&mut self, now: Instant) {
        let limit = self.limit;
        self.buckets.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens + elapsed * limit.per_second < limit.burst
        });
    }

    pub fn source_count(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn src(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn burst_then_throttle_then_refill() {
        let now = Instant::now();
        let mut l = SourceLimiter::new(
            RateLimit {
                per_second: 10.0,
                burst: 5.0,
            },
            100,
        );
        let a = src([10, 0, 0, 1], 1);
        let allowed = (0..100).filter(|_| l.allow(a, now)).count();
        assert_eq!(allowed, 5);
        // Another port on the same (non-loopback) IP shares the budget.
        assert!(!l.allow(src([10, 0, 0, 1], 2), now));
        // Another IP has its own.
        assert!(l.allow(src([10, 0, 0, 2], 1), now));
        // 10/s: after 0.5 s five more.
        let later = now + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| l.allow(a, later)).count(), 5);
    }

    #[test]
    fn loopback_sources_are_per_port() {
        let now = Instant::now();
        let mut l = SourceLimiter::new(
            RateLimit {
                per_second: 1.0,
                burst: 1.0,
            },
            100,
        );
        assert!(l.allow(src([127, 0, 0, 1], 1), now));
        assert!(!l.allow(src([127, 0, 0, 1], 1), now));
        assert!(l.allow(src([127, 0, 0, 1], 2), now));
    }

    #[test]
    fn source_table_is_bounded() {
        let now = Instant::now();
        let mut l = SourceLimiter::new(
            RateLimit {
                per_second: 1.0,
                burst: 2.0,
            },
            3,
        );
        for i in 0..3 {
            assert!(l.allow(src([10, 0, 0, i], 1), now));
        }
        assert!(!l.allow(src([10, 0, 0, 9], 1), now));
        assert_eq!(l.source_count(), 3);
        // Once the others are idle (refilled), they are forgotten and the newcomer gets in.
        assert!(l.allow(src([10, 0, 0, 9], 1), now + Duration::from_secs(5)));
        assert!(l.source_count() <= 3);
    }
}
