//! The quota vocabulary shared by the [`RateLimiter`](super::RateLimiter) and the peer actors:
//! directions, grants, the limits as configured, the per-torrent [`QuotaGate`] a peer reads on
//! its hot path, and the peer's own [`Allowance`]. No actix here.
//!
//! Why a shared board with a lock (against "ownership, not locks"): two things must outlive a
//! limiter restart and be readable without a message per block — the configured limits (else a
//! crash would silently lift them) and the "is this torrent limited?" flags (else every peer
//! would need new flags after a restart). The board is written only on the control path
//! (settings, registration); the hot path reads one atomic per transfer and never locks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use swarm_wire::InfoHash;

/// Which way the bytes move, from our side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Down,
    Up,
}

impl Direction {
    pub(super) fn index(self) -> usize {
        match self {
            Direction::Down => 0,
            Direction::Up => 1,
        }
    }
}

/// The limiter's answer to a quota request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Spend up to this many bytes (at least one block's worth, or all of `want` if smaller),
    /// then ask again.
    Bytes(u64),
    /// No limit applies now: move bytes freely while the torrent's [`QuotaGate`] says so.
    Unlimited,
    /// The waiting line is full (or the limiter is restarting): ask again after this long.
    RetryAfter(Duration),
}

/// A limit per direction, bytes/s; `None` = unlimited. `Some(0)` is read as unlimited, like the
/// "0 = no limit" of most clients' settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub down: Option<u64>,
    pub up: Option<u64>,
}

impl Limits {
    pub fn new(down: Option<u64>, up: Option<u64>) -> Self {
        Limits {
            down: down.filter(|r| *r > 0),
            up: up.filter(|r| *r > 0),
        }
    }

    pub fn get(&self, dir: Direction) -> Option<u64> {
        match dir {
            Direction::Down => self.down,
            Direction::Up => self.up,
        }
    }

    pub fn is_none(&self) -> bool {
        self.down.is_none() && self.up.is_none()
    }
}

/// Every configured limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitSettings {
    pub global: Limits,
    pub torrents: HashMap<InfoHash, Limits>,
    /// Grants per turn in the waiting line of the torrents whose bandwidth priority is not
    /// normal ([`swarm_model::BandwidthPriority::weight`]).
    pub weights: HashMap<InfoHash, u32>,
}

impl LimitSettings {
    /// A torrent's grants per turn in the line.
    pub fn weight(&self, info_hash: &InfoHash) -> u32 {
        self.weights
            .get(info_hash)
            .copied()
            .unwrap_or(swarm_model::BandwidthPriority::Normal.weight())
    }

    /// Whether transfers of `info_hash` in `dir` are limited at all (globally or on their own).
    pub fn is_limited(&self, info_hash: &InfoHash, dir: Direction) -> bool {
        self.global.get(dir).is_some()
            || self
                .torrents
                .get(info_hash)
                .is_some_and(|l| l.get(dir).is_some())
    }
}

/// One torrent's "is a limit in force?" flags, read by its peers before each transfer.
#[derive(Clone, Debug, Default)]
pub struct QuotaGate(Arc<[AtomicBool; 2]>);

impl QuotaGate {
    /// One relaxed load: a flag flip reaches the peers a little late at worst, which costs a few
    /// blocks moved under the old regime; nothing depends on the exact moment.
    pub fn limited(&self, dir: Direction) -> bool {
        self.0[dir.index()].load(Ordering::Relaxed)
    }

    fn set(&self, dir: Direction, on: bool) {
        self.0[dir.index()].store(on, Ordering::Relaxed);
    }

    fn refresh(&self, settings: &LimitSettings, info_hash: &InfoHash) {
        for dir in [Direction::Down, Direction::Up] {
            self.set(dir, settings.is_limited(info_hash, dir));
        }
    }
}

#[derive(Default)]
struct BoardState {
    settings: LimitSettings,
    gates: HashMap<InfoHash, QuotaGate>,
}

/// The limits and the gates, created once by the root and shared by every limiter incarnation
/// and every torrent (see the module header for why it is shared).
#[derive(Clone, Default)]
pub struct QuotaBoard(Arc<Mutex<BoardState>>);

impl QuotaBoard {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BoardState> {
        // The state is plain data, valid after any panic: a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate of a torrent's peers (the same one for the torrent's whole life, across
    /// limiter and torrent restarts).
    pub fn gate(&self, info_hash: InfoHash) -> QuotaGate {
        let mut st = self.lock();
        let BoardState { settings, gates } = &mut *st;
        gates
            .entry(info_hash)
            .or_insert_with(|| {
                let gate = QuotaGate::default();
                gate.refresh(settings, &info_hash);
                gate
            })
            .clone()
    }

    pub fn settings(&self) -> LimitSettings {
        self.lock().settings.clone()
    }

    /// Applies new limits (through the limiter: it also owns the buckets) and flips the gates.
    pub(super) fn set_global(&self, limits: Limits) -> LimitSettings {
        let mut st = self.lock();
        st.settings.global = limits;
        let st = &*st;
        for (ih, gate) in &st.gates {
            gate.refresh(&st.settings, ih);
        }
        st.settings.clone()
    }

