//! # Torrent — one actor per torrent, supervisor of its peers
//!
//! Owns: the piece picker, our have-bitfield (inside the picker), piece availability, the piece
//! buffers being assembled, the peer set (address book, slots, bans), the state machine
//! (checking → downloading → seeding; paused; error) and the torrent's counters.
//!
//! Takes: [`FromPeer`] from its peer actors (the hot path: blocks), `IncomingPeer` from the
//! listener, `PeersFound` from the announcer (and later DHT/PEX), control queries and orders
//! from the root. Sends: [`ToPeer`] orders, pieces to the disk pool, progress to the announcer,
//! events to the session's event stream.
//!
//! Supervises: its peer actors, one child each. An outgoing peer is `Transient`: a crash (I/O
//! error, protocol violation, panic) re-dials it after a backoff, within a per-peer restart
//! budget; past the budget the address is given up (and may come back later from a tracker).
//! An incoming peer is `Temporary`: it cannot be re-dialled.
//!
//! Supervised by: the root. A crash here costs this torrent's in-memory state (partial pieces,
//! peers); the root restarts it from its resume state and other torrents do not notice.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_control::{Event, TorrentState};
use swarm_supervisor::{
    ChildExited, ChildHandle, ChildSpec, Children, ExitOutcome, ExitReason, Restart, RestartPolicy,
    Terminate,
};
use swarm_wire::Metainfo;

use crate::bitfield::Bitfield;
use crate::pex::{PexInbox, PexState};
use crate::picker::Picker;
use crate::rate::Rate;
use crate::resume::{hex_encode, write_atomic, ResumeRecord, StatePaths};
use crate::services::announcer::{Announcer, Progress as AnnounceProgress, Track, Untrack};
use crate::services::choker::{
    ChokeDecision, Choker, CollectPeers, PeersReport, RechokeNow, RegisterTorrent,
    UnregisterTorrent,
};
use crate::services::listener::{Listener, Route};
use crate::services::rate_limiter::RateLimiter;
use crate::services::ServiceRef;
use crate::torrent::download::PieceBuf;
use crate::torrent::messages::{FromPeer, PeerEvent, PeerKey, ToPeer};
use crate::torrent::peer::{Dial, PeerConn};
use crate::torrent::shared::TorrentShared;
use crate::torrent::swarm::{AddressBook, PeerSlot, PeerSource};
use swarm_wire::peer::extension::{PexFlags, UT_PEX};

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
    /// Pieces known good without hashing (trusted: e.g. a fresh add of data we created).
    pub known_have: Option<Bitfield>,
    /// Where to keep resume state, and the record found there at start-up.
    pub resume: Option<StatePaths>,
    pub record: Option<Box<ResumeRecord>>,
}

