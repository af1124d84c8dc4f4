//! One torrent as the engine reports it: its state, summary, detail, files, peers and trackers.
//! The engine builds these; the control protocol and the HTTP RPC carry them as they are (JSON,
//! info-hash as hex).

use serde::{Deserialize, Serialize};
use swarm_wire::InfoHash;

/// Lifecycle of one torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentState {
    /// Waiting for the metadata of a magnet link.
    FetchingMetadata,
    /// Waiting for its turn to hash its data: checks run a few at a time (`[queue]
    /// max_active_checks`), transmission's "check-wait" (status 1).
    CheckingQueued,
    /// Hashing existing data (initial check or `verify`).
    Checking,
    Downloading,
    Seeding,
    /// Wants to download, waiting for a download slot of the queue (transmission's
    /// "download-wait", status 3): it does not dial, accept peers or announce.
    QueuedDownload,
    /// Complete, waiting for a seed slot of the queue (transmission's "seed-wait", status 5).
    QueuedSeed,
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
            TorrentState::CheckingQueued => "checking_queued",
            TorrentState::Checking => "checking",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::QueuedDownload => "queued_download",
            TorrentState::QueuedSeed => "queued_seed",
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
    pub info_hash: InfoHash,
    pub name: String,
    pub state: TorrentState,
    /// 0.0..=1.0 of the wanted bytes.
    pub progress: f64,
    /// The whole torrent, skipped files included.
    pub total_bytes: u64,
    /// Verified bytes (of any file, skipped ones included).
    pub have_bytes: u64,
    /// Bytes of the pieces not skipped: the size when done (`total_bytes` with nothing skipped).
    #[serde(default)]
    pub wanted_bytes: u64,
    /// Of `wanted_bytes`, the bytes not verified yet.
    #[serde(default)]
    pub left_bytes: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub peers: u32,
    pub save_dir: String,
    #[serde(default)]
    pub error: Option<String>,
    /// Place in the queue, 0 first (transmission's `queuePosition`).
    #[serde(default)]
    pub queue_position: u32,
    /// Force-started: runs whatever the queue says (`start --force`).
    #[serde(default)]
    pub forced: bool,
    /// The user's labels, in the order given (see [`normalize_labels`]).
    #[serde(default)]
    pub labels: Vec<String>,
    /// A move of the data under way (`move`, or a download in the incomplete directory going to
    /// its save directory); `None` when the data stays where it is.
    #[serde(default)]
    pub moving: Option<MoveProgress>,
}

/// A move of a torrent's data to another directory, as `show` and `watch` see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MoveProgress {
    /// The directory the data goes to (the save directory once the move is done).
    pub to: String,
    /// 0.0..=1.0 of the bytes.
    pub progress: f64,
    /// Why the move stopped (it goes on with `move` to the same directory, or at a restart).
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
    /// This torrent's seeding limits (each one its own, the session's, or none).
    #[serde(default)]
    pub seed_limits: SeedLimits,
    /// Seconds spent seeding, all time (what the seed-time limit counts).
    #[serde(default)]
    pub seeding_secs: u64,
    /// The torrent's own limits (unset: the session's).
    #[serde(default)]
    pub limits: TorrentLimits,
}

/// One of a torrent's seeding limits: the session's (`[seeding]`), its own value, or none, as
/// transmission's `seedRatioMode`/`seedIdleMode` (0 global, 1 single, 2 unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit<T> {
    #[default]
    Global,
    Own(T),
    Unlimited,
}

impl<T: Copy> Limit<T> {
    /// The value in force, given the session's.
    pub fn resolve(self, global: Option<T>) -> Option<T> {
        match self {
            Limit::Global => global,
            Limit::Own(v) => Some(v),
            Limit::Unlimited => None,
        }
    }
}

/// A torrent's seeding limits. What happens when one is reached is the session's
/// [`SeedAction`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedLimits {
    /// Uploaded / downloaded (or / size when nothing was downloaded).
    #[serde(default)]
    pub ratio: Limit<f64>,
    /// Minutes of seeding.
    #[serde(default)]
    pub seed_time_minutes: Limit<u64>,
    /// Minutes without payload moving either way while seeding.
    #[serde(default)]
    pub idle_minutes: Limit<u64>,
}

/// One torrent's own limits. Each unset one is the session's: the global rate limits (which
/// apply on top of the torrent's own), `max_peers_per_torrent`, `unchoke_slots`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentLimits {
    /// Bytes per second.
    #[serde(default)]
    pub download: Option<u64>,
    #[serde(default)]
    pub upload: Option<u64>,
    /// Connections (both directions) at once.
    #[serde(default)]
    pub max_peers: Option<u32>,
    /// Peers unchoked at once, the optimistic one included.
    #[serde(default)]
    pub upload_slots: Option<u32>,
    /// Its share of the global limits against other torrents (transmission's
    /// `bandwidthPriority`).
    #[serde(default)]
    pub priority: BandwidthPriority,
}

/// A torrent's share of the global rate limits while torrents compete for them: when the
/// limiter has more askers than bytes, a `high` torrent is served four times as often as a
/// `low` one and twice as often as a `normal` one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandwidthPriority {
    Low,
    #[default]
    Normal,
    High,
}

impl BandwidthPriority {
    /// Grants per turn of the rate limiter's line.
    pub fn weight(self) -> u32 {
        match self {
            BandwidthPriority::Low => 1,
            BandwidthPriority::Normal => 2,
            BandwidthPriority::High => 4,
        }
    }

    /// Transmission's `bandwidthPriority`: -1, 0, 1.
    pub fn transmission(self) -> i64 {
        match self {
            BandwidthPriority::Low => -1,
            BandwidthPriority::Normal => 0,
            BandwidthPriority::High => 1,
        }
    }

    pub fn from_transmission(n: i64) -> Option<Self> {
        match n {
            -1 => Some(BandwidthPriority::Low),
            0 => Some(BandwidthPriority::Normal),
            1 => Some(BandwidthPriority::High),
            _ => None,
        }
    }
}

/// The longest label, in bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// The most labels one torrent takes.
pub const MAX_LABELS: usize = 64;

/// Labels as a torrent keeps them: each trimmed, non-empty, without a comma (transmission's
/// RPC forbids them: some clients join labels with commas), at most [`MAX_LABEL_LEN`] bytes;
/// duplicates dropped, the first kept, order kept. The error names the label.
pub fn normalize_labels<S: AsRef<str>>(labels: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        let l = l.as_ref().trim();
        if l.is_empty() {
            return Err("a label is empty".into());
        }
        if l.contains(',') {
            return Err(format!("label {l:?} has a comma, which labels cannot have"));
        }
        if l.len() > MAX_LABEL_LEN {
            return Err(format!("label {l:?} is longer than {MAX_LABEL_LEN} bytes"));
        }
        if !out.iter().any(|x| x == l) {
            out.push(l.to_owned());
        }
    }
    if out.len() > MAX_LABELS {
        return Err(format!(
            "{} labels: a torrent takes at most {MAX_LABELS}",
            out.len()
        ));
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_deduplicated_and_checked() {
        assert_eq!(
            normalize_labels(&[" tv ", "hd", "tv"]).unwrap(),
            vec!["tv".to_string(), "hd".to_string()]
        );
        assert!(normalize_labels(&["a,b"]).unwrap_err().contains("\"a,b\""));
        assert!(normalize_labels(&["  "]).unwrap_err().contains("empty"));
        assert!(normalize_labels(&["x".repeat(200)]).is_err());
    }
}
