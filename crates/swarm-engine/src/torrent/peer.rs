//! # PeerConn — one actor per peer connection
//!
//! Owns: the connection's transport (`peer/transport.rs`: TCP or uTP, plaintext or encrypted with
//! MSE (`peer/encryption.rs`); any byte stream without changing this file; made and handshaken
//! by `peer/connect.rs`), read as a stream decoded by `PeerCodec`
//! and written by a writer task with a byte count (`peer/writer.rs`); the peer's view of our
//! pieces (a copy of the torrent's have-bitfield, updated by `Have` orders), the queue of blocks
//! the peer asked us for, keep-alive and idle timers.
//!
//! Takes: [`ToPeer`] orders from its torrent. Sends: [`FromPeer`] events to its torrent, through
//! the torrent's [`TorrentInbox`] (it never names the torrent actor's type).
//! Supervised by: its torrent (a child with a supervision link; the policy is declared in
//! `torrent/supervisor.rs`). Outgoing connections are re-dialled with backoff when this actor
//! crashes; incoming ones are simply dropped.
//! A crash costs: the requests in flight on this connection (the torrent hands them to other
//! peers) and nothing else.
//!
//! The download decisions (what to request, interest) are the torrent's: this actor is the
//! socket's shell. Uploads are served here directly from the disk pool, within bounds: at most
//! `max_upload_queue` requests queued (the advertised `reqq`) and `max_write_queue_bytes` bytes
//! waiting on the socket; a peer that goes past the request bound is disconnected.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use swarm_supervisor::{ChildLink, ExitReason, Terminate};
use swarm_wire::peer::extension::{
    ExtendedHandshake, MetadataMsg, PexMessage, LOCAL_UT_METADATA, LOCAL_UT_PEX, UT_METADATA,
    UT_PEX,
};
use swarm_wire::peer::{BlockRef, Handshake, Message, PeerCodec, WireError, BLOCK_SIZE};

use crate::bitfield::Bitfield;
use crate::services::rate_limiter::{Allowance, Direction, RequestQuota, Spend};
use crate::torrent::messages::{Dial, FromPeer, GetHave, PeerEvent, PeerKey, ToPeer, TorrentInbox};
use crate::torrent::shared::TorrentShared;

pub(crate) mod connect;
pub mod encryption;
pub mod transport;
mod writer;

use connect::{Dialer, Established};
use transport::Transport;
use writer::{Drained, Writer};

pub struct PeerConn {
    key: PeerKey,
    addr: SocketAddr,
    shared: Arc<TorrentShared>,
    torrent: TorrentInbox,
    link: ChildLink,
    dial: Option<Dial>,
    have: Bitfield,
    am_choking: bool,
    peer_fast: bool,
    /// The peer's id for `ut_metadata`, from its extension handshake.
    their_metadata_id: Option<u8>,
    /// Rate-limit quota, spent locally and topped up by the limiter in batches.
    up_quota: Allowance,
    down_quota: Allowance,
    /// Requests ordered by the torrent, waiting for download quota.
    held_requests: VecDeque<BlockRef>,
    /// Our allowed-fast set for this peer (BEP 6).
    allowed_fast: Vec<u32>,
    uploads: VecDeque<BlockRef>,
    reads_in_flight: usize,
    writer: Option<Writer>,
    last_recv: Instant,
    last_send: Instant,
    uploaded_unreported: u64,
    /// Blocks sent on this connection.
    blocks_sent: u64,
    /// The pending tick and its step in seconds.
    next_tick: super::ticker::Ticker,
}

/// Seconds between the ticks of a peer we are not uploading to: keep-alives (every 90 s) and
/// the idle timeout need no more, and 200 idle peers ticking every second cost more than
/// anything else they do. A request brings back the 1 s tick (upload accounting).
const IDLE_PEER_TICK: u64 = 10;

