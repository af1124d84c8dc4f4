//! An in-memory [`Engine`] for testing the daemon's faces: torrents are entries in a map, events
//! are sent only when a test (or an add/remove) sends them, and every call is recorded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use swarm_control::{AddResult, FilePriorityChange};
use swarm_model::{
    BlocklistSources, BlocklistStatus, EngineCounters, Event, FileInfo, FilePriority, InfoHash,
    Limits, PeerInfo, QueueConfig, QueueMove, SeedLimits, SeedingConfig, SessionStats,
    TorrentDetail, TorrentState, TorrentSummary, TrackerInfo,
};
use tokio::sync::broadcast;

use crate::engine::{AddTorrent, Engine, EngineError, EngineResult, NewTorrent};

#[derive(Clone)]
pub struct FakeEngine {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
}

#[derive(Default)]
pub struct State {
    pub torrents: BTreeMap<InfoHash, FakeTorrent>,
    pub limits: Limits,
    pub alt_speed: swarm_model::AltSpeed,
    pub encryption: swarm_wire::mse::Policy,
    /// The blocklist as the last reload set it (its rules: one per path).
    pub blocklist: BlocklistStatus,
    pub queue: (QueueConfig, SeedingConfig),
    /// Every call, as `method hash…`.
    pub calls: Vec<String>,
    /// Returned by the next `add` calls instead of adding.
    pub fail_add: Option<EngineError>,
    pub heartbeat_hangs: bool,
    pub shutdown_called: bool,
}

pub struct FakeTorrent {
    pub summary: TorrentSummary,
    pub files: Vec<FileInfo>,
    pub save_dir: Option<std::path::PathBuf>,
    pub paused_at_add: bool,
    pub seed_limits: SeedLimits,
    pub limits: swarm_model::TorrentLimits,
}

impl FakeEngine {
    pub fn new() -> Self {
        Self::with_event_capacity(64)
    }

    pub fn with_event_capacity(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity);
        FakeEngine {
            state: Arc::new(Mutex::new(State::default())),
            events,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a torrent with two files directly, as if it had been loaded from resume state.
    /// `hex` is a test's info-hash (40 hex digits).
    pub fn insert(&self, hex: &str, name: &str) {
        let id = InfoHash::from_hex(hex).expect("a test's info-hash is 40 hex digits");
        let files = ["a.bin", "b.bin"]
            .iter()
            .enumerate()
            .map(|(i, f)| FileInfo {
                index: i as u32,
                path: format!("{name}/{f}"),
                length: 100,
                have_bytes: 0,
                priority: FilePriority::Normal,
            })
            .collect();
        let t = FakeTorrent {
            summary: summary(id, name),
            files,
            save_dir: None,
            paused_at_add: false,
            seed_limits: SeedLimits::default(),
            limits: Default::default(),
        };
        self.state().torrents.insert(id, t);
    }

    pub fn emit(&self, e: Event) -> usize {
        self.events.send(e).unwrap_or(0)
    }

    fn record(&self, call: String) {
        self.state().calls.push(call);
    }

    fn with_torrent<T>(
        &self,
        id: InfoHash,
        f: impl FnOnce(&mut FakeTorrent) -> T,
    ) -> EngineResult<T> {
        let mut s = self.state();
        s.torrents
            .get_mut(&id)
            .map(f)
            .ok_or(EngineError::UnknownTorrent(id))
    }

    fn set_state(&self, id: InfoHash, state: TorrentState) -> EngineResult<()> {
        self.with_torrent(id, |t| t.summary.state = state)
    }
}

pub fn summary(info_hash: InfoHash, name: &str) -> TorrentSummary {
    TorrentSummary {
        info_hash,
        name: name.to_owned(),
        state: TorrentState::Downloading,
        progress: 0.25,
        total_bytes: 200,
        have_bytes: 50,
        wanted_bytes: 200,
        left_bytes: 150,
        download_rate: 1000,
        upload_rate: 10,
        downloaded: 50,
        uploaded: 5,
        peers: 3,
        save_dir: "/downloads".into(),
        error: None,
        queue_position: 0,
        forced: false,
        labels: Vec::new(),
        moving: None,
    }
}

impl Engine for FakeEngine {
    async fn add(&self, add: AddTorrent) -> EngineResult<AddResult> {
        let id = add.torrent.info_hash();
        self.record(format!("add {id}"));
        let mut s = self.state();
        if let Some(e) = s.fail_add.clone() {
            return Err(e);
        }
        if s.torrents.contains_key(&id) {
            return Err(EngineError::Duplicate(id));
        }
        let (name, files) = match &add.torrent {
            NewTorrent::Metainfo(m) => {
                let files = m
                    .info
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| FileInfo {
                        index: i as u32,
                        path: f.path.join("/"),
                        length: f.length,
                        have_bytes: 0,
                        priority: FilePriority::Normal,
                    })
                    .collect();
                (m.info.name.clone(), files)
            }
            NewTorrent::Magnet(m) => (m.name(), Vec::new()),
        };
        let mut summary = summary(id, &name);
        summary.labels = add.labels.clone();
        if add.paused {
            summary.state = TorrentState::Paused;
        }
        s.torrents.insert(
            id,
            FakeTorrent {
                summary,
                files,
                save_dir: add.save_dir.clone(),
                paused_at_add: add.paused,
                seed_limits: SeedLimits::default(),
                limits: Default::default(),
            },
        );
        drop(s);
        self.emit(Event::Added {
            info_hash: id,
            name: name.clone(),
        });
        Ok(AddResult {
            info_hash: id,
            name,
        })
    }

