use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const MIN: Duration = Duration::from_secs(60);

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, last), port))
}

fn plain(addrs: &[SocketAddr]) -> Vec<(SocketAddr, PexFlags)> {
    addrs.iter().map(|a| (*a, PexFlags(0))).collect()
}

#[test]
fn the_first_message_lists_everyone_but_the_peer() {
    let remote = addr(1, 50000);
    let mut pex = PexState::new(remote);
    pex.set_listen_port(6881);
    let connected = plain(&[remote, addr(1, 6881), addr(2, 6881), addr(3, 6881)]);
    let msg = pex.next_message(&connected, Instant::now()).expect("news");
    assert_eq!(msg.added, plain(&[addr(2, 6881), addr(3, 6881)]));
    assert!(msg.dropped.is_empty());
    assert_eq!(pex.told_count(), 2);
}

#[test]
fn at_most_once_a_minute_and_only_with_news() {
    let t0 = Instant::now();
    let mut pex = PexState::new(addr(1, 1));
    let (a, b, c) = (addr(2, 1), addr(3, 1), addr(4, 1));
    assert!(pex.next_message(&plain(&[a, b]), t0).is_some());
    assert!(pex
        .next_message(&plain(&[a, c]), t0 + MIN - Duration::from_secs(1))
        .is_none());
    let msg = pex.next_message(&plain(&[a, c]), t0 + MIN).expect("due");
    assert_eq!(msg.added, plain(&[c]));
    assert_eq!(msg.dropped, vec![b]);
    assert!(
        pex.next_message(&plain(&[a, c]), t0 + 5 * MIN).is_none(),
        "no news"
    );
    // No message was sent at 5 min, so news a little later goes out at once.
    let msg = pex.next_message(&plain(&[a]), t0 + 5 * MIN + Duration::from_secs(1));
    assert_eq!(msg.map(|m| m.dropped), Some(vec![c]));
}

#[test]
fn fifty_added_and_fifty_dropped_per_message_the_rest_later() {
    let t0 = Instant::now();
    let mut pex = PexState::new(addr(0, 1));
    let first: Vec<SocketAddr> = (1..=120).map(|i| addr(i, 1)).collect();
    let msg = pex.next_message(&plain(&first), t0).expect("news");
    assert_eq!(msg.added.len(), MAX_ADDED_PER_MESSAGE);
    assert_eq!(msg.added[0].0, addr(1, 1), "the caller's order is kept");
    let msg = pex.next_message(&plain(&first), t0 + MIN).expect("more");
    assert_eq!(msg.added.len(), MAX_ADDED_PER_MESSAGE);
    let msg = pex.next_message(&[], t0 + 2 * MIN).expect("drops");
    assert_eq!(msg.added.len(), 0);
    assert_eq!(msg.dropped.len(), MAX_DROPPED_PER_MESSAGE);
    let msg = pex.next_message(&[], t0 + 3 * MIN).expect("drops");
    assert_eq!(msg.dropped.len(), MAX_DROPPED_PER_MESSAGE);
    assert_eq!(pex.told_count(), 0);
}

#[test]
fn reachable_peers_go_first_and_invalid_addresses_never() {
    let mut pex = PexState::new(addr(0, 1));
    let mut connected = plain(&[addr(1, 0), SocketAddr::from(([0, 0, 0, 0], 1))]);
    connected.push((SocketAddr::from(([224, 0, 0, 1], 1)), PexFlags(0)));
    connected.push((SocketAddr::from(([255, 255, 255, 255], 1)), PexFlags(0)));
    connected.push(("[ff02::1]:1".parse().expect("addr"), PexFlags(0)));
    connected.push(("[::]:1".parse().expect("addr"), PexFlags(0)));
    connected.extend(plain(&[addr(2, 1), addr(2, 1)]));
    connected.push((addr(3, 1), PexFlags(PexFlags::OUTGOING)));
    let msg = pex.next_message(&connected, Instant::now()).expect("news");
    assert_eq!(
        msg.added,
        vec![
            (addr(3, 1), PexFlags(PexFlags::OUTGOING)),
            (addr(2, 1), PexFlags(0))
        ]
    );
}

