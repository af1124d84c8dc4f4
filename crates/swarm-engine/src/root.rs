//! # Root — the root supervisor
//!
//! Owns: the session — configuration, peer id, the torrent registry, the disk pool handle, the
//! listening sockets, TCP and UDP on the same port (bound before anything starts, reused across
//! listener and UDP port restarts), and the
//! torrent threads (arbiters) torrents are placed on by info-hash.
//!
//! Supervises (one_for_one, a per-child budget of 5 restarts in 60 s, backoff 0.2 s → 30 s), with
//! `Children<RootChild, Root>` — the root also keeps the registry, so it is not the generic
//! `swarm_supervisor::Supervisor`:
//! - the global services, `Permanent`, declared in one table: [`Root::services`] in
//!   `root/services.rs` (listener, UDP port, announcer, choker, rate limiter, DHT). One that exhausts its
//!   budget makes the engine fail: [`Session::failed`](crate::Session::failed) completes with
//!   the reason, and the daemon stops with exit code 1 (systemd's `Restart=on-failure` starts
//!   it again). The same rates that the fault tests use decide it: a service crashing 6 times
//!   within 60 s (e.g. `rate_limiter.serve:1.0` with limits set again and again) stops it;
//! - one `Torrent` per torrent, `Transient` (`root/torrents.rs`): a crashed torrent is restarted
//!   (it rechecks its data); removing a torrent is a normal exit. A torrent that exhausts its
//!   budget is given up: reported as an error event and listed in `error` with the reason until
//!   `resume` or `verify` starts it again (`StartGivenUp`); other torrents never notice;
//! - one `MagnetFetch` per magnet link still fetching its metadata, `Transient`
//!   (`root/magnets.rs`); when the metadata arrives it becomes a torrent.
//!
//! Takes: from the [`Session`](crate::Session) handle, the lifecycle orders (`AddTorrent`,
//! `RemoveTorrent`, `AddMagnet`, `MagnetOrder`: `root/torrents.rs`, `root/magnets.rs`), the
//! read-side queries (`ListJson`, `ListNames`, `ListPublished`, `GetTorrent`, `ListTorrents`,
//! `GetRootStats`, `GetTrackers`, `GetMagnet`: `root/queries.rs`), `GlobalLimits`
//! (`root/services.rs`), the queue's orders and settings (`QueueOrder`, `QueueSettingsMsg`:
//! `root/queueing.rs`, over the pure core `root/queue.rs`) and `ShutdownSession` (here). Files of the state directory are written
//! by [`crate::resume`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_model::{Event, RestartCounts};
use swarm_supervisor::{ChildExited, Children, ExitOutcome, RestartPolicy};
use swarm_wire::InfoHash;

use crate::config::EngineConfig;
use crate::disk::DiskPool;
use crate::magnet::MagnetEntry;
use crate::resume::StatePaths;
use crate::services::announcer::StopAll;
use crate::services::dht::DhtSlot;
use crate::services::rate_limiter::QuotaBoard;
use crate::services::udp_port::UdpSlot;
use crate::torrent::actor::Services;
use crate::torrent::messages::ServicesRestarted;
use crate::torrent::peer::encryption::PolicyCell;
use crate::torrent::shared::{PeerBudget, TorrentShared};
use crate::torrent::Torrent;

mod magnets;
mod queries;
pub(crate) mod queue;
mod queueing;
mod services;
pub(crate) mod speed;
mod torrents;

pub use magnets::{AddMagnet, GetMagnet, MagnetCommand, MagnetOrder, MagnetView};
pub use queries::{
    GetRootStats, GetTorrent, GetTrackers, ListJson, ListNames, ListPublished, ListTorrents,
    RootStats,
};
pub use queueing::{QueueCommand, QueueOrder, QueueSettingsMsg};
pub use services::{AltSpeedMsg, Encryption, GlobalLimits, LimitsInForce};
pub use torrents::{AddTorrent, GetGivenUp, RemoveTorrent, StartGivenUp};

/// The root's children. Services are `Permanent`, torrents and magnets `Transient`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RootChild {
    Listener,
    UdpPort,
    Announcer,
    Choker,
    RateLimiter,
    Dht,
    Torrent(InfoHash),
    Magnet(InfoHash),
}

