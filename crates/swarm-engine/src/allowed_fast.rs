//! # Allowed fast — BEP 6 allowed-fast sets (pure: no I/O, no actix)
//!
//! With the fast extension, a peer may be told of a few pieces it can request even while we
//! choke it, so a newcomer with nothing to trade gets its first pieces quickly. The set is a
//! function of the peer's address and the info-hash only, so it is the same on every
//! reconnection and from every client that follows BEP 6: a peer cannot widen it by
//! reconnecting, and several peers behind one /24 (one host, one NAT, one small network) share
//! one set instead of each getting their own.
//!
//! Used by: the PeerConn actor (send [`allowed_fast_set_for`] as `AllowedFast` messages after
//! the handshake; serve requests in it while choking) and the Torrent actor (ask a peer that
//! chokes us for pieces in [`AllowedByPeer`]).
//!
//! **IPv6: no set.** BEP 6 defines the algorithm for IPv4 only and leaves IPv6 open; clients
//! differ (libtorrent sends none). We send none to IPv6 peers and serve them nothing while
//! choked; an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is an IPv4 peer and gets its set.

use std::net::{IpAddr, Ipv4Addr};

/// The set size BEP 6 suggests, and what libtorrent and Transmission send.
pub const DEFAULT_ALLOWED_FAST: usize = 10;
/// Most `AllowedFast` pieces kept from one peer. A well-behaved peer sends about
/// [`DEFAULT_ALLOWED_FAST`]; the rest are dropped so a peer cannot grow our state.
pub const MAX_ALLOWED_FROM_PEER: usize = 32;

/// The BEP 6 allowed-fast set of `k` pieces (fewer if the torrent has fewer than `k` pieces)
/// for a peer at `ip`, in the order the algorithm produces them:
///
/// `x = SHA-1(ip & 0xFFFFFF00 ‖ info_hash)`, then each 4-byte big-endian word of `x`, modulo
/// `num_pieces`, is added if new; `x = SHA-1(x)` and again until there are `k`.
pub fn allowed_fast_set(ip: Ipv4Addr, info_hash: &[u8; 20], num_pieces: u32, k: usize) -> Vec<u32> {
    // Capping k keeps the loop finite: there are only `num_pieces` distinct indices.
    let k = k.min(num_pieces as usize);
    let mut set = Vec::with_capacity(k);
    if k == 0 {
        return set;
    }
    let masked = u32::from(ip) & 0xFFFF_FF00;
    let mut seed = [0u8; 24];
    seed[..4].copy_from_slice(&masked.to_be_bytes());
    seed[4..].copy_from_slice(info_hash);
    let mut x = crate::hash::piece_hash(&seed);
    loop {
        for word in x.chunks_exact(4) {
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
                if set.len() == k {
                    return set;
                }
            }
        }
        x = crate::hash::piece_hash(&x);
    }
}

/// [`allowed_fast_set`] for any peer address: IPv4 and IPv4-mapped IPv6 get their set, other
/// IPv6 addresses none (see the module docs).
pub fn allowed_fast_set_for(
    ip: IpAddr,
    info_hash: &[u8; 20],
    num_pieces: u32,
    k: usize,
) -> Vec<u32> {
    match ip {
        IpAddr::V4(v4) => allowed_fast_set(v4, info_hash, num_pieces, k),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => allowed_fast_set(v4, info_hash, num_pieces, k),
            None => Vec::new(),
        },
    }
}

/// The pieces a peer told us (with `AllowedFast` messages) we may request while it chokes us.
/// Bounded by [`MAX_ALLOWED_FROM_PEER`]; indices past the torrent's end are refused. We do not
/// check that the peer followed BEP 6's derivation: the set is a favour the peer grants, and
/// taking it costs us nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedByPeer {
    pieces: Vec<u32>,
}

