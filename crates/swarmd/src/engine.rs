//! The seam between the daemon's faces (control socket, watch directory, systemd) and the engine.
//!
//! Everything in swarmd except `engine_adapter.rs` talks to the engine only through [`Engine`], so
//! the faces can be built and tested against an in-memory fake and the actor tree plugged in with a
//! small adapter. Both sides speak `swarm-model`: the engine's views, events and its one
//! [`EngineError`] pass through unchanged. Torrents are named by [`InfoHash`]: prefix matching,
//! base64 decoding and parsing of `.torrent`/magnet input happen before the engine is called,
//! so it only sees valid input.

use std::future::Future;
use std::path::PathBuf;

use swarm_control::{AddResult, FilePriorityChange};
use swarm_model::{
    BlocklistSources, BlocklistStatus, EngineCounters, Event, FileInfo, InfoHash, Limits, PeerInfo,
    QueueConfig, QueueMove, SeedLimits, SeedingConfig, SessionStats, TorrentDetail, TorrentLimits,
    TorrentSummary, TrackerInfo,
};
pub use swarm_model::{EngineError, EngineResult};
use swarm_wire::mse::Policy;
use swarm_wire::{Magnet, Metainfo};
use tokio::sync::broadcast;

/// A torrent to add, already parsed and validated.
#[derive(Clone, Debug)]
pub enum NewTorrent {
    Metainfo(Box<Metainfo>),
    /// The engine fetches the metadata from peers (BEP 9).
    Magnet(Box<Magnet>),
}

impl NewTorrent {
    pub fn info_hash(&self) -> InfoHash {
        match self {
            NewTorrent::Metainfo(m) => m.info_hash,
            NewTorrent::Magnet(m) => m.info_hash,
        }
    }
}

#[derive(Clone, Debug)]
pub struct AddTorrent {
    pub torrent: NewTorrent,
    /// Absolute; `None` = the directory of its labels (`[labels.NAME] save_dir`), else the
    /// configured download directory.
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    /// Normalized (see [`swarm_model::normalize_labels`]).
    pub labels: Vec<String>,
}