struct TorrentEntry {
    shared: Arc<TorrentShared>,
    state: Option<StatePaths>,
    /// The metainfo the actor runs on, kept to start it again once given up.
    meta: Arc<swarm_wire::Metainfo>,
    /// Why the root gave the torrent up (its restart budget used up). It stays listed, in
    /// `error`, until `resume` or `verify` starts it again (`root/torrents.rs`).
    gave_up: Option<String>,
}

pub struct Root {
    cfg: EngineConfig,
    peer_id: [u8; 20],
    listen_port: u16,
    socket: std::net::TcpListener,
    /// The UDP socket on the peer port (when uTP is on or the DHT shares the port).
    udp_socket: Option<std::net::UdpSocket>,
    udp: UdpSlot,
    disk: DiskPool,
    services: Services,
    arbiters: Vec<ArbiterHandle>,
    torrents: HashMap<InfoHash, TorrentEntry>,
    children: Children<RootChild, Root>,
    next_storage_id: u64,
    started_at: Instant,
    restarts: RestartCounts,
    dht: DhtSlot,
    magnets: HashMap<InfoHash, MagnetEntry>,
    /// Rate limits and the per-torrent "limited?" gates, shared by every limiter incarnation.
    board: QuotaBoard,
    /// The global connection cap, shared by all torrents.
    peer_budget: PeerBudget,
    /// The encryption policy, shared by all torrents and the listener.
    encryption: PolicyCell,
    /// The IP blocklist, shared by the listener, the UDP port, torrents and magnets.
    blocklist: crate::blocklist::Blocklist,
    /// `<state>/torrents`, where each torrent's `.torrent` and resume record live.
    torrents_dir: Option<Arc<std::path::Path>>,
    /// Why the engine cannot go on (a global service gave up), for whoever runs it.
    failed: tokio::sync::watch::Sender<Option<String>>,
    /// Which torrents may run, and which reached a seeding limit (`root/queueing.rs`).
    queue: queue::Queue,
    /// The global rate limits: normal or alternative, and the schedule (`root/speed.rs`).
    speed: speed::SpeedPolicy,
    /// Turns to hash data, shared by every torrent (`EngineConfig::max_active_checks`).
    checks: Arc<tokio::sync::Semaphore>,
}

impl Root {
    pub(crate) fn new(
        cfg: EngineConfig,
        (socket, udp_socket): (std::net::TcpListener, Option<std::net::UdpSocket>),
        events: tokio::sync::broadcast::Sender<Event>,
        failed: tokio::sync::watch::Sender<Option<String>>,
        blocklist: crate::blocklist::Blocklist,
    ) -> Self {
        let listen_port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        // One child's crashes never take down the others (one_for_one), and there is no
        // global intensity: a thousand torrents crashing once each is not a reason to stop.
        // Each child has its own budget instead, and a backoff so a crash loop is throttled.
        let policy = RestartPolicy::one_for_one()
            .unlimited_intensity()
            .child_budget(5, Duration::from_secs(60))
            .backoff(
                Duration::from_millis(200),
                Duration::from_secs(30),
                Duration::from_secs(120),
            );
        let arbiters = (0..cfg.torrent_threads.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        let board = QuotaBoard::new();
        Root {
            peer_id: crate::peer_id::generate(),
            listen_port,
            socket,
            udp_socket,
            udp: UdpSlot::default(),
            disk: DiskPool::start(cfg.disk_threads, cfg.max_open_files, cfg.read_cache_bytes),
            services: Services {
                announcer: Default::default(),
                listener: Default::default(),
                choker: Default::default(),
                limiter: Default::default(),
                board: board.clone(),
                events,
                queue: None,
            },
            board,
            peer_budget: PeerBudget::new(cfg.max_peers_global.max(1)),
            encryption: PolicyCell::new(cfg.encryption),
            blocklist,
            arbiters,
            torrents: HashMap::new(),
            children: Children::new(policy, |r: &mut Root| &mut r.children).named("root"),
            next_storage_id: 1,
            started_at: Instant::now(),
            restarts: RestartCounts::default(),
            dht: DhtSlot::default(),
            magnets: HashMap::new(),
            torrents_dir: cfg.state_dir.as_deref().map(StatePaths::torrents_dir),
            failed,
            queue: queue::Queue::new(cfg.queue, cfg.seeding),
            speed: speed::SpeedPolicy::new(cfg.limits, cfg.alt_speed),
            checks: Arc::new(tokio::sync::Semaphore::new(cfg.max_active_checks.max(1))),
            cfg,
        }
    }
}

impl Actor for Root {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.services.queue = Some(ctx.address().recipient());
        self.start_services(ctx);
        self.start_queue(ctx);
        self.start_speed_schedule(ctx);
    }
}

