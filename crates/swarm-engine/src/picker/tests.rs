use super::*;

const PL: u32 = 4 * BLOCK_SIZE;

fn picker(pieces: u32) -> Picker {
    Picker::new(PL, pieces as u64 * PL as u64 - 100, Bitfield::new(pieces))
}

fn receive_all(p: &mut Picker, blocks: &[BlockRef]) -> Vec<u32> {
    let mut done = Vec::new();
    for b in blocks {
        if p.on_block(b) == BlockOutcome::PieceComplete {
            done.push(b.index);
        }
    }
    done
}

#[test]
fn finishes_started_pieces_first() {
    let mut p = picker(10);
    let full = Bitfield::full(10);
    let mut out = Vec::new();
    p.pick(1, &full, 2, |_| false, &mut out);
    assert_eq!(out.len(), 2);
    let first = out[0].index;
    assert!(out.iter().all(|b| b.index == first));
    // A second peer continues the same piece before starting another.
    let mut out2 = Vec::new();
    p.pick(1, &full, 2, |_| false, &mut out2);
    assert!(out2.iter().all(|b| b.index == first));
    assert_eq!(p.pieces_in_progress(), 1);
}

#[test]
fn last_piece_is_short() {
    let mut p = picker(2);
    let mut out = Vec::new();
    let mut only_last = Bitfield::new(2);
    only_last.set(1);
    p.pick(1, &only_last, 10, |_| false, &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3].length, BLOCK_SIZE - 100);
    assert_eq!(receive_all(&mut p, &out), vec![1]);
}

#[test]
fn rarest_first_after_random_phase() {
    let mut have = Bitfield::new(10);
    for i in 0..RANDOM_FIRST {
        have.set(i);
    }
    let mut p = Picker::new(PL, 10 * PL as u64, have);
    let full = Bitfield::full(10);
    p.add_peer_bitfield(&full);
    p.add_peer_bitfield(&full);
    let mut rare = Bitfield::new(10);
    rare.set(7);
    p.add_peer_bitfield(&rare);
    // piece 7 has availability 3, everything else 2; make 8 the rarest.
    let mut not8 = Bitfield::full(10);
    not8.clear(8);
    p.add_peer_bitfield(&not8);
    let mut out = Vec::new();
    p.pick(1, &full, 1, |_| false, &mut out);
    assert_eq!(out[0].index, 8);
}

#[test]
fn skipped_pieces_are_never_picked_and_high_priority_first() {
    let mut p = picker(4);
    p.set_priorities(vec![0, 1, 3, 0]);
    let full = Bitfield::full(4);
    let mut out = Vec::new();
    p.pick(1, &full, 100, |_| false, &mut out);
    let pieces: Vec<u32> = out.iter().map(|b| b.index).collect();
    assert_eq!(pieces.first(), Some(&2));
    assert!(!pieces.contains(&0) && !pieces.contains(&3));
    for i in [1, 2] {
        let blocks: Vec<_> = out.iter().filter(|b| b.index == i).copied().collect();
        receive_all(&mut p, &blocks);
        p.on_piece_verified(i);
    }
    assert!(p.is_complete());
    assert_eq!(p.bytes_left(), 0);
}

#[test]
fn endgame_duplicates_then_nothing_left() {
    let mut p = picker(1);
    let full = Bitfield::full(1);
    let mut a = Vec::new();
    p.pick(1, &full, 100, |_| false, &mut a);
    assert_eq!(a.len(), 4);
    assert!(p.in_endgame());
    let mut b = Vec::new();
    p.pick(1, &full, 100, |r| a.contains(r), &mut b);
    assert!(
        b.is_empty(),
        "same peer gets no duplicates of its own requests"
    );
    p.pick(1, &full, 100, |_| false, &mut b);
    assert_eq!(b.len(), 4, "another peer gets the same blocks in endgame");
    assert_eq!(p.on_block(&a[0]), BlockOutcome::Accepted);
    assert_eq!(p.on_block(&b[0]), BlockOutcome::Unexpected);
    assert!(p.is_block_received(&b[0]));
}

