use super::*;
use proptest::prelude::*;

fn own() -> NodeId {
    NodeId([0; 20])
}

/// An id sharing exactly `prefix` (< 152) bits with [`own`], told apart by `tag` in its last byte.
fn id_at(prefix: usize, tag: u8) -> NodeId {
    let mut b = [0u8; 20];
    b[prefix / 8] |= 0x80 >> (prefix % 8);
    b[19] |= tag;
    NodeId(b)
}

fn info(id: NodeId, port: u16) -> NodeInfo {
    NodeInfo {
        id,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

#[test]
fn rejects_own_id_and_updates_known() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    assert_eq!(
        t.record_response(info(own(), 1), now),
        InsertOutcome::Rejected
    );
    let a = info(id_at(0, 1), 2);
    assert_eq!(t.record_response(a, now), InsertOutcome::Added);
    assert_eq!(t.record_response(a, now), InsertOutcome::Updated);
    // Same id from another address is not trusted.
    assert_eq!(
        t.record_response(info(a.id, 3), now),
        InsertOutcome::Rejected
    );
    assert_eq!(t.get(&a.id).unwrap().addr, a.addr);
    assert_eq!(t.len(), 1);
}

#[test]
fn splits_only_the_bucket_holding_our_id() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    // Eight far nodes (prefix 0) fill bucket 0; a ninth near one forces a split.
    for i in 0..8u8 {
        assert_eq!(
            t.record_response(info(id_at(0, i), 100 + i as u16), now),
            InsertOutcome::Added
        );
    }
    assert_eq!(t.bucket_count(), 1);
    assert_eq!(
        t.record_response(info(id_at(5, 0), 200), now),
        InsertOutcome::Added
    );
    assert_eq!(t.bucket_count(), 2);
    // Bucket 0 is full and no longer ours: a ninth far node is cached, never split.
    let out = t.record_response(info(id_at(0, 9), 300), now);
    assert_eq!(out, InsertOutcome::Cached { ping: vec![] });
    assert_eq!(t.bucket_count(), 2);
    assert_eq!(t.replacement_count(), 1);
    // Nodes sharing more bits keep splitting the last bucket.
    for i in 0..8u8 {
        t.record_response(info(id_at(5, i + 1), 400 + i as u16), now);
    }
    assert!(t.bucket_count() > 2);
    t.check_invariants().unwrap();
}

#[test]
fn full_bucket_caches_and_pings_questionable_nodes() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    t.record_response(info(id_at(3, 0), 1), now); // keeps bucket 0 from being the last
    for i in 0..8u8 {
        t.record_response(info(id_at(0, i), 10 + i as u16), now);
    }
    let later = now + QUESTIONABLE_AFTER + Duration::from_secs(1);
    // Refresh seven; the eighth (tag 7) is questionable by now.
    for i in 0..7u8 {
        t.record_response(info(id_at(0, i), 10 + i as u16), later);
    }
    let newcomer = info(id_at(0, 20), 99);
    let InsertOutcome::Cached { ping } = t.record_response(newcomer, later) else {
        panic!("expected the newcomer to be cached")
    };
    assert_eq!(ping, vec![info(id_at(0, 7), 17)]);
    // The questionable node fails twice: it is bad, the newcomer takes its slot.
    assert_eq!(t.record_failure(&id_at(0, 7), later), None);
    assert_eq!(t.record_failure(&id_at(0, 7), later), Some(newcomer));
    assert!(t.contains(&newcomer.id));
    assert!(!t.contains(&id_at(0, 7)));
    assert_eq!(t.replacement_count(), 0);
    t.check_invariants().unwrap();
}

#[test]
fn would_admit_only_where_there_is_room() {
    let now = Instant::now();
    let mut t = RoutingTable::with_k(own(), 2, now);
    assert!(!t.would_admit(&own(), now));
    assert!(t.would_admit(&id_at(0, 1), now));
    t.record_response(info(id_at(4, 0), 1), now); // bucket 0 stops being the last
    for i in 0..4u8 {
        t.record_response(info(id_at(0, i), 10 + i as u16), now);
    }
    // Bucket 0: two good nodes and a full replacement cache.
    assert_eq!(t.replacement_count(), 2);
    assert!(!t.would_admit(&id_at(0, 9), now));
    // Once its nodes turn questionable a newcomer is worth a ping again.
    assert!(t.would_admit(&id_at(0, 9), now + QUESTIONABLE_AFTER));
}

#[test]
fn bad_node_is_evicted_by_a_newcomer() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    t.record_response(info(id_at(3, 0), 1), now);
    for i in 0..8u8 {
        t.record_response(info(id_at(0, i), 10 + i as u16), now);
    }
    t.record_failure(&id_at(0, 2), now);
    t.record_failure(&id_at(0, 2), now);
    assert_eq!(t.get(&id_at(0, 2)).unwrap().status(now), NodeStatus::Bad);
    assert!(!t
        .closest(&id_at(0, 2), 8, now)
        .iter()
        .any(|n| n.id == id_at(0, 2)));
    let out = t.record_response(info(id_at(0, 30), 50), now);
    assert_eq!(out, InsertOutcome::ReplacedBad(info(id_at(0, 2), 12)));
    t.check_invariants().unwrap();
}

