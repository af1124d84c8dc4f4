//! What a torrent shares read-only with its peer actors (behind an `Arc`): identities, the storage
//! handle for uploads, the disk pool, and the per-peer bounds from the configuration.

use std::sync::Arc;
use std::time::Duration;

use swarm_wire::InfoHash;

use crate::disk::DiskPool;
use crate::services::dht::DhtSlot;
use crate::storage::Storage;

pub struct TorrentShared {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub storage: Arc<Storage>,
    pub disk: DiskPool,
    pub listen_port: u16,
    /// Largest frame accepted from a peer (a piece message of a 16 KiB block is ~16 KiB).
    pub max_frame: u32,
    /// Requests a peer may queue with us (advertised as `reqq`); more is a disconnect.
    pub max_upload_queue: usize,
    /// Bytes waiting on the socket before we stop serving uploads to that peer for a moment.
    pub max_write_queue_bytes: usize,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// The DHT node, if any (never for private torrents: see `Torrent::dht`).
    pub dht: DhtSlot,
    /// The raw info dictionary, served over `ut_metadata`.
    pub info_bytes: bytes::Bytes,
    /// Whether a rate limit applies to this torrent (one atomic load per check).
    pub gate: crate::services::rate_limiter::QuotaGate,
    pub limiter: crate::services::ServiceRef<crate::services::rate_limiter::RateLimiter>,
}
