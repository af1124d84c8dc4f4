//! The public face of a running node: [`Dht::start`] binds the socket (or
//! [`Dht::start_shared`] takes its share of one) and spawns the node
//! task; [`DhtHandle`] is a cheap, cloneable sender of commands to it.
//!
//! The task owns all DHT state; the handle holds none, so engine actors can keep a clone
//! each. Lookups started through the handle are bounded by a semaphore: a permit travels with
//! the command and is released when the node task finishes that lookup.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use swarm_wire::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::command::{AnnounceOutcome, Command, DhtError, DhtStats};
use crate::config::DhtConfig;
use crate::node::Node;
use crate::node_id::{NodeId, NodeInfo};
use crate::persist;
use crate::routing::RoutingSnapshot;
use crate::socket::{NodeSocket, SharedUdp};

/// Commands queued for the node task before callers wait.
const COMMAND_QUEUE: usize = 256;
/// Peers a streaming lookup buffers for a slow reader; more are dropped from the stream.
const PEER_STREAM_BUFFER: usize = 256;

/// Starts DHT nodes.
pub struct Dht;

impl Dht {
    /// Binds `config.bind`, loads `config.state_file` if any, spawns the node task on the
    /// current tokio runtime and starts bootstrapping in the background.
    pub async fn start(config: DhtConfig) -> io::Result<DhtHandle> {
        let socket = UdpSocket::bind(config.bind).await?;
        Self::start_on(config, NodeSocket::Own(socket))
    }

    /// Like [`Self::start`], on a socket shared with other protocols (`config.bind` is then
    /// unused): the node reads what the socket's owner puts in `shared.inbox`.
    pub fn start_shared(config: DhtConfig, shared: SharedUdp) -> io::Result<DhtHandle> {
        Self::start_on(config, NodeSocket::Shared(shared))
    }

    fn start_on(config: DhtConfig, socket: NodeSocket) -> io::Result<DhtHandle> {
        let saved = match &config.state_file {
            Some(path) => persist::load(path).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "ignoring unreadable DHT state; starting fresh");
                None
            }),
            None => None,
        };
        let node_id = config
            .node_id
            .or(saved.as_ref().map(|s| s.node_id))
            .unwrap_or_else(NodeId::random);
        let local_addr = socket.local_addr()?;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let seeds = saved.map(|s| s.nodes).unwrap_or_default();
        let lookups = Arc::new(Semaphore::new(config.max_concurrent_lookups.max(1)));
        // Literal addresses need no resolver: the node has them from its first instant, so a
        // lookup sent right after start-up (a magnet link) has somewhere to go. Host names are
        // resolved in the background; lookups that would have no node to ask wait for them.
        let literal: Vec<SocketAddr> = config
            .bootstrap
            .iter()
            .filter_map(|h| h.parse::<SocketAddr>().ok())
            .filter(|a| a.is_ipv6() == local_addr.is_ipv6())
            .collect();
        let resolving = config
            .bootstrap
            .iter()
            .any(|h| h.parse::<SocketAddr>().is_err());
        if resolving {
            tokio::spawn(resolve_bootstrap(
                config.bootstrap.clone(),
                local_addr,
                tx.clone(),
            ));
        }
        let node = Node::new(
            config, node_id, socket, local_addr, seeds, literal, resolving,
        );
        tokio::spawn(node.run(rx));
        tracing::info!(%local_addr, node_id = %node_id, "DHT node started");
        Ok(DhtHandle {
            tx,
            local_addr,
            node_id,
            lookups,
        })
    }
}

/// Resolves `host:port` strings off the node task (DNS can take seconds) and hands the
/// addresses of our socket's family to it.
async fn resolve_bootstrap(hosts: Vec<String>, local: SocketAddr, tx: mpsc::Sender<Command>) {
    let mut addrs = Vec::new();
    for host in hosts {
        if let Ok(a) = host.parse::<SocketAddr>() {
            addrs.push(a);
            continue;
        }
        let lookup = tokio::net::lookup_host(host.clone());
        match tokio::time::timeout(std::time::Duration::from_secs(10), lookup).await {
            Ok(Ok(found)) => addrs.extend(found),
            Ok(Err(e)) => tracing::debug!(%host, error = %e, "DHT bootstrap host did not resolve"),
            Err(_) => tracing::debug!(%host, "DHT bootstrap host resolution timed out"),
        }
    }
    addrs.retain(|a| a.is_ipv6() == local.is_ipv6());
    let _ = tx.send(Command::Bootstrap(Some(addrs))).await;
}

