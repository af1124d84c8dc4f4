//! [`PeerCodec`]: length-prefixed frames ↔ [`Message`], for `tokio_util::codec::Framed`.
//!
//! Read-buffer policy. The length prefix is checked against `max_frame` before anything is done
//! with it. Once a frame's length is known and valid, the buffer is made big enough for the rest
//! of that frame, so a 16 KiB block arriving in many small reads is not regrown read after read.
//! When that needs a new allocation it is sized for this frame or [`READ_BUFFER`], whichever is
//! larger, and never more: `BytesMut::reserve` may double, which would let a peer that trickles
//! maximum-size frames hold about twice `max_frame` per connection. The buffer's capacity thus
//! stays within `max(max_frame + 4, READ_BUFFER)`.
//!
//! Zero copy. Bitfield, piece and extended frames are split off the buffer and frozen, and the
//! message's payload is a slice of that `Bytes`: the allocation lives as long as the engine keeps
//! the payload. Other frames are parsed in place and skipped.
//!
//! A frame that decodes to an error (`BadLength`, `UnknownId`) has been consumed when the error
//! is returned, so a caller driving the decoder by hand may go on with the next frame. A
//! `FrameTooLarge` frame is not consumed: the stream cannot be resynchronised.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::message::{carries_payload, decode_fixed, decode_payload};
use super::{Message, PeerCodec, WireError, DEFAULT_MAX_FRAME};

/// Smallest capacity the decoder allocates when it has to grow the read buffer, so that one read
/// can bring in several blocks.
pub const READ_BUFFER: usize = 64 * 1024;

impl PeerCodec {
    /// A codec that rejects frames whose length prefix exceeds `max_frame`.
    ///
    /// Pick `max_frame` so that the largest legitimate message fits: a piece frame is
    /// `9 + BLOCK_SIZE`, a bitfield `1 + ceil(pieces / 8)`.
    pub fn new(max_frame: u32) -> Self {
        PeerCodec { max_frame }
    }
}

impl Default for PeerCodec {
    fn default() -> Self {
        PeerCodec::new(DEFAULT_MAX_FRAME)
    }
}

/// Makes room for the rest of a frame of `total` bytes (prefix included), of which `src` holds
/// the start. `total` has been checked against `max_frame`.
fn reserve_for_frame(src: &mut BytesMut, total: usize) {
    if src.capacity() >= total {
        return;
    }
    let additional = total - src.len();
    // Moving the partial frame to the front of a buffer nobody else holds costs no allocation.
    if src.try_reclaim(additional) {
        return;
    }
    let mut grown = BytesMut::with_capacity(total.max(READ_BUFFER));
    grown.extend_from_slice(src);
    *src = grown;
}

impl Decoder for PeerCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = src.get(..4).and_then(|p| <[u8; 4]>::try_from(p).ok()) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix);
        if len > self.max_frame {
            return Err(WireError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(4))
            .ok_or(WireError::FrameTooLarge {
                len,
                max: self.max_frame,
            })?;
        if src.len() < total {
            reserve_for_frame(src, total);
            return Ok(None);
        }
        if len == 0 {
            src.advance(4);
            return Ok(Some(Message::KeepAlive));
        }
        let Some(&message_id) = src.get(4) else {
            return Ok(None); // unreachable: src holds `total` >= 5 bytes
        };
        if carries_payload(message_id) {
            let mut frame = src.split_to(total);
            frame.advance(5);
            decode_payload(message_id, frame.freeze()).map(Some)
        } else {
            let decoded = match src.get(5..total) {
                Some(body) => decode_fixed(message_id, body),
                None => Err(WireError::BadLength {
                    id: message_id,
                    len,
                    expected: "the frame length",
                }),
            };
            src.advance(total);
            decoded.map(Some)
        }
    }
}

impl Encoder<&Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode_into(dst)
    }
}

