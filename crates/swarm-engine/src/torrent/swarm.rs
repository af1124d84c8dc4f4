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
    pub bitfield: Bitfield,
    pub fast: bool,
    pub reqq: usize,
    /// Requests sent and not answered, oldest first.
    pub in_flight: Vec<BlockRef>,
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
    pub snubbed: bool,
}

impl PeerSlot {
    pub fn new(sock: SocketAddr, outgoing: bool, source: PeerSource, pieces: u32) -> Self {
        PeerSlot {
            sock,
            outgoing,
            source,
            addr: None,
            client: String::new(),
            bitfield: Bitfield::new(pieces),
            fast: false,
            reqq: 250,
            in_flight: Vec::new(),
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
        }
    }

    /// Removes `b` from the in-flight list; true when it was there.
    pub fn take_request(&mut self, b: &BlockRef) -> bool {
        // Blocks mostly arrive in request order: the match is usually at the front.
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
const MAX_DEPTH: usize = 1000;
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

/// The choking seam until the global choker takes over: unchoke interested peers up to a fixed
/// number of slots, keep them while they stay interested. Returns the peers whose choke state
/// must change: (key, choke).
pub fn fixed_slots(peers: &HashMap<PeerKey, PeerSlot>, slots: usize) -> Vec<(PeerKey, bool)> {
    let mut changes = Vec::new();
    let mut unchoked = 0;
    for (k, p) in peers {
        if p.addr.is_none() {
            continue;
        }
        if !p.am_choking && !p.peer_interested {
            changes.push((*k, true));
        } else if !p.am_choking {
            unchoked += 1;
        }
    }
    for (k, p) in peers {
        if unchoked >= slots {
            break;
        }
        if p.addr.is_some() && p.am_choking && p.peer_interested {
            changes.push((*k, false));
            unchoked += 1;
        }
    }
    changes
}
