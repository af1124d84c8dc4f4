//! The peer wire protocol. CONTRACT FILE: the engine uses these names; implement, keep names.
//!
//! - [`Handshake`] (68 bytes) with reserved bits for the extension protocol (BEP 10), the fast
//!   extension (BEP 6) and the DHT (BEP 5); [`HandshakeCodec`] frames it for `Framed`.
//! - [`Message`]: every BEP 3 and BEP 6 message plus BEP 10 `Extended` frames, decoded by
//!   [`PeerCodec`] (a `tokio_util::codec` Decoder/Encoder). A `Piece` payload is a `Bytes` slice of
//!   the read buffer, never copied.
//! - [`extension`]: the BEP 10 extension handshake, ut_metadata (BEP 9) and ut_pex (BEP 11).
//!
//! # Wire notation
//!
//! Integers are big-endian; `u32` is 4 bytes. `len` is the frame's length prefix: it counts the
//! id byte and the payload, not itself. `<n>` is a payload of exactly `n` bytes, `<n+>` at least
//! `n`.
//!
//! ```text
//! handshake      19 "BitTorrent protocol" reserved[8] info_hash[20] peer_id[20]      (68 bytes)
//!                reserved[5] & 0x10 = BEP 10, reserved[7] & 0x04 = BEP 6, reserved[7] & 0x01 = DHT
//!
//! len  id  name            payload                                       BEP
//! 0    -   keep-alive      -                                             3
//! 1    0   choke           -                                             3
//! 1    1   unchoke         -                                             3
//! 1    2   interested      -                                             3
//! 1    3   not interested  -                                             3
//! 5    4   have            index:u32                                     3
//! 1+n  5   bitfield        bits[n], high bit of byte 0 = piece 0         3
//! 13   6   request         index:u32 begin:u32 length:u32                3
//! 9+n  7   piece           index:u32 begin:u32 data[n]                   3
//! 13   8   cancel          index:u32 begin:u32 length:u32                3
//! 3    9   port            dht_port:u16                                  5
//! 5    13  suggest         index:u32                                     6
//! 1    14  have all        -                                             6
//! 1    15  have none       -                                             6
//! 13   16  reject          index:u32 begin:u32 length:u32                6
//! 5    17  allowed fast    index:u32                                     6
//! 2+n  20  extended        ext_id:u8 payload[n]  (ext_id 0 = handshake)  10
//! ```
//!
//! Extended payloads (see [`extension`]), `ext_id` as the receiver announced in its `m`:
//!
//! ```text
//! handshake    0      d[ m:{name:id} p:port v:client reqq:n metadata_size:n yourip:ip ipv4 ipv6 ]
//! ut_metadata  m[..]  d[ msg_type:0 piece:i ]                         request    BEP 9
//!                     d[ msg_type:1 piece:i total_size:n ] data[..]   data (<= 16 KiB)
//!                     d[ msg_type:2 piece:i ]                         reject
//! ut_pex       m[..]  d[ added:6*k added.f:k added6:18*k added6.f:k dropped:6*k dropped6:18*k ]  BEP 11
//! ```
//!
//! # Errors and limits
//!
//! Decoders take untrusted bytes. A length prefix above [`PeerCodec::max_frame`] is rejected
//! before anything is allocated for it; a payload whose size does not match its id is
//! [`WireError::BadLength`]; an id this module does not know is [`WireError::UnknownId`] (the
//! engine decides whether that ends the connection). After an error the stream is out of sync:
//! drop the connection.

pub mod extension;

mod codec;
mod handshake;
mod message;

use bytes::Bytes;

use crate::InfoHash;

pub use codec::READ_BUFFER;
pub use handshake::HandshakeCodec;
pub use message::{encode_piece_header, id, PIECE_HEADER_LEN};

pub const BLOCK_SIZE: u32 = 16 * 1024;

/// A frame limit that fits every message swarmd expects: a 16 KiB block with its header, a
/// ut_metadata piece, and the bitfield of a torrent with up to 2 million pieces.
pub const DEFAULT_MAX_FRAME: u32 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRef {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Bytes),
    Request(BlockRef),
    Piece { index: u32, begin: u32, data: Bytes },
    Cancel(BlockRef),
    Port(u16),
    // BEP 6
    Suggest(u32),
    HaveAll,
    HaveNone,
    Reject(BlockRef),
    AllowedFast(u32),
    // BEP 10: id 0 is the extension handshake, others as negotiated in `m`.
    Extended { id: u8, payload: Bytes },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge { len: u32, max: u32 },
    #[error("message id {id} with a payload of {len} bytes (expected {expected})")]
    BadLength {
        id: u8,
        len: u32,
        expected: &'static str,
    },
    #[error("unknown message id {0}")]
    UnknownId(u8),
    #[error("bad handshake: {0}")]
    BadHandshake(&'static str),
    #[error("bad extension message: {0}")]
    BadExtension(String),
    #[error("i/o: {0}")]
    Io(String),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        WireError::Io(e.to_string())
    }
}

/// Decoder/Encoder for the framed messages that follow the handshake.
#[derive(Clone, Debug)]
pub struct PeerCodec {
    /// Largest accepted frame (length prefix), checked before any allocation.
    pub max_frame: u32,
}
