//! One slot of the peer set: a connection we dial or accepted, in one of its two real states.
//! Pure: no actix; the peer actor's handle is a type parameter (see [`super::PeerHandle`]).
//!
//! A slot outlives its connection's incarnations: an outgoing peer that crashes is re-dialled into
//! the same slot, which goes back to [`Conn::Connecting`]. What we learned about the peer (bytes
//! moved, rates, hash failures, the choker's view) stays with the slot; what belongs to one
//! connection (the handle, the peer's bitfield, the four choke/interest flags, requests in flight,
//! pex and allowed-fast state) lives in [`Live`] and goes with it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use swarm_wire::peer::BlockRef;

use crate::bitfield::Bitfield;
use crate::rate::Rate;
use crate::torrent::messages::{PeerKey, PeerSource};
use crate::torrent::peer::transport::TransportKind;
use crate::torrent::shared::PeerToken;

/// One peer, connecting or live, as the torrent sees it.
pub struct PeerSlot<H> {
    pub sock: SocketAddr,
    pub outgoing: bool,
    pub source: PeerSource,
    pub conn: Conn<H>,
    pub down: Rate,
    pub up: Rate,
    pub downloaded: u64,
    pub uploaded: u64,
    /// Pieces that failed their hash with this peer as their only sender.
    pub hash_failures: u32,
    /// No block within the request timeout: no new requests until one arrives.
    pub snubbed: bool,
    /// The choker's view (60 s without a block while unchoked and wanted).
    pub snubbed_by_choker: bool,
    /// Holds our optimistic unchoke.
    pub optimistic: bool,
    pub last_piece_at: Option<Instant>,
    /// (when, downloaded, uploaded) at the previous choker round.
    pub round_mark: Option<(Instant, u64, u64)>,
    /// We are closing this connection for reasons of our own (pause): no backoff for the address.
    pub released: bool,
    /// This connection's place under the global cap (given back when the slot goes).
    _place: Option<PeerToken>,
}

/// The two states of a slot's connection.
pub enum Conn<H> {
    /// Dialling, or exchanging handshakes (or waiting to be re-dialled after a crash).
    Connecting,
    /// Handshakes done: the peer takes orders at `handle`.
    Live(Box<Live<H>>),
}

/// What exists only while a connection is up.
pub struct Live<H> {
    pub handle: H,
    pub peer_id: [u8; 20],
    pub client: String,
    pub fast: bool,
    pub bitfield: Bitfield,
    pub reqq: usize,
    /// Requests sent and not answered, oldest first.
    pub in_flight: VecDeque<BlockRef>,
    pub am_interested: bool,
    pub am_choking: bool,
    /// Unchoked by us (a free slot given at once, `PeerSet::on_interested`) after the choker's
    /// last look at this torrent: a decision from that round did not know, and must not choke
    /// it back (the requests the peer sent meanwhile would be dropped: measured, a lone leecher
    /// unchoked, choked and unchoked again within a second, its requests lost).
    pub unchoked_since_snapshot: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// How many requests to keep in flight; grows with the measured rate.
    pub target_depth: usize,
    pub last_block: Instant,
    pub connected_at: Instant,
    pub unchoked_us_at: Option<Instant>,
    pub interested_at: Option<Instant>,
    /// The peer's listening port, from its extension handshake.
    pub listen_port: Option<u16>,
    /// BEP 11: our ut_pex state towards this peer (its id for ut_pex), and what we take from it.
    pub pex_out: Option<(u8, crate::pex::PexState)>,
    pub pex_in: Option<crate::pex::PexInbox>,
    /// BEP 6: pieces the peer lets us request while it chokes us.
    pub allowed_fast: crate::allowed_fast::AllowedByPeer,
    /// The connection is RC4-encrypted (MSE): shown in `peers`, and the peer is told about in
    /// PEX as one that takes encryption.
    pub encrypted: bool,
    /// What the connection runs over (`peers` shows it; PEX flags uTP peers).
    pub transport: TransportKind,
}

impl<H> PeerSlot<H> {
    pub fn new(
        sock: SocketAddr,
        outgoing: bool,
        source: PeerSource,
        place: Option<PeerToken>,
    ) -> Self {
        PeerSlot {
            sock,
            outgoing,
            source,
            conn: Conn::Connecting,
            down: Rate::default(),
            up: Rate::default(),
            downloaded: 0,
            uploaded: 0,
            hash_failures: 0,
            snubbed: false,
            snubbed_by_choker: false,
            optimistic: false,
            last_piece_at: None,
            round_mark: None,
            released: false,
            _place: place,
        }
    }

    pub fn live(&self) -> Option<&Live<H>> {
        match &self.conn {
            Conn::Live(l) => Some(l),
            Conn::Connecting => None,
        }
    }

