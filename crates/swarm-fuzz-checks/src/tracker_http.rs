//! HTTP tracker replies (BEP 3 announce and scrape, BEP 23 compact peers, BEP 7 `peers6`): the
//! bodies the tracker client decodes.
//!
//! Invariants: every peer in an announce reply came out of the body (6 or 18 bytes of a compact
//! list, or a dictionary entry), so their number is bounded by the body's length; the texts a
//! tracker sends (failure reason, warning) are cut to a bounded length before they reach the
//! user's status; a scrape holds one entry per 20-byte key at most.

use swarm_tracker::reply;

/// Longest tracker text kept (types.rs `MAX_MESSAGE_LEN`), plus the marker that says it was cut
/// at up to 4 bytes per character.
const MAX_TEXT: usize = 4 * 1024 + 8;

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn tracker_http(data: &[u8]) {
    match reply::http_announce(data) {
        Ok(a) => {
            // The smallest peer is 6 bytes of a compact list; a dictionary peer is longer.
            assert!(
                a.peers.len() <= data.len() / 6,
                "{} peers from {} bytes",
                a.peers.len(),
                data.len()
            );
            assert!(a.peers.iter().all(|p| p.port() != 0));
            assert!(a.warning.as_ref().is_none_or(|w| w.len() <= MAX_TEXT));
        }
        Err(why) => assert!(why.len() <= MAX_TEXT + 64, "{} bytes of error", why.len()),
    }
    if let Ok(s) = reply::http_scrape(data) {
        assert!(s.files.len() <= data.len() / 20);
    }
}
