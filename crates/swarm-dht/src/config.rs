//! What a DHT node is told at start. Every field has a default that suits a daemon on the
//! public DHT; tests shorten the timers and pass loopback bootstrap lists.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::lookup::LookupParams;
use crate::node_id::NodeId;
use crate::peer_store::PeerStoreLimits;
use crate::rate_limit::RateLimit;

/// Well-known public bootstrap routers, used when the config names none.
pub const DEFAULT_BOOTSTRAP: [&str; 4] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
    "dht.libtorrent.org:25401",
];

#[derive(Clone, Debug)]
pub struct DhtConfig {
    /// UDP address to bind. An IPv4 address gives a BEP 5 (`nodes`) node, an IPv6 one a
    /// BEP 32 (`nodes6`) node.
    pub bind: SocketAddr,
    /// Our id. `None`: the one in `state_file`, else a random one.
    pub node_id: Option<NodeId>,
    /// `host:port` bootstrap nodes, resolved in the background at start.
    pub bootstrap: Vec<String>,
    /// Where the node id and routing table are saved (on shutdown, on `save`, and every
    /// `autosave_interval`) and loaded from at start.
    pub state_file: Option<PathBuf>,
    /// BEP 43: mark our queries `ro=1`, answer no queries, so no one adds us to a table.
    pub read_only: bool,
    /// How long to wait for an answer to one query.
    pub query_timeout: Duration,
    /// Upper bound on one lookup, whatever the network does.
    pub lookup_timeout: Duration,
    pub lookup: LookupParams,
    pub peer_store: PeerStoreLimits,
    /// Most peers in one get_peers answer we send.
    pub max_values_per_response: usize,
    /// Incoming queries per source (IP; IP and port on loopback).
    pub rate_limit: RateLimit,
    /// Sources the rate limiter tracks at once.
    pub max_rate_limited_sources: usize,
    /// How often registered torrents are announced again.
    pub reannounce_interval: Duration,
    /// How often housekeeping runs (expiry, pings, bucket refresh, bootstrap retry).
    pub maintenance_interval: Duration,
    /// A bucket unchanged for this long is refreshed with a lookup (BEP 5: 15 min).
    pub bucket_refresh_after: Duration,
    pub autosave_interval: Duration,
    /// Outgoing queries awaiting an answer at once.
    pub max_pending_queries: usize,
    /// `get_peers` / `announce` / `find_node` lookups running at once for the handle's
    /// callers; more wait for a slot.
    pub max_concurrent_lookups: usize,
}

impl Default for DhtConfig {
    fn default() -> Self {
        DhtConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 6881)),
            node_id: None,
            bootstrap: DEFAULT_BOOTSTRAP.iter().map(|s| s.to_string()).collect(),
            state_file: None,
            read_only: false,
            query_timeout: Duration::from_secs(2),
            lookup_timeout: Duration::from_secs(30),
            lookup: LookupParams::default(),
            peer_store: PeerStoreLimits::default(),
            max_values_per_response: 50,
            rate_limit: RateLimit::default(),
            max_rate_limited_sources: 10_000,
            reannounce_interval: Duration::from_secs(15 * 60),
            maintenance_interval: Duration::from_secs(30),
            bucket_refresh_after: Duration::from_secs(15 * 60),
            autosave_interval: Duration::from_secs(10 * 60),
            max_pending_queries: 1024,
            max_concurrent_lookups: 32,
        }
    }
}
