//! Fault injection for tests (feature `fault-injection`): named points in the actors that fail
//! when the environment variable `SWARMD_FAULTS` asks them to. Compiled to nothing without the
//! feature.
//!
//! `SWARMD_FAULTS` is a comma-separated list of `point[@target]:value[:times]`:
//! - `value` is the probability of a panic per pass (`peer.block:0.01`), or for the points that
//!   count (`peer.upload_after:200`: every peer connection crashes at its 200th block sent) or
//!   wait (`torrent.freeze_after:3`: a torrent's thread blocks for good after 3 s) that number;
//! - `@target` aims a per-torrent point at the torrents whose info-hash (hex) starts with it
//!   (`torrent.tick@3f2a:1.0`); without it, a point applies to every torrent. Points that are
//!   not about a torrent ignore a target;
//! - `:times` fires the fault at most that many times in the process (`choker.round:1.0:1`: the
//!   choker crashes once, then its restarted incarnation runs for good).
//!
//! The points: `torrent.tick`, `torrent.reannounce` (a torrent panics when told to reannounce:
//! a crash at a moment the test picks), `torrent.freeze_after`, `peer.block`,
//! `peer.upload_after`, `disk.write`, `announcer.poll`, `choker.round`, `rate_limiter.serve`,
//! `listener.accept`, `dht.started` (right after the DHT node came up), `dht.check`,
//! `disk.move_pause` (a move of a torrent's data waits that many seconds before each file after
//! its first: a crash in the middle of a move at a moment the test picks).

#[cfg(any(test, feature = "fault-injection"))]
use std::sync::atomic::{AtomicU64, Ordering};

use swarm_wire::InfoHash;

/// One entry of `SWARMD_FAULTS`.
#[cfg(any(test, feature = "fault-injection"))]
#[derive(Debug)]
struct Fault {
    point: String,
    /// Info-hash prefix (lowercase hex) of the torrents it is aimed at; `None`: all of them.
    target: Option<String>,
    value: f64,
    /// How many more times it may fire; `u64::MAX`: without limit.
    left: AtomicU64,
}

#[cfg(any(test, feature = "fault-injection"))]
impl Fault {
    fn applies(&self, point: &str, key: Option<&str>) -> bool {
        self.point == point
            && match (&self.target, key) {
                (None, _) => true,
                (Some(t), Some(k)) => k.starts_with(t.as_str()),
                // A targeted fault never fires where there is no torrent to match.
                (Some(_), None) => false,
            }
    }

    /// Takes one of its remaining firings; false once they are used up.
    fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n > 0).then(|| if n == u64::MAX { n } else { n - 1 })
            })
            .is_ok()
    }
}

/// Parses `SWARMD_FAULTS`; entries that do not parse are left out.
#[cfg(any(test, feature = "fault-injection"))]
fn parse(spec: &str) -> Vec<Fault> {
    spec.split(',')
        .filter_map(|entry| {
            let mut parts = entry.trim().splitn(3, ':');
            let name = parts.next()?.trim();
            let value = parts.next()?.trim().parse().ok()?;
            let left = match parts.next() {
                Some(n) => n.trim().parse().ok()?,
                None => u64::MAX,
            };
            let (point, target) = match name.split_once('@') {
                Some((p, t)) => (p, Some(t.trim().to_ascii_lowercase())),
                None => (name, None),
            };
            Some(Fault {
                point: point.trim().to_string(),
                target,
                value,
                left: AtomicU64::new(left),
            })
        })
        .collect()
}

#[cfg(feature = "fault-injection")]
fn faults() -> &'static [Fault] {
    use std::sync::OnceLock;
    static FAULTS: OnceLock<Vec<Fault>> = OnceLock::new();
    FAULTS.get_or_init(|| parse(&std::env::var("SWARMD_FAULTS").unwrap_or_default()))
}

/// The value given to `point` for the torrent `key` (its info-hash in hex; `None` for points
/// that are not about one torrent), if any fault applies.
#[cfg(feature = "fault-injection")]
pub fn value_for(point: &str, key: Option<&InfoHash>) -> Option<f64> {
    let key = key.map(InfoHash::to_hex);
    faults()
        .iter()
        .find(|f| f.applies(point, key.as_deref()))
        .map(|f| f.value)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn value_for(_point: &str, _key: Option<&InfoHash>) -> Option<f64> {
    None
}

/// Whether the fault at `point` for `key` fires now: `decide(value)` says so and it has firings
/// left.
#[cfg(feature = "fault-injection")]
fn fires(point: &str, key: Option<&InfoHash>, decide: impl Fn(f64) -> bool) -> bool {
    let key = key.map(InfoHash::to_hex);
    faults()
        .iter()
        .find(|f| f.applies(point, key.as_deref()))
        .is_some_and(|f| decide(f.value) && f.take())
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn fires(_point: &str, _key: Option<&InfoHash>, _decide: impl Fn(f64) -> bool) -> bool {
    false
}

/// Panics when `count` reaches the number configured for `point` (a fault at a known moment,
/// e.g. `peer.upload_after:200`: every peer connection crashes at its 200th block sent).
#[inline(always)]
pub fn panic_at(point: &str, count: u64) {
    if fires(point, None, |n| n as u64 == count) {
        panic!("injected fault at {point}");
    }
}

/// Panics with the probability configured for `point`.
#[inline(always)]
pub fn maybe_panic(point: &str) {
    maybe_panic_for(point, None);
}

/// Panics with the probability configured for `point` and the torrent `key`.
#[inline(always)]
pub fn maybe_panic_for(point: &str, key: Option<&InfoHash>) {
    if fires(point, key, |p| rand::random::<f64>() < p) {
        panic!("injected fault at {point}");
    }
}

/// An I/O error with the probability configured for `point` (a connection attempt that fails).
#[inline(always)]
pub fn maybe_fail(point: &str) -> std::io::Result<()> {
    if fires(point, None, |p| rand::random::<f64>() < p) {
        return Err(std::io::Error::other(format!("injected fault at {point}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(f: &'a [Fault], point: &str, key: Option<&str>) -> Option<&'a Fault> {
        f.iter().find(|x| x.applies(point, key))
    }

    #[test]
    fn a_targeted_fault_applies_to_its_torrents_only() {
        let f = parse("torrent.tick@3F2A:1.0, disk.write:0.5");
        assert!(find(&f, "torrent.tick", Some("3f2a00ff")).is_some());
        assert!(find(&f, "torrent.tick", Some("3f2b00ff")).is_none());
        assert!(find(&f, "torrent.tick", None).is_none());
        let d = find(&f, "disk.write", Some("anything")).unwrap();
        assert_eq!(d.value, 0.5);
        assert!(find(&f, "disk.write", None).is_some());
    }

    #[test]
    fn times_limits_how_often_a_fault_fires() {
        let f = parse("choker.round:1.0:2,peer.block:0.1");
        let c = find(&f, "choker.round", None).unwrap();
        assert!(c.take() && c.take());
        assert!(!c.take(), "a fault limited to 2 firings fired a third time");
        let p = find(&f, "peer.block", None).unwrap();
        assert!((0..1000).all(|_| p.take()));
    }

    #[test]
    fn entries_that_do_not_parse_are_left_out() {
        let f = parse("nonsense,torrent.tick:x,listener.accept:1:y,,dht.started:1");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].point, "dht.started");
    }
}
