//! [`Session`]: the engine's public handle. The daemon's control server, the one-shot
//! `download` command and the tests talk to the actor tree only through it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use actix::prelude::*;
use swarm_model::{
    EngineCounters, Event, FileInfo, FilePriority, PeerInfo, QueueMove, SeedLimits, SessionStats,
    TorrentDetail, TorrentLimits, TorrentState, TorrentSummary, TrackerInfo,
};
use swarm_wire::{InfoHash, Metainfo};
use tokio::sync::broadcast;

use crate::bitfield::Bitfield;
use crate::blocklist::Blocklist;
use crate::config::EngineConfig;
use crate::magnet::GetMagnetPeers;
use crate::root::{
    AddTorrent, GetGivenUp, GetMagnet, GetRootStats, GetTorrent, ListJson, ListNames,
    ListPublished, ListTorrents, MagnetCommand, MagnetOrder, MagnetView, QueueCommand, QueueOrder,
    RemoveTorrent, Root, ShutdownSession, StartGivenUp,
};
use crate::torrent::messages::{
    GetDetail, GetFiles, GetPeers, GetPieces, GetSummary, MoveStorage, PeerSource, PeersFound,
    Reannounce, SetFilePriorities, SetLabels, SetLimits, SetPaused, SetSuperSeed, Verify,
};
use crate::torrent::resume_state::QueueSettings;
use crate::torrent::shared::{Published, Totals};
use crate::torrent::Torrent;
use swarm_model::EngineError;

mod settings;
use settings::blocklist_error;
#[cfg(test)]
mod tests;

/// Options for adding a torrent.
#[derive(Clone, Debug, Default)]
pub struct AddOptions {
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    pub known_have: Option<Vec<u8>>,
    /// The user's labels (already normalized: see [`swarm_model::normalize_labels`]).
    pub labels: Vec<String>,
}

/// A running engine. Cheap to clone; every method is a message to the actor tree.
#[derive(Clone)]
pub struct Session {
    root: Addr<Root>,
    events: broadcast::Sender<Event>,
    listen: SocketAddr,
    failed: tokio::sync::watch::Receiver<Option<String>>,
    blocklist: Blocklist,
}

fn gone<E>(_: E) -> EngineError {
    EngineError::ShuttingDown
}

impl Session {
    /// Binds the peer port and starts the root supervisor. Must run inside an actix `System`.
    pub fn start(mut cfg: EngineConfig) -> Result<Session, EngineError> {
        // Before anything opens a descriptor: the limits that fit the open-file limit.
        crate::fd_budget::apply(&mut cfg);
        // Before the peer port opens: no connection is taken before the rules are in force.
        let blocklist = Blocklist::default();
        blocklist
            .load(Some(cfg.blocklist.clone()))
            .map_err(blocklist_error)?;
        let need_udp = cfg.utp() || cfg.dht_shares_port();
        let (socket, udp) = bind_peer_port(cfg.listen, need_udp)?;
        let listen = socket.local_addr().map_err(|e| EngineError::Listen {
            addr: cfg.listen,
            reason: e.to_string(),
        })?;
        let (events, _) = broadcast::channel(1024);
        let (failed_tx, failed) = tokio::sync::watch::channel(None);
        let root = Root::new(
            cfg,
            (socket, udp),
            events.clone(),
            failed_tx,
            blocklist.clone(),
        )
        .start();
        Ok(Session {
            root,
            events,
            listen,
            failed,
            blocklist,
        })
    }

