//! Messages between a torrent and its peer actors. One message type each way, with an enum
//! inside: the torrent's handler reads as one `match`, the order of events from one peer is kept.

use actix::prelude::*;
use bytes::Bytes;
use swarm_wire::peer::extension::ExtendedHandshake;
use swarm_wire::peer::BlockRef;

use crate::bitfield::Bitfield;
use crate::torrent::peer::PeerConn;

/// A torrent's name for one of its peer actors (also the supervision child id); declared by
/// the pure choking decision, which names peers by it.
pub use crate::choke::PeerKey;

/// Something a peer actor observed on its connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromPeer {
    pub key: PeerKey,
    pub event: PeerEvent,
}

pub enum PeerEvent {
    /// Handshakes done: the peer is live.
    Connected {
        addr: Addr<PeerConn>,
        peer_id: [u8; 20],
        fast: bool,
        extensions: Option<ExtendedHandshake>,
    },
    /// The extension handshake arrived after `Connected` (it usually does).
    Extensions(ExtendedHandshake),
    Bitfield(Bitfield),
    Have(u32),
    Choked,
    Unchoked,
    Interested(bool),
    Block {
        block: BlockRef,
        data: Bytes,
    },
    /// BEP 6 reject: the request will not be served.
    Rejected(BlockRef),
    /// Bytes moved since the last report (for rates and the choker).
    Uploaded(u64),
    /// A `ut_pex` message (the torrent rate-limits and filters it).
    Pex(swarm_wire::peer::extension::PexMessage),
    /// BEP 6: the peer lets us request this piece even while it chokes us.
    AllowedFast(u32),
    /// The peer's DHT port (BEP 5 PORT message).
    DhtPort(u16),
}

/// An order from the torrent to one of its peer actors.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ToPeer {
    Request(Vec<BlockRef>),
    Cancel(BlockRef),
    Interested(bool),
    /// Choke (true) or unchoke (false) the peer.
    Choke(bool),
    /// We verified a piece: tell the peer, and serve it from now on.
    Have(u32),
    /// Leave, with the reason logged.
    Disconnect(String),
    /// A BEP 10 extended message, already encoded, with the peer's id for it.
    Extended {
        id: u8,
        payload: bytes::Bytes,
    },
}
