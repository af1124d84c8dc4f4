//! The methods of the control protocol: their names, their params and their results.
//!
//! Every method takes its params as a JSON object (or none at all where it has none). Results
//! reuse the view types of [`crate::types`]. `docs/control-protocol.md` documents each method for
//! people writing scripts; keep the two in step.

use serde::{Deserialize, Serialize};

use swarm_model::{
    FilePriority, InfoHash, Limit, Limits, QueueConfig, QueueMove, SeedLimits, SeedingConfig,
    TorrentLimits,
};

/// Method names, as they appear in `"method"`.
pub mod names {
    pub const DAEMON_INFO: &str = "daemon.info";
    pub const DAEMON_SHUTDOWN: &str = "daemon.shutdown";
    pub const SESSION_STATS: &str = "session.stats";
    pub const SESSION_GET_LIMITS: &str = "session.get_limits";
    pub const SESSION_SET_LIMITS: &str = "session.set_limits";
    pub const SESSION_GET_ALT_SPEED: &str = "session.get_alt_speed";
    pub const SESSION_SET_ALT_SPEED: &str = "session.set_alt_speed";
    pub const SESSION_GET_ENCRYPTION: &str = "session.get_encryption";
    pub const SESSION_SET_ENCRYPTION: &str = "session.set_encryption";
    pub const TORRENT_ADD: &str = "torrent.add";
    pub const TORRENT_LIST: &str = "torrent.list";
    pub const TORRENT_SHOW: &str = "torrent.show";
    pub const TORRENT_PAUSE: &str = "torrent.pause";
    pub const TORRENT_RESUME: &str = "torrent.resume";
    pub const TORRENT_REMOVE: &str = "torrent.remove";
    pub const TORRENT_VERIFY: &str = "torrent.verify";
    pub const TORRENT_REANNOUNCE: &str = "torrent.reannounce";
    pub const TORRENT_FILES: &str = "torrent.files";
    pub const TORRENT_SET_FILE_PRIORITY: &str = "torrent.set_file_priority";
    pub const TORRENT_SET_SUPER_SEED: &str = "torrent.set_super_seed";
    pub const TORRENT_FORCE_START: &str = "torrent.force_start";
    pub const TORRENT_QUEUE_MOVE: &str = "torrent.queue_move";
    pub const TORRENT_SET_QUEUE_POSITION: &str = "torrent.set_queue_position";
    pub const TORRENT_SET_SEED_LIMITS: &str = "torrent.set_seed_limits";
    pub const SESSION_GET_QUEUE: &str = "session.get_queue";
    pub const SESSION_SET_QUEUE: &str = "session.set_queue";
    pub const TORRENT_PEERS: &str = "torrent.peers";
    pub const TORRENT_ADD_PEERS: &str = "torrent.add_peers";
    pub const TORRENT_SET_LIMITS: &str = "torrent.set_limits";
    pub const TORRENT_SET_LABELS: &str = "torrent.set_labels";
    pub const TORRENT_MOVE_STORAGE: &str = "torrent.move_storage";
    pub const TORRENT_TRACKERS: &str = "torrent.trackers";
    pub const EVENTS_SUBSCRIBE: &str = "events.subscribe";
    pub const BLOCKLIST_STATUS: &str = "blocklist.status";
    pub const BLOCKLIST_RELOAD: &str = "blocklist.reload";
    pub const BLOCKLIST_UPDATE: &str = "blocklist.update";

    /// Notification carrying one [`crate::Event`] as its params.
    pub const NOTIFY_EVENT: &str = "event";
    /// Notification sent when a subscriber fell behind and events were dropped for it;
    /// params are [`super::LaggedParams`].
    pub const NOTIFY_LAGGED: &str = "lagged";

