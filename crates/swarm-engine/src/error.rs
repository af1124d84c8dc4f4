//! The engine's errors, as the daemon and the control socket show them.

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("torrent {0} is already added")]
    Duplicate(String),
    #[error("no torrent {0}")]
    NotFound(String),
    #[error("invalid torrent: {0}")]
    InvalidTorrent(String),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}
