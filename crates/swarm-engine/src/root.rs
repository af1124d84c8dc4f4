//! # Root — the root supervisor
//!
//! Owns: the session — configuration, peer id, the torrent registry, the disk pool handle, the
//! listening socket (bound before anything starts, reused across listener restarts), and the
//! torrent threads (arbiters) torrents are placed on by info-hash.
//!
//! Supervises (one_for_one, a per-child restart budget with backoff):
//! - global services, `Permanent`: the listener and the announcer;
//! - one `Torrent` per torrent, `Transient`: a crashed torrent is restarted (it rechecks its
//!   data); removing a torrent is a normal exit. A torrent that exhausts its budget is given up
//!   and reported as an error event; other torrents never notice.
//!
//! Takes: `AddTorrent`, `RemoveTorrent`, `GetTorrent`, `ListTorrents`, `GetRootStats`,
//! `ShutdownSession` from the [`Session`](crate::Session) handle.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_control::{Event, RestartCounts};
use swarm_supervisor::{ChildExited, ChildHandle, Children, ExitOutcome, Restart, RestartPolicy};
use swarm_tracker::UdpConfig;
use swarm_wire::{InfoHash, Metainfo};

use crate::bitfield::Bitfield;
use crate::config::EngineConfig;
use crate::disk::DiskPool;
use crate::error::EngineError;
use crate::magnet::MagnetEntry;
use crate::resume::{write_atomic, ResumeRecord, StatePaths};
use crate::services::announcer::{Announcer, StopAll};
use crate::services::choker::Choker;
use crate::services::dht::{DhtService, DhtSlot};
use crate::services::listener::Listener;
use crate::services::rate_limiter::{QuotaBoard, RateLimiter, SetLimits};
use crate::storage::Storage;
use crate::torrent::actor::Services;
use crate::torrent::shared::{Published, StatusCell, TorrentShared};
use crate::torrent::{Torrent, TorrentConfig};

mod magnets;

pub use magnets::{AddMagnet, GetMagnet, MagnetCommand, MagnetOrder, MagnetView};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RootChild {
    Listener,
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
}

pub struct Root {
    cfg: EngineConfig,
    peer_id: [u8; 20],
    listen_port: u16,
    socket: std::net::TcpListener,
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
    peer_budget: crate::torrent::shared::PeerBudget,
    /// `<state>/torrents`, where each torrent's `.torrent` and resume record live.
    torrents_dir: Option<Arc<std::path::Path>>,
}

impl Root {
    pub(crate) fn new(
        cfg: EngineConfig,
        socket: std::net::TcpListener,
        events: tokio::sync::broadcast::Sender<Event>,
    ) -> Self {
        let listen_port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
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
        Root {
            peer_id: crate::peer_id::generate(),
            listen_port,
            socket,
            disk: DiskPool::start(cfg.disk_threads, cfg.max_open_files, cfg.read_cache_bytes),
            services: Services {
                announcer: Default::default(),
                listener: Default::default(),
                choker: Default::default(),
                limiter: Default::default(),
                events,
            },
            board: QuotaBoard::new(),
            peer_budget: crate::torrent::shared::PeerBudget::new(cfg.max_peers_global.max(1)),
            arbiters,
            torrents: HashMap::new(),
            children: Children::new(policy, |r: &mut Root| &mut r.children).named("root"),
            next_storage_id: 1,
            started_at: Instant::now(),
            restarts: RestartCounts::default(),
            dht: DhtSlot::default(),
            magnets: HashMap::new(),
            torrents_dir: cfg.state_dir.as_deref().map(StatePaths::torrents_dir),
            cfg,
        }
    }

