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
}
