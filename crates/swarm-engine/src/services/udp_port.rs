//! # UdpPort — global service
//!
//! Owns: the UDP socket on the peer port (bound at start-up beside the TCP listening socket,
//! on the same port, and kept across restarts like it); the loop that reads every datagram on
//! it and hands it to its protocol by its first byte (`udp_port/demux.rs`): KRPC to the DHT
//! node's inbox when the node shares the port, uTP to the uTP endpoint; the uTP endpoint
//! itself (`udp_port/utp_link.rs`, the `librqbit-utp` crate fed from this loop) and the loop
//! that accepts incoming uTP connections and reads their BitTorrent handshake (with the
//! listener's timeout and half-open bound).
//!
//! Takes: `Terminate`; `AcceptedUtp` from its own accept loop. Sends: `IncomingUtp` to the
//! Listener, which knows which torrent has the info-hash.
//! Supervised by: the root (permanent), started before the DHT service so that the node finds
//! the socket in [`UdpSlot`]. A crash costs every uTP connection (the endpoint and its
//! connections end with the actor; outgoing peers are re-dialled by their torrents) and the
//! datagrams in flight. The DHT node keeps its inbox, which lives in the slot, and hears again
//! from the next incarnation.
//!
//! Hostile input stays bounded here: the channels to the DHT and to the endpoint are bounded
//! (a full one drops the datagram, as a full socket buffer would); connection requests
//! (`ST_SYN`) are rate-limited per source before the endpoint sees them; the endpoint keeps at
//! most `max_connections` connections, and the accept loop at most `max_half_open` in
//! handshake. Packets for unknown connection ids, out-of-window sequence numbers and silly
//! windows are the endpoint's to drop or bound (a stalled connection ends with the peer's idle
//! timeout).

mod demux;
pub mod utp_link;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use librqbit_utp::UtpStream;
use swarm_dht::{RateLimit, SharedUdp};
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::services::listener::{Greeted, HalfOpen, IncomingUtp, Listener};
use crate::services::ServiceRef;
use crate::torrent::peer::encryption::PolicyCell;
use demux::{classify, Datagram};
use utp_link::{Inbox, UtpEndpoint};

/// KRPC datagrams waiting for the DHT node.
const KRPC_INBOX: usize = 1024;

/// Connection requests per source: a client connects to each of our torrents once, and
/// retransmits a lost SYN a few times; a flood of them is one source's problem.
const SYN_RATE: RateLimit = RateLimit {
    per_second: 5.0,
    burst: 20.0,
};
/// Sources the SYN limiter tracks at once.
const SYN_SOURCES: usize = 10_000;

/// Where the rest of the engine finds the port: the socket (for the DHT to send on), the uTP
/// endpoint (for outgoing connections), and the DHT's inbox (for the read loop).
#[derive(Clone, Default)]
pub struct UdpSlot(Arc<SlotInner>);

#[derive(Default)]
struct SlotInner {
    socket: RwLock<Option<Arc<UdpSocket>>>,
    utp: RwLock<Option<UtpEndpoint>>,
    krpc: Mutex<Option<Inbox>>,
}

impl UdpSlot {
    /// The uTP endpoint, while the port runs with uTP on.
    pub fn utp(&self) -> Option<UtpEndpoint> {
        self.0.utp.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        let socket = self.0.socket.read().unwrap_or_else(|e| e.into_inner());
        socket.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// A DHT node's share of the port: the socket to send on and a new inbox that replaces the
    /// previous node's (a restarted node takes over). `None` before the port has started.
    pub fn share_with_dht(&self) -> Option<SharedUdp> {
        let socket = self
            .0
            .socket
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let (tx, inbox) = mpsc::channel(KRPC_INBOX);
        *self.0.krpc.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        Some(SharedUdp { socket, inbox })
    }

    fn to_dht(&self, datagram: &[u8], from: SocketAddr) {
        let krpc = self.0.krpc.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = krpc.as_ref() {
            // Full: the node is behind; a dropped query is retried by its sender.
            let _ = tx.try_send((datagram.to_vec(), from));
        }
    }

    fn set_utp(&self, endpoint: Option<UtpEndpoint>) {
        *self.0.utp.write().unwrap_or_else(|e| e.into_inner()) = endpoint;
    }
}

/// What the port is told at start.
#[derive(Clone)]
pub struct UdpPortConfig {
    /// Accept and make uTP connections (`transports` names "utp").
    pub utp: bool,
    /// uTP connections at once (handshaking or live).
    pub max_connections: usize,
    pub max_half_open: usize,
    pub handshake_timeout: Duration,
    /// The encryption policy incoming uTP connections are held to (the listener's).
    pub encryption: PolicyCell,
    /// Incoming uTP connections from blocked addresses are dropped before their handshake.
    pub blocklist: crate::blocklist::Blocklist,
}

pub struct UdpPort {
    socket: Arc<UdpSocket>,
    slot: UdpSlot,
    listener: ServiceRef<Listener>,
    cfg: UdpPortConfig,
    /// Ends the endpoint's tasks (and so every uTP connection) with this incarnation.
    cancel: CancellationToken,
    link: ChildLink,
}

impl UdpPort {
    /// Takes a clone of the socket bound at start-up and publishes it in `slot`: the DHT
    /// service, started right after, shares it.
    pub fn new(
        socket: std::net::UdpSocket,
        slot: UdpSlot,
        listener: ServiceRef<Listener>,
        cfg: UdpPortConfig,
        link: ChildLink,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        *slot.0.socket.write().unwrap_or_else(|e| e.into_inner()) = Some(socket.clone());
        Ok(UdpPort {
            socket,
            slot,
            listener,
            cfg,
            cancel: CancellationToken::new(),
            link,
        })
    }

