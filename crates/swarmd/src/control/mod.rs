//! The control server: a Unix socket speaking newline-delimited JSON-RPC 2.0
//! (`docs/control-protocol.md`), one task per connection, dispatching to the [`Engine`].
//!
//! - `socket.rs` owns the socket file (mode, group, stale files, removal).
//! - `connection.rs` owns one client: bounded line reading, ordered answers, the event stream.
//! - `dispatch.rs` turns one request into one response: validation, permissions, engine call;
//!   `request.rs` checks the envelope and decodes params, with errors in the protocol's words.
//! - `slots.rs` decides who gets a connection slot; `stop.rs` carries `daemon.shutdown` to the
//!   daemon (and the clients waiting for the stop).
//!
//! The server never blocks the engine: each client has its own task and its own bounded event
//! receiver, the number of clients is capped (`[control] max_clients`, plus a reserve for the
//! daemon's owner and root), and a connection idle for `[control] idle_timeout_secs` is closed.

mod connection;
pub(crate) mod dispatch;
mod request;
mod slots;
mod socket;
mod stop;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use swarm_control::rpc::{codes, Response, RpcError};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use connection::{ConnectionLimits, LineReader, ReadLine};
pub use dispatch::{AccessPolicy, StaticInfo};
pub use slots::OWNER_RESERVE;
pub use socket::{BoundSocket, SocketError};
pub use stop::StopRequest;

use crate::engine::Engine;
use crate::runtime_settings::SettingsFile;
use dispatch::{Caller, Dispatcher};
use slots::Slots;

#[derive(Clone, Debug)]
pub struct ControlOptions {
    pub socket_mode: u32,
    pub socket_gid: Option<u32>,
    pub max_clients: usize,
    pub limits: ConnectionLimits,
    pub access: AccessPolicy,
}

impl ControlOptions {
    pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
}

pub struct ControlServer<E> {
    socket: BoundSocket,
    dispatcher: Arc<Dispatcher<E>>,
    options: ControlOptions,
}

impl<E: Engine> ControlServer<E> {
    /// Binds the socket now, so that a second daemon fails before doing anything else.
    pub fn bind(
        path: &Path,
        options: ControlOptions,
        engine: E,
        info: StaticInfo,
        settings: Arc<SettingsFile>,
    ) -> Result<Self, SocketError> {
        let socket = socket::bind(path, options.socket_mode, options.socket_gid)?;
        let dispatcher = Arc::new(Dispatcher {
            engine,
            info,
            access: options.access.clone(),
            settings,
        });
        Ok(ControlServer {
            socket,
            dispatcher,
            options,
        })
    }

    pub fn path(&self) -> &Path {
        self.socket.path()
    }

    /// Accepts clients until `cancel`; then closes every connection and removes the socket file.
    /// `stop_daemon` is requested when a client calls `daemon.shutdown`.
    pub async fn run(
        self,
        cancel: CancellationToken,
        stop_daemon: StopRequest,
    ) -> std::io::Result<()> {
        let ControlServer {
            socket,
            dispatcher,
            options,
        } = self;
        socket.listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(socket.listener.try_clone()?)?;
        let slots = Slots::new(options.max_clients, OWNER_RESERVE);
        let mut connections = JoinSet::new();
        tracing::info!(socket = %socket.path().display(), "control socket ready");
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                a = listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a failing accept.
                    tracing::warn!(error = %e, "accepting a control connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let caller = Caller {
                uid: stream.peer_cred().ok().map(|c| c.uid()),
            };
            let privileged = caller
                .uid
                .is_some_and(|u| options.access.is_owner_or_root(u));
            let Some(permit) = slots.admit(privileged) else {
                connections.spawn(turn_away(stream, options.max_clients, caller));
                continue;
            };
            let (d, limits, c, s) = (
                dispatcher.clone(),
                options.limits,
                cancel.child_token(),
                stop_daemon.clone(),
            );
            connections.spawn(async move {
                connection::serve(stream, caller, d, limits, c, s).await;
                drop(permit);
            });
        }
        // Connections see the cancellation too; wait for them so none outlives the server.
        while connections.join_next().await.is_some() {}
        drop(listener);
        drop(socket);
        Ok(())
    }
}

async fn turn_away(mut stream: tokio::net::UnixStream, max: usize, caller: Caller) {
    tracing::warn!(max, uid = ?caller.uid, "too many control clients; turning one away");
    let e = RpcError::new(
        codes::BUSY,
        format!(
            "swarmd is serving {max} clients already; try again later (idle connections are \
             closed after [control] idle_timeout_secs)"
        ),
    );
    let mut line = serde_json::to_vec(&Response::err(None, e)).unwrap_or_default();
    line.push(b'\n');
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&line)).await;
}
