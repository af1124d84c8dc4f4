//! The address book of a torrent's peer set: every address we heard of, where from, when it may
//! be dialled again (backoff after failures), and the bans (by endpoint and by peer id). Pure:
//! time is an argument.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::torrent::messages::PeerSource;
use crate::torrent::peer::transport::TransportKind;

/// Everything we know about an address, connected or not.
pub struct Known {
    pub source: PeerSource,
    pub connected: bool,
    /// Not dialled again before this instant (after failures, backoff).
    pub retry_at: Instant,
    pub failures: u32,
    /// The transport the last connection with this address ran over: dialled first next time.
    pub worked: Option<TransportKind>,
}

#[derive(Default)]
pub struct AddressBook {
    pub known: HashMap<SocketAddr, Known>,
    /// Banned endpoints (ip:port: on loopback every peer is 127.0.0.1) and until when.
    pub bans: HashMap<SocketAddr, Instant>,
    /// Peer ids of banned peers (for as long as the torrent runs).
    pub banned_ids: HashSet<[u8; 20]>,
}

/// Most addresses remembered per torrent: a tracker or PEX flood cannot grow this without bound.
const MAX_KNOWN: usize = 2000;

impl AddressBook {
    pub fn add(&mut self, addr: SocketAddr, source: PeerSource, now: Instant) -> bool {
        if self.known.len() >= MAX_KNOWN || self.is_banned(addr, now) || addr.port() == 0 {
            return false;
        }
        let mut fresh = false;
        self.known.entry(addr).or_insert_with(|| {
            fresh = true;
            Known {
                source,
                connected: false,
                retry_at: now,
                failures: 0,
                worked: None,
            }
        });
        fresh
    }

    pub fn is_banned(&self, addr: SocketAddr, now: Instant) -> bool {
        self.bans.get(&addr).is_some_and(|until| *until > now)
    }

    /// Bans the endpoint for `for_`, and the peer id for as long as the torrent runs (an
    /// incoming connection comes from a new port each time).
    pub fn ban(
        &mut self,
        addr: SocketAddr,
        peer_id: Option<[u8; 20]>,
        for_: Duration,
        now: Instant,
    ) {
        self.bans.insert(addr, now + for_);
        self.known.remove(&addr);
        if let Some(id) = peer_id {
            self.banned_ids.insert(id);
        }
    }

    /// Addresses worth dialling now, at most `n`.
    pub fn candidates(&self, n: usize, now: Instant) -> Vec<SocketAddr> {
        self.known
            .iter()
            .filter(|(a, k)| !k.connected && k.retry_at <= now && !self.is_banned(**a, now))
            .map(|(a, _)| *a)
            .take(n)
            .collect()
    }

    /// A connection we closed ourselves (pause) ended: the address may be dialled again at once.
    pub fn released(&mut self, addr: SocketAddr, now: Instant) {
        if let Some(k) = self.known.get_mut(&addr) {
            k.connected = false;
            k.retry_at = now;
        }
    }

    /// We want data again (a file un-skipped after completion): addresses left because both ends
    /// were seeding (not for failing) may be dialled at once instead of after their minute.
    pub fn wanted_again(&mut self, now: Instant) {
        for k in self.known.values_mut() {
            if !k.connected && k.failures == 0 {
                k.retry_at = now;
            }
        }
    }

    /// A connection to `addr` ended; failures push the next attempt back exponentially.
    pub fn disconnected(&mut self, addr: SocketAddr, failed: bool, now: Instant) {
        if let Some(k) = self.known.get_mut(&addr) {
            k.connected = false;
            if failed {
                k.failures += 1;
                let secs = 5u64.saturating_mul(1 << k.failures.min(8)).min(1800);
                k.retry_at = now + Duration::from_secs(secs);
            } else {
                k.retry_at = now + Duration::from_secs(60);
            }
        }
    }
}
