//! # Choker — global service: who is unchoked, across all torrents
//!
//! Owns: the registry of live torrents (where to ask for peers, where to send decisions), the
//! choking settings, and the [`ChokeState`] memory (optimistic turns, round-robin queue). The
//! decision itself is pure code in [`crate::choke`]; this actor only gathers its input, runs it
//! on a clock, and delivers the result.
//!
//! Takes: [`RegisterTorrent`] / [`UnregisterTorrent`] from torrents, [`RechokeNow`] from torrents
//! (a peer joined, left, became interested; the torrent completed), [`SetChokerConfig`] from the
//! control path, [`GetChokerStats`], and `Terminate` from its supervisor.
//! Sends: [`CollectPeers`] to each torrent at the start of a round (request/response, bounded by
//! `collect_timeout`: a torrent busy with blocks misses the round and keeps its peers as they
//! are, it never stalls the others), then [`ChokeDecision`] to each torrent that answered.
//!
//! ## One round (every `interval`, 10 s)
//! ```text
//! Choker ──CollectPeers──► Torrent × N        (all at once, each bounded by collect_timeout)
//!        ◄──PeersReport{seeding, peers}───
//! ChokeState::rechoke(all reports)            (pure: ranking, slots, snubbing, optimistic)
//! Choker ──ChokeDecision{unchoke, optimistic, snubbed}──► each torrent that answered
//! Torrent: for (peer, choke) in decision.changes(current) → ToPeer::Choke(choke)
//! ```
//! `RechokeNow` runs an extra round at once, or, if a round ran less than `min_extra_gap` (1 s)
//! ago or is running, one round when the gap has passed: a burst of requests costs one round.
//!
//! ## For the torrent (wiring)
//! - On going live: `RegisterTorrent { info_hash, seeding, to, collect }` (`do_send`). It is
//!   idempotent: re-send it every 10 s or so (and when `seeding` flips), which is how the
//!   registry refills after a Choker restart. Only a *new* registration triggers a round.
//! - On pause, removal or stop: `UnregisterTorrent`.
//! - Peer connected / disconnected / `Interested(_)` changed / torrent completed: `RechokeNow`
//!   with `try_send` (a full mailbox means a round is coming anyway; dropping it is harmless).
//! - Between decisions the torrent leaves choke states alone, except to choke a peer that lost
//!   interest if it likes; the next decision catches up either way.
//!
//! Supervised by: the root (permanent). A crash costs the optimistic rotation and round-robin
//! order (rebuilt from the snapshots, where the torrent reports `is_optimistic`) and at most one
//! registration interval of no decisions: meanwhile every peer keeps its current choke state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::InfoHash;

use crate::choke::{ChokeConfig, ChokeState, PeerKey, PeerSnapshot, TorrentDecision, TorrentPeers};

#[derive(Clone, Debug, PartialEq)]
pub struct ChokerConfig {
    /// Time between scheduled rounds.
    pub interval: Duration,
    /// How long a torrent has to answer [`CollectPeers`].
    pub collect_timeout: Duration,
    /// Least time between the start of one round and an extra round ([`RechokeNow`]).
    pub min_extra_gap: Duration,
    pub choke: ChokeConfig,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        ChokerConfig {
            interval: Duration::from_secs(10),
            collect_timeout: Duration::from_secs(2),
            min_extra_gap: Duration::from_secs(1),
            choke: ChokeConfig::default(),
        }
    }
}

/// A torrent joins the rounds (or refreshes its registration).
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterTorrent {
    pub info_hash: InfoHash,
    pub seeding: bool,
    pub to: Recipient<ChokeDecision>,
    pub collect: Recipient<CollectPeers>,
}

/// A torrent leaves the rounds; its peers keep their last state (the torrent chokes them all
/// itself if it pauses).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnregisterTorrent {
    pub info_hash: InfoHash,
}

/// The Choker asks a torrent for a snapshot of its connected peers.
#[derive(Message)]
#[rtype(result = "PeersReport")]
pub struct CollectPeers;

/// A torrent's answer to [`CollectPeers`]: one snapshot per peer whose handshake is done.
#[derive(Clone, Debug, Default)]
pub struct PeersReport {
    pub seeding: bool,
    /// The torrent's own upload slots (`None`: the session's `slots_per_torrent`).
    pub slots: Option<usize>,
    pub peers: Vec<PeerSnapshot>,
}

