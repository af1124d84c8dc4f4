//! The daemon's [`Engine`] over the actor tree of `swarm-engine`: builds the engine's settings
//! from the configuration and maps each control method onto a [`Session`] call.

use std::net::SocketAddr;
use std::time::Duration;

use swarm_control::{
    AddResult, EngineCounters, Event, FileInfo, FilePriorityChange, Limits, PeerInfo, SessionStats,
    TorrentDetail, TorrentSummary, TrackerInfo,
};
use swarm_engine::choke::ChokeConfig;
use swarm_engine::services::choker::ChokerConfig;
use swarm_engine::torrent::peer::transport::TransportKind;
use swarm_engine::{AddOptions, EngineConfig, Session};
use swarm_wire::InfoHash;
use swarmd::config::{Config, TransportName};
use swarmd::paths::Paths;
use swarmd::{AddTorrent, Engine, EngineError, EngineResult, NewTorrent};
use tokio::sync::broadcast;

/// The engine settings a configuration asks for.
pub fn engine_config(config: &Config, paths: &Paths) -> EngineConfig {
    let net = &config.network;
    EngineConfig {
        listen: net.listen,
        download_dir: paths.download_dir.clone(),
        max_peers_per_torrent: net.max_peers_per_torrent as usize,
        max_peers_global: net.max_peers_global as usize,
        max_half_open: net.max_half_open as usize,
        unchoke_slots: config.limits.upload_slots_per_torrent as usize,
        limits: config.limits.rate_limits(),
        choker: ChokerConfig {
            choke: ChokeConfig {
                slots_per_torrent: config.limits.upload_slots_per_torrent as usize,
                global_slots: Some(config.limits.upload_slots_global as usize).filter(|n| *n > 0),
                ..ChokeConfig::default()
            },
            ..ChokerConfig::default()
        },
        connect_timeout: Duration::from_secs(net.connect_timeout_secs.get()),
        handshake_timeout: Duration::from_secs(net.handshake_timeout_secs.get()),
        encryption: net.encryption,
        transports: net
            .transports
            .iter()
            .map(|t| match t {
                TransportName::Tcp => TransportKind::Tcp,
                TransportName::Utp => TransportKind::Utp,
            })
            .collect(),
        state_dir: Some(paths.state_dir.clone()),
        dht: config.dht.enabled.then(|| swarm_dht::DhtConfig {
            bind: SocketAddr::new(
                net.listen.ip(),
                config.dht.port.unwrap_or(net.listen.port()),
            ),
            bootstrap: config.dht.bootstrap.clone(),
            state_file: Some(paths.state_dir.join("dht.json")),
            ..swarm_dht::DhtConfig::default()
        }),
        ..EngineConfig::default()
    }
}

#[derive(Clone)]
pub struct SessionEngine {
    session: Session,
    /// `[trackers] stopped_timeout_secs`: how long shutdown waits for `stopped` announces.
    stopped_timeout: Duration,
}

impl SessionEngine {
    pub fn new(session: Session, config: &Config) -> Self {
        SessionEngine {
            session,
            stopped_timeout: Duration::from_secs(config.trackers.stopped_timeout_secs),
        }
    }
}

fn map(e: swarm_engine::EngineError) -> EngineError {
    use swarm_engine::EngineError as E;
    match e {
        E::NotFound(h) => match InfoHash::from_hex(&h) {
            Some(ih) => EngineError::NotFound(ih),
            None => EngineError::Invalid(format!("no torrent {h}")),
        },
        E::Duplicate(h) => match InfoHash::from_hex(&h) {
            Some(ih) => EngineError::AlreadyExists(ih),
            None => EngineError::Invalid(format!("torrent {h} is already added")),
        },
        E::ShuttingDown => EngineError::ShuttingDown,
        E::InvalidTorrent(m) | E::Invalid(m) | E::Io(m) => EngineError::Invalid(m),
        other => EngineError::Internal(other.to_string()),
    }
}

