//! # Torrent — one actor per torrent, supervisor of its peers
//!
//! A thin shell over plain cores that own the torrent's state and decide:
//! - [`PeerSet`](super::peer_set): slots, address book, bans, duplicates, interest, requests;
//! - [`Assembly`](super::assembly): piece buffers, pending writes, endgame, hash-fail blame;
//! - [`Checking`](super::check): the hash check of the data on disk (start-up, `verify`);
//! - [`ResumeState`](super::resume_state): how to start from the resume record, what to save;
//! - the [`Picker`] (our have-bitfield, availability, what to request next).
//!
//! The actor owns the state machine (checking → downloading → seeding; paused; error), the
//! torrent's counters and its links to the services, feeds the cores the messages it takes, and
//! carries out what they decide: dials and accepts peers, sends pieces to the disk pool, reports
//! to the announcer, the choker, the DHT and the session's event stream.
//!
//! Takes: every message in [`super::messages`] addressed to a torrent ([`FromPeer`] from its
//! peers, the hot path; `IncomingPeer`, `PeersFound`, control queries and orders), the choker's
//! `CollectPeers` / `ChokeDecision`, and its children's exits. Sends: [`ToPeer`] orders (through
//! the peer set), pieces to the disk pool, `Track`/`Progress` to the announcer, `Route` to the
//! listener, events to the session.
//!
//! Supervises: its peer actors, as declared in [`super::supervisor`].
//!
//! Supervised by: the root. A crash here costs this torrent's in-memory state (partial pieces,
//! peers); the root restarts it from its resume state and other torrents do not notice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_model::{Event, TorrentState};
use swarm_supervisor::{ChildExited, Children, ExitOutcome, ExitReason, Terminate};
use swarm_wire::Metainfo;

use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::rate::Rate;
use crate::resume::{ResumeRecord, StatePaths};
use crate::services::announcer::{Announcer, Progress as AnnounceProgress};
use crate::services::choker::{Choker, UnregisterTorrent};
use crate::services::listener::Listener;
use crate::services::rate_limiter::RateLimiter;
use crate::services::ServiceRef;
use crate::torrent::assembly::Assembly;
use crate::torrent::check::Checking;
use crate::torrent::messages::{FromPeer, GetHave, PeerKey, ToPeer, TorrentInbox};
use crate::torrent::peer_set::PeerSet;
use crate::torrent::resume_state::{ResumeState, StartFrom};
use crate::torrent::shared::TorrentShared;
use crate::torrent::super_seed::SuperSeed;
use crate::torrent::supervisor;

/// Seconds between ticks of a downloading torrent without peers (it looks for some).
const IDLE_TICK: u64 = 5;
/// Seconds between ticks of a torrent without peers that needs none.
const QUIET_TICK: u64 = 30;

#[derive(Clone, Debug)]
pub struct TorrentConfig {
    pub save_dir: PathBuf,
    pub max_peers: usize,
    pub max_half_open: usize,
    /// Upload slots until the global choker takes over.
    pub unchoke_slots: usize,
    /// Complete pieces waiting for the disk before we stop requesting more (memory bound).
    pub max_pending_writes: usize,
    pub paused: bool,
    /// Super-seed (BEP 16) while seeding: see `super_seed`.
    pub super_seed: bool,
    /// The user's labels (shown, saved; nothing in the engine reads them).
    pub labels: Vec<String>,
    /// The torrent's own limits; each unset one is the session's (`max_peers`,
    /// `unchoke_slots` above, the global rates).
    pub limits: swarm_model::TorrentLimits,
    /// Pieces known good without hashing (trusted: e.g. a fresh add of data we created).
    pub known_have: Option<Bitfield>,
    /// Where to keep resume state, and the record found there at start-up.
    pub resume: Option<StatePaths>,
    pub record: Option<Box<ResumeRecord>>,
    /// A new incarnation after a crash: the counters in the shared handle are live (newer than
    /// the record's), and a start without a check is worth a line in the log.
    pub restarted: bool,
    /// Queue position, force start and seeding limits: the root's, kept in the record.
    pub queue: crate::torrent::resume_state::QueueSettings,
    /// Where the data moves once complete (a download in the incomplete directory); `None`:
    /// it stays in `save_dir`.
    pub complete_dir: Option<PathBuf>,
}

