//! swarm-engine
