//! swarm-dht
pub mod krpc;
pub mod node_id;
