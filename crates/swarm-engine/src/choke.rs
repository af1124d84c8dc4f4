//! # The choking decision — pure, no actix, no I/O, nothing of the actor layer
//!
//! Who gets an upload slot, across ALL torrents at once. The [`Choker`](crate::services::choker)
//! actor collects a [`PeerSnapshot`] of every connected peer from every torrent every 10 s (and on
//! demand), calls [`ChokeState::rechoke`], and tells each torrent its [`TorrentDecision`]. The
//! only state kept between rounds is in [`ChokeState`]: who holds the optimistic slot and since
//! when, who already had an optimistic turn in the current cycle, and the round-robin queue.
//!
//! ## The rules
//! - **Only interested peers take slots.** A peer that does not want our data is always choked.
//! - **Leeching torrents** rank by the rate the peer gives us (tit-for-tat). **Seeding torrents**
//!   rank by the rate we upload to the peer ([`SeedingMode::ByUploadRate`], the fastest takers
//!   spread our pieces fastest) or take turns ([`SeedingMode::RoundRobin`]: a peer keeps a regular
//!   slot for [`ChokeConfig::round_robin_turn`], then goes behind everyone who is waiting).
//! - **Stability.** A peer holding a regular slot gets a 10 % bonus on its rate and wins exact
//!   ties, then the lower key wins: equal or noisy rates never make slots flap between rounds.
//! - **Snubbing.** A peer that is unchoking us, while we are interested, and has sent no block for
//!   [`ChokeConfig::snub_after`] is snubbed: it loses its regular slot (and the slot stays free
//!   rather than going to a worse peer; the optimistic draw may still pick it).
//! - **Optimistic unchoke.** One slot per torrent (when it has at least two, or when its only
//!   candidates are snubbed) goes to a peer outside the regular set, drawn at random and rotated
//!   every [`ChokeConfig::optimistic_interval`]. Draws go only to peers that have not had a turn in
//!   the current cycle (the cycle restarts when everyone had one), so every peer gets a turn
//!   within as many rotations as there are candidates; peers connected for less than
//!   [`ChokeConfig::new_peer_age`] weigh [`ChokeConfig::new_peer_weight`] (×3) in the draw, since a
//!   new peer has nothing to trade yet and this is its way in. An optimistic peer that ranks into
//!   the regular set is promoted and a new optimistic is drawn at once.
//!
//! ## Slots: per torrent and global
//! [`ChokeConfig::slots_per_torrent`] caps each torrent, optimistic slot included (the classic
//! 4 = 3 regular + 1 optimistic). A torrent *wants* `min(cap, regular candidates + 1)` slots (the
//! `+ 1` only when some interested peer is left over for the optimistic slot). With
//! [`ChokeConfig::global_slots`] set and the sum of wants above it, slots are split **max-min
//! fair**: slots are dealt one at a time round the torrents, skipping those whose want is met,
//! so a torrent that wants little gets all it wants and the rest share equally. The odd slots of
//! an uneven split go first to the torrents with more peers unchoked right now, then by
//! info-hash: the split, like the ranking, does not flap. Leeching and seeding torrents count
//! alike. A torrent that did not report in time is left out of the round: it keeps its peers as
//! they are, and its slots are not counted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::Rng;
use swarm_wire::InfoHash;

/// A torrent's name for one of its peers (the torrent hands them out; they are also the peers'
/// supervision child ids). The decision only compares them and hands them back, so the type
/// lives here, below the actors that use it: this file imports nothing of theirs.
pub type PeerKey = u64;

/// How a currently unchoked peer's rate is boosted in the ranking, in percent: a challenger must
/// be clearly faster to take its slot, so measurement noise does not swap peers every round.
const INCUMBENT_BONUS_PERCENT: u64 = 10;

