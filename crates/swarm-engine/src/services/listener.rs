//! # Listener — global service
//!
//! Owns: the TCP listening socket on the peer port and the routing table info-hash → torrent.
//! Each accepted connection gets a short-lived task that reads the 68-byte handshake (with a
//! timeout, and a bound on how many such tasks run at once: [`HalfOpen`], which the UDP port
//! uses for uTP too), then the connection is routed to its torrent as an `IncomingPeer`, or
//! dropped when no torrent has that info-hash.
//!
//! Takes: `Route` from torrents (add or remove themselves); `IncomingUtp` from the UDP port (a
//! uTP connection whose handshake it read). Sends: `IncomingPeer` to torrents.
//! Supervised by: the root (permanent). A crash drops connections mid-handshake and the routes;
//! the root restarts it on the same port and torrents route themselves again on their next tick.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use librqbit_utp::UtpStream;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::peer::Handshake;
use swarm_wire::InfoHash;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};

use crate::torrent::peer::transport::Accepted as TransportAccepted;

use crate::torrent::messages::Dial;
use crate::torrent::messages::IncomingPeer;

pub struct Listener {
    listener: Option<std::net::TcpListener>,
    routes: HashMap<InfoHash, Recipient<IncomingPeer>>,
    half_open: HalfOpen,
    /// How long an accepted connection may take to send its handshake.
    pub handshake_timeout: Duration,
    link: ChildLink,
}

impl Listener {
    /// Takes an already bound socket, so that binding errors surface at start-up, before any
    /// actor exists, and a restart can reuse the same port.
    pub fn new(
        listener: std::net::TcpListener,
        max_half_open: usize,
        handshake_timeout: Duration,
        link: ChildLink,
    ) -> Self {
        Listener {
            listener: Some(listener),
            routes: HashMap::new(),
            half_open: HalfOpen::new(max_half_open),
            handshake_timeout,
            link,
        }
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(std_listener) = self.listener.take() else {
            return ctx.stop();
        };
        let listener = match std_listener
            .set_nonblocking(true)
            .and_then(|_| TcpListener::from_std(std_listener))
        {
            Ok(l) => l,
            Err(e) => {
                self.link.fail(format!("listener socket: {e}"));
                return ctx.stop();
            }
        };
        let me = ctx.address();
        let half_open = self.half_open.clone();
        let handshake_timeout = self.handshake_timeout;
        ctx.spawn(
            async move {
                loop {
                    let (stream, addr) = match listener.accept().await {
                        Ok(x) => {
                            crate::fault::maybe_panic("listener.accept");
                            x
                        }
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let me = me.clone();
                    half_open.read_handshake(
                        stream,
                        addr,
                        handshake_timeout,
                        move |stream, handshake| {
                            me.do_send(Accepted {
                                stream,
                                addr,
                                handshake,
                            })
                        },
                    );
                }
            }
            .into_actor(self),
        );
    }
}

/// Connections in handshake at once, and the task that reads one handshake.
#[derive(Clone)]
pub struct HalfOpen {
    max: usize,
    now: Arc<AtomicUsize>,
}

impl HalfOpen {
    pub fn new(max: usize) -> Self {
        HalfOpen {
            max,
            now: Arc::default(),
        }
    }

    /// Reads the 68-byte handshake from `stream` within `timeout` on a task of its own, then
    /// hands both to `deliver`. A connection beyond the bound is dropped at once.
    pub fn read_handshake<S>(
        &self,
        stream: S,
        addr: SocketAddr,
        timeout: Duration,
        deliver: impl FnOnce(S, Handshake) + Send + 'static,
    ) where
        S: AsyncRead + Unpin + Send + 'static,
    {
        if self.now.load(Ordering::Relaxed) >= self.max {
            tracing::debug!(peer = %addr, "too many connections in handshake; dropped");
            return;
        }
        self.now.fetch_add(1, Ordering::Relaxed);
        let now = self.now.clone();
        actix::spawn(async move {
            let res = tokio::time::timeout(timeout, read_handshake(stream)).await;
            now.fetch_sub(1, Ordering::Relaxed);
            match res {
                Ok(Ok((stream, handshake))) => deliver(stream, handshake),
                Ok(Err(e)) => tracing::debug!(peer = %addr, "bad incoming handshake: {e}"),
                Err(_) => tracing::debug!(peer = %addr, "incoming handshake timed out"),
            }
        });
    }
}

async fn read_handshake<S: AsyncRead + Unpin>(mut stream: S) -> std::io::Result<(S, Handshake)> {
    let mut buf = [0u8; 68];
    stream.read_exact(&mut buf).await?;
    let hs = Handshake::decode(&buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok((stream, hs))
}

#[derive(Message)]
#[rtype(result = "()")]
struct Accepted {
    stream: TcpStream,
    addr: SocketAddr,
    handshake: Handshake,
}

impl Handler<Accepted> for Listener {
    type Result = ();

    fn handle(&mut self, msg: Accepted, _: &mut Context<Self>) {
        // Torrents live on other arbiters, each with its own reactor: hand over a plain socket
        // and let the peer actor register it where it runs.
        match msg.stream.into_std() {
            Ok(s) => self.route(msg.addr, TransportAccepted::Tcp(s), msg.handshake),
            Err(e) => tracing::debug!(peer = %msg.addr, "incoming socket lost: {e}"),
        }
    }
}

impl Listener {
    fn route(&self, addr: SocketAddr, stream: TransportAccepted, handshake: Handshake) {
        let Some(to) = self.routes.get(&handshake.info_hash) else {
            tracing::debug!(peer = %addr, info_hash = %handshake.info_hash, "incoming peer for an unknown torrent");
            return;
        };
        let dial = Dial::Incoming {
            stream,
            handshake,
            leftover: BytesMut::new(),
        };
        if to.try_send(IncomingPeer { addr, dial }).is_err() {
            tracing::debug!(peer = %addr, "torrent busy or gone; incoming peer dropped");
        }
    }
}

/// A uTP connection the UDP port accepted, with the handshake it read.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingUtp {
    pub stream: UtpStream,
    pub addr: SocketAddr,
    pub handshake: Handshake,
}

impl Handler<IncomingUtp> for Listener {
    type Result = ();

    fn handle(&mut self, msg: IncomingUtp, _: &mut Context<Self>) {
        self.route(msg.addr, TransportAccepted::Utp(msg.stream), msg.handshake);
    }
}

/// A torrent adds (`to: Some`) or removes (`to: None`) its route.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route {
    pub info_hash: InfoHash,
    pub to: Option<Recipient<IncomingPeer>>,
}

impl Handler<Route> for Listener {
    type Result = ();

    fn handle(&mut self, msg: Route, _: &mut Context<Self>) {
        match msg.to {
            Some(to) => self.routes.insert(msg.info_hash, to),
            None => self.routes.remove(&msg.info_hash),
        };
    }
}

impl Handler<Terminate> for Listener {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}