    /// Every method, for documentation checks and `method not found` hints.
    pub const ALL: &[&str] = &[
        DAEMON_INFO,
        DAEMON_SHUTDOWN,
        SESSION_STATS,
        SESSION_GET_LIMITS,
        SESSION_SET_LIMITS,
        SESSION_GET_ALT_SPEED,
        SESSION_SET_ALT_SPEED,
        SESSION_GET_ENCRYPTION,
        SESSION_SET_ENCRYPTION,
        TORRENT_ADD,
        TORRENT_LIST,
        TORRENT_SHOW,
        TORRENT_PAUSE,
        TORRENT_RESUME,
        TORRENT_REMOVE,
        TORRENT_VERIFY,
        TORRENT_REANNOUNCE,
        TORRENT_FILES,
        TORRENT_SET_FILE_PRIORITY,
        TORRENT_SET_SUPER_SEED,
        TORRENT_FORCE_START,
        TORRENT_QUEUE_MOVE,
        TORRENT_SET_QUEUE_POSITION,
        TORRENT_SET_SEED_LIMITS,
        SESSION_GET_QUEUE,
        SESSION_SET_QUEUE,
        TORRENT_PEERS,
        TORRENT_ADD_PEERS,
        TORRENT_SET_LIMITS,
        TORRENT_SET_LABELS,
        TORRENT_MOVE_STORAGE,
        TORRENT_TRACKERS,
        EVENTS_SUBSCRIBE,
        BLOCKLIST_STATUS,
        BLOCKLIST_RELOAD,
        BLOCKLIST_UPDATE,
    ];

    /// Methods that change the daemon's state: only the daemon's own uid, root and the users of
    /// `[control] allow` may call them. Everything else is read-only.
    pub fn changes_state(method: &str) -> bool {
        matches!(
            method,
            DAEMON_SHUTDOWN
                | SESSION_SET_LIMITS
                | SESSION_SET_ALT_SPEED
                | SESSION_SET_ENCRYPTION
                | TORRENT_ADD
                | TORRENT_PAUSE
                | TORRENT_RESUME
                | TORRENT_REMOVE
                | TORRENT_VERIFY
                | TORRENT_REANNOUNCE
                | TORRENT_SET_FILE_PRIORITY
                | TORRENT_SET_SUPER_SEED
                | TORRENT_FORCE_START
                | TORRENT_QUEUE_MOVE
                | TORRENT_SET_QUEUE_POSITION
                | TORRENT_SET_SEED_LIMITS
                | SESSION_SET_QUEUE
                | TORRENT_ADD_PEERS
                | TORRENT_SET_LIMITS
                | TORRENT_SET_LABELS
                | BLOCKLIST_RELOAD
                | BLOCKLIST_UPDATE
                | TORRENT_MOVE_STORAGE
        )
    }
}

/// Shortest info-hash prefix accepted where a torrent is named: six hex digits are enough to tell
/// apart the torrents of any realistic daemon, and short enough to type.
pub const MIN_PREFIX_LEN: usize = 6;

/// How a request names a torrent (a *selector*): the whole info-hash (40 hex digits), a prefix of
/// it (at least [`MIN_PREFIX_LEN`] hex digits), or the torrent's name, exactly as `torrent.list`
/// shows it. The daemon resolves a selector in one place (its control dispatch); a selector that
/// matches several torrents is an error listing them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TorrentRef {
    /// 40 hex digits: the info-hash itself.
    Exact(InfoHash),
    /// 6 to 39 hex digits (`hex` lowercased): an info-hash prefix, or a name that looks like one
    /// (`text`, as given), so both are matched.
    Prefix { hex: String, text: String },
    /// Anything else: a torrent's name.
    Name(String),
}

impl TorrentRef {
    /// Reads a selector; only an empty one is refused. Surrounding whitespace is ignored.
    pub fn parse(s: &str) -> Result<TorrentRef, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(format!(
                "no torrent given: name one by its info-hash, {MIN_PREFIX_LEN}+ hex digits of it, or its name"
            ));
        }
        let lower = s.to_ascii_lowercase();
        Ok(match s.len() {
            _ if !s.bytes().all(|b| b.is_ascii_hexdigit()) => TorrentRef::Name(s.to_owned()),
            40 => match InfoHash::from_hex(s) {
                Some(ih) => TorrentRef::Exact(ih),
                None => TorrentRef::Name(s.to_owned()),
            },
            n if (MIN_PREFIX_LEN..40).contains(&n) => TorrentRef::Prefix {
                hex: lower,
                text: s.to_owned(),
            },
            _ => TorrentRef::Name(s.to_owned()),
        })
    }

    /// True when the torrent with `info_hash` and `name` is one this names.
    pub fn matches(&self, info_hash: &InfoHash, name: &str) -> bool {
        match self {
            TorrentRef::Exact(h) => h == info_hash,
            TorrentRef::Prefix { hex, text } => {
                info_hash.to_hex().starts_with(hex.as_str()) || name == text
            }
            TorrentRef::Name(n) => name == n,
        }
    }
}

