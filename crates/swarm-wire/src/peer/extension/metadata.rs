//! ut_metadata (BEP 9): fetching the info dictionary from peers, 16 KiB at a time.
//!
//! A data message is a bencoded dictionary immediately followed by the piece's bytes, in one
//! extended payload. The dictionary is parsed, and the bytes after it are handed out as a slice
//! of the payload, not copied.

use bytes::{BufMut, Bytes, BytesMut};

use super::benc;
use crate::peer::WireError;

/// Every metadata piece but the last is exactly this long.
pub const METADATA_PIECE_SIZE: u32 = 16 * 1024;
/// Largest info dictionary swarmd fetches. Real ones are well under a megabyte for all but
/// huge torrents; a peer announcing more is not trusted with our memory.
pub const METADATA_MAX_SIZE: u32 = 16 * 1024 * 1024;

const MSG_REQUEST: u64 = 0;
const MSG_DATA: u64 = 1;
const MSG_REJECT: u64 = 2;

const WHAT: &str = "ut_metadata";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataMsg {
    Request {
        piece: u32,
    },
    /// `data` is the whole piece: [`METADATA_PIECE_SIZE`] bytes, or the remainder for the last.
    Data {
        piece: u32,
        total_size: u32,
        data: Bytes,
    },
    Reject {
        piece: u32,
    },
}

impl MetadataMsg {
    pub fn piece(&self) -> u32 {
        match self {
            MetadataMsg::Request { piece }
            | MetadataMsg::Data { piece, .. }
            | MetadataMsg::Reject { piece } => *piece,
        }
    }

    /// Number of pieces in metadata of `total_size` bytes.
    pub fn piece_count(total_size: u32) -> u32 {
        total_size.div_ceil(METADATA_PIECE_SIZE)
    }

    /// Length of piece `piece` of metadata of `total_size` bytes; `None` past the end.
    pub fn piece_len(total_size: u32, piece: u32) -> Option<u32> {
        let start = piece.checked_mul(METADATA_PIECE_SIZE)?;
        let left = total_size.checked_sub(start).filter(|&left| left > 0)?;
        Some(left.min(METADATA_PIECE_SIZE))
    }

    /// The extended payload (after the extended id byte).
    pub fn encode(&self) -> Bytes {
        let data = match self {
            MetadataMsg::Data { data, .. } => data.len(),
            _ => 0,
        };
        let mut out = BytesMut::with_capacity(64 + data);
        let (msg_type, piece) = match self {
            MetadataMsg::Request { piece } => (MSG_REQUEST, piece),
            MetadataMsg::Data { piece, .. } => (MSG_DATA, piece),
            MetadataMsg::Reject { piece } => (MSG_REJECT, piece),
        };
        out.put_u8(b'd');
        benc::put_uint_pair(&mut out, b"msg_type", msg_type);
        benc::put_uint_pair(&mut out, b"piece", u64::from(*piece));
        if let MetadataMsg::Data { total_size, .. } = self {
            benc::put_uint_pair(&mut out, b"total_size", u64::from(*total_size));
        }
        out.put_u8(b'e');
        if let MetadataMsg::Data { data, .. } = self {
            out.put_slice(data);
        }
        out.freeze()
    }

