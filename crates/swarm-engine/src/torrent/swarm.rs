//! The torrent's peer set: who we know (address book with sources, failures and bans), who we
//! are connected to (slots with each peer's state), and how many more to dial.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_wire::peer::BlockRef;

use crate::bitfield::Bitfield;
use crate::rate::Rate;
use crate::torrent::messages::PeerKey;
use crate::torrent::peer::PeerConn;

/// Where we heard of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSource {
    Tracker,
    Incoming,
    Pex,
    Dht,
    Manual,
    /// Peers that served a magnet link's metadata.
    Magnet,
}

impl PeerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Incoming => "incoming",
            PeerSource::Pex => "pex",
            PeerSource::Dht => "dht",
            PeerSource::Manual => "manual",
            PeerSource::Magnet => "magnet",
        }
    }
}

/// One live (or connecting) peer, as the torrent sees it.
pub struct PeerSlot {
    pub sock: SocketAddr,
    pub outgoing: bool,
    pub source: PeerSource,
    /// Set once the handshake is done.
    pub addr: Option<Addr<PeerConn>>,
    pub client: String,
    pub peer_id: [u8; 20],
    pub bitfield: Bitfield,
    pub fast: bool,
    pub reqq: usize,
    /// Requests sent and not answered, oldest first.
    pub in_flight: std::collections::VecDeque<BlockRef>,
    pub am_interested: bool,
    pub am_choking: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
    /// How many requests to keep in flight; grows with the measured rate.
    pub target_depth: usize,
    pub last_block: Instant,
    pub down: Rate,
    pub up: Rate,
    pub downloaded: u64,
    pub uploaded: u64,
    pub hash_failures: u32,
    /// No block within the request timeout: no new requests until one arrives.
    pub snubbed: bool,
    /// The choker's view (60 s without a block while unchoked and wanted).
    pub snubbed_by_choker: bool,
    /// Holds our optimistic unchoke.
    pub optimistic: bool,
    pub connected_at: Instant,
    pub unchoked_us_at: Option<Instant>,
    pub interested_at: Option<Instant>,
    pub last_piece_at: Option<Instant>,
    /// The peer's listening port, from its extension handshake.
    pub listen_port: Option<u16>,
    /// BEP 11: our ut_pex state towards this peer (its id for ut_pex), and what we take from it.
    pub pex_out: Option<(u8, crate::pex::PexState)>,
    pub pex_in: Option<crate::pex::PexInbox>,
    /// BEP 6: pieces the peer lets us request while it chokes us.
    pub allowed_fast: crate::allowed_fast::AllowedByPeer,
    /// (when, downloaded, uploaded) at the previous choker round.
    pub round_mark: Option<(Instant, u64, u64)>,
    /// We are closing this connection for reasons of our own (pause): no backoff for the address.
    pub released: bool,
    /// This connection's place under the global cap (given back when the slot goes).
    pub _place: Option<crate::torrent::shared::PeerToken>,
}

impl PeerSlot {
    pub fn new(sock: SocketAddr, outgoing: bool, source: PeerSource, pieces: u32) -> Self {
        PeerSlot {
            sock,
            outgoing,
            source,
            addr: None,
            client: String::new(),
            peer_id: [0; 20],
            bitfield: Bitfield::new(pieces),
            fast: false,
            reqq: 250,
            in_flight: std::collections::VecDeque::new(),
            am_interested: false,
            am_choking: true,
            peer_choking: true,
            peer_interested: false,
            target_depth: INITIAL_DEPTH,
            last_block: Instant::now(),
            down: Rate::default(),
            up: Rate::default(),
            downloaded: 0,
            uploaded: 0,
            hash_failures: 0,
            snubbed: false,
            snubbed_by_choker: false,
            optimistic: false,
            connected_at: Instant::now(),
            unchoked_us_at: None,
            interested_at: None,
            last_piece_at: None,
            listen_port: None,
            pex_out: None,
            pex_in: None,
            allowed_fast: crate::allowed_fast::AllowedByPeer::new(),
            round_mark: None,
            released: false,
            _place: None,
        }
    }