    async fn list(&self) -> EngineResult<Vec<TorrentSummary>> {
        self.record("list".into());
        Ok(self
            .state()
            .torrents
            .values()
            .map(|t| t.summary.clone())
            .collect())
    }

    async fn show(&self, id: InfoHash) -> EngineResult<TorrentDetail> {
        self.record(format!("show {id}"));
        self.with_torrent(id, |t| TorrentDetail {
            summary: t.summary.clone(),
            piece_length: 16384,
            pieces: 13,
            pieces_have: 3,
            private: false,
            comment: None,
            added_at: 1_700_000_000,
            completed_at: None,
            peer_restarts: 1,
            hash_failures: 0,
            eta_secs: Some(150),
            super_seed: false,
            seed_limits: t.seed_limits,
            seeding_secs: 0,
            limits: t.limits,
        })
    }

    async fn pause(&self, id: InfoHash) -> EngineResult<()> {
        self.record(format!("pause {id}"));
        self.set_state(id, TorrentState::Paused)
    }

    async fn resume(&self, id: InfoHash) -> EngineResult<()> {
        self.record(format!("resume {id}"));
        self.set_state(id, TorrentState::Downloading)
    }

    async fn remove(&self, id: InfoHash, delete_data: bool) -> EngineResult<()> {
        self.record(format!("remove {id} delete_data={delete_data}"));
        self.state()
            .torrents
            .remove(&id)
            .ok_or(EngineError::UnknownTorrent(id))?;
        self.emit(Event::Removed { info_hash: id });
        Ok(())
    }

    async fn verify(&self, id: InfoHash) -> EngineResult<()> {
        self.record(format!("verify {id}"));
        self.set_state(id, TorrentState::Checking)
    }

    async fn reannounce(&self, id: InfoHash) -> EngineResult<()> {
        self.record(format!("reannounce {id}"));
        self.with_torrent(id, |_| ())
    }

    async fn set_super_seed(&self, id: InfoHash, on: bool) -> EngineResult<()> {
        self.record(format!("super_seed {id} {on}"));
        self.with_torrent(id, |_| ())
    }

    async fn force_start(&self, id: InfoHash) -> EngineResult<()> {
        self.record(format!("force_start {id}"));
        self.with_torrent(id, |t| {
            t.summary.forced = true;
            t.summary.state = TorrentState::Downloading;
        })
    }

