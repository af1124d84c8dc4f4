//! UDP tracker packets (BEP 15): connect, announce, scrape and error replies.
//!
//! The first byte picks the request the packet answers (its action, and whether the tracker's
//! address is IPv6, which sizes the peer entries); the transaction id expected is the packet's
//! own, so the fuzzer gets past the id check (a mismatch is tried too).
//!
//! Invariants: a reply decodes only as the action asked for and with the transaction id sent;
//! peers are whole entries of the packet's tail, none with port 0; a scrape has one entry per 12
//! bytes.

use swarm_tracker::reply::{self, UdpReply};

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn tracker_udp(data: &[u8]) {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let action = u32::from(pick % 4);
    let v6 = pick & 4 != 0;
    let txid = reply::udp_transaction_id(packet).unwrap_or(0) ^ u32::from(pick & 8);
    let Ok(r) = reply::udp(packet, action, txid, v6) else {
        return;
    };
    assert_eq!(pick & 8, 0, "accepted a reply to another transaction");
    let tail = packet.len().saturating_sub(20);
    match r {
        UdpReply::Connect(_) => assert_eq!(action, 0),
        UdpReply::Announce(a) => {
            assert_eq!(action, 1);
            assert!(a.peers.len() <= tail / if v6 { 18 } else { 6 });
            assert!(a.peers.iter().all(|p| p.port() != 0 && p.is_ipv6() == v6));
        }
        UdpReply::Scrape(s) => {
            assert_eq!(action, 2);
            assert_eq!(s.len(), (packet.len() - 8) / 12);
        }
    }
}
