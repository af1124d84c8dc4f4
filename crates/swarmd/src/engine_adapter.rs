//! The daemon's [`Engine`] over the actor tree of `swarm-engine`: builds the engine's settings
//! from the configuration and maps each control method onto a [`Session`] call. Nothing is
//! translated on the way: the session answers with `swarm-model`'s views and errors, the types
//! the faces and the control protocol use.

use std::net::SocketAddr;
use std::time::Duration;

use swarm_control::{AddResult, FilePriorityChange};
use swarm_engine::choke::ChokeConfig;
use swarm_engine::services::announcer::AnnounceSettings;
use swarm_engine::services::choker::ChokerConfig;
use swarm_engine::torrent::peer::transport::TransportKind;
use swarm_engine::{AddOptions, EngineConfig, Session};
use swarm_model::{
    BlocklistSources, BlocklistStatus, EngineCounters, Event, FileInfo, Limits, PeerInfo,
    QueueConfig, QueueMove, SeedLimits, SeedingConfig, SessionStats, TorrentDetail, TorrentLimits,
    TorrentSummary, TrackerInfo,
};
use swarm_wire::InfoHash;
use swarmd::config::{Config, TransportName};
use swarmd::paths::Paths;
use swarmd::{AddTorrent, Engine, EngineResult, NewTorrent};
use tokio::sync::broadcast;