    /// Completes, with the reason, when the engine cannot go on: a global service used up its
    /// restart budget (or the root's supervisor escalated). Whoever runs the engine stops then.
    pub async fn failed(&self) -> String {
        let mut rx = self.failed.clone();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone(),
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            // The root is gone without saying why: nothing will ever fail.
            None => std::future::pending().await,
        }
    }

    /// Adds a magnet link: the metadata is fetched from peers first.
    pub async fn add_magnet(
        &self,
        magnet: swarm_wire::Magnet,
        opts: AddOptions,
    ) -> Result<(InfoHash, String), EngineError> {
        let msg = crate::root::AddMagnet {
            magnet,
            save_dir: opts.save_dir,
            paused: opts.paused,
            added_at: None,
            labels: opts.labels,
        };
        self.root.send(msg).await.map_err(gone)?
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub async fn add(&self, meta: Metainfo, opts: AddOptions) -> Result<InfoHash, EngineError> {
        let n = meta.info.num_pieces();
        let known_have = opts.known_have.and_then(|b| Bitfield::from_wire(&b, n));
        let msg = AddTorrent {
            meta,
            save_dir: opts.save_dir,
            paused: opts.paused,
            known_have,
            record: None,
            labels: opts.labels,
        };
        self.root.send(msg).await.map_err(gone)?
    }

    /// Brings back every torrent saved in the state directory. Returns how many came back; a
    /// saved torrent that cannot be loaded is logged and skipped.
    pub async fn restore(&self, state_dir: &std::path::Path) -> usize {
        let mut n = 0;
        // In their saved queue order: each is added at the queue's end.
        let saved = crate::resume::saved_torrents(state_dir)
            .into_iter()
            .filter_map(|path| {
                let (bytes, record) = crate::resume::load_saved(&path)?;
                let position = record.as_ref().and_then(|r| r.queue_position);
                Some((position, (path, bytes, record)))
            })
            .collect();
        for (path, bytes, record) in crate::root::queue::restore_order(saved) {
            let meta = match Metainfo::from_bytes(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(file = %path.display(), "saved torrent is invalid, skipped: {e}");
                    continue;
                }
            };
            let msg = AddTorrent {
                meta,
                save_dir: None,
                paused: false,
                known_have: None,
                record,
                labels: Vec::new(),
            };
            match self.root.send(msg).await {
                Ok(Ok(_)) => n += 1,
                Ok(Err(e)) => tracing::warn!(file = %path.display(), "cannot restore: {e}"),
                Err(_) => break,
            }
        }
        for (uri, record) in crate::resume::load_magnets(state_dir) {
            match swarm_wire::Magnet::parse(&uri) {
                Ok(magnet) => match self
                    .root
                    .send(crate::root::AddMagnet {
                        magnet,
                        save_dir: record.as_ref().map(|r| r.save_dir.clone()),
                        paused: record.as_ref().is_some_and(|r| r.paused),
                        added_at: record.as_ref().map(|r| r.added_at).filter(|&t| t > 0),
                        labels: record.map(|r| r.labels).unwrap_or_default(),
                    })
                    .await
                    .map_err(gone)
                    .and_then(|r| r)
                {
                    Ok(_) => n += 1,
                    Err(e) => tracing::warn!(magnet = %uri, "cannot restore: {e}"),
                },
                Err(e) => tracing::warn!(magnet = %uri, "saved magnet is invalid, skipped: {e}"),
            }
        }
        n
    }

    async fn torrent(&self, ih: InfoHash) -> Result<Addr<Torrent>, EngineError> {
        self.root
            .send(GetTorrent(ih))
            .await
            .map_err(gone)?
            .ok_or(EngineError::UnknownTorrent(ih))
    }

    /// Every torrent, by name: states exact, counters and rates at most a tick old (see
    /// [`crate::torrent::shared::StatusCell`]).
    pub async fn list(&self) -> Result<Vec<TorrentSummary>, EngineError> {
        let published = self.root.send(ListPublished).await.map_err(gone)?;
        Ok(published.iter().map(Published::summary).collect())
    }

    /// [`Session::list`] as the JSON array of summaries it serializes to, joined from the JSON
    /// each torrent published (no summary is built or serialized for it).
    pub async fn list_json(&self) -> Result<String, EngineError> {
        self.root.send(ListJson).await.map_err(gone)
    }

    /// Every torrent's info-hash and name, in no particular order.
    pub async fn names(&self) -> Result<Vec<(InfoHash, String)>, EngineError> {
        self.root.send(ListNames).await.map_err(gone)
    }

    pub async fn summary(&self, ih: InfoHash) -> Result<TorrentSummary, EngineError> {
        let target = match self.target(ih).await {
            Ok(t) => t,
            Err(e) => return self.given_up(ih).await?.map(|d| d.summary).ok_or(e),
        };
        match target {
            Target::Torrent(t) => t.send(GetSummary).await.map_err(gone),
            Target::Magnet(m) => Ok(self.magnet_detail(*m).await.summary),
        }
    }

    /// A torrent the root gave up on is shown too (in `error`, with the reason).
    pub async fn detail(&self, ih: InfoHash) -> Result<TorrentDetail, EngineError> {
        let target = match self.target(ih).await {
            Ok(t) => t,
            Err(e) => return self.given_up(ih).await?.ok_or(e),
        };
        match target {
            Target::Torrent(t) => t.send(GetDetail).await.map_err(gone),
            Target::Magnet(m) => Ok(self.magnet_detail(*m).await),
        }
    }

    pub async fn peers(&self, ih: InfoHash) -> Result<Vec<PeerInfo>, EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(GetPeers).await.map_err(gone),
            Target::Magnet(m) => Ok(magnet_peers(&m.fetch).await),
        }
    }

    /// A magnet without metadata has no file list yet: an empty one.
    pub async fn files(&self, ih: InfoHash) -> Result<Vec<FileInfo>, EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(GetFiles).await.map_err(gone),
            Target::Magnet(_) => Ok(Vec::new()),
        }
    }

    pub async fn set_file_priorities(
        &self,
        ih: InfoHash,
        prios: Vec<(u32, FilePriority)>,
    ) -> Result<(), EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t
                .send(SetFilePriorities(prios))
                .await
                .map_err(gone)?
                .map_err(EngineError::Invalid),
            Target::Magnet(m) => Err(EngineError::Invalid(format!(
                "{} has no metadata yet: its files are not known (try again once it is downloading)",
                m.summary.name
            ))),
        }
    }

    /// A queue order or a seeding-limit change for one torrent; its queue settings after it.
    async fn queue_order(
        &self,
        ih: InfoHash,
        command: QueueCommand,
    ) -> Result<QueueSettings, EngineError> {
        self.root
            .send(QueueOrder {
                info_hash: ih,
                command,
            })
            .await
            .map_err(gone)?
    }

    /// Moves a torrent in the queue; its position after the move (0 first).
    pub async fn queue_move(&self, ih: InfoHash, to: QueueMove) -> Result<u32, EngineError> {
        Ok(self.queue_order(ih, QueueCommand::Move(to)).await?.position)
    }

    /// Sets a torrent's own seeding limits.
    pub async fn set_seed_limits(
        &self,
        ih: InfoHash,
        limits: SeedLimits,
    ) -> Result<(), EngineError> {
        self.queue_order(ih, QueueCommand::SeedLimits(limits))
            .await
            .map(drop)
    }

    /// Pauses a torrent (and ends a force start).
    pub async fn pause(&self, ih: InfoHash) -> Result<(), EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => {
                self.queue_order(ih, QueueCommand::Unforce).await?;
                t.send(SetPaused(true)).await.map_err(gone)
            }
            Target::Magnet(_) => self.order_magnet(ih, MagnetCommand::Pause).await,
        }
    }

    /// Starts a torrent the root gave up on again; `true` when it did.
    async fn start_given_up(&self, ih: InfoHash) -> Result<bool, EngineError> {
        self.root.send(StartGivenUp(ih)).await.map_err(gone)?
    }

    /// Resumes a paused torrent, or starts one the root gave up on again.
    pub async fn resume(&self, ih: InfoHash) -> Result<(), EngineError> {
        self.start_torrent(ih, false).await
    }

    /// Resumes a torrent; `force`: whatever the queue says (a plain start ends a force start).
    pub async fn start_torrent(&self, ih: InfoHash, force: bool) -> Result<(), EngineError> {
        let given_up = self.start_given_up(ih).await?;
        let target = self.target(ih).await?;
        if let Target::Torrent(_) = &target {
            self.queue_order(ih, QueueCommand::Start { force }).await?;
        }
        if given_up {
            return Ok(());
        }
        match target {
            Target::Torrent(t) => t.send(SetPaused(false)).await.map_err(gone),
            Target::Magnet(_) => self.order_magnet(ih, MagnetCommand::Resume).await,
        }
    }

    pub async fn set_super_seed(&self, ih: InfoHash, on: bool) -> Result<(), EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(SetSuperSeed(on)).await.map_err(gone),
            Target::Magnet(m) => Err(EngineError::Invalid(format!(
                "{} has no metadata yet: it cannot seed, so it cannot super-seed",
                m.summary.name
            ))),
        }
    }

    /// The torrent's own limits, replacing the ones it had; returns them as they now are.
    pub async fn set_torrent_limits(
        &self,
        ih: InfoHash,
        limits: TorrentLimits,
    ) -> Result<TorrentLimits, EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => {
                t.send(SetLimits(limits)).await.map_err(gone)?;
                Ok(limits)
            }
            Target::Magnet(m) => Err(EngineError::Invalid(format!(
                "{} has no metadata yet: set its limits once it is downloading",
                m.summary.name
            ))),
        }
    }

    /// Moves the torrent's data to `to` (absolute), file by file while it trades; with
    /// `move_data` false, only looks for the data there (and rechecks). Returns once the move
    /// has started; its progress is the summary's `moving`. Refused, with nothing moved, when a
    /// file of the torrent exists at `to` already.
    pub async fn move_storage(
        &self,
        ih: InfoHash,
        to: PathBuf,
        move_data: bool,
    ) -> Result<(), EngineError> {
        if !to.is_absolute() {
            return Err(EngineError::Invalid(format!(
                "the destination {} is not an absolute path",
                to.display()
            )));
        }
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(MoveStorage { to, move_data }).await.map_err(gone)?,
            Target::Magnet(m) => Err(EngineError::Invalid(format!(
                "{} has no metadata yet: nothing to move (remove and add it again with another \
                 save directory)",
                m.summary.name
            ))),
        }
    }

    /// The torrent's labels, replacing the ones it had (normalized by the caller).
    pub async fn set_labels(&self, ih: InfoHash, labels: Vec<String>) -> Result<(), EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(SetLabels(labels)).await.map_err(gone),
            Target::Magnet(_) => {
                self.order_magnet(ih, MagnetCommand::SetLabels(labels))
                    .await
            }
        }
    }

    /// Peers the user names: the torrent (or the magnet's metadata fetch) dials them, as if a
    /// tracker had named them, when it has room (`max_peers`) and is not paused.
    pub async fn add_peers(&self, ih: InfoHash, addrs: Vec<SocketAddr>) -> Result<(), EngineError> {
        let found = PeersFound {
            addrs,
            source: PeerSource::Manual,
        };
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(found).await.map_err(gone),
            Target::Magnet(m) => match &m.fetch {
                Some(f) => f.send(found).await.map_err(gone),
                None => Err(EngineError::Invalid(format!(
                    "{} is paused: resume it to fetch its metadata from these peers",
                    m.summary.name
                ))),
            },
        }
    }

    /// Rechecks a torrent's data; one the root gave up on starts again, which rechecks.
    pub async fn verify(&self, ih: InfoHash) -> Result<(), EngineError> {
        if self.start_given_up(ih).await? {
            return Ok(());
        }
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(Verify).await.map_err(gone),
            Target::Magnet(m) => Err(EngineError::Invalid(format!(
                "{} has no metadata yet: there is no data to verify",
                m.summary.name
            ))),
        }
    }

    pub async fn reannounce(&self, ih: InfoHash) -> Result<(), EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(Reannounce).await.map_err(gone),
            Target::Magnet(_) => self.order_magnet(ih, MagnetCommand::Reannounce).await,
        }
    }

    pub async fn trackers(&self, ih: InfoHash) -> Result<Vec<TrackerInfo>, EngineError> {
        self.target(ih).await?;
        self.root
            .send(crate::root::GetTrackers(ih))
            .await
            .map_err(gone)
    }

    /// The torrent `ih`, or the magnet `ih` still fetching its metadata.
    /// The running torrent or the magnet `ih`. A torrent the root gave up on is neither: the
    /// error says so, with the reason and how to start it again.
    async fn target(&self, ih: InfoHash) -> Result<Target, EngineError> {
        if let Ok(t) = self.torrent(ih).await {
            return Ok(Target::Torrent(t));
        }
        if let Some(m) = self.root.send(GetMagnet(ih)).await.map_err(gone)? {
            return Ok(Target::Magnet(Box::new(m)));
        }
        match self.given_up(ih).await? {
            Some(d) => Err(EngineError::Invalid(format!(
                "{}: {}",
                d.summary.name,
                d.summary.error.unwrap_or_default()
            ))),
            None => Err(EngineError::UnknownTorrent(ih)),
        }
    }

    /// What `show` says of a torrent the root gave up on; `None` if `ih` is not one.
    async fn given_up(&self, ih: InfoHash) -> Result<Option<TorrentDetail>, EngineError> {
        self.root.send(GetGivenUp(ih)).await.map_err(gone)
    }

    async fn order_magnet(&self, ih: InfoHash, order: MagnetCommand) -> Result<(), EngineError> {
        self.root
            .send(MagnetOrder {
                info_hash: ih,
                order,
            })
            .await
            .map_err(gone)?
    }

    async fn magnet_detail(&self, m: MagnetView) -> TorrentDetail {
        let mut summary = m.summary;
        summary.peers = magnet_peers(&m.fetch).await.len() as u32;
        TorrentDetail {
            summary,
            piece_length: 0,
            pieces: 0,
            pieces_have: 0,
            private: false,
            comment: None,
            added_at: m.added_at,
            completed_at: None,
            peer_restarts: 0,
            hash_failures: 0,
            eta_secs: None,
            super_seed: false,
            seed_limits: Default::default(),
            seeding_secs: 0,
            limits: Default::default(),
        }
    }

    pub async fn remove(&self, ih: InfoHash, delete_data: bool) -> Result<(), EngineError> {
        self.root
            .send(RemoveTorrent {
                info_hash: ih,
                delete_data,
            })
            .await
            .map_err(gone)?
    }

    pub async fn stats(&self) -> Result<SessionStats, EngineError> {
        let root = self.root.send(GetRootStats).await.map_err(gone)?;
        let published = self.root.send(ListPublished).await.map_err(gone)?;
        let peer_restarts = published.iter().map(|p| p.totals.peer_restarts).sum();
        let list: Vec<Totals> = published.iter().map(|p| p.totals).collect();
        let mut restarts = root.restarts.clone();
        restarts.peers = peer_restarts;
        Ok(SessionStats {
            torrents: list.len() as u32,
            downloading: list
                .iter()
                .filter(|t| t.state == TorrentState::Downloading)
                .count() as u32,
            seeding: list
                .iter()
                .filter(|t| t.state == TorrentState::Seeding)
                .count() as u32,
            peers: list.iter().map(|t| t.peers).sum(),
            download_rate: list.iter().map(|t| t.download_rate).sum(),
            upload_rate: list.iter().map(|t| t.upload_rate).sum(),
            downloaded: list.iter().map(|t| t.downloaded).sum(),
            uploaded: list.iter().map(|t| t.uploaded).sum(),
            restarts,
            uptime_secs: root.uptime.as_secs(),
            listen_port: root.listen_port,
            limits: self
                .root
                .send(crate::root::LimitsInForce)
                .await
                .map_err(gone)?,
            // `None` only when the DHT is off (or its node is restarting).
            dht_nodes: match &root.dht {
                Some(dht) => dht.stats().await.ok().map(|s| s.nodes as u32),
                None => None,
            },
        })
    }

    /// The engine's own counters for the metrics: one message to the root and one to the
    /// announcer, sums of what the torrents publish anyway; no torrent or peer is asked.
    pub async fn counters(&self) -> Result<EngineCounters, EngineError> {
        let root = self.root.send(GetRootStats).await.map_err(gone)?;
        let published = self.root.send(ListPublished).await.map_err(gone)?;
        let peers: u32 = published.iter().map(|p| p.totals.peers).sum();
        let incoming: u32 = published.iter().map(|p| p.totals.peers_incoming).sum();
        let utp: u32 = published.iter().map(|p| p.totals.peers_utp).sum();
        let utp_incoming: u32 = published.iter().map(|p| p.totals.peers_utp_incoming).sum();
        let trackers = match root.announcer {
            Some(a) => a
                .send(crate::services::announcer::GetTrackerHealth)
                .await
                .unwrap_or_default(),
            None => Default::default(),
        };
        Ok(EngineCounters {
            peers_incoming: incoming,
            peers_outgoing: peers.saturating_sub(incoming),
            peers_utp_incoming: utp_incoming,
            peers_utp_outgoing: utp.saturating_sub(utp_incoming),
            disk_queue: root.disk_queue as u64,
            disk_jobs_panicked: root.disk_jobs_panicked,
            trackers_failing: trackers.failing,
            announce_failures: trackers.announce_failures,
            peers_blocked: self.blocklist.blocked(),
            blocklist_rules: self.blocklist.rules() as u64,
        })
    }

    /// The pieces torrent `ih` has, as the wire's bitfield; empty for a magnet without metadata.
    pub async fn pieces(&self, ih: InfoHash) -> Result<Vec<u8>, EngineError> {
        match self.target(ih).await? {
            Target::Torrent(t) => t.send(GetPieces).await.map_err(gone),
            Target::Magnet(_) => Ok(Vec::new()),
        }
    }

    /// Answers when the root and one torrent thread answer: the watchdog's heartbeat.
    pub async fn ping(&self, within: Duration) -> bool {
        let root = self.root.clone();
        tokio::time::timeout(within, async move {
            let list = root.send(ListTorrents).await.ok()?;
            for (_, t) in list.iter().take(8) {
                t.send(GetSummary).await.ok()?;
            }
            Some(())
        })
        .await
        .ok()
        .flatten()
        .is_some()
    }

    /// Graceful stop: announce `stopped` (bounded by `announce_timeout`), stop every actor.
    pub async fn shutdown(&self, announce_timeout: Duration) {
        let _ = self.root.send(ShutdownSession { announce_timeout }).await;
    }
}

