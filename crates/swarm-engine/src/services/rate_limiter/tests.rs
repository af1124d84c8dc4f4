use std::sync::{Arc, Mutex};

use super::*;

const A: InfoHash = InfoHash([1; 20]);
const B: InfoHash = InfoHash([2; 20]);
const KIB: u64 = 1024;

fn limiter(board: &QuotaBoard) -> Addr<RateLimiter> {
    RateLimiter::new(board.clone(), ChildLink::detached()).start()
}

fn ask(info_hash: InfoHash, want: u64) -> RequestQuota {
    RequestQuota {
        info_hash,
        dir: Direction::Up,
        want,
    }
}

/// A peer uploading 16 KiB blocks as fast as its allowance lets it, for `run`.
async fn upload_for(
    limiter: Addr<RateLimiter>,
    gate: QuotaGate,
    ih: InfoHash,
    run: Duration,
) -> u64 {
    let mut allowance = Allowance::new(gate, Direction::Up);
    let end = Instant::now() + run;
    let mut sent = 0;
    while Instant::now() < end {
        match allowance.spend(16 * KIB) {
            Spend::Go => {
                sent += 16 * KIB;
                // A real peer would write to its socket here; yield so the test's clock moves.
                tokio::task::yield_now().await;
            }
            Spend::Ask(want) => {
                let left = end.saturating_duration_since(Instant::now());
                let reply = tokio::time::timeout(left, limiter.send(ask(ih, want))).await;
                let Ok(reply) = reply else { break };
                if let Some(delay) = allowance.granted(reply.ok()) {
                    tokio::time::sleep(delay).await;
                }
            }
            Spend::Wait => unreachable!("one task, one request at a time"),
        }
    }
    sent
}

#[actix_rt::test]
async fn with_no_limit_peers_never_ask() {
    let board = QuotaBoard::new();
    let limiter = limiter(&board);
    assert_eq!(
        limiter.send(ask(A, 1 << 30)).await.unwrap(),
        Grant::Unlimited
    );
    let mut allowance = Allowance::new(board.gate(A), Direction::Up);
    for _ in 0..1000 {
        assert_eq!(allowance.spend(16 * KIB), Spend::Go);
    }
}

#[actix_rt::test]
async fn a_global_limit_paces_peers_of_all_torrents_together() {
    let board = QuotaBoard::new();
    let limiter = limiter(&board);
    let rate = 256 * KIB;
    limiter.do_send(SetLimits {
        global_down: None,
        global_up: Some(rate),
    });
    let _ = limiter.send(GetLimiterStats).await;
    assert!(board.gate(A).limited(Direction::Up));
    let run = Duration::from_millis(1500);
    let peers: Vec<_> = [A, A, A, B]
        .into_iter()
        .map(|ih| tokio::spawn(upload_for(limiter.clone(), board.gate(ih), ih, run)))
        .collect();
    let mut sent = Vec::new();
    for p in peers {
        sent.push(p.await.unwrap());
    }
    let total: u64 = sent.iter().sum();
    let burst = rate; // one second of rate
    let bound = rate * 3 / 2 + burst;
    // Each peer may also have up to one batch granted and unspent when the run ends.
    assert!(total <= bound, "{total} > {bound} ({sent:?})");
    assert!(total >= rate, "{total} < {rate} ({sent:?})");
    // The lone peer of B is not starved by A's three.
    assert!(sent[3] >= 32 * KIB, "{sent:?}");
}

#[actix_rt::test]
async fn lifting_the_limit_answers_the_waiters_unlimited() {
    let board = QuotaBoard::new();
    let limiter = limiter(&board);
    limiter.do_send(SetTorrentLimits {
        info_hash: A,
        down: None,
        up: Some(32 * KIB),
        priority: Default::default(),
    });
    assert_eq!(
        limiter.send(ask(A, 1 << 20)).await.unwrap(),
        Grant::Bytes(32 * KIB)
    );
    // Empty now: the next request waits ~0.5 s for a block...
    let waiting = tokio::spawn(limiter.send(ask(A, 1 << 20)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(limiter.send(GetLimiterStats).await.unwrap().waiting, 1);
    // ...unless the limit goes first.
    limiter.do_send(SetTorrentLimits {
        info_hash: A,
        down: None,
        up: None,
        priority: Default::default(),
    });
    let reply = tokio::time::timeout(Duration::from_secs(3), waiting).await;
    assert_eq!(reply.unwrap().unwrap().unwrap(), Grant::Unlimited);
    assert!(!board.gate(A).limited(Direction::Up));
}

#[actix_rt::test]
async fn a_waiter_is_answered_when_tokens_come() {
    let board = QuotaBoard::new();
    let limiter = limiter(&board);
    limiter.do_send(SetLimits {
        global_down: Some(64 * KIB),
        global_up: None,
    });
    let down = |want| RequestQuota {
        info_hash: A,
        dir: Direction::Down,
        want,
    };
    assert_eq!(
        limiter.send(down(1 << 20)).await.unwrap(),
        Grant::Bytes(64 * KIB)
    );
    let t0 = Instant::now();
    let grant = limiter.send(down(1 << 20)).await.unwrap();
    let waited = t0.elapsed();
    // One block's worth, plus what trickled in while the timer fired.
    assert!(
        matches!(grant, Grant::Bytes(n) if (16 * KIB..20 * KIB).contains(&n)),
        "{grant:?}"
    );
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // Uploads are not limited.
    assert_eq!(
        limiter.send(ask(A, 1 << 20)).await.unwrap(),
        Grant::Unlimited
    );
}

#[actix_rt::test]
async fn a_restarted_limiter_keeps_the_limits() {
    let board = QuotaBoard::new();
    let seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    let first = RateLimiter::new(
        board.clone(),
        ChildLink::new(move |r| *sink.lock().unwrap() = Some(r)),
    )
    .start();
    first.do_send(SetLimits {
        global_down: Some(100 * KIB),
        global_up: Some(50 * KIB),
    });
    first.send(Terminate).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*seen.lock().unwrap(), Some(ExitReason::Shutdown));
    let gate = board.gate(A);
    assert!(gate.limited(Direction::Down) && gate.limited(Direction::Up));

    let second = limiter(&board);
    let stats = second.send(GetLimiterStats).await.unwrap();
    assert_eq!(
        stats.settings.global,
        Limits::new(Some(100 * KIB), Some(50 * KIB))
    );
    assert!(matches!(
        second.send(ask(A, 1 << 20)).await.unwrap(),
        Grant::Bytes(n) if n <= 64 * KIB
    ));
}
