//! BEP 10 extension messages, picked by the first byte as the engine picks them by the extended
//! id: 0 the extended handshake, 1 ut_metadata (BEP 9), 2 ut_pex (BEP 11).
//!
//! Invariants: what decodes is within the caps the engine relies on (an advertised
//! `metadata_size` the engine may size a buffer from is at most `METADATA_MAX_SIZE`, at most
//! `MAX_EXTENSIONS` names, a client name of bounded length, at most `MAX_PEX_ENTRIES` peers; a
//! metadata piece carries exactly the bytes its index and `total_size` call for), and encoding
//! what was decoded and decoding that again gives the same message.

use bytes::Bytes;
use swarm_wire::peer::extension::{
    ExtendedHandshake, MetadataMsg, PexMessage, MAX_CLIENT_NAME, MAX_EXTENSIONS, MAX_PEX_ENTRIES,
    METADATA_MAX_SIZE,
};

fn handshake(payload: &[u8]) {
    let Ok(hs) = ExtendedHandshake::decode(payload) else {
        return;
    };
    assert!(hs.m.len() <= MAX_EXTENSIONS);
    assert!(hs
        .metadata_size
        .is_none_or(|n| n > 0 && n <= METADATA_MAX_SIZE));
    assert!(hs.v.as_ref().is_none_or(|v| v.len() <= MAX_CLIENT_NAME));
    assert_eq!(ExtendedHandshake::decode(&hs.encode()), Ok(hs));
}

fn metadata(payload: &[u8]) {
    let Ok(msg) = MetadataMsg::decode(&Bytes::copy_from_slice(payload)) else {
        return;
    };
    assert!(msg.piece() < MetadataMsg::piece_count(METADATA_MAX_SIZE));
    if let MetadataMsg::Data {
        piece,
        total_size,
        data,
    } = &msg
    {
        assert!(*total_size <= METADATA_MAX_SIZE);
        assert_eq!(
            Some(data.len() as u32),
            MetadataMsg::piece_len(*total_size, *piece)
        );
    }
    assert_eq!(MetadataMsg::decode(&msg.encode()), Ok(msg));
}

fn pex(payload: &[u8]) {
    let Ok(msg) = PexMessage::decode(payload) else {
        return;
    };
    assert!(msg.added.len() <= MAX_PEX_ENTRIES && msg.dropped.len() <= MAX_PEX_ENTRIES);
    assert_eq!(PexMessage::decode(&msg.encode()), Ok(msg));
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn peer_extension(data: &[u8]) {
    let Some((&id, payload)) = data.split_first() else {
        return;
    };
    match id % 3 {
        0 => handshake(payload),
        1 => metadata(payload),
        _ => pex(payload),
    }
}
