//! # MagnetFetch — one actor per magnet link still without metadata
//!
//! Owns: the magnet (info-hash, `tr=` trackers, `x.pe` peers), the BEP 9 state machine
//! ([`MetadataFetch`]) and a few light connections that speak only the handshake, the extension
//! handshake and `ut_metadata` (tokio tasks, one per peer, bounded in number and time). They
//! are dialled as a torrent's peers are (`torrent/peer/connect.rs`: the configured transports in
//! order, TCP or uTP, and the encryption policy), so a peer reachable over uTP only, or one that
//! requires MSE, gives its metadata too.
//!
//! Takes: `PeersFound` (from the announcer, for the `tr=` trackers) and the events of its
//! connections. Peers also come from `x.pe` and the DHT. Sends: `MetadataFetched` to the root,
//! which replaces this actor by a normal torrent (keeping the peers found), then it stops.
//! Supervised by: the root (transient). A crash costs the pieces fetched so far; the root
//! restarts it and it starts over.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::peer::extension::{ExtendedHandshake, MetadataMsg, LOCAL_UT_METADATA, UT_METADATA};
use swarm_wire::peer::{Handshake, Message, PeerCodec};
use swarm_wire::{InfoHash, Magnet, Metainfo};
use tokio::sync::mpsc;
use tokio_util::codec::FramedWrite;

use crate::metadata::MetadataFetch;
use crate::services::announcer::{Announcer, Track, Untrack};
use crate::services::dht::DhtSlot;
use crate::services::udp_port::UdpSlot;
use crate::services::ServiceRef;
use crate::torrent::messages::{Dial, PeersFound};
use crate::torrent::peer::connect::{self, Dialer, Established};
use crate::torrent::peer::encryption::PolicyCell;
use crate::torrent::peer::transport::{self, Transport, TransportKind};

/// Connections at once while fetching metadata.
const MAX_CONNECTIONS: usize = 8;
/// A metadata connection gives up after this long.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(90);

/// How metadata connections are dialled: what a torrent's peers get from `TorrentShared`, and
/// our own peer port (an address with it on loopback is ourselves, never dialled).
#[derive(Clone)]
pub struct MagnetDial {
    pub listen_port: u16,
    pub transports: Arc<[TransportKind]>,
    /// The UDP port, for its uTP endpoint at the time of each dial (it changes on a restart).
    pub udp: UdpSlot,
    pub encryption: PolicyCell,
    /// Addresses it refuses (the session's IP blocklist).
    pub blocklist: crate::blocklist::Blocklist,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
}

impl MagnetDial {
    fn dialer(&self) -> Dialer {
        Dialer {
            order: self.transports.clone(),
            utp: self.udp.utp(),
            policy: self.encryption.get(),
            connect_timeout: self.connect_timeout,
            handshake_timeout: self.handshake_timeout,
        }
    }
}

pub struct MagnetFetch {
    magnet: Magnet,
    peer_id: [u8; 20],
    dial: MagnetDial,
    fetch: MetadataFetch,
    known: HashSet<SocketAddr>,
    queue: Vec<SocketAddr>,
    conns: HashMap<u64, (SocketAddr, mpsc::UnboundedSender<u32>)>,
    /// Connections past their handshakes (what `peers` shows), with their transport and whether
    /// they are encrypted.
    ready: HashMap<u64, (TransportKind, bool)>,
    next_key: u64,
    dht_waits: u32,
    announcer: ServiceRef<Announcer>,
    dht: DhtSlot,
    done: Recipient<MetadataFetched>,
    link: ChildLink,
}

/// The verified metadata of a magnet link, for the root.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MetadataFetched {
    pub meta: Metainfo,
    pub peers: Vec<SocketAddr>,
}

impl MagnetFetch {
    pub fn new(
        magnet: Magnet,
        peer_id: [u8; 20],
        dial: MagnetDial,
        announcer: ServiceRef<Announcer>,
        dht: DhtSlot,
        done: Recipient<MetadataFetched>,
        link: ChildLink,
    ) -> Self {
        let fetch = MetadataFetch::new(magnet.info_hash.0);
        MagnetFetch {
            magnet,
            peer_id,
            dial,
            fetch,
            known: HashSet::new(),
            queue: Vec::new(),
            conns: HashMap::new(),
            ready: HashMap::new(),
            next_key: 1,
            dht_waits: 0,
            announcer,
            dht,
            done,
            link,
        }
    }

    fn add_peers(&mut self, addrs: impl IntoIterator<Item = SocketAddr>, ctx: &mut Context<Self>) {
        for a in addrs {
            if self.dial.blocklist.refuses(a.ip(), "magnet peer") {
                continue;
            }
            let ourselves = a.port() == self.dial.listen_port && a.ip().is_loopback();
            if !ourselves && a.port() != 0 && self.known.len() < 1000 && self.known.insert(a) {
                self.queue.push(a);
            }
        }
        self.connect_more(ctx);
    }

