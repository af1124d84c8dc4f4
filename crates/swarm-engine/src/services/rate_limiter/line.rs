//! The limiter's buckets and its waiting line, as plain data: who gets how many bytes, and when.
//! Generic over the reply handle `W` (a oneshot sender in the actor, a number in tests), and
//! driven by the caller's clock.
//!
//! Fairness: waiters queue per (torrent, direction), FIFO inside; the queues take turns, so a
//! torrent with 400 hungry peers cannot starve one with a single peer. A turn is as many grants
//! as the torrent's bandwidth priority weighs (low 1, normal 2, high 4), counted across serves
//! (a queue keeps its place until its turn is used up, as in deficit round robin): when bytes
//! are short, a high-priority torrent gets four times what a low one gets. A
//! grant is at most an equal share of the global bucket among everyone waiting in that
//! direction (but at least one block), so the first in line does not empty the bucket either.
//! A newcomer is answered on the spot only when nobody waits in its direction.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use swarm_wire::InfoHash;

use super::quota::{Direction, Grant, LimitSettings};
use crate::token_bucket::TokenBucket;

/// The smallest grant worth a message: one block. A waiter is served once this much (or its
/// whole `want`, if smaller) is available.
pub const MIN_GRANT: u64 = 16 * 1024;
/// Waiters held in all, and per torrent; past these the answer is `RetryAfter`.
pub const MAX_WAITERS: usize = 4096;
pub const MAX_WAITERS_PER_TORRENT: usize = 512;
const RETRY_WHEN_FULL: Duration = Duration::from_millis(500);

/// One second of rate, and at least two blocks so that a slow limit can still serve two waiters
/// in a row.
fn burst_for(rate: Option<u64>) -> u64 {
    rate.map_or(1, |r| r.max(2 * MIN_GRANT))
}

fn bucket(rate: Option<u64>) -> TokenBucket {
    TokenBucket::new(rate, burst_for(rate))
}

fn retune(b: &mut TokenBucket, rate: Option<u64>) {
    b.set_burst(burst_for(rate));
    b.set_rate(rate);
}

type Key = (InfoHash, Direction);

/// How a queue's turn went: it got grants and has more waiters (to the back of the turn), it is
/// empty (out of the turn), or its buckets held none (it keeps its place).
enum Turn {
    Served,
    Empty,
    Blocked,
}

struct Waiter<W> {
    want: u64,
    reply: W,
}

pub struct Line<W> {
    settings: LimitSettings,
    global: [TokenBucket; 2],
    /// Buckets of the torrents that have a limit of their own.
    torrents: HashMap<InfoHash, [TokenBucket; 2]>,
    queues: HashMap<Key, VecDeque<Waiter<W>>>,
    /// Queues with waiters, in turn order.
    turn: VecDeque<Key>,
    /// Grants left in the turn of the queue at the front (and of queues blocked mid-turn).
    credits: HashMap<Key, u32>,
    per_torrent: HashMap<InfoHash, usize>,
    per_dir: [usize; 2],
}

impl<W> Line<W> {
    pub fn new(settings: LimitSettings) -> Self {
        let mut line = Line {
            settings: LimitSettings::default(),
            global: [TokenBucket::unlimited(), TokenBucket::unlimited()],
            torrents: HashMap::new(),
            queues: HashMap::new(),
            turn: VecDeque::new(),
            credits: HashMap::new(),
            per_torrent: HashMap::new(),
            per_dir: [0, 0],
        };
        line.install(settings);
        line
    }

    pub fn waiting(&self) -> usize {
        self.per_dir.iter().sum()
    }

    /// New limits from now on. Waiters whose transfers are no longer limited are handed back,
    /// to be answered [`Grant::Unlimited`].
    pub fn apply(&mut self, settings: LimitSettings, now: Instant) -> Vec<W> {
        self.refill_all(now);
        self.install(settings);
        let freed: Vec<Key> = self
            .queues
            .keys()
            .filter(|(ih, dir)| !self.settings.is_limited(ih, *dir))
            .copied()
            .collect();
        let mut out = Vec::new();
        for key in freed {
            out.extend(self.remove_queue(&key).into_iter().map(|w| w.reply));
        }
        out
    }

    fn install(&mut self, settings: LimitSettings) {
        for dir in [Direction::Down, Direction::Up] {
            retune(&mut self.global[dir.index()], settings.global.get(dir));
        }
        self.torrents
            .retain(|ih, _| settings.torrents.contains_key(ih));
        for (ih, limits) in &settings.torrents {
            let b = self
                .torrents
                .entry(*ih)
                .or_insert_with(|| [bucket(limits.down), bucket(limits.up)]);
            retune(&mut b[0], limits.down);
            retune(&mut b[1], limits.up);
        }
        self.settings = settings;
    }

    /// A peer asks for `want` bytes. `Some`: answer now (the reply handle comes back);
    /// `None`: it waits in line, to be answered by a later [`Self::serve`].
    pub fn request(
        &mut self,
        info_hash: InfoHash,
        dir: Direction,
        want: u64,
        reply: W,
        now: Instant,
    ) -> Option<(W, Grant)> {
        let want = want.max(1);
        if !self.settings.is_limited(&info_hash, dir) {
            return Some((reply, Grant::Unlimited));
        }
        if self.per_dir[dir.index()] == 0 {
            self.refill(&info_hash, dir, now);
            if let Some(n) = self.grant(&info_hash, dir, want, 1) {
                return Some((reply, Grant::Bytes(n)));
            }
        }
        let mine = self.per_torrent.get(&info_hash).copied().unwrap_or(0);
        if self.waiting() >= MAX_WAITERS || mine >= MAX_WAITERS_PER_TORRENT {
            return Some((reply, Grant::RetryAfter(RETRY_WHEN_FULL)));
        }
        let key = (info_hash, dir);
        let queue = self.queues.entry(key).or_default();
        if queue.is_empty() {
            self.turn.push_back(key);
        }
        queue.push_back(Waiter { want, reply });
        *self.per_torrent.entry(info_hash).or_default() += 1;
        self.per_dir[dir.index()] += 1;
        None
    }