/// How seeding torrents pick their regular peers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SeedingMode {
    /// The peers we upload to fastest.
    #[default]
    ByUploadRate,
    /// Every interested peer in turn.
    RoundRobin,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChokeConfig {
    /// Upload slots per torrent, the optimistic one included. 0 uploads nothing.
    pub slots_per_torrent: usize,
    /// Upload slots across all torrents; `None` = only the per-torrent cap.
    pub global_slots: Option<usize>,
    pub seeding_mode: SeedingMode,
    /// How long an optimistic unchoke lasts (3 rounds of 10 s).
    pub optimistic_interval: Duration,
    /// How long a peer keeps a regular slot in [`SeedingMode::RoundRobin`].
    pub round_robin_turn: Duration,
    /// No block for this long, while unchoked by the peer and interested in it: snubbed.
    pub snub_after: Duration,
    /// Peers connected for less than this are "new" in the optimistic draw.
    pub new_peer_age: Duration,
    /// The weight of a new peer in the optimistic draw (others weigh 1).
    pub new_peer_weight: u32,
}

impl Default for ChokeConfig {
    fn default() -> Self {
        ChokeConfig {
            slots_per_torrent: 4,
            global_slots: None,
            seeding_mode: SeedingMode::ByUploadRate,
            optimistic_interval: Duration::from_secs(30),
            round_robin_turn: Duration::from_secs(30),
            snub_after: Duration::from_secs(60),
            new_peer_age: Duration::from_secs(60),
            new_peer_weight: 3,
        }
    }
}

/// One connected peer as its torrent sees it when the round starts. Durations, not instants, so
/// that the snapshot means the same thing wherever it is read.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSnapshot {
    pub key: PeerKey,
    /// The peer is interested in our pieces.
    pub interested: bool,
    /// We are choking the peer right now.
    pub am_choking: bool,
    /// The peer holds our optimistic slot right now (as the torrent last applied it).
    pub is_optimistic: bool,
    /// Bytes/s the peer sends us.
    pub download_rate: u64,
    /// Bytes/s we send the peer.
    pub upload_rate: u64,
    pub connected_for: Duration,
    /// Since the last block the peer sent us; `None`: never.
    pub last_piece_ago: Option<Duration>,
    /// How long the peer has been unchoking us; `None`: it is choking us.
    pub unchoked_us_for: Option<Duration>,
    /// How long we have been interested in the peer; `None`: we are not.
    pub interested_for: Option<Duration>,
}

impl PeerSnapshot {
    /// A choked, uninterested peer that has just connected; fill in the rest.
    pub fn new(key: PeerKey) -> Self {
        PeerSnapshot {
            key,
            interested: false,
            am_choking: true,
            is_optimistic: false,
            download_rate: 0,
            upload_rate: 0,
            connected_for: Duration::ZERO,
            last_piece_ago: None,
            unchoked_us_for: None,
            interested_for: None,
        }
    }

    /// We have waited `snub_after` for a block while the peer let us ask and we wanted to. The
    /// clock starts at the latest of: connection, their unchoke, our interest, their last block.
    pub fn is_snubbed(&self, snub_after: Duration) -> bool {
        let (Some(unchoked), Some(interested)) = (self.unchoked_us_for, self.interested_for) else {
            return false;
        };
        let waited = [Some(unchoked), Some(interested), Some(self.connected_for)]
            .into_iter()
            .chain([self.last_piece_ago])
            .flatten()
            .min()
            .unwrap_or(Duration::ZERO);
        waited >= snub_after
    }
}

/// One torrent's input to a round.
#[derive(Clone, Debug)]
pub struct TorrentPeers {
    pub info_hash: InfoHash,
    pub seeding: bool,
    /// The torrent's own cap, instead of [`ChokeConfig::slots_per_torrent`].
    pub slots: Option<usize>,
    pub peers: Vec<PeerSnapshot>,
}

/// One torrent's output of a round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TorrentDecision {
    /// Every peer to unchoke, the optimistic one included, sorted; all others are choked.
    pub unchoke: Vec<PeerKey>,
    /// The optimistic unchoke (also in `unchoke`).
    pub optimistic: Option<PeerKey>,
    /// Peers found snubbing us, sorted (the torrent may stop requesting from them).
    pub snubbed: Vec<PeerKey>,
}

impl TorrentDecision {
    /// The choke orders to send; see [`changes`].
    pub fn changes(
        &self,
        current: impl IntoIterator<Item = (PeerKey, bool)>,
    ) -> Vec<(PeerKey, bool)> {
        changes(&self.unchoke, current)
    }
}