/// Params of the methods that act on one torrent: `torrent.show`, `.pause`, `.resume`,
/// `.verify`, `.reannounce`, `.files`, `.peers`, `.trackers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorrentParams {
    /// A selector: the info-hash in hex, a unique prefix of at least [`MIN_PREFIX_LEN`] digits,
    /// or the torrent's name (see [`TorrentRef`]).
    pub torrent: String,
}

/// Params of `torrent.remove`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    pub torrent: String,
    /// Also delete the downloaded files (never the .torrent the user dropped anywhere).
    #[serde(default)]
    pub delete_data: bool,
}

/// Params of `torrent.set_super_seed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSuperSeedParams {
    pub torrent: String,
    pub enabled: bool,
}

/// Params of `torrent.queue_move`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueMoveParams {
    pub torrent: String,
    /// `top`, `up`, `down` or `bottom`.
    pub to: QueueDirection,
}

/// Where `torrent.queue_move` moves a torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueDirection {
    Top,
    Up,
    Down,
    Bottom,
}

impl From<QueueDirection> for QueueMove {
    fn from(d: QueueDirection) -> QueueMove {
        match d {
            QueueDirection::Top => QueueMove::Top,
            QueueDirection::Up => QueueMove::Up,
            QueueDirection::Down => QueueMove::Down,
            QueueDirection::Bottom => QueueMove::Bottom,
        }
    }
}

/// Params of `torrent.set_queue_position`: 0 is the first place; past the end is the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetQueuePositionParams {
    pub torrent: String,
    pub position: u32,
}

/// Result of `torrent.queue_move` and `torrent.set_queue_position`: the place after the move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePositionResult {
    pub queue_position: u32,
}

/// Params of `torrent.set_seed_limits`: each limit omitted is unchanged; each given one is
/// `"global"` (the session's `[seeding]`), `"unlimited"`, or `{"own": value}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSeedLimitsParams {
    pub torrent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Limit<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_time_minutes: Option<Limit<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_minutes: Option<Limit<u64>>,
}

impl SetSeedLimitsParams {
    /// The limits after these changes; a ratio that is negative or not a number is refused.
    pub fn apply_to(&self, current: SeedLimits) -> Result<SeedLimits, String> {
        if let Some(Limit::Own(r)) = self.ratio {
            if !r.is_finite() || r < 0.0 {
                return Err(format!("ratio limit {r} is not a ratio: give 0 or more"));
            }
        }
        Ok(SeedLimits {
            ratio: self.ratio.unwrap_or(current.ratio),
            seed_time_minutes: self.seed_time_minutes.unwrap_or(current.seed_time_minutes),
            idle_minutes: self.idle_minutes.unwrap_or(current.idle_minutes),
        })
    }
}

/// Params of `session.set_queue`, and the result of both queue methods: the queue's settings
/// and the session's seeding limits. An object given replaces the one in force (its keys
/// omitted are `null`: no limit); an object omitted is unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeding: Option<SeedingConfig>,
}