    fn start_services(&mut self, ctx: &mut Context<Self>) {
        let (socket, half_open, service) = (
            self.socket.try_clone(),
            self.cfg.max_half_open * 4,
            self.services.listener.clone(),
        );
        let handshake_timeout = self.cfg.handshake_timeout;
        match socket {
            Ok(socket) => {
                let start = move |link| {
                    let sock = socket.try_clone().map_err(|e| e.to_string())?;
                    let addr = Listener::new(sock, half_open, handshake_timeout, link).start();
                    service.set(Some(addr.clone()));
                    Ok(ChildHandle::new(addr))
                };
                if let Err(e) =
                    self.children
                        .start(RootChild::Listener, Restart::Permanent, start, ctx)
                {
                    tracing::error!("listener: {e}");
                }
            }
            Err(e) => tracing::error!("listener socket: {e}"),
        }
        let (peer_id, port, service) = (
            self.peer_id,
            self.listen_port,
            self.services.announcer.clone(),
        );
        let udp = UdpConfig {
            base_timeout: self.cfg.udp_tracker_timeout,
            max_retries: self.cfg.udp_tracker_retries,
            ..UdpConfig::default()
        };
        let start = move |link| {
            let addr = Announcer::new(peer_id, port, udp, link).start();
            service.set(Some(addr.clone()));
            Ok(ChildHandle::new(addr))
        };
        if let Err(e) = self
            .children
            .start(RootChild::Announcer, Restart::Permanent, start, ctx)
        {
            tracing::error!("announcer: {e}");
        }
        let (cfg, service) = (self.cfg.choker.clone(), self.services.choker.clone());
        let start = move |link| {
            let addr = Choker::new(cfg.clone(), link).start();
            service.set(Some(addr.clone()));
            Ok(ChildHandle::new(addr))
        };
        if let Err(e) = self
            .children
            .start(RootChild::Choker, Restart::Permanent, start, ctx)
        {
            tracing::error!("choker: {e}");
        }
        let (board, service) = (self.board.clone(), self.services.limiter.clone());
        let start = move |link| {
            let addr = RateLimiter::new(board.clone(), link).start();
            service.set(Some(addr.clone()));
            Ok(ChildHandle::new(addr))
        };
        match self
            .children
            .start(RootChild::RateLimiter, Restart::Permanent, start, ctx)
        {
            Ok(()) => self.services.limiter.do_send(SetLimits {
                global_down: self.cfg.limits.download,
                global_up: self.cfg.limits.upload,
            }),
            Err(e) => tracing::error!("rate limiter: {e}"),
        }
        if let Some(dht_cfg) = self.cfg.dht.clone() {
            let slot = self.dht.clone();
            let start = move |link| {
                let addr = DhtService::new(dht_cfg.clone(), slot.clone(), link).start();
                Ok(ChildHandle::new(addr))
            };
            if let Err(e) = self
                .children
                .start(RootChild::Dht, Restart::Permanent, start, ctx)
            {
                tracing::error!("dht: {e}");
            }
        }
    }