impl TorrentConfig {
    /// Connections at once: the torrent's own limit, or the session's.
    pub fn peer_cap(&self) -> usize {
        self.limits.max_peers.map_or(self.max_peers, |n| n as usize)
    }

    /// Peers unchoked at once: the torrent's own limit, or the session's.
    pub fn upload_slots(&self) -> usize {
        self.limits
            .upload_slots
            .map_or(self.unchoke_slots, |n| n as usize)
    }
}

/// The torrent's links to global services and the session.
#[derive(Clone)]
pub struct Services {
    pub announcer: ServiceRef<Announcer>,
    pub listener: ServiceRef<Listener>,
    pub choker: ServiceRef<Choker>,
    pub limiter: ServiceRef<RateLimiter>,
    /// The configured rate limits, which outlive the limiter (see `rate_limiter/quota.rs`):
    /// a torrent writes its own there, so a limiter restarting meanwhile still finds them.
    pub board: crate::services::rate_limiter::QuotaBoard,
    pub events: tokio::sync::broadcast::Sender<Event>,
    /// The root's queue, told when the torrent starts waiting for a slot (set once the root
    /// runs, before any torrent).
    pub queue: Option<Recipient<super::messages::WantsSlot>>,
}

#[derive(Default)]
pub struct TorrentStats {
    /// (Uploaded and downloaded bytes are counted at the sockets: `TorrentShared::transferred`.)
    pub wasted: u64,
    pub down: Rate,
    pub up: Rate,
    pub hash_failures: u64,
    pub bans: u64,
    pub peer_restarts: u64,
    pub added_at: i64,
    pub completed_at: Option<i64>,
}

/// The wait before a tick `step` seconds apart. Slow ticks fall on multiples of `step` seconds
/// since the process started, so idle torrents on a thread tick together: one wake-up of the
/// thread for all of them instead of one each (a thousand idle torrents were ~33 wake-ups a
/// second). The first slow tick may so come sooner than `step`; nothing depends on the exact gap.
fn tick_delay(step: u64, now: Instant) -> Duration {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let step_d = Duration::from_secs(step);
    if step <= 1 {
        return step_d;
    }
    let since = now.saturating_duration_since(*EPOCH.get_or_init(|| now));
    let into = Duration::from_nanos((since.as_nanos() % step_d.as_nanos()) as u64);
    (step_d - into).max(Duration::from_millis(500))
}

/// A live peer's handle, as the peer set holds it.
pub(super) type PeerAddr = Recipient<ToPeer>;

pub struct Torrent {
    pub(super) shared: Arc<TorrentShared>,
    pub(super) meta: Arc<Metainfo>,
    pub(super) cfg: TorrentConfig,
    pub(super) services: Services,
    pub(super) picker: Picker,
    pub(super) state: TorrentState,
    pub(super) error: Option<String>,
    pub(super) peers: PeerSet<PeerAddr>,
    pub(super) assembly: Assembly,
    pub(super) stats: TorrentStats,
    pub(super) checking: Option<Box<Checking>>,
    /// The turn (of `TorrentShared::checks`) the running check holds; dropped when it ends, and
    /// with the actor if it crashes.
    pub(super) check_turn: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Counts the checks asked for: a turn granted to one that was given up is handed back.
    pub(super) checks_asked: u64,
    pub(super) resume: ResumeState,
    /// The peer actors' supervisor, made with the first peer: most of a thousand idle torrents
    /// never need one (it is ~400 bytes).
    children: Option<Box<Children<PeerKey, Torrent>>>,
    ticks: u64,
    pub(super) file_priorities: Vec<swarm_model::FilePriority>,
    /// (uploaded, downloaded, left) last sent to the announcer.
    last_reported: (u64, u64, u64),
    /// A DHT lookup was started at least once.
    pub(super) dht_asked: bool,
    /// (progress, down rate, up rate, state) of the last progress event.
    last_progress_event: Option<(f64, u64, u64, TorrentState)>,
    /// The pending tick and its step in seconds.
    next_tick: super::ticker::Ticker,
    /// The listener's and the announcer's generations when `Route` and `Track` last reached
    /// them (`None`: not registered, or one of them was down).
    pub(super) registered: Option<(u64, u64)>,
    /// Our link to the root supervisor (reports our exit, panics included).
    link: swarm_supervisor::ChildLink,
    /// Super-seeding, while it runs (`cfg.super_seed` and seeding; see `sync_super_seed`).
    pub(super) super_seed: Option<Box<SuperSeed>>,
    /// A step of a move of the data is with the disk pool (see `relocate.rs`).
    pub(super) move_running: bool,
    /// Why the move under way stopped, if it did.
    pub(super) move_error: Option<String>,
    /// The resume record's saves, kept in order.
    pub(super) record_saves: crate::resume::RecordSaves,
}

