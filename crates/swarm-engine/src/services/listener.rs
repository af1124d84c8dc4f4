//! # Listener — global service
//!
//! Owns: the TCP listening socket on the peer port and the routing table info-hash → torrent
//! (also indexed by `HASH('req2', info-hash)`, the name an encrypting peer gives its torrent).
//! Each accepted connection gets a short-lived task (with a timeout, and a bound on how many such
//! tasks run at once) that tells a plaintext peer from an encrypting one by its first 20 bytes
//! (`19 "BitTorrent protocol"` or not), runs the MSE handshake with the latter (the encryption
//! policy decides which are accepted), then reads the 68-byte BitTorrent handshake; the
//! connection is routed to its torrent as an `IncomingPeer`, or dropped when no torrent has that
//! info-hash. A peer that sends garbage, stalls, or never sends MSE's sync marker within the
//! spec's bound is dropped when its task ends; the task buffers a few KiB at most.
//!
//! Takes: `Route` from torrents (add or remove themselves), `FindTorrent` from its own handshake
//! tasks. Sends: `IncomingPeer` to torrents.
//! Supervised by: the root (permanent). A crash drops connections mid-handshake and the routes;
//! the root restarts it on the same port and torrents route themselves again on their next tick.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::BytesMut;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::mse::{self, Policy};
use swarm_wire::peer::Handshake;
use swarm_wire::InfoHash;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::torrent::messages::Dial;
use crate::torrent::messages::IncomingPeer;
use crate::torrent::peer::encryption::{self, MseDone, PolicyCell};

/// How a plaintext handshake starts. An MSE handshake starts with a random public key, which
/// begins like this once in 2^160.
const PLAINTEXT_START: &[u8; 20] = b"\x13BitTorrent protocol";

pub struct Listener {
    listener: Option<std::net::TcpListener>,
    routes: HashMap<InfoHash, Recipient<IncomingPeer>>,
    /// `HASH('req2', info-hash)` → info-hash, for every routed torrent.
    by_req2: HashMap<[u8; 20], InfoHash>,
    encryption: PolicyCell,
    max_half_open: usize,
    half_open: Arc<AtomicUsize>,
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
        encryption: PolicyCell,
        link: ChildLink,
    ) -> Self {
        Listener {
            listener: Some(listener),
            routes: HashMap::new(),
            by_req2: HashMap::new(),
            encryption,
            max_half_open,
            half_open: Arc::default(),
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
        let max = self.max_half_open;
        let handshake_timeout = self.handshake_timeout;
        let encryption = self.encryption.clone();
        ctx.spawn(
            async move {
                loop {
                    let (stream, addr) = match listener.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if half_open.load(Ordering::Relaxed) >= max {
                        tracing::debug!(peer = %addr, "too many connections in handshake; dropped");
                        continue;
                    }
                    half_open.fetch_add(1, Ordering::Relaxed);
                    let (me, half_open) = (me.clone(), half_open.clone());
                    let policy = encryption.get();
                    actix::spawn(async move {
                        let read = read_handshake(stream, addr, policy, me.clone());
                        let res = tokio::time::timeout(handshake_timeout, read).await;
                        half_open.fetch_sub(1, Ordering::Relaxed);
                        match res {
                            Ok(Ok(accepted)) => me.do_send(accepted),
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %addr, "bad incoming handshake: {e}")
                            }
                            Err(_) => tracing::debug!(peer = %addr, "incoming handshake timed out"),
                        }
                    });
                }
            }
            .into_actor(self),
        );
    }
}