/// The engine as the daemon's faces see it. Cheap to clone (an actor address, a channel sender):
/// every control connection and the watch directory hold a clone.
///
/// The futures must be `Send` because each control connection is its own tokio task.
pub trait Engine: Clone + Send + Sync + 'static {
    fn add(&self, add: AddTorrent) -> impl Future<Output = EngineResult<AddResult>> + Send;
    fn list(&self) -> impl Future<Output = EngineResult<Vec<TorrentSummary>>> + Send;
    /// [`Engine::list`] as the JSON array it serializes to: `torrent.list` sends it as is. The
    /// daemon's engine joins the JSON its torrents published instead of serializing a list.
    fn list_json(&self) -> impl Future<Output = EngineResult<String>> + Send {
        async move {
            let list = self.list().await?;
            serde_json::to_string(&list).map_err(|e| EngineError::Internal(e.to_string()))
        }
    }
    /// Every torrent's info-hash and name, in no particular order: what resolving an info-hash
    /// prefix needs. The daemon's engine answers without building any summary.
    fn names(&self) -> impl Future<Output = EngineResult<Vec<(InfoHash, String)>>> + Send {
        async move {
            let list = self.list().await?;
            Ok(list.into_iter().map(|t| (t.info_hash, t.name)).collect())
        }
    }
    fn show(&self, id: InfoHash) -> impl Future<Output = EngineResult<TorrentDetail>> + Send;
    fn pause(&self, id: InfoHash) -> impl Future<Output = EngineResult<()>> + Send;
    fn resume(&self, id: InfoHash) -> impl Future<Output = EngineResult<()>> + Send;
    /// Removes the torrent (announcing `stopped`); with `delete_data`, deletes its files too.
    fn remove(
        &self,
        id: InfoHash,
        delete_data: bool,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Starts a full recheck; answers once it is queued, not when it is done.
    fn verify(&self, id: InfoHash) -> impl Future<Output = EngineResult<()>> + Send;
    fn reannounce(&self, id: InfoHash) -> impl Future<Output = EngineResult<()>> + Send;
    /// Super-seeding (BEP 16) on or off; it runs while the torrent seeds.
    fn set_super_seed(
        &self,
        id: InfoHash,
        on: bool,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Resumes the torrent whatever the queue says (`start --force`), until it is paused or
    /// started plainly.
    fn force_start(&self, id: InfoHash) -> impl Future<Output = EngineResult<()>> + Send;
    /// Moves the torrent in the queue; its position after the move (0 first).
    fn queue_move(
        &self,
        id: InfoHash,
        to: QueueMove,
    ) -> impl Future<Output = EngineResult<u32>> + Send;
    /// Sets the torrent's own seeding limits (the current ones are in [`Engine::show`]).
    fn set_seed_limits(
        &self,
        id: InfoHash,
        limits: SeedLimits,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// The queue's settings and the session's seeding limits in force.
    fn queue_config(
        &self,
    ) -> impl Future<Output = EngineResult<(QueueConfig, SeedingConfig)>> + Send;
    /// Changes both at run time; returns them as now in force.
    fn set_queue_config(
        &self,
        queue: QueueConfig,
        seeding: SeedingConfig,
    ) -> impl Future<Output = EngineResult<(QueueConfig, SeedingConfig)>> + Send;
    /// Replaces the torrent's own limits; returns them as they now are.
    fn set_torrent_limits(
        &self,
        id: InfoHash,
        limits: TorrentLimits,
    ) -> impl Future<Output = EngineResult<TorrentLimits>> + Send;
    /// Replaces the torrent's labels (normalized already).
    fn set_labels(
        &self,
        id: InfoHash,
        labels: Vec<String>,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Moves the torrent's data to `dir` (absolute), or with `move_data` false only points it
    /// there (and rechecks); returns once the move has started.
    fn move_storage(
        &self,
        id: InfoHash,
        dir: std::path::PathBuf,
        move_data: bool,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    /// Peers the torrent dials (checked already: IP literals, port not 0).
    fn add_peers(
        &self,
        id: InfoHash,
        peers: Vec<std::net::SocketAddr>,
    ) -> impl Future<Output = EngineResult<()>> + Send;
    fn files(&self, id: InfoHash) -> impl Future<Output = EngineResult<Vec<FileInfo>>> + Send;
    /// Applies all changes or none (an index out of range is `Invalid`); returns the new file list.
    fn set_file_priority(
        &self,
        id: InfoHash,
        changes: Vec<FilePriorityChange>,
    ) -> impl Future<Output = EngineResult<Vec<FileInfo>>> + Send;
    fn peers(&self, id: InfoHash) -> impl Future<Output = EngineResult<Vec<PeerInfo>>> + Send;
    fn trackers(&self, id: InfoHash)
        -> impl Future<Output = EngineResult<Vec<TrackerInfo>>> + Send;
    fn stats(&self) -> impl Future<Output = EngineResult<SessionStats>> + Send;
    /// The pieces the torrent has, as the wire's bitfield (bit 7 of byte 0 = piece 0); empty
    /// while a magnet has no metadata. The RPC's `pieces` field.
    fn pieces(&self, id: InfoHash) -> impl Future<Output = EngineResult<Vec<u8>>> + Send;
    /// The engine's own counters (peers by direction, disk queue, tracker failures): what the
    /// metrics read besides [`Engine::stats`], without asking any torrent.
    fn counters(&self) -> impl Future<Output = EngineResult<EngineCounters>> + Send;
    /// The normal global rates (in force unless the alternative ones are on; [`Engine::stats`]
    /// has the ones in force).
    fn limits(&self) -> impl Future<Output = EngineResult<Limits>> + Send;
    /// Sets both normal global rates (bytes/s, `None` = unlimited); returns them.
    fn set_limits(&self, limits: Limits) -> impl Future<Output = EngineResult<Limits>> + Send;
    /// The alternative speed limits, their switch and their schedule.
    fn alt_speed(&self) -> impl Future<Output = EngineResult<swarm_model::AltSpeed>> + Send;
    /// Replaces them; returns them as now in force (a schedule whose window is open turns them
    /// on at once).
    fn set_alt_speed(
        &self,
        alt: swarm_model::AltSpeed,
    ) -> impl Future<Output = EngineResult<swarm_model::AltSpeed>> + Send;
    /// The IP blocklist: the rules in force, where from, what it refused.
    fn blocklist(&self) -> impl Future<Output = EngineResult<BlocklistStatus>> + Send;
    /// Reads the blocklist's files again, from `sources` when given (the config changed); on
    /// an unreadable file the rules in force stay and the error names the file.
    fn reload_blocklist(
        &self,
        sources: Option<BlocklistSources>,
    ) -> impl Future<Output = EngineResult<BlocklistStatus>> + Send;
    /// Fetches `[blocklist] url` into its file, then reloads.
    fn update_blocklist(&self) -> impl Future<Output = EngineResult<BlocklistStatus>> + Send;
    /// The encryption (MSE/PE) policy in force.
    fn encryption(&self) -> impl Future<Output = EngineResult<Policy>> + Send;
    /// Sets the encryption policy for connections made from now on; returns it.
    fn set_encryption(&self, policy: Policy) -> impl Future<Output = EngineResult<Policy>> + Send;
    /// A new receiver of the engine's event channel. The channel is bounded: a receiver that falls
    /// behind gets `RecvError::Lagged`, the engine never waits for it.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
    /// Completes once the actor system has answered a ping. The systemd watchdog is fed only
    /// while this answers within its deadline.
    fn heartbeat(&self) -> impl Future<Output = ()> + Send;
    /// Completes, with the reason, when the engine cannot go on (a global service used up its
    /// restart budget): the daemon then stops and exits with code 1, so that systemd restarts
    /// it. An engine that never fails on its own keeps the default.
    fn failed(&self) -> impl Future<Output = String> + Send {
        std::future::pending()
    }
    /// Graceful stop: announce `stopped` (with the configured timeout), flush resume state, stop
    /// the actors. Called once, after the control socket and watch directory have stopped.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}
