//! swarm-tracker