impl AllowedByPeer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one `AllowedFast(piece)`. False if it is out of range (a protocol violation the
    /// peer actor may disconnect for) or over the cap (ignored).
    pub fn on_allowed_fast(&mut self, piece: u32, num_pieces: u32) -> bool {
        if piece >= num_pieces || self.pieces.len() >= MAX_ALLOWED_FROM_PEER {
            return false;
        }
        if !self.pieces.contains(&piece) {
            self.pieces.push(piece);
        }
        true
    }

    pub fn contains(&self, piece: u32) -> bool {
        self.pieces.contains(&piece)
    }

    pub fn pieces(&self) -> &[u32] {
        &self.pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const AA: [u8; 20] = [0xAA; 20];
    const BEP6_IP: Ipv4Addr = Ipv4Addr::new(80, 4, 4, 200);

    /// The worked example in BEP 6: 1313 pieces, info-hash of twenty 0xAA, peer 80.4.4.200.
    #[test]
    fn bep6_example_vectors() {
        assert_eq!(
            allowed_fast_set(BEP6_IP, &AA, 1313, 7),
            vec![1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(BEP6_IP, &AA, 1313, 9),
            vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
    }

    #[test]
    fn the_set_depends_on_the_slash_24_only() {
        let set = allowed_fast_set(BEP6_IP, &AA, 1313, 7);
        assert_eq!(
            allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &AA, 1313, 7),
            set
        );
        assert_ne!(
            allowed_fast_set(Ipv4Addr::new(80, 4, 5, 200), &AA, 1313, 7),
            set
        );
        assert_ne!(allowed_fast_set(BEP6_IP, &[0xAB; 20], 1313, 7), set);
    }

    #[test]
    fn small_torrents_get_every_piece_and_empty_ones_nothing() {
        let mut all = allowed_fast_set(BEP6_IP, &AA, 3, DEFAULT_ALLOWED_FAST);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2]);
        assert!(allowed_fast_set(BEP6_IP, &AA, 0, DEFAULT_ALLOWED_FAST).is_empty());
        assert!(allowed_fast_set(BEP6_IP, &AA, 1313, 0).is_empty());
        assert_eq!(allowed_fast_set(BEP6_IP, &AA, 1, 5), vec![0]);
    }

    #[test]
    fn ipv6_gets_no_set_but_mapped_ipv4_does() {
        let v6: IpAddr = "2001:db8::1".parse().expect("addr");
        assert!(allowed_fast_set_for(v6, &AA, 1313, 7).is_empty());
        let mapped = IpAddr::V6(BEP6_IP.to_ipv6_mapped());
        assert_eq!(
            allowed_fast_set_for(mapped, &AA, 1313, 7),
            allowed_fast_set(BEP6_IP, &AA, 1313, 7)
        );
        assert_eq!(
            allowed_fast_set_for(IpAddr::V4(BEP6_IP), &AA, 1313, 9).len(),
            9
        );
    }

    #[test]
    fn pieces_allowed_by_a_peer_are_bounded_and_in_range() {
        let mut allowed = AllowedByPeer::new();
        assert!(!allowed.on_allowed_fast(100, 100), "out of range");
        assert!(allowed.on_allowed_fast(5, 100));
        assert!(
            allowed.on_allowed_fast(5, 100),
            "a repeat is fine, kept once"
        );
        assert_eq!(allowed.pieces(), &[5]);
        for p in 0..100 {
            allowed.on_allowed_fast(p, 100);
        }
        assert_eq!(allowed.pieces().len(), MAX_ALLOWED_FROM_PEER);
        assert!(allowed.contains(5) && !allowed.contains(99));
    }

    proptest! {
        #[test]
        fn proptest_sets_are_distinct_in_range_and_prefixes_of_each_other(
            ip in any::<u32>().prop_map(Ipv4Addr::from),
            hash in any::<[u8; 20]>(),
            num_pieces in 1u32..5000,
            k in 0usize..40,
        ) {
            let set = allowed_fast_set(ip, &hash, num_pieces, k);
            prop_assert_eq!(set.len(), k.min(num_pieces as usize));
            prop_assert!(set.iter().all(|&p| p < num_pieces));
            let mut sorted = set.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), set.len());
            let longer = allowed_fast_set(ip, &hash, num_pieces, k + 3);
            prop_assert_eq!(&longer[..set.len()], &set[..]);
        }
    }
}