impl QueueParams {
    /// Refuses settings no one can mean: a queue of 0 (use `null` for no limit), a negative
    /// ratio.
    pub fn check(&self) -> Result<(), String> {
        if let Some(q) = &self.queue {
            for (key, v) in [
                ("max_active_downloads", q.max_active_downloads),
                ("max_active_seeds", q.max_active_seeds),
                ("max_active_total", q.max_active_total),
                ("stalled_minutes", q.stalled_minutes),
            ] {
                if v == Some(0) {
                    return Err(format!(
                        "{key} = 0 would stop everything: give 1 or more, or null for no limit"
                    ));
                }
            }
        }
        if let Some(r) = self.seeding.and_then(|s| s.ratio_limit) {
            if !r.is_finite() || r < 0.0 {
                return Err(format!(
                    "ratio_limit {r} is not a ratio: give 0 or more, or null"
                ));
            }
        }
        Ok(())
    }
}

/// Params of `torrent.set_limits`: the torrent's own limits. Omitted = unchanged, 0 = back to
/// the session's (rates: only the global limits; `max_peers`: `[network] max_peers_per_torrent`;
/// `upload_slots`: `[limits] upload_slots_per_torrent`). The result is the torrent's limits as
/// they now are ([`TorrentLimits`], `null` for the session's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTorrentLimitsParams {
    pub torrent: String,
    /// Bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_slots: Option<u32>,
    /// Its share of the global limits: `low`, `normal`, `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<swarm_model::BandwidthPriority>,
}

/// The most connections one torrent may be given (`max_peers`).
pub const MAX_TORRENT_PEERS: u32 = 10_000;
/// The most upload slots one torrent may be given.
pub const MAX_TORRENT_SLOTS: u32 = 1_000;

impl SetTorrentLimitsParams {
    /// Refuses what no setting can mean; the error names the limit.
    pub fn check(&self) -> Result<(), String> {
        SetLimitsParams {
            download: self.download,
            upload: self.upload,
        }
        .check()?;
        for (what, n, max) in [
            ("max_peers", self.max_peers, MAX_TORRENT_PEERS),
            ("upload_slots", self.upload_slots, MAX_TORRENT_SLOTS),
        ] {
            if n.is_some_and(|n| n > max) {
                return Err(format!(
                    "{what} {} is more than {max}; 0 means the session's",
                    n.unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    /// The limits after applying these changes to `current`.
    pub fn apply_to(&self, current: TorrentLimits) -> TorrentLimits {
        TorrentLimits {
            download: pick(self.download, current.download),
            upload: pick(self.upload, current.upload),
            max_peers: pick(self.max_peers, current.max_peers),
            upload_slots: pick(self.upload_slots, current.upload_slots),
            priority: self.priority.unwrap_or(current.priority),
        }
    }

    /// Whether these params change nothing (then `torrent.set_limits` only reads).
    pub fn is_query(&self) -> bool {
        self.download.is_none()
            && self.upload.is_none()
            && self.max_peers.is_none()
            && self.upload_slots.is_none()
            && self.priority.is_none()
    }
}

/// Params of `torrent.set_labels`: the torrent's labels from now on (replacing its labels).
/// The result is the labels as kept (trimmed, duplicates dropped: see
/// [`swarm_model::normalize_labels`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLabelsParams {
    pub torrent: String,
    pub labels: Vec<String>,
}

/// Params of `torrent.move_storage`: move the torrent's data to `dir` (absolute), file by file
/// while it keeps trading, or with `move: false` only look for the data there (a recheck). The
/// result is `dir`, once the move has started; its progress is `moving` in `torrent.show`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveStorageParams {
    pub torrent: String,
    pub dir: std::path::PathBuf,
    /// `false`: do not move anything, point the torrent at `dir` (default `true`).
    #[serde(default = "yes", rename = "move")]
    pub move_data: bool,
}

fn yes() -> bool {
    true
}

/// Params of `torrent.add_peers`: addresses the torrent dials, `IP:PORT` (IPv6 as
/// `[ADDR]:PORT`). All are checked before any is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPeersParams {
    pub torrent: String,
    pub peers: Vec<String>,
}

/// Result of `torrent.add_peers`: the addresses handed to the torrent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPeersResult {
    pub peers: Vec<String>,
}

/// The most addresses one `torrent.add_peers` takes.
pub const MAX_ADD_PEERS: usize = 200;

/// Reads the peer addresses of `torrent.add_peers`: IP literals with a port (no host names: the
/// daemon resolves nothing on a user's behalf), port not 0. The error names the address.
pub fn parse_peer_addrs(peers: &[String]) -> Result<Vec<std::net::SocketAddr>, String> {
    if peers.is_empty() {
        return Err("no peer address given: name at least one, as IP:PORT".into());
    }
    if peers.len() > MAX_ADD_PEERS {
        return Err(format!(
            "{} peer addresses: at most {MAX_ADD_PEERS} at once",
            peers.len()
        ));
    }
    peers
        .iter()
        .map(|p| {
            let addr: std::net::SocketAddr = p.trim().parse().map_err(|_| {
                format!(
                    "{p:?} is not a peer address: expected IP:PORT, e.g. 192.0.2.7:6881 or \
                     [2001:db8::7]:6881"
                )
            })?;
            if addr.port() == 0 {
                return Err(format!("{p:?} has port 0, which no peer listens on"));
            }
            if addr.ip().is_unspecified() || addr.ip().is_multicast() {
                return Err(format!("{p:?} is not an address a peer can have"));
            }
            Ok(addr)
        })
        .collect()
}

/// One change of `torrent.set_file_priority`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePriorityChange {
    /// Index as listed by `torrent.files`.
    pub index: u32,
    pub priority: FilePriority,
}