/// A cloneable handle to a running DHT node. Dropping every clone stops the node (without
/// saving; call [`DhtHandle::shutdown`] for an orderly stop).
#[derive(Clone)]
pub struct DhtHandle {
    tx: mpsc::Sender<Command>,
    local_addr: SocketAddr,
    node_id: NodeId,
    lookups: Arc<Semaphore>,
}

impl DhtHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    async fn send(&self, cmd: Command) -> Result<(), DhtError> {
        self.tx.send(cmd).await.map_err(|_| DhtError::Stopped)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DhtError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| DhtError::Stopped)
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, DhtError> {
        self.lookups
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DhtError::Stopped)
    }

    /// An iterative get_peers lookup; returns every peer found once it ends (bounded by the
    /// configured lookup timeout).
    pub async fn get_peers(&self, info_hash: InfoHash) -> Result<Vec<SocketAddr>, DhtError> {
        let permit = self.permit().await?;
        self.ask(|done| Command::GetPeers {
            info_hash,
            stream: None,
            done: Some(done),
            permit,
        })
        .await
    }

    /// Like [`Self::get_peers`], but peers arrive as they are found; the receiver closes when
    /// the lookup ends. A reader that falls more than a few hundred peers behind misses some.
    pub async fn get_peers_stream(
        &self,
        info_hash: InfoHash,
    ) -> Result<mpsc::Receiver<SocketAddr>, DhtError> {
        let permit = self.permit().await?;
        let (tx, rx) = mpsc::channel(PEER_STREAM_BUFFER);
        self.send(Command::GetPeers {
            info_hash,
            stream: Some(tx),
            done: None,
            permit,
        })
        .await?;
        Ok(rx)
    }

    /// Looks up `info_hash`, then announces us to the closest nodes that gave a token;
    /// returns once each of them answered or timed out.
    /// `port: None` asks them to use the UDP source port (BEP 5 `implied_port`), which suits
    /// peers behind NAT that share the DHT port with the peer port.
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<AnnounceOutcome, DhtError> {
        let permit = self.permit().await?;
        self.ask(|done| Command::Announce {
            info_hash,
            port,
            done,
            permit,
        })
        .await
    }

    /// An iterative find_node lookup: the closest nodes to `target` that answered.
    pub async fn find_node(&self, target: NodeId) -> Result<Vec<NodeInfo>, DhtError> {
        let permit = self.permit().await?;
        self.ask(|done| Command::FindNode {
            target,
            done,
            permit,
        })
        .await
    }

    /// Pings `addr`; if it answers, it is considered for the routing table. For bootstrap
    /// nodes and for a peer's PORT message. Never waits: when the node is busy the hint is
    /// dropped and `Busy` returned.
    pub fn add_node(&self, addr: SocketAddr) -> Result<(), DhtError> {
        self.tx
            .try_send(Command::AddNode(addr))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => DhtError::Busy,
                mpsc::error::TrySendError::Closed(_) => DhtError::Stopped,
            })
    }

    /// Runs a bootstrap lookup again (from the configured routers and the table).
    pub async fn bootstrap(&self) -> Result<(), DhtError> {
        self.send(Command::Bootstrap(None)).await
    }

    /// Keeps `info_hash` announced: now (once bootstrapped) and every reannounce interval,
    /// until [`Self::unregister`]. Registering again changes the port.
    pub async fn register(&self, info_hash: InfoHash, port: Option<u16>) -> Result<(), DhtError> {
        self.send(Command::Register { info_hash, port }).await
    }

    pub async fn unregister(&self, info_hash: InfoHash) -> Result<(), DhtError> {
        self.send(Command::Unregister(info_hash)).await
    }

    pub async fn stats(&self) -> Result<DhtStats, DhtError> {
        self.ask(Command::Stats).await
    }

    pub async fn routing_table_snapshot(&self) -> Result<RoutingSnapshot, DhtError> {
        self.ask(Command::Snapshot).await
    }

    /// Saves id and table to `path`, or to the configured state file when `None`.
    pub async fn save(&self, path: Option<PathBuf>) -> Result<(), DhtError> {
        self.ask(|done| Command::Save { path, done }).await?
    }

    /// Saves state (if a state file is configured) and stops the node. Lookups in progress
    /// end with `Stopped`.
    pub async fn shutdown(&self) -> Result<(), DhtError> {
        self.ask(Command::Shutdown).await
    }
}
