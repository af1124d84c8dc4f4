use super::*;
use proptest::prelude::*;

fn id(b: u8) -> NodeId {
    NodeId([b; 20])
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn round_trip(m: &Message) {
    let bytes = m.encode().expect("encode");
    assert_eq!(&Message::decode(&bytes).expect("decode"), m);
}

fn sample_messages() -> Vec<Message> {
    let q = |method| Message {
        tid: b"aa".to_vec(),
        body: Body::Query(Query { id: id(1), method }),
        read_only: false,
    };
    vec![
        q(Method::Ping),
        q(Method::FindNode {
            target: id(2),
            want: Want {
                n4: true,
                n6: false,
            },
        }),
        q(Method::GetPeers {
            info_hash: InfoHash([3; 20]),
            want: Want::default(),
        }),
        q(Method::AnnouncePeer {
            info_hash: InfoHash([3; 20]),
            port: 6881,
            implied_port: false,
            token: b"tok".to_vec(),
        }),
        Message {
            read_only: true,
            ..q(Method::Ping)
        },
        Message {
            tid: vec![0, 1, 2, 3],
            body: Body::Response(Response {
                id: Some(id(9)),
                nodes: vec![
                    NodeInfo {
                        id: id(4),
                        addr: addr("127.0.0.1:6881"),
                    },
                    NodeInfo {
                        id: id(5),
                        addr: addr("10.1.2.3:1"),
                    },
                ],
                nodes6: vec![NodeInfo {
                    id: id(6),
                    addr: addr("[::1]:7000"),
                }],
                values: vec![addr("1.2.3.4:5"), addr("[2001:db8::1]:80")],
                token: Some(vec![1, 2, 3, 4, 5, 6, 7, 8]),
            }),
            read_only: false,
        },
        Message {
            tid: b"zz".to_vec(),
            body: Body::Error(ErrorBody {
                code: ERR_PROTOCOL,
                message: "bad token".into(),
            }),
            read_only: false,
        },
    ]
}

#[test]
fn samples_round_trip() {
    for m in sample_messages() {
        round_trip(&m);
    }
}

#[test]
fn decodes_bep5_example_ping() {
    let m = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe").unwrap();
    assert_eq!(m.tid, b"aa");
    let Body::Query(q) = m.body else {
        panic!("not a query")
    };
    assert_eq!(q.id.as_bytes(), b"abcdefghij0123456789");
    assert_eq!(q.method, Method::Ping);
}

#[test]
fn decodes_bep5_example_announce_with_implied_port() {
    let m = Message::decode(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
    )
    .unwrap();
    let Body::Query(Query {
        method:
            Method::AnnouncePeer {
                port,
                implied_port,
                token,
                ..
            },
        ..
    }) = m.body
    else {
        panic!("not an announce")
    };
    assert_eq!(
        (port, implied_port, token.as_slice()),
        (6881, true, &b"aoeusnth"[..])
    );
}

#[test]
fn error_example() {
    let m = Message::decode(b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee").unwrap();
    assert_eq!(
        m.body,
        Body::Error(ErrorBody {
            code: 201,
            message: "A Generic Error Ocurred".into()
        })
    );
}

#[test]
fn bad_queries_keep_their_tid_for_a_203() {
    // announce_peer without a token.
    let e = Message::decode(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti6881ee1:q13:announce_peer1:t2:xy1:y1:qe",
    )
    .unwrap_err();
    assert_eq!(
        e,
        DecodeError::BadQuery {
            tid: b"xy".to_vec(),
            reason: "missing token"
        }
    );
    // Short id.
    let e = Message::decode(b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe").unwrap_err();
    assert!(matches!(e, DecodeError::BadQuery { .. }));
    // Port out of range and no implied_port.
    let e = Message::decode(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:xy1:y1:qe",
    )
    .unwrap_err();
    assert!(matches!(e, DecodeError::BadQuery { .. }));
}

#[test]
fn unknown_method_decodes_for_a_204() {
    let m = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:aa1:y1:qe").unwrap();
    let Body::Query(q) = m.body else { panic!() };
    assert_eq!(q.method, Method::Unknown("foo".into()));
}

/// Found by the `krpc` fuzz target (fuzz/regressions/krpc/): a method name of 13 bytes that are
/// not UTF-8 became 39 bytes of U+FFFD, past the 32-byte cap, so the decoded query no longer
/// decoded once encoded. The same held for error texts and their 256-byte cap.
#[test]
fn non_utf8_texts_stay_within_their_caps() {
    let crash = b"d1:ad2:id20:abcdefghij0123456i1e9:info_\x98ken8:aoethsnue1:q13:\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff9er1:t2:aa1:y1:qe";
    let m = Message::decode(crash).unwrap();
    let Body::Query(q) = &m.body else { panic!() };
    assert!(q.method.name().len() <= 32, "{:?}", q.method);
    round_trip(&m);

    let mut error = b"d1:eli201e256:".to_vec();
    error.extend([0xff; 256]);
    error.extend(b"e1:t2:aa1:y1:ee");
    let m = Message::decode(&error).unwrap();
    let Body::Error(e) = &m.body else { panic!() };
    assert!(e.message.len() <= 256 && e.message.starts_with('\u{fffd}'));
    round_trip(&m);
}

#[test]
fn malformed_is_dropped() {
    for bad in [
        &b""[..],
        b"i1e",
        b"d1:t2:aa1:y1:xe",
        b"d1:y1:qe",
        b"d1:t2:aae",
        b"d1:rd2:id3:abce1:t2:aa1:y1:re", // response id of the wrong length
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qei1e", // trailing data
        b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:ee", // tid over the cap
        b"d1:ad1:ad1:ad1:ad1:ad1:aleeeeeee", // too deep
    ] {
        assert!(
            Message::decode(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        Message::decode(&[b'l'; MAX_MESSAGE_LEN + 1]),
        Err(DecodeError::TooLong)
    );
}

#[test]
fn values_and_nodes_are_capped() {
    let mut values = Vec::new();
    for i in 0..200u16 {
        values.push(SocketAddr::from(([10, 0, 0, 1], i + 1)));
    }
    let nodes: Vec<_> = (0..40u8)
        .map(|i| NodeInfo {
            id: id(i),
            addr: SocketAddr::from(([10, 0, 0, i], 1)),
        })
        .collect();
    let m = Message {
        tid: b"aa".to_vec(),
        body: Body::Response(Response {
            id: Some(id(1)),
            nodes,
            values,
            ..Default::default()
        }),
        read_only: false,
    };
    let bytes = m.encode().unwrap();
    let Body::Response(r) = Message::decode(&bytes).unwrap().body else {
        panic!()
    };
    assert_eq!(r.values.len(), MAX_VALUES);
    assert_eq!(r.nodes.len(), MAX_NODES);
}

#[test]
fn compact_formats() {
    let a = addr("1.2.3.4:513");
    assert_eq!(encode_peer(&a), vec![1, 2, 3, 4, 2, 1]);
    assert_eq!(decode_peer(&[1, 2, 3, 4, 2, 1]), Some(a));
    assert_eq!(decode_peer(&[1, 2, 3]), None);
    let n = NodeInfo { id: id(7), addr: a };
    let b = encode_nodes(&[n], false);
    assert_eq!(b.len(), 26);
    // A trailing partial entry is ignored, not fatal.
    let mut b2 = b.clone();
    b2.extend_from_slice(&[0; 5]);
    assert_eq!(decode_nodes4(&b2), vec![n]);
    // Port 0 entries are dropped.
    let zero = NodeInfo {
        id: id(7),
        addr: addr("1.2.3.4:0"),
    };
    assert!(decode_nodes4(&encode_nodes(&[zero], false)).is_empty());
}

fn arb_id() -> impl Strategy<Value = NodeId> + Clone {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> + Clone {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), 1u16..).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let want = (any::<bool>(), any::<bool>()).prop_map(|(n4, n6)| Want { n4, n6 });
    let method = prop_oneof![
        Just(Method::Ping),
        (arb_id(), want.clone()).prop_map(|(target, want)| Method::FindNode { target, want }),
        (arb_id(), want).prop_map(|(t, want)| Method::GetPeers {
            info_hash: t.into(),
            want
        }),
        (
            arb_id(),
            1u16..,
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..MAX_TOKEN_LEN)
        )
            .prop_map(|(t, port, implied_port, token)| Method::AnnouncePeer {
                info_hash: t.into(),
                port,
                implied_port,
                token
            }),
    ];
    let node = (arb_id(), arb_addr()).prop_map(|(id, addr)| NodeInfo { id, addr });
    let nodes4 = prop::collection::vec(node.clone(), 0..MAX_NODES).prop_map(|v| {
        v.into_iter()
            .filter(|n| n.addr.is_ipv4())
            .collect::<Vec<_>>()
    });
    let nodes6 = prop::collection::vec(node, 0..MAX_NODES).prop_map(|v| {
        v.into_iter()
            .filter(|n| n.addr.is_ipv6())
            .collect::<Vec<_>>()
    });
    let response = (
        arb_id(),
        nodes4,
        nodes6,
        prop::collection::vec(arb_addr(), 0..20),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..MAX_TOKEN_LEN)),
    )
        .prop_map(|(id, nodes, nodes6, values, token)| Response {
            id: Some(id),
            nodes,
            nodes6,
            values,
            token,
        });
    let body = prop_oneof![
        (arb_id(), method).prop_map(|(id, method)| Body::Query(Query { id, method })),
        response.prop_map(Body::Response),
        (200i64..300, "[a-zA-Z ]{0,40}")
            .prop_map(|(code, message)| Body::Error(ErrorBody { code, message })),
    ];
    (
        prop::collection::vec(any::<u8>(), 0..MAX_TID_LEN),
        body,
        any::<bool>(),
    )
        .prop_map(|(tid, body, read_only)| Message {
            tid,
            body,
            read_only,
        })
}

proptest! {
    #[test]
    fn prop_round_trip(m in arb_message()) {
        let bytes = m.encode().unwrap();
        prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
        prop_assert_eq!(Message::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn prop_random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&b);
    }

    #[test]
    fn prop_bencode_like_bytes_never_panic(
        b in prop::collection::vec(prop::sample::select(b"dlie0123456789:-abqrty".to_vec()), 0..200)
    ) {
        let _ = Message::decode(&b);
    }

    #[test]
    fn prop_mutated_messages_never_panic(
        m in arb_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = m.encode().unwrap();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        if let Ok(decoded) = Message::decode(&bytes) {
            // Whatever decodes must re-encode within the caps.
            prop_assert!(decoded.tid.len() <= MAX_TID_LEN);
            let _ = decoded.encode();
        }
    }
}
