//! swarm-supervisor
