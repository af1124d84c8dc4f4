//! The queue and the seeding limits: which torrents may run now, and which reached a seeding
//! limit. Pure: no actix, time is an argument; the root drives it (`root/policies.rs`) from the
//! statuses torrents publish and carries out what it decides.
//!
//! Owns: the queue order (position 0 first), each torrent's force-start flag, its seeding
//! limits, what it last published (its state's wish: download, seed or nothing; its counters),
//! when its payload last moved, and whether it is held.
//!
//! Decides, as transmission does (`download-queue-size`, `seed-queue-size`,
//! `queue-stalled-minutes`): walking the queue in order, a torrent that wants to download takes a
//! download slot while one is free (and a total slot, if that is limited), one that wants to
//! seed a seed slot; the others are held (`queued_download` / `queued_seed`: no dialling, no
//! accepting, no announce). A force-started torrent runs and takes no slot (qBittorrent's "force
//! resume"); a download that received nothing for `stalled_minutes` keeps running but leaves its
//! slot to the next one. A torrent that wants nothing (paused, checking, error) is held, so that
//! when it comes back it waits for the next decision instead of jumping the queue.

use std::time::{Duration, Instant};

use swarm_model::{QueueConfig, QueueMove, SeedLimits, SeedingConfig, TorrentState};
use swarm_wire::InfoHash;

/// What a torrent's published state asks of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Download,
    Seed,
    /// Paused, checking, stopped by an error: no slot.
    Nothing,
}

impl Want {
    pub fn of(state: TorrentState) -> Want {
        match state {
            TorrentState::Downloading | TorrentState::QueuedDownload => Want::Download,
            TorrentState::Seeding | TorrentState::QueuedSeed => Want::Seed,
            TorrentState::FetchingMetadata
            | TorrentState::CheckingQueued
            | TorrentState::Checking
            | TorrentState::Paused
            | TorrentState::Error => Want::Nothing,
        }
    }
}

/// A torrent's numbers as it last published them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Observed {
    pub downloaded: u64,
    pub uploaded: u64,
    /// The size when done: the ratio's base when nothing was downloaded (seeded from the start).
    pub wanted_bytes: u64,
    /// Seconds spent seeding, all time.
    pub seeding_secs: u64,
}

/// Which seeding limit a torrent reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LimitReached {
    Ratio(f64),
    SeedTime(u64),
    Idle(u64),
}

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitReached::Ratio(r) => write!(f, "reached its ratio limit of {r}"),
            LimitReached::SeedTime(m) => write!(f, "seeded for its limit of {m} minutes"),
            LimitReached::Idle(m) => write!(f, "was idle for its limit of {m} minutes"),
        }
    }
}

#[derive(Debug)]
struct Entry {
    ih: InfoHash,
    forced: bool,
    limits: SeedLimits,
    want: Want,
    seen: Observed,
    /// When its download counter last moved (or it was let run): stalled after a while.
    last_download: Instant,
    /// When payload last moved either way: idle after a while.
    last_payload: Instant,
    held: bool,
    /// A seeding limit was acted on; not again until it seeds anew.
    limit_done: bool,
    /// When the root started it (added, resumed): until it publishes a running state, its
    /// published one (still paused) is older than its wish.
    expected: Option<Instant>,
}

impl Entry {
    /// What the torrent published.
    fn observe(&mut self, state: TorrentState, seen: Observed, now: Instant) {
        let mut want = Want::of(state);
        // A check keeps the wish it interrupts (a verify while downloading keeps the slot; a
        // new torrent checks before it downloads), and a torrent just started shows its old
        // state for a moment.
        let started = self
            .expected
            .is_some_and(|t| now.saturating_duration_since(t) < EXPECT_FOR);
        let checking = matches!(state, TorrentState::Checking | TorrentState::CheckingQueued);
        if checking || (started && want == Want::Nothing) {
            want = self.want;
        } else {
            self.expected = None;
        }
        if seen.downloaded != self.seen.downloaded
            || (want == Want::Download) != (self.want == Want::Download)
        {
            self.last_download = now;
        }
        if seen.downloaded != self.seen.downloaded
            || seen.uploaded != self.seen.uploaded
            || (want == Want::Seed) != (self.want == Want::Seed)
        {
            self.last_payload = now;
        }
        if want != Want::Seed || state == TorrentState::QueuedSeed {
            // A seeding run ended (paused by its limit, or otherwise): the next one is judged.
            self.limit_done &= want == Want::Seed;
        }
        (self.want, self.seen) = (want, seen);
    }
}

/// How long a started torrent's wish outlives a published state that does not show it yet (the
/// torrent answers its start within milliseconds; this bounds a torrent that never does).
const EXPECT_FOR: Duration = Duration::from_secs(5);