    /// Moves as the engine's queue does, over the torrents' `queue_position`s.
    async fn queue_move(&self, id: InfoHash, to: QueueMove) -> EngineResult<u32> {
        self.record(format!("queue_move {id} {to:?}"));
        let mut s = self.state();
        let mut order: Vec<(u32, InfoHash)> = s
            .torrents
            .iter()
            .map(|(ih, t)| (t.summary.queue_position, *ih))
            .collect();
        order.sort();
        let from = order
            .iter()
            .position(|(_, ih)| *ih == id)
            .ok_or(EngineError::UnknownTorrent(id))?;
        let last = order.len() - 1;
        let to = match to {
            QueueMove::Top => 0,
            QueueMove::Up => from.saturating_sub(1),
            QueueMove::Down => (from + 1).min(last),
            QueueMove::Bottom => last,
            QueueMove::To(n) => (n as usize).min(last),
        };
        let moved = order.remove(from);
        order.insert(to, moved);
        for (i, (_, ih)) in order.iter().enumerate() {
            if let Some(t) = s.torrents.get_mut(ih) {
                t.summary.queue_position = i as u32;
            }
        }
        Ok(to as u32)
    }

    async fn set_seed_limits(&self, id: InfoHash, limits: SeedLimits) -> EngineResult<()> {
        self.record(format!("set_seed_limits {id}"));
        self.with_torrent(id, |t| t.seed_limits = limits)
    }

    async fn queue_config(&self) -> EngineResult<(QueueConfig, SeedingConfig)> {
        Ok(self.state().queue)
    }

    async fn set_queue_config(
        &self,
        queue: QueueConfig,
        seeding: SeedingConfig,
    ) -> EngineResult<(QueueConfig, SeedingConfig)> {
        self.record("set_queue_config".into());
        self.state().queue = (queue, seeding);
        Ok((queue, seeding))
    }

    async fn set_torrent_limits(
        &self,
        id: InfoHash,
        limits: swarm_model::TorrentLimits,
    ) -> EngineResult<swarm_model::TorrentLimits> {
        self.record(format!("set_torrent_limits {id} {limits:?}"));
        self.with_torrent(id, |t| {
            t.limits = limits;
            limits
        })
    }

    async fn set_labels(&self, id: InfoHash, labels: Vec<String>) -> EngineResult<()> {
        self.record(format!("set_labels {id} {labels:?}"));
        self.with_torrent(id, |t| t.summary.labels = labels)
    }

    async fn move_storage(
        &self,
        id: InfoHash,
        dir: std::path::PathBuf,
        move_data: bool,
    ) -> EngineResult<()> {
        self.record(format!("move_storage {id} {} {move_data}", dir.display()));
        self.with_torrent(id, |t| t.summary.save_dir = dir.display().to_string())
    }

    async fn add_peers(&self, id: InfoHash, peers: Vec<std::net::SocketAddr>) -> EngineResult<()> {
        self.record(format!("add_peers {id} {peers:?}"));
        self.with_torrent(id, |_| ())
    }

    async fn files(&self, id: InfoHash) -> EngineResult<Vec<FileInfo>> {
        self.record(format!("files {id}"));
        self.with_torrent(id, |t| t.files.clone())
    }

    async fn set_file_priority(
        &self,
        id: InfoHash,
        changes: Vec<FilePriorityChange>,
    ) -> EngineResult<Vec<FileInfo>> {
        self.record(format!("set_file_priority {id}"));
        self.with_torrent(id, |t| {
            if let Some(bad) = changes.iter().find(|c| c.index as usize >= t.files.len()) {
                return Err(EngineError::Invalid(format!(
                    "file index {} out of range (the torrent has {} files)",
                    bad.index,
                    t.files.len()
                )));
            }
            for c in &changes {
                t.files[c.index as usize].priority = c.priority;
            }
            Ok(t.files.clone())
        })?
    }

