//! Views of the daemon's state, as the control protocol carries them.

use serde::{Deserialize, Serialize};

/// Lifecycle of one torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentState {
    /// Waiting for the metadata of a magnet link.
    FetchingMetadata,
    /// Hashing existing data (initial check or `verify`).
    Checking,
    Downloading,
    Seeding,
    Paused,
    /// Stopped by an error (e.g. disk full); `error` says why. `resume` retries.
    Error,
}

impl TorrentState {
    /// The state's one spelling: what the protocol carries and what every output shows
    /// (`swarmctl list`, `show`, `watch`, `swarmd download`).
    pub fn as_str(self) -> &'static str {
        match self {
            TorrentState::FetchingMetadata => "fetching_metadata",
            TorrentState::Checking => "checking",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::Paused => "paused",
            TorrentState::Error => "error",
        }
    }
}

impl std::fmt::Display for TorrentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorrentSummary {
    pub info_hash: String,
    pub name: String,
    pub state: TorrentState,
    /// 0.0..=1.0 of the wanted bytes.
    pub progress: f64,
    pub total_bytes: u64,
    pub have_bytes: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub peers: u32,
    pub save_dir: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorrentDetail {
    #[serde(flatten)]
    pub summary: TorrentSummary,
    pub piece_length: u32,
    pub pieces: u32,
    pub pieces_have: u32,
    pub private: bool,
    #[serde(default)]
    pub comment: Option<String>,
    pub added_at: i64,
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// Peer actors restarted by this torrent's supervisor since it started.
    pub peer_restarts: u64,
    pub hash_failures: u64,
    pub eta_secs: Option<u64>,
    /// Super-seeding (BEP 16) is on (it runs while the torrent seeds).
    #[serde(default)]
    pub super_seed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilePriority {
    Skip,
    Low,
    Normal,
    High,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    pub index: u32,
    pub path: String,
    pub length: u64,
    pub have_bytes: u64,
    pub priority: FilePriority,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub addr: String,
    pub client: String,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// `tracker`, `incoming`, `pex`, `dht`, `manual`, `magnet`.
    pub source: String,
    /// `tcp` or `utp` (BEP 29). Absent from older daemons' answers: empty.
    #[serde(default)]
    pub transport: String,
    pub progress: f64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    pub requests_in_flight: u32,
    /// The connection is RC4-encrypted (MSE/PE).
    #[serde(default)]
    pub encrypted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackerInfo {
    pub url: String,
    pub tier: u32,
    /// `ok`, `error`, `pending`, `not_contacted`.
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
    pub peers_received: u32,
    /// Seconds until the next announce.
    pub next_announce_secs: Option<u64>,
}

/// Rate limits in bytes per second; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default)]
    pub download: Option<u64>,
    #[serde(default)]
    pub upload: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    pub torrents: u32,
    pub downloading: u32,
    pub seeding: u32,
    pub peers: u32,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    /// Restarts counted by the supervision tree (peers, torrents, services).
    pub restarts: RestartCounts,
    pub uptime_secs: u64,
    pub limits: Limits,
    pub listen_port: u16,
    #[serde(default)]
    pub dht_nodes: Option<u32>,
}

/// Counters the engine keeps for its own work, beside [`SessionStats`]: what the HTTP face's
/// Prometheus metrics read (`docs/http-rpc.md`), each answered without touching a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Live peer connections that dialled us, and that we dialled.
    pub peers_incoming: u32,
    pub peers_outgoing: u32,
    /// Disk jobs (piece writes, block reads, checks) waiting for a disk thread.
    pub disk_queue: u64,
    /// Disk jobs that panicked (each failed alone; the pool lives on).
    pub disk_jobs_panicked: u64,
    /// Trackers, over all torrents, whose last announce failed.
    pub trackers_failing: u32,
    /// Announces that failed since the announcer (last) started.
    pub announce_failures: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCounts {
    pub peers: u64,
    pub torrents: u64,
    pub services: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Added {
        info_hash: String,
        name: String,
    },
    Completed {
        info_hash: String,
        name: String,
    },
    Error {
        info_hash: String,
        message: String,
    },
    Removed {
        info_hash: String,
    },
    Progress {
        info_hash: String,
        progress: f64,
        download_rate: u64,
        upload_rate: u64,
        state: TorrentState,
    },
    /// The torrent's state changed (paused, resumed, checking, seeding, error…), at once.
    State {
        info_hash: String,
        name: String,
        state: TorrentState,
    },
    /// An event of a newer daemon that this client does not know: skipped, never sent.
    #[serde(other)]
    Unknown,
}

/// Where an added torrent comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentSource {
    /// A path on the daemon's machine.
    Path(String),
    /// The bytes of a .torrent, base64.
    Metainfo(String),
    Magnet(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AddParams {
    #[serde(flatten)]
    pub source: TorrentSource,
    #[serde(default)]
    pub save_dir: Option<String>,
    #[serde(default)]
    pub paused: bool,
}