/// What the queue decided in one pass.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Torrents whose hold changes: `(info-hash, held)`.
    pub holds: Vec<(InfoHash, bool)>,
    /// Torrents that reached a seeding limit (each once per seeding run).
    pub limits: Vec<(InfoHash, LimitReached)>,
}

pub struct Queue {
    cfg: QueueConfig,
    seeding: SeedingConfig,
    order: Vec<Entry>,
}

impl Queue {
    pub fn new(cfg: QueueConfig, seeding: SeedingConfig) -> Self {
        Queue {
            cfg,
            seeding,
            order: Vec::new(),
        }
    }

    pub fn config(&self) -> (QueueConfig, SeedingConfig) {
        (self.cfg, self.seeding)
    }

    pub fn set_config(&mut self, cfg: QueueConfig, seeding: SeedingConfig) {
        (self.cfg, self.seeding) = (cfg, seeding);
    }

    /// Whether any slot is limited: without, nothing is ever held.
    fn limited(&self) -> bool {
        let c = &self.cfg;
        c.max_active_downloads.is_some()
            || c.max_active_seeds.is_some()
            || c.max_active_total.is_some()
    }

    /// Appends a torrent at the end of the queue. Returns whether it starts held: it is checked
    /// first, so it waits for the decision after its check unless nothing is limited or it is
    /// forced.
    pub fn push(&mut self, ih: InfoHash, forced: bool, limits: SeedLimits, now: Instant) -> bool {
        self.remove(ih);
        let held = self.limited() && !forced;
        self.order.push(Entry {
            ih,
            forced,
            limits,
            want: Want::Nothing,
            seen: Observed::default(),
            last_download: now,
            last_payload: now,
            held,
            limit_done: false,
            expected: None,
        });
        held
    }

    /// The root is starting a torrent (adding or resuming it) that will want `want`: the next
    /// [`Queue::decide`] gives it a slot if one is free, before it shows that wish itself, so that
    /// it goes straight to running instead of through a queued state.
    pub fn expect(&mut self, ih: InfoHash, want: Want, now: Instant) {
        if let Some(e) = self.entry_mut(ih) {
            if e.want != want {
                (e.last_download, e.last_payload) = (now, now);
            }
            e.want = want;
            e.expected = Some(now);
        }
    }

    /// Whether the queue holds a torrent now.
    pub fn held(&self, ih: InfoHash) -> bool {
        self.entry(ih).is_some_and(|e| e.held)
    }

    pub fn remove(&mut self, ih: InfoHash) {
        self.order.retain(|e| e.ih != ih);
    }

    pub fn position(&self, ih: InfoHash) -> Option<u32> {
        self.order.iter().position(|e| e.ih == ih).map(|p| p as u32)
    }

    pub fn forced(&self, ih: InfoHash) -> bool {
        self.entry(ih).is_some_and(|e| e.forced)
    }

    pub fn limits(&self, ih: InfoHash) -> Option<SeedLimits> {
        self.entry(ih).map(|e| e.limits)
    }

    fn entry(&self, ih: InfoHash) -> Option<&Entry> {
        self.order.iter().find(|e| e.ih == ih)
    }

    fn entry_mut(&mut self, ih: InfoHash) -> Option<&mut Entry> {
        self.order.iter_mut().find(|e| e.ih == ih)
    }

    /// Moves a torrent; returns every torrent whose position changed, with its new one, or
    /// `None` if `ih` is not queued.
    pub fn move_to(&mut self, ih: InfoHash, to: QueueMove) -> Option<Vec<(InfoHash, u32)>> {
        let from = self.order.iter().position(|e| e.ih == ih)?;
        let last = self.order.len() - 1;
        let to = match to {
            QueueMove::Top => 0,
            QueueMove::Up => from.saturating_sub(1),
            QueueMove::Down => (from + 1).min(last),
            QueueMove::Bottom => last,
            QueueMove::To(n) => (n as usize).min(last),
        };
        let entry = self.order.remove(from);
        self.order.insert(to, entry);
        let (lo, hi) = (from.min(to), from.max(to));
        Some(
            (lo..=hi)
                .filter(|_| lo != hi)
                .map(|i| (self.order[i].ih, i as u32))
                .collect(),
        )
    }

    /// Force start on or off; `false` if `ih` is not queued.
    pub fn set_forced(&mut self, ih: InfoHash, forced: bool) -> bool {
        self.entry_mut(ih).map(|e| e.forced = forced).is_some()
    }

    /// A torrent's own seeding limits; a change lets a torrent that stopped at a limit be
    /// judged again.
    pub fn set_limits(&mut self, ih: InfoHash, limits: SeedLimits) -> bool {
        self.entry_mut(ih)
            .map(|e| {
                e.limits = limits;
                e.limit_done = false;
            })
            .is_some()
    }

    /// What one torrent published (the unit tests' way; the root uses [`Queue::observe_all`]).
    #[cfg(test)]
    pub fn observe(&mut self, ih: InfoHash, state: TorrentState, seen: Observed, now: Instant) {
        if let Some(e) = self.entry_mut(ih) {
            e.observe(state, seen, now);
        }
    }

