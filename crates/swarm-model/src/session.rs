//! The whole session as the engine reports it: rate limits, totals, restart counts.

use serde::{Deserialize, Serialize};

/// Rate limits in bytes per second; `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(default)]
    pub download: Option<u64>,
    #[serde(default)]
    pub upload: Option<u64>,
}

/// The alternative speed limits ("turtle mode", transmission's `alt-speed-*`): rates that
/// replace the normal global limits while `enabled`, turned on and off by hand or by a weekly
/// schedule. Rates in bytes per second, `None` = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltSpeed {
    #[serde(default)]
    pub download: Option<u64>,
    #[serde(default)]
    pub upload: Option<u64>,
    /// In force now. The schedule turns it on when its window begins and off when it ends; a
    /// change by hand holds until the schedule's next edge.
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub schedule: AltSchedule,
}

/// When the alternative limits turn on by themselves: from `begin` to `end` (minutes after
/// local midnight; an `end` before `begin` runs over midnight) on the days of `days`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AltSchedule {
    #[serde(default)]
    pub enabled: bool,
    /// Days as transmission's `alt-speed-time-day`: Sunday 1, Monday 2, … Saturday 64
    /// (weekdays 62, weekend 65, every day 127). A window over midnight belongs to the day it
    /// begins on.
    pub days: u8,
    pub begin_minute: u16,
    pub end_minute: u16,
}

impl Default for AltSchedule {
    /// Transmission's defaults: every day, 09:00 to 17:00, off.
    fn default() -> Self {
        AltSchedule {
            enabled: false,
            days: ALL_DAYS,
            begin_minute: 9 * 60,
            end_minute: 17 * 60,
        }
    }
}

/// Every day, as a mask of [`AltSchedule::days`].
pub const ALL_DAYS: u8 = 0x7f;
/// Minutes in a day: schedule times are below it.
pub const MINUTES_PER_DAY: u16 = 24 * 60;

/// What a torrent does when it reaches a seeding limit (`[seeding] action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeedAction {
    #[default]
    Pause,
    Remove,
    RemoveWithData,
}

/// The session's seeding limits (`[seeding]`), which torrents on `global` follow; `None` is no
/// limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedingConfig {
    #[serde(default)]
    pub ratio_limit: Option<f64>,
    #[serde(default)]
    pub seed_time_minutes: Option<u64>,
    #[serde(default)]
    pub idle_minutes: Option<u64>,
    #[serde(default)]
    pub action: SeedAction,
}

/// The queue (`[queue]`): how many torrents run at once; `None` is no limit. Force-started
/// torrents and stalled downloads do not take a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    #[serde(default)]
    pub max_active_downloads: Option<u32>,
    #[serde(default)]
    pub max_active_seeds: Option<u32>,
    #[serde(default)]
    pub max_active_total: Option<u32>,
    /// A download that received no payload for this many minutes is stalled: it keeps
    /// running but leaves its slot to the next one. `None`: never stalled.
    #[serde(default)]
    pub stalled_minutes: Option<u32>,
}

impl Default for QueueConfig {
    /// Transmission's defaults: a download queue of 5, no seed queue, stalled after 30 minutes.
    fn default() -> Self {
        QueueConfig {
            max_active_downloads: Some(5),
            max_active_seeds: None,
            max_active_total: None,
            stalled_minutes: Some(30),
        }
    }
}

/// Where to move a torrent in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueMove {
    Top,
    Up,
    Down,
    Bottom,
    /// To this position (0 first; past the end is the end).
    To(u32),
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

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartCounts {
    pub peers: u64,
    pub torrents: u64,
    pub services: u64,
}

/// Counters the engine keeps for its own work, beside [`SessionStats`]: what the HTTP face's
/// Prometheus metrics read (`docs/http-rpc.md`), each answered without touching a peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineCounters {
    /// Live peer connections that dialled us, and that we dialled.
    pub peers_incoming: u32,
    pub peers_outgoing: u32,
    /// Of those, the ones over uTP.
    #[serde(default)]
    pub peers_utp_incoming: u32,
    #[serde(default)]
    pub peers_utp_outgoing: u32,
    /// Disk jobs (piece writes, block reads, checks) waiting for a disk thread.
    pub disk_queue: u64,
    /// Disk jobs that panicked (each failed alone; the pool lives on).
    pub disk_jobs_panicked: u64,
    /// Trackers, over all torrents, whose last announce failed.
    pub trackers_failing: u32,
    /// Announces that failed since the announcer (last) started.
    pub announce_failures: u64,
    /// Peer addresses the IP blocklist refused since the start, and its ranges in force.
    #[serde(default)]
    pub peers_blocked: u64,
    #[serde(default)]
    pub blocklist_rules: u64,
}
