//! # swarm-control
//!
//! The control protocol between `swarmd` and its clients (`swarmctl`, scripts, tests):
//! newline-delimited JSON-RPC 2.0 over a Unix socket. This crate holds the request and result
//! types shared by both sides and a small blocking client. It does not hold the server (that lives
//! in `swarmd`) and knows nothing of the engine's actors.
//!
//! CONTRACT: the types in [`types`] are produced by the engine and shown by swarmctl; add fields
//! freely (with `#[serde(default)]` where a client may see an older daemon), do not rename.

pub mod types;

pub use types::*;