    /// What every queued torrent published, as `look` finds it (`None`: not known, left as
    /// it was). One pass in queue order: with a thousand torrents, looking each one up in the
    /// queue as [`Queue::observe`] does cost the daemon 40 ms a second (measured).
    pub fn observe_all(
        &mut self,
        now: Instant,
        mut look: impl FnMut(InfoHash) -> Option<(TorrentState, Observed)>,
    ) {
        for e in &mut self.order {
            if let Some((state, seen)) = look(e.ih) {
                e.observe(state, seen, now);
            }
        }
    }

    /// One pass over the queue: who runs, who waits, who reached a seeding limit. As in
    /// transmission, a running torrent keeps its slot (a torrent moved ahead of it goes next,
    /// it does not stop it); only slots that are over the limit (a smaller limit, a download
    /// that became a seed) are taken back, from the end of the queue. Free slots then go to the
    /// waiting torrents in queue order.
    pub fn decide(&mut self, now: Instant) -> Decision {
        let limited = self.limited();
        let cfg = self.cfg;
        let stalled_after = cfg
            .stalled_minutes
            .map(|m| Duration::from_secs(u64::from(m) * 60));
        let mut slots = Slots::default();
        let mut run = vec![false; self.order.len()];
        // Running torrents first: they keep their slots while there are enough.
        for (i, e) in self.order.iter().enumerate() {
            let stalled = e.want == Want::Download
                && !e.held
                && stalled_after
                    .is_some_and(|d| now.saturating_duration_since(e.last_download) >= d);
            run[i] = !limited
                || e.forced
                || (!e.held && e.want != Want::Nothing && (stalled || slots.take(&cfg, e.want)));
        }
        // Then the waiting ones, in queue order, while slots are free.
        for (i, e) in self.order.iter().enumerate() {
            if !run[i] && e.held && e.want != Want::Nothing {
                run[i] = slots.take(&cfg, e.want);
            }
        }
        let mut decision = Decision::default();
        for (e, run) in self.order.iter_mut().zip(run) {
            if e.held == run {
                e.held = !run;
                if run {
                    e.last_download = now;
                    e.last_payload = now;
                }
                decision.holds.push((e.ih, e.held));
            }
            if e.want == Want::Seed && !e.held && !e.limit_done {
                let idle = now.saturating_duration_since(e.last_payload);
                if let Some(reached) = seed_limit_reached(&e.limits, &self.seeding, e.seen, idle) {
                    e.limit_done = true;
                    decision.limits.push((e.ih, reached));
                }
            }
        }
        decision
    }
}

/// Slots taken in one pass of [`Queue::decide`].
#[derive(Default)]
struct Slots {
    downloads: u32,
    seeds: u32,
}

impl Slots {
    /// Takes a slot for `want` if one is free.
    fn take(&mut self, cfg: &QueueConfig, want: Want) -> bool {
        let free = |max: Option<u32>, used: u32| max.is_none_or(|m| used < m);
        if !free(cfg.max_active_total, self.downloads + self.seeds) {
            return false;
        }
        let (max, used) = match want {
            Want::Download => (cfg.max_active_downloads, &mut self.downloads),
            Want::Seed => (cfg.max_active_seeds, &mut self.seeds),
            Want::Nothing => return false,
        };
        let ok = free(max, *used);
        *used += u32::from(ok);
        ok
    }
}

/// Whether a seeding torrent reached one of its limits (its own, or the session's).
pub fn seed_limit_reached(
    own: &SeedLimits,
    global: &SeedingConfig,
    seen: Observed,
    idle: Duration,
) -> Option<LimitReached> {
    if let Some(r) = own.ratio.resolve(global.ratio_limit) {
        // As transmission: the base is what was downloaded, or the size when nothing was.
        let base = if seen.downloaded > 0 {
            seen.downloaded
        } else {
            seen.wanted_bytes
        };
        if base > 0 && seen.uploaded as f64 >= r * base as f64 {
            return Some(LimitReached::Ratio(r));
        }
    }
    if let Some(m) = own.seed_time_minutes.resolve(global.seed_time_minutes) {
        if seen.seeding_secs >= m * 60 {
            return Some(LimitReached::SeedTime(m));
        }
    }
    if let Some(m) = own.idle_minutes.resolve(global.idle_minutes) {
        if idle >= Duration::from_secs(m * 60) {
            return Some(LimitReached::Idle(m));
        }
    }
    None
}

/// Orders saved torrents by their saved queue positions, those without one last (in the order
/// given): how a restarted daemon adds them back in queue order.
pub fn restore_order<T>(mut saved: Vec<(Option<u32>, T)>) -> Vec<T> {
    saved.sort_by_key(|(p, _)| p.unwrap_or(u32::MAX));
    saved.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests;
