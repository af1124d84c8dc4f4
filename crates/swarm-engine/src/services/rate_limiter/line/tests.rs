use proptest::prelude::*;

use super::super::quota::Limits;
use super::*;

const A: InfoHash = InfoHash([1; 20]);
const B: InfoHash = InfoHash([2; 20]);
const KIB: u64 = 1024;
const UP: Direction = Direction::Up;

fn global(up: Option<u64>) -> LimitSettings {
    LimitSettings {
        global: Limits::new(None, up),
        ..Default::default()
    }
}

fn bytes(g: Grant) -> u64 {
    match g {
        Grant::Bytes(n) => n,
        other => panic!("expected bytes, got {other:?}"),
    }
}

#[test]
fn unlimited_is_answered_at_once_and_counts_nothing() {
    let mut line = Line::new(LimitSettings::default());
    let now = Instant::now();
    assert_eq!(
        line.request(A, UP, 1 << 40, 7, now),
        Some((7, Grant::Unlimited))
    );
    assert_eq!(line.waiting(), 0);
}

#[test]
fn grants_from_the_bucket_then_queues_until_tokens_come() {
    let t0 = Instant::now();
    let mut line = Line::new(global(Some(64 * KIB)));
    let (_, g) = line.request(A, UP, 256 * KIB, 1, t0).unwrap();
    assert_eq!(bytes(g), 64 * KIB, "the whole burst, no more");
    assert_eq!(line.request(A, UP, 256 * KIB, 2, t0), None);
    assert_eq!(line.waiting(), 1);
    let wake = line.next_wake().unwrap();
    assert_eq!(wake, Duration::from_millis(250), "one block at 64 KiB/s");
    assert!(line.serve(t0 + wake / 2).is_empty());
    let served = line.serve(t0 + wake);
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].0, 2);
    assert_eq!(bytes(served[0].1), 16 * KIB);
    assert_eq!(line.waiting(), 0);
}

#[test]
fn a_torrent_limit_slows_only_that_torrent() {
    let t0 = Instant::now();
    let mut settings = global(Some(1 << 20));
    settings
        .torrents
        .insert(A, Limits::new(None, Some(32 * KIB)));
    let mut line = Line::new(settings);
    assert_eq!(
        bytes(line.request(A, UP, 256 * KIB, 1, t0).unwrap().1),
        32 * KIB
    );
    assert_eq!(line.request(A, UP, 256 * KIB, 2, t0), None);
    // B waits behind A's queue (fair order in the direction), but is served at once by the
    // next serve: the global bucket has plenty.
    assert_eq!(line.request(B, UP, 256 * KIB, 3, t0), None);
    let served = line.serve(t0);
    assert_eq!(served.iter().map(|s| s.0).collect::<Vec<_>>(), vec![3]);
    assert!(line.next_wake().unwrap() >= Duration::from_millis(499));
}

#[test]
fn the_line_takes_turns_across_torrents() {
    let t0 = Instant::now();
    let mut line = Line::new(global(Some(32 * KIB)));
    line.request(A, UP, 1 << 20, 0, t0); // empties the bucket
    for i in 1..=10 {
        assert_eq!(line.request(A, UP, 16 * KIB, i, t0), None);
    }
    assert_eq!(line.request(B, UP, 16 * KIB, 100, t0), None);
    let mut order = Vec::new();
    let mut now = t0;
    while line.waiting() > 0 {
        now += line.next_wake().unwrap();
        order.extend(line.serve(now).into_iter().map(|(w, _)| w));
    }
    let b_at = order.iter().position(|w| *w == 100).unwrap();
    assert!(
        b_at <= 2,
        "B's only waiter is served after one turn of A at most (two grants, normal priority): \
         {order:?}"
    );
    assert_eq!(order.len(), 11);
}