impl PeerConn {
    pub fn new(
        key: PeerKey,
        addr: SocketAddr,
        dial: Dial,
        shared: Arc<TorrentShared>,
        torrent: TorrentInbox,
        link: ChildLink,
    ) -> Self {
        // The real bitfield comes from the torrent once the handshake is done (`GetHave`).
        let have = Bitfield::new(shared.storage.info.num_pieces());
        let gate = shared.gate.clone();
        let now = Instant::now();
        PeerConn {
            key,
            addr,
            shared,
            torrent,
            link,
            dial: Some(dial),
            have,
            am_choking: true,
            peer_fast: false,
            their_metadata_id: None,
            up_quota: Allowance::new(gate.clone(), Direction::Up),
            down_quota: Allowance::new(gate, Direction::Down),
            held_requests: VecDeque::new(),
            allowed_fast: Vec::new(),
            uploads: VecDeque::new(),
            reads_in_flight: 0,
            writer: None,
            last_recv: now,
            last_send: now,
            uploaded_unreported: 0,
            blocks_sent: 0,
            next_tick: Default::default(),
        }
    }

    fn fail(&mut self, ctx: &mut Context<Self>, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::debug!(peer = %self.addr, %reason, "peer connection ends");
        self.link.set_reason(ExitReason::Error(reason));
        ctx.stop();
    }

    fn emit(&self, event: PeerEvent) {
        self.torrent.events.do_send(FromPeer {
            key: self.key,
            event,
        });
    }

    fn send(&mut self, msg: Message) {
        if let Some(w) = &mut self.writer {
            w.send(msg);
            self.last_send = Instant::now();
        }
    }

    fn on_established(&mut self, ctx: &mut Context<Self>, est: Established) {
        let Established {
            transport,
            kind,
            theirs,
            leftover,
            sent: handed,
        } = est;
        if theirs.peer_id == self.shared.peer_id {
            return self.fail(ctx, "connected to ourselves");
        }
        let Transport {
            read,
            write,
            encrypted,
        } = transport;
        self.writer = Some(Writer::start(
            ctx,
            write,
            handed,
            self.shared.clone(),
            ctx.address().recipient(),
            self.shared.max_frame,
            |act: &mut Self, ctx, e| act.fail(ctx, format!("write failed: {e}")),
        ));
        let codec = PeerCodec::new(self.shared.max_frame);
        ctx.add_stream(transport::frames(read, leftover, codec));

        self.peer_fast = theirs.supports_fast();
        if theirs.supports_extensions() {
            let mut ext = ExtendedHandshake::ours();
            if self.shared.storage.info.private {
                // BEP 27: no peer exchange on private torrents.
                ext.m.remove(UT_PEX);
            }
            ext.v = Some(format!("swarmd {}", env!("CARGO_PKG_VERSION")));
            ext.reqq = Some(self.shared.max_upload_queue as u32);
            ext.p = Some(self.shared.listen_port);
            ext.metadata_size = crate::metadata::announced_size(Some(&self.shared.info_bytes));
            self.send(Message::Extended {
                id: 0,
                payload: ext.encode(),
            });
        }
        self.send_have_state();
        if self.peer_fast {
            let n = self.have.len();
            self.allowed_fast = crate::allowed_fast::allowed_fast_set_for(
                self.addr.ip(),
                &self.shared.info_hash.0,
                n,
                crate::allowed_fast::DEFAULT_ALLOWED_FAST,
            );
            for i in self.allowed_fast.clone() {
                self.send(Message::AllowedFast(i));
            }
        }
        if let Some(port) = self.dht_port().filter(|_| theirs.supports_dht()) {
            self.send(Message::Port(port));
        }
        self.emit(PeerEvent::Connected {
            addr: ctx.address().recipient(),
            peer_id: theirs.peer_id,
            fast: self.peer_fast,
            extensions: None,
            encrypted,
            transport: kind,
        });
        self.schedule_tick(ctx);
    }

