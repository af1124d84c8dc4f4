//! # Listener — global service
//!
//! Owns: the TCP listening socket on the peer port and the routing table info-hash → torrent
//! (also indexed by `HASH('req2', info-hash)`, the name an encrypting peer gives its torrent).
//! Each accepted connection gets a short-lived task (with a timeout, and a bound on how many such
//! tasks run at once: [`HalfOpen`], which the UDP port uses for uTP too) that tells a plaintext
//! peer from an encrypting one by its first 20 bytes (`19 "BitTorrent protocol"` or not), runs
//! the MSE handshake with the latter (the encryption policy decides which are accepted), then
//! reads the 68-byte BitTorrent handshake; the connection is routed to its torrent as an
//! `IncomingPeer`, or dropped when no torrent has that info-hash. A peer that sends garbage,
//! stalls, or never sends MSE's sync marker within the spec's bound is dropped when its task
//! ends; the task buffers a few KiB at most.
//!
//! Takes: `Route` from torrents (add or remove themselves), `FindTorrent` from the handshake
//! tasks; `IncomingUtp` from the UDP port (a uTP connection whose handshakes it read). Sends:
//! `IncomingPeer` to torrents.
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
use swarm_wire::mse::{self, Policy};
use swarm_wire::peer::Handshake;
use swarm_wire::InfoHash;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::torrent::peer::transport::Accepted as TransportAccepted;

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
    half_open: HalfOpen,
    /// Connections from blocked addresses are closed at once, before any handshake.
    blocklist: crate::blocklist::Blocklist,
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
        blocklist: crate::blocklist::Blocklist,
        link: ChildLink,
    ) -> Self {
        Listener {
            listener: Some(listener),
            routes: HashMap::new(),
            by_req2: HashMap::new(),
            half_open: HalfOpen::new(max_half_open, encryption),
            blocklist,
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
        let blocklist = self.blocklist.clone();
        ctx.spawn(
            async move {
                let mut accept_errors = AcceptErrors::default();
                loop {
                    let (stream, addr) = match listener.accept().await {
                        Ok(x) => {
                            crate::fault::maybe_panic("listener.accept");
                            x
                        }
                        Err(e) => {
                            // Out of descriptors (EMFILE) lasts as long as the flood that
                            // caused it: one line a minute, not ten a second.
                            accept_errors.failed(&e, std::time::Instant::now());
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    if blocklist.refuses(addr.ip(), "incoming connection") {
                        continue; // dropping the stream closes it
                    }
                    let me = me.clone();
                    let finder = me.clone().recipient();
                    half_open.read_handshake(
                        stream,
                        addr,
                        handshake_timeout,
                        finder,
                        move |hello| me.do_send(Accepted { addr, hello }),
                    );
                }
            }
            .into_actor(self),
        );
    }
}

/// Failed accepts, logged at most once a minute with how many there were since the last line.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<std::time::Instant>,
    since: u64,
}

impl AcceptErrors {
    const EVERY: Duration = Duration::from_secs(60);

    fn failed(&mut self, e: &std::io::Error, now: std::time::Instant) {
        self.since += 1;
        if self
            .last_logged
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            return;
        }
        tracing::warn!(
            failures = self.since,
            "accepting peer connections failed: {e} (connections wait in the backlog; with \
             'Too many open files', raise the open-file limit)"
        );
        self.last_logged = Some(now);
        self.since = 0;
    }
}

fn refused(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Connections in handshake at once, the encryption policy they are held to, and the task that
/// reads one connection's handshakes.
#[derive(Clone)]
pub struct HalfOpen {
    max: usize,
    now: Arc<AtomicUsize>,
    encryption: PolicyCell,
}

/// What a handshake task read from an accepted connection.
pub struct Greeted<S> {
    pub stream: S,
    pub handshake: Handshake,
    /// Bytes the peer sent past its handshake (decrypted).
    pub leftover: BytesMut,
    /// The encryption handshake the peer began with, if it did.
    pub mse: Option<MseDone>,
}

impl<S> Greeted<S> {
    /// The connection, and what was read from it.
    fn split(self) -> (S, Greeted<()>) {
        let rest = Greeted {
            stream: (),
            handshake: self.handshake,
            leftover: self.leftover,
            mse: self.mse,
        };
        (self.stream, rest)
    }
}

impl HalfOpen {
    pub fn new(max: usize, encryption: PolicyCell) -> Self {
        HalfOpen {
            max,
            now: Arc::default(),
            encryption,
        }
    }

    /// Reads the peer's handshake (plaintext or behind MSE, as the policy in force allows) from
    /// `stream` within `timeout` on a task of its own, asking `finder` which torrent an
    /// encrypting peer names, then hands the result to `deliver`. A connection beyond the bound
    /// is dropped at once.
    pub fn read_handshake<S>(
        &self,
        stream: S,
        addr: SocketAddr,
        timeout: Duration,
        finder: Recipient<FindTorrent>,
        deliver: impl FnOnce(Greeted<S>) + Send + 'static,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.now.load(Ordering::Relaxed) >= self.max {
            tracing::debug!(peer = %addr, "too many connections in handshake; dropped");
            return;
        }
        self.now.fetch_add(1, Ordering::Relaxed);
        let now = self.now.clone();
        let policy = self.encryption.get();
        actix::spawn(async move {
            let res = tokio::time::timeout(timeout, read_handshake(stream, policy, finder)).await;
            now.fetch_sub(1, Ordering::Relaxed);
            match res {
                Ok(Ok(hello)) => deliver(hello),
                Ok(Err(e)) => tracing::debug!(peer = %addr, "bad incoming handshake: {e}"),
                Err(_) => tracing::debug!(peer = %addr, "incoming handshake timed out"),
            }
        });
    }
}