    /// Grants what the buckets hold now, queue by queue in turn. A queue that was served goes
    /// to the back of the turn; one that could not be (its own bucket is empty) keeps its place.
    pub fn serve(&mut self, now: Instant) -> Vec<(W, Grant)> {
        self.refill_all(now);
        let mut out = Vec::new();
        loop {
            let before = out.len();
            let mut kept = VecDeque::with_capacity(self.turn.len());
            let mut served = Vec::new();
            for key in std::mem::take(&mut self.turn) {
                match self.take_turn(&key, &mut out) {
                    Turn::Served => served.push(key),
                    Turn::Empty => {
                        self.queues.remove(&key);
                        self.credits.remove(&key);
                    }
                    Turn::Blocked => kept.push_back(key),
                }
            }
            kept.extend(served);
            self.turn = kept;
            if out.len() == before {
                return out;
            }
        }
    }

    /// One queue's turn: grants while its buckets allow, until the turn's credit (its weight)
    /// is used up; a turn cut short by empty buckets goes on at the next serve.
    fn take_turn(&mut self, key: &Key, out: &mut Vec<(W, Grant)>) -> Turn {
        let weight = self.settings.weight(&key.0).max(1);
        let mut credit = self.credits.get(key).copied().unwrap_or(weight);
        while credit > 0 {
            let head = self.queues.get(key).and_then(|q| q.front()).map(|w| w.want);
            let Some(want) = head else {
                return Turn::Empty;
            };
            let sharers = self.per_dir[key.1.index()];
            let granted = self.grant(&key.0, key.1, want, sharers);
            match (granted, self.pop_if(key, granted.is_some())) {
                (Some(n), Some(w)) => {
                    out.push((w.reply, Grant::Bytes(n)));
                    credit -= 1;
                }
                _ => break,
            }
        }
        if self.queues.get(key).is_none_or(|q| q.is_empty()) {
            return Turn::Empty;
        }
        if credit == 0 {
            self.credits.remove(key);
            Turn::Served
        } else {
            self.credits.insert(*key, credit);
            Turn::Blocked
        }
    }

    /// When the first waiter can be served, if anyone waits (valid right after `serve`).
    pub fn next_wake(&self) -> Option<Duration> {
        self.turn
            .iter()
            .filter_map(|key| {
                let want = self.queues.get(key)?.front()?.want;
                let floor = want.min(MIN_GRANT);
                let global = self.global[key.1.index()].time_until(floor);
                let own = self
                    .torrents
                    .get(&key.0)
                    .map_or(Duration::ZERO, |b| b[key.1.index()].time_until(floor));
                Some(global.max(own))
            })
            .min()
    }

    /// Drops waiters nobody listens to any more (their peer is gone).
    pub fn purge(&mut self, gone: impl Fn(&W) -> bool) {
        let keys: Vec<Key> = self.queues.keys().copied().collect();
        for key in keys {
            let Some(q) = self.queues.get_mut(&key) else {
                continue;
            };
            let before = q.len();
            q.retain(|w| !gone(&w.reply));
            let (dropped, empty) = (before - q.len(), q.is_empty());
            self.uncount(&key, dropped);
            if empty {
                self.remove_queue(&key);
            }
        }
    }

    /// Takes `min(want, share, what both buckets hold)` if that reaches the floor.
    fn grant(&mut self, ih: &InfoHash, dir: Direction, want: u64, sharers: usize) -> Option<u64> {
        let d = dir.index();
        let global = self.global[d].available();
        let own = self.torrents.get(ih).map_or(u64::MAX, |b| b[d].available());
        let share = (global / sharers.max(1) as u64).max(MIN_GRANT);
        let n = want.min(global).min(own).min(share);
        if n < want.min(MIN_GRANT) {
            return None;
        }
        self.global[d].take_up_to(n);
        if let Some(b) = self.torrents.get_mut(ih) {
            b[d].take_up_to(n);
        }
        Some(n)
    }

    fn refill(&mut self, ih: &InfoHash, dir: Direction, now: Instant) {
        self.global[dir.index()].refill(now);
        if let Some(b) = self.torrents.get_mut(ih) {
            b[dir.index()].refill(now);
        }
    }

    fn refill_all(&mut self, now: Instant) {
        for b in self
            .global
            .iter_mut()
            .chain(self.torrents.values_mut().flatten())
        {
            b.refill(now);
        }
    }

    fn pop_if(&mut self, key: &Key, pop: bool) -> Option<Waiter<W>> {
        if !pop {
            return None;
        }
        let w = self.queues.get_mut(key)?.pop_front()?;
        self.uncount(key, 1);
        Some(w)
    }

    fn remove_queue(&mut self, key: &Key) -> VecDeque<Waiter<W>> {
        self.turn.retain(|k| k != key);
        self.credits.remove(key);
        let q = self.queues.remove(key).unwrap_or_default();
        self.uncount(key, q.len());
        q
    }

    fn uncount(&mut self, key: &Key, n: usize) {
        self.per_dir[key.1.index()] -= n;
        if let Some(c) = self.per_torrent.get_mut(&key.0) {
            *c -= n;
            if *c == 0 {
                self.per_torrent.remove(&key.0);
            }
        }
    }
}

#[cfg(test)]
mod tests;