/// The torrent's links to global services and the session.
#[derive(Clone)]
pub struct Services {
    pub announcer: ServiceRef<Announcer>,
    pub listener: ServiceRef<Listener>,
    pub choker: ServiceRef<Choker>,
    pub limiter: ServiceRef<RateLimiter>,
    pub events: tokio::sync::broadcast::Sender<Event>,
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

/// How a torrent starts.
enum StartFrom {
    /// Pieces known good: no check.
    Known(Bitfield),
    /// Hash what is on disk.
    Check,
    /// The record had pieces and not one byte of them is on disk: stop with an error.
    DataMissing,
}

/// Progress of the initial check (or `verify`).
pub(super) struct Checking {
    next: u32,
    done: u32,
    in_flight: usize,
    have: Bitfield,
    /// File sizes on disk when the check began: pieces beyond them are known missing.
    sizes: Vec<u64>,
}

pub struct Torrent {
    pub(super) shared: Arc<TorrentShared>,
    pub(super) meta: Arc<Metainfo>,
    pub(super) cfg: TorrentConfig,
    pub(super) services: Services,
    pub(super) picker: Picker,
    pub(super) state: TorrentState,
    pub(super) error: Option<String>,
    pub(super) peers: HashMap<PeerKey, PeerSlot>,
    pub(super) banned_keys: HashSet<PeerKey>,
    /// Peer addresses, bans: made with the first address (most idle torrents never get one).
    pub(super) book: Option<Box<AddressBook>>,
    pub(super) buffers: HashMap<u32, PieceBuf>,
    /// Piece buffers back from the disk pool, for reuse.
    pub(super) spare_buffers: Vec<Vec<u8>>,
    pub(super) pending_writes: usize,
    pub(super) endgame: bool,
    pub(super) stats: TorrentStats,
    checking: Option<Box<Checking>>,
    next_key: PeerKey,
    /// The peer actors' supervisor, made with the first peer: most of a thousand idle torrents
    /// never need one (it is ~400 bytes).
    children: Option<Box<Children<PeerKey, Torrent>>>,
    ticks: u64,
    pub(super) file_priorities: Vec<swarm_control::FilePriority>,
    /// (uploaded, downloaded, left) last sent to the announcer.
    last_reported: (u64, u64, u64),
    /// A DHT lookup was started at least once.
    dht_asked: bool,
    /// (progress, down rate, up rate, state) of the last progress event.
    last_progress_event: Option<(f64, u64, u64, TorrentState)>,
    /// The pending tick and its step in seconds.
    next_tick: super::ticker::Ticker,
    /// The listener's and the announcer's generations when `Route` and `Track` last reached
    /// them (`None`: not registered, or one of them was down).
    registered: Option<(u64, u64)>,
    /// Something worth saving changed since the last resume write.
    pub(super) dirty: bool,
    /// What we have is not known (the data was missing at start): `resume` checks first.
    pub(super) unchecked: bool,
    /// Our link to the root supervisor (reports our exit, panics included).
    link: swarm_supervisor::ChildLink,
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
            shared,
            cfg,
            services,
            picker,
            state: TorrentState::Checking,
            error: None,
            peers: HashMap::new(),
            banned_keys: HashSet::new(),
            book: None,
            buffers: HashMap::new(),
            spare_buffers: Vec::new(),
            pending_writes: 0,
            endgame: false,
            stats: TorrentStats {
                added_at: crate::now_unix(),
                ..Default::default()
            },
            checking: None,
            next_key: 1,
            children: None,
            ticks: 0,
            file_priorities: Vec::new(),
            last_reported: (u64::MAX, 0, 0),
            dht_asked: false,
            last_progress_event: None,
            next_tick: Default::default(),
            registered: None,
            dirty: false,
            unchecked: false,
            link,
            meta,
        }
    }

    /// The address book (made on first use).
    pub(super) fn book(&mut self) -> &mut AddressBook {
        self.book.get_or_insert_with(Box::default)
    }

    /// The peer actors' supervisor (made on first use). Restarted peers are re-dialled with
    /// backoff; a peer that crashes three times in a minute is given up.
    fn peer_children(&mut self) -> &mut Children<PeerKey, Torrent> {
        let name = &self.meta.info.name;
        self.children.get_or_insert_with(|| {
            let policy = RestartPolicy::one_for_one()
                .unlimited_intensity()
                .child_budget(3, Duration::from_secs(60))
                .backoff(
                    Duration::from_secs(1),
                    Duration::from_secs(30),
                    Duration::from_secs(60),
                );
            Box::new(
                Children::new(policy, |t: &mut Torrent| t.peer_children())
                    .named(format!("torrent {name}")),
            )
        })
    }

    pub fn name(&self) -> String {
        self.meta.info.name.clone()
    }

    // ---- checking -----------------------------------------------------------------------------

    pub(super) fn start_check(&mut self, ctx: &mut Context<Self>) {
        self.state = TorrentState::Checking;
        self.publish();
        let sizes = self
            .shared
            .storage
            .file_stats()
            .iter()
            .map(|s| s.map_or(0, |(len, _)| len))
            .collect();
        let n = self.picker.num_pieces();
        self.checking = Some(Box::new(Checking {
            next: 0,
            done: 0,
            in_flight: 0,
            have: Bitfield::new(n),
            sizes,
        }));
        self.pump_check(ctx);
    }

    fn pump_check(&mut self, ctx: &mut Context<Self>) {
        let n = self.picker.num_pieces();
        let limit = self.cfg.max_pending_writes.max(2);
        loop {
            let Some(c) = &mut self.checking else { return };
            if c.in_flight >= limit || c.next >= n {
                break;
            }
            let index = c.next;
            c.next += 1;
            let info = &self.meta.info;
            let len = info.piece_len(index);
            let present = info.spans(index, 0, len).iter().all(|s| {
                info.files[s.file_index].pad
                    || c.sizes
                        .get(s.file_index)
                        .is_some_and(|&sz| sz >= s.file_offset + s.len)
            });
            if !present {
                c.done += 1;
                continue;
            }
            c.in_flight += 1;
            let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
            let fut = async move { disk.check_piece(storage, index).await };
            ctx.spawn(fut.into_actor(self).map(move |ok, act, ctx| {
                if let Some(c) = &mut act.checking {
                    c.in_flight -= 1;
                    c.done += 1;
                    if ok {
                        c.have.set(index);
                    }
                }
                act.pump_check(ctx);
            }));
        }
        if self.checking.as_ref().is_some_and(|c| c.done == n) {
            let have = self
                .checking
                .take()
                .map(|c| c.have)
                .unwrap_or_else(|| Bitfield::new(n));
            self.finish_check(have, ctx);
        }
    }

    fn finish_check(&mut self, have: Bitfield, ctx: &mut Context<Self>) {
        self.unchecked = false;
        let info = &self.meta.info;
        let mut picker = Picker::new(info.piece_length, info.total_length, have);
        for p in self.peers.values() {
            picker.add_peer_bitfield(&p.bitfield);
        }
        self.picker = picker;
        self.apply_file_priorities();
        let n = self.picker.num_pieces();
        tracing::info!(torrent = %self.name(), have = self.picker.have().count(), of = n, "check done");
        if self.cfg.paused {
            self.state = TorrentState::Paused;
            self.publish();
            return;
        }
        self.go_live(ctx);
    }

    /// Start (or resume) trading: register with the listener and the announcer, dial peers.
    pub(super) fn go_live(&mut self, ctx: &mut Context<Self>) {
        self.error = None;
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
        for p in self.peers.values_mut() {
            let interesting = self.picker.is_interesting(&p.bitfield);
            if interesting != p.am_interested {
                p.am_interested = interesting;
                p.interested_at = interesting.then(Instant::now);
                if let Some(a) = &p.addr {
                    a.do_send(ToPeer::Interested(interesting));
                }
            }
        }
        self.fill_all();
        self.publish();
    }

    /// Route incoming peers to us and track us with the announcer. Idempotent, and repeated on
    /// the tick: a restarted Listener or Announcer learns about us again this way.
    pub(super) fn announce_self(&mut self, ctx: &mut Context<Self>) {
        let ih = self.shared.info_hash;
        let listener = self.services.listener.deliver(Route {
            info_hash: ih,
            to: Some(ctx.address().recipient()),
        });
        let announcer = self.services.announcer.deliver(Track {
            info_hash: ih,
            tiers: self.meta.tracker_tiers(),
            to: ctx.address().recipient(),
            left: self.picker.bytes_left(),
            private: self.meta.info.private,
        });
        self.registered = listener.zip(announcer);
    }

    fn service_generations(&self) -> Option<(u64, u64)> {
        Some((
            self.services.listener.generation(),
            self.services.announcer.generation(),
        ))
    }

    /// Leave the swarm: stop announcing, drop every peer.
    pub(super) fn go_quiet(&mut self, ctx: &mut Context<Self>) {
        let ih = self.shared.info_hash;
        self.registered = None;
        self.services.listener.do_send(Route {
            info_hash: ih,
            to: None,
        });
        self.services.announcer.do_send(Untrack { info_hash: ih });
        self.services
            .choker
            .do_send(UnregisterTorrent { info_hash: ih });
        if let Some(dht) = self.dht() {
            actix::spawn(async move {
                let _ = dht.unregister(ih).await;
            });
        }
        // The peers did nothing wrong: a resume may dial them again at once.
        for p in self.peers.values_mut() {
            p.released = true;
        }
        self.disconnect_all("leaving the swarm", ctx);
    }

    /// BEP 11: tells each peer that speaks ut_pex who we are connected to (at most once a
    /// minute per peer, which `PexState` enforces).
    fn send_pex(&mut self) {
        let now = Instant::now();
        let connected: Vec<(SocketAddr, PexFlags)> = self
            .peers
            .values()
            .filter(|p| p.addr.is_some())
            .filter_map(|p| {
                // Incoming peers are only worth telling about once we know their listen port.
                let addr = if p.outgoing {
                    p.sock
                } else {
                    SocketAddr::new(p.sock.ip(), p.listen_port?)
                };
                let mut flags = PexFlags::default();
                if p.outgoing {
                    flags.0 |= PexFlags::OUTGOING;
                }
                if p.bitfield.is_complete() {
                    flags.0 |= PexFlags::SEED;
                }
                Some((addr, flags))
            })
            .collect();
        for p in self.peers.values_mut() {
            let (Some(a), Some((id, state))) = (&p.addr, &mut p.pex_out) else {
                continue;
            };
            if let Some(msg) = state.next_message(&connected, now) {
                a.do_send(ToPeer::Extended {
                    id: *id,
                    payload: msg.encode(),
                });
            }
        }
    }

    /// Remembers new peer addresses and dials them if there is room.
    pub(super) fn add_peers(
        &mut self,
        addrs: Vec<SocketAddr>,
        source: PeerSource,
        ctx: &mut Context<Self>,
    ) {
        let mut fresh = 0;
        for a in addrs {
            // Trackers list us too; a self-connection would only be caught after the handshake.
            let ourselves = a.port() == self.shared.listen_port
                && (a.ip().is_loopback() || a.ip().is_unspecified());
            if !ourselves && self.book().add(a, source) {
                fresh += 1;
            }
        }
        if fresh > 0 {
            tracing::debug!(torrent = %self.name(), fresh, source = source.as_str(), "new peer addresses");
            self.connect_more(ctx);
        }
    }

    /// The DHT node, unless the torrent is private (BEP 27: private torrents use their trackers
    /// only).
    fn dht(&self) -> Option<swarm_dht::DhtHandle> {
        if self.meta.info.private {
            return None;
        }
        self.shared.dht.get()
    }

    /// Asks the DHT for peers (and registers us, so we are announced and re-announced).
    fn dht_lookup(&mut self, ctx: &mut Context<Self>) {
        let Some(dht) = self.dht() else { return };
        self.dht_asked = true;
        let (ih, port) = (self.shared.info_hash, self.shared.listen_port);
        let fut = async move {
            let _ = dht.register(ih, Some(port)).await;
            dht.get_peers(ih).await.unwrap_or_default()
        };
        ctx.spawn(fut.into_actor(self).map(|addrs, act, ctx| {
            if !addrs.is_empty() {
                act.add_peers(addrs, PeerSource::Dht, ctx);
            }
        }));
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

    // ---- peers --------------------------------------------------------------------------------

    /// Dials known addresses while there is room.
    fn connect_more(&mut self, ctx: &mut Context<Self>) {
        if !matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let connecting = self.peers.values().filter(|p| p.addr.is_none()).count();
        let room = self.cfg.max_peers.saturating_sub(self.peers.len());
        let half_open = self.cfg.max_half_open.saturating_sub(connecting);
        let candidates = self
            .book
            .as_ref()
            .map_or_else(Vec::new, |b| b.candidates(room.min(half_open)));
        for sock in candidates {
            let Some(place) = self.shared.peer_budget.take() else {
                tracing::debug!(torrent = %self.name(), "global connection limit reached");
                break;
            };
            if let Some(k) = self.book().known.get_mut(&sock) {
                k.connected = true;
            }
            let source = self
                .book()
                .known
                .get(&sock)
                .map_or(PeerSource::Tracker, |k| k.source);
            let key = self.next_key;
            self.next_key += 1;
            let mut slot = PeerSlot::new(sock, true, source, self.picker.num_pieces());
            slot._place = Some(place);
            self.peers.insert(key, slot);
            let (shared, me) = (self.shared.clone(), ctx.address());
            // Called again for every re-dial, after the supervisor's backoff.
            let start = move |link| {
                let peer =
                    PeerConn::new(key, sock, Dial::Outgoing, shared.clone(), me.clone(), link);
                Ok(ChildHandle::new(peer.start()))
            };
            if let Err(e) = self
                .peer_children()
                .start(key, Restart::Transient, start, ctx)
            {
                tracing::warn!(peer = %sock, "could not start peer: {e}");
                self.peers.remove(&key);
            }
        }
        if !self.peers.is_empty() {
            self.wake_tick(ctx);
        }
    }

    fn on_peer_exit(&mut self, key: PeerKey, reason: &ExitReason, will_restart: bool) {
        self.release_requests(key);
        if let Some(p) = self.peers.get_mut(&key) {
            if p.addr.is_some() {
                self.picker.remove_peer_bitfield(&p.bitfield);
            }
            p.addr = None;
            p.bitfield = Bitfield::new(self.picker.num_pieces());
            p.am_choking = true;
            p.peer_choking = true;
            p.am_interested = false;
            p.peer_interested = false;
        }
        self.picker.on_peer_gone(key);
        self.rechoke();
        if will_restart {
            self.stats.peer_restarts += 1;
            return;
        }
        if let Some(p) = self.peers.remove(&key) {
            if p.outgoing && p.released {
                self.book().released(p.sock);
            } else if p.outgoing {
                self.book().disconnected(p.sock, reason.is_abnormal());
            }
        }
        self.banned_keys.remove(&key);
    }

    fn on_peer_event(&mut self, key: PeerKey, event: PeerEvent, ctx: &mut Context<Self>) {
        if let PeerEvent::Block { block, data } = event {
            return self.on_block(key, block, data, ctx);
        }
        let Some(slot) = self.peers.get_mut(&key) else {
            return;
        };
        match event {
            PeerEvent::Block { .. } => {}
            PeerEvent::Connected {
                addr,
                peer_id,
                fast,
                extensions,
            } => {
                if self
                    .book
                    .as_ref()
                    .is_some_and(|b| b.banned_ids.contains(&peer_id))
                {
                    // A banned peer dialling in from a new port.
                    addr.do_send(ToPeer::Disconnect("banned".into()));
                    return;
                }
                // Both sides dialled (e.g. after PEX named the other's listen address). Both
                // swarmd ends must keep the same one, or both would close: the connection dialled
                // by the peer with the greater id survives. Other clients resolve duplicates by
                // their own rule, so with them we leave it to them.
                let other = self
                    .peers
                    .iter()
                    .find(|(k, p)| **k != key && p.addr.is_some() && p.peer_id == peer_id)
                    .map(|(k, p)| (*k, p.addr.clone()));
                if let Some((_, old_addr)) = other.filter(|_| peer_id.starts_with(b"-SW")) {
                    let new_outgoing = self.peers.get(&key).is_some_and(|p| p.outgoing);
                    let we_win = self.shared.peer_id > peer_id;
                    if new_outgoing == we_win {
                        if let Some(a) = old_addr {
                            a.do_send(ToPeer::Disconnect("duplicate connection".into()));
                        }
                    } else {
                        addr.do_send(ToPeer::Disconnect("duplicate connection".into()));
                        return;
                    }
                }
                let Some(slot) = self.peers.get_mut(&key) else {
                    return;
                };
                slot.addr = Some(addr);
                slot.fast = fast;
                slot.peer_id = peer_id;
                slot.client = crate::peer_id::client_name(&peer_id);
                slot.last_block = Instant::now();
                if let Some(ext) = extensions {
                    if let Some(q) = ext.reqq {
                        slot.reqq = q as usize;
                    }
                }
                let book = self.book.get_or_insert_with(Box::default);
                if let Some(k) = book.known.get_mut(&slot.sock) {
                    k.failures = 0;
                }
                slot.connected_at = Instant::now();
                self.register_with_choker(ctx);
                self.rechoke();
                // Leave the slow idle ticks: rates and pipelines need a tick every second.
                self.wake_tick(ctx);
            }
            PeerEvent::Extensions(ext) => {
                if let (Some(id), false) = (ext.id_of(UT_PEX), self.meta.info.private) {
                    let mut state = PexState::new(slot.sock);
                    if let Some(p) = ext.p {
                        state.set_listen_port(p);
                    }
                    slot.pex_out = Some((id, state));
                }
                if let Some(p) = ext.p {
                    slot.listen_port = Some(p);
                }
                if let Some(q) = ext.reqq {
                    slot.reqq = (q as usize).max(1);
                }
                if let Some(v) = ext.v {
                    slot.client = v;
                }
            }
            PeerEvent::Bitfield(bf) => {
                self.picker.remove_peer_bitfield(&slot.bitfield);
                self.picker.add_peer_bitfield(&bf);
                slot.bitfield = bf;
                self.update_interest(key);
                if self.state == TorrentState::Seeding
                    && self
                        .peers
                        .get(&key)
                        .is_some_and(|p| p.bitfield.is_complete())
                {
                    self.disconnect(key, "both seeding");
                }
            }
            PeerEvent::Have(i) => {
                if slot.bitfield.set(i) {
                    self.picker.add_have(i);
                    if !slot.am_interested && self.picker.wants(i) {
                        self.update_interest(key);
                    }
                }
            }
            PeerEvent::Choked => {
                slot.peer_choking = true;
                slot.unchoked_us_at = None;
                if !slot.fast {
                    // Without the fast extension a choke discards every pending request.
                    self.release_requests(key);
                }
            }
            PeerEvent::Unchoked => {
                slot.peer_choking = false;
                slot.unchoked_us_at = Some(Instant::now());
                self.fill_requests(key);
            }
            PeerEvent::Interested(on) => {
                slot.peer_interested = on;
                // A free upload slot is given at once rather than at the choker's next round
                // (a second away at best); the round that follows ranks everyone as usual.
                let live = matches!(
                    self.state,
                    TorrentState::Downloading | TorrentState::Seeding
                );
                if on && live && slot.am_choking {
                    let unchoked = self
                        .peers
                        .values()
                        .filter(|p| p.addr.is_some() && !p.am_choking)
                        .count();
                    if unchoked < self.cfg.unchoke_slots {
                        if let Some(p) = self.peers.get_mut(&key) {
                            p.am_choking = false;
                            if let Some(a) = &p.addr {
                                a.do_send(ToPeer::Choke(false));
                            }
                        }
                    }
                }
                self.rechoke();
            }
            PeerEvent::Rejected(r) => {
                if slot.take_request(&r) {
                    self.picker.on_request_dropped(&r);
                }
            }
            PeerEvent::Uploaded(n) => {
                slot.uploaded += n;
                slot.up.add(n);
                self.stats.up.add(n);
            }
            PeerEvent::Pex(msg) => {
                if self.meta.info.private {
                    return;
                }
                let inbox = slot.pex_in.get_or_insert_with(|| PexInbox::new(slot.sock));
                if let Some(addrs) = inbox.accept(&msg, Instant::now()) {
                    let addrs = addrs.into_iter().map(|(a, _)| a).collect();
                    self.add_peers(addrs, PeerSource::Pex, ctx);
                }
            }
            PeerEvent::AllowedFast(i) => {
                let n = self.picker.num_pieces();
                if slot.allowed_fast.on_allowed_fast(i, n) && slot.peer_choking {
                    self.fill_requests(key);
                }
            }
            PeerEvent::DhtPort(port) => {
                let node = SocketAddr::new(slot.sock.ip(), port);
                if let Some(dht) = self.dht() {
                    let _ = dht.add_node(node);
                }
            }
        }
    }

    fn disconnect(&mut self, key: PeerKey, reason: &str) {
        if let Some(a) = self.peers.get(&key).and_then(|p| p.addr.clone()) {
            a.do_send(ToPeer::Disconnect(reason.to_string()));
        }
    }

    fn update_interest(&mut self, key: PeerKey) {
        let Some(slot) = self.peers.get_mut(&key) else {
            return;
        };
        let interesting =
            self.state == TorrentState::Downloading && self.picker.is_interesting(&slot.bitfield);
        if interesting != slot.am_interested {
            slot.am_interested = interesting;
            slot.interested_at = interesting.then(Instant::now);
            if let Some(a) = &slot.addr {
                a.do_send(ToPeer::Interested(interesting));
            }
        }
        if interesting {
            self.fill_requests(key);
        }
    }

    /// Something changed that the choker should look at soon (peer joined or left, interest
    /// changed). A full mailbox means a round is coming anyway.
    fn rechoke(&mut self) {
        if let Some(c) = self.services.choker.get() {
            let _ = c.try_send(RechokeNow);
        }
    }

    /// Joins the choker's rounds (idempotent: re-sent every 10 s, which also refills the
    /// choker's registry after it restarts).
    fn register_with_choker(&self, ctx: &mut Context<Self>) {
        self.services.choker.do_send(RegisterTorrent {
            info_hash: self.shared.info_hash,
            seeding: self.state == TorrentState::Seeding,
            to: ctx.address().recipient(),
            collect: ctx.address().recipient(),
        });
    }

    /// Seconds until the next tick: every second while peers are connected (rates, pipelines,
    /// timeouts), every [`IDLE_TICK`] otherwise, so a thousand idle torrents cost next to nothing.
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        let step = if !self.peers.is_empty() || self.checking.is_some() {
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
    fn wake_tick(&mut self, ctx: &mut Context<Self>) {
        if self.next_tick.cancel_slow(ctx) {
            self.schedule_tick(ctx);
        }
    }

    /// Whether a period of `secs` seconds ended within the last tick.
    fn every(&self, secs: u64, step: u64) -> bool {
        (self.ticks - step) / secs != self.ticks / secs
    }

    fn tick(&mut self, step: u64, ctx: &mut Context<Self>) {
        crate::fault::maybe_panic("torrent.tick");
        self.ticks += step;
        if !self.peers.is_empty() {
            self.stats.down.tick();
            self.stats.up.tick();
        } else if step > 1 {
            // No peers: rates decay to zero.
            self.stats.down = Rate::default();
            self.stats.up = Rate::default();
        }
        for p in self.peers.values_mut() {
            p.down.tick();
            p.up.tick();
            p.adapt_depth();
        }
        if self.state == TorrentState::Downloading && !self.peers.is_empty() {
            self.expire_requests();
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for k in keys {
                self.update_interest(k);
            }
            self.fill_all();
        }
        let live = matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        );
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
            self.state == TorrentState::Downloading && self.peers.len() < self.cfg.max_peers / 2;
        // The first lookup may have found the DHT node still starting: retry until one ran.
        if (self.every(60, step) || !self.dht_asked) && wants_peers {
            self.dht_lookup(ctx);
        }
        if self.every(5, step) {
            self.connect_more(ctx);
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
        if self.every(10, step) && !self.meta.info.private && !self.peers.is_empty() {
            self.send_pex();
        }
        if self.every(10, step) && self.dirty && self.checking.is_none() {
            self.save_resume();
        }
        if self.every(2, step) {
            let event = (
                self.progress(),
                self.stats.down.per_second(),
                self.stats.up.per_second(),
                self.state,
            );
            // Only news: an idle torrent says nothing.
            if self.last_progress_event.as_ref() != Some(&event) {
                let _ = self.services.events.send(Event::Progress {
                    info_hash: self.shared.info_hash.to_hex(),
                    progress: event.0,
                    download_rate: event.1,
                    upload_rate: event.2,
                    state: event.3,
                });
                self.last_progress_event = Some(event);
            }
        }
        self.publish();
    }

    /// Where to start from the resume record: its bitfield if the files on disk are as the record
    /// left them, a check if they changed, an error if every byte it had is gone.
    fn trusted_record(&mut self) -> StartFrom {
        let Some(rec) = self.cfg.record.take() else {
            return StartFrom::Check;
        };
        self.shared
            .transferred
            .restore(rec.uploaded, rec.downloaded);
        if rec.added_at > 0 {
            self.stats.added_at = rec.added_at;
        }
        self.stats.completed_at = rec.completed_at;
        if !rec.priorities.is_empty() {
            self.file_priorities = rec.priorities.clone();
        }
        let n = self.picker.num_pieces();
        let Some(have) = rec.have_bytes().and_then(|b| Bitfield::from_wire(&b, n)) else {
            return StartFrom::Check;
        };
        if self.shared.storage.file_stats() == rec.files {
            return StartFrom::Known(have);
        }
        // An unmounted disk or a moved folder looks like data deleted: a recheck would find
        // nothing and download it all again, into the mount point. Transmission stops such a
        // torrent with an error until the user says; so do we. A few files missing is a recheck.
        if have.count() > 0 && self.shared.storage.nothing_on_disk() {
            return StartFrom::DataMissing;
        }
        tracing::info!(torrent = %self.name(), "data changed since the last run; rechecking");
        StartFrom::Check
    }

    fn resume_bytes(&self) -> Option<(std::path::PathBuf, Vec<u8>)> {
        // Data missing at start: the record on disk still knows what we had; an empty bitfield
        // written over it would make the next start download everything again.
        if self.unchecked {
            return None;
        }
        let paths = self.cfg.resume.as_ref()?;
        let rec = ResumeRecord {
            info_hash: self.shared.info_hash.to_hex(),
            save_dir: self.cfg.save_dir.clone(),
            paused: self.state == TorrentState::Paused || self.cfg.paused,
            have: hex_encode(self.picker.have().as_bytes()),
            files: self.shared.storage.file_stats(),
            priorities: self.file_priorities.clone(),
            downloaded: self.shared.transferred.downloaded(),
            uploaded: self.shared.transferred.uploaded(),
            added_at: self.stats.added_at,
            completed_at: self.stats.completed_at,
            trackers: Vec::new(),
        };
        Some((paths.resume(), serde_json::to_vec_pretty(&rec).ok()?))
    }

    /// Saves the resume record off the actor thread.
    pub(super) fn save_resume(&mut self) {
        self.dirty = false;
        if let Some((path, bytes)) = self.resume_bytes() {
            let name = self.name();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = write_atomic(&path, &bytes) {
                    tracing::warn!(torrent = %name, "saving resume state: {e}");
                }
            });
        }
    }

    pub fn progress(&self) -> f64 {
        if let Some(c) = &self.checking {
            return c.done as f64 / self.picker.num_pieces().max(1) as f64;
        }
        let total = self.meta.info.total_length.max(1);
        let left = self.picker.bytes_left();
        let wanted_total = total; // file priorities refine this in the daemon
        1.0 - left as f64 / wanted_total as f64
    }
}