/// A peer that has only pieces already being fetched from others gets no duplicates while the
/// torrent still has pieces nobody was asked for: the endgame is the torrent's, not the peer's.
#[test]
fn no_duplicates_before_the_whole_torrent_is_requested() {
    let mut p = picker(4);
    let full = Bitfield::full(4);
    let mut only0 = Bitfield::new(4);
    only0.set(0);
    let mut a = Vec::new();
    p.pick(1, &only0, 100, |_| false, &mut a);
    assert_eq!(a.len(), 4, "piece 0 from the first peer");
    let mut b = Vec::new();
    p.pick(2, &only0, 100, |_| false, &mut b);
    assert!(
        b.is_empty(),
        "pieces 1-3 are unrequested: no endgame, no duplicates: {b:?}"
    );
    assert!(!p.in_endgame());
    // Once every piece is requested, the endgame shares blocks.
    let mut c = Vec::new();
    p.pick(3, &full, 100, |_| false, &mut c);
    assert_eq!(c.len(), 12);
    assert!(p.in_endgame());
    p.pick(2, &only0, 100, |_| false, &mut b);
    assert_eq!(b.len(), 4, "now the second peer may duplicate piece 0");
}

#[test]
fn dropped_requests_become_free_again() {
    let mut p = picker(1);
    let full = Bitfield::full(1);
    let mut out = Vec::new();
    p.pick(1, &full, 2, |_| false, &mut out);
    for r in &out {
        p.on_request_dropped(r);
    }
    let mut again = Vec::new();
    p.pick(1, &full, 4, |_| false, &mut again);
    assert_eq!(again.len(), 4);
    assert_eq!(again[0], out[0]);
}

#[test]
fn failed_piece_is_picked_again() {
    let mut p = picker(1);
    let full = Bitfield::full(1);
    let mut out = Vec::new();
    p.pick(1, &full, 10, |_| false, &mut out);
    assert_eq!(receive_all(&mut p, &out), vec![0]);
    let mut none = Vec::new();
    p.pick(1, &full, 10, |_| false, &mut none);
    assert!(none.is_empty(), "a verifying piece is not picked");
    p.on_piece_failed(0);
    p.pick(1, &full, 10, |_| false, &mut none);
    assert_eq!(none.len(), 4);
}

#[test]
fn unexpected_blocks_are_rejected() {
    let mut p = picker(2);
    assert_eq!(
        p.on_block(&BlockRef {
            index: 0,
            begin: 0,
            length: BLOCK_SIZE
        }),
        BlockOutcome::Unexpected
    );
    assert_eq!(
        p.on_block(&BlockRef {
            index: 9,
            begin: 0,
            length: BLOCK_SIZE
        }),
        BlockOutcome::Unexpected
    );
    let full = Bitfield::full(2);
    let mut out = Vec::new();
    p.pick(1, &full, 1, |_| false, &mut out);
    let mut wrong = out[0];
    wrong.length -= 1;
    assert_eq!(p.on_block(&wrong), BlockOutcome::Unexpected);
    wrong = out[0];
    wrong.begin += 1;
    assert_eq!(p.on_block(&wrong), BlockOutcome::Unexpected);
}

proptest::proptest! {
    #[test]
    fn random_schedules_complete_every_piece(seed in 0u64..1000, pieces in 1u32..20) {
        use rand::{SeedableRng, seq::SliceRandom};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut p = picker(pieces);
        let full = Bitfield::full(pieces);
        let mut guard = 0;
        while !p.is_complete() {
            guard += 1;
            proptest::prop_assert!(guard < 10_000);
            let mut out = Vec::new();
            p.pick(1, &full, 7, |_| false, &mut out);
            out.shuffle(&mut rng);
            for r in &out {
                if rand::Rng::gen_bool(&mut rng, 0.2) {
                    p.on_request_dropped(r);
                } else if p.on_block(r) == BlockOutcome::PieceComplete {
                    if rand::Rng::gen_bool(&mut rng, 0.1) { p.on_piece_failed(r.index) } else { p.on_piece_verified(r.index) }
                }
            }
        }
        proptest::prop_assert_eq!(p.have().count(), pieces);
    }
}

#[test]
fn failed_piece_is_fetched_from_one_peer_only() {
    let mut p = picker(1);
    let full = Bitfield::full(1);
    let mut out = Vec::new();
    p.pick(1, &full, 10, |_| false, &mut out);
    receive_all(&mut p, &out);
    p.on_piece_failed(0);
    let mut a = Vec::new();
    p.pick(7, &full, 2, |_| false, &mut a);
    assert_eq!(a.len(), 2);
    let mut b = Vec::new();
    p.pick(8, &full, 10, |_| false, &mut b);
    assert!(b.is_empty(), "another peer must not share a suspect piece");
    p.pick(7, &full, 10, |_| false, &mut b);
    assert_eq!(b.len(), 2);
    p.on_peer_gone(7);
    let mut c = Vec::new();
    p.on_request_dropped(&b[0]);
    p.pick(8, &full, 10, |_| false, &mut c);
    assert_eq!(c.len(), 1);
}