    fn connect_more(&mut self, ctx: &mut Context<Self>) {
        while self.conns.len() < MAX_CONNECTIONS {
            let Some(addr) = self.queue.pop() else { return };
            let key = self.next_key;
            self.next_key += 1;
            let (tx, rx) = mpsc::unbounded_channel();
            self.conns.insert(key, (addr, tx));
            let (ih, id, me) = (self.magnet.info_hash, self.peer_id, ctx.address());
            let way = self.dial.dialer();
            actix::spawn(async move {
                let res = tokio::time::timeout(
                    CONNECTION_LIFETIME,
                    talk(addr, ih, id, key, me.clone(), way, rx),
                )
                .await;
                let reason = match res {
                    Ok(Ok(())) => "closed".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".to_string(),
                };
                me.do_send(ConnEvent {
                    key,
                    event: Event::Gone(reason),
                });
            });
        }
    }

    fn request_more(&mut self, key: u64) {
        let Some((_, tx)) = self.conns.get(&key) else {
            return;
        };
        for piece in self.fetch.next_requests(key, 4, Instant::now()) {
            let _ = tx.send(piece);
        }
    }

    fn lookup_dht(&mut self, ctx: &mut Context<Self>) {
        let Some(dht) = self.dht.get() else {
            // The node may still be starting: look again shortly (not forever: it may be off).
            if self.dht_waits < 10 {
                self.dht_waits += 1;
                ctx.run_later(Duration::from_secs(1), |act, ctx| act.lookup_dht(ctx));
            }
            return;
        };
        let ih = self.magnet.info_hash;
        ctx.spawn(
            async move { dht.get_peers(ih).await.unwrap_or_default() }
                .into_actor(self)
                .map(|addrs, act, ctx| act.add_peers(addrs, ctx)),
        );
    }
}

impl Actor for MagnetFetch {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let ih = self.magnet.info_hash;
        tracing::info!(info_hash = %ih, "fetching metadata for a magnet link");
        if !self.magnet.trackers.is_empty() {
            let tiers = self
                .magnet
                .trackers
                .iter()
                .map(|t| vec![t.clone()])
                .collect();
            self.announcer.do_send(Track {
                info_hash: ih,
                tiers,
                to: ctx.address().recipient(),
                left: 1,
                private: false,
            });
        }
        let direct = self.magnet.peers.clone();
        self.add_peers(direct, ctx);
        self.lookup_dht(ctx);
        ctx.run_interval(Duration::from_secs(5), |act, ctx| {
            let keys: Vec<u64> = act.fetch.askable_peers(Instant::now());
            for k in keys {
                act.request_more(k);
            }
            act.connect_more(ctx);
        });
        ctx.run_interval(Duration::from_secs(30), |act, ctx| act.lookup_dht(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.announcer.do_send(Untrack {
            info_hash: self.magnet.info_hash,
        });
    }
}

impl Handler<PeersFound> for MagnetFetch {
    type Result = ();

    fn handle(&mut self, msg: PeersFound, ctx: &mut Context<Self>) {
        self.add_peers(msg.addrs, ctx);
    }
}

impl Handler<Terminate> for MagnetFetch {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}

enum Event {
    /// Extension handshake: the peer's metadata size (if it has the metadata), over what.
    Ready {
        size: Option<u32>,
        kind: TransportKind,
        encrypted: bool,
    },
    Data {
        piece: u32,
        total: u32,
        data: Bytes,
    },
    Reject(u32),
    Gone(String),
}

#[derive(Message)]
#[rtype(result = "()")]
struct ConnEvent {
    key: u64,
    event: Event,
}

impl Handler<ConnEvent> for MagnetFetch {
    type Result = ();

    fn handle(&mut self, msg: ConnEvent, ctx: &mut Context<Self>) {
        let key = msg.key;
        match msg.event {
            Event::Ready {
                size,
                kind,
                encrypted,
            } => {
                self.ready.insert(key, (kind, encrypted));
                if size.is_some_and(|size| self.fetch.on_peer_metadata_size(key, size)) {
                    self.request_more(key);
                }
            }
            Event::Data { piece, total, data } => {
                match self.fetch.on_data(key, piece, total, &data) {
                    Ok(Some(info)) => {
                        let trackers = self
                            .magnet
                            .trackers
                            .iter()
                            .map(|t| vec![t.clone()])
                            .collect();
                        match Metainfo::from_info_bytes(&info, trackers) {
                            Ok(meta) => {
                                tracing::info!(torrent = %meta.info.name, "metadata fetched");
                                let peers = self.known.iter().copied().collect();
                                self.done.do_send(MetadataFetched { meta, peers });
                                self.link.set_reason(ExitReason::Normal);
                                ctx.stop();
                            }
                            Err(e) => {
                                // The hash matched, so this is what the magnet names: a bad torrent.
                                self.link
                                    .fail(format!("the magnet's metadata is invalid: {e}"));
                                ctx.stop();
                            }
                        }
                    }
                    Ok(None) => self.request_more(key),
                    Err(e) => {
                        tracing::debug!(peer = key, "metadata: {e}");
                        self.conns.remove(&key);
                        self.ready.remove(&key);
                        self.fetch.on_peer_gone(key);
                    }
                }
            }
            Event::Reject(piece) => self.fetch.on_reject(key, piece, Instant::now()),
            Event::Gone(reason) => {
                self.ready.remove(&key);
                if let Some((addr, _)) = self.conns.remove(&key) {
                    tracing::debug!(peer = %addr, %reason, "metadata connection ended");
                }
                self.fetch.on_peer_gone(key);
                self.connect_more(ctx);
            }
        }
    }
}

/// The peers a magnet is talking to for its metadata (for `peers`).
#[derive(Message)]
#[rtype(result = "Vec<swarm_model::PeerInfo>")]
pub struct GetMagnetPeers;

impl Handler<GetMagnetPeers> for MagnetFetch {
    type Result = MessageResult<GetMagnetPeers>;

