//! The peer wire protocol. CONTRACT FILE: the engine uses these names; implement, keep names.
//!
//! - [`Handshake`] (68 bytes) with reserved bits for the extension protocol (BEP 10), the fast
//!   extension (BEP 6) and the DHT (BEP 5).
//! - [`Message`]: every BEP 3 and BEP 6 message plus BEP 10 `Extended` frames, decoded by
//!   [`PeerCodec`] (a `tokio_util::codec` Decoder/Encoder). A `Piece` payload is a `Bytes` slice of
//!   the read buffer, never copied.
//! - [`extension`]: the BEP 10 extension handshake, ut_metadata (BEP 9) and ut_pex (BEP 11).

pub mod extension;

use bytes::Bytes;

use crate::InfoHash;

pub const BLOCK_SIZE: u32 = 16 * 1024;

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
    BadLength { id: u8, len: u32, expected: &'static str },
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
