//! The RPC's state and vocabulary, shared by every method module: the [`Rpc`] (the engine, the
//! torrent ids, the daemon's settings), a call's [`Args`], a [`Failure`] and its [`Code`], and the
//! readings of values as transmission makes them (speeds in kB, booleans as numbers).

use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::ids::Ids;
use crate::engine::EngineError;

/// A call's arguments.
pub type Args = Map<String, Value>;

/// A failed call: a sentence for the user (the legacy form's `result`) and what kind of failure
/// it is (the JSON-RPC form's error `code`, `jsonrpc.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

/// The kinds of failure transmission 4.1 tells apart (its `JsonRpc::Error` codes), and one of
/// swarmd's own for a feature it does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    ParseError,
    InvalidRequest,
    InvalidParams,
    MethodNotFound,
    Internal,
    PathNotAbsolute,
    System,
    FileIndexOutOfRange,
    Http,
    CorruptTorrent,
    /// A method or setting of a feature swarmd does not have (queues, ratio limits, labels …).
    Unsupported,
}

impl Failure {
    /// Bad arguments: the usual failure.
    pub fn new(m: impl Into<String>) -> Self {
        Failure::coded(Code::InvalidParams, m)
    }

    pub fn coded(code: Code, m: impl Into<String>) -> Self {
        Failure {
            code,
            message: m.into(),
        }
    }

    pub fn unsupported(m: impl Into<String>) -> Self {
        Failure::coded(Code::Unsupported, m)
    }
}

pub fn engine_failure(e: EngineError) -> Failure {
    let code = match e {
        EngineError::ShuttingDown
        | EngineError::Internal(_)
        | EngineError::Io { .. }
        | EngineError::Listen { .. } => Code::Internal,
        EngineError::UnknownTorrent(_) | EngineError::Duplicate(_) | EngineError::Invalid(_) => {
            Code::InvalidParams
        }
    };
    Failure::coded(code, e.to_string())
}

/// transmission-daemon's version as clients check it (Sonarr wants 2.x or later, rpc-version 14
/// at least), with swarmd's own after it.
pub fn version() -> String {
    format!("4.0.6 (swarmd {})", env!("CARGO_PKG_VERSION"))
}
/// The same for a client that speaks transmission 4.1's JSON-RPC form (`jsonrpc.rs`).
pub fn version_jsonrpc() -> String {
    format!("4.1.0 (swarmd {})", env!("CARGO_PKG_VERSION"))
}
pub const RPC_VERSION: i64 = 17;
pub const RPC_VERSION_MINIMUM: i64 = 14;
/// Transmission counts speeds in kB of 1000 bytes (`units.speed-bytes`).
pub(super) const SPEED_UNIT: u64 = 1000;

/// What `session-get` reports that the engine does not know: the daemon's configuration.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub download_dir: PathBuf,
    /// `[daemon] incomplete_dir`, if set.
    pub incomplete_dir: Option<PathBuf>,
    pub config_dir: PathBuf,
    pub peer_limit: u32,
    pub peer_limit_global: u32,
    pub dht_enabled: bool,
    /// `[network] transports` holds TCP / uTP.
    pub tcp_enabled: bool,
    pub utp_enabled: bool,
    /// Where settings changed at run time are kept (rate limits, alternative speeds), as the
    /// control socket keeps them; `None` keeps nothing.
    pub settings: Option<std::sync::Arc<crate::runtime_settings::SettingsFile>>,
}

pub struct Rpc<E> {
    pub(super) engine: E,
    pub(super) ids: Mutex<Ids>,
    pub(super) info: SessionInfo,
    pub(super) session_id: String,
    /// Cancelled by `session-close`: the daemon stops, as transmission-daemon does.
    pub(super) stop_daemon: crate::control::StopRequest,
}

pub(super) fn json_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A JSON value as transmission reads a boolean (`true` or a non-zero number).
pub(super) fn truthy(v: &Value) -> bool {
    v.as_bool()
        .unwrap_or_else(|| v.as_i64().is_some_and(|n| n != 0))
}