    fn handle(&mut self, _: GetMagnetPeers, _: &mut Context<Self>) -> Self::Result {
        let mut peers: Vec<swarm_model::PeerInfo> = self
            .ready
            .iter()
            .filter_map(|(k, way)| Some((self.conns.get(k)?, way)))
            .map(|((addr, _), &(kind, encrypted))| swarm_model::PeerInfo {
                addr: addr.to_string(),
                client: String::new(),
                direction: "outgoing".into(),
                source: "magnet".into(),
                transport: kind.as_str().into(),
                progress: 0.0,
                download_rate: 0,
                upload_rate: 0,
                downloaded: 0,
                uploaded: 0,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                requests_in_flight: 0,
                encrypted,
            })
            .collect();
        peers.sort_by(|a, b| a.addr.cmp(&b.addr));
        MessageResult(peers)
    }
}

/// One metadata connection: handshake (over the transports and with the encryption a
/// torrent's peer would use), extension handshake, then `ut_metadata` requests as the actor
/// hands them out, and data back.
async fn talk(
    addr: SocketAddr,
    ih: InfoHash,
    peer_id: [u8; 20],
    key: u64,
    actor: Addr<MagnetFetch>,
    way: Dialer,
    mut requests: mpsc::UnboundedReceiver<u32>,
) -> std::io::Result<()> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let ours = Handshake::new(ih, peer_id).with_extensions().with_fast();
    let Established {
        transport,
        kind,
        theirs,
        leftover,
        ..
    } = connect::establish(addr, Dial::Outgoing { worked: None }, ours, way).await?;
    if !theirs.supports_extensions() {
        return Err(bad("peer without the extension protocol"));
    }
    let Transport {
        read,
        write,
        encrypted,
    } = transport;
    let frames = transport::frames(read, leftover, PeerCodec::new(64 * 1024));
    tokio::pin!(frames);
    let mut framed = FramedWrite::new(write, PeerCodec::new(64 * 1024));
    let mut ext = ExtendedHandshake::ours();
    ext.v = Some(format!("swarmd {}", env!("CARGO_PKG_VERSION")));
    framed
        .send(Message::Extended {
            id: 0,
            payload: ext.encode(),
        })
        .await
        .map_err(|e| bad(&e.to_string()))?;
    // Some clients only answer to interested peers.
    framed
        .send(Message::Interested)
        .await
        .map_err(|e| bad(&e.to_string()))?;
    let mut their_id: Option<u8> = None;
    loop {
        tokio::select! {
            frame = frames.next() => {
                let Some(frame) = frame else { return Ok(()) };
                match frame.map_err(|e| bad(&e.to_string()))? {
                    Message::Extended { id: 0, payload } => {
                        let hs = ExtendedHandshake::decode(&payload).map_err(|e| bad(&e.to_string()))?;
                        their_id = hs.id_of(UT_METADATA);
                        if their_id.is_none() {
                            return Err(bad("peer does not offer ut_metadata"));
                        }
                        let event = Event::Ready { size: hs.metadata_size, kind, encrypted };
                        actor.do_send(ConnEvent { key, event });
                    }
                    Message::Extended { id, payload } if id == LOCAL_UT_METADATA => {
                        let event = match MetadataMsg::decode(&payload).map_err(|e| bad(&e.to_string()))? {
                            MetadataMsg::Data { piece, total_size, data } => Event::Data { piece, total: total_size, data },
                            MetadataMsg::Reject { piece } => Event::Reject(piece),
                            MetadataMsg::Request { .. } => continue,
                        };
                        actor.do_send(ConnEvent { key, event });
                    }
                    _ => {}
                }
            }
            piece = requests.recv() => {
                let Some(piece) = piece else { return Ok(()) };
                let Some(id) = their_id else { continue };
                let payload = MetadataMsg::Request { piece }.encode();
                framed.send(Message::Extended { id, payload }).await.map_err(|e| bad(&e.to_string()))?;
            }
        }
    }
}

/// What the root keeps of a magnet link being fetched.
#[derive(Clone, Debug)]
pub struct MagnetEntry {
    pub magnet: Magnet,
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    pub added_at: i64,
    /// The user's labels, handed to the torrent the magnet becomes.
    pub labels: Vec<String>,
}
