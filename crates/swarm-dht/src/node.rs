//! The node task: owns its UDP socket (or its inbox on a shared one, see `socket.rs`) and every piece of DHT state (routing table, tokens,
//! peer store, rate limiter, queries in flight, lookups, registered torrents).
//!
//! It takes [`Command`]s from [`crate::DhtHandle`]s and datagrams from the socket, feeds them
//! to the pure parts, and sends what they ask for. Handlers are synchronous and queue their
//! datagrams in an outbox that the loop flushes after each event, so no state is ever
//! borrowed across an `.await`.
//!
//! Nobody supervises it inside this crate: if it panics, every handle call returns
//! [`crate::DhtError::Stopped`] and the owner (the engine's Dht service) restarts it with
//! [`crate::Dht::start`]; the saved state file makes that cheap. Lookup driving and periodic
//! housekeeping live in `node/lookups.rs` and `node/maintenance.rs`.

mod lookups;
mod maintenance;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use swarm_wire::InfoHash;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tracing::debug;

use crate::command::{Command, DhtError, DhtStats};
use crate::config::DhtConfig;
use crate::krpc::{
    Body, DecodeError, ErrorBody, Message, Method, Query, Response, MAX_MESSAGE_LEN,
};
use crate::lookup::Lookup;
use crate::node_id::{NodeId, NodeInfo};
use crate::peer_store::PeerStore;
use crate::persist;
use crate::rate_limit::SourceLimiter;
use crate::responder::Responder;
use crate::routing::{InsertOutcome, NodeStatus, RoutingTable};
use crate::socket::NodeSocket;
use crate::token::TokenSecrets;

/// How often query timeouts are checked; the resolution of `query_timeout`.
const TICK: Duration = Duration::from_millis(100);
const TID_LEN: usize = 4;

type Tid = [u8; TID_LEN];

/// Why we sent a query, so its answer (or silence) reaches the right place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// Liveness check or admission test; the answer alone updates the table.
    Ping,
    Lookup(u64),
    /// An announce_peer sent when lookup `.0` ended.
    Announce(u64),
}

struct Pending {
    addr: SocketAddr,
    /// The id we expect; `None` for bootstrap routers and `add_node` pings.
    id: Option<NodeId>,
    sent: Instant,
    purpose: Purpose,
}

enum LookupKind {
    Bootstrap,
    Refresh,
    FindNode(tokio::sync::oneshot::Sender<Vec<NodeInfo>>),
    GetPeers {
        stream: Option<mpsc::Sender<SocketAddr>>,
        done: Option<tokio::sync::oneshot::Sender<Vec<SocketAddr>>>,
    },
    Announce {
        port: Option<u16>,
        done: Option<tokio::sync::oneshot::Sender<crate::AnnounceOutcome>>,
    },
}

struct Running {
    lookup: Lookup,
    kind: LookupKind,
    started: Instant,
    /// Held until the lookup ends; bounds the handle's concurrent lookups.
    _permit: Option<OwnedSemaphorePermit>,
}

/// An announce whose announce_peer queries are out: the caller hears back once each was
/// answered or timed out.
struct AnnounceWait {
    info_hash: InfoHash,
    outstanding: usize,
    acknowledged: usize,
    peers: Vec<SocketAddr>,
    done: Option<tokio::sync::oneshot::Sender<crate::AnnounceOutcome>>,
    _permit: Option<OwnedSemaphorePermit>,
}

struct Registration {
    port: Option<u16>,
    next_announce: Instant,
}

#[derive(Default)]
struct Counters {
    queries_in: u64,
    queries_out: u64,
    responses_in: u64,
    errors_in: u64,
    timeouts: u64,
    throttled: u64,
    malformed: u64,
    unsolicited: u64,
}

pub(crate) struct Node {
    cfg: DhtConfig,
    socket: NodeSocket,
    local_addr: SocketAddr,
    table: RoutingTable,
    tokens: TokenSecrets,
    store: PeerStore,
    limiter: SourceLimiter,
    pending: HashMap<Tid, Pending>,
    lookups: HashMap<u64, Running>,
    announces: HashMap<u64, AnnounceWait>,
    next_lookup: u64,
    registered: HashMap<InfoHash, Registration>,
    bootstrap_addrs: Vec<SocketAddr>,
    /// Bootstrap host names are still being resolved: a lookup with no node at all to ask waits
    /// in `deferred` until they are.
    resolving: bool,
    deferred: Vec<(NodeId, LookupKind, Option<OwnedSemaphorePermit>)>,
    /// Nodes from the state file: seeds for the first bootstrap, and what we save again if
    /// the table is still empty at shutdown.
    saved_seeds: Vec<NodeInfo>,
    bootstrapped: bool,
    /// Table size when the last bootstrap ended, and how many warm-up bootstraps ran since
    /// start: while the table keeps changing between rounds, we bootstrap again (bounded).
    size_after_bootstrap: usize,
    warmup_rounds: u32,
    last_maintenance: Instant,
    last_save: Instant,
    outbox: Vec<(Vec<u8>, SocketAddr)>,
    counters: Counters,
}

