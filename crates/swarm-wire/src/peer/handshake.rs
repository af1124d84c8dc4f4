//! The 68-byte BitTorrent handshake and [`HandshakeCodec`], which frames it for `Framed`.
//!
//! A connection starts with one handshake each way, then switches to length-prefixed messages.
//! With `tokio_util` that switch is `Framed::map_codec`, which keeps the read buffer:
//!
//! ```no_run
//! # use futures::{SinkExt, StreamExt};
//! # use swarm_wire::peer::{Handshake, HandshakeCodec, PeerCodec, WireError, DEFAULT_MAX_FRAME};
//! # use tokio_util::codec::Framed;
//! # async fn dial(socket: tokio::net::TcpStream, info_hash: swarm_wire::InfoHash, our_id: [u8; 20])
//! # -> Result<(), WireError> {
//! let mut framed = Framed::new(socket, HandshakeCodec);
//! framed.send(Handshake::new(info_hash, our_id).with_extensions().with_fast()).await?;
//! let closed = WireError::BadHandshake("connection closed");
//! let theirs = framed.next().await.ok_or(closed)??; // exactly one handshake
//! let mut framed = framed.map_codec(|_| PeerCodec::new(DEFAULT_MAX_FRAME));
//! let first_message = framed.next().await;
//! # Ok(()) }
//! ```
//!
//! Peers commonly send their bitfield and extension handshake in the same TCP segment as the
//! handshake; those bytes are already in the read buffer when the handshake is decoded.
//! `HandshakeCodec` consumes exactly 68 bytes and leaves the rest in place, and `map_codec` (like
//! `into_parts`/`from_parts` with `FramedParts::read_buf`) hands that buffer to the new codec, so
//! nothing is lost. Do not switch by `framed.into_inner()` and a fresh `Framed`: that drops the
//! buffered bytes. Poll the handshake stream only once: a second poll would read the peer's
//! first message as a handshake and fail.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{Handshake, WireError};
use crate::InfoHash;

const PSTR: &[u8; 19] = b"BitTorrent protocol";

/// BEP 10: reserved byte 5, bit 0x10.
const EXTENSIONS: (usize, u8) = (5, 0x10);
/// BEP 6: reserved byte 7, bit 0x04.
const FAST: (usize, u8) = (7, 0x04);
/// BEP 5: reserved byte 7, bit 0x01.
const DHT: (usize, u8) = (7, 0x01);

impl Handshake {
    /// Bytes on the wire.
    pub const LEN: usize = 68;
    /// The protocol string after the length byte 19.
    pub const PROTOCOL: &'static [u8; 19] = PSTR;

    /// A handshake with no reserved bits set; add them with the `with_*` methods.
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20]) -> Self {
        Handshake {
            reserved: [0; 8],
            info_hash,
            peer_id,
        }
    }

    fn with_bit(mut self, (byte, bit): (usize, u8)) -> Self {
        if let Some(b) = self.reserved.get_mut(byte) {
            *b |= bit;
        }
        self
    }

    fn has_bit(&self, (byte, bit): (usize, u8)) -> bool {
        self.reserved.get(byte).is_some_and(|b| b & bit != 0)
    }

    /// Advertise the extension protocol (BEP 10).
    pub fn with_extensions(self) -> Self {
        self.with_bit(EXTENSIONS)
    }

    /// Advertise the fast extension (BEP 6).
    pub fn with_fast(self) -> Self {
        self.with_bit(FAST)
    }

    /// Advertise a DHT node (BEP 5); send a `Port` message after the handshake.
    pub fn with_dht(self) -> Self {
        self.with_bit(DHT)
    }

    pub fn supports_extensions(&self) -> bool {
        self.has_bit(EXTENSIONS)
    }

    pub fn supports_fast(&self) -> bool {
        self.has_bit(FAST)
    }

    pub fn supports_dht(&self) -> bool {
        self.has_bit(DHT)
    }

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let parts: [&[u8]; 5] = [
            &[19],
            PSTR,
            &self.reserved,
            self.info_hash.as_bytes(),
            &self.peer_id,
        ];
        for (dst, src) in out.iter_mut().zip(parts.into_iter().flatten()) {
            *dst = *src;
        }
        out
    }

    /// Decodes exactly 68 bytes.
    pub fn decode(buf: &[u8]) -> Result<Handshake, WireError> {
        if buf.len() != Self::LEN {
            return Err(WireError::BadHandshake("a handshake is 68 bytes"));
        }
        check_prefix(buf)?;
        let mut rest = buf.get(20..).unwrap_or_default();
        let reserved = *take::<8>(&mut rest)?;
        let info_hash = InfoHash(*take::<20>(&mut rest)?);
        let peer_id = *take::<20>(&mut rest)?;
        Ok(Handshake {
            reserved,
            info_hash,
            peer_id,
        })
    }
}

fn take<'a, const N: usize>(rest: &mut &'a [u8]) -> Result<&'a [u8; N], WireError> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(WireError::BadHandshake("a handshake is 68 bytes"))?;
    *rest = tail;
    Ok(head)
}

