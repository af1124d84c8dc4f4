//! The engine's one error type: what an engine call can fail with, as the daemon's faces (the
//! control socket, the HTTP RPC, the watch directory) receive it. Torrents are named by
//! [`InfoHash`]; files by their path. Each face turns it into its wire's form in one place
//! (the control protocol: `swarm-control`'s `RpcError::from`; the HTTP RPC: a `result` text).

use std::net::SocketAddr;
use std::path::PathBuf;

use swarm_wire::InfoHash;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No torrent (or magnet link still fetching its metadata) with this info-hash.
    #[error("no torrent {0}")]
    UnknownTorrent(InfoHash),
    #[error("torrent {0} is already present")]
    Duplicate(InfoHash),
    /// A request the engine cannot carry out as asked (a file index out of range, a magnet link
    /// asked for its files …); the message is shown to the user as is.
    #[error("{0}")]
    Invalid(String),
    /// A file the engine had to make, write or delete: the save directory, a state file
    /// (`.torrent`, `.magnet`, resume record), a torrent's data. `doing` says which, as the
    /// start of the message ("cannot write to the save directory", "saving", "deleting").
    #[error("{doing} {}: {reason}", path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The peer port cannot be bound (at start only).
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error("swarmd is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// The request cannot be carried out as it was made, and making it again will not help:
    /// the control protocol answers "invalid params", the watch directory marks the file
    /// instead of retrying it.
    pub fn is_refusal(&self) -> bool {
        matches!(self, EngineError::Invalid(_) | EngineError::Io { .. })
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
