//! KRPC datagrams (BEP 5, with BEP 32 and BEP 43 keys), as the DHT node receives them.
//!
//! Invariants: a datagram that decodes respects the caps that bound its allocations
//! (transaction id, token, nodes, values), encodes without error (everything it holds can be
//! sent back), and decoding the encoding gives the same message. The compact node and peer
//! decoders agree with their encoders.

use swarm_dht::krpc::{
    self, Body, DecodeError, Message, Method, MAX_MESSAGE_LEN, MAX_NODES, MAX_TID_LEN,
    MAX_TOKEN_LEN, MAX_VALUES,
};

fn check_caps(m: &Message) {
    assert!(m.tid.len() <= MAX_TID_LEN);
    match &m.body {
        Body::Response(r) => {
            assert!(r.nodes.len() <= MAX_NODES && r.nodes6.len() <= MAX_NODES);
            assert!(r.values.len() <= MAX_VALUES);
            assert!(r.token.as_ref().is_none_or(|t| t.len() <= MAX_TOKEN_LEN));
        }
        Body::Query(q) => {
            if let Method::AnnouncePeer { token, .. } = &q.method {
                assert!(token.len() <= MAX_TOKEN_LEN);
            }
        }
        Body::Error(_) => {}
    }
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn krpc(data: &[u8]) {
    match Message::decode(data) {
        Ok(m) => {
            assert!(data.len() <= MAX_MESSAGE_LEN);
            check_caps(&m);
            let bytes = m
                .encode()
                .unwrap_or_else(|e| panic!("{m:?} does not encode: {e}"));
            assert_eq!(Message::decode(&bytes), Ok(m));
        }
        Err(DecodeError::BadQuery { tid, .. }) => assert!(tid.len() <= MAX_TID_LEN),
        Err(_) => {}
    }
    let v4 = krpc::decode_nodes4(data);
    assert!(v4.len() <= MAX_NODES);
    assert_eq!(krpc::encode_nodes(&v4, false).len(), v4.len() * 26);
    let v6 = krpc::decode_nodes6(data);
    assert_eq!(krpc::encode_nodes(&v6, true).len(), v6.len() * 38);
    if let Some(peer) = krpc::decode_peer(data) {
        assert_eq!(krpc::encode_peer(&peer), data);
    }
}