/// The choke orders that carry out a decision: `(peer, true = choke)` for each peer in `current`
/// (`(key, am_choking)`) whose state differs from `unchoke` (sorted). Peers the decision does
/// not name are choked (a peer that connected after the snapshot starts choked anyway).
pub fn changes(
    unchoke: &[PeerKey],
    current: impl IntoIterator<Item = (PeerKey, bool)>,
) -> Vec<(PeerKey, bool)> {
    current
        .into_iter()
        .filter_map(|(key, am_choking)| {
            let choke = unchoke.binary_search(&key).is_err();
            (choke != am_choking).then_some((key, choke))
        })
        .collect()
}

/// What one torrent remembers between rounds.
#[derive(Debug, Default)]
struct Memory {
    /// The optimistic peer and when its turn began.
    optimistic: Option<(PeerKey, Instant)>,
    /// Peers that had an optimistic turn in the current cycle.
    had_turn: HashSet<PeerKey>,
    /// Peers holding a regular slot, and since when (round robin turns).
    regular_since: HashMap<PeerKey, Instant>,
    /// When each peer's last regular slot ended (round robin queue order).
    turn_ended: HashMap<PeerKey, Instant>,
}

/// The choker's memory across rounds. Losing it (a Choker restart) costs one optimistic rotation
/// and the round-robin order, nothing else: the rest comes from the snapshots.
#[derive(Debug, Default)]
pub struct ChokeState {
    torrents: HashMap<InfoHash, Memory>,
}

/// One torrent's candidates, ranked, and how many slots it wants.
struct Plan<'a> {
    input: &'a TorrentPeers,
    /// Interested peers, by key.
    interested: Vec<&'a PeerSnapshot>,
    /// Interested, not snubbed, best first.
    ranked: Vec<PeerKey>,
    snubbed: Vec<PeerKey>,
    unchoked_now: usize,
    want: usize,
}

impl ChokeState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops what is remembered about a torrent (it was removed or unregistered).
    pub fn forget(&mut self, info_hash: &InfoHash) {
        self.torrents.remove(info_hash);
    }

    /// One round: who is unchoked in each torrent of `torrents`. `now` drives the optimistic and
    /// round-robin clocks; `rng` the optimistic draw (seeded in tests).
    pub fn rechoke<R: Rng + ?Sized>(
        &mut self,
        cfg: &ChokeConfig,
        torrents: &[TorrentPeers],
        now: Instant,
        rng: &mut R,
    ) -> BTreeMap<InfoHash, TorrentDecision> {
        let plans: Vec<Plan> = torrents
            .iter()
            .map(|t| {
                let mem = self.torrents.entry(t.info_hash).or_default();
                mem.sync(t, now);
                plan(cfg, t, mem, now)
            })
            .collect();
        let slots = split_slots(cfg.global_slots, &plans);
        let mut out = BTreeMap::new();
        for (plan, slots) in plans.iter().zip(slots) {
            let mem = self.torrents.entry(plan.input.info_hash).or_default();
            let decision = decide(cfg, plan, slots, mem, now, rng);
            out.insert(plan.input.info_hash, decision);
        }
        out
    }
}

impl Memory {
    /// Forgets peers that are gone and reconciles with what the torrent reports (after a
    /// restart the memory is empty and the snapshots are the truth).
    fn sync(&mut self, t: &TorrentPeers, now: Instant) {
        let present: HashSet<PeerKey> = t.peers.iter().map(|p| p.key).collect();
        self.had_turn.retain(|k| present.contains(k));
        self.turn_ended.retain(|k, _| present.contains(k));
        self.regular_since.retain(|k, _| present.contains(k));
        if self.optimistic.is_some_and(|(k, _)| !present.contains(&k)) {
            self.optimistic = None;
        }
        for p in &t.peers {
            if p.am_choking {
                self.regular_since.remove(&p.key);
            } else if !p.is_optimistic && self.optimistic.map(|(k, _)| k) != Some(p.key) {
                self.regular_since.entry(p.key).or_insert(now);
            }
        }
        if self.optimistic.is_none() {
            if let Some(p) = t.peers.iter().find(|p| p.is_optimistic && !p.am_choking) {
                self.optimistic = Some((p.key, now));
            }
        }
    }
}

