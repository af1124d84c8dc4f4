//! swarm-dht
pub mod krpc;
pub mod node_id;
pub mod routing;
pub mod peer_store;
pub mod rate_limit;
pub mod token;
pub mod lookup;
pub mod persist;
pub mod responder;
