//! # swarm-engine
//!
//! The swarmd actor tree, etorrent's shape on actix:
//!
//! ```text
//! Root (root.rs) ─────────────── supervisor: config, registry, disk pool, torrent threads
//! │   services, permanent, declared in one table (root/services.rs):
//! ├── Listener (services/listener.rs)       accept, read handshake, route by info-hash
//! ├── Announcer (services/announcer.rs)     HTTP + UDP trackers, tiers, backoff
//! ├── Choker (services/choker.rs)           upload slots across all torrents (decision: choke.rs)
//! ├── RateLimiter (services/rate_limiter.rs) token buckets, quota in batches
//! ├── DhtService (services/dht.rs)          the DHT node, when enabled
//! │   per torrent, transient (root/torrents.rs, root/magnets.rs):
//! ├── MagnetFetch × K (magnet.rs)           a magnet link until its metadata is verified
//! └── Torrent × N (torrent/actor.rs)        a shell over its cores (peer set, piece assembly,
//!     │                                     check, resume state); supervises its peers
//!     │                                     (torrent/supervisor.rs)
//!     └── PeerConn × M (torrent/peer.rs)    one connection each (torrent/peer/transport.rs)
//! DiskPool (disk.rs): own threads, not an actor — SHA-1 + positional write of whole pieces,
//! reads for upload
//! ```
//!
//! Supervision comes from `swarm-supervisor` (its `Children`, held by the root and by each
//! torrent, which do work besides supervising); formats from `swarm-wire`; tracker protocols from
//! `swarm-tracker`; the DHT from `swarm-dht`. Services reach torrents only through `Recipient`s
//! of the messages they send, and torrents reach services through the names the root keeps
//! pointed at them (`services::ServiceRef`). Pure decision code (picker, choking, bitfield,
//! rates, token buckets, metadata assembly, the torrent's peer set, piece assembly, check and
//! resume state) has no I/O and no actix.
//! The public entry point is [`Session`]; what it answers with (summaries, events, the one
//! [`EngineError`]) is `swarm-model`'s, shared with the daemon and the control protocol, which
//! this crate does not know. What this crate is not: a configuration file reader or a control
//! server (those are the daemon's), nor a protocol codec library.

pub mod allowed_fast;
pub mod bitfield;
pub mod blocklist;
pub mod choke;
pub mod config;
pub mod disk;
mod fault;
pub mod fd_budget;
mod file_cache;
pub mod hash;
pub mod magnet;
pub mod metadata;
pub mod parts_file;
pub mod peer_id;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod relocation;
pub mod resume;
pub mod root;
pub mod services;
pub mod session;
pub mod storage;
pub mod token_bucket;
pub mod torrent;

pub use config::EngineConfig;
pub use session::{AddOptions, Session};
pub use swarm_model::{EngineError, EngineResult};
pub use torrent::messages::PeerSource;

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
