use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

const ROUND: Duration = Duration::from_secs(10);
const OLD: Duration = Duration::from_secs(600);

fn ih(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// An interested, choked peer connected long ago.
fn peer(key: PeerKey) -> PeerSnapshot {
    PeerSnapshot {
        interested: true,
        connected_for: OLD,
        ..PeerSnapshot::new(key)
    }
}

fn leech(key: PeerKey, down: u64) -> PeerSnapshot {
    PeerSnapshot {
        download_rate: down,
        ..peer(key)
    }
}

fn seed_peer(key: PeerKey, up: u64) -> PeerSnapshot {
    PeerSnapshot {
        upload_rate: up,
        ..peer(key)
    }
}

fn torrent(n: u8, seeding: bool, peers: Vec<PeerSnapshot>) -> TorrentPeers {
    TorrentPeers {
        info_hash: ih(n),
        seeding,
        slots: None,
        peers,
    }
}

fn cfg(slots: usize) -> ChokeConfig {
    ChokeConfig {
        slots_per_torrent: slots,
        ..ChokeConfig::default()
    }
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// What the torrent does with a decision: the next snapshot shows it applied.
fn apply(t: &mut TorrentPeers, d: &TorrentDecision) {
    for p in &mut t.peers {
        p.am_choking = !d.unchoke.contains(&p.key);
        p.is_optimistic = d.optimistic == Some(p.key);
    }
}

fn regular(d: &TorrentDecision) -> Vec<PeerKey> {
    d.unchoke
        .iter()
        .copied()
        .filter(|k| Some(*k) != d.optimistic)
        .collect()
}

/// Runs `rounds` rounds 10 s apart on one torrent, applying each decision.
fn run(
    cfg: &ChokeConfig,
    t: &mut TorrentPeers,
    rounds: usize,
    rng: &mut StdRng,
) -> Vec<TorrentDecision> {
    let mut state = ChokeState::new();
    let t0 = Instant::now();
    (0..rounds)
        .map(|i| {
            let out = state.rechoke(cfg, std::slice::from_ref(t), t0 + ROUND * i as u32, rng);
            let d = out[&t.info_hash].clone();
            apply(t, &d);
            d
        })
        .collect()
}

#[test]
fn leeching_ranks_by_the_rate_peers_give_us() {
    let peers = vec![
        leech(1, 100),
        leech(2, 900),
        leech(3, 500),
        leech(4, 0),
        leech(5, 700),
        leech(6, 50),
    ];
    let out = ChokeState::new().rechoke(
        &cfg(4),
        &[torrent(1, false, peers)],
        Instant::now(),
        &mut rng(),
    );
    let d = &out[&ih(1)];
    assert_eq!(regular(d), vec![2, 3, 5]);
    let opt = d.optimistic.expect("an optimistic slot");
    assert!([1, 4, 6].contains(&opt));
    assert_eq!(d.unchoke.len(), 4);
}

#[test]
fn seeding_ranks_by_upload_rate() {
    let mut peers: Vec<_> = (1..=6).map(|k| seed_peer(k, k * 100)).collect();
    // A peer that sends us a lot counts for nothing once we are seeding.
    peers[0].download_rate = 1 << 30;
    let out = ChokeState::new().rechoke(
        &cfg(3),
        &[torrent(1, true, peers)],
        Instant::now(),
        &mut rng(),
    );
    assert_eq!(regular(&out[&ih(1)]), vec![5, 6]);
}

#[test]
fn round_robin_gives_every_peer_regular_turns() {
    let config = ChokeConfig {
        seeding_mode: SeedingMode::RoundRobin,
        ..cfg(3)
    };
    // Peer 1 is by far the fastest: round robin ignores that.
    let mut peers: Vec<_> = (1..=6).map(|k| seed_peer(k, 10)).collect();
    peers[0].upload_rate = 1 << 30;
    let mut t = torrent(1, true, peers);
    let decisions = run(&config, &mut t, 18, &mut rng());
    let mut served = BTreeSet::new();
    let mut held: HashMap<PeerKey, usize> = HashMap::new();
    for d in &decisions {
        for k in regular(d) {
            served.insert(k);
            *held.entry(k).or_default() += 1;
        }
    }
    assert_eq!(served, (1..=6).collect());
    // Turns are shared evenly: 2 regular slots × 18 rounds over 6 peers, 3 rounds (30 s) each.
    assert!(held.values().all(|&n| n == 6), "{held:?}");
    // A turn lasts 30 s: a regular slot is never taken away before three rounds.
    let mut run_len: HashMap<PeerKey, usize> = HashMap::new();
    for d in &decisions {
        let now = regular(d);
        for (k, n) in run_len.iter_mut() {
            if !now.contains(k) && *n > 0 {
                assert!(*n >= 3, "peer {k} held its slot {n} rounds");
                *n = 0;
            }
        }
        for k in now {
            *run_len.entry(k).or_default() += 1;
        }
    }
}

#[test]
fn optimistic_unchoke_rotates_every_thirty_seconds_and_reaches_everyone() {
    let mut peers = vec![leech(1, 1 << 20)];
    peers.extend((2..=6).map(|k| leech(k, 0)));
    let mut t = torrent(1, false, peers);
    let decisions = run(&cfg(2), &mut t, 15, &mut rng());
    let opts: Vec<PeerKey> = decisions.iter().map(|d| d.optimistic.unwrap()).collect();
    for d in &decisions {
        assert_eq!(regular(d), vec![1], "the fast peer keeps its regular slot");
    }
    for turn in opts.chunks(3) {
        assert!(turn.iter().all(|k| *k == turn[0]), "{opts:?}");
    }
    let turns: Vec<PeerKey> = opts.chunks(3).map(|c| c[0]).collect();
    assert_eq!(
        turns.iter().copied().collect::<BTreeSet<_>>(),
        (2..=6).collect(),
        "five rotations reach all five choked peers: {turns:?}"
    );
}

#[test]
fn new_peers_are_favoured_in_the_optimistic_draw() {
    let mut counts: HashMap<PeerKey, u32> = HashMap::new();
    for seed in 0..3000 {
        let mut peers = vec![leech(1, 1000), leech(2, 0), leech(3, 0), leech(4, 0)];
        peers.push(PeerSnapshot {
            connected_for: Duration::from_secs(5),
            ..leech(5, 0)
        });
        let out = ChokeState::new().rechoke(
            &cfg(2),
            &[torrent(1, false, peers)],
            Instant::now(),
            &mut StdRng::seed_from_u64(seed),
        );
        *counts.entry(out[&ih(1)].optimistic.unwrap()).or_default() += 1;
    }
    // Weights 1, 1, 1, 3: the new peer is drawn half the time, each old one a sixth.
    let new = counts[&5];
    assert!((1350..1650).contains(&new), "{counts:?}");
    for k in 2..=4 {
        assert!(counts[&k] * 2 < new, "{counts:?}");
    }
}

#[test]
fn a_promoted_optimistic_peer_is_replaced_at_once() {
    let mut t = torrent(1, false, vec![leech(1, 1000), leech(2, 0), leech(3, 0)]);
    let mut state = ChokeState::new();
    let t0 = Instant::now();
    let d = state.rechoke(&cfg(2), &[t.clone()], t0, &mut rng())[&ih(1)].clone();
    let opt = d.optimistic.unwrap();
    apply(&mut t, &d);
    // The optimistic peer turns out to be much faster than the regular one.
    for p in &mut t.peers {
        p.download_rate = if p.key == opt { 5000 } else { 0 };
    }
    let d = state.rechoke(&cfg(2), &[t.clone()], t0 + ROUND, &mut rng())[&ih(1)].clone();
    assert_eq!(regular(&d), vec![opt]);
    assert!(d.optimistic.is_some_and(|o| o != opt));
}

fn snubber(key: PeerKey, down: u64) -> PeerSnapshot {
    PeerSnapshot {
        unchoked_us_for: Some(Duration::from_secs(300)),
        interested_for: Some(Duration::from_secs(300)),
        last_piece_ago: Some(Duration::from_secs(61)),
        ..leech(key, down)
    }
}

#[test]
fn snubbing_needs_their_unchoke_our_interest_and_a_minute_of_silence() {
    let after = Duration::from_secs(60);
    assert!(snubber(1, 0).is_snubbed(after));
    let recent_block = PeerSnapshot {
        last_piece_ago: Some(Duration::from_secs(5)),
        ..snubber(1, 0)
    };
    let choking_us = PeerSnapshot {
        unchoked_us_for: None,
        ..snubber(1, 0)
    };
    let not_interested = PeerSnapshot {
        interested_for: None,
        ..snubber(1, 0)
    };
    let just_unchoked = PeerSnapshot {
        unchoked_us_for: Some(Duration::from_secs(20)),
        last_piece_ago: None,
        ..snubber(1, 0)
    };
    let never_sent = PeerSnapshot {
        last_piece_ago: None,
        ..snubber(1, 0)
    };
    for p in [recent_block, choking_us, not_interested, just_unchoked] {
        assert!(!p.is_snubbed(after), "{p:?}");
    }
    assert!(never_sent.is_snubbed(after));
}

#[test]
fn a_snubbed_peer_loses_its_regular_slot_but_may_be_optimistic() {
    // Peer 1 had the best (stale) rate but sent nothing for a minute.
    let peers = vec![snubber(1, 9000), leech(2, 100), leech(3, 50), leech(4, 10)];
    let out = ChokeState::new().rechoke(
        &cfg(3),
        &[torrent(1, false, peers)],
        Instant::now(),
        &mut rng(),
    );
    let d = &out[&ih(1)];
    assert_eq!(regular(d), vec![2, 3]);
    assert_eq!(d.snubbed, vec![1]);

    // Only the snubbed peer and one other: the snubbed one can only be the optimistic unchoke.
    let peers = vec![snubber(1, 9000), leech(2, 100)];
    let out = ChokeState::new().rechoke(
        &cfg(4),
        &[torrent(1, false, peers)],
        Instant::now(),
        &mut rng(),
    );
    let d = &out[&ih(1)];
    assert_eq!(regular(d), vec![2]);
    assert_eq!(d.optimistic, Some(1));
}

#[test]
fn per_torrent_slots_are_a_hard_cap() {
    let peers: Vec<_> = (1..=20).map(|k| leech(k, k * 10)).collect();
    for slots in 0..6 {
        let out = ChokeState::new().rechoke(
            &cfg(slots),
            &[torrent(1, false, peers.clone())],
            Instant::now(),
            &mut rng(),
        );
        let d = &out[&ih(1)];
        assert_eq!(d.unchoke.len(), slots);
        assert_eq!(d.optimistic.is_some(), slots >= 2);
    }
}

/// A torrent's own upload slots (`swarmctl limits --slots`) replace the session's cap for it
/// alone.
#[test]
fn a_torrent_s_own_slots_replace_the_session_s() {
    let peers: Vec<_> = (1..=20).map(|k| leech(k, k * 10)).collect();
    let own = TorrentPeers {
        slots: Some(8),
        ..torrent(1, false, peers.clone())
    };
    let out = ChokeState::new().rechoke(
        &cfg(4),
        &[own, torrent(2, false, peers)],
        Instant::now(),
        &mut rng(),
    );
    assert_eq!(out[&ih(1)].unchoke.len(), 8);
    assert_eq!(out[&ih(2)].unchoke.len(), 4);
}

#[test]
fn global_slots_are_split_max_min_fair() {
    let many = |n: u8| torrent(n, false, (1..=10).map(|k| leech(k, k)).collect());
    let few = torrent(3, true, vec![seed_peer(1, 5)]);
    let config = ChokeConfig {
        global_slots: Some(7),
        ..cfg(4)
    };
    let out = ChokeState::new().rechoke(
        &config,
        &[many(1), many(2), few],
        Instant::now(),
        &mut rng(),
    );
    let counts: Vec<usize> = out.values().map(|d| d.unchoke.len()).collect();
    // The small torrent gets all it wants (1); the other two share the other six.
    assert_eq!(counts, vec![3, 3, 1]);

    // An odd slot goes to the torrent that has more peers unchoked now, whatever its hash.
    let mut busy = many(9);
    for p in busy.peers.iter_mut().take(2) {
        p.am_choking = false;
    }
    let config = ChokeConfig {
        global_slots: Some(3),
        ..cfg(4)
    };
    let out = ChokeState::new().rechoke(&config, &[many(1), busy], Instant::now(), &mut rng());
    assert_eq!(out[&ih(1)].unchoke.len(), 1);
    assert_eq!(out[&ih(9)].unchoke.len(), 2);
}

#[test]
fn uninterested_peers_are_never_unchoked() {
    let mut peers: Vec<_> = (1..=5)
        .map(|k| PeerSnapshot {
            interested: false,
            ..leech(k, 1000 * k)
        })
        .collect();
    peers[0].am_choking = false; // was unchoked, then lost interest
    peers.push(leech(6, 0));
    let out = ChokeState::new().rechoke(
        &cfg(4),
        &[torrent(1, false, peers.clone())],
        Instant::now(),
        &mut rng(),
    );
    let d = &out[&ih(1)];
    assert_eq!(d.unchoke, vec![6]);
    assert_eq!(d.optimistic, None, "everyone interested fits: no draw");
    let current = peers.iter().map(|p| (p.key, p.am_choking));
    assert_eq!(d.changes(current), vec![(1, true), (6, false)]);
}

#[test]
fn equal_or_noisy_rates_do_not_flap() {
    let mut t = torrent(1, false, (1..=8).map(|k| leech(k, 1000)).collect());
    let config = cfg(4);
    let mut state = ChokeState::new();
    let t0 = Instant::now();
    let mut r = rng();
    let first = state.rechoke(&config, &[t.clone()], t0, &mut r)[&ih(1)].clone();
    apply(&mut t, &first);
    for i in 1..30u32 {
        // ±4 % noise, alternating in favour of the choked peers.
        for p in &mut t.peers {
            let up = (p.key + u64::from(i)) % 2 == 0;
            p.download_rate = if up == p.am_choking { 1040 } else { 960 };
        }
        let d = state.rechoke(&config, &[t.clone()], t0 + ROUND * i, &mut r)[&ih(1)].clone();
        assert_eq!(regular(&d), regular(&first), "round {i}");
        apply(&mut t, &d);
    }
}

#[test]
fn a_restarted_choker_keeps_the_reported_optimistic_peer() {
    let mut peers = vec![leech(1, 1000), leech(2, 0), leech(3, 0), leech(4, 0)];
    peers[0].am_choking = false;
    peers[2].am_choking = false;
    peers[2].is_optimistic = true;
    let out = ChokeState::new().rechoke(
        &cfg(2),
        &[torrent(1, false, peers)],
        Instant::now(),
        &mut rng(),
    );
    let d = &out[&ih(1)];
    assert_eq!(d.unchoke, vec![1, 3]);
    assert_eq!(d.optimistic, Some(3));
    assert!(d.changes([(1, false), (2, true), (3, false)]).is_empty());
}

fn arb_peer() -> impl Strategy<Value = PeerSnapshot> {
    (
        0u64..30,
        any::<bool>(),
        any::<bool>(),
        0u64..5000,
        0u64..5000,
        0u64..200,
        proptest::option::of(0u64..200),
        proptest::option::of(0u64..200),
        proptest::option::of(0u64..200),
    )
        .prop_map(|(key, interested, am_choking, down, up, age, lp, uu, fi)| {
            let secs = Duration::from_secs;
            PeerSnapshot {
                key,
                interested,
                am_choking,
                is_optimistic: false,
                download_rate: down,
                upload_rate: up,
                connected_for: secs(age),
                last_piece_ago: lp.map(secs),
                unchoked_us_for: uu.map(secs),
                interested_for: fi.map(secs),
            }
        })
}

fn arb_torrent(n: u8) -> impl Strategy<Value = TorrentPeers> {
    (any::<bool>(), proptest::collection::vec(arb_peer(), 0..25)).prop_map(
        move |(seeding, mut peers)| {
            peers.sort_by_key(|p| p.key);
            peers.dedup_by_key(|p| p.key);
            torrent(n, seeding, peers)
        },
    )
}

proptest! {
    #[test]
    fn decisions_respect_interest_snubbing_and_every_cap(
        torrents in proptest::collection::vec(0u8..6, 1..5)
            .prop_flat_map(|ns| ns.into_iter().collect::<BTreeSet<_>>().into_iter()
                .map(arb_torrent).collect::<Vec<_>>()),
        slots in 0usize..6,
        global in proptest::option::of(0usize..12),
        round_robin in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let config = ChokeConfig {
            global_slots: global,
            seeding_mode: if round_robin { SeedingMode::RoundRobin } else { SeedingMode::ByUploadRate },
            ..cfg(slots)
        };
        let mut state = ChokeState::new();
        let mut r = StdRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let mut torrents = torrents;
        for round in 0..4u32 {
            let out = state.rechoke(&config, &torrents, t0 + ROUND * round, &mut r);
            prop_assert_eq!(out.len(), torrents.len());
            let total: usize = out.values().map(|d| d.unchoke.len()).sum();
            prop_assert!(total <= global.unwrap_or(usize::MAX));
            for t in &mut torrents {
                let d = &out[&t.info_hash];
                prop_assert!(d.unchoke.len() <= slots);
                if let Some(o) = d.optimistic {
                    prop_assert!(d.unchoke.contains(&o));
                }
                for k in &d.unchoke {
                    let p = t.peers.iter().find(|p| p.key == *k).unwrap();
                    prop_assert!(p.interested);
                    if p.is_snubbed(config.snub_after) {
                        prop_assert_eq!(d.optimistic, Some(*k));
                    }
                }
                // Nobody interested and unsnubbed is left choked while a slot sits unused.
                if d.unchoke.len() < slots && global.is_none() {
                    let waiting = t.peers.iter().filter(|p| p.interested
                        && !p.is_snubbed(config.snub_after)
                        && !d.unchoke.contains(&p.key)).count();
                    prop_assert_eq!(waiting, 0);
                }
                apply(t, d);
            }
        }
    }
}