    async fn peers(&self, id: InfoHash) -> EngineResult<Vec<PeerInfo>> {
        self.record(format!("peers {id}"));
        self.with_torrent(id, |_| {
            vec![PeerInfo {
                addr: "192.0.2.7:51413".into(),
                client: "Transmission 4.0".into(),
                direction: "outgoing".into(),
                source: "tracker".into(),
                transport: "tcp".into(),
                progress: 1.0,
                download_rate: 1000,
                upload_rate: 0,
                downloaded: 50,
                uploaded: 0,
                am_choking: true,
                am_interested: true,
                peer_choking: false,
                peer_interested: false,
                requests_in_flight: 12,
                encrypted: true,
            }]
        })
    }

    async fn trackers(&self, id: InfoHash) -> EngineResult<Vec<TrackerInfo>> {
        self.record(format!("trackers {id}"));
        self.with_torrent(id, |_| {
            vec![TrackerInfo {
                url: "http://tracker.example/announce".into(),
                tier: 0,
                status: "ok".into(),
                message: None,
                seeders: Some(4),
                leechers: Some(1),
                peers_received: 5,
                next_announce_secs: Some(1700),
            }]
        })
    }

    async fn stats(&self) -> EngineResult<SessionStats> {
        self.record("stats".into());
        let s = self.state();
        Ok(SessionStats {
            torrents: s.torrents.len() as u32,
            downloading: s
                .torrents
                .values()
                .filter(|t| t.summary.state == TorrentState::Downloading)
                .count() as u32,
            limits: s.limits,
            listen_port: 6881,
            ..Default::default()
        })
    }

    /// 3 of the 13 pieces `show` reports.
    async fn pieces(&self, id: InfoHash) -> EngineResult<Vec<u8>> {
        self.record(format!("pieces {id}"));
        self.with_torrent(id, |_| vec![0b1110_0000, 0])
    }

    async fn counters(&self) -> EngineResult<EngineCounters> {
        self.record("counters".into());
        Ok(EngineCounters {
            peers_incoming: 1,
            peers_outgoing: 2,
            disk_queue: 4,
            ..Default::default()
        })
    }

    async fn limits(&self) -> EngineResult<Limits> {
        Ok(self.state().limits)
    }

    async fn encryption(&self) -> EngineResult<swarm_wire::mse::Policy> {
        Ok(self.state().encryption)
    }

    async fn blocklist(&self) -> EngineResult<BlocklistStatus> {
        Ok(self.state().blocklist.clone())
    }

    async fn reload_blocklist(
        &self,
        sources: Option<BlocklistSources>,
    ) -> EngineResult<BlocklistStatus> {
        self.record(format!("reload_blocklist {}", sources.is_some()));
        let mut s = self.state();
        if let Some(src) = sources {
            s.blocklist.enabled = src.enabled;
            s.blocklist.url = src.url;
            s.blocklist.rules = src.paths.len() as u64;
        }
        Ok(s.blocklist.clone())
    }

    async fn update_blocklist(&self) -> EngineResult<BlocklistStatus> {
        self.record("update_blocklist".into());
        Err(EngineError::Invalid(
            "no blocklist url is configured".into(),
        ))
    }

    async fn set_encryption(
        &self,
        policy: swarm_wire::mse::Policy,
    ) -> EngineResult<swarm_wire::mse::Policy> {
        self.record(format!("set_encryption {policy}"));
        self.state().encryption = policy;
        Ok(policy)
    }

    async fn set_limits(&self, limits: Limits) -> EngineResult<Limits> {
        self.record(format!(
            "set_limits {:?} {:?}",
            limits.download, limits.upload
        ));
        self.state().limits = limits;
        Ok(limits)
    }

    async fn alt_speed(&self) -> EngineResult<swarm_model::AltSpeed> {
        Ok(self.state().alt_speed)
    }

    async fn set_alt_speed(
        &self,
        alt: swarm_model::AltSpeed,
    ) -> EngineResult<swarm_model::AltSpeed> {
        self.record(format!("set_alt_speed {alt:?}"));
        self.state().alt_speed = alt;
        Ok(alt)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn heartbeat(&self) {
        let hangs = self.state().heartbeat_hangs;
        if hangs {
            std::future::pending::<()>().await;
        }
    }

    async fn shutdown(&self) {
        self.record("shutdown".into());
        self.state().shutdown_called = true;
    }
}