    fn add_torrent(
        &mut self,
        msg: AddTorrent,
        ctx: &mut Context<Self>,
    ) -> Result<InfoHash, EngineError> {
        let ih = msg.meta.info_hash;
        if self.torrents.contains_key(&ih) || self.magnets.contains_key(&ih) {
            return Err(EngineError::Duplicate(ih.to_hex()));
        }
        let save_dir = msg
            .save_dir
            .clone()
            .or_else(|| msg.record.as_ref().map(|r| r.save_dir.clone()))
            .unwrap_or_else(|| self.cfg.download_dir.clone());
        // A new torrent's save directory is made and tried now, so that a directory we cannot
        // write to is the add's error, named, rather than a failed piece later. A restored one
        // is made only if its record had no data (a failure there shows when it writes): one
        // that had data and is gone is an unmounted disk, which the torrent reports (see
        // `Torrent::trusted_record`) instead of our making it again on the mount point.
        match &msg.record {
            None => crate::storage::prepare_save_dir(&save_dir).map_err(|e| {
                EngineError::Io(format!(
                    "cannot write to the save directory {}: {}",
                    save_dir.display(),
                    crate::storage::io_reason(&e)
                ))
            })?,
            Some(r) if !r.have_bytes().is_some_and(|b| b.iter().any(|&x| x != 0)) => {
                let _ = std::fs::create_dir_all(&save_dir);
            }
            Some(_) => {}
        }
        let state = self.torrents_dir.as_ref().map(|d| StatePaths::of(d, ih));
        if let Some(paths) = &state {
            let path = paths.torrent();
            if !path.exists() {
                write_atomic(&path, &msg.meta.to_bytes())
                    .map_err(|e| EngineError::Io(format!("saving {}: {e}", path.display())))?;
            }
        }
        // The raw info dictionary moves to the torrent's shared handle (served over
        // `ut_metadata`); the metainfo keeps the parsed form only, not a second copy.
        let mut meta = msg.meta;
        let info_bytes = bytes::Bytes::from(std::mem::take(&mut meta.info_bytes));
        let meta = Arc::new(meta);
        // A new torrent's first resume record, at once: until the first periodic save, a crash
        // would otherwise bring it back in the default directory, unpaused.
        if let Some(paths) = &state {
            let path = paths.resume();
            if msg.record.is_none() && !path.exists() {
                let rec = ResumeRecord {
                    info_hash: ih.to_hex(),
                    save_dir: save_dir.clone(),
                    paused: msg.paused,
                    added_at: crate::now_unix(),
                    ..ResumeRecord::default()
                };
                let written = serde_json::to_vec_pretty(&rec)
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| write_atomic(&path, &bytes));
                if let Err(e) = written {
                    tracing::warn!(torrent = %meta.info.name, "saving resume state: {e}");
                }
            }
        }
        let id = self.next_storage_id;
        self.next_storage_id += 1;
        let storage = Arc::new(Storage::new(id, save_dir.clone(), meta.clone()));
        let shared = Arc::new(TorrentShared {
            info_hash: ih,
            peer_id: self.peer_id,
            storage,
            disk: self.disk.clone(),
            listen_port: self.listen_port,
            max_frame: self.cfg.max_frame,
            max_upload_queue: self.cfg.max_upload_queue,
            max_write_queue_bytes: self.cfg.max_write_queue_bytes,
            connect_timeout: self.cfg.connect_timeout,
            handshake_timeout: self.cfg.handshake_timeout,
            idle_timeout: self.cfg.idle_timeout,
            dht: self.dht.clone(),
            info_bytes,
            gate: self.board.gate(ih),
            limiter: self.services.limiter.clone(),
            peer_budget: self.peer_budget.clone(),
            // Until the torrent's first publish, microseconds from now.
            status: StatusCell::new(Published::new(
                &blank_summary(
                    ih,
                    meta.info.name.clone(),
                    swarm_control::TorrentState::Checking,
                    meta.info.total_length,
                    &save_dir,
                ),
                0,
            )),
            transferred: Default::default(),
        });
        let tcfg = TorrentConfig {
            save_dir,
            max_peers: self.cfg.max_peers_per_torrent,
            max_half_open: self.cfg.max_half_open,
            unchoke_slots: self.cfg.unchoke_slots,
            max_pending_writes: self.cfg.max_pending_writes,
            paused: msg.paused || msg.record.as_ref().is_some_and(|r| r.paused),
            known_have: msg.known_have,
            resume: state.clone(),
            record: msg.record.map(Box::new),
        };
        // Spread torrents over the torrent threads by info-hash.
        let arbiter = self.arbiters[ih.0[0] as usize % self.arbiters.len()].clone();
        let (services, sh) = (self.services.clone(), shared.clone());
        // Kept by the supervisor for restarts, which recheck the data instead of trusting what
        // the crashed incarnation knew: no record. The first start's configuration is boxed
        // and gone once used, so the supervision entry stays small.
        let restart_cfg = Arc::new(TorrentConfig {
            known_have: None,
            record: None,
            ..tcfg.clone()
        });
        let mut first = Some(Box::new(tcfg));
        let start = move |link| {
            let cfg = first
                .take()
                .map_or_else(|| TorrentConfig::clone(&restart_cfg), |c| *c);
            let (meta, sh, services) = (meta.clone(), sh.clone(), services.clone());
            let addr = Torrent::start_in_arbiter(&arbiter, move |_| {
                Torrent::new(meta, sh, cfg, services, link)
            });
            Ok(ChildHandle::new(addr))
        };
        self.children
            .start(RootChild::Torrent(ih), Restart::Transient, start, ctx)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.torrents.insert(ih, TorrentEntry { shared, state });
        Ok(ih)
    }
}