    /// What the choker needs to know of this peer. Rates are the bytes moved since the previous
    /// round (a 10 s average): the 1 s smoothed rates swing too much to rank peers stably.
    pub fn snapshot(&mut self, key: PeerKey, now: Instant) -> crate::choke::PeerSnapshot {
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
        self.round_mark = Some((now, self.downloaded, self.uploaded));
        crate::choke::PeerSnapshot {
            key,
            interested: self.peer_interested,
            am_choking: self.am_choking,
            is_optimistic: self.optimistic,
            download_rate,
            upload_rate,
            connected_for: now.saturating_duration_since(self.connected_at),
            last_piece_ago: self.last_piece_at.map(|t| now.saturating_duration_since(t)),
            unchoked_us_for: self
                .unchoked_us_at
                .map(|t| now.saturating_duration_since(t)),
            interested_for: self.interested_at.map(|t| now.saturating_duration_since(t)),
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

    /// Requests to keep in flight: enough to cover `REQUEST_QUEUE_TIME` at the measured rate,
    /// like libtorrent's adaptive queue, bounded by what the peer accepts.
    pub fn adapt_depth(&mut self) {
        let rate = self.down.per_second();
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

/// Everything we know about an address, connected or not.
pub struct Known {
    pub source: PeerSource,
    pub connected: bool,
    /// Not dialled again before this instant (after failures, backoff).
    pub retry_at: Instant,
    pub failures: u32,
}

#[derive(Default)]
pub struct AddressBook {
    pub known: HashMap<SocketAddr, Known>,
    /// Banned endpoints (ip:port: on loopback every peer is 127.0.0.1) and until when.
    pub bans: HashMap<SocketAddr, Instant>,
    /// Peer ids of banned peers (for as long as the torrent runs).
    pub banned_ids: std::collections::HashSet<[u8; 20]>,
}

/// Most addresses remembered per torrent: a tracker or PEX flood cannot grow this without bound.
const MAX_KNOWN: usize = 2000;

impl AddressBook {
    pub fn add(&mut self, addr: SocketAddr, source: PeerSource) -> bool {
        if self.known.len() >= MAX_KNOWN || self.is_banned(addr) || addr.port() == 0 {
            return false;
        }
        let mut fresh = false;
        self.known.entry(addr).or_insert_with(|| {
            fresh = true;
            Known {
                source,
                connected: false,
                retry_at: Instant::now(),
                failures: 0,
            }
        });
        fresh
    }

    pub fn is_banned(&self, addr: SocketAddr) -> bool {
        self.bans
            .get(&addr)
            .is_some_and(|until| *until > Instant::now())
    }

    pub fn ban(&mut self, addr: SocketAddr, for_: Duration) {
        self.bans.insert(addr, Instant::now() + for_);
        self.known.remove(&addr);
    }

    /// Addresses worth dialling now, at most `n`.
    pub fn candidates(&self, n: usize) -> Vec<SocketAddr> {
        let now = Instant::now();
        self.known
            .iter()
            .filter(|(a, k)| !k.connected && k.retry_at <= now && !self.is_banned(**a))
            .map(|(a, _)| *a)
            .take(n)
            .collect()
    }

    /// A connection we closed ourselves (pause) ended: the address may be dialled again at once.
    pub fn released(&mut self, addr: SocketAddr) {
        if let Some(k) = self.known.get_mut(&addr) {
            k.connected = false;
            k.retry_at = Instant::now();
        }
    }

    /// A connection to `addr` ended; failures push the next attempt back exponentially.
    pub fn disconnected(&mut self, addr: SocketAddr, failed: bool) {
        if let Some(k) = self.known.get_mut(&addr) {
            k.connected = false;
            if failed {
                k.failures += 1;
                let secs = 5u64.saturating_mul(1 << k.failures.min(8)).min(1800);
                k.retry_at = Instant::now() + Duration::from_secs(secs);
            } else {
                k.retry_at = Instant::now() + Duration::from_secs(60);
            }
        }
    }
}