    fn start_utp(&mut self, ctx: &mut Context<Self>) -> io::Result<Inbox> {
        let (endpoint, inbox) = utp_link::start_endpoint(
            self.socket.clone(),
            self.cfg.max_connections,
            self.cancel.clone(),
        )?;
        self.slot.set_utp(Some(endpoint.clone()));
        let me = ctx.address();
        let half_open = HalfOpen::new(self.cfg.max_half_open, self.cfg.encryption.clone());
        let timeout = self.cfg.handshake_timeout;
        let listener = self.listener.clone();
        let blocklist = self.cfg.blocklist.clone();
        ctx.spawn(
            async move {
                loop {
                    let stream = match endpoint.accept().await {
                        Ok(s) => s,
                        Err(e) => return format!("uTP endpoint stopped: {e}"),
                    };
                    let addr = stream.remote_addr();
                    if blocklist.refuses(addr.ip(), "incoming uTP connection") {
                        continue; // dropping the stream resets it
                    }
                    // An encrypting peer names its torrent by a hash only the listener can look
                    // up; while it restarts, no connection could be routed anyway.
                    let Some(finder) = listener.get() else {
                        tracing::debug!(peer = %addr, "listener restarting; uTP connection dropped");
                        continue;
                    };
                    let me = me.clone();
                    half_open.read_handshake(stream, addr, timeout, finder.recipient(), move |hello| {
                        me.do_send(AcceptedUtp { addr, hello })
                    });
                }
            }
            .into_actor(self)
            .map(|reason, act, ctx| {
                act.link.fail(reason);
                ctx.stop();
            }),
        );
        Ok(inbox)
    }
}

impl Actor for UdpPort {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let utp = if self.cfg.utp {
            match self.start_utp(ctx) {
                Ok(inbox) => Some(inbox),
                Err(e) => {
                    self.link.fail(e.to_string());
                    return ctx.stop();
                }
            }
        } else {
            None
        };
        let (socket, slot) = (self.socket.clone(), self.slot.clone());
        ctx.spawn(read_loop(socket, slot, utp).into_actor(self));
        ctx.run_interval(Duration::from_secs(30), |_, _| {
            crate::fault::maybe_panic("udp.check");
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.slot.set_utp(None);
        self.cancel.cancel();
    }
}

/// Reads every datagram and hands it to its protocol. Never waits on a consumer: a full inbox
/// drops the datagram.
async fn read_loop(socket: Arc<UdpSocket>, slot: UdpSlot, utp: Option<Inbox>) {
    // The largest UDP payload: nothing is ever truncated into something else.
    let mut buf = vec![0u8; 65_536];
    let mut syns = swarm_dht::rate_limit::SourceLimiter::new(SYN_RATE, SYN_SOURCES);
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors surface here on some platforms and concern one peer; anything
                // else must not turn this loop into a spin.
                tracing::debug!(error = %e, "UDP port receive error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let datagram = &buf[..n];
        match (classify(datagram), &utp) {
            (Datagram::Krpc, _) => slot.to_dht(datagram, from),
            (Datagram::Utp { syn }, Some(inbox)) => {
                if syn && !syns.allow(from, Instant::now()) {
                    tracing::debug!(peer = %from, "uTP connection requests too fast; dropped");
                    continue;
                }
                let _ = inbox.try_send((datagram.to_vec(), from));
            }
            _ => {}
        }
    }
}

/// An incoming uTP connection whose handshake was read.
#[derive(Message)]
#[rtype(result = "()")]
struct AcceptedUtp {
    addr: SocketAddr,
    hello: Greeted<UtpStream>,
}

impl Handler<AcceptedUtp> for UdpPort {
    type Result = ();

    fn handle(&mut self, msg: AcceptedUtp, _: &mut Context<Self>) {
        crate::fault::maybe_panic("udp.accept");
        self.listener.do_send(IncomingUtp {
            addr: msg.addr,
            hello: msg.hello,
        });
    }
}

impl Handler<Terminate> for UdpPort {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}