/// Params of `torrent.set_file_priority`: all changes are checked before any is applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFilePriorityParams {
    pub torrent: String,
    pub priorities: Vec<FilePriorityChange>,
}

/// Params of `session.set_encryption`, and the result of both encryption methods: the MSE/PE
/// policy, `require`, `prefer`, `allow` or `disable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionParams {
    pub encryption: String,
}

/// Params of `session.set_limits`, in bytes per second. Omitted = unchanged, 0 = unlimited.
/// (The result, [`Limits`], uses `null` for unlimited.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLimitsParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<u64>,
}

/// The smallest rate limit (bytes/s) the daemon takes: below it one 16 KiB block takes longer
/// than a peer waits for it (at 1 B/s, four and a half hours), so the torrent only looks alive.
pub const MIN_RATE_LIMIT: u64 = 1 << 10;
/// The largest rate limit (bytes/s): 1 TiB/s is beyond any link, so a larger number is a typo or
/// an attempt at "no limit", which is spelled 0.
pub const MAX_RATE_LIMIT: u64 = 1 << 40;

/// Checks one direction's limit in bytes/s (0 = unlimited); the error says what to give instead.
pub fn check_rate_limit(direction: &str, bytes_per_sec: u64) -> Result<(), String> {
    use crate::human::rate;
    if bytes_per_sec == 0 || (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(&bytes_per_sec) {
        return Ok(());
    }
    let which = if bytes_per_sec < MIN_RATE_LIMIT {
        "below the smallest limit"
    } else {
        "above the largest limit"
    };
    Err(format!(
        "{direction} limit {} is {which} ({} to {}); 0 means unlimited",
        rate(bytes_per_sec),
        rate(MIN_RATE_LIMIT),
        rate(MAX_RATE_LIMIT)
    ))
}

/// A limit after a change: omitted (`None`) keeps the old one, 0 lifts it.
pub(crate) fn pick<T: Copy + Default + PartialEq>(new: Option<T>, old: Option<T>) -> Option<T> {
    match new {
        None => old,
        Some(n) if n == T::default() => None,
        Some(n) => Some(n),
    }
}

impl SetLimitsParams {
    /// Refuses limits no link can mean (see [`MIN_RATE_LIMIT`], [`MAX_RATE_LIMIT`]).
    pub fn check(&self) -> Result<(), String> {
        if let Some(d) = self.download {
            check_rate_limit("download", d)?;
        }
        if let Some(u) = self.upload {
            check_rate_limit("upload", u)?;
        }
        Ok(())
    }

    /// The limits after applying these changes to `current`.
    pub fn apply_to(&self, current: Limits) -> Limits {
        Limits {
            download: pick(self.download, current.download),
            upload: pick(self.upload, current.upload),
        }
    }
}

impl TorrentSource {
    /// The bytes of a `.torrent` file, as `torrent.add` carries them (standard base64).
    pub fn from_metainfo_bytes(bytes: &[u8]) -> TorrentSource {
        TorrentSource::Metainfo(data_encoding::BASE64.encode(bytes))
    }
}

/// Decodes the base64 of a `metainfo` source: standard alphabet, padded or not, line breaks
/// ignored (as the `base64` tool writes it).
pub fn decode_metainfo_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    data_encoding::BASE64_NOPAD
        .decode(compact.trim_end_matches('=').as_bytes())
        .map_err(|e| e.to_string())
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
    /// The torrent's labels; with no `save_dir`, the first label with a `[labels.NAME]
    /// save_dir` in the daemon's config chooses the directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// Result of `torrent.add`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResult {
    pub info_hash: InfoHash,
    /// The torrent's name; for a magnet without `dn`, the info-hash until metadata arrives.
    pub name: String,
}

