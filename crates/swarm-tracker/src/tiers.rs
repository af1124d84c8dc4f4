//! Which tracker to announce to, and when: BEP 12 tiers plus per-tracker backoff. Pure state, no I/O:
//! the announcer asks [`TrackerList::next_due`], performs the announce, and reports the outcome with
//! [`TrackerList::on_success`] or [`TrackerList::on_failure`]. Time is always passed in, so tests
//! and the announcer agree on what "now" is.
//!
//! The rules:
//! - Trackers are tried in order: tier 0 first, each tier shuffled once at creation (BEP 12), so
//!   that every client of a torrent does not hit the same tracker first.
//! - One announce at a time per list: while one is in flight, nothing else is due.
//! - A tracker that answers moves to the front of its tier and becomes *the working tracker*: the
//!   list waits for its interval and trackers after it are left alone.
//! - A tracker that fails is backed off exponentially ([`FIRST_RETRY`] doubling up to
//!   [`MAX_BACKOFF`]) and the next tracker in order is tried at once. A failing tracker *before*
//!   the working one is retried when its backoff ends, so the list drifts back to the preferred tier.
//! - A tracker's `interval` is honoured, clamped to a floor ([`MIN_INTERVAL`] unless the user's
//!   `[trackers] min_interval_secs` sets another, [`TrackerList::with_min_interval`]) and
//!   [`MAX_INTERVAL`], so that a buggy or hostile tracker can neither make us hammer it nor silence
//!   it forever; `min interval` wins over `interval` when larger, and also bounds
//!   [`TrackerList::reannounce_now`].

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;

use crate::types::{AnnounceResponse, TrackerError};

/// Shortest wait between regular announces to one tracker, whatever it asks for, unless the list
/// was given another floor.
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Longest wait between regular announces, whatever the tracker asks for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);
/// Wait after a tracker's first failure; doubles with each further failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// The longest a failing tracker is left alone.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// How a tracker is doing, as `swarmctl trackers` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerHealth {
    NotContacted,
    Announcing,
    Working,
    Failing,
}

/// A snapshot of one tracker's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerStatus {
    pub url: String,
    pub tier: usize,
    pub health: TrackerHealth,
    /// The last error, kept until the next success.
    pub last_error: Option<String>,
    /// The tracker's last `warning message`.
    pub last_warning: Option<String>,
    pub consecutive_failures: u32,
    /// When it will next be announced to, from the snapshot's `now`. `None` while an announce is in
    /// flight, or when a tracker earlier in the list is working and this one is standing by.
    pub next_announce_in: Option<Duration>,
    /// The interval the tracker asked for (before clamping).
    pub interval: Option<Duration>,
    /// Peers in the last successful reply.
    pub last_peers: usize,
    /// Peers received from this tracker since the list was created.
    pub total_peers: u64,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    None,
    Ok,
    Failed,
}

#[derive(Clone, Debug)]
struct Tracker {
    url: String,
    in_flight: bool,
    last: Outcome,
    /// Not to be announced to before this; `None` means as soon as its turn comes.
    not_before: Option<Instant>,
    last_success: Option<Instant>,
    failures: u32,
    last_error: Option<String>,
    last_warning: Option<String>,
    interval: Option<Duration>,
    min_interval: Option<Duration>,
    tracker_id: Option<String>,
    last_peers: usize,
    total_peers: u64,
    seeders: Option<u32>,
    leechers: Option<u32>,
}

impl Tracker {
    fn new(url: String) -> Self {
        Tracker {
            url,
            in_flight: false,
            last: Outcome::None,
            not_before: None,
            last_success: None,
            failures: 0,
            last_error: None,
            last_warning: None,
            interval: None,
            min_interval: None,
            tracker_id: None,
            last_peers: 0,
            total_peers: 0,
            seeders: None,
            leechers: None,
        }
    }

    fn is_due(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| t <= now)
    }
}

/// Backoff after `failures` consecutive failures (≥ 1).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// The trackers of one torrent, in tiers.
#[derive(Clone, Debug)]
pub struct TrackerList {
    tiers: Vec<Vec<Tracker>>,
    /// The shortest wait between regular announces ([`MIN_INTERVAL`] by default).
    floor: Duration,
}