impl Actor for Root {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.start_services(ctx);
        if let Some(secs) = crate::fault::value("root.freeze_after") {
            ctx.run_later(Duration::from_secs_f64(secs), |_, _| {
                tracing::warn!("fault injection: freezing the root's thread");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            });
        }
    }
}

impl Handler<ChildExited<RootChild>> for Root {
    type Result = ();

    fn handle(&mut self, msg: ChildExited<RootChild>, ctx: &mut Context<Self>) {
        let id = msg.id.clone();
        let reason = msg.reason.clone();
        let is_torrent = matches!(id, RootChild::Torrent(_));
        match self.children.handle_exit(msg, ctx) {
            ExitOutcome::Restarting { after, .. } => {
                tracing::warn!(child = ?id, %reason, ?after, "restarting");
                if is_torrent {
                    self.restarts.torrents += 1;
                } else {
                    self.restarts.services += 1;
                }
            }
            ExitOutcome::GaveUp { .. } | ExitOutcome::Removed { .. } => {
                if let RootChild::Magnet(ih) = id {
                    if reason.is_abnormal() {
                        self.magnets.remove(&ih);
                        let _ = self.services.events.send(Event::Error {
                            info_hash: ih.to_hex(),
                            message: format!("fetching the magnet's metadata failed: {reason}"),
                        });
                    }
                } else if let RootChild::Torrent(ih) = id {
                    if let Some(e) = self.torrents.remove(&ih) {
                        self.disk.forget(e.shared.storage.id);
                    }
                    if reason.is_abnormal() {
                        let _ = self.services.events.send(Event::Error {
                            info_hash: ih.to_hex(),
                            message: format!("torrent gave up after repeated crashes: {reason}"),
                        });
                    }
                } else if reason.is_abnormal() {
                    tracing::error!(child = ?id, %reason, "a global service gave up; stopping");
                    System::current().stop_with_code(1);
                }
            }
            ExitOutcome::Escalate(e) => {
                tracing::error!("root supervisor gave up: {e}");
                System::current().stop_with_code(1);
            }
            ExitOutcome::Ignored | ExitOutcome::SiblingStopped { .. } => {}
        }
    }
}

#[derive(Message)]
#[rtype(result = "Result<InfoHash, EngineError>")]
pub struct AddTorrent {
    pub meta: Metainfo,
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    /// Pieces known good without hashing; `None` checks the data on disk.
    pub known_have: Option<Bitfield>,
    /// The resume record found at start-up (trusted only if the files match it).
    pub record: Option<ResumeRecord>,
}

impl Handler<AddTorrent> for Root {
    type Result = Result<InfoHash, EngineError>;

    fn handle(&mut self, msg: AddTorrent, ctx: &mut Context<Self>) -> Self::Result {
        let name = msg.meta.info.name.clone();
        let ih = self.add_torrent(msg, ctx)?;
        tracing::info!(torrent = %name, info_hash = %ih, "added");
        let _ = self.services.events.send(Event::Added {
            info_hash: ih.to_hex(),
            name,
        });
        Ok(ih)
    }
}

#[derive(Message)]
#[rtype(result = "Option<Addr<Torrent>>")]
pub struct GetTorrent(pub InfoHash);

impl Handler<GetTorrent> for Root {
    type Result = Option<Addr<Torrent>>;

    fn handle(&mut self, msg: GetTorrent, _: &mut Context<Self>) -> Self::Result {
        self.children.addr::<Torrent>(&RootChild::Torrent(msg.0))
    }
}

#[derive(Message)]
#[rtype(result = "Vec<(InfoHash, Addr<Torrent>)>")]
pub struct ListTorrents;

impl Handler<ListTorrents> for Root {
    type Result = MessageResult<ListTorrents>;

    fn handle(&mut self, _: ListTorrents, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.torrents
                .keys()
                .filter_map(|ih| {
                    Some((
                        *ih,
                        self.children.addr::<Torrent>(&RootChild::Torrent(*ih))?,
                    ))
                })
                .collect(),
        )
    }
}