    /// Our DHT node's port, to advertise (the handshake's DHT bit) and send (`port`, BEP 5) to
    /// this peer. `None` for a private torrent: BEP 27 keeps private torrents off the DHT, and a
    /// `port` message would invite the peer to look us up there.
    fn dht_port(&self) -> Option<u16> {
        if self.shared.storage.info.private {
            return None;
        }
        self.shared.dht.port()
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        let uploading =
            self.uploaded_unreported > 0 || !self.uploads.is_empty() || self.reads_in_flight > 0;
        let step = if uploading { 1 } else { IDLE_PEER_TICK };
        self.next_tick.arm(
            ctx,
            step,
            Duration::from_secs(step),
            move |act: &mut Self, ctx| {
                act.next_tick.fired();
                act.tick(ctx);
                act.schedule_tick(ctx);
            },
        );
    }

    /// Back to the 1 s tick now, rather than after up to [`IDLE_PEER_TICK`] seconds.
    fn wake_tick(&mut self, ctx: &mut Context<Self>) {
        if self.next_tick.cancel_slow(ctx) {
            self.schedule_tick(ctx);
        }
    }

    fn send_have_state(&mut self) {
        let (count, len) = (self.have.count(), self.have.len());
        if self.peer_fast && count == len {
            self.send(Message::HaveAll);
        } else if self.peer_fast && count == 0 {
            self.send(Message::HaveNone);
        } else if count > 0 {
            self.send(Message::Bitfield(self.have.to_bytes()));
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if now.duration_since(self.last_recv) > self.shared.idle_timeout {
            return self.fail(ctx, "idle timeout");
        }
        if now.duration_since(self.last_send) > Duration::from_secs(90) {
            self.send(Message::KeepAlive);
        }
        if self.uploaded_unreported > 0 {
            let n = std::mem::take(&mut self.uploaded_unreported);
            self.emit(PeerEvent::Uploaded(n));
        }
    }

    fn on_message(&mut self, msg: Message, ctx: &mut Context<Self>) {
        match msg {
            Message::KeepAlive => {}
            Message::Piece { index, begin, data } => {
                crate::fault::maybe_panic("peer.block");
                self.shared.transferred.add_downloaded(data.len() as u64);
                let block = BlockRef {
                    index,
                    begin,
                    length: data.len() as u32,
                };
                let event = FromPeer {
                    key: self.key,
                    event: PeerEvent::Block { block, data },
                };
                // The hot path: a bounded mailbox; when the torrent lags, stop reading this socket
                // until it has room (back-pressure instead of buffering).
                match self.torrent.events.try_send(event) {
                    Ok(()) => {}
                    Err(SendError::Full(event)) => {
                        ctx.wait(self.torrent.events.send(event).into_actor(self).map(
                            |res, act, ctx| {
                                if res.is_err() {
                                    act.fail(ctx, "torrent is gone");
                                }
                            },
                        ));
                    }
                    Err(SendError::Closed(_)) => self.fail(ctx, "torrent is gone"),
                }
            }
            Message::Choke => {
                if !self.peer_fast {
                    // The torrent forgets every request on a choke; so do we.
                    self.held_requests.clear();
                }
                self.emit(PeerEvent::Choked)
            }
            Message::Unchoke => self.emit(PeerEvent::Unchoked),
            Message::Interested => self.emit(PeerEvent::Interested(true)),
            Message::NotInterested => self.emit(PeerEvent::Interested(false)),
            Message::Have(i) => {
                if i >= self.have.len() {
                    return self.fail(ctx, format!("have for piece {i} out of range"));
                }
                self.emit(PeerEvent::Have(i));
            }
            Message::Bitfield(bytes) => match Bitfield::from_wire(&bytes, self.have.len()) {
                Some(bf) => self.emit(PeerEvent::Bitfield(bf)),
                None => self.fail(ctx, "malformed bitfield"),
            },
            Message::HaveAll if self.peer_fast => {
                self.emit(PeerEvent::Bitfield(Bitfield::full(self.have.len())))
            }
            Message::HaveNone if self.peer_fast => {
                self.emit(PeerEvent::Bitfield(Bitfield::new(self.have.len())))
            }
            Message::Request(r) => {
                self.on_request(r, ctx);
                self.wake_tick(ctx);
            }
            Message::Cancel(r) => self.uploads.retain(|q| *q != r),
            Message::Reject(r) if self.peer_fast => self.emit(PeerEvent::Rejected(r)),
            Message::Port(p) => self.emit(PeerEvent::DhtPort(p)),
            // BEP 6: a suggestion is only a hint; we keep picking rarest first.
            Message::Suggest(_) if self.peer_fast => {}
            Message::AllowedFast(i) if self.peer_fast => {
                if i >= self.have.len() {
                    return self.fail(ctx, format!("allowed fast for piece {i} out of range"));
                }
                self.emit(PeerEvent::AllowedFast(i));
            }
            Message::Extended { id: 0, payload } => match ExtendedHandshake::decode(&payload) {
                Ok(ext) => {
                    self.their_metadata_id = ext.id_of(UT_METADATA);
                    self.emit(PeerEvent::Extensions(ext));
                }
                Err(e) => self.fail(ctx, format!("bad extension handshake: {e}")),
            },
            Message::Extended { id, payload } if id == LOCAL_UT_METADATA => {
                self.on_metadata_message(&payload, ctx)
            }
            Message::Extended { id, payload }
                if id == LOCAL_UT_PEX && !self.shared.storage.info.private =>
            {
                match PexMessage::decode(&payload) {
                    Ok(pex) => self.emit(PeerEvent::Pex(pex)),
                    Err(e) => tracing::debug!(peer = %self.addr, "bad ut_pex message: {e}"),
                }
            }
            // Extensions we did not offer: ignored, as BEP 10 allows.
            Message::Extended { .. } => {}
            other => self.fail(
                ctx,
                format!("fast-extension message {other:?} without the fast bit"),
            ),
        }
    }

    /// BEP 9: we serve our info dictionary to peers that ask (magnet-link users).
    fn on_metadata_message(&mut self, payload: &Bytes, ctx: &mut Context<Self>) {
        match MetadataMsg::decode(payload) {
            Ok(MetadataMsg::Request { piece }) => {
                let Some(id) = self.their_metadata_id else {
                    return;
                };
                let reply = crate::metadata::serve_request(Some(&self.shared.info_bytes), piece);
                self.send(Message::Extended {
                    id,
                    payload: reply.encode(),
                });
            }
            // We have the metadata already: data and rejects are not for us.
            Ok(_) => {}
            Err(e) => self.fail(ctx, format!("bad ut_metadata message: {e}")),
        }
    }

    fn on_request(&mut self, r: BlockRef, ctx: &mut Context<Self>) {
        let valid = r.length > 0
            && r.length <= BLOCK_SIZE * 2
            && self.have.get(r.index)
            && r.begin
                .checked_add(r.length)
                .is_some_and(|end| end <= self.shared.storage.info.piece_len(r.index));
        // BEP 6: pieces in the allowed-fast set are served even while we choke the peer.
        let allowed = self.allowed_fast.contains(&r.index);
        if (self.am_choking && !allowed) || !valid {
            if self.peer_fast {
                self.send(Message::Reject(r));
            }
            return;
        }
        if self.uploads.len() >= self.shared.max_upload_queue {
            return self.fail(
                ctx,
                format!("more than {} requests queued", self.shared.max_upload_queue),
            );
        }
        self.uploads.push_back(r);
        self.pump_uploads(ctx);
    }

    /// Moves queued requests to the socket while the write queue has room.
    fn pump_uploads(&mut self, ctx: &mut Context<Self>) {
        loop {
            let Some(w) = &self.writer else { return };
            if w.queued() >= self.shared.max_write_queue_bytes || self.reads_in_flight >= 4 {
                return;
            }
            let Some(r) = self.uploads.pop_front() else {
                return;
            };
            match self.up_quota.spend(r.length as u64) {
                Spend::Go => {}
                Spend::Ask(want) => {
                    self.uploads.push_front(r);
                    return self.ask_quota(Direction::Up, want, ctx);
                }
                Spend::Wait => {
                    self.uploads.push_front(r);
                    return;
                }
            }
            let sid = self.shared.storage.id;
            if let Some(data) = self
                .shared
                .disk
                .cached_block(sid, r.index, r.begin, r.length)
            {
                self.send_block(r, data);
                continue;
            }
            self.reads_in_flight += 1;
            let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
            let read = async move { disk.read_block(storage, r.index, r.begin, r.length).await };
            ctx.spawn(read.into_actor(self).map(move |res, act, ctx| {
                act.reads_in_flight -= 1;
                match res {
                    Ok(data) if !act.am_choking || act.allowed_fast.contains(&r.index) => {
                        act.send_block(r, data)
                    }
                    // Choked while the block was read. BEP 6: a fast peer keeps its requests
                    // across a choke until each is answered or rejected; one left unanswered
                    // here was waited for until the peer's request timeout.
                    Ok(_) => {
                        if act.peer_fast {
                            act.send(Message::Reject(r));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer = %act.addr, piece = r.index, "reading a block to upload failed: {e}");
                        if act.peer_fast {
                            act.send(Message::Reject(r));
                        }
                    }
                }
                act.pump_uploads(ctx);
            }));
        }
    }

    /// Sends the requests the download quota pays for; the rest wait for the next grant.
    fn flush_requests(&mut self, ctx: &mut Context<Self>) {
        while let Some(b) = self.held_requests.front().copied() {
            match self.down_quota.spend(b.length as u64) {
                Spend::Go => {
                    self.held_requests.pop_front();
                    self.send(Message::Request(b));
                }
                Spend::Ask(want) => return self.ask_quota(Direction::Down, want, ctx),
                Spend::Wait => return,
            }
        }
    }

    /// Asks the rate limiter for a batch of quota; held transfers resume on the answer. Not
    /// `ctx.wait`: the socket keeps being read while we wait.
    fn ask_quota(&mut self, dir: Direction, want: u64, ctx: &mut Context<Self>) {
        let limiter = self.shared.limiter.get();
        let msg = RequestQuota {
            info_hash: self.shared.info_hash,
            dir,
            want,
        };
        let fut = async move {
            match limiter {
                Some(l) => l.send(msg).await.ok(),
                None => None,
            }
        };
        ctx.spawn(fut.into_actor(self).map(move |grant, act, ctx| {
            let quota = match dir {
                Direction::Up => &mut act.up_quota,
                Direction::Down => &mut act.down_quota,
            };
            let resume = move |act: &mut PeerConn, ctx: &mut Context<PeerConn>| match dir {
                Direction::Up => act.pump_uploads(ctx),
                Direction::Down => act.flush_requests(ctx),
            };
            match quota.granted(grant) {
                None => resume(act, ctx),
                Some(delay) => {
                    ctx.run_later(delay, move |act, ctx| resume(act, ctx));
                }
            }
        }));
    }

    fn send_block(&mut self, r: BlockRef, data: Bytes) {
        self.blocks_sent += 1;
        crate::fault::panic_at("peer.upload_after", self.blocks_sent);
        self.uploaded_unreported += data.len() as u64;
        if let Some(w) = &mut self.writer {
            w.send_piece(r.index, r.begin, data);
            self.last_send = Instant::now();
        }
    }
}

impl Actor for PeerConn {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Bounded mailbox for orders from the torrent; they are few per block.
        ctx.set_mailbox_capacity(1024);
        let Some(dial) = self.dial.take() else {
            return self.fail(ctx, "started twice");
        };
        let mut ours = Handshake::new(self.shared.info_hash, self.shared.peer_id)
            .with_extensions()
            .with_fast();
        if self.dht_port().is_some() {
            ours = ours.with_dht();
        }
        let way = Dialer {
            order: self.shared.transports.clone(),
            utp: self.shared.udp.utp(),
            policy: self.shared.encryption.get(),
            connect_timeout: self.shared.connect_timeout,
            handshake_timeout: self.shared.handshake_timeout,
        };
        let fut = connect::establish(self.addr, dial, ours, way);
        let have = self.torrent.have.clone();
        let fut = async move {
            let conn = fut.await?;
            let have = have
                .send(GetHave)
                .await
                .map_err(|_| io::Error::other("torrent is gone"))?;
            Ok::<_, io::Error>((conn, have))
        };
        ctx.wait(fut.into_actor(self).map(|res, act, ctx| match res {
            Ok((est, have)) => {
                act.have = have;
                act.on_established(ctx, est)
            }
            Err(e) => act.fail(ctx, format!("connecting: {e}")),
        }));
    }
}