fn plan<'a>(cfg: &ChokeConfig, t: &'a TorrentPeers, mem: &Memory, now: Instant) -> Plan<'a> {
    let mut interested: Vec<&PeerSnapshot> = t.peers.iter().filter(|p| p.interested).collect();
    interested.sort_by_key(|p| p.key);
    let mut snubbed: Vec<PeerKey> = t
        .peers
        .iter()
        .filter(|p| p.is_snubbed(cfg.snub_after))
        .map(|p| p.key)
        .collect();
    snubbed.sort_unstable();
    let mut eligible: Vec<&PeerSnapshot> = interested
        .iter()
        .copied()
        .filter(|p| snubbed.binary_search(&p.key).is_err())
        .collect();
    match (t.seeding, cfg.seeding_mode) {
        (false, _) => sort_by_rate(&mut eligible, mem, |p| p.download_rate),
        (true, SeedingMode::ByUploadRate) => sort_by_rate(&mut eligible, mem, |p| p.upload_rate),
        (true, SeedingMode::RoundRobin) => sort_round_robin(&mut eligible, cfg, mem, now),
    }
    let (n, regular) = (interested.len(), eligible.len());
    let want = t
        .slots
        .unwrap_or(cfg.slots_per_torrent)
        .min(regular + usize::from(n > regular));
    Plan {
        input: t,
        ranked: eligible.iter().map(|p| p.key).collect(),
        interested,
        snubbed,
        unchoked_now: t.peers.iter().filter(|p| !p.am_choking).count(),
        want,
    }
}

/// Fastest first. A peer holding a regular slot (not the optimistic one: it must earn its
/// promotion) gets the incumbent bonus and wins exact ties, then the lower key wins: equal or
/// noisy rates never make slots flap.
fn sort_by_rate(peers: &mut [&PeerSnapshot], mem: &Memory, rate: impl Fn(&PeerSnapshot) -> u64) {
    let incumbent = |p: &PeerSnapshot| mem.regular_since.contains_key(&p.key);
    let score = |p: &PeerSnapshot| {
        let r = rate(p);
        if incumbent(p) {
            r.saturating_add(r.saturating_mul(INCUMBENT_BONUS_PERCENT) / 100)
        } else {
            r
        }
    };
    peers.sort_by(|a, b| {
        score(b)
            .cmp(&score(a))
            .then(incumbent(b).cmp(&incumbent(a)))
            .then(a.key.cmp(&b.key))
    });
}

/// Peers within their turn first (they keep it), then whoever waited longest for one: never
/// served, then the earliest turn end. A peer whose turn is over queues as if it ended now.
fn sort_round_robin(peers: &mut [&PeerSnapshot], cfg: &ChokeConfig, mem: &Memory, now: Instant) {
    let rank = |p: &PeerSnapshot| match mem.regular_since.get(&p.key) {
        Some(since) if now.saturating_duration_since(*since) < cfg.round_robin_turn => {
            (0, Some(*since))
        }
        Some(_) => (1, Some(now)),
        None => (1, mem.turn_ended.get(&p.key).copied()),
    };
    peers.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.key.cmp(&b.key)));
}

/// Max-min fair split of `global` slots over the torrents' wants (see the module header).
fn split_slots(global: Option<usize>, plans: &[Plan]) -> Vec<usize> {
    let wants: Vec<usize> = plans.iter().map(|p| p.want).collect();
    let Some(mut left) = global else {
        return wants;
    };
    if wants.iter().sum::<usize>() <= left {
        return wants;
    }
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by(|&a, &b| {
        plans[b]
            .unchoked_now
            .cmp(&plans[a].unchoked_now)
            .then(plans[a].input.info_hash.cmp(&plans[b].input.info_hash))
    });
    let mut got = vec![0; plans.len()];
    // One slot per torrent per pass: at most `global` iterations of useful work.
    while left > 0 {
        let mut dealt = false;
        for &i in &order {
            if left > 0 && got[i] < wants[i] {
                got[i] += 1;
                left -= 1;
                dealt = true;
            }
        }
        if !dealt {
            break;
        }
    }
    got
}

