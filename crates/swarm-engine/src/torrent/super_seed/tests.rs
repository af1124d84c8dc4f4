use super::*;

fn none(_: u32) -> u16 {
    0
}

/// Every peer gets different pieces while unrevealed ones remain: the seed sends each piece
/// once before any twice.
#[test]
fn peers_get_distinct_pieces_until_all_are_shown() {
    let mut s = SuperSeed::new(8);
    let empty = Bitfield::new(8);
    let mut all = Vec::new();
    for key in 1..=4 {
        let shown = s.on_peer(key, &empty, none);
        assert_eq!(shown.len(), PER_PEER);
        all.extend(shown);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(
        all.len(),
        8,
        "8 pieces shown to 4 peers, none twice: {all:?}"
    );
    // A fifth peer now gets pieces shown once each (nothing is unshown).
    assert_eq!(s.on_peer(5, &empty, none).len(), PER_PEER);
}

/// The next piece comes only when the peer announces one it was shown, and it is a piece the
/// swarm has least.
#[test]
fn next_piece_after_have_and_rarest_in_the_swarm() {
    let mut s = SuperSeed::new(4);
    let mut theirs = Bitfield::new(4);
    // Pieces 0 and 1 are common in the swarm, 2 and 3 are not.
    let avail = |i: u32| if i < 2 { 3 } else { 0 };
    let first = s.on_peer(1, &theirs, avail);
    let mut sorted = first.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![2, 3], "the rare pieces first");
    // Announcing something else reveals nothing.
    theirs.set(0);
    assert!(s.on_have(1, 0, &theirs, avail).is_empty());
    // Announcing a shown piece reveals the next.
    theirs.set(first[0]);
    assert_eq!(s.on_have(1, first[0], &theirs, avail), vec![1]);
    assert_eq!(s.pending(1).len(), PER_PEER);
}

/// A piece shown to a peer that leaves is free to show again; a bitfield that already holds a
/// shown piece releases it.
#[test]
fn leaving_and_bitfields_release_shown_pieces() {
    let mut s = SuperSeed::new(2);
    let empty = Bitfield::new(2);
    let shown = s.on_peer(1, &empty, none);
    assert_eq!(shown.len(), 2);
    s.on_peer_gone(1);
    assert!(s.shown.iter().all(|&n| n == 0));
    let shown = s.on_peer(2, &empty, none);
    let mut theirs = Bitfield::new(2);
    theirs.set(shown[0]);
    // Its bitfield arrives after it connected: the piece it has is no longer pending.
    let again = s.on_peer(2, &theirs, none);
    assert!(again.is_empty(), "nothing left that it lacks: {again:?}");
    assert_eq!(s.pending(2), &[shown[1]]);
}

/// A peer that has everything is shown nothing.
#[test]
fn a_complete_peer_is_shown_nothing() {
    let mut s = SuperSeed::new(3);
    assert!(s.on_peer(1, &Bitfield::full(3), none).is_empty());
}