impl Torrent {
    pub fn new(
        meta: Arc<Metainfo>,
        shared: Arc<TorrentShared>,
        cfg: TorrentConfig,
        services: Services,
        link: swarm_supervisor::ChildLink,
    ) -> Self {
        let info = &meta.info;
        let picker = Picker::new(
            info.piece_length,
            info.total_length,
            Bitfield::new(info.num_pieces()),
        );
        Torrent {
            peers: PeerSet::new(shared.peer_id, shared.listen_port, info.num_pieces()),
            assembly: Assembly::new(cfg.max_pending_writes),
            resume: ResumeState::new(cfg.resume.clone()),
            shared,
            cfg,
            services,
            picker,
            state: TorrentState::Checking,
            error: None,
            stats: TorrentStats {
                added_at: crate::now_unix(),
                ..Default::default()
            },
            checking: None,
            check_turn: None,
            checks_asked: 0,
            children: None,
            ticks: 0,
            file_priorities: Vec::new(),
            last_reported: (u64::MAX, 0, 0),
            dht_asked: false,
            last_progress_event: None,
            next_tick: Default::default(),
            registered: None,
            link,
            super_seed: None,
            move_running: false,
            move_error: None,
            record_saves: Default::default(),
            meta,
        }
    }

    /// The peer actors' supervisor (made on first use), as [`supervisor`] declares it.
    pub(super) fn peer_children(&mut self) -> &mut Children<PeerKey, Torrent> {
        let name = &self.meta.info.name;
        self.children.get_or_insert_with(|| {
            Box::new(supervisor::peer_children(name, |t: &mut Torrent| {
                t.peer_children()
            }))
        })
    }

    pub(super) fn inbox(ctx: &Context<Self>) -> TorrentInbox {
        TorrentInbox {
            events: ctx.address().recipient(),
            have: ctx.address().recipient(),
        }
    }

    pub fn name(&self) -> String {
        self.meta.info.name.clone()
    }

    /// Downloading or seeding: trading with peers.
    pub(super) fn trading(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }

    pub(super) fn downloading(&self) -> bool {
        self.state == TorrentState::Downloading
    }

    /// Start (or resume) trading: register with the listener and the announcer, dial peers. Or,
    /// while the root's queue holds the torrent, wait in `queued_download` / `queued_seed`
    /// without a swarm: no announce, no dial, no listener route (`QueueChanged` lets it go).
    pub(super) fn go_live(&mut self, ctx: &mut Context<Self>) {
        self.error = None;
        if self.shared.held.load(std::sync::atomic::Ordering::Relaxed) {
            self.state = if self.picker.is_complete() {
                TorrentState::QueuedSeed
            } else {
                TorrentState::QueuedDownload
            };
            self.publish();
            if let Some(queue) = &self.services.queue {
                queue.do_send(super::messages::WantsSlot);
            }
            return;
        }
        self.state = if self.picker.is_complete() {
            TorrentState::Seeding
        } else {
            TorrentState::Downloading
        };
        self.announce_self(ctx);
        self.dht_lookup(ctx);
        // Choke rounds are for torrents with peers; a peer's handshake registers us.
        if !self.peers.is_empty() {
            self.register_with_choker(ctx);
        }
        self.connect_more(ctx);
        let now = Instant::now();
        for k in self.peers.keys() {
            self.peers.update_interest(k, &self.picker, true, now);
        }
        self.fill_all();
        self.publish();
        self.move_when_complete(ctx);
    }