fn decide<R: Rng + ?Sized>(
    cfg: &ChokeConfig,
    plan: &Plan,
    slots: usize,
    mem: &mut Memory,
    now: Instant,
    rng: &mut R,
) -> TorrentDecision {
    let n = plan.interested.len();
    let (regular, optimistic): (Vec<PeerKey>, Option<PeerKey>) = if slots == 0 {
        (Vec::new(), None)
    } else if n <= slots && plan.ranked.len() == n {
        // Room for every interested peer and none is snubbed: nobody needs an optimistic turn.
        (plan.ranked.clone(), None)
    } else {
        let regular_slots = if slots >= 2 { slots - 1 } else { slots };
        let take = regular_slots.min(plan.ranked.len());
        let regular = plan.ranked[..take].to_vec();
        let optimistic = if take < slots {
            pick_optimistic(cfg, plan, &regular, mem, now, rng)
        } else {
            None
        };
        (regular, optimistic)
    };

    for key in mem.regular_since.keys().copied().collect::<Vec<_>>() {
        if !regular.contains(&key) {
            mem.regular_since.remove(&key);
            mem.turn_ended.insert(key, now);
        }
    }
    for key in &regular {
        mem.regular_since.entry(*key).or_insert(now);
        mem.turn_ended.remove(key);
    }
    if optimistic.is_none() {
        mem.optimistic = None;
    }

    let mut unchoke = regular;
    unchoke.extend(optimistic);
    unchoke.sort_unstable();
    TorrentDecision {
        unchoke,
        optimistic,
        snubbed: plan.snubbed.clone(),
    }
}

/// Keeps the current optimistic peer until its turn is over, else draws the next one.
fn pick_optimistic<R: Rng + ?Sized>(
    cfg: &ChokeConfig,
    plan: &Plan,
    regular: &[PeerKey],
    mem: &mut Memory,
    now: Instant,
    rng: &mut R,
) -> Option<PeerKey> {
    let pool: Vec<&PeerSnapshot> = plan
        .interested
        .iter()
        .copied()
        .filter(|p| !regular.contains(&p.key))
        .collect();
    let current = mem
        .optimistic
        .filter(|(k, _)| pool.iter().any(|p| p.key == *k));
    if let Some((key, since)) = current {
        if now.saturating_duration_since(since) < cfg.optimistic_interval {
            return Some(key);
        }
    }
    let pick = draw(cfg, &pool, current.map(|(k, _)| k), &mut mem.had_turn, rng)?;
    mem.optimistic = Some((pick, now));
    Some(pick)
}

/// A weighted draw among the peers that have not had a turn in this cycle, `outgoing` (the
/// peer whose turn just ended) excluded while anyone else is waiting.
fn draw<R: Rng + ?Sized>(
    cfg: &ChokeConfig,
    pool: &[&PeerSnapshot],
    outgoing: Option<PeerKey>,
    had_turn: &mut HashSet<PeerKey>,
    rng: &mut R,
) -> Option<PeerKey> {
    let others = || pool.iter().copied().filter(|p| Some(p.key) != outgoing);
    let mut fresh: Vec<&PeerSnapshot> = others().filter(|p| !had_turn.contains(&p.key)).collect();
    if fresh.is_empty() {
        // Everyone had a turn: a new cycle begins (the outgoing peer counts as served in it).
        had_turn.clear();
        had_turn.extend(outgoing);
        fresh = others().collect();
    }
    if fresh.is_empty() {
        return outgoing;
    }
    let weight = |p: &PeerSnapshot| {
        if p.connected_for < cfg.new_peer_age {
            u64::from(cfg.new_peer_weight.max(1))
        } else {
            1
        }
    };
    let total: u64 = fresh.iter().map(|p| weight(p)).sum();
    let mut ticket = rng.gen_range(0..total);
    let mut pick = fresh[fresh.len() - 1].key;
    for p in &fresh {
        let w = weight(p);
        if ticket < w {
            pick = p.key;
            break;
        }
        ticket -= w;
    }
    had_turn.insert(pick);
    Some(pick)
}

#[cfg(test)]
mod tests;