/// The round's verdict for one torrent: unchoke exactly `unchoke` (sorted), choke the others.
#[derive(Message, Clone, Debug, Default, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct ChokeDecision {
    pub unchoke: Vec<PeerKey>,
    /// The optimistic unchoke (also in `unchoke`); the torrent reports it back as
    /// `PeerSnapshot::is_optimistic`.
    pub optimistic: Option<PeerKey>,
    /// Peers snubbing us (sorted): worth fewer requests.
    pub snubbed: Vec<PeerKey>,
}

impl ChokeDecision {
    /// The choke orders to send: `(peer, true = choke)` for each `(key, am_choking)` in
    /// `current` whose state differs from the decision; see [`crate::choke::changes`].
    pub fn changes(
        &self,
        current: impl IntoIterator<Item = (PeerKey, bool)>,
    ) -> Vec<(PeerKey, bool)> {
        crate::choke::changes(&self.unchoke, current)
    }
}

impl From<TorrentDecision> for ChokeDecision {
    fn from(d: TorrentDecision) -> Self {
        ChokeDecision {
            unchoke: d.unchoke,
            optimistic: d.optimistic,
            snubbed: d.snubbed,
        }
    }
}

/// Something changed that deserves a round before the next tick.
#[derive(Message, Clone, Copy, Debug, Default)]
#[rtype(result = "()")]
pub struct RechokeNow;

/// New settings, from the next round on (a changed interval restarts the clock).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetChokerConfig(pub ChokerConfig);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChokerStats {
    pub registered: usize,
    pub rounds: u64,
    /// Torrents that did not answer a round in time, all rounds together.
    pub missed_reports: u64,
}

#[derive(Message)]
#[rtype(result = "ChokerStats")]
pub struct GetChokerStats;

struct Registered {
    seeding: bool,
    to: Recipient<ChokeDecision>,
    collect: Recipient<CollectPeers>,
}

pub struct Choker {
    cfg: ChokerConfig,
    state: ChokeState,
    torrents: HashMap<InfoHash, Registered>,
    rng: StdRng,
    link: ChildLink,
    ticker: Option<SpawnHandle>,
    /// An extra round waiting for `min_extra_gap`.
    extra: Option<SpawnHandle>,
    in_round: bool,
    /// A round was asked for while one was running.
    pending: bool,
    last_round: Option<Instant>,
    stats: ChokerStats,
}

/// What a torrent answered, or why not.
type Reply = Result<PeersReport, Miss>;

enum Miss {
    Timeout,
    Gone,
}

impl Choker {
    pub fn new(cfg: ChokerConfig, link: ChildLink) -> Self {
        Self::with_rng(cfg, StdRng::from_entropy(), link)
    }

    /// With a given random source for the optimistic draw (tests seed it).
    pub fn with_rng(cfg: ChokerConfig, rng: StdRng, link: ChildLink) -> Self {
        Choker {
            cfg,
            state: ChokeState::new(),
            torrents: HashMap::new(),
            rng,
            link,
            ticker: None,
            extra: None,
            in_round: false,
            pending: false,
            last_round: None,
            stats: ChokerStats::default(),
        }
    }

    fn start_ticker(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.ticker.take() {
            ctx.cancel_future(h);
        }
        let every = self.cfg.interval.max(Duration::from_millis(10));
        self.ticker = Some(ctx.run_interval(every, |act, ctx| act.round(ctx)));
    }

    /// An extra round, as soon as `min_extra_gap` allows; bursts collapse into one.
    fn rechoke_soon(&mut self, ctx: &mut Context<Self>) {
        if self.in_round {
            self.pending = true;
            return;
        }
        if self.extra.is_some() {
            return;
        }
        let now = Instant::now();
        let due = self
            .last_round
            .map_or(now, |last| last + self.cfg.min_extra_gap);
        if due <= now {
            self.round(ctx);
        } else {
            let wait = due - now;
            self.extra = Some(ctx.run_later(wait, |act, ctx| {
                act.extra = None;
                act.round(ctx);
            }));
        }
    }

    fn round(&mut self, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic("choker.round");
        if self.in_round {
            self.pending = true;
            return;
        }
        if let Some(h) = self.extra.take() {
            ctx.cancel_future(h);
        }
        self.in_round = true;
        self.pending = false;
        self.last_round = Some(Instant::now());
        let timeout = self.cfg.collect_timeout;
        let asks: Vec<_> = self
            .torrents
            .iter()
            .map(|(ih, t)| {
                let (ih, collect) = (*ih, t.collect.clone());
                async move {
                    let reply =
                        match tokio::time::timeout(timeout, collect.send(CollectPeers)).await {
                            Ok(Ok(report)) => Ok(report),
                            Ok(Err(MailboxError::Closed)) => Err(Miss::Gone),
                            Ok(Err(MailboxError::Timeout)) | Err(_) => Err(Miss::Timeout),
                        };
                    (ih, reply)
                }
            })
            .collect();
        ctx.spawn(
            futures::future::join_all(asks)
                .into_actor(self)
                .map(|replies, act, ctx| act.finish_round(replies, ctx)),
        );
    }