/// A list entry for a torrent that has not published one yet (or, for a magnet, cannot).
fn blank_summary(
    ih: InfoHash,
    name: String,
    state: swarm_control::TorrentState,
    total_bytes: u64,
    save_dir: &std::path::Path,
) -> swarm_control::TorrentSummary {
    swarm_control::TorrentSummary {
        info_hash: ih.to_hex(),
        name,
        state,
        progress: 0.0,
        total_bytes,
        have_bytes: 0,
        download_rate: 0,
        upload_rate: 0,
        downloaded: 0,
        uploaded: 0,
        peers: 0,
        save_dir: save_dir.display().to_string(),
        error: None,
    }
}

impl Root {
    /// `f` on every torrent's published status (see [`StatusCell`]), magnets waiting for
    /// metadata included, in the order of their names.
    fn each_published(&self, mut f: impl FnMut(&Published)) {
        use std::borrow::Cow;
        enum Source<'a> {
            Torrent(&'a StatusCell),
            Magnet(Published),
        }
        let mut named: Vec<(Cow<str>, Source)> =
            Vec::with_capacity(self.torrents.len() + self.magnets.len());
        named.extend(self.torrents.values().map(|e| {
            let name = Cow::Borrowed(e.shared.storage.info.name.as_str());
            (name, Source::Torrent(&e.shared.status))
        }));
        for (ih, e) in &self.magnets {
            let summary = self.magnet_summary(*ih, e);
            named.push((
                Cow::Owned(summary.name.clone()),
                Source::Magnet(Published::new(&summary, 0)),
            ));
        }
        named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, source) in &named {
            match source {
                Source::Torrent(cell) => cell.with(&mut f),
                Source::Magnet(p) => f(p),
            }
        }
    }
}

/// Every torrent's published status, by name: what `stats` adds up, without a message to each
/// torrent.
#[derive(Message)]
#[rtype(result = "Vec<Published>")]
pub struct ListPublished;

impl Handler<ListPublished> for Root {
    type Result = MessageResult<ListPublished>;

    fn handle(&mut self, _: ListPublished, _: &mut Context<Self>) -> Self::Result {
        let mut out = Vec::with_capacity(self.torrents.len() + self.magnets.len());
        self.each_published(|p| out.push(p.clone()));
        MessageResult(out)
    }
}

/// Every torrent's info-hash and name (a magnet's display name, or its info-hash in hex): what
/// resolving an info-hash prefix needs, without reading any summary.
#[derive(Message)]
#[rtype(result = "Vec<(InfoHash, String)>")]
pub struct ListNames;

impl Handler<ListNames> for Root {
    type Result = MessageResult<ListNames>;

    fn handle(&mut self, _: ListNames, _: &mut Context<Self>) -> Self::Result {
        let torrents = self
            .torrents
            .iter()
            .map(|(ih, e)| (*ih, e.shared.storage.info.name.clone()));
        let magnets = self.magnets.iter().map(|(ih, e)| (*ih, e.magnet.name()));
        MessageResult(torrents.chain(magnets).collect())
    }
}

/// `list`'s answer: every torrent's published summary, by name, as one JSON array joined from
/// the JSON the torrents keep (nothing is serialized here).
#[derive(Message)]
#[rtype(result = "String")]
pub struct ListJson;

impl Handler<ListJson> for Root {
    type Result = MessageResult<ListJson>;

    fn handle(&mut self, _: ListJson, _: &mut Context<Self>) -> Self::Result {
        // ~280 bytes a torrent; a little more is cheaper than growing the buffer.
        let mut out = String::with_capacity(300 * (self.torrents.len() + self.magnets.len()) + 2);
        out.push('[');
        self.each_published(|p| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&p.json);
        });
        out.push(']');
        MessageResult(out)
    }
}

#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct RemoveTorrent {
    pub info_hash: InfoHash,
    pub delete_data: bool,
}

impl Handler<RemoveTorrent> for Root {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;