impl Node {
    pub(crate) fn new(
        cfg: DhtConfig,
        own_id: NodeId,
        socket: NodeSocket,
        local_addr: SocketAddr,
        saved_seeds: Vec<NodeInfo>,
        bootstrap_addrs: Vec<SocketAddr>,
        resolving: bool,
    ) -> Self {
        let now = Instant::now();
        Node {
            table: RoutingTable::with_k(own_id, cfg.lookup.k.max(1), now),
            tokens: TokenSecrets::new(now),
            store: PeerStore::new(cfg.peer_store),
            limiter: SourceLimiter::new(cfg.rate_limit, cfg.max_rate_limited_sources),
            cfg,
            socket,
            local_addr,
            pending: HashMap::new(),
            lookups: HashMap::new(),
            announces: HashMap::new(),
            next_lookup: 0,
            registered: HashMap::new(),
            bootstrap_addrs,
            resolving,
            deferred: Vec::new(),
            saved_seeds,
            bootstrapped: false,
            size_after_bootstrap: 0,
            warmup_rounds: 0,
            last_maintenance: now,
            last_save: now,
            outbox: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // One byte more than we accept, so an oversized datagram is seen as such.
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown_reply = None;
        // Without host names to resolve, everything to bootstrap from is known now.
        if !self.resolving {
            self.start_bootstrap(Instant::now());
            self.flush().await;
        }
        loop {
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, from)) => self.on_datagram(&buf[..n], from, Instant::now()),
                    // ICMP errors can surface here on some platforms; they concern one peer.
                    Err(e) => debug!(error = %e, "DHT socket receive error"),
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(cmd) => self.on_command(cmd, Instant::now()),
                    // Every handle is gone: nobody can use or stop us any more.
                    None => break,
                },
                _ = tick.tick() => self.on_tick(Instant::now()),
            }
            self.flush().await;
        }
        if shutdown_reply.is_some() && self.cfg.state_file.is_some() {
            if let Err(e) = self.save(None) {
                tracing::warn!(error = %e, "could not save DHT state at shutdown");
            }
        }
        tracing::info!(local_addr = %self.local_addr, "DHT node stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    async fn flush(&mut self) {
        for (bytes, to) in std::mem::take(&mut self.outbox) {
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                debug!(%to, error = %e, "DHT send failed");
            }
        }
    }

    fn on_command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::GetPeers {
                info_hash,
                stream,
                done,
                permit,
            } => {
                let kind = LookupKind::GetPeers { stream, done };
                self.start_lookup(info_hash.into(), kind, Some(permit), now);
            }
            Command::Announce {
                info_hash,
                port,
                done,
                permit,
            } => {
                let kind = LookupKind::Announce {
                    port,
                    done: Some(done),
                };
                self.start_lookup(info_hash.into(), kind, Some(permit), now);
            }
            Command::FindNode {
                target,
                done,
                permit,
            } => {
                self.start_lookup(target, LookupKind::FindNode(done), Some(permit), now);
            }
            Command::AddNode(addr) => self.ping(addr, None, now),
            Command::Bootstrap(addrs) => {
                if let Some(mut addrs) = addrs {
                    addrs.sort();
                    addrs.dedup();
                    addrs.truncate(32);
                    self.bootstrap_addrs = addrs;
                    self.resolving = false;
                }
                self.start_bootstrap(now);
                for (target, kind, permit) in std::mem::take(&mut self.deferred) {
                    self.start_lookup(target, kind, permit, now);
                }
            }
            Command::Register { info_hash, port } => {
                self.registered.insert(
                    info_hash,
                    Registration {
                        port,
                        next_announce: now,
                    },
                );
                if self.bootstrapped {
                    self.announce_due(now);
                }
            }
            Command::Unregister(info_hash) => {
                self.registered.remove(&info_hash);
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats(now));
            }
            Command::Snapshot(reply) => {
                let _ = reply.send(self.table.snapshot(now));
            }
            Command::Save { path, done } => {
                let _ = done.send(self.save(path));
            }
            // The run loop takes Shutdown before it gets here.
            Command::Shutdown(_) => {}
        }
    }

    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) {
        let msg = match Message::decode(bytes) {
            Ok(msg) => msg,
            Err(DecodeError::BadQuery { tid, reason }) => {
                self.counters.malformed += 1;
                debug!(%from, reason, "bad DHT query");
                if self.admit_query(from, now) {
                    let err = ErrorBody {
                        code: crate::krpc::ERR_PROTOCOL,
                        message: reason.into(),
                    };
                    self.reply(tid, Body::Error(err), from);
                }
                return;
            }
            Err(e) => {
                self.counters.malformed += 1;
                debug!(%from, error = %e, "dropped malformed DHT datagram");
                // Garbage spends the sender's budget too, so a flood of it is cheap to drop.
                self.limiter.allow(from, now);
                return;
            }
        };
        match msg.body {
            Body::Query(q) => self.on_query(msg.tid, q, msg.read_only, from, now),
            Body::Response(r) => self.on_response(&msg.tid, r, from, now),
            Body::Error(e) => self.on_error(&msg.tid, e, from, now),
        }
    }

    /// Whether to answer a query from `from` at all.
    fn admit_query(&mut self, from: SocketAddr, now: Instant) -> bool {
        self.counters.queries_in += 1;
        // BEP 43: a read-only node answers nothing, so nobody puts it in a table.
        if self.cfg.read_only {
            return false;
        }
        if !self.limiter.allow(from, now) {
            self.counters.throttled += 1;
            return false;
        }
        true
    }

    fn on_query(
        &mut self,
        tid: Vec<u8>,
        q: Query,
        sender_read_only: bool,
        from: SocketAddr,
        now: Instant,
    ) {
        if !self.admit_query(from, now) {
            return;
        }
        // Read-only senders never enter the table (BEP 43); strangers are pinged first so a
        // forged source address cannot put a node there.
        if !sender_read_only && !self.table.record_query(&q.id, from, now) {
            self.verify(q.id, from, now);
        }
        let mut responder = Responder {
            table: &self.table,
            tokens: &mut self.tokens,
            store: &mut self.store,
            max_values: self.cfg.max_values_per_response,
        };
        let body = match responder.answer(&q, from, now) {
            Ok(r) => Body::Response(r),
            Err(e) => {
                debug!(%from, method = q.method.name(), code = e.code, msg = %e.message, "DHT query refused");
                Body::Error(e)
            }
        };
        self.reply(tid, body, from);
    }

    fn reply(&mut self, tid: Vec<u8>, body: Body, to: SocketAddr) {
        let msg = Message {
            tid,
            body,
            read_only: false,
        };
        match msg.encode() {
            Ok(bytes) => self.outbox.push((bytes, to)),
            Err(e) => debug!(error = %e, "could not encode DHT reply"),
        }
    }

    /// Takes the pending query `tid` if it was sent to `from`; anything else is unsolicited.
    fn take_pending(&mut self, tid: &[u8], from: SocketAddr) -> Option<Pending> {
        let key: Tid = tid.try_into().ok()?;
        match self.pending.get(&key) {
            Some(p) if p.addr == from => self.pending.remove(&key),
            _ => None,
        }
    }

    fn on_response(&mut self, tid: &[u8], r: Response, from: SocketAddr, now: Instant) {
        let Some(p) = self.take_pending(tid, from) else {
            self.counters.unsolicited += 1;
            return;
        };
        self.counters.responses_in += 1;
        let Some(id) = r.id else { return };
        if let InsertOutcome::Cached { ping } =
            self.table.record_response(NodeInfo { id, addr: from }, now)
        {
            for n in ping {
                self.ping(n.addr, Some(n.id), now);
            }
        }
        match p.purpose {
            Purpose::Lookup(lid) => {
                self.lookup_response(lid, from, id, r);
                self.advance(lid, now);
            }
            Purpose::Announce(aid) => self.announce_settled(aid, true),
            Purpose::Ping => {}
        }
    }

    fn on_error(&mut self, tid: &[u8], e: ErrorBody, from: SocketAddr, now: Instant) {
        let Some(p) = self.take_pending(tid, from) else {
            self.counters.unsolicited += 1;
            return;
        };
        self.counters.errors_in += 1;
        debug!(%from, code = e.code, msg = %e.message, purpose = ?p.purpose, "DHT error response");
        match p.purpose {
            Purpose::Lookup(lid) => {
                if let Some(run) = self.lookups.get_mut(&lid) {
                    run.lookup.on_failure(from);
                }
                self.advance(lid, now);
            }
            Purpose::Announce(aid) => self.announce_settled(aid, false),
            Purpose::Ping => {}
        }
    }

    fn on_tick(&mut self, now: Instant) {
        let timeout = self.cfg.query_timeout;
        let expired: Vec<Tid> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.sent) >= timeout)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in expired {
            let Some(p) = self.pending.remove(&tid) else {
                continue;
            };
            self.counters.timeouts += 1;
            if let Some(id) = p.id {
                if let Some(promoted) = self.table.record_failure(&id, now) {
                    debug!(failed = %p.addr, promoted = %promoted.addr, "DHT node replaced");
                }
            }
            match p.purpose {
                Purpose::Lookup(lid) => {
                    if let Some(run) = self.lookups.get_mut(&lid) {
                        run.lookup.on_failure(p.addr);
                    }
                    self.advance(lid, now);
                }
                Purpose::Announce(aid) => self.announce_settled(aid, false),
                Purpose::Ping => {}
            }
        }
        let overdue: Vec<u64> = self
            .lookups
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.started) >= self.cfg.lookup_timeout)
            .map(|(lid, _)| *lid)
            .collect();
        for lid in overdue {
            self.finish(lid, now);
        }
        if now.saturating_duration_since(self.last_maintenance) >= self.cfg.maintenance_interval {
            self.last_maintenance = now;
            self.maintain(now);
        }
    }

    /// Sends a query; false when it could not be sent (too many in flight).
    fn send_query(
        &mut self,
        addr: SocketAddr,
        id: Option<NodeId>,
        method: Method,
        purpose: Purpose,
        now: Instant,
    ) -> bool {
        if self.pending.len() >= self.cfg.max_pending_queries
            || addr.is_ipv6() != self.local_addr.is_ipv6()
        {
            return false;
        }
        let mut rng = rand::thread_rng();
        let tid = loop {
            let t: Tid = rng.gen();
            if !self.pending.contains_key(&t) {
                break t;
            }
        };
        let msg = Message {
            tid: tid.to_vec(),
            body: Body::Query(Query {
                id: self.table.own_id(),
                method,
            }),
            read_only: self.cfg.read_only,
        };
        let Ok(bytes) = msg.encode() else {
            return false;
        };
        self.outbox.push((bytes, addr));
        self.pending.insert(
            tid,
            Pending {
                addr,
                id,
                sent: now,
                purpose,
            },
        );
        self.counters.queries_out += 1;
        true
    }

    fn is_pending_to(&self, addr: SocketAddr) -> bool {
        self.pending.values().any(|p| p.addr == addr)
    }

    fn ping(&mut self, addr: SocketAddr, id: Option<NodeId>, now: Instant) {
        if !self.is_pending_to(addr) {
            self.send_query(addr, id, Method::Ping, Purpose::Ping, now);
        }
    }

    /// Pings a node that queried us, so that it can enter the table once it answers, if it
    /// would find a place there. Leaves half the query slots to our own lookups.
    fn verify(&mut self, id: NodeId, addr: SocketAddr, now: Instant) {
        let room = self.pending.len() < self.cfg.max_pending_queries / 2;
        if room && self.table.would_admit(&id, now) {
            self.ping(addr, Some(id), now);
        }
    }

    fn stats(&self, now: Instant) -> DhtStats {
        let c = &self.counters;
        DhtStats {
            node_id: self.table.own_id().to_hex(),
            local_addr: Some(self.local_addr),
            bootstrapped: self.bootstrapped,
            nodes: self.table.len(),
            good_nodes: self.table.count_status(NodeStatus::Good, now),
            questionable_nodes: self.table.count_status(NodeStatus::Questionable, now),
            buckets: self.table.bucket_count(),
            replacement_nodes: self.table.replacement_count(),
            peer_store_info_hashes: self.store.info_hash_count(),
            peer_store_peers: self.store.peer_count(),
            registered: self.registered.len(),
            active_lookups: self.lookups.len(),
            pending_queries: self.pending.len(),
            queries_in: c.queries_in,
            queries_out: c.queries_out,
            responses_in: c.responses_in,
            errors_in: c.errors_in,
            timeouts: c.timeouts,
            throttled: c.throttled,
            malformed: c.malformed,
            unsolicited: c.unsolicited,
        }
    }

    /// Writes id and table. Synchronous on purpose: the file is small (tens of KB at most)
    /// and this keeps the state from changing under the writer.
    fn save(&mut self, path: Option<std::path::PathBuf>) -> Result<(), DhtError> {
        let path = path
            .or_else(|| self.cfg.state_file.clone())
            .ok_or(DhtError::NoStateFile)?;
        let now = Instant::now();
        let mut nodes: Vec<NodeInfo> = self
            .table
            .nodes()
            .filter(|n| n.status(now) != NodeStatus::Bad)
            .map(|n| n.info())
            .collect();
        if nodes.is_empty() {
            nodes = self.saved_seeds.clone();
        }
        let state = persist::SavedState {
            node_id: self.table.own_id(),
            nodes,
        };
        persist::save(&path, &state)?;
        self.last_save = now;
        Ok(())
    }
}
