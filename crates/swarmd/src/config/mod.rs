//! swarmd's configuration: the TOML schema, its built-in defaults, loading and validation.
//!
//! `Config::default()` is the daemon's behaviour with no file at all, and `config/swarmd.toml`
//! spells out exactly those values (a test keeps the two equal). Paths left unset here are filled
//! in by [`crate::paths`] from the mode (user: XDG directories; system: `/var/lib/swarmd` …).
//! `~` in a path key is the daemon user's home ([`home`]). Unknown keys and bad values are errors
//! that name the key and the line ([`load`]).
//! The daemon reads its config file; it never writes it.

mod home;
mod load;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use swarm_control::Limits;

pub use load::{check_log_filter, load, load_file, parse, ConfigError};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonSection,
    pub network: NetworkSection,
    pub limits: LimitsSection,
    pub alt_speed: AltSpeedSection,
    pub watch: WatchSection,
    pub control: ControlSection,
    pub dht: DhtSection,
    pub trackers: TrackersSection,
    pub rpc: RpcSection,
    pub queue: QueueSection,
    pub seeding: SeedingSection,
    pub blocklist: BlocklistSection,
    /// `[labels.NAME]`: settings of the torrents that carry the label `NAME`.
    pub labels: std::collections::BTreeMap<String, LabelSection>,
}

/// `[labels.NAME]`: what a label brings to a torrent added with it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelSection {
    /// Where a torrent added with this label is saved when the add names no directory (the
    /// first of its labels that has one wins). Unset: `[daemon] download_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_dir: Option<PathBuf>,
}

impl Config {
    /// The save directory the labels of a new torrent ask for: the first label that has one.
    pub fn label_save_dir(&self, labels: &[String]) -> Option<PathBuf> {
        labels
            .iter()
            .find_map(|l| self.labels.get(l)?.save_dir.clone())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSection {
    /// Resume state and the daemon's own bookkeeping. Unset: by mode (see `paths`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Where torrents are saved unless `torrent.add` says otherwise. Unset: by mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_dir: Option<PathBuf>,
    /// Where new downloads are written until complete, then moved to their save directory
    /// (transmission's incomplete-dir). Unset: straight into the save directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete_dir: Option<PathBuf>,
    /// A tracing filter: `info`, `debug`, `swarmd=debug,swarm_engine=info` … `RUST_LOG` wins.
    pub log_level: String,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            state_dir: None,
            download_dir: None,
            incomplete_dir: None,
            log_level: "info".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// TCP address for incoming peer connections.
    pub listen: SocketAddr,
    pub max_peers_per_torrent: u32,
    pub max_peers_global: u32,
    /// Outgoing connects in progress at once, over all torrents.
    pub max_half_open: u32,
    pub connect_timeout_secs: NonZeroU64,
    /// Time a new connection has to complete the BitTorrent handshake.
    pub handshake_timeout_secs: NonZeroU64,
    /// MSE/PE policy: require, prefer, allow or disable.
    pub encryption: swarm_wire::mse::Policy,
    /// Transports for outgoing connections, in order of preference; uTP (on the UDP port of
    /// `listen`, shared with the DHT) is accepted and made only when listed.
    pub transports: Vec<TransportName>,
}

/// A peer transport in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportName {
    Tcp,
    Utp,
}

impl Default for NetworkSection {
    fn default() -> Self {
        NetworkSection {
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            max_peers_per_torrent: 50,
            max_peers_global: 500,
            max_half_open: 32,
            connect_timeout_secs: nonzero(10),
            handshake_timeout_secs: nonzero(20),
            encryption: swarm_wire::mse::Policy::Prefer,
            transports: vec![TransportName::Tcp, TransportName::Utp],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// KiB/s over all torrents; 0 = unlimited.
    pub download_kib_s: u64,
    /// KiB/s over all torrents; 0 = unlimited.
    pub upload_kib_s: u64,
    pub upload_slots_per_torrent: u32,
    pub upload_slots_global: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            download_kib_s: 0,
            upload_kib_s: 0,
            upload_slots_per_torrent: 4,
            upload_slots_global: 20,
        }
    }
}

impl LimitsSection {
    /// The rate limits in the control protocol's terms (bytes/s, `None` = unlimited).
    pub fn rate_limits(&self) -> Limits {
        let bytes = |kib: u64| (kib > 0).then(|| kib.saturating_mul(1024));
        Limits {
            download: bytes(self.download_kib_s),
            upload: bytes(self.upload_kib_s),
        }
    }
}

/// `[alt_speed]`: the alternative speed limits ("turtle mode", transmission's `alt-speed-*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AltSpeedSection {
    /// KiB/s over all torrents while the alternative limits are on; 0 = unlimited.
    pub download_kib_s: u64,
    pub upload_kib_s: u64,
    /// On at start-up.
    pub enabled: bool,
    /// Turn them on and off by the clock.
    pub schedule: bool,
    /// `HH:MM`, local time; an `end` before `begin` runs over midnight.
    pub begin: String,
    pub end: String,
    /// `mon` … `sun`, `weekdays`, `weekend`, `all`.
    pub days: Vec<String>,
}