impl Actor for Torrent {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Blocks from all peers arrive here: a deep but bounded mailbox. Peers that find it full
        // stop reading their sockets until there is room.
        ctx.set_mailbox_capacity(4096);
        let start = match self.cfg.known_have.take() {
            Some(have) => StartFrom::Known(have),
            None => self.trusted_record(),
        };
        match start {
            StartFrom::Known(have) if have.len() == self.picker.num_pieces() => {
                self.finish_check(have, ctx)
            }
            StartFrom::DataMissing => {
                self.unchecked = true;
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
        self.schedule_tick(ctx);
        self.publish();
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        self.go_quiet(ctx);
        // A last, synchronous save: small, and the only chance before the actor is gone.
        if self.checking.is_none() {
            if let Some((path, bytes)) = self.resume_bytes() {
                if let Err(e) = write_atomic(&path, &bytes) {
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
        if self.banned_keys.contains(&msg.key) {
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
                tracing::info!(torrent = %self.name(), peer = key, %reason, ?after, "peer crashed; re-dialling");
                self.on_peer_exit(key, &reason, true);
            }
            ExitOutcome::SiblingStopped { .. } => self.on_peer_exit(key, &reason, true),
            ExitOutcome::GaveUp { .. } => {
                tracing::info!(torrent = %self.name(), peer = key, %reason, "peer restart budget used up; giving up");
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

/// A peer actor asks for our have-bitfield right after its handshake.
#[derive(Message)]
#[rtype(result = "Bitfield")]
pub struct GetHave;

impl Handler<GetHave> for Torrent {
    type Result = MessageResult<GetHave>;

    fn handle(&mut self, _: GetHave, _: &mut Context<Self>) -> MessageResult<GetHave> {
        MessageResult(self.picker.have().clone())
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

/// A connection the listener accepted for this torrent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingPeer {
    pub addr: SocketAddr,
    pub dial: Dial,
}

impl Handler<IncomingPeer> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: IncomingPeer, ctx: &mut Context<Self>) {
        let live = matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        );
        let banned = self.book.as_ref().is_some_and(|b| b.is_banned(msg.addr));
        if !live || self.peers.len() >= self.cfg.max_peers || banned {
            return; // dropping the socket closes it
        }
        let Some(place) = self.shared.peer_budget.take() else {
            return; // the global connection limit
        };
        let key = self.next_key;
        self.next_key += 1;
        let mut slot = PeerSlot::new(
            msg.addr,
            false,
            PeerSource::Incoming,
            self.picker.num_pieces(),
        );
        slot._place = Some(place);
        self.peers.insert(key, slot);
        let (shared, me, addr, dial) = (self.shared.clone(), ctx.address(), msg.addr, msg.dial);
        // An incoming connection is a temporary child: its socket can be used once.
        let spec = ChildSpec::once(key, move |link| {
            Ok(ChildHandle::new(
                PeerConn::new(key, addr, dial, shared, me, link).start(),
            ))
        });
        if let Err(e) = self.peer_children().start_spec(spec, ctx) {
            tracing::warn!(peer = %addr, "could not start incoming peer: {e}");
            self.peers.remove(&key);
        }
        self.wake_tick(ctx);
    }
}

/// Peer addresses from a tracker, the DHT or the user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeersFound {
    pub addrs: Vec<SocketAddr>,
    pub source: PeerSource,
}

impl Handler<PeersFound> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: PeersFound, ctx: &mut Context<Self>) {
        self.add_peers(msg.addrs, msg.source, ctx);
    }
}

impl Handler<CollectPeers> for Torrent {
    type Result = MessageResult<CollectPeers>;

    fn handle(&mut self, _: CollectPeers, _: &mut Context<Self>) -> MessageResult<CollectPeers> {
        let now = Instant::now();
        let peers = self
            .peers
            .iter_mut()
            .filter(|(_, p)| p.addr.is_some())
            .map(|(k, p)| p.snapshot(*k, now))
            .collect();
        MessageResult(PeersReport {
            seeding: self.state == TorrentState::Seeding,
            peers,
        })
    }
}

impl Handler<ChokeDecision> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: ChokeDecision, _: &mut Context<Self>) {
        if !matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let current: Vec<(PeerKey, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.addr.is_some())
            .map(|(k, p)| (*k, p.am_choking))
            .collect();
        for (k, choke) in msg.changes(current) {
            if let Some(p) = self.peers.get_mut(&k) {
                p.am_choking = choke;
                if let Some(a) = &p.addr {
                    a.do_send(ToPeer::Choke(choke));
                }
            }
        }
        for (k, p) in self.peers.iter_mut() {
            p.optimistic = msg.optimistic == Some(*k);
            p.snubbed_by_choker = msg.snubbed.binary_search(k).is_ok();
        }
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
