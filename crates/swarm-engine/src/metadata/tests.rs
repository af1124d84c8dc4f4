use super::*;
use proptest::prelude::*;

const PIECE: usize = METADATA_PIECE_SIZE as usize;
const SEC: Duration = Duration::from_secs(1);

/// Bytes that look nothing alike piece to piece, and their info-hash.
fn info(len: usize) -> (Bytes, [u8; 20]) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let hash = crate::hash::piece_hash(&bytes);
    (Bytes::from(bytes), hash)
}

fn piece_of(info: &Bytes, index: u32) -> Bytes {
    metadata_piece(info, index).expect("piece in range").1
}

/// Asks `peer` for everything it may take and answers each request honestly.
fn serve_all(
    fetch: &mut MetadataFetch,
    peer: u64,
    info: &Bytes,
    now: Instant,
) -> Result<Option<Vec<u8>>, MetadataError> {
    let mut out = None;
    for piece in fetch.next_requests(peer, 64, now) {
        let r = fetch.on_data(peer, piece, info.len() as u32, &piece_of(info, piece))?;
        out = out.or(r);
    }
    Ok(out)
}

#[test]
fn one_peer_fetches_small_metadata() {
    let (info, hash) = info(1000);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    assert!(
        f.next_requests(1, 8, now).is_empty(),
        "no size, no requests"
    );
    assert!(f.on_peer_metadata_size(1, 1000));
    assert_eq!(f.next_requests(1, 8, now), vec![0]);
    assert!(f.next_requests(1, 8, now).is_empty(), "already in flight");
    let got = f.on_data(1, 0, 1000, &info).expect("valid");
    assert_eq!(got.as_deref(), Some(&info[..]));
    assert!(f.is_done());
    assert!(f.next_requests(1, 8, now).is_empty());
    assert_eq!(
        f.on_data(1, 0, 1000, &info),
        Ok(None),
        "after done: ignored"
    );
}

