//! swarm-dht