impl Default for AltSpeedSection {
    /// Transmission's defaults: 50 kB/s each way, 09:00 to 17:00 every day, all off.
    fn default() -> Self {
        AltSpeedSection {
            download_kib_s: 50,
            upload_kib_s: 50,
            enabled: false,
            schedule: false,
            begin: "09:00".into(),
            end: "17:00".into(),
            days: vec!["all".into()],
        }
    }
}

impl AltSpeedSection {
    /// The engine's settings. The times and days were checked when the file was read; one that
    /// does not parse (never expected) keeps transmission's default.
    pub fn alt_speed(&self) -> swarm_control::AltSpeed {
        use swarm_control::alt_speed::{parse_clock, parse_days};
        let bytes = |kib: u64| (kib > 0).then(|| kib.saturating_mul(1024));
        let d = swarm_control::AltSchedule::default();
        swarm_control::AltSpeed {
            download: bytes(self.download_kib_s),
            upload: bytes(self.upload_kib_s),
            enabled: self.enabled,
            schedule: swarm_control::AltSchedule {
                enabled: self.schedule,
                days: parse_days(&self.days).unwrap_or(d.days),
                begin_minute: parse_clock(&self.begin).unwrap_or(d.begin_minute),
                end_minute: parse_clock(&self.end).unwrap_or(d.end_minute),
            },
        }
    }
}

/// What the watch directory does with a file once its torrent is added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAdded {
    /// Rename to `<name>.added`.
    #[default]
    Rename,
    Delete,
    /// Leave it; the daemon remembers it (in the state directory) so it is not added again.
    Keep,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSection {
    pub enabled: bool,
    /// Unset: `<state_dir>/watch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    pub on_added: OnAdded,
    /// Full rescan period; inotify makes most pickups immediate, this catches the rest
    /// (network file systems, inotify queue overflows).
    pub rescan_secs: NonZeroU64,
    /// Add the torrents found here paused.
    pub paused: bool,
}