    fn handle(&mut self, msg: RemoveTorrent, ctx: &mut Context<Self>) -> Self::Result {
        let ih = msg.info_hash;
        if self.magnets.remove(&ih).is_some() {
            let _ = self.children.terminate(&RootChild::Magnet(ih), ctx);
            if let Some(d) = &self.torrents_dir {
                StatePaths::of(d, ih).remove();
            }
            let _ = self.services.events.send(Event::Removed {
                info_hash: ih.to_hex(),
            });
            return Box::pin(fut::ready(Ok(())));
        }
        let Some(entry) = self.torrents.remove(&ih) else {
            return Box::pin(fut::ready(Err(EngineError::NotFound(ih.to_hex()))));
        };
        let stopped = self.children.terminate(&RootChild::Torrent(ih), ctx);
        let (disk, storage, events) = (
            self.disk.clone(),
            entry.shared.storage.clone(),
            self.services.events.clone(),
        );
        let delete = msg.delete_data;
        let state = entry.state;
        Box::pin(
            async move {
                if let Ok(rx) = stopped {
                    let _ = rx.await;
                }
                disk.forget(storage.id);
                if let Some(paths) = state {
                    paths.remove();
                }
                if delete {
                    disk.delete_files(storage)
                        .await
                        .map_err(|e| EngineError::Io(format!("deleting data: {e}")))?;
                }
                let _ = events.send(Event::Removed {
                    info_hash: ih.to_hex(),
                });
                Ok(())
            }
            .into_actor(self),
        )
    }
}

pub struct RootStats {
    pub restarts: RestartCounts,
    pub uptime: Duration,
    pub listen_port: u16,
    pub disk_jobs_panicked: u64,
}

#[derive(Message)]
#[rtype(result = "RootStats")]
pub struct GetRootStats;

impl Handler<GetRootStats> for Root {
    type Result = MessageResult<GetRootStats>;

    fn handle(&mut self, _: GetRootStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RootStats {
            restarts: self.restarts.clone(),
            uptime: self.started_at.elapsed(),
            listen_port: self.listen_port,
            disk_jobs_panicked: self.disk.jobs_panicked(),
        })
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

#[derive(Message)]
#[rtype(result = "Vec<swarm_control::TrackerInfo>")]
pub struct GetTrackers(pub InfoHash);

impl Handler<GetTrackers> for Root {
    type Result = ResponseFuture<Vec<swarm_control::TrackerInfo>>;

    fn handle(&mut self, msg: GetTrackers, _: &mut Context<Self>) -> Self::Result {
        let announcer = self.services.announcer.get();
        let torrent = self.children.addr::<Torrent>(&RootChild::Torrent(msg.0));
        Box::pin(async move {
            let tracked = match announcer {
                Some(a) => a
                    .send(crate::services::announcer::GetTrackers { info_hash: msg.0 })
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if !tracked.is_empty() {
                return tracked;
            }
            // Not in the announcer's list (paused, checking, failed): the torrent's own trackers,
            // not contacted.
            let tiers = match torrent {
                Some(t) => t
                    .send(crate::torrent::messages::GetTrackerTiers)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            tiers
                .into_iter()
                .enumerate()
                .flat_map(|(tier, urls)| {
                    urls.into_iter().map(move |url| swarm_control::TrackerInfo {
                        url,
                        tier: tier as u32,
                        status: "not_contacted".into(),
                        message: None,
                        seeders: None,
                        leechers: None,
                        peers_received: 0,
                        next_announce_secs: None,
                    })
                })
                .collect()
        })
    }
}

/// The global limits in force, and a way to change them at run time.
#[derive(Message)]
#[rtype(result = "swarm_control::Limits")]
pub struct GlobalLimits(pub Option<swarm_control::Limits>);

impl Handler<GlobalLimits> for Root {
    type Result = MessageResult<GlobalLimits>;

    fn handle(&mut self, msg: GlobalLimits, _: &mut Context<Self>) -> Self::Result {
        if let Some(l) = msg.0 {
            self.services.limiter.do_send(SetLimits {
                global_down: l.download,
                global_up: l.upload,
            });
            // Answer with what was asked: the limiter applies it on its next message.
            return MessageResult(swarm_control::Limits {
                download: l.download.filter(|r| *r > 0),
                upload: l.upload.filter(|r| *r > 0),
            });
        }
        let g = self.board.settings().global;
        MessageResult(swarm_control::Limits {
            download: g.down,
            upload: g.up,
        })
    }
}
