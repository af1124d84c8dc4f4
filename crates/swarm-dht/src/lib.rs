//! # swarm-dht
//!
//! A mainline DHT node (BEP 5) for swarmd: it finds peers for an info-hash without a tracker
//! and tells the DHT that we have a torrent.
//!
//! What it is: one UDP socket (its own, or its share of one: [`Dht::start_shared`]) and one
//! tokio task ([`Dht::start`]) that answers `ping`,
//! `find_node`, `get_peers` and `announce_peer`, keeps a k-bucket routing table, runs
//! iterative lookups (alpha = 3, k = 8), announces to the closest nodes, re-announces
//! registered torrents, stores other peers' announces with expiry and bounds, rate-limits
//! queries per source, supports read-only mode (BEP 43) and IPv6 `nodes6` (BEP 32) when bound
//! to an IPv6 address, and saves its id and table to a JSON state file. A
//! [`DhtHandle`] is the whole API; it is cheap to clone.
//!
//! What it is not: not an actor and not supervised here (the engine wraps the handle in its
//! Dht service and restarts the node if it stops); no BEP 42 node-id restrictions, no BEP 44
//! storage, no BEP 51 sampling; one address family per node (run two nodes for dual stack).
//!
//! Layout: pure parts with their own tests — [`krpc`] (the codec), [`node_id`], [`routing`],
//! [`token`], [`peer_store`], [`rate_limit`], [`lookup`], [`responder`] — and the two files
//! that do I/O: `node` (the socket task) and [`persist`] (the state file). `handle` is the
//! API that starts the node task and sends it the `command`s it answers.
//!
//! Using it from an engine (one node per process, shared by every torrent):
//!
//! ```no_run
//! # async fn engine() -> Result<(), Box<dyn std::error::Error>> {
//! use swarm_dht::{Dht, DhtConfig};
//! use swarm_wire::InfoHash;
//!
//! let dht = Dht::start(DhtConfig {
//!     state_file: Some("/var/lib/swarmd/dht.json".into()),
//!     ..DhtConfig::default()
//! })
//! .await?;
//! let info_hash = InfoHash([0; 20]);
//! // A torrent starts: keep it announced (now, then every reannounce interval) ...
//! dht.register(info_hash, Some(6881)).await?;
//! // ... and ask for peers whenever it wants more (or stream them as they come).
//! let peers = dht.get_peers(info_hash).await?;
//! let mut stream = dht.get_peers_stream(info_hash).await?;
//! while let Some(peer) = stream.recv().await { /* dial peer */ }
//! // A peer sent a PORT message: a DHT node worth trying.
//! dht.add_node("203.0.113.7:6881".parse()?)?;
//! // The torrent stops; the daemon stops.
//! dht.unregister(info_hash).await?;
//! dht.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Untrusted input: every datagram is decoded with caps on size, nesting and counts; a bad
//! one is dropped with a `debug!` line, never a panic, and answers never exceed `k` nodes or
//! `max_values_per_response` peers.

mod command;
mod config;
mod handle;
pub mod krpc;
pub mod lookup;
mod node;
pub mod node_id;
pub mod peer_store;
pub mod persist;
pub mod rate_limit;
pub mod responder;
pub mod routing;
mod socket;
pub mod token;

pub use command::{AnnounceOutcome, DhtError, DhtStats};
pub use config::{DhtConfig, DEFAULT_BOOTSTRAP};
pub use handle::{Dht, DhtHandle};
pub use lookup::LookupParams;
pub use node_id::{NodeId, NodeInfo};
pub use peer_store::PeerStoreLimits;
pub use rate_limit::RateLimit;
pub use routing::{NodeStatus, RoutingSnapshot};
pub use socket::SharedUdp;
