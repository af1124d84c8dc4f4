//! swarm-control