fn refused(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Reads the peer's handshake, plaintext or behind MSE (as `policy` allows).
async fn read_handshake(
    mut stream: TcpStream,
    addr: SocketAddr,
    policy: Policy,
    me: Addr<Listener>,
) -> std::io::Result<Accepted> {
    let mut buf = [0u8; Handshake::LEN];
    stream.read_exact(&mut buf[..20]).await?;
    if &buf[..20] == PLAINTEXT_START {
        if !policy.accepts_plaintext() {
            return Err(refused(
                "plaintext handshake refused: the encryption policy is require",
            ));
        }
        stream.read_exact(&mut buf[20..]).await?;
        return Ok(Accepted {
            handshake: Handshake::decode(&buf).map_err(|e| refused(&e.to_string()))?,
            stream,
            addr,
            leftover: BytesMut::new(),
            mse: None,
        });
    }
    let Some(methods) = policy.methods() else {
        return Err(refused(
            "not a BitTorrent handshake, and MSE is off (encryption policy disable)",
        ));
    };
    let (mut r, mut w) = stream.split();
    let find = |req2| {
        let me = me.clone();
        async move { me.send(FindTorrent(req2)).await.ok().flatten() }
    };
    let (mut done, skey) = encryption::respond(&mut r, &mut w, &buf[..20], methods, find).await?;
    // The BitTorrent handshake: in the initial payload, or (part of it) after.
    let mut payload = BytesMut::from(&std::mem::take(&mut done.received)[..]);
    if payload.len() < Handshake::LEN {
        let mut rest = vec![0u8; Handshake::LEN - payload.len()];
        r.read_exact(&mut rest).await?;
        if let mse::Stream::Rc4 { recv, .. } = &mut done.stream {
            recv.apply(&mut rest);
        }
        payload.extend_from_slice(&rest);
    }
    let leftover = payload.split_off(Handshake::LEN);
    let handshake = Handshake::decode(&payload).map_err(|e| refused(&e.to_string()))?;
    if handshake.info_hash.0 != skey {
        return Err(refused(
            "the handshake names another torrent than the MSE exchange",
        ));
    }
    Ok(Accepted {
        stream,
        addr,
        handshake,
        leftover,
        mse: Some(done),
    })
}

#[derive(Message)]
#[rtype(result = "()")]
struct Accepted {
    stream: TcpStream,
    addr: SocketAddr,
    handshake: Handshake,
    leftover: BytesMut,
    mse: Option<MseDone>,
}

/// Which routed torrent has this `HASH('req2', info-hash)`? (From a handshake task.)
#[derive(Message)]
#[rtype(result = "Option<[u8; 20]>")]
struct FindTorrent([u8; 20]);

impl Handler<FindTorrent> for Listener {
    type Result = Option<[u8; 20]>;

    fn handle(&mut self, msg: FindTorrent, _: &mut Context<Self>) -> Self::Result {
        self.by_req2.get(&msg.0).map(|ih| ih.0)
    }
}

impl Handler<Accepted> for Listener {
    type Result = ();

    fn handle(&mut self, msg: Accepted, _: &mut Context<Self>) {
        let Some(to) = self.routes.get(&msg.handshake.info_hash) else {
            tracing::debug!(peer = %msg.addr, info_hash = %msg.handshake.info_hash, "incoming peer for an unknown torrent");
            return;
        };
        // Torrents live on other arbiters, each with its own reactor: hand over a plain socket
        // and let the peer actor register it where it runs.
        let stream = match msg.stream.into_std() {
            Ok(s) => s,
            Err(e) => return tracing::debug!(peer = %msg.addr, "incoming socket lost: {e}"),
        };
        let dial = Dial::Incoming {
            stream,
            handshake: msg.handshake,
            leftover: msg.leftover,
            mse: msg.mse,
        };
        if to
            .try_send(IncomingPeer {
                addr: msg.addr,
                dial,
            })
            .is_err()
        {
            tracing::debug!(peer = %msg.addr, "torrent busy or gone; incoming peer dropped");
        }
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
        let req2 = mse::req2(&msg.info_hash.0);
        match msg.to {
            Some(to) => {
                self.by_req2.insert(req2, msg.info_hash);
                self.routes.insert(msg.info_hash, to);
            }
            None => {
                self.by_req2.remove(&req2);
                self.routes.remove(&msg.info_hash);
            }
        }
    }
}

impl Handler<Terminate> for Listener {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}