/// Bandwidth priorities: while bytes are short, a high-priority torrent is served four times as
/// often as a low one, even when each serve has a single block to give.
#[test]
fn priorities_weigh_the_turns() {
    let t0 = Instant::now();
    let mut settings = global(Some(32 * KIB));
    settings
        .weights
        .insert(A, swarm_model::BandwidthPriority::High.weight());
    settings
        .weights
        .insert(B, swarm_model::BandwidthPriority::Low.weight());
    let mut line = Line::new(settings);
    line.request(A, UP, 1 << 20, 0, t0); // empties the bucket
    for i in 1..=60 {
        assert_eq!(line.request(A, UP, 16 * KIB, i, t0), None);
        assert_eq!(line.request(B, UP, 16 * KIB, 1000 + i, t0), None);
    }
    let mut order = Vec::new();
    let mut now = t0;
    while order.len() < 50 {
        now += line.next_wake().unwrap();
        order.extend(line.serve(now).into_iter().map(|(w, _)| w));
    }
    let b = order[..50].iter().filter(|w| **w >= 1000).count();
    assert_eq!((50 - b, b), (40, 10), "{order:?}");
}

#[test]
fn lifting_a_limit_releases_the_waiters() {
    let t0 = Instant::now();
    let mut line = Line::new(global(Some(32 * KIB)));
    line.request(A, UP, 1 << 20, 0, t0);
    assert_eq!(line.request(A, UP, 1 << 20, 1, t0), None);
    assert_eq!(line.request(B, UP, 1 << 20, 2, t0), None);
    let freed = line.apply(global(None), t0);
    assert_eq!(freed.len(), 2);
    assert_eq!(line.waiting(), 0);
    assert!(line.next_wake().is_none());
}

#[test]
fn the_line_is_bounded() {
    let t0 = Instant::now();
    let mut line = Line::new(global(Some(32 * KIB)));
    line.request(A, UP, 1 << 20, 0, t0);
    for i in 0..MAX_WAITERS_PER_TORRENT {
        assert_eq!(line.request(A, UP, KIB, i, t0), None);
    }
    assert!(matches!(
        line.request(A, UP, KIB, 9999, t0),
        Some((9999, Grant::RetryAfter(_)))
    ));
    assert_eq!(
        line.request(B, UP, KIB, 1, t0),
        None,
        "other torrents still queue"
    );
}

#[test]
fn purge_forgets_departed_peers() {
    let t0 = Instant::now();
    let mut line = Line::new(global(Some(32 * KIB)));
    line.request(A, UP, 1 << 20, 0, t0);
    for i in 1..=4 {
        line.request(A, UP, KIB, i, t0);
    }
    line.purge(|w| w % 2 == 0);
    assert_eq!(line.waiting(), 2);
    line.purge(|_| true);
    assert_eq!(line.waiting(), 0);
    assert!(line.next_wake().is_none());
}

proptest! {
    /// Many peers of several torrents asking greedily: what is granted over the run stays within
    /// rate·t + burst, and the limiter keeps the link busy (at least 90 % of the rate).
    #[test]
    fn greedy_peers_get_the_rate_and_no_more(
        rate in (32u64..2048).prop_map(|k| k * KIB),
        peers in proptest::collection::vec((0u8..4, 1u64..(512 * KIB)), 1..40),
    ) {
        let t0 = Instant::now();
        let mut line = Line::new(global(Some(rate)));
        let mut now = t0;
        let mut total = 0u64;
        // A peer asks, and asks again at once whenever it is answered on the spot.
        let ask = |line: &mut Line<usize>, i: usize, now: Instant| {
            let (t, want) = peers[i];
            let mut got = 0;
            while let Some((_, g)) = line.request(InfoHash([t; 20]), UP, want, i, now) {
                got += bytes_or_zero(g);
            }
            got
        };
        for i in 0..peers.len() {
            total += ask(&mut line, i, now);
        }
        let end = t0 + Duration::from_secs(10);
        while now < end {
            now = match line.next_wake() {
                Some(w) => (now + w.max(Duration::from_millis(1))).min(end),
                None => end,
            };
            for (i, g) in line.serve(now) {
                total += bytes_or_zero(g);
                total += ask(&mut line, i, now);
            }
        }
        let burst = rate.max(2 * MIN_GRANT);
        prop_assert!(total <= rate * 10 + burst, "{total} > {}", rate * 10 + burst);
        prop_assert!(total >= rate * 9, "{total} < {}", rate * 9);
    }
}

fn bytes_or_zero(g: Grant) -> u64 {
    match g {
        Grant::Bytes(n) => n,
        _ => 0,
    }
}