    pub fn live_mut(&mut self) -> Option<&mut Live<H>> {
        match &mut self.conn {
            Conn::Live(l) => Some(l),
            Conn::Connecting => None,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.conn, Conn::Live(_))
    }

    /// What the choker needs to know of this (live) peer. Rates are the bytes moved since the
    /// previous round (a 10 s average): the 1 s smoothed rates swing too much to rank peers
    /// stably.
    pub fn snapshot(&mut self, key: PeerKey, now: Instant) -> Option<crate::choke::PeerSnapshot> {
        let (download_rate, upload_rate) = match self.round_mark {
            Some((at, down0, up0)) if now.saturating_duration_since(at).as_secs_f64() >= 0.5 => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                (
                    (self.downloaded.saturating_sub(down0) as f64 / secs) as u64,
                    (self.uploaded.saturating_sub(up0) as f64 / secs) as u64,
                )
            }
            _ => (self.down.per_second(), self.up.per_second()),
        };
        let Conn::Live(l) = &mut self.conn else {
            return None;
        };
        l.unchoked_since_snapshot = false;
        let snapshot = crate::choke::PeerSnapshot {
            key,
            interested: l.peer_interested,
            am_choking: l.am_choking,
            is_optimistic: self.optimistic,
            download_rate,
            upload_rate,
            connected_for: now.saturating_duration_since(l.connected_at),
            last_piece_ago: self.last_piece_at.map(|t| now.saturating_duration_since(t)),
            unchoked_us_for: l.unchoked_us_at.map(|t| now.saturating_duration_since(t)),
            interested_for: l.interested_at.map(|t| now.saturating_duration_since(t)),
        };
        self.round_mark = Some((now, self.downloaded, self.uploaded));
        Some(snapshot)
    }
}

impl<H> Live<H> {
    pub fn new(handle: H, peer_id: [u8; 20], fast: bool, pieces: u32, now: Instant) -> Self {
        Live {
            handle,
            peer_id,
            client: crate::peer_id::client_name(&peer_id),
            fast,
            bitfield: Bitfield::new(pieces),
            reqq: 250,
            in_flight: VecDeque::new(),
            am_interested: false,
            am_choking: true,
            unchoked_since_snapshot: false,
            peer_choking: true,
            peer_interested: false,
            target_depth: INITIAL_DEPTH,
            last_block: now,
            connected_at: now,
            unchoked_us_at: None,
            interested_at: None,
            listen_port: None,
            pex_out: None,
            pex_in: None,
            allowed_fast: crate::allowed_fast::AllowedByPeer::new(),
            encrypted: false,
            transport: TransportKind::Tcp,
        }
    }

    /// Removes `b` from the in-flight list; true when it was there.
    pub fn take_request(&mut self, b: &BlockRef) -> bool {
        // Blocks mostly arrive in request order: the match is usually at the front.
        if self.in_flight.front() == Some(b) {
            self.in_flight.pop_front();
            return true;
        }
        match self.in_flight.iter().position(|r| r == b) {
            Some(i) => {
                self.in_flight.remove(i);
                true
            }
            None => false,
        }
    }

    /// Requests to keep in flight: enough to cover `REQUEST_QUEUE_TIME` at the measured rate
    /// `rate`, like libtorrent's adaptive queue, bounded by what the peer accepts.
    pub fn adapt_depth(&mut self, rate: u64) {
        let by_rate =
            (rate as f64 * REQUEST_QUEUE_TIME / swarm_wire::peer::BLOCK_SIZE as f64) as usize;
        let cap = self.reqq.clamp(MIN_DEPTH, MAX_DEPTH);
        // Grow at once to what the rate needs; shrink slowly, a rate dip is often a hiccup.
        let next = if by_rate >= self.target_depth {
            by_rate
        } else {
            by_rate.max(self.target_depth * 3 / 4)
        };
        self.target_depth = next.clamp(MIN_DEPTH, cap);
    }

    /// Slow start: each block received in time earns one more slot, until the rate estimate
    /// takes over.
    pub fn on_block_in_time(&mut self) {
        let cap = self.reqq.clamp(MIN_DEPTH, MAX_DEPTH);
        if self.target_depth < cap {
            self.target_depth += 1;
        }
    }
}

const INITIAL_DEPTH: usize = 16;
const MIN_DEPTH: usize = 4;
/// 256 blocks = 4 MiB in flight per peer: enough to fill a loopback link (measured), and the
/// bound on piece buffers a single peer can make us hold.
const MAX_DEPTH: usize = 256;
/// Seconds of data to keep requested from a peer.
const REQUEST_QUEUE_TIME: f64 = 3.0;