impl Handler<ChildExited<RootChild>> for Root {
    type Result = ();

    fn handle(&mut self, msg: ChildExited<RootChild>, ctx: &mut Context<Self>) {
        let id = msg.id.clone();
        let reason = msg.reason.clone();
        match self.children.handle_exit(msg, ctx) {
            ExitOutcome::Restarting { after, .. } => {
                tracing::warn!(child = ?id, %reason, ?after, "restarting");
                if let RootChild::Torrent(ih) = id {
                    self.restarts.torrents += 1;
                    // The new incarnation starts from its record, which may lag behind a queue
                    // order it could not save yet (it was checking): tell it again.
                    ctx.run_later(after + Duration::from_millis(50), move |root, _| {
                        root.tell_queue_settings([ih])
                    });
                } else {
                    self.restarts.services += 1;
                }
                if matches!(id, RootChild::Listener | RootChild::Announcer) {
                    // The new incarnation starts after `after` (the supervisor's timer, set
                    // first, fires first); then every torrent registers with it again.
                    ctx.run_later(after + Duration::from_millis(50), |root, _| {
                        root.tell_torrents(|| ServicesRestarted)
                    });
                }
            }
            ExitOutcome::GaveUp { .. } | ExitOutcome::Removed { .. } => match id {
                RootChild::Magnet(ih) => self.magnet_ended(ih, &reason),
                RootChild::Torrent(ih) => self.torrent_ended(ih, &reason),
                _ if reason.is_abnormal() => self.fail(format!(
                    "the {id:?} service gave up after repeated crashes: {reason}"
                )),
                _ => {}
            },
            ExitOutcome::Escalate(e) => self.fail(format!("the root supervisor gave up: {e}")),
            ExitOutcome::Ignored | ExitOutcome::SiblingStopped { .. } => {}
        }
    }
}

impl Root {
    /// Sends `msg()` to every torrent's actor.
    fn tell_torrents<M>(&self, msg: impl Fn() -> M)
    where
        M: Message<Result = ()> + Send + 'static,
        Torrent: Handler<M>,
    {
        for ih in self.torrents.keys() {
            if let Some(t) = self.children.addr::<Torrent>(&RootChild::Torrent(*ih)) {
                t.do_send(msg());
            }
        }
    }

    /// The engine cannot go on: says why to whoever runs it (the daemon stops, exit code 1).
    /// Stopping the actix `System` here would not do: the daemon runs inside `block_on`, which
    /// a stopped System does not end, and its watchdog task would keep systemd fed.
    fn fail(&mut self, why: String) {
        tracing::error!("{why}; stopping");
        self.failed.send_replace(Some(why));
    }
}

/// Graceful stop: `stopped` to the trackers (bounded), then every child in reverse order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownSession {
    pub announce_timeout: Duration,
}

impl Handler<ShutdownSession> for Root {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: ShutdownSession, _: &mut Context<Self>) -> Self::Result {
        let announcer = self.services.announcer.get();
        let timeout = msg.announce_timeout;
        Box::pin(
            async move {
                if let Some(a) = announcer {
                    let _ = tokio::time::timeout(
                        timeout + Duration::from_secs(1),
                        a.send(StopAll { timeout }),
                    )
                    .await;
                }
            }
            .into_actor(self)
            .then(|_, act, ctx| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                act.children.shutdown(ctx, move |_, _| {
                    let _ = tx.send(());
                });
                async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
                }
                .into_actor(act)
            }),
        )
    }
}

/// A list entry for a torrent that has not published one yet (or, for a magnet, cannot).
fn blank_summary(
    ih: InfoHash,
    name: String,
    state: swarm_model::TorrentState,
    total_bytes: u64,
    save_dir: &std::path::Path,
) -> swarm_model::TorrentSummary {
    swarm_model::TorrentSummary {
        info_hash: ih,
        name,
        state,
        progress: 0.0,
        total_bytes,
        have_bytes: 0,
        wanted_bytes: total_bytes,
        left_bytes: total_bytes,
        download_rate: 0,
        upload_rate: 0,
        downloaded: 0,
        uploaded: 0,
        peers: 0,
        labels: Vec::new(),
        moving: None,
        save_dir: save_dir.display().to_string(),
        error: None,
        queue_position: 0,
        forced: false,
    }
}