    fn finish_round(&mut self, replies: Vec<(InfoHash, Reply)>, ctx: &mut Context<Self>) {
        let mut input = Vec::with_capacity(replies.len());
        for (ih, reply) in replies {
            match reply {
                Ok(report) => {
                    if let Some(t) = self.torrents.get_mut(&ih) {
                        t.seeding = report.seeding;
                    }
                    input.push(TorrentPeers {
                        info_hash: ih,
                        seeding: report.seeding,
                        slots: report.slots,
                        peers: report.peers,
                    });
                }
                Err(Miss::Timeout) => {
                    self.stats.missed_reports += 1;
                    tracing::debug!(info_hash = %ih, "torrent missed a choking round");
                }
                Err(Miss::Gone) => {
                    // The torrent died; if it restarts it registers again with a new address.
                    if self
                        .torrents
                        .get(&ih)
                        .is_some_and(|t| !t.collect.connected())
                    {
                        self.torrents.remove(&ih);
                        self.state.forget(&ih);
                    }
                }
            }
        }
        // A torrent without peers leaves the rounds (and frees what it held of the global
        // slots); its next peer's handshake registers it again. A thousand idle torrents are
        // then not asked every round.
        for t in input.iter().filter(|t| t.peers.is_empty()) {
            self.torrents.remove(&t.info_hash);
            self.state.forget(&t.info_hash);
        }
        // A torrent unregistered during the round gets no decision.
        input.retain(|t| self.torrents.contains_key(&t.info_hash));
        let decisions = self
            .state
            .rechoke(&self.cfg.choke, &input, Instant::now(), &mut self.rng);
        for (ih, d) in decisions {
            if let Some(t) = self.torrents.get(&ih) {
                // A rare control message (one per torrent per round): `do_send` is fine.
                t.to.do_send(ChokeDecision::from(d));
            }
        }
        self.stats.rounds += 1;
        self.in_round = false;
        if self.pending {
            self.pending = false;
            self.rechoke_soon(ctx);
        }
    }
}

impl Actor for Choker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Torrents send RechokeNow with try_send: past this, they are dropped (a round is
        // coming anyway).
        ctx.set_mailbox_capacity(256);
        self.start_ticker(ctx);
    }
}

impl Handler<RegisterTorrent> for Choker {
    type Result = ();

    fn handle(&mut self, msg: RegisterTorrent, ctx: &mut Context<Self>) {
        let fresh = !self.torrents.contains_key(&msg.info_hash);
        let flipped = self
            .torrents
            .get(&msg.info_hash)
            .is_some_and(|t| t.seeding != msg.seeding);
        self.torrents.insert(
            msg.info_hash,
            Registered {
                seeding: msg.seeding,
                to: msg.to,
                collect: msg.collect,
            },
        );
        if fresh || flipped {
            self.rechoke_soon(ctx);
        }
    }
}

impl Handler<UnregisterTorrent> for Choker {
    type Result = ();

    fn handle(&mut self, msg: UnregisterTorrent, ctx: &mut Context<Self>) {
        if self.torrents.remove(&msg.info_hash).is_some() {
            self.state.forget(&msg.info_hash);
            // Its slots are free for the others.
            if self.cfg.choke.global_slots.is_some() {
                self.rechoke_soon(ctx);
            }
        }
    }
}

impl Handler<RechokeNow> for Choker {
    type Result = ();

    fn handle(&mut self, _: RechokeNow, ctx: &mut Context<Self>) {
        self.rechoke_soon(ctx);
    }
}

impl Handler<SetChokerConfig> for Choker {
    type Result = ();

    fn handle(&mut self, msg: SetChokerConfig, ctx: &mut Context<Self>) {
        let restart_clock = msg.0.interval != self.cfg.interval;
        self.cfg = msg.0;
        if restart_clock {
            self.start_ticker(ctx);
        }
        self.rechoke_soon(ctx);
    }
}

impl Handler<GetChokerStats> for Choker {
    type Result = MessageResult<GetChokerStats>;

    fn handle(&mut self, _: GetChokerStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(ChokerStats {
            registered: self.torrents.len(),
            ..self.stats.clone()
        })
    }
}

impl Handler<Terminate> for Choker {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}

#[cfg(test)]
mod tests;