/// The engine settings a configuration asks for.
pub fn engine_config(config: &Config, paths: &Paths) -> EngineConfig {
    let net = &config.network;
    EngineConfig {
        listen: net.listen,
        download_dir: paths.download_dir.clone(),
        incomplete_dir: config.daemon.incomplete_dir.clone(),
        max_peers_per_torrent: net.max_peers_per_torrent as usize,
        max_peers_global: net.max_peers_global as usize,
        max_half_open: net.max_half_open as usize,
        unchoke_slots: config.limits.upload_slots_per_torrent as usize,
        limits: config.limits.rate_limits(),
        alt_speed: config.alt_speed.alt_speed(),
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
        queue: config.queue.queue_config(),
        max_active_checks: config.queue.max_active_checks as usize,
        seeding: config.seeding.seeding_config(),
        transports: net
            .transports
            .iter()
            .map(|t| match t {
                TransportName::Tcp => TransportKind::Tcp,
                TransportName::Utp => TransportKind::Utp,
            })
            .collect(),
        announce: AnnounceSettings {
            timeout: Duration::from_secs(config.trackers.announce_timeout_secs.get()),
            numwant: config.trackers.numwant,
            min_interval: Duration::from_secs(config.trackers.min_interval_secs),
        },
        state_dir: Some(paths.state_dir.clone()),
        blocklist: config.blocklist.sources(&paths.state_dir),
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
    /// `[labels.NAME]`: the save directory a new torrent's labels choose.
    labels: std::sync::Arc<Config>,
}

impl SessionEngine {
    pub fn new(session: Session, config: &Config) -> Self {
        SessionEngine {
            session,
            stopped_timeout: Duration::from_secs(config.trackers.stopped_timeout_secs),
            labels: std::sync::Arc::new(Config {
                labels: config.labels.clone(),
                ..Config::default()
            }),
        }
    }
}

impl Engine for SessionEngine {
    async fn add(&self, add: AddTorrent) -> EngineResult<AddResult> {
        let opts = AddOptions {
            save_dir: add
                .save_dir
                .or_else(|| self.labels.label_save_dir(&add.labels)),
            paused: add.paused,
            known_have: None,
            labels: add.labels,
        };
        let meta = match add.torrent {
            NewTorrent::Metainfo(m) => *m,
            NewTorrent::Magnet(m) => {
                return self
                    .session
                    .add_magnet(*m, opts)
                    .await
                    .map(|(info_hash, name)| AddResult { info_hash, name });
            }
        };
        let name = meta.info.name.clone();
        let info_hash = self.session.add(meta, opts).await?;
        Ok(AddResult { info_hash, name })
    }

    async fn list(&self) -> EngineResult<Vec<TorrentSummary>> {
        self.session.list().await
    }

    async fn list_json(&self) -> EngineResult<String> {
        self.session.list_json().await
    }

    async fn names(&self) -> EngineResult<Vec<(InfoHash, String)>> {
        self.session.names().await
    }

    async fn show(&self, id: InfoHash) -> EngineResult<TorrentDetail> {
        self.session.detail(id).await
    }

    async fn pause(&self, id: InfoHash) -> EngineResult<()> {
        self.session.pause(id).await
    }

    async fn resume(&self, id: InfoHash) -> EngineResult<()> {
        self.session.resume(id).await
    }

    async fn remove(&self, id: InfoHash, delete_data: bool) -> EngineResult<()> {
        self.session.remove(id, delete_data).await
    }

    async fn verify(&self, id: InfoHash) -> EngineResult<()> {
        self.session.verify(id).await
    }

    async fn reannounce(&self, id: InfoHash) -> EngineResult<()> {
        self.session.reannounce(id).await
    }

    async fn set_super_seed(&self, id: InfoHash, on: bool) -> EngineResult<()> {
        self.session.set_super_seed(id, on).await
    }

    async fn force_start(&self, id: InfoHash) -> EngineResult<()> {
        self.session.start_torrent(id, true).await
    }

    async fn queue_move(&self, id: InfoHash, to: QueueMove) -> EngineResult<u32> {
        self.session.queue_move(id, to).await
    }

    async fn set_seed_limits(&self, id: InfoHash, limits: SeedLimits) -> EngineResult<()> {
        self.session.set_seed_limits(id, limits).await
    }

    async fn queue_config(&self) -> EngineResult<(QueueConfig, SeedingConfig)> {
        self.session.queue_config().await
    }

    async fn set_queue_config(
        &self,
        queue: QueueConfig,
        seeding: SeedingConfig,
    ) -> EngineResult<(QueueConfig, SeedingConfig)> {
        self.session.set_queue_config(queue, seeding).await
    }

    async fn set_torrent_limits(
        &self,
        id: InfoHash,
        limits: TorrentLimits,
    ) -> EngineResult<TorrentLimits> {
        self.session.set_torrent_limits(id, limits).await
    }

    async fn set_labels(&self, id: InfoHash, labels: Vec<String>) -> EngineResult<()> {
        self.session.set_labels(id, labels).await
    }

    async fn move_storage(
        &self,
        id: InfoHash,
        dir: std::path::PathBuf,
        move_data: bool,
    ) -> EngineResult<()> {
        self.session.move_storage(id, dir, move_data).await
    }

    async fn add_peers(&self, id: InfoHash, peers: Vec<SocketAddr>) -> EngineResult<()> {
        self.session.add_peers(id, peers).await
    }

    async fn files(&self, id: InfoHash) -> EngineResult<Vec<FileInfo>> {
        self.session.files(id).await
    }

    async fn set_file_priority(
        &self,
        id: InfoHash,
        changes: Vec<FilePriorityChange>,
    ) -> EngineResult<Vec<FileInfo>> {
        let changes = changes.into_iter().map(|c| (c.index, c.priority)).collect();
        self.session.set_file_priorities(id, changes).await?;
        self.session.files(id).await
    }

    async fn peers(&self, id: InfoHash) -> EngineResult<Vec<PeerInfo>> {
        self.session.peers(id).await
    }

    async fn trackers(&self, id: InfoHash) -> EngineResult<Vec<TrackerInfo>> {
        self.session.trackers(id).await
    }

    async fn stats(&self) -> EngineResult<SessionStats> {
        self.session.stats().await
    }

    async fn pieces(&self, id: InfoHash) -> EngineResult<Vec<u8>> {
        self.session.pieces(id).await
    }

    async fn counters(&self) -> EngineResult<EngineCounters> {
        self.session.counters().await
    }

    async fn limits(&self) -> EngineResult<Limits> {
        self.session.limits().await
    }

    async fn set_limits(&self, limits: Limits) -> EngineResult<Limits> {
        self.session.set_limits(limits).await
    }

    async fn alt_speed(&self) -> EngineResult<swarm_model::AltSpeed> {
        self.session.alt_speed().await
    }

    async fn set_alt_speed(
        &self,
        alt: swarm_model::AltSpeed,
    ) -> EngineResult<swarm_model::AltSpeed> {
        self.session.set_alt_speed(alt).await
    }

    async fn encryption(&self) -> EngineResult<swarm_wire::mse::Policy> {
        self.session.encryption().await
    }

    async fn blocklist(&self) -> EngineResult<BlocklistStatus> {
        Ok(self.session.blocklist())
    }

    async fn reload_blocklist(
        &self,
        sources: Option<BlocklistSources>,
    ) -> EngineResult<BlocklistStatus> {
        self.session.reload_blocklist(sources).await
    }

    async fn update_blocklist(&self) -> EngineResult<BlocklistStatus> {
        self.session.update_blocklist().await
    }

    async fn set_encryption(
        &self,
        policy: swarm_wire::mse::Policy,
    ) -> EngineResult<swarm_wire::mse::Policy> {
        self.session.set_encryption(policy).await
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

    async fn failed(&self) -> String {
        self.session.failed().await
    }

    async fn shutdown(&self) {
        self.session.shutdown(self.stopped_timeout).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use swarm_control::paths::Mode;

    use super::*;

    fn paths() -> Paths {
        let dir = PathBuf::from("/nonexistent");
        Paths {
            mode: Mode::User,
            state_dir: dir.clone(),
            download_dir: dir.clone(),
            watch_dir: dir.clone(),
            socket: dir,
        }
    }

    /// `[trackers]` reaches the announcer: the documented defaults, and values a user sets.
    #[test]
    fn tracker_settings_reach_the_announcer() {
        let defaults = engine_config(&Config::default(), &paths());
        assert_eq!(defaults.announce, AnnounceSettings::default());
        assert_eq!(
            defaults.announce,
            AnnounceSettings {
                timeout: Duration::from_secs(30),
                numwant: 50,
                min_interval: Duration::from_secs(60),
            },
            "the defaults config/swarmd.toml documents"
        );
        let text = "[trackers]\nannounce_timeout_secs = 7\nnumwant = 12\nmin_interval_secs = 90\n";
        let config = swarmd::config::parse(text, Path::new("swarmd.toml")).unwrap();
        let set = engine_config(&config, &paths()).announce;
        assert_eq!(
            set,
            AnnounceSettings {
                timeout: Duration::from_secs(7),
                numwant: 12,
                min_interval: Duration::from_secs(90),
            }
        );
    }
}