/// Params of `daemon.shutdown` (none, or `{"wait": true}`). The result is `null` either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownParams {
    /// Answer only once the daemon has stopped: torrents stopped, resume state saved, the peer
    /// port and the state directory released. The connection then stays open until the process
    /// has exited, so reading to its end waits for that too.
    #[serde(default)]
    pub wait: bool,
}

/// Result of `daemon.info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub pid: u32,
    /// The uid the daemon runs as: this uid and root may change state.
    pub uid: u32,
    /// `user` or `system`.
    pub mode: String,
    /// The config file read at start, if any (swarmd runs on built-in defaults without one).
    #[serde(default)]
    pub config_file: Option<String>,
    pub state_dir: String,
    pub download_dir: String,
    #[serde(default)]
    pub watch_dir: Option<String>,
    pub socket: String,
    /// Unix time (seconds) the daemon started.
    pub started_at: i64,
    pub uptime_secs: u64,
    /// Set when the rate limits in force were set at run time (`session.set_limits`) rather than
    /// taken from the config: the file in the state directory that keeps them across restarts.
    #[serde(default)]
    pub runtime_limits_file: Option<String>,
}

/// Result of `events.subscribe`. After it, the server writes `event` (and `lagged`)
/// notifications on this connection until it closes; requests may still be sent on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeResult {
    pub subscribed: bool,
}