/// Reads the peer's handshake, plaintext or behind MSE (as `policy` allows).
async fn read_handshake<S>(
    mut stream: S,
    policy: Policy,
    finder: Recipient<FindTorrent>,
) -> std::io::Result<Greeted<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = [0u8; Handshake::LEN];
    stream.read_exact(&mut buf[..20]).await?;
    if &buf[..20] == PLAINTEXT_START {
        if !policy.accepts_plaintext() {
            return Err(refused(
                "plaintext handshake refused: the encryption policy is require",
            ));
        }
        stream.read_exact(&mut buf[20..]).await?;
        return Ok(Greeted {
            handshake: Handshake::decode(&buf).map_err(|e| refused(&e.to_string()))?,
            stream,
            leftover: BytesMut::new(),
            mse: None,
        });
    }
    let Some(methods) = policy.methods() else {
        return Err(refused(
            "not a BitTorrent handshake, and MSE is off (encryption policy disable)",
        ));
    };
    let (mut r, mut w) = tokio::io::split(stream);
    let find = |req2| {
        let finder = finder.clone();
        async move { finder.send(FindTorrent(req2)).await.ok().flatten() }
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
    Ok(Greeted {
        stream: r.unsplit(w),
        handshake,
        leftover,
        mse: Some(done),
    })
}

#[derive(Message)]
#[rtype(result = "()")]
struct Accepted {
    addr: SocketAddr,
    hello: Greeted<TcpStream>,
}

/// Which routed torrent has this `HASH('req2', info-hash)`? (From a handshake task.)
#[derive(Message)]
#[rtype(result = "Option<[u8; 20]>")]
pub struct FindTorrent([u8; 20]);

impl Handler<FindTorrent> for Listener {
    type Result = Option<[u8; 20]>;

    fn handle(&mut self, msg: FindTorrent, _: &mut Context<Self>) -> Self::Result {
        self.by_req2.get(&msg.0).map(|ih| ih.0)
    }
}

impl Handler<Accepted> for Listener {
    type Result = ();

    fn handle(&mut self, msg: Accepted, _: &mut Context<Self>) {
        let (stream, hello) = msg.hello.split();
        // Torrents live on other arbiters, each with its own reactor: hand over a plain socket
        // and let the peer actor register it where it runs.
        match stream.into_std() {
            Ok(s) => self.route(msg.addr, TransportAccepted::Tcp(s), hello),
            Err(e) => tracing::debug!(peer = %msg.addr, "incoming socket lost: {e}"),
        }
    }
}

impl Listener {
    fn route(&self, addr: SocketAddr, stream: TransportAccepted, hello: Greeted<()>) {
        let Some(to) = self.routes.get(&hello.handshake.info_hash) else {
            tracing::debug!(peer = %addr, info_hash = %hello.handshake.info_hash, "incoming peer for an unknown torrent");
            return;
        };
        let dial = Dial::Incoming {
            stream,
            handshake: hello.handshake,
            leftover: hello.leftover,
            mse: hello.mse.map(Box::new),
        };
        if to.try_send(IncomingPeer { addr, dial }).is_err() {
            tracing::debug!(peer = %addr, "torrent busy or gone; incoming peer dropped");
        }
    }
}

/// A uTP connection the UDP port accepted, with the handshakes it read.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingUtp {
    pub addr: SocketAddr,
    pub hello: Greeted<UtpStream>,
}

impl Handler<IncomingUtp> for Listener {
    type Result = ();

    fn handle(&mut self, msg: IncomingUtp, _: &mut Context<Self>) {
        let (stream, hello) = msg.hello.split();
        self.route(msg.addr, TransportAccepted::Utp(stream), hello);
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
