//! # swarm-engine
//!
//! The swarmd actor tree, etorrent's shape on actix:
//!
//! ```text
//! Root (root.rs) ─────────────── supervisor: config, registry, disk pool, torrent threads
//! ├── Listener (services/listener.rs)    accept, read handshake, route by info-hash
//! ├── Announcer (services/announcer.rs)  HTTP + UDP trackers, tiers, backoff
//! └── Torrent × N (torrent/actor.rs)     a shell over its cores; supervises its peers
//!     │                                  (torrent/supervisor.rs)
//!     └── PeerConn × M (torrent/peer.rs) one connection each (torrent/peer/transport.rs)
//! DiskPool (disk.rs): own threads — SHA-1 + positional write of whole pieces, reads for upload
//! ```
//!
//! Supervision comes from `swarm-supervisor`; formats from `swarm-wire`; tracker protocols from
//! `swarm-tracker`. Pure decision code (picker, bitfield, rates, the torrent's peer set, piece assembly, check and
//! resume state) has no I/O.
//! The public entry point is [`Session`]. What this crate is not: a configuration file reader
//! or a control server (those are the daemon's), nor a protocol codec library.

pub mod allowed_fast;
pub mod bitfield;
pub mod choke;
pub mod config;
pub mod disk;
pub mod error;
mod fault;
mod file_cache;
pub mod hash;
pub mod magnet;
pub mod metadata;
pub mod peer_id;
pub mod pex;
pub mod picker;
pub mod rate;
pub mod resume;
pub mod root;
pub mod services;
pub mod session;
pub mod storage;
pub mod token_bucket;
pub mod torrent;

pub use config::EngineConfig;
pub use error::EngineError;
pub use session::{AddOptions, Session};
pub use torrent::messages::PeerSource;

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
