//! Magnet URIs (BEP 9, BEP 53 `so`).
//!
//! Invariants: a magnet that parses is within the limits (length, `so` entries), and writing it
//! back with `to_uri` gives a URI that parses to the same magnet.

use swarm_wire::magnet::{MAX_MAGNET_LEN, MAX_SELECT_ONLY};
use swarm_wire::Magnet;

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn magnet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Magnet::parse(text) else {
        return;
    };
    assert!(text.len() <= MAX_MAGNET_LEN);
    assert!(m.select_only.len() <= MAX_SELECT_ONLY);
    assert!(
        m.select_only.windows(2).all(|w| w[0] < w[1]),
        "so is not sorted and unique"
    );
    let uri = m.to_uri();
    let back = Magnet::parse(&uri).unwrap_or_else(|e| panic!("{uri:?} does not parse: {e}"));
    assert_eq!(back, m, "{uri:?}");
}