#[test]
fn answering_resets_failures_and_queries_keep_nodes_good() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    let a = info(id_at(1, 1), 5);
    t.record_response(a, now);
    t.record_failure(&a.id, now);
    t.record_response(a, now);
    assert_eq!(t.get(&a.id).unwrap().failures, 0);
    let later = now + QUESTIONABLE_AFTER * 2;
    assert_eq!(
        t.get(&a.id).unwrap().status(later),
        NodeStatus::Questionable
    );
    assert!(t.record_query(&a.id, a.addr, later));
    assert_eq!(t.get(&a.id).unwrap().status(later), NodeStatus::Good);
    assert!(!t.record_query(&id_at(2, 2), a.addr, later));
}

#[test]
fn new_identity_on_a_known_address_replaces_the_old_one() {
    let now = Instant::now();
    let mut t = RoutingTable::new(own(), now);
    t.record_response(info(id_at(1, 1), 5), now);
    t.record_response(info(id_at(4, 1), 5), now);
    assert_eq!(t.len(), 1);
    assert!(t.contains(&id_at(4, 1)));
}

#[test]
fn closest_is_sorted_and_bounded() {
    let now = Instant::now();
    let mut t = RoutingTable::new(NodeId::random(), now);
    for i in 0..200u16 {
        t.record_response(info(NodeId::random(), 1000 + i), now);
    }
    let target = NodeId::random();
    let c = t.closest(&target, 8, now);
    assert_eq!(c.len(), 8);
    assert!(c
        .windows(2)
        .all(|w| w[0].id.distance(&target) <= w[1].id.distance(&target)));
    // Nothing in the table is closer than the eighth returned.
    let worst = c[7].id.distance(&target);
    let closer = t.nodes().filter(|n| n.id.distance(&target) < worst).count();
    assert_eq!(closer, 7);
}

#[test]
fn refresh_targets_land_in_their_bucket() {
    let now = Instant::now();
    let mut t = RoutingTable::new(NodeId::random(), now);
    for i in 0..100u16 {
        t.record_response(info(NodeId::random(), 1000 + i), now);
    }
    assert!(t.refresh_targets(QUESTIONABLE_AFTER, 200, now).is_empty());
    let later = now + QUESTIONABLE_AFTER;
    let targets = t.refresh_targets(QUESTIONABLE_AFTER, 200, later);
    assert_eq!(targets.len(), t.bucket_count());
    for (i, target) in targets.iter().enumerate() {
        assert_eq!(t.bucket_index(target), i);
    }
    assert!(t.refresh_targets(QUESTIONABLE_AFTER, 200, later).is_empty());
}

#[derive(Clone, Debug)]
enum Op {
    Respond { id: [u8; 20], port: u16 },
    Query { id: [u8; 20], port: u16 },
    Fail { pick: usize },
    Advance { secs: u64 },
    Remove { pick: usize },
}

fn arb_op() -> impl Strategy<Value = Op> {
    // Ids near our own (0x00..) are over-represented so splits happen deep.
    let id = prop_oneof![
        any::<[u8; 20]>(),
        (0usize..40, any::<[u8; 20]>()).prop_map(|(zeros, mut b)| {
            for bit in 0..zeros {
                b[bit / 8] &= !(0x80 >> (bit % 8));
            }
            b
        }),
        Just([0u8; 20]),
    ];
    prop_oneof![
        4 => (id.clone(), 1u16..64).prop_map(|(id, port)| Op::Respond { id, port }),
        1 => (id, 1u16..64).prop_map(|(id, port)| Op::Query { id, port }),
        2 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => (0u64..2000).prop_map(|secs| Op::Advance { secs }),
        1 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
    ]
}

proptest! {
    #[test]
    fn prop_invariants_hold(k in 1usize..9, ops in prop::collection::vec(arb_op(), 1..400)) {
        let start = Instant::now();
        let mut now = start;
        let mut t = RoutingTable::with_k(NodeId([0; 20]), k, now);
        for op in ops {
            match op {
                Op::Respond { id, port } => {
                    t.record_response(info(NodeId(id), port), now);
                }
                Op::Query { id, port } => {
                    t.record_query(&NodeId(id), SocketAddr::from(([127, 0, 0, 1], port)), now);
                }
                Op::Fail { pick } => {
                    let ids: Vec<_> = t.nodes().map(|n| n.id).collect();
                    if !ids.is_empty() {
                        t.record_failure(&ids[pick % ids.len()], now);
                    }
                }
                Op::Advance { secs } => now += Duration::from_secs(secs),
                Op::Remove { pick } => {
                    let ids: Vec<_> = t.nodes().map(|n| n.id).collect();
                    if !ids.is_empty() {
                        t.remove(&ids[pick % ids.len()]);
                    }
                }
            }
            if let Err(e) = t.check_invariants() {
                prop_assert!(false, "{}", e);
            }
            prop_assert!(!t.contains(&NodeId([0; 20])));
        }
    }
}
