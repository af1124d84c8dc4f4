//! The peers other nodes announced to us (announce_peer), served back in get_peers answers.
//!
//! Pure: no I/O, `now` passed in. Everything is bounded: entries expire after a TTL (30 min
//! by default, so announcers must re-announce), each info-hash holds a limited number of
//! peers (the soonest-expiring one makes room for a newcomer), and the number of info-hashes
//! and the total number of peers are capped (new entries are refused once full).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use swarm_wire::InfoHash;

/// How long an announce is kept.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Copy, Debug)]
pub struct PeerStoreLimits {
    pub ttl: Duration,
    pub max_peers_per_hash: usize,
    pub max_info_hashes: usize,
    pub max_total_peers: usize,
}

impl Default for PeerStoreLimits {
    fn default() -> Self {
        PeerStoreLimits {
            ttl: PEER_TTL,
            max_peers_per_hash: 200,
            max_info_hashes: 5_000,
            max_total_peers: 50_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct StoredPeer {
    addr: SocketAddr,
    expires: Instant,
}

pub struct PeerStore {
    limits: PeerStoreLimits,
    torrents: HashMap<InfoHash, Vec<StoredPeer>>,
    total: usize,
}

impl PeerStore {
    pub fn new(limits: PeerStoreLimits) -> Self {
        PeerStore {
            limits,
            torrents: HashMap::new(),
            total: 0,
        }
    }

    /// Records (or refreshes) `addr` as a peer of `info_hash`. Returns false when refused
    /// because the store is full.
    pub fn announce(&mut self, info_hash: InfoHash, addr: SocketAddr, now: Instant) -> bool {
        let expires = now + self.limits.ttl;
        if let Some(peers) = self.torrents.get_mut(&info_hash) {
            if let Some(p) = peers.iter_mut().find(|p| p.addr == addr) {
                p.expires = expires;
                return true;
            }
            if peers.len() >= self.limits.max_peers_per_hash {
                if let Some(oldest) = peers.iter_mut().min_by_key(|p| p.expires) {
                    *oldest = StoredPeer { addr, expires };
                    return true;
                }
                return false;
            }
        }
        if self.total >= self.limits.max_total_peers
            || (!self.torrents.contains_key(&info_hash)
                && self.torrents.len() >= self.limits.max_info_hashes)
        {
            self.expire(now);
        }
        let is_new_hash = !self.torrents.contains_key(&info_hash);
        if self.total >= self.limits.max_total_peers
            || (is_new_hash && self.torrents.len() >= self.limits.max_info_hashes)
            || self.limits.max_peers_per_hash == 0
        {
            return false;
        }
        self.torrents
            .entry(info_hash)
            .or_default()
            .push(StoredPeer { addr, expires });
        self.total += 1;
        true
    }

    /// Up to `max` live peers of `info_hash` of one address family, in random order so that
    /// every stored peer gets handed out.
    pub fn get(&self, info_hash: &InfoHash, max: usize, v6: bool, now: Instant) -> Vec<SocketAddr> {
        let Some(peers) = self.torrents.get(info_hash) else {
            return Vec::new();
        };
        let mut live: Vec<SocketAddr> = peers
            .iter()
            .filter(|p| p.expires > now && p.addr.is_ipv6() == v6)
            .map(|p| p.addr)
            .collect();
        if live.len() > max {
            live.partial_shuffle(&mut rand::thread_rng(), max);
            live.truncate(max);
        }
        live
    }

    pub fn expire(&mut self, now: Instant) {
        let mut total = 0;
        self.torrents.retain(|_, peers| {
            peers.retain(|p| p.expires > now);
            total += peers.len();
            !peers.is_empty()
        });
        self.total = total;
    }

    pub fn info_hash_count(&self) -> usize {
        self.torrents.len()
    }

    pub fn peer_count(&self) -> usize {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn limits(per_hash: usize, hashes: usize, total: usize) -> PeerStoreLimits {
        PeerStoreLimits {
            ttl: PEER_TTL,
            max_peers_per_hash: per_hash,
            max_info_hashes: hashes,
            max_total_peers: total,
        }
    }

    #[test]
    fn stores_refreshes_and_expires() {
        let now = Instant::now();
        let ih = InfoHash([1; 20]);
        let mut s = PeerStore::new(PeerStoreLimits::default());
        assert!(s.announce(ih, peer(1), now));
        assert!(s.announce(ih, peer(1), now + Duration::from_secs(600)));
        assert_eq!(s.peer_count(), 1);
        assert_eq!(s.get(&ih, 10, false, now), vec![peer(1)]);
        assert!(s.get(&ih, 10, true, now).is_empty());
        // Refreshed at +10 min, so still there at +35 min, gone at +41 min.
        assert_eq!(
            s.get(&ih, 10, false, now + Duration::from_secs(35 * 60))
                .len(),
            1
        );
        let late = now + Duration::from_secs(41 * 60);
        assert!(s.get(&ih, 10, false, late).is_empty());
        s.expire(late);
        assert_eq!((s.info_hash_count(), s.peer_count()), (0, 0));
    }

    #[test]
    fn per_hash_bound_replaces_the_oldest() {
        let now = Instant::now();
        let ih = InfoHash([1; 20]);
        let mut s = PeerStore::new(limits(3, 10, 100));
        for (i, port) in [1, 2, 3, 4].into_iter().enumerate() {
            assert!(s.announce(ih, peer(port), now + Duration::from_secs(i as u64)));
        }
        let mut got = s.get(&ih, 10, false, now);
        got.sort();
        assert_eq!(got, vec![peer(2), peer(3), peer(4)]);
        assert_eq!(s.get(&ih, 2, false, now).len(), 2);
    }

    #[test]
    fn hash_and_total_bounds_refuse() {
        let now = Instant::now();
        let mut s = PeerStore::new(limits(10, 2, 3));
        assert!(s.announce(InfoHash([1; 20]), peer(1), now));
        assert!(s.announce(InfoHash([2; 20]), peer(1), now));
        assert!(!s.announce(InfoHash([3; 20]), peer(1), now));
        assert!(s.announce(InfoHash([2; 20]), peer(2), now));
        assert!(!s.announce(InfoHash([2; 20]), peer(3), now));
        assert_eq!(s.peer_count(), 3);
        // Once the old ones expire there is room again.
        let later = now + PEER_TTL + Duration::from_secs(1);
        assert!(s.announce(InfoHash([3; 20]), peer(1), later));
        assert_eq!((s.info_hash_count(), s.peer_count()), (1, 1));
    }
}