/// Params of the `lagged` notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaggedParams {
    /// How many events this subscriber missed because it read too slowly.
    pub missed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AddParams;
    use serde_json::json;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(v: &T) {
        let text = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
    }

    #[test]
    fn peer_addresses_are_ip_literals_with_a_port() {
        let ok = parse_peer_addrs(&["127.0.0.1:6881".into(), " [::1]:7000 ".into()]).unwrap();
        assert_eq!(ok[0].to_string(), "127.0.0.1:6881");
        assert_eq!(ok[1].to_string(), "[::1]:7000");
        for (bad, says) in [
            (
                "host.example:6881",
                "\"host.example:6881\" is not a peer address",
            ),
            ("::1:7000", "is not a peer address"),
            ("10.0.0.1", "is not a peer address"),
            ("10.0.0.1:0", "port 0"),
            ("0.0.0.0:1", "not an address a peer can have"),
        ] {
            let err = parse_peer_addrs(&[bad.into()]).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(parse_peer_addrs(&[])
            .unwrap_err()
            .contains("no peer address"));
        let many = vec!["1.2.3.4:5".to_string(); MAX_ADD_PEERS + 1];
        assert!(parse_peer_addrs(&many).is_err());
    }

    #[test]
    fn torrent_limits_change_what_is_given_and_zero_is_the_session_s() {
        let now = TorrentLimits {
            download: Some(5000),
            upload: Some(6000),
            max_peers: Some(10),
            upload_slots: None,
            priority: swarm_model::BandwidthPriority::Low,
        };
        let p = SetTorrentLimitsParams {
            torrent: "x".into(),
            upload: Some(0),
            upload_slots: Some(3),
            ..Default::default()
        };
        assert!(!p.is_query());
        assert_eq!(
            p.apply_to(now),
            TorrentLimits {
                upload: None,
                upload_slots: Some(3),
                ..now
            }
        );
        let high = SetTorrentLimitsParams {
            torrent: "x".into(),
            priority: Some(swarm_model::BandwidthPriority::High),
            ..Default::default()
        };
        assert_eq!(
            high.apply_to(now).priority,
            swarm_model::BandwidthPriority::High
        );
        let query = SetTorrentLimitsParams {
            torrent: "x".into(),
            ..Default::default()
        };
        assert!(query.is_query() && query.apply_to(now) == now);
        let absurd = SetTorrentLimitsParams {
            max_peers: Some(MAX_TORRENT_PEERS + 1),
            ..query.clone()
        };
        assert!(absurd.check().unwrap_err().contains("max_peers"));
        let slow = SetTorrentLimitsParams {
            download: Some(10),
            ..query
        };
        assert!(slow.check().unwrap_err().contains("download limit"));
    }

    #[test]
    fn torrent_ref_syntax() {
        let full = "0123456789abcdef0123456789ABCDEF01234567";
        assert_eq!(
            TorrentRef::parse(full).unwrap(),
            TorrentRef::Exact(InfoHash::from_hex(full).unwrap())
        );
        assert_eq!(
            TorrentRef::parse(" ABCDEF ").unwrap(),
            TorrentRef::Prefix {
                hex: "abcdef".into(),
                text: "ABCDEF".into()
            }
        );
        // Too short, too long or not hex: a name.
        for name in ["abcde", "xyz123", "big.bin", "two words"] {
            assert_eq!(
                TorrentRef::parse(name).unwrap(),
                TorrentRef::Name(name.into())
            );
        }
        assert_eq!(
            TorrentRef::parse(&format!("{full}0")).unwrap(),
            TorrentRef::Name(format!("{full}0"))
        );
        assert!(TorrentRef::parse("  ")
            .unwrap_err()
            .contains("no torrent given"));
    }

    #[test]
    fn torrent_ref_matching() {
        let ih = |hex: &str| InfoHash::from_hex(&format!("{hex:0<40}")).unwrap();
        let prefix = TorrentRef::parse("abcdef").unwrap();
        assert!(prefix.matches(&ih("abcdef00"), "x"));
        assert!(!prefix.matches(&ih("abcde000"), "x"));
        // A name that looks like a prefix matches as a name too.
        assert!(prefix.matches(&ih("00000000"), "abcdef"));
        let name = TorrentRef::parse("big.bin").unwrap();
        assert!(name.matches(&ih("00"), "big.bin"));
        assert!(!name.matches(&ih("00"), "Big.bin"));
        assert!(!name.matches(&ih("00"), "big.bin.part"));
        let exact = TorrentRef::parse(&"a".repeat(40)).unwrap();
        assert!(exact.matches(&ih(&"a".repeat(40)), "y"));
        assert!(!exact.matches(&ih(&"a".repeat(39)), "y"));
    }

    #[test]
    fn params_round_trip() {
        round_trip(&TorrentParams {
            torrent: "abcdef".into(),
        });
        round_trip(&RemoveParams {
            torrent: "abcdef".into(),
            delete_data: true,
        });
        round_trip(&SetSuperSeedParams {
            torrent: "abcdef".into(),
            enabled: true,
        });
        round_trip(&SetFilePriorityParams {
            torrent: "abcdef".into(),
            priorities: vec![FilePriorityChange {
                index: 3,
                priority: FilePriority::Skip,
            }],
        });
        round_trip(&SetLimitsParams {
            download: Some(0),
            upload: None,
        });
        round_trip(&AddResult {
            info_hash: InfoHash([0xaa; 20]),
            name: "n".into(),
        });
        round_trip(&SubscribeResult { subscribed: true });
        round_trip(&LaggedParams { missed: 4 });
        round_trip(&DaemonInfo {
            version: "0.1.0".into(),
            pid: 1,
            uid: 0,
            mode: "system".into(),
            config_file: None,
            state_dir: "/var/lib/swarmd".into(),
            download_dir: "/var/lib/swarmd/downloads".into(),
            watch_dir: Some("/var/lib/swarmd/watch".into()),
            socket: "/run/swarmd/swarmd.sock".into(),
            started_at: 1,
            uptime_secs: 2,
            runtime_limits_file: Some("/var/lib/swarmd/runtime-settings.json".into()),
        });
        round_trip(&ShutdownParams { wait: true });
    }

    #[test]
    fn remove_defaults_and_unknown_fields() {
        let p: RemoveParams = serde_json::from_value(json!({"torrent": "abcdef"})).unwrap();
        assert!(!p.delete_data);
        assert!(
            serde_json::from_value::<TorrentParams>(json!({"torrent": "abcdef", "x": 1})).is_err()
        );
    }

    #[test]
    fn add_params_wire_forms() {
        for (value, source) in [
            (
                json!({"path": "/t/a.torrent"}),
                TorrentSource::Path("/t/a.torrent".into()),
            ),
            (
                json!({"metainfo": "ZDRlZQ=="}),
                TorrentSource::Metainfo("ZDRlZQ==".into()),
            ),
            (
                json!({"magnet": "magnet:?xt=urn:btih:aa"}),
                TorrentSource::Magnet("magnet:?xt=urn:btih:aa".into()),
            ),
        ] {
            let p: AddParams = serde_json::from_value(value).unwrap();
            assert_eq!(p.source, source);
            assert!(!p.paused);
            assert_eq!(p.save_dir, None);
            round_trip(&p);
        }
        let p: AddParams =
            serde_json::from_value(json!({"magnet": "m", "save_dir": "/d", "paused": true}))
                .unwrap();
        assert_eq!(p.save_dir.as_deref(), Some("/d"));
        assert!(p.paused);
    }

    #[test]
    fn metainfo_base64() {
        let TorrentSource::Metainfo(text) = TorrentSource::from_metainfo_bytes(b"d4:infodee")
        else {
            panic!()
        };
        assert_eq!(decode_metainfo_base64(&text).unwrap(), b"d4:infodee");
        assert_eq!(decode_metainfo_base64("ZDRl\nZQ").unwrap(), b"d4ee");
        assert!(decode_metainfo_base64("!!!").is_err());
    }

    #[test]
    fn absurd_limits_are_refused() {
        let ok = SetLimitsParams {
            download: Some(0),
            upload: Some(MIN_RATE_LIMIT),
        };
        assert_eq!(ok.check(), Ok(()));
        let tiny = SetLimitsParams {
            download: Some(1),
            upload: None,
        };
        assert_eq!(
            tiny.check().unwrap_err(),
            "download limit 1 B/s is below the smallest limit (1.0 KiB/s to 1.0 TiB/s); \
             0 means unlimited"
        );
        let huge = SetLimitsParams {
            download: None,
            upload: Some(u64::MAX),
        };
        assert!(huge.check().unwrap_err().starts_with("upload limit"));
    }

    #[test]
    fn set_limits_semantics() {
        let cur = Limits {
            download: Some(10),
            upload: Some(20),
        };
        assert_eq!(SetLimitsParams::default().apply_to(cur), cur);
        let p = SetLimitsParams {
            download: Some(0),
            upload: Some(5),
        };
        assert_eq!(
            p.apply_to(cur),
            Limits {
                download: None,
                upload: Some(5)
            }
        );
        let p: SetLimitsParams = serde_json::from_value(json!({"upload": 0})).unwrap();
        assert_eq!(
            p.apply_to(cur),
            Limits {
                download: Some(10),
                upload: None
            }
        );
    }

    #[test]
    fn state_changing_methods() {
        assert!(names::changes_state(names::TORRENT_ADD));
        assert!(names::changes_state(names::DAEMON_SHUTDOWN));
        assert!(!names::changes_state(names::TORRENT_LIST));
        assert!(!names::changes_state(names::EVENTS_SUBSCRIBE));
        assert!(!names::changes_state("no.such"));
    }
}