    /// Stops every peer actor for good (no re-dial).
    pub(super) fn disconnect_all(&mut self, reason: &str, ctx: &mut Context<Self>) {
        tracing::debug!(torrent = %self.name(), reason, "disconnecting all peers");
        let Some(children) = self.children.as_mut() else {
            return;
        };
        let ids: Vec<PeerKey> = children.ids().copied().collect();
        for id in ids {
            let _ = self.peer_children().terminate(&id, ctx);
        }
    }

    fn on_peer_exit(&mut self, key: PeerKey, reason: &ExitReason, will_restart: bool) {
        let now = Instant::now();
        let failed = reason.is_abnormal();
        self.peers
            .exited(key, &mut self.picker, will_restart, failed, now);
        if let Some(ss) = &mut self.super_seed {
            ss.on_peer_gone(key);
        }
        self.rechoke();
        if will_restart {
            self.stats.peer_restarts += 1;
        }
    }

    pub(super) fn fill_all(&mut self) {
        let downloading = self.downloading();
        self.assembly
            .fill_all(&mut self.peers, &mut self.picker, downloading);
    }

    pub(super) fn fill_requests(&mut self, key: PeerKey) {
        let downloading = self.downloading();
        self.assembly
            .fill_requests(&mut self.peers, &mut self.picker, key, downloading);
    }

    /// Our interest in `key`, and its requests when interesting.
    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let downloading = self.downloading();
        if self
            .peers
            .update_interest(key, &self.picker, downloading, Instant::now())
        {
            self.fill_requests(key);
        }
    }

    // ---- the tick -----------------------------------------------------------------------------

    /// Seconds until the next tick: every second while peers are connected (rates, pipelines,
    /// timeouts), every [`IDLE_TICK`] otherwise, so a thousand idle torrents cost next to nothing.
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        let step = if !self.peers.is_empty() || self.checking.is_some() || self.move_running {
            1
        } else if self.state == TorrentState::Downloading {
            IDLE_TICK
        } else {
            // Seeding, paused or stopped by an error with nobody connected: only occasional
            // bookkeeping; new peers and orders arrive as messages anyway.
            QUIET_TICK
        };
        self.next_tick.arm(
            ctx,
            step,
            tick_delay(step, Instant::now()),
            move |act: &mut Self, ctx| {
                act.next_tick.fired();
                act.tick(step, ctx);
                act.schedule_tick(ctx);
            },
        );
    }

    /// A peer arrived while the torrent ticks slowly: tick every second from now on, rather than
    /// up to [`IDLE_TICK`] seconds later (rates, request timeouts and progress events wait for it).
    pub(super) fn wake_tick(&mut self, ctx: &mut Context<Self>) {
        if self.next_tick.cancel_slow(ctx) {
            self.schedule_tick(ctx);
        }
    }

    /// Whether a period of `secs` seconds ended within the last tick.
    fn every(&self, secs: u64, step: u64) -> bool {
        (self.ticks - step) / secs != self.ticks / secs
    }

    fn tick(&mut self, step: u64, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic_for("torrent.tick", Some(&self.shared.info_hash));
        self.ticks += step;
        if self.state == TorrentState::Seeding {
            self.shared.transferred.add_seeding_secs(step);
        }
        self.sync_super_seed();
        let now = Instant::now();
        if !self.peers.is_empty() {
            self.stats.down.tick();
            self.stats.up.tick();
        } else if step > 1 {
            // No peers: rates decay to zero.
            self.stats.down = Rate::default();
            self.stats.up = Rate::default();
        }
        self.peers.tick();
        if self.state == TorrentState::Downloading && !self.peers.is_empty() {
            self.peers.expire_requests(&mut self.picker, now);
            for k in self.peers.keys() {
                self.update_interest(k);
            }
            self.fill_all();
        }
        let live = self.trading();
        // Again only for a new incarnation of either service (idempotent, but a thousand idle
        // torrents repeating it would cost more than everything else they do).
        if self.every(10, step) && live && self.registered != self.service_generations() {
            self.announce_self(ctx);
        }
        // Only torrents with peers take part in choke rounds.
        if self.every(10, step) && live && !self.peers.is_empty() {
            self.register_with_choker(ctx);
        }
        // While downloading with room for peers, ask the DHT every minute.
        let wants_peers =
            self.state == TorrentState::Downloading && self.peers.len() < self.cfg.peer_cap() / 2;
        // The first lookup may have found the DHT node still starting: retry until one ran.
        if (self.every(60, step) || !self.dht_asked) && wants_peers {
            self.dht_lookup(ctx);
        }
        if self.every(5, step) {
            self.connect_more(ctx);
            self.report_progress();
        }
        if self.every(10, step) && !self.meta.info.private && !self.peers.is_empty() {
            self.peers.pex_round(now);
        }
        if self.every(10, step) && self.resume.dirty && self.checking.is_none() {
            self.save_resume();
        }
        if self.every(2, step) {
            self.progress_event();
            if self.move_running {
                self.moving_event();
            }
        }
        self.publish();
    }

    /// Tells the announcer what changed in the counts trackers hear about.
    fn report_progress(&mut self) {
        let progress = (
            self.shared.transferred.uploaded(),
            self.shared.transferred.downloaded(),
            self.picker.bytes_left(),
        );
        if progress != self.last_reported {
            self.last_reported = progress;
            self.services.announcer.do_send(AnnounceProgress {
                info_hash: self.shared.info_hash,
                uploaded: progress.0,
                downloaded: progress.1,
                left: progress.2,
            });
        }
    }

    fn progress_event(&mut self) {
        let event = (
            self.progress(),
            self.stats.down.per_second(),
            self.stats.up.per_second(),
            self.state,
        );
        // Only news: an idle torrent says nothing.
        if self.last_progress_event.as_ref() != Some(&event) {
            let _ = self.services.events.send(Event::Progress {
                info_hash: self.shared.info_hash,
                progress: event.0,
                download_rate: event.1,
                upload_rate: event.2,
                state: event.3,
            });
            self.last_progress_event = Some(event);
        }
    }

    /// Done, of the bytes wanted (skipped files do not count, as in transmission's
    /// `percentDone`); the check's progress while checking.
    pub fn progress(&self) -> f64 {
        if let Some(c) = &self.checking {
            return c.progress();
        }
        let (wanted, left) = self.picker.wanted_and_left();
        if wanted == 0 {
            return 1.0;
        }
        1.0 - left as f64 / wanted as f64
    }
}

