//! One frame's body ↔ [`Message`]: the message ids, the size rules of each payload, and the
//! byte layout (see the table in the module above).
//!
//! Decoding is split in two because only three messages carry a variable payload (bitfield,
//! piece, extended): those are handed a `Bytes` frame and slice it, so the payload stays in the
//! read buffer; every other message is parsed from a borrowed slice, so the codec can skip the
//! shared-buffer bookkeeping for the small frames that make up most of the traffic.

use bytes::{BufMut, Bytes, BytesMut};

use super::{BlockRef, Message, WireError};

/// Message ids (the byte after the length prefix).
pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 13;
    pub const HAVE_ALL: u8 = 14;
    pub const HAVE_NONE: u8 = 15;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    pub const EXTENDED: u8 = 20;
}

/// Bytes in front of a piece's data: length prefix, id, index, begin.
pub const PIECE_HEADER_LEN: usize = 13;

/// The frame header of a `Piece` message carrying `len` bytes of data, for the upload path: write
/// these 13 bytes and then the block's `Bytes` with a vectored write, and the block is never
/// copied into a write buffer.
///
/// `len` must leave room for the 9 header bytes in the `u32` length prefix (blocks are 16 KiB).
pub fn encode_piece_header(index: u32, begin: u32, len: u32) -> [u8; PIECE_HEADER_LEN] {
    debug_assert!(len <= u32::MAX - 9, "piece data too long for one frame");
    let mut header = [0u8; PIECE_HEADER_LEN];
    let frame_len = len.saturating_add(9).to_be_bytes();
    let (prefix, rest) = header.split_at_mut(4);
    prefix.copy_from_slice(&frame_len);
    let (id_byte, rest) = rest.split_at_mut(1);
    id_byte.copy_from_slice(&[id::PIECE]);
    let (index_bytes, begin_bytes) = rest.split_at_mut(4);
    index_bytes.copy_from_slice(&index.to_be_bytes());
    begin_bytes.copy_from_slice(&begin.to_be_bytes());
    header
}

/// True for the ids whose payload is handed out as a `Bytes` slice of the frame.
pub(crate) fn carries_payload(message_id: u8) -> bool {
    matches!(message_id, id::BITFIELD | id::PIECE | id::EXTENDED)
}

fn bad_length(message_id: u8, len: usize, expected: &'static str) -> WireError {
    WireError::BadLength {
        id: message_id,
        len: u32::try_from(len).unwrap_or(u32::MAX),
        expected,
    }
}

fn fixed<const N: usize>(
    message_id: u8,
    body: &[u8],
    expected: &'static str,
) -> Result<[u8; N], WireError> {
    <[u8; N]>::try_from(body).map_err(|_| bad_length(message_id, body.len(), expected))
}

fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

fn block_ref(b: [u8; 12]) -> BlockRef {
    let [i0, i1, i2, i3, b0, b1, b2, b3, l0, l1, l2, l3] = b;
    BlockRef {
        index: be32([i0, i1, i2, i3]),
        begin: be32([b0, b1, b2, b3]),
        length: be32([l0, l1, l2, l3]),
    }
}

/// Decodes a message without a variable payload. `body` is the frame after its id byte.
pub(crate) fn decode_fixed(message_id: u8, body: &[u8]) -> Result<Message, WireError> {
    let empty = |m: Message| fixed::<0>(message_id, body, "0").map(|_| m);
    let index = |wrap: fn(u32) -> Message| fixed::<4>(message_id, body, "4").map(|b| wrap(be32(b)));
    let block = |wrap: fn(BlockRef) -> Message| {
        fixed::<12>(message_id, body, "12").map(|b| wrap(block_ref(b)))
    };
    match message_id {
        id::CHOKE => empty(Message::Choke),
        id::UNCHOKE => empty(Message::Unchoke),
        id::INTERESTED => empty(Message::Interested),
        id::NOT_INTERESTED => empty(Message::NotInterested),
        id::HAVE => index(Message::Have),
        id::REQUEST => block(Message::Request),
        id::CANCEL => block(Message::Cancel),
        id::PORT => fixed::<2>(message_id, body, "2").map(|b| Message::Port(u16::from_be_bytes(b))),
        id::SUGGEST => index(Message::Suggest),
        id::HAVE_ALL => empty(Message::HaveAll),
        id::HAVE_NONE => empty(Message::HaveNone),
        id::REJECT => block(Message::Reject),
        id::ALLOWED_FAST => index(Message::AllowedFast),
        other => Err(WireError::UnknownId(other)),
    }
}