    /// Decodes an extended payload. A data message must carry exactly the bytes its piece
    /// should have given `total_size`, and `total_size` must be within [`METADATA_MAX_SIZE`].
    pub fn decode(payload: &Bytes) -> Result<Self, WireError> {
        let mut dec = benc::decoder(payload);
        let mut dict = benc::top_dict(&mut dec, WHAT)?;
        let (mut msg_type, mut piece, mut total_size) = (None, None, None);
        while let Some((key, value)) = dict.next_pair().map_err(|e| benc::error(WHAT, e))? {
            let slot = match key {
                b"msg_type" => &mut msg_type,
                b"piece" => &mut piece,
                b"total_size" => &mut total_size,
                _ => continue,
            };
            *slot = Some(benc::uint(value).ok_or_else(|| benc::error(WHAT, "bad integer"))?);
        }
        let dict_len = benc::dict_len(dict, WHAT)?;

        let piece = piece
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p < Self::piece_count(METADATA_MAX_SIZE))
            .ok_or_else(|| benc::error(WHAT, "missing or out-of-range piece"))?;
        let msg = match msg_type {
            Some(MSG_REQUEST) => MetadataMsg::Request { piece },
            Some(MSG_REJECT) => MetadataMsg::Reject { piece },
            Some(MSG_DATA) => {
                let total_size = total_size
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n != 0 && n <= METADATA_MAX_SIZE)
                    .ok_or_else(|| benc::error(WHAT, "missing or out-of-range total_size"))?;
                let expected = Self::piece_len(total_size, piece)
                    .ok_or_else(|| benc::error(WHAT, "piece beyond total_size"))?;
                let data = payload.get(dict_len..).unwrap_or_default();
                if data.len() != expected as usize {
                    return Err(benc::error(
                        WHAT,
                        format_args!(
                            "piece {piece} has {} bytes, expected {expected}",
                            data.len()
                        ),
                    ));
                }
                return Ok(MetadataMsg::Data {
                    piece,
                    total_size,
                    data: payload.slice(dict_len..),
                });
            }
            Some(other) => return Err(benc::error(WHAT, format_args!("msg_type {other}"))),
            None => return Err(benc::error(WHAT, "missing msg_type")),
        };
        if dict_len != payload.len() {
            return Err(benc::error(WHAT, "bytes after a request or reject"));
        }
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(raw: &[u8]) -> Result<MetadataMsg, WireError> {
        MetadataMsg::decode(&Bytes::copy_from_slice(raw))
    }

    #[test]
    fn data_is_a_slice_of_the_payload() {
        let mut raw = b"d8:msg_typei1e5:piecei1e10:total_sizei16390ee".to_vec();
        raw.extend_from_slice(b"sixbyt");
        let payload = Bytes::from(raw);
        let MetadataMsg::Data {
            piece,
            total_size,
            data,
        } = MetadataMsg::decode(&payload).expect("decodes")
        else {
            panic!("data expected");
        };
        assert_eq!((piece, total_size, &data[..]), (1, 16390, &b"sixbyt"[..]));
        assert_eq!(
            data.as_ptr() as usize,
            payload.as_ptr() as usize + payload.len() - 6
        );
    }

    #[test]
    fn bad_messages() {
        let full = vec![0u8; METADATA_PIECE_SIZE as usize + 1];
        let with = |dict: &[u8], data: &[u8]| [dict, data].concat();
        let cases: Vec<Vec<u8>> = vec![
            b"d8:msg_typei0ee".to_vec(),                           // no piece
            b"d5:piecei0ee".to_vec(),                              // no msg_type
            b"d8:msg_typei3e5:piecei0ee".to_vec(),                 // unknown type
            b"d8:msg_typei0e5:piecei-1ee".to_vec(),                // negative piece
            b"d8:msg_typei0e5:piecei1024ee".to_vec(),              // piece past the cap
            b"d8:msg_typei0e5:piecei0eeX".to_vec(),                // trailing bytes
            b"d8:msg_typei1e5:piecei0ee".to_vec(),                 // data without total_size
            b"d8:msg_typei1e5:piecei0e10:total_sizei0ee".to_vec(), // empty metadata
            with(b"d8:msg_typei1e5:piecei0e10:total_sizei16777217ee", &full), // too big
            with(b"d8:msg_typei1e5:piecei0e10:total_sizei20000ee", &full), // too long
            with(b"d8:msg_typei1e5:piecei1e10:total_sizei20000ee", b"abc"), // too short
            with(b"d8:msg_typei1e5:piecei2e10:total_sizei20000ee", b""), // past the end
            b"d8:msg_typei0e5:piece1:0e".to_vec(),                 // piece not an int
        ];
        for raw in cases {
            assert!(decode(&raw).is_err(), "{:?}", String::from_utf8_lossy(&raw));
        }
    }

    #[test]
    fn piece_lengths() {
        assert_eq!(MetadataMsg::piece_count(1), 1);
        assert_eq!(MetadataMsg::piece_count(16384), 1);
        assert_eq!(MetadataMsg::piece_count(16385), 2);
        assert_eq!(MetadataMsg::piece_len(16385, 0), Some(16384));
        assert_eq!(MetadataMsg::piece_len(16385, 1), Some(1));
        assert_eq!(MetadataMsg::piece_len(16385, 2), None);
        assert_eq!(MetadataMsg::piece_len(16384, 1), None);
        assert_eq!(MetadataMsg::piece_len(100, u32::MAX), None);
    }

    fn arb_msg() -> impl Strategy<Value = MetadataMsg> {
        let max_piece = MetadataMsg::piece_count(METADATA_MAX_SIZE);
        let data = (
            1..=METADATA_MAX_SIZE,
            any::<prop::sample::Index>(),
            any::<u8>(),
        )
            .prop_map(|(total_size, at, fill)| {
                let piece = at.index(MetadataMsg::piece_count(total_size) as usize) as u32;
                let len = MetadataMsg::piece_len(total_size, piece).unwrap_or(0);
                MetadataMsg::Data {
                    piece,
                    total_size,
                    data: Bytes::from(vec![fill; len as usize]),
                }
            });
        prop_oneof![
            (0..max_piece).prop_map(|piece| MetadataMsg::Request { piece }),
            (0..max_piece).prop_map(|piece| MetadataMsg::Reject { piece }),
            data,
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_round_trip(msg in arb_msg()) {
            prop_assert_eq!(MetadataMsg::decode(&msg.encode())?, msg);
        }

        #[test]
        fn proptest_random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&input);
        }

        #[test]
        fn proptest_mutated_messages_never_panic(
            msg in arb_msg(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut raw = msg.encode().to_vec();
            raw.truncate(200);
            for (at, byte) in flips {
                let i = at.index(raw.len());
                if let Some(b) = raw.get_mut(i) {
                    *b ^= byte;
                }
            }
            if let Ok(MetadataMsg::Data { data, .. }) = decode(&raw) {
                prop_assert!(data.len() <= METADATA_PIECE_SIZE as usize);
            }
        }
    }
}