#[test]
fn the_inbox_rate_limits_caps_and_filters() {
    let t0 = Instant::now();
    let sender = addr(1, 6881);
    let mut inbox = PexInbox::new(sender);
    let mut added = plain(&[sender, addr(2, 0), addr(3, 1), addr(3, 1)]);
    added.push((SocketAddr::from(([127, 0, 0, 1], 80)), PexFlags(0)));
    added.push((SocketAddr::from(([239, 1, 1, 1], 80)), PexFlags(0)));
    added.extend((10..=80).map(|i| (addr(i, 1), PexFlags(0))));
    let msg = PexMessage {
        added,
        dropped: vec![addr(9, 9)],
    };
    let taken = inbox.accept(&msg, t0).expect("first message");
    assert_eq!(taken.len(), MAX_TAKEN_PER_MESSAGE);
    assert_eq!(taken[0].0, addr(3, 1));
    assert_eq!(
        taken[1].0,
        addr(10, 1),
        "duplicates, loopback, multicast skipped"
    );
    assert_eq!(inbox.accept(&msg, t0 + Duration::from_secs(44)), None);
    assert_eq!(inbox.ignored(), 1);
    assert!(inbox.accept(&msg, t0 + MIN_INBOUND_INTERVAL).is_some());
}

#[test]
fn a_loopback_sender_may_name_loopback_peers() {
    let mut inbox = PexInbox::new(SocketAddr::from(([127, 0, 0, 1], 6881)));
    let other = SocketAddr::from(([127, 0, 0, 1], 6882));
    let msg = PexMessage {
        added: plain(&[other]),
        dropped: vec![],
    };
    assert_eq!(inbox.accept(&msg, Instant::now()), Some(plain(&[other])));
}

/// Few cases by default (the machine is shared); `PROPTEST_CASES` raises them.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Replaying our messages, the peer's view of our connections is always consistent (adds
    /// are new, drops are known, never itself) and catches up once the swarm holds still.
    #[test]
    fn proptest_the_peer_view_converges(
        steps in proptest::collection::vec(
            (proptest::collection::vec(0u8..140, 0..130), 0u64..150),
            1..12,
        ),
    ) {
        let remote = addr(7, 7);
        let mut pex = PexState::new(remote);
        let mut view: BTreeSet<SocketAddr> = BTreeSet::new();
        let mut now = Instant::now();
        let mut last_sent: Option<Instant> = None;
        let mut apply = |msg: PexMessage, now: Instant, view: &mut BTreeSet<SocketAddr>| {
            assert!(msg.added.len() <= MAX_ADDED_PER_MESSAGE);
            assert!(msg.dropped.len() <= MAX_DROPPED_PER_MESSAGE);
            assert!(!matches!(last_sent, Some(t) if now - t < PEX_INTERVAL));
            last_sent = Some(now);
            for a in &msg.dropped {
                assert!(view.remove(a), "dropped {a} it never heard of");
            }
            for (a, _) in &msg.added {
                assert!(*a != remote && is_valid_pex_addr(a));
                assert!(view.insert(*a), "added {a} twice");
            }
        };
        let mut connected = Vec::new();
        for (peers, secs) in steps {
            now += Duration::from_secs(secs);
            connected = peers.iter().map(|&i| (addr(i, 7), PexFlags(i % 3 * 8))).collect();
            if let Some(msg) = pex.next_message(&connected, now) {
                apply(msg, now, &mut view);
            }
        }
        for _ in 0..10 {
            now += PEX_INTERVAL;
            if let Some(msg) = pex.next_message(&connected, now) {
                apply(msg, now, &mut view);
            }
        }
        let want: BTreeSet<SocketAddr> = (connected.iter())
            .map(|(a, _)| *a)
            .filter(|a| *a != remote)
            .collect();
        prop_assert_eq!(view, want);
    }

    #[test]
    fn proptest_the_inbox_never_takes_more_than_the_cap(
        added in proptest::collection::vec((any::<SocketAddr>(), any::<u8>()), 0..300),
        gaps in proptest::collection::vec(0u64..100, 1..8),
    ) {
        let sender = addr(1, 1);
        let mut inbox = PexInbox::new(sender);
        let msg = PexMessage {
            added: added.into_iter().map(|(a, f)| (a, PexFlags(f))).collect(),
            dropped: vec![],
        };
        let mut now = Instant::now();
        let mut last: Option<Instant> = None;
        for gap in gaps {
            now += Duration::from_secs(gap);
            let due = !matches!(last, Some(t) if now - t < MIN_INBOUND_INTERVAL);
            match inbox.accept(&msg, now) {
                Some(taken) => {
                    prop_assert!(due);
                    last = Some(now);
                    prop_assert!(taken.len() <= MAX_TAKEN_PER_MESSAGE);
                    let unique: HashSet<_> = taken.iter().map(|(a, _)| *a).collect();
                    prop_assert_eq!(unique.len(), taken.len());
                    for (a, _) in &taken {
                        prop_assert!(is_valid_pex_addr(a) && *a != sender && !a.ip().is_loopback());
                    }
                }
                None => prop_assert!(!due),
            }
        }
    }
}