impl Actor for Torrent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Blocks from all peers arrive here: a deep but bounded mailbox. Peers that find it full
        // stop reading their sockets until there is room.
        ctx.set_mailbox_capacity(4096);
        // A daemon restart begins with an empty board. Only a torrent with rates of its own
        // says so: a thousand torrents starting would otherwise send the limiter a thousand
        // settings to apply for nothing.
        let l = &self.cfg.limits;
        if l.download.is_some() || l.upload.is_some() || l.priority != Default::default() {
            self.apply_rate_limits();
        }
        let start = match self.cfg.known_have.take() {
            Some(have) => StartFrom::Known(have),
            None => self.trusted_record(),
        };
        match start {
            StartFrom::Known(have) if have.len() == self.picker.num_pieces() => {
                self.finish_check(have, false, ctx)
            }
            StartFrom::DataMissing => {
                self.resume.unchecked = true;
                let path = self.shared.storage.data_path();
                self.enter_error(
                    format!(
                        "data not found at {} — is the disk mounted? (`resume` or `verify` checks \
                         it again, and downloads what is missing)",
                        path.display()
                    ),
                    ctx,
                );
            }
            _ => self.start_check(ctx),
        }
        // A move under way (a restarted incarnation, or one the record brought back) goes on.
        self.continue_move(ctx);
        self.schedule_tick(ctx);
        self.publish();
        if let Some(secs) =
            crate::fault::value_for("torrent.freeze_after", Some(&self.shared.info_hash))
        {
            // The torrent's thread, and every torrent on it, stops answering; the root's thread
            // (control socket, watchdog task) does not: the watchdog test's frozen engine.
            ctx.run_later(Duration::from_secs_f64(secs), |act, _| {
                tracing::warn!(torrent = %act.name(), "fault injection: freezing the torrent's thread");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            });
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        self.go_quiet(ctx);
        // A last, synchronous save: small, and the only chance before the actor is gone.
        if self.checking.is_none() {
            if let Some((path, bytes)) = self.resume_bytes() {
                if let Err(e) = self.record_saves.begin().write(&path, &bytes) {
                    tracing::warn!(torrent = %self.name(), "saving resume state: {e}");
                }
            }
        }
        Running::Stop
    }
}

