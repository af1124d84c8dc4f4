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