    pub(crate) fn set_torrent(
        &self,
        info_hash: InfoHash,
        limits: Limits,
        priority: swarm_model::BandwidthPriority,
    ) -> LimitSettings {
        let mut st = self.lock();
        if limits.is_none() {
            st.settings.torrents.remove(&info_hash);
        } else {
            st.settings.torrents.insert(info_hash, limits);
        }
        if priority == swarm_model::BandwidthPriority::Normal {
            st.settings.weights.remove(&info_hash);
        } else {
            st.settings.weights.insert(info_hash, priority.weight());
        }
        let st = &*st;
        if let Some(gate) = st.gates.get(&info_hash) {
            gate.refresh(&st.settings, &info_hash);
        }
        st.settings.clone()
    }

    /// The torrent is removed for good: its limits and gate go.
    pub(super) fn forget(&self, info_hash: &InfoHash) -> LimitSettings {
        let mut st = self.lock();
        st.settings.torrents.remove(info_hash);
        st.settings.weights.remove(info_hash);
        st.gates.remove(info_hash);
        st.settings.clone()
    }
}

/// What a peer may do with `n` bytes it wants to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Move them (the allowance is already charged).
    Go,
    /// Not enough allowance: send `RequestQuota { want }` to the limiter and hold the transfer.
    Ask(u64),
    /// A request is already out: hold the transfer until its answer.
    Wait,
}

/// A quota request batch: big enough that a peer at full speed asks a few times per second.
pub const DEFAULT_BATCH: u64 = 256 * 1024;

/// One peer's quota for one direction: spent locally, topped up by the limiter in batches.
#[derive(Clone, Debug)]
pub struct Allowance {
    gate: QuotaGate,
    dir: Direction,
    bytes: u64,
    asking: bool,
    batch: u64,
}

impl Allowance {
    pub fn new(gate: QuotaGate, dir: Direction) -> Self {
        Allowance {
            gate,
            dir,
            bytes: 0,
            asking: false,
            batch: DEFAULT_BATCH,
        }
    }

    pub fn with_batch(mut self, batch: u64) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Called before moving `n` bytes.
    pub fn spend(&mut self, n: u64) -> Spend {
        if !self.gate.limited(self.dir) {
            return Spend::Go;
        }
        if self.bytes >= n {
            self.bytes -= n;
            return Spend::Go;
        }
        if self.asking {
            return Spend::Wait;
        }
        self.asking = true;
        Spend::Ask(self.batch.max(n))
    }

    /// The limiter answered. `Some(delay)`: ask again after it (a `RetryAfter`, or the limiter
    /// was gone: pass `None` as the grant). Then retry the held transfers with [`Self::spend`].
    pub fn granted(&mut self, grant: Option<Grant>) -> Option<Duration> {
        self.asking = false;
        match grant {
            Some(Grant::Bytes(n)) => {
                self.bytes = self.bytes.saturating_add(n);
                None
            }
            Some(Grant::Unlimited) => None,
            Some(Grant::RetryAfter(d)) => Some(d),
            None => Some(Duration::from_secs(1)),
        }
    }

    /// Bytes left to spend before asking again.
    pub fn remaining(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IH: InfoHash = InfoHash([1; 20]);

    #[test]
    fn gates_follow_global_and_torrent_limits() {
        let board = QuotaBoard::new();
        let gate = board.gate(IH);
        let other = board.gate(InfoHash([2; 20]));
        assert!(!gate.limited(Direction::Up));
        board.set_torrent(IH, Limits::new(None, Some(1000)), Default::default());
        assert!(gate.limited(Direction::Up));
        assert!(!gate.limited(Direction::Down));
        assert!(!other.limited(Direction::Up));
        board.set_global(Limits::new(Some(5000), Some(0)));
        assert!(gate.limited(Direction::Down) && other.limited(Direction::Down));
        assert!(!other.limited(Direction::Up), "0 means unlimited");
        board.set_torrent(IH, Limits::default(), Default::default());
        assert!(!gate.limited(Direction::Up));
        // A gate handed out later starts with the right flags.
        assert!(board.gate(InfoHash([3; 20])).limited(Direction::Down));
    }

    #[test]
    fn an_allowance_asks_once_then_spends_locally() {
        let board = QuotaBoard::new();
        let mut a = Allowance::new(board.gate(IH), Direction::Up).with_batch(100);
        assert_eq!(a.spend(40), Spend::Go, "unlimited: no asking at all");
        board.set_global(Limits::new(None, Some(10)));
        assert_eq!(a.spend(40), Spend::Ask(100));
        assert_eq!(a.spend(40), Spend::Wait);
        assert_eq!(a.granted(Some(Grant::Bytes(60))), None);
        assert_eq!(a.spend(40), Spend::Go);
        assert_eq!(a.spend(40), Spend::Ask(100));
        assert_eq!(
            a.granted(Some(Grant::RetryAfter(Duration::from_millis(5)))),
            Some(Duration::from_millis(5))
        );
        assert_eq!(a.granted(None), Some(Duration::from_secs(1)));
        assert_eq!(
            a.spend(400),
            Spend::Ask(400),
            "asks for at least one transfer"
        );
        a.granted(Some(Grant::Bytes(16)));
        assert_eq!(a.remaining(), 36);
    }
}