impl Encoder<Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        item.encode_into(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::message::id;
    use crate::peer::message::tests::arb_message;
    use crate::peer::{encode_piece_header, BLOCK_SIZE};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Feeds `input` to the codec the way `FramedRead` does: reserve one byte, read at most the
    /// spare capacity (here: at most the next chunk size), decode until `None`. Returns the
    /// messages, the first error, and the largest capacity seen.
    fn drive(
        codec: &mut PeerCodec,
        input: &[u8],
        chunks: &[usize],
    ) -> (Vec<Message>, Option<WireError>, usize) {
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let mut out = Vec::new();
        let mut rest = input;
        let mut max_cap = buf.capacity();
        let mut chunk_sizes = chunks.iter().copied().cycle();
        loop {
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(msg)) => out.push(msg),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e), max_cap),
                }
                max_cap = max_cap.max(buf.capacity());
            }
            max_cap = max_cap.max(buf.capacity());
            if rest.is_empty() {
                return (out, None, max_cap);
            }
            buf.reserve(1);
            max_cap = max_cap.max(buf.capacity());
            let want = chunk_sizes.next().unwrap_or(1).max(1);
            let n = want.min(buf.capacity() - buf.len()).min(rest.len());
            let (now, later) = rest.split_at(n);
            buf.extend_from_slice(now);
            rest = later;
        }
    }

    fn encode_all(msgs: &[Message]) -> BytesMut {
        let mut codec = PeerCodec::default();
        let mut wire = BytesMut::new();
        for m in msgs {
            codec.encode(m, &mut wire).expect("encodes");
        }
        wire
    }

    #[test]
    fn frame_too_large_is_rejected_before_the_body_arrives() {
        let mut codec = PeerCodec::new(BLOCK_SIZE + 9);
        let mut buf = BytesMut::from(&(BLOCK_SIZE + 10).to_be_bytes()[..]);
        let cap_before = buf.capacity();
        assert_eq!(
            codec.decode(&mut buf),
            Err(WireError::FrameTooLarge {
                len: BLOCK_SIZE + 10,
                max: BLOCK_SIZE + 9
            })
        );
        assert_eq!(
            buf.capacity(),
            cap_before,
            "nothing reserved for a rejected frame"
        );
        let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut huge),
            Err(WireError::FrameTooLarge { len: u32::MAX, .. })
        ));
        // Exactly the maximum is fine.
        let mut ok = BytesMut::new();
        ok.extend_from_slice(&(BLOCK_SIZE + 9).to_be_bytes());
        ok.extend_from_slice(&encode_piece_header(0, 0, BLOCK_SIZE)[4..]);
        ok.resize(4 + (BLOCK_SIZE + 9) as usize, 7);
        assert!(matches!(
            codec.decode(&mut ok),
            Ok(Some(Message::Piece { .. }))
        ));
    }

    #[test]
    fn payload_is_a_slice_of_the_read_buffer() {
        let wire = encode_all(&[Message::Piece {
            index: 1,
            begin: 2,
            data: Bytes::from(vec![9u8; 100]),
        }]);
        let mut buf = wire.clone();
        let base = buf.as_ptr() as usize;
        let Ok(Some(Message::Piece { data, .. })) = PeerCodec::default().decode(&mut buf) else {
            panic!("piece expected");
        };
        assert_eq!(data.as_ptr() as usize, base + 13, "data must not be copied");
    }

    #[test]
    fn partial_frame_reserves_its_remainder_once() {
        let mut codec = PeerCodec::default();
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&encode_piece_header(0, 0, BLOCK_SIZE));
        assert_eq!(codec.decode(&mut buf), Ok(None));
        let cap = buf.capacity();
        assert!(cap >= PIECE_TOTAL);
        assert!(cap <= READ_BUFFER.max(PIECE_TOTAL));
        buf.resize(PIECE_TOTAL - 1, 0);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        assert_eq!(
            buf.capacity(),
            cap,
            "no second allocation for the same frame"
        );
        buf.extend_from_slice(&[0]);
        assert!(matches!(
            codec.decode(&mut buf),
            Ok(Some(Message::Piece { .. }))
        ));
    }

    const PIECE_TOTAL: usize = 13 + BLOCK_SIZE as usize;

    #[test]
    fn bad_frames_are_consumed_so_the_next_one_decodes() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 2, id::HAVE, 1]); // BadLength
        buf.extend_from_slice(&[0, 0, 0, 1, 42]); // UnknownId
        buf.extend_from_slice(&[0, 0, 0, 1, id::UNCHOKE]);
        let mut codec = PeerCodec::default();
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::BadLength { id: 4, len: 1, .. })
        ));
        assert_eq!(codec.decode(&mut buf), Err(WireError::UnknownId(42)));
        assert_eq!(codec.decode(&mut buf), Ok(Some(Message::Unchoke)));
        assert_eq!(codec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn keep_alives_between_messages() {
        let msgs = [
            Message::KeepAlive,
            Message::Have(3),
            Message::KeepAlive,
            Message::HaveAll,
        ];
        let wire = encode_all(&msgs);
        let (got, err, _) = drive(&mut PeerCodec::default(), &wire, &[1, 2, 3]);
        assert_eq!((got, err), (msgs.to_vec(), None));
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_stream_round_trip_in_any_chunking(
            msgs in proptest::collection::vec(arb_message(), 0..40),
            chunks in proptest::collection::vec(1usize..200, 1..10),
        ) {
            let wire = encode_all(&msgs);
            let (got, err, _) = drive(&mut PeerCodec::new(1024), &wire, &chunks);
            prop_assert_eq!(err, None);
            prop_assert_eq!(got, msgs);
        }

        #[test]
        fn proptest_random_streams_are_bounded(
            input in proptest::collection::vec(any::<u8>(), 0..4096),
            chunks in proptest::collection::vec(1usize..600, 1..10),
            max_frame in 0u32..100_000,
        ) {
            let mut codec = PeerCodec::new(max_frame);
            let (_, _, max_cap) = drive(&mut codec, &input, &chunks);
            let bound = (max_frame as usize + 4).max(READ_BUFFER);
            prop_assert!(max_cap <= bound, "capacity {} above {}", max_cap, bound);
        }

        /// Well-framed streams (valid prefixes, random ids and bodies, cut anywhere) reach the
        /// reserve path that random bytes rarely do.
        #[test]
        fn proptest_framed_streams_are_bounded(
            frames in proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..3000)), 1..12),
            cut in any::<prop::sample::Index>(),
            chunks in proptest::collection::vec(1usize..5000, 1..10),
            max_frame in 0u32..200_000,
        ) {
            let mut wire = Vec::new();
            for (message_id, body) in &frames {
                wire.extend_from_slice(&(body.len() as u32 + 1).to_be_bytes());
                wire.push(*message_id);
                wire.extend_from_slice(body);
            }
            // A prefix promising a frame of max_frame that never arrives.
            wire.extend_from_slice(&max_frame.to_be_bytes());
            wire.extend_from_slice(&[id::PIECE; 100]);
            let end = cut.index(wire.len() + 1);
            let (_, _, max_cap) = drive(&mut PeerCodec::new(max_frame), &wire[..end], &chunks);
            let bound = (max_frame as usize + 4).max(READ_BUFFER);
            prop_assert!(max_cap <= bound, "capacity {} above {}", max_cap, bound);
        }

        #[test]
        fn proptest_mutated_streams_never_panic(
            msgs in proptest::collection::vec(arb_message(), 1..20),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            chunks in proptest::collection::vec(1usize..64, 1..5),
        ) {
            let mut wire = encode_all(&msgs).to_vec();
            for (at, byte) in flips {
                let i = at.index(wire.len());
                if let Some(b) = wire.get_mut(i) {
                    *b ^= byte;
                }
            }
            let (_, _, max_cap) = drive(&mut PeerCodec::new(2048), &wire, &chunks);
            prop_assert!(max_cap <= READ_BUFFER);
        }
    }
}
