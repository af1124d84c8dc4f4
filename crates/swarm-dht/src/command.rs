//! What a [`DhtHandle`](crate::DhtHandle) and the node task say to each other: the
//! [`Command`]s the handle queues, and the answers and errors they come back with. Its own file
//! so that the sender (`handle.rs`) and the receiver (`node.rs`) both depend on it and not on
//! each other: the handle only starts the node, the node never sees the handle.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;
use swarm_wire::InfoHash;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use crate::node_id::{NodeId, NodeInfo};
use crate::persist;
use crate::routing::RoutingSnapshot;

#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    #[error("the DHT node has stopped")]
    Stopped,
    #[error("the DHT node's command queue is full")]
    Busy,
    #[error("no path given and no DHT state file configured")]
    NoStateFile,
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
}

/// What an announce achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceOutcome {
    /// Peers the get_peers part of the lookup found on the way.
    pub peers: Vec<SocketAddr>,
    /// Nodes that acknowledged our announce_peer (among the closest that gave us a token).
    pub announced_to: usize,
}

/// Counters and sizes, for the control socket and for tests.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DhtStats {
    pub node_id: String,
    pub local_addr: Option<SocketAddr>,
    /// The first bootstrap lookup finished with at least one node in the table.
    pub bootstrapped: bool,
    pub nodes: usize,
    pub good_nodes: usize,
    pub questionable_nodes: usize,
    pub buckets: usize,
    pub replacement_nodes: usize,
    pub peer_store_info_hashes: usize,
    pub peer_store_peers: usize,
    pub registered: usize,
    pub active_lookups: usize,
    pub pending_queries: usize,
    pub queries_in: u64,
    pub queries_out: u64,
    pub responses_in: u64,
    pub errors_in: u64,
    pub timeouts: u64,
    /// Incoming queries dropped by the per-source rate limit.
    pub throttled: u64,
    pub malformed: u64,
    /// Responses matching no query we sent (late, spoofed, or from the wrong address).
    pub unsolicited: u64,
}

pub(crate) enum Command {
    GetPeers {
        info_hash: InfoHash,
        stream: Option<mpsc::Sender<SocketAddr>>,
        done: Option<oneshot::Sender<Vec<SocketAddr>>>,
        permit: OwnedSemaphorePermit,
    },
    Announce {
        info_hash: InfoHash,
        port: Option<u16>,
        done: oneshot::Sender<AnnounceOutcome>,
        permit: OwnedSemaphorePermit,
    },
    FindNode {
        target: NodeId,
        done: oneshot::Sender<Vec<NodeInfo>>,
        permit: OwnedSemaphorePermit,
    },
    AddNode(SocketAddr),
    /// Resolved bootstrap addresses (from the resolver task) or an explicit re-bootstrap.
    Bootstrap(Option<Vec<SocketAddr>>),
    Register {
        info_hash: InfoHash,
        port: Option<u16>,
    },
    Unregister(InfoHash),
    Stats(oneshot::Sender<DhtStats>),
    Snapshot(oneshot::Sender<RoutingSnapshot>),
    Save {
        path: Option<PathBuf>,
        done: oneshot::Sender<Result<(), DhtError>>,
    },
    Shutdown(oneshot::Sender<()>),
}