impl TrackerList {
    /// Builds the list from the metainfo's tiers (`announce-list`, or `[[announce]]`), shuffling each
    /// tier. Blank and duplicate URLs are dropped (a URL keeps its first place); so are empty tiers.
    pub fn new(tiers: Vec<Vec<String>>) -> Self {
        Self::with_rng(tiers, &mut rand::thread_rng())
    }

    /// Like [`TrackerList::new`], with the shuffle drawn from `rng` (seed it for reproducible tests).
    pub fn with_rng<R: Rng + ?Sized>(tiers: Vec<Vec<String>>, rng: &mut R) -> Self {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(tiers.len());
        for tier in tiers {
            let mut trackers: Vec<Tracker> = tier
                .into_iter()
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty() && seen.insert(u.clone()))
                .map(Tracker::new)
                .collect();
            if trackers.is_empty() {
                continue;
            }
            // `collect` through a filter reserves room for four; a thousand torrents with one
            // tracker each kept 600 KB of that.
            trackers.shrink_to_fit();
            trackers.shuffle(rng);
            out.push(trackers);
        }
        out.shrink_to_fit();
        TrackerList {
            tiers: out,
            floor: MIN_INTERVAL,
        }
    }

    /// Never waits less than `floor` between regular announces to a tracker, whatever it asks for
    /// (`[trackers] min_interval_secs`). A floor above [`MAX_INTERVAL`] raises that bound too.
    pub fn with_min_interval(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    pub fn len(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    fn in_order(&self) -> impl Iterator<Item = (usize, usize, &Tracker)> {
        self.tiers
            .iter()
            .enumerate()
            .flat_map(|(t, tier)| tier.iter().enumerate().map(move |(i, tr)| (t, i, tr)))
    }

    fn find_mut(&mut self, url: &str) -> Option<(usize, usize)> {
        self.in_order()
            .find(|(_, _, tr)| tr.url == url)
            .map(|(t, i, _)| (t, i))
    }

    /// The trackers the scheduling walk considers: in order, up to and including the working one.
    fn candidates(&self) -> impl Iterator<Item = (usize, usize, &Tracker)> {
        let mut stop = false;
        self.in_order().take_while(move |(_, _, tr)| {
            let take = !stop;
            stop = stop || tr.last == Outcome::Ok;
            take
        })
    }

    /// The tracker to announce to now, as `(tier, index in tier, url)`, or `None` if nothing is due
    /// (or an announce is in flight). The returned tracker is marked in flight until
    /// `on_success`, `on_failure` or `on_cancelled` is called for it.
    pub fn next_due(&mut self, now: Instant) -> Option<(usize, usize, String)> {
        if self.in_order().any(|(_, _, tr)| tr.in_flight) {
            return None;
        }
        let (t, i) = self
            .candidates()
            .find(|(_, _, tr)| tr.is_due(now))
            .map(|(t, i, _)| (t, i))?;
        let tracker = &mut self.tiers[t][i];
        tracker.in_flight = true;
        Some((t, i, tracker.url.clone()))
    }

    /// When [`TrackerList::next_due`] will next return a tracker (`now` if one is due already);
    /// `None` if an announce is in flight or the list is empty. For the announcer's timer.
    pub fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        if self.in_order().any(|(_, _, tr)| tr.in_flight) {
            return None;
        }
        self.candidates()
            .map(|(_, _, tr)| tr.not_before.map_or(now, |t| t.max(now)))
            .min()
    }

    /// Records a successful announce: the tracker moves to the front of its tier and is next due
    /// after its (clamped) interval.
    pub fn on_success(&mut self, url: &str, resp: &AnnounceResponse, now: Instant) {
        let Some((t, i)) = self.find_mut(url) else {
            return;
        };
        let tracker = &mut self.tiers[t][i];
        let wait = resp
            .interval
            .max(resp.min_interval.unwrap_or_default())
            .clamp(self.floor, MAX_INTERVAL.max(self.floor));
        tracker.in_flight = false;
        tracker.last = Outcome::Ok;
        tracker.not_before = Some(now + wait);
        tracker.last_success = Some(now);
        tracker.failures = 0;
        tracker.last_error = None;
        tracker.last_warning = resp.warning.clone();
        tracker.interval = Some(resp.interval);
        tracker.min_interval = resp.min_interval;
        if resp.tracker_id.is_some() {
            tracker.tracker_id = resp.tracker_id.clone();
        }
        tracker.last_peers = resp.peers.len();
        tracker.total_peers = tracker.total_peers.saturating_add(resp.peers.len() as u64);
        tracker.seeders = resp.complete.or(tracker.seeders);
        tracker.leechers = resp.incomplete.or(tracker.leechers);
        let moved = self.tiers[t].remove(i);
        self.tiers[t].insert(0, moved);
    }

    /// Records a failed announce: the tracker is backed off and the next one in order becomes due.
    /// Returns the tracker's consecutive failures, this one included (0: not one of ours).
    pub fn on_failure(&mut self, url: &str, err: &TrackerError, now: Instant) -> u32 {
        let Some((t, i)) = self.find_mut(url) else {
            return 0;
        };
        let tracker = &mut self.tiers[t][i];
        tracker.in_flight = false;
        tracker.last = Outcome::Failed;
        tracker.failures = tracker.failures.saturating_add(1);
        tracker.not_before = Some(now + backoff(tracker.failures));
        tracker.last_error = Some(err.to_string());
        tracker.failures
    }

    /// The announce to `url` was abandoned (e.g. shutdown): it is no longer in flight, and nothing
    /// else changes.
    pub fn on_cancelled(&mut self, url: &str) {
        if let Some((t, i)) = self.find_mut(url) {
            self.tiers[t][i].in_flight = false;
        }
    }

    /// Makes every tracker due now (for a `completed` event or a user's "reannounce"), except that a
    /// working tracker still gets its `min interval`, and a tracker in flight is left alone.
    pub fn reannounce_now(&mut self, now: Instant) {
        for tracker in self.tiers.iter_mut().flatten() {
            if tracker.in_flight {
                continue;
            }
            tracker.not_before = match (tracker.last, tracker.last_success, tracker.min_interval) {
                (Outcome::Ok, Some(at), Some(min)) => Some((at + min).max(now)),
                _ => Some(now),
            };
        }
    }

    /// Makes every tracker not in flight due now, whatever its `min interval`: for an event
    /// (`completed`), which BEP 3 sends when it happens.
    pub fn announce_event_now(&mut self, now: Instant) {
        for tracker in self.tiers.iter_mut().flatten() {
            if !tracker.in_flight {
                tracker.not_before = Some(now);
            }
        }
    }

    /// The `tracker id` to send to `url`, if it gave us one.
    pub fn tracker_id(&self, url: &str) -> Option<&str> {
        self.in_order()
            .find(|(_, _, tr)| tr.url == url)
            .and_then(|(_, _, tr)| tr.tracker_id.as_deref())
    }

    /// Trackers that have accepted an announce from us: the ones a `stopped` event should reach.
    pub fn announced(&self) -> Vec<String> {
        self.in_order()
            .filter(|(_, _, tr)| tr.last_success.is_some())
            .map(|(_, _, tr)| tr.url.clone())
            .collect()
    }

    /// One status line per tracker, in announce order.
    pub fn status(&self, now: Instant) -> Vec<TrackerStatus> {
        let scheduled: std::collections::HashSet<&str> = self
            .candidates()
            .map(|(_, _, tr)| tr.url.as_str())
            .collect();
        self.in_order()
            .map(|(tier, _, tr)| TrackerStatus {
                url: tr.url.clone(),
                tier,
                health: match (tr.in_flight, tr.last) {
                    (true, _) => TrackerHealth::Announcing,
                    (false, Outcome::None) => TrackerHealth::NotContacted,
                    (false, Outcome::Ok) => TrackerHealth::Working,
                    (false, Outcome::Failed) => TrackerHealth::Failing,
                },
                last_error: tr.last_error.clone(),
                last_warning: tr.last_warning.clone(),
                consecutive_failures: tr.failures,
                next_announce_in: (!tr.in_flight && scheduled.contains(tr.url.as_str())).then(
                    || {
                        tr.not_before
                            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
                    },
                ),
                interval: tr.interval,
                last_peers: tr.last_peers,
                total_peers: tr.total_peers,
                seeders: tr.seeders,
                leechers: tr.leechers,
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "tiers_tests.rs"]
mod tests;