#[test]
fn pieces_spread_over_peers_and_each_peer_is_capped() {
    let len = 10 * PIECE + 5;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    for peer in 1..=3 {
        f.on_peer_metadata_size(peer, len as u32);
    }
    let a = f.next_requests(1, 100, now);
    let b = f.next_requests(2, 100, now);
    let c = f.next_requests(3, 2, now);
    assert_eq!(a, vec![0, 1, 2, 3]);
    assert_eq!(b, vec![4, 5, 6, 7]);
    assert_eq!(c, vec![8, 9], "`max` is honoured");
    assert_eq!(f.next_requests(3, 100, now), vec![10]);
    let mut done = None;
    for (peer, pieces) in [(1, a), (2, b), (3, c), (3, vec![10])] {
        for p in pieces {
            let r = f.on_data(peer, p, len as u32, &piece_of(&info, p));
            done = done.or(r.expect("valid"));
        }
    }
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn sizes_out_of_range_are_refused() {
    let mut f = MetadataFetch::new([0; 20]);
    assert!(!f.on_peer_metadata_size(1, 0));
    assert!(!f.on_peer_metadata_size(1, METADATA_MAX_SIZE + 1));
    assert!(f.on_peer_metadata_size(1, METADATA_MAX_SIZE));
    assert!(
        !f.on_peer_metadata_size(1, 0),
        "and a bad re-announce forgets it"
    );
    assert!(f.next_requests(1, 8, Instant::now()).is_empty());
}

#[test]
fn piece_lengths_and_sizes_are_checked() {
    let len = PIECE + 10;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    f.on_peer_metadata_size(1, len as u32);
    assert_eq!(f.next_requests(1, 8, now), vec![0, 1]);
    let short = &info[..PIECE - 1];
    assert!(matches!(
        f.on_data(1, 0, len as u32, short),
        Err(MetadataError::BadPiece { piece: 0, .. })
    ));
    assert!(matches!(
        f.on_data(1, 1, len as u32, &info[..PIECE]),
        Err(MetadataError::BadPiece { piece: 1, .. })
    ));
    assert!(matches!(
        f.on_data(1, 2, len as u32, b""),
        Err(MetadataError::BadPiece { piece: 2, .. })
    ));
    assert_eq!(
        f.on_data(1, 0, len as u32 + 1, &info[..PIECE]),
        Err(MetadataError::SizeMismatch {
            peer: 1,
            announced: len as u32,
            sent: len as u32 + 1
        })
    );
    assert_eq!(f.progress(), Some((0, 2)), "nothing was kept");
    assert_eq!(f.on_data(1, 1, len as u32, &info[PIECE..]), Ok(None));
    let done = f.on_data(1, 0, len as u32, &info[..PIECE]).expect("valid");
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn the_buffer_is_allocated_at_the_first_piece_and_never_larger_than_the_size() {
    let len = 3 * PIECE;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    f.on_peer_metadata_size(1, len as u32);
    f.next_requests(1, 8, now);
    let buf = |f: &MetadataFetch| f.attempt.as_ref().map(|a| a.buf.capacity());
    assert_eq!(buf(&f), Some(0));
    f.on_data(1, 2, len as u32, &piece_of(&info, 2))
        .expect("valid");
    assert_eq!(buf(&f), Some(len));
}

#[test]
fn a_reject_backs_the_peer_off_and_frees_its_pieces() {
    let len = 3 * PIECE;
    let (_, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let t0 = Instant::now();
    f.on_peer_metadata_size(1, len as u32);
    f.on_peer_metadata_size(2, len as u32);
    assert_eq!(f.next_requests(1, 8, t0), vec![0, 1, 2]);
    f.on_reject(1, 0, t0);
    assert_eq!(f.askable_peers(t0), vec![2]);
    assert_eq!(f.next_requests(2, 8, t0), vec![0, 1, 2], "freed at once");
    f.on_peer_gone(2);
    assert!(f.next_requests(1, 8, t0 + REJECT_BACKOFF - SEC).is_empty());
    assert_eq!(f.next_requests(1, 8, t0 + REJECT_BACKOFF), vec![0, 1, 2]);
}

#[test]
fn timed_out_requests_go_to_another_peer_and_late_answers_still_count() {
    let len = 2 * PIECE;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let t0 = Instant::now();
    f.on_peer_metadata_size(1, len as u32);
    f.on_peer_metadata_size(2, len as u32);
    assert_eq!(f.next_requests(1, 8, t0), vec![0, 1]);
    assert!(f.next_requests(2, 8, t0 + REQUEST_TIMEOUT - SEC).is_empty());
    assert_eq!(f.next_requests(2, 1, t0 + REQUEST_TIMEOUT), vec![0]);
    // Peer 1 answers late: piece 1 is still wanted, so it is kept.
    assert_eq!(f.on_data(1, 1, len as u32, &piece_of(&info, 1)), Ok(None));
    let done = f.on_data(2, 0, len as u32, &piece_of(&info, 0));
    assert_eq!(done.expect("valid").as_deref(), Some(&info[..]));
}

#[test]
fn a_peer_gone_frees_its_pieces() {
    let (_, hash) = info(2 * PIECE);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    f.on_peer_metadata_size(1, 2 * PIECE as u32);
    f.on_peer_metadata_size(2, 2 * PIECE as u32);
    assert_eq!(f.next_requests(1, 8, now), vec![0, 1]);
    f.on_peer_gone(1);
    assert_eq!(f.on_data(1, 0, 2 * PIECE as u32, &[0; PIECE]), Ok(None));
    assert_eq!(f.next_requests(2, 8, now), vec![0, 1]);
}

#[test]
fn a_hash_failure_blames_contributors_then_one_peer_at_a_time_finds_the_liar() {
    let len = 2 * PIECE;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    let (honest, liar) = (1, 2);
    f.on_peer_metadata_size(honest, len as u32);
    f.on_peer_metadata_size(liar, len as u32);
    assert_eq!(f.next_requests(honest, 1, now), vec![0]);
    assert_eq!(f.next_requests(liar, 1, now), vec![1]);
    assert_eq!(
        f.on_data(honest, 0, len as u32, &piece_of(&info, 0)),
        Ok(None)
    );
    assert_eq!(
        f.on_data(liar, 1, len as u32, &[0xEE; PIECE]),
        Err(MetadataError::HashMismatch {
            size: len as u32,
            blamed: vec![honest, liar]
        })
    );
    assert_eq!(f.progress(), None, "reset");
    // Now a single source: the liar asks first and gets everything...
    assert_eq!(f.next_requests(liar, 8, now), vec![0, 1]);
    assert!(f.next_requests(honest, 8, now).is_empty());
    assert_eq!(
        f.on_data(honest, 0, len as u32, &piece_of(&info, 0)),
        Ok(None),
        "not the single source: ignored"
    );
    f.on_data(liar, 0, len as u32, &[0xEE; PIECE])
        .expect("kept");
    let err = f.on_data(liar, 1, len as u32, &[0xEE; PIECE]);
    assert!(matches!(err, Err(MetadataError::HashMismatch { blamed, .. }) if blamed == vec![liar]));
    // ...and, as the sole source of a failure, is never asked again.
    assert!(f.next_requests(liar, 8, now).is_empty());
    assert_eq!(f.askable_peers(now), vec![honest]);
    let done = serve_all(&mut f, honest, &info, now).expect("valid");
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn disagreeing_sizes_are_tried_in_turn() {
    let len = PIECE + 100;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    // Tie on peer count: the smaller (false) size goes first, fails, and is set aside.
    f.on_peer_metadata_size(7, 50);
    f.on_peer_metadata_size(8, len as u32);
    assert!(f.next_requests(8, 8, now).is_empty(), "another size first");
    assert_eq!(f.next_requests(7, 8, now), vec![0]);
    let err = f.on_data(7, 0, 50, &[1; 50]);
    assert!(matches!(
        err,
        Err(MetadataError::HashMismatch { size: 50, .. })
    ));
    let done = serve_all(&mut f, 8, &info, now).expect("valid");
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn the_size_most_peers_announce_goes_first() {
    let len = 100;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    f.on_peer_metadata_size(1, 50);
    f.on_peer_metadata_size(2, len as u32);
    f.on_peer_metadata_size(3, len as u32);
    assert!(f.next_requests(1, 8, now).is_empty());
    // Data at a size we are not assembling is ignored, not an error.
    assert_eq!(f.on_data(1, 0, 50, &[0; 50]), Ok(None));
    let done = serve_all(&mut f, 2, &info, now).expect("valid");
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn a_stalled_single_source_is_replaced() {
    let len = 2 * PIECE;
    let (info, hash) = info(len);
    let mut f = MetadataFetch::new(hash);
    let t0 = Instant::now();
    f.on_peer_metadata_size(1, len as u32);
    f.on_peer_metadata_size(2, len as u32);
    f.next_requests(1, 1, t0);
    f.next_requests(2, 1, t0);
    f.on_data(1, 0, len as u32, &piece_of(&info, 0))
        .expect("kept");
    assert!(f.on_data(2, 1, len as u32, &[0; PIECE]).is_err());
    f.on_peer_metadata_size(3, len as u32);
    assert_eq!(f.next_requests(3, 8, t0), vec![0, 1], "peer 3 holds it");
    assert!(f.next_requests(1, 8, t0 + SEC).is_empty());
    let later = t0 + REQUEST_TIMEOUT;
    assert_eq!(f.next_requests(1, 8, later), vec![0, 1], "peer 3 stalled");
    let done = serve_all(&mut f, 1, &info, later).expect("valid");
    assert_eq!(done, None, "already requested; answer them");
    let mut done = None;
    for p in 0..2 {
        done = done.or(f
            .on_data(1, p, len as u32, &piece_of(&info, p))
            .expect("ok"));
    }
    assert_eq!(done.as_deref(), Some(&info[..]));
}

#[test]
fn serving_slices_our_info_and_rejects_out_of_range() {
    let (info, _) = info(2 * PIECE + 3);
    let (total, first) = metadata_piece(&info, 0).expect("piece 0");
    assert_eq!((total, first.len()), (info.len() as u32, PIECE));
    assert_eq!(first.as_ptr(), info.as_ptr(), "a slice, not a copy");
    assert_eq!(piece_of(&info, 2).len(), 3);
    assert_eq!(metadata_piece(&info, 3), None);
    assert_eq!(metadata_piece(&info, u32::MAX), None);
    assert_eq!(metadata_piece(&Bytes::new(), 0), None);
    assert_eq!(serve_request(None, 0), MetadataMsg::Reject { piece: 0 });
    assert_eq!(
        serve_request(Some(&info), 9),
        MetadataMsg::Reject { piece: 9 }
    );
    let msg = serve_request(Some(&info), 2);
    assert_eq!(MetadataMsg::decode(&msg.encode()), Ok(msg));
    assert_eq!(announced_size(Some(&info)), Some(info.len() as u32));
    assert_eq!(announced_size(Some(&Bytes::new())), None);
    assert_eq!(announced_size(None), None);
}

#[test]
fn the_largest_accepted_size_round_trips_through_server_and_fetch() {
    let (info, hash) = info(METADATA_MAX_SIZE as usize);
    let mut f = MetadataFetch::new(hash);
    let now = Instant::now();
    assert!(f.on_peer_metadata_size(1, METADATA_MAX_SIZE));
    let mut done = None;
    while done.is_none() {
        let asked = f.next_requests(1, 4, now);
        assert!(!asked.is_empty());
        for p in asked {
            let MetadataMsg::Data {
                total_size, data, ..
            } = serve_request(Some(&info), p)
            else {
                panic!("in range");
            };
            done = done.or(f.on_data(1, p, total_size, &data).expect("valid"));
        }
    }
    assert_eq!(done.map(|d| d == info[..]), Some(true));
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    Honest,
    /// Announces the right size, sends garbage.
    Garbage,
    /// Announces (and serves, consistently) another size.
    OtherSize(u32),
    Rejects,
    Silent,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        Just(Behaviour::Garbage),
        (1u32..3 * METADATA_PIECE_SIZE).prop_map(Behaviour::OtherSize),
        Just(Behaviour::Rejects),
        Just(Behaviour::Silent),
        Just(Behaviour::Honest),
    ]
}

/// Few cases by default (the machine is shared); `PROPTEST_CASES` raises them.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Whatever mix of liars, rejecters and silent peers, one honest peer is enough: the fetch
    /// completes with the right bytes, and no step breaks the bookkeeping invariants.
    #[test]
    fn proptest_one_honest_peer_is_enough(
        len in 1usize..5 * PIECE,
        others in proptest::collection::vec(behaviour(), 0..5),
        honest_at in any::<prop::sample::Index>(),
        order in proptest::collection::vec(any::<u32>(), 400),
    ) {
        let (info, hash) = info(len);
        let mut peers = others.clone();
        peers.insert(honest_at.index(others.len() + 1), Behaviour::Honest);
        let mut f = MetadataFetch::new(hash);
        for (key, b) in peers.iter().enumerate() {
            let size = match b { Behaviour::OtherSize(s) => *s, _ => len as u32 };
            f.on_peer_metadata_size(key as u64, size);
        }
        let mut now = Instant::now();
        let mut result = None;
        for (step, r) in order.iter().enumerate() {
            now += Duration::from_secs(u64::from(r % 25));
            let n = peers.len();
            let mut pending = Vec::new();
            for i in 0..n {
                let key = ((i + *r as usize) % n) as u64;
                for p in f.next_requests(key, 3, now) {
                    prop_assert!((p as usize) * PIECE < len.max(3 * PIECE));
                    pending.push((key, p));
                }
            }
            if step % 2 == 1 {
                pending.reverse();
            }
            for (key, p) in pending {
                let out = match peers[key as usize] {
                    Behaviour::Honest => f.on_data(key, p, len as u32, &piece_of(&info, p)),
                    Behaviour::Garbage => {
                        let want = MetadataMsg::piece_len(len as u32, p).unwrap_or(0);
                        f.on_data(key, p, len as u32, &vec![0xAB; want as usize])
                    }
                    Behaviour::OtherSize(s) => {
                        let want = MetadataMsg::piece_len(s, p).unwrap_or(0);
                        f.on_data(key, p, s, &vec![0xCD; want as usize])
                    }
                    Behaviour::Rejects => { f.on_reject(key, p, now); Ok(None) }
                    Behaviour::Silent => Ok(None),
                };
                match out {
                    Ok(Some(bytes)) => result = Some(bytes),
                    Ok(None) | Err(MetadataError::HashMismatch { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
            if let Some(a) = &f.attempt {
                prop_assert!(a.buf.is_empty() || a.buf.len() == a.size as usize);
                prop_assert!(a.buf.capacity() <= a.size as usize);
            }
            if result.is_some() { break; }
        }
        prop_assert_eq!(result.as_deref(), Some(&info[..]));
        prop_assert!(f.is_done());
    }

    /// Serving every piece and concatenating them gives back the info bytes.
    #[test]
    fn proptest_served_pieces_concatenate_to_the_info(len in 1usize..6 * PIECE, extra in 0u32..3) {
        let (info, _) = info(len);
        let count = MetadataMsg::piece_count(len as u32);
        let mut joined = Vec::new();
        for p in 0..count + extra {
            match metadata_piece(&info, p) {
                Some((total, data)) => {
                    prop_assert!(p < count);
                    prop_assert_eq!(total as usize, len);
                    prop_assert_eq!(Some(data.len() as u32), MetadataMsg::piece_len(total, p));
                    joined.extend_from_slice(&data);
                }
                None => prop_assert!(p >= count),
            }
        }
        prop_assert_eq!(&joined[..], &info[..]);
    }
}