/// What a per-torrent command acts on.
enum Target {
    Torrent(Addr<Torrent>),
    /// Boxed: a view is ten times the size of an address.
    Magnet(Box<MagnetView>),
}

/// The peers of a magnet's metadata fetch (none while it is paused).
async fn magnet_peers(fetch: &Option<Addr<crate::magnet::MagnetFetch>>) -> Vec<PeerInfo> {
    match fetch {
        Some(f) => f.send(GetMagnetPeers).await.unwrap_or_default(),
        None => Vec::new(),
    }
}

/// Binds the peer port: TCP, and UDP on the same port when `udp` (uTP and the DHT share it).
/// With port 0 the kernel picks the TCP port, which may be taken for UDP: then another one is
/// picked (a few times).
fn bind_peer_port(
    addr: SocketAddr,
    udp: bool,
) -> Result<(std::net::TcpListener, Option<std::net::UdpSocket>), EngineError> {
    let error = |addr: SocketAddr, proto: &str, e: std::io::Error| EngineError::Listen {
        addr,
        reason: format!("{proto}: {e}"),
    };
    let mut tries = if addr.port() == 0 { 20 } else { 1 };
    loop {
        let tcp = std::net::TcpListener::bind(addr).map_err(|e| error(addr, "tcp", e))?;
        if !udp {
            return Ok((tcp, None));
        }
        let bound = tcp.local_addr().map_err(|e| error(addr, "tcp", e))?;
        match std::net::UdpSocket::bind(bound) {
            Ok(u) => return Ok((tcp, Some(u))),
            Err(e) if tries > 1 && e.kind() == std::io::ErrorKind::AddrInUse => tries -= 1,
            Err(e) => return Err(error(bound, "udp", e)),
        }
    }
}
