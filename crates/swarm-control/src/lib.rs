//! # swarm-control
//!
//! The control protocol between `swarmd` and its clients (`swarmctl`, scripts, tests):
//! newline-delimited JSON-RPC 2.0 over a Unix socket. This crate holds the request and result
//! types shared by both sides, the socket-path rules both sides follow, and a small blocking
//! client. It does not hold the server (that lives in `swarmd`) and knows nothing of the engine's
//! actors.
//!
//! - [`rpc`]: JSON-RPC 2.0 framing and error codes.
//! - [`methods`]: method names, params and results.
//! - the views of the daemon's state that results and events carry are `swarm-model`'s
//!   (re-exported here): the engine builds them, this crate carries them, swarmctl shows them.
//! - [`paths`]: where the socket is (user mode / system mode).
//! - [`nss`]: passwd/group lookups (the socket's group, for "permission denied").
//! - [`client`]: the blocking client and the event-stream iterator.
//! - [`human`]: sizes and rates for people (`4M`, `1.2 MiB/s`).
//!
//! CONTRACT: the types of `swarm-model` and [`methods`] are the wire; add fields freely (with
//! `#[serde(default)]` where a client may see an older daemon), do not rename.

pub mod alt_speed;
pub mod client;
pub mod human;
pub mod methods;
pub mod nss;
pub mod paths;
pub mod rpc;

pub use alt_speed::SetAltSpeedParams;
pub use client::{Client, ClientError, EventStream, StreamItem};
pub use methods::*;
pub use rpc::{codes, Id, Notification, Request, Response, RpcError};
pub use swarm_model::{
    normalize_labels, AltSchedule, AltSpeed, BandwidthPriority, BlocklistFile, BlocklistProblem,
    BlocklistStatus, EngineCounters, Event, FileInfo, FilePriority, InfoHash, Limit, Limits,
    PeerInfo, QueueConfig, QueueMove, RestartCounts, SeedAction, SeedLimits, SeedingConfig,
    SessionStats, TorrentDetail, TorrentLimits, TorrentState, TorrentSummary, TrackerInfo,
};