/// The counts kept in step (`open`, `missing`, each piece's `free`) equal what a scan of the
/// state gives, and `is_interesting` agrees with a piece-by-piece test, through a long random
/// mix of picks, arrivals, drops, verdicts and priority changes; the download still completes.
#[test]
fn kept_counts_match_a_full_scan() {
    fn check(p: &Picker) {
        for i in 0..p.num_pieces() {
            let open = p.wanted(i) && !p.verifying.get(i) && !p.in_progress.contains_key(&i);
            assert_eq!(p.open.get(i), open, "open bit of piece {i}");
        }
        let missing = (0..p.num_pieces()).filter(|&i| p.wanted(i)).count() as u32;
        assert_eq!(p.missing, missing);
        for (i, pr) in &p.in_progress {
            let free = pr.blocks.iter().filter(|b| **b == Block::Free).count() as u32;
            assert_eq!(pr.free, free, "free blocks of piece {i}");
        }
    }
    let mut rng = 0x5eed_u64;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let pieces = 40;
    let mut p = picker(pieces);
    let peers: Vec<Bitfield> = (0..3)
        .map(|k| {
            let mut bf = Bitfield::new(pieces);
            for i in 0..pieces {
                if i % 3 == k || next(2) == 0 {
                    bf.set(i);
                }
            }
            p.add_peer_bitfield(&bf);
            bf
        })
        .collect();
    let mut asked: Vec<Vec<BlockRef>> = vec![Vec::new(); peers.len()];
    let mut verifying: Vec<u32> = Vec::new();
    for step in 0..20_000 {
        if p.is_complete() {
            break;
        }
        let who = next(peers.len() as u64) as usize;
        match next(10) {
            0..=2 => {
                let mut out = Vec::new();
                let q = &asked[who];
                p.pick(who as u64, &peers[who], 5, |r| q.contains(r), &mut out);
                asked[who].extend(out);
            }
            3..=5 if !asked[who].is_empty() => {
                let k = next(asked[who].len() as u64) as usize;
                let r = asked[who].remove(k);
                if p.on_block(&r) == BlockOutcome::PieceComplete {
                    verifying.push(r.index);
                }
            }
            6 if !asked[who].is_empty() => {
                let r = asked[who].remove(0);
                p.on_request_dropped(&r);
            }
            7 | 8 if !verifying.is_empty() => {
                let i = verifying.remove(0);
                if next(8) == 0 {
                    p.on_piece_failed(i);
                } else {
                    p.on_piece_verified(i);
                }
            }
            9 if step % 50 == 0 => {
                let prio = (0..pieces)
                    .map(|_| [PRIORITY_SKIP, 1, PRIORITY_NORMAL, 3][next(4) as usize])
                    .collect();
                p.set_priorities(prio);
            }
            9 if step % 97 == 0 => p.set_priorities(vec![PRIORITY_NORMAL; pieces as usize]),
            _ => {}
        }
        check(&p);
        for bf in &peers {
            let wanted = (0..pieces).any(|i| bf.get(i) && p.wanted(i));
            assert_eq!(p.is_interesting(bf), wanted, "step {step}");
        }
    }
    p.set_priorities(vec![PRIORITY_NORMAL; pieces as usize]);
    check(&p);
    // Finish: every outstanding request dropped, then one peer with everything fetches the rest.
    for q in asked.iter_mut() {
        for r in q.drain(..) {
            p.on_request_dropped(&r);
        }
    }
    for i in verifying.drain(..) {
        p.on_piece_verified(i);
    }
    let all = Bitfield::full(pieces);
    for _ in 0..pieces * 8 {
        let mut out = Vec::new();
        p.pick(99, &all, 64, |_| false, &mut out);
        for r in &out {
            if p.on_block(r) == BlockOutcome::PieceComplete {
                p.on_piece_verified(r.index);
            }
        }
        check(&p);
    }
    assert!(p.is_complete(), "the download did not complete");
}