/// Checks as much of `19 "BitTorrent protocol"` as `buf` holds, so that a stream that is not
/// BitTorrent (or is encrypted) fails on its first byte rather than after 68.
fn check_prefix(buf: &[u8]) -> Result<(), WireError> {
    match buf.split_first() {
        None => Ok(()),
        Some((&19, pstr)) => {
            let seen = pstr.len().min(PSTR.len());
            if pstr.get(..seen) == PSTR.get(..seen) {
                Ok(())
            } else {
                Err(WireError::BadHandshake(
                    "protocol is not \"BitTorrent protocol\"",
                ))
            }
        }
        Some(_) => Err(WireError::BadHandshake("protocol string length is not 19")),
    }
}

/// Frames one [`Handshake`] in each direction; see the module docs for switching to
/// [`PeerCodec`](super::PeerCodec) without losing bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HandshakeCodec;

impl Decoder for HandshakeCodec {
    type Item = Handshake;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Handshake>, WireError> {
        check_prefix(src)?;
        let Some(bytes) = src.get(..Handshake::LEN) else {
            src.reserve(Handshake::LEN - src.len());
            return Ok(None);
        };
        let handshake = Handshake::decode(bytes)?;
        src.advance(Handshake::LEN);
        Ok(Some(handshake))
    }
}

impl Encoder<Handshake> for HandshakeCodec {
    type Error = WireError;

    fn encode(&mut self, item: Handshake, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.put_slice(&item.encode());
        Ok(())
    }
}

impl Encoder<&Handshake> for HandshakeCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Handshake, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.put_slice(&item.encode());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{Message, PeerCodec};
    use proptest::prelude::*;

    fn sample() -> Handshake {
        Handshake::new(InfoHash([0xAA; 20]), *b"-SW0001-abcdefghijkl")
    }

    #[test]
    fn reserved_bits_are_where_the_beps_put_them() {
        let hs = sample();
        assert!(!hs.supports_extensions() && !hs.supports_fast() && !hs.supports_dht());
        let hs = hs.with_extensions().with_fast().with_dht();
        assert_eq!(hs.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert!(hs.supports_extensions() && hs.supports_fast() && hs.supports_dht());
        let bytes = hs.encode();
        assert_eq!(bytes.get(..20), Some(&b"\x13BitTorrent protocol"[..]));
        assert_eq!(bytes.get(28..48), Some(&[0xAA; 20][..]));
        assert_eq!(bytes.get(48..), Some(&b"-SW0001-abcdefghijkl"[..]));
    }

    #[test]
    fn bad_handshakes() {
        let good = sample().encode();
        assert!(Handshake::decode(&good[..67]).is_err());
        let mut long = good.to_vec();
        long.push(0);
        assert!(Handshake::decode(&long).is_err());
        let mut bad_len = good;
        bad_len[0] = 18;
        assert!(Handshake::decode(&bad_len).is_err());
        let mut bad_pstr = good;
        bad_pstr[5] = b'X';
        assert!(Handshake::decode(&bad_pstr).is_err());
    }

    #[test]
    fn codec_fails_fast_on_a_foreign_stream() {
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(HandshakeCodec.decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"\x13BitTorrent prX"[..]);
        assert!(HandshakeCodec.decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"\x13BitTorr"[..]);
        assert_eq!(HandshakeCodec.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= Handshake::LEN);
    }

    #[test]
    fn bytes_after_the_handshake_stay_for_the_peer_codec() {
        let mut buf = BytesMut::new();
        HandshakeCodec
            .encode(sample().with_extensions(), &mut buf)
            .expect("encodes");
        let mut peer = PeerCodec::default();
        peer.encode(Message::HaveAll, &mut buf).expect("encodes");
        buf.extend_from_slice(&[0, 0]); // half of the next length prefix
        assert_eq!(
            HandshakeCodec.decode(&mut buf),
            Ok(Some(sample().with_extensions()))
        );
        assert_eq!(peer.decode(&mut buf), Ok(Some(Message::HaveAll)));
        assert_eq!(peer.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], &[0, 0]);
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_round_trip(reserved in any::<[u8; 8]>(), ih in any::<[u8; 20]>(), id in any::<[u8; 20]>()) {
            let hs = Handshake { reserved, info_hash: InfoHash(ih), peer_id: id };
            prop_assert_eq!(Handshake::decode(&hs.encode())?, hs);
            let mut buf = BytesMut::new();
            HandshakeCodec.encode(&hs, &mut buf)?;
            prop_assert_eq!(HandshakeCodec.decode(&mut buf)?, Some(hs));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn proptest_random_bytes_never_panic(
            keep in 0..=Handshake::LEN,
            tail in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            // A valid start of `keep` bytes, then noise: reaches both the prefix check and the
            // wait-for-more path, which pure noise rarely gets past.
            let mut input = sample().encode().get(..keep).unwrap_or_default().to_vec();
            input.extend_from_slice(&tail);
            let _ = Handshake::decode(&input);
            let mut buf = BytesMut::from(&input[..]);
            if let Ok(None) = HandshakeCodec.decode(&mut buf) {
                prop_assert!(buf.len() < Handshake::LEN);
            }
            // Vec growth may double, but never past what a handshake needs.
            prop_assert!(buf.capacity() <= 2 * input.len().max(Handshake::LEN));
        }
    }
}