impl Engine for SessionEngine {
    async fn add(&self, add: AddTorrent) -> EngineResult<AddResult> {
        let meta = match add.torrent {
            NewTorrent::Metainfo(m) => *m,
            NewTorrent::Magnet(m) => {
                return self
                    .session
                    .add_magnet(*m, add.save_dir, add.paused)
                    .await
                    .map(|(ih, name)| AddResult {
                        info_hash: ih.to_hex(),
                        name,
                    })
                    .map_err(map)
            }
        };
        let name = meta.info.name.clone();
        let opts = AddOptions {
            save_dir: add.save_dir,
            paused: add.paused,
            known_have: None,
        };
        let ih = self.session.add(meta, opts).await.map_err(map)?;
        Ok(AddResult {
            info_hash: ih.to_hex(),
            name,
        })
    }

    async fn list(&self) -> EngineResult<Vec<TorrentSummary>> {
        self.session.list().await.map_err(map)
    }

    async fn list_json(&self) -> EngineResult<String> {
        self.session.list_json().await.map_err(map)
    }

    async fn names(&self) -> EngineResult<Vec<(String, String)>> {
        let names = self.session.names().await.map_err(map)?;
        Ok(names.into_iter().map(|(ih, n)| (ih.to_hex(), n)).collect())
    }

    async fn show(&self, id: InfoHash) -> EngineResult<TorrentDetail> {
        self.session.detail(id).await.map_err(map)
    }

    async fn pause(&self, id: InfoHash) -> EngineResult<()> {
        self.session.pause(id).await.map_err(map)
    }

    async fn resume(&self, id: InfoHash) -> EngineResult<()> {
        self.session.resume(id).await.map_err(map)
    }

    async fn remove(&self, id: InfoHash, delete_data: bool) -> EngineResult<()> {
        self.session.remove(id, delete_data).await.map_err(map)
    }

    async fn verify(&self, id: InfoHash) -> EngineResult<()> {
        self.session.verify(id).await.map_err(map)
    }

    async fn reannounce(&self, id: InfoHash) -> EngineResult<()> {
        self.session.reannounce(id).await.map_err(map)
    }

    async fn set_super_seed(&self, id: InfoHash, on: bool) -> EngineResult<()> {
        self.session.set_super_seed(id, on).await.map_err(map)
    }

    async fn files(&self, id: InfoHash) -> EngineResult<Vec<FileInfo>> {
        self.session.files(id).await.map_err(map)
    }

    async fn set_file_priority(
        &self,
        id: InfoHash,
        changes: Vec<FilePriorityChange>,
    ) -> EngineResult<Vec<FileInfo>> {
        let changes = changes.into_iter().map(|c| (c.index, c.priority)).collect();
        self.session
            .set_file_priorities(id, changes)
            .await
            .map_err(map)?;
        self.session.files(id).await.map_err(map)
    }

    async fn peers(&self, id: InfoHash) -> EngineResult<Vec<PeerInfo>> {
        self.session.peers(id).await.map_err(map)
    }

    async fn trackers(&self, id: InfoHash) -> EngineResult<Vec<TrackerInfo>> {
        self.session.trackers(id).await.map_err(map)
    }

    async fn stats(&self) -> EngineResult<SessionStats> {
        self.session.stats().await.map_err(map)
    }

    async fn pieces(&self, id: InfoHash) -> EngineResult<Vec<u8>> {
        self.session.pieces(id).await.map_err(map)
    }

    async fn counters(&self) -> EngineResult<EngineCounters> {
        self.session.counters().await.map_err(map)
    }

    async fn limits(&self) -> EngineResult<Limits> {
        self.session.limits().await.map_err(map)
    }

    async fn set_limits(&self, limits: Limits) -> EngineResult<Limits> {
        self.session.set_limits(limits).await.map_err(map)
    }

    async fn encryption(&self) -> EngineResult<swarm_wire::mse::Policy> {
        self.session.encryption().await.map_err(map)
    }

    async fn set_encryption(
        &self,
        policy: swarm_wire::mse::Policy,
    ) -> EngineResult<swarm_wire::mse::Policy> {
        self.session.set_encryption(policy).await.map_err(map)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.session.subscribe()
    }

    async fn heartbeat(&self) {
        // Answers only while the root and the torrent threads answer: the watchdog stops
        // pinging systemd when the actor system is frozen.
        if !self.session.ping(Duration::from_secs(3600)).await {
            // The root is gone: never answer, so the watchdog stops.
            std::future::pending::<()>().await;
        }
    }

    async fn shutdown(&self) {
        self.session.shutdown(self.stopped_timeout).await;
    }
}