impl Handler<FromPeer> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: FromPeer, ctx: &mut Context<Self>) {
        if self.peers.is_banned_key(msg.key) {
            return;
        }
        self.on_peer_event(msg.key, msg.event, ctx);
    }
}

impl Handler<ChildExited<PeerKey>> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: ChildExited<PeerKey>, ctx: &mut Context<Self>) {
        let key = msg.id;
        let reason = msg.reason.clone();
        match self.peer_children().handle_exit(msg, ctx) {
            ExitOutcome::Ignored => return,
            ExitOutcome::Restarting { after, .. } => {
                // A connection that failed or ended (an `Error` exit) is a peer's life; a panic
                // is a fault of ours and worth a line at the default level.
                if matches!(reason, ExitReason::Panic(_)) {
                    tracing::warn!(torrent = %self.name(), peer = key, %reason, ?after, "peer crashed; re-dialling");
                } else {
                    tracing::debug!(torrent = %self.name(), peer = key, %reason, ?after, "peer connection ended; re-dialling");
                }
                self.on_peer_exit(key, &reason, true);
            }
            ExitOutcome::SiblingStopped { .. } => self.on_peer_exit(key, &reason, true),
            ExitOutcome::GaveUp { .. } => {
                if matches!(reason, ExitReason::Panic(_)) {
                    tracing::warn!(torrent = %self.name(), peer = key, %reason, "peer restart budget used up; giving up");
                } else {
                    tracing::debug!(torrent = %self.name(), peer = key, %reason, "peer restart budget used up; giving up");
                }
                self.on_peer_exit(key, &reason, false);
            }
            ExitOutcome::Removed { .. } => self.on_peer_exit(key, &reason, false),
            ExitOutcome::Escalate(e) => {
                // Peers are one_for_one with unlimited intensity: escalation is not expected,
                // but if the policy ever changes, the torrent crashes as OTP would have it.
                self.link.set_reason(ExitReason::Escalated(Box::new(e)));
                ctx.stop();
                return;
            }
        }
        if self.peers.is_empty() {
            self.services.choker.do_send(UnregisterTorrent {
                info_hash: self.shared.info_hash,
            });
            // Nobody left to move bytes: the rates are zero now, not at the next slow tick (up
            // to half a minute away for a seed).
            self.stats.down = Rate::default();
            self.stats.up = Rate::default();
            self.publish();
        }
        self.connect_more(ctx);
    }
}

impl Handler<GetHave> for Torrent {
    type Result = MessageResult<GetHave>;

    fn handle(&mut self, _: GetHave, _: &mut Context<Self>) -> MessageResult<GetHave> {
        // A super-seed has nothing to show a new peer; pieces come one by one (`show_pieces`).
        self.sync_super_seed();
        MessageResult(match self.super_seed {
            Some(_) => Bitfield::new(self.picker.num_pieces()),
            None => self.picker.have().clone(),
        })
    }
}

impl Handler<Terminate> for Torrent {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        // `stopping()` leaves the swarm and saves the resume state.
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_ticks_of_different_torrents_fall_together() {
        assert_eq!(tick_delay(1, Instant::now()), Duration::from_secs(1));
        let t1 = Instant::now();
        let d1 = tick_delay(QUIET_TICK, t1);
        assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(QUIET_TICK));
        // A torrent scheduling 3 s later, in the same window, ticks at the same instant.
        let t2 = t1 + Duration::from_secs(3);
        let d2 = tick_delay(QUIET_TICK, t2);
        if d1 > Duration::from_millis(3_500) {
            assert_eq!(t1 + d1, t2 + d2);
        } else if d1 < Duration::from_secs(3) {
            // t2 is past that boundary: the next one.
            assert_eq!(t2 + d2, t1 + d1 + Duration::from_secs(QUIET_TICK));
        } else {
            // Less than 0.5 s before the boundary: never sooner than that.
            assert_eq!(d2, Duration::from_millis(500));
        }
    }
}