impl Default for WatchSection {
    fn default() -> Self {
        WatchSection {
            enabled: true,
            dir: None,
            on_added: OnAdded::Rename,
            rescan_secs: nonzero(10),
            paused: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    /// Unset: `$XDG_RUNTIME_DIR/swarmd/swarmd.sock` (user) or `/run/swarmd/swarmd.sock` (system).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Permissions of the socket file.
    pub mode: FileMode,
    /// Group given to the socket file (name or gid); unset: the daemon's group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Users (names or uids) besides the daemon's own and root that may change state.
    pub allow: Vec<String>,
    /// Clients connected at once; more are turned away with a `busy` error. The daemon's own
    /// user and root have a few more slots (`control::OWNER_RESERVE`).
    pub max_clients: u32,
    /// Longest request line, in bytes.
    pub max_request_bytes: usize,
    /// A connection with no subscription that sends no request for this long is closed.
    pub idle_timeout_secs: NonZeroU64,
}

impl Default for ControlSection {
    fn default() -> Self {
        ControlSection {
            socket: None,
            mode: FileMode(0o660),
            group: None,
            allow: Vec::new(),
            max_clients: 64,
            max_request_bytes: swarm_control::rpc::MAX_REQUEST_LINE,
            idle_timeout_secs: nonzero(60),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DhtSection {
    pub enabled: bool,
    /// UDP port; unset: the port of `network.listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `host:port` of well-known nodes to join the DHT through.
    pub bootstrap: Vec<String>,
}

impl Default for DhtSection {
    fn default() -> Self {
        DhtSection {
            enabled: true,
            port: None,
            bootstrap: [
                "router.bittorrent.com:6881",
                "dht.transmissionbt.com:6881",
                "router.utorrent.com:6881",
                "dht.libtorrent.org:25401",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackersSection {
    /// One HTTP or UDP announce, start to answer.
    pub announce_timeout_secs: NonZeroU64,
    /// How long shutdown waits for the `stopped` announces.
    pub stopped_timeout_secs: u64,
    /// Peers asked for per announce.
    pub numwant: u32,
    /// Never announce more often than this, whatever a tracker's `min interval` says.
    pub min_interval_secs: u64,
}

impl Default for TrackersSection {
    fn default() -> Self {
        TrackersSection {
            announce_timeout_secs: nonzero(30),
            stopped_timeout_secs: 5,
            numwant: 50,
            min_interval_secs: 60,
        }
    }
}

/// How many torrents run at once (`docs/operations.md`, "Queueing"); 0 is no limit. The
/// defaults are transmission's: a download queue of 5, no seed queue, stalled after 30 minutes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSection {
    pub max_active_downloads: u32,
    pub max_active_seeds: u32,
    /// Downloads and seeds together.
    pub max_active_total: u32,
    /// A download without payload for this long leaves its slot to the next one (0: never).
    pub stalled_minutes: u32,
    /// Torrents hashing their data at once; the others wait in `checking_queued`. At least 1;
    /// read at start.
    pub max_active_checks: u32,
}

impl Default for QueueSection {
    fn default() -> Self {
        QueueSection {
            max_active_downloads: 5,
            max_active_seeds: 0,
            max_active_checks: 1,
            max_active_total: 0,
            stalled_minutes: 30,
        }
    }
}

impl QueueSection {
    pub fn queue_config(&self) -> swarm_control::QueueConfig {
        let some = |n: u32| (n > 0).then_some(n);
        swarm_control::QueueConfig {
            max_active_downloads: some(self.max_active_downloads),
            max_active_seeds: some(self.max_active_seeds),
            max_active_total: some(self.max_active_total),
            stalled_minutes: some(self.stalled_minutes),
        }
    }
}

/// The session's seeding limits, which torrents on `global` follow; a key left out is no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedingSection {
    /// Uploaded / downloaded (or / size, for a torrent that downloaded nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_time_minutes: Option<u64>,
    /// Minutes without payload moving while seeding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_minutes: Option<u64>,
    /// `pause`, `remove` or `remove-with-data`.
    pub action: swarm_control::SeedAction,
}

impl SeedingSection {
    pub fn seeding_config(&self) -> swarm_control::SeedingConfig {
        swarm_control::SeedingConfig {
            ratio_limit: self.ratio_limit,
            seed_time_minutes: self.seed_time_minutes,
            idle_minutes: self.idle_minutes,
            action: self.action,
        }
    }
}

/// `[blocklist]`: peer addresses never connected to or accepted (docs/operations.md,
/// "IP blocklist").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlocklistSection {
    pub enabled: bool,
    /// Files (eMule DAT, PeerGuardian P2P, CIDR lists; plain or gzip) and directories (every
    /// file in them), absolute.
    pub paths: Vec<PathBuf>,
    /// Fetched by `swarmctl blocklist update` (and the HTTP RPC's `blocklist-update`) into
    /// `STATE_DIR/blocklist-url`, which is loaded with `paths` from then on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl BlocklistSection {
    /// Where the engine reads the rules from.
    pub fn sources(&self, state_dir: &std::path::Path) -> swarm_model::BlocklistSources {
        swarm_model::BlocklistSources {
            enabled: self.enabled,
            paths: self.paths.clone(),
            url: self.url.clone(),
            url_file: self.url.as_ref().map(|_| state_dir.join("blocklist-url")),
        }
    }
}

/// The transmission-compatible HTTP RPC (`docs/http-rpc.md`): off unless enabled, because it is a
/// network face that the control socket's file permissions do not guard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    pub enabled: bool,
    /// TCP address of `/transmission/rpc`.
    pub listen: SocketAddr,
    /// Also serve the RPC on this Unix socket (for a reverse proxy on the same machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_socket: Option<PathBuf>,
    /// Basic-auth user name; used only together with `password_hash`.
    pub username: String,
    /// `swarmd rpc-password` prints it: `sha256:<salt>:<digest>`. Unset: no authentication (a
    /// `Basic` header is then ignored, as transmission does).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Host names (`*` wildcards) accepted in the `Host:` header besides IP addresses and
    /// `localhost`: the defence against DNS rebinding.
    pub host_whitelist: Vec<String>,
    /// Client addresses allowed to connect: IPs, CIDR blocks (`192.168.0.0/16`) or `*`.
    pub ip_whitelist: Vec<String>,
    /// Largest request body; larger ones get 413 before they are read.
    pub max_body_bytes: usize,
    /// The directory of transmission's web client, served at `/transmission/web/`. Unset: the
    /// first of Debian's directories that exists (`http_rpc::web::DEFAULT_ROOTS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_root: Option<PathBuf>,
    /// `/metrics` has per-torrent series for at most this many torrents (the busiest).
    pub metrics_torrents: usize,
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9091)),
            unix_socket: None,
            username: String::new(),
            password_hash: None,
            host_whitelist: Vec::new(),
            ip_whitelist: vec!["127.0.0.1".into(), "::1".into()],
            max_body_bytes: 10 << 20,
            web_root: None,
            metrics_torrents: 50,
        }
    }
}

/// Unix permission bits, written as an octal string (`"0660"`) or a TOML octal integer (`0o660`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl Serialize for FileMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Str(String),
            Int(u32),
        }
        let bits = match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected an octal mode such as \"0660\""))?
        {
            Raw::Int(n) => n,
            Raw::Str(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| {
                serde::de::Error::custom(format!("{s:?} is not an octal mode such as \"0660\""))
            })?,
        };
        if bits > 0o777 {
            return Err(serde::de::Error::custom(format!(
                "mode {bits:o} has bits beyond 0777"
            )));
        }
        Ok(FileMode(bits))
    }
}

fn nonzero(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN)
}