impl StreamHandler<Result<Message, WireError>> for PeerConn {
    fn handle(&mut self, item: Result<Message, WireError>, ctx: &mut Context<Self>) {
        self.last_recv = Instant::now();
        match item {
            Ok(msg) => self.on_message(msg, ctx),
            Err(e) => return self.fail(ctx, format!("protocol error: {e}")),
        }
        // Uploads stop at `max_write_queue_bytes` (pump_uploads), but our answers to the peer's
        // own messages (a Reject per request while choked or invalid, a ut_metadata piece per
        // metadata request) are queued whatever the queue holds. A peer that keeps asking and
        // never reads would grow the queue without end: past twice the bound, it goes.
        let limit = 2 * self.shared.max_write_queue_bytes;
        if ctx.state() == ActorState::Running
            && self.writer.as_ref().is_some_and(|w| w.queued() > limit)
        {
            self.fail(
                ctx,
                format!("peer does not read: over {limit} bytes queued for it"),
            );
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.fail(ctx, "connection closed by peer");
    }
}

impl Handler<Terminate> for PeerConn {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}

impl Handler<ToPeer> for PeerConn {
    type Result = ();

    fn handle(&mut self, msg: ToPeer, ctx: &mut Context<Self>) {
        match msg {
            ToPeer::Request(blocks) => {
                self.held_requests.extend(blocks);
                self.flush_requests(ctx);
            }
            ToPeer::Cancel(b) => match self.held_requests.iter().position(|r| *r == b) {
                // Never sent: nothing to cancel on the wire.
                Some(i) => {
                    self.held_requests.remove(i);
                }
                None => self.send(Message::Cancel(b)),
            },
            ToPeer::Extended { id, payload } => self.send(Message::Extended { id, payload }),
            ToPeer::Interested(true) => self.send(Message::Interested),
            ToPeer::Interested(false) => self.send(Message::NotInterested),
            ToPeer::Choke(choke) => {
                if choke == self.am_choking {
                    return;
                }
                self.am_choking = choke;
                if choke {
                    self.send(Message::Choke);
                    // BEP 6: with the fast extension, queued requests are rejected explicitly,
                    // except those for allowed-fast pieces, which are still served.
                    let (keep, rejected): (VecDeque<_>, VecDeque<_>) =
                        std::mem::take(&mut self.uploads)
                            .into_iter()
                            .partition(|r| self.peer_fast && self.allowed_fast.contains(&r.index));
                    self.uploads = keep;
                    for r in rejected {
                        if self.peer_fast {
                            self.send(Message::Reject(r));
                        }
                    }
                } else {
                    self.send(Message::Unchoke);
                }
            }
            ToPeer::Have(i) => {
                if self.have.set(i) {
                    self.send(Message::Have(i));
                }
            }
            ToPeer::HaveEach(all) => {
                for i in all.iter_ones() {
                    if self.have.set(i) {
                        self.send(Message::Have(i));
                    }
                }
            }
            ToPeer::Disconnect(reason) => {
                self.link.set_reason(ExitReason::Normal);
                tracing::debug!(peer = %self.addr, %reason, "disconnecting");
                ctx.stop();
            }
        }
    }
}

impl Handler<Drained> for PeerConn {
    type Result = ();

    fn handle(&mut self, _: Drained, ctx: &mut Context<Self>) {
        if !self.uploads.is_empty() {
            self.pump_uploads(ctx);
        }
    }
}