/// Decodes bitfield, piece and extended messages. `body` is the frame after its id byte; the
/// payload in the returned message is a slice of it.
pub(crate) fn decode_payload(message_id: u8, body: Bytes) -> Result<Message, WireError> {
    match message_id {
        id::BITFIELD => Ok(Message::Bitfield(body)),
        id::PIECE => {
            let head = body
                .get(..8)
                .and_then(|h| <[u8; 8]>::try_from(h).ok())
                .ok_or_else(|| bad_length(message_id, body.len(), "at least 8"))?;
            let [i0, i1, i2, i3, b0, b1, b2, b3] = head;
            Ok(Message::Piece {
                index: be32([i0, i1, i2, i3]),
                begin: be32([b0, b1, b2, b3]),
                data: body.slice(8..),
            })
        }
        id::EXTENDED => {
            let ext_id = *body
                .first()
                .ok_or_else(|| bad_length(message_id, body.len(), "at least 1"))?;
            Ok(Message::Extended {
                id: ext_id,
                payload: body.slice(1..),
            })
        }
        other => decode_fixed(other, &body),
    }
}

impl Message {
    /// The id byte, `None` for a keep-alive (which has none).
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => id::CHOKE,
            Message::Unchoke => id::UNCHOKE,
            Message::Interested => id::INTERESTED,
            Message::NotInterested => id::NOT_INTERESTED,
            Message::Have(_) => id::HAVE,
            Message::Bitfield(_) => id::BITFIELD,
            Message::Request(_) => id::REQUEST,
            Message::Piece { .. } => id::PIECE,
            Message::Cancel(_) => id::CANCEL,
            Message::Port(_) => id::PORT,
            Message::Suggest(_) => id::SUGGEST,
            Message::HaveAll => id::HAVE_ALL,
            Message::HaveNone => id::HAVE_NONE,
            Message::Reject(_) => id::REJECT,
            Message::AllowedFast(_) => id::ALLOWED_FAST,
            Message::Extended { .. } => id::EXTENDED,
        })
    }

    /// Payload bytes after the id.
    fn payload_len(&self) -> usize {
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 0,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 4,
            Message::Port(_) => 2,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 12,
            Message::Bitfield(bits) => bits.len(),
            Message::Piece { data, .. } => 8 + data.len(),
            Message::Extended { payload, .. } => 1 + payload.len(),
        }
    }

    /// Bytes this message takes on the wire, length prefix included.
    pub fn wire_len(&self) -> usize {
        let id_len = usize::from(self.id().is_some());
        4 + id_len + self.payload_len()
    }

    /// Appends the framed message to `dst` with a single `reserve`.
    pub(crate) fn encode_into(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let wire_len = self.wire_len();
        let frame_len = u32::try_from(wire_len - 4).map_err(|_| WireError::FrameTooLarge {
            len: u32::MAX,
            max: u32::MAX,
        })?;
        dst.reserve(wire_len);
        dst.put_u32(frame_len);
        if let Some(message_id) = self.id() {
            dst.put_u8(message_id);
        }
        match self {
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
            Message::Have(index) | Message::Suggest(index) | Message::AllowedFast(index) => {
                dst.put_u32(*index)
            }
            Message::Port(port) => dst.put_u16(*port),
            Message::Request(block) | Message::Cancel(block) | Message::Reject(block) => {
                dst.put_u32(block.index);
                dst.put_u32(block.begin);
                dst.put_u32(block.length);
            }
            Message::Bitfield(bits) => dst.put_slice(bits),
            Message::Piece { index, begin, data } => {
                dst.put_u32(*index);
                dst.put_u32(*begin);
                dst.put_slice(data);
            }
            Message::Extended {
                id: ext_id,
                payload,
            } => {
                dst.put_u8(*ext_id);
                dst.put_slice(payload);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any message, with payloads small enough to keep the cases fast.
    pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
        let block =
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| {
                BlockRef {
                    index,
                    begin,
                    length,
                }
            });
        let bytes =
            |max: usize| proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from);
        prop_oneof![
            Just(Message::KeepAlive),
            Just(Message::Choke),
            Just(Message::Unchoke),
            Just(Message::Interested),
            Just(Message::NotInterested),
            any::<u32>().prop_map(Message::Have),
            bytes(64).prop_map(Message::Bitfield),
            block.clone().prop_map(Message::Request),
            (any::<u32>(), any::<u32>(), bytes(300))
                .prop_map(|(index, begin, data)| Message::Piece { index, begin, data }),
            block.clone().prop_map(Message::Cancel),
            any::<u16>().prop_map(Message::Port),
            any::<u32>().prop_map(Message::Suggest),
            Just(Message::HaveAll),
            Just(Message::HaveNone),
            block.prop_map(Message::Reject),
            any::<u32>().prop_map(Message::AllowedFast),
            (any::<u8>(), bytes(100)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        ]
    }

    fn decode_body(frame: &[u8]) -> Result<Message, WireError> {
        match frame.split_first() {
            None => Ok(Message::KeepAlive),
            Some((&message_id, body)) if carries_payload(message_id) => {
                decode_payload(message_id, Bytes::copy_from_slice(body))
            }
            Some((&message_id, body)) => decode_fixed(message_id, body),
        }
    }

    #[test]
    fn piece_header_matches_the_encoder() {
        let msg = Message::Piece {
            index: 7,
            begin: 16384,
            data: Bytes::from_static(&[1, 2, 3]),
        };
        let mut buf = BytesMut::new();
        msg.encode_into(&mut buf).expect("encodes");
        assert_eq!(
            buf.get(..PIECE_HEADER_LEN),
            Some(&encode_piece_header(7, 16384, 3)[..])
        );
        assert_eq!(buf.get(PIECE_HEADER_LEN..), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn every_fixed_size_rejects_a_wrong_length() {
        let cases: &[(u8, usize)] = &[
            (id::CHOKE, 0),
            (id::UNCHOKE, 0),
            (id::INTERESTED, 0),
            (id::NOT_INTERESTED, 0),
            (id::HAVE, 4),
            (id::REQUEST, 12),
            (id::CANCEL, 12),
            (id::PORT, 2),
            (id::SUGGEST, 4),
            (id::HAVE_ALL, 0),
            (id::HAVE_NONE, 0),
            (id::REJECT, 12),
            (id::ALLOWED_FAST, 4),
        ];
        for &(message_id, good) in cases {
            for len in [0, 1, good.saturating_sub(1), good + 1, good + 12] {
                if len == good {
                    continue;
                }
                let mut frame = vec![message_id];
                frame.resize(1 + len, 0xAB);
                match decode_body(&frame) {
                    Err(WireError::BadLength { id, len: got, .. }) => {
                        assert_eq!((id, got as usize), (message_id, len));
                    }
                    other => panic!("id {message_id} len {len}: {other:?}"),
                }
                let mut good_frame = vec![message_id];
                good_frame.resize(1 + good, 0);
                assert!(decode_body(&good_frame).is_ok(), "id {message_id}");
            }
        }
    }

    #[test]
    fn short_piece_and_empty_extended_are_bad_lengths() {
        for len in 0..8 {
            let mut frame = vec![id::PIECE];
            frame.resize(1 + len, 0);
            assert!(matches!(
                decode_body(&frame),
                Err(WireError::BadLength { id: id::PIECE, .. })
            ));
        }
        assert!(matches!(
            decode_body(&[id::EXTENDED]),
            Err(WireError::BadLength {
                id: id::EXTENDED,
                len: 0,
                ..
            })
        ));
        // Empty piece data, empty bitfield and empty extended payloads are well-formed frames;
        // whether they make sense is for the engine to judge.
        assert!(decode_body(&[id::PIECE, 0, 0, 0, 1, 0, 0, 0, 2]).is_ok());
        assert!(decode_body(&[id::BITFIELD]).is_ok());
        assert!(decode_body(&[id::EXTENDED, 3]).is_ok());
    }

    #[test]
    fn unknown_ids_are_reported() {
        for message_id in [10u8, 11, 12, 18, 19, 21, 255] {
            assert_eq!(
                decode_body(&[message_id, 1, 2]),
                Err(WireError::UnknownId(message_id))
            );
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_body_round_trip(msg in arb_message()) {
            let mut buf = BytesMut::new();
            msg.encode_into(&mut buf).expect("encodes");
            prop_assert_eq!(buf.len(), msg.wire_len());
            let prefix = buf.get(..4).and_then(|p| <[u8; 4]>::try_from(p).ok()).expect("prefix");
            prop_assert_eq!(u32::from_be_bytes(prefix) as usize, buf.len() - 4);
            prop_assert_eq!(decode_body(&buf[4..])?, msg);
        }

        #[test]
        fn proptest_random_bodies_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_body(&frame);
        }
    }
}
