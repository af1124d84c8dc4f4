//! Every message a torrent takes or sends, in one place: the events and orders between a torrent
//! and its peer actors, what the listener, the announcer and the DHT hand to a torrent, and the
//! control queries and orders of the root and the session. The handlers are the torrent's
//! (`actor.rs`, `control.rs`) and the peer's (`peer.rs`); senders import only this module, never
//! an actor.
//!
//! Between a torrent and a peer: one message type each way, with an enum inside, so the torrent's
//! handler reads as one `match` and the order of events from one peer is kept. Each side holds
//! the other as a `Recipient` (the peer its [`TorrentInbox`], the torrent a `Recipient<ToPeer>`),
//! which keeps `peer.rs` and `actor.rs` from importing each other.

use crate::torrent::peer::transport::{Accepted, TransportKind};
use std::net::SocketAddr;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use swarm_model::{FileInfo, FilePriority, PeerInfo, TorrentDetail, TorrentSummary};
use swarm_wire::peer::extension::ExtendedHandshake;
use swarm_wire::peer::{BlockRef, Handshake};

use crate::bitfield::Bitfield;

/// A torrent's name for one of its peer actors (also the supervision child id); declared by
/// the pure choking decision, which names peers by it.
pub use crate::choke::PeerKey;

// ---- between a torrent and its peers -------------------------------------------------------

/// Something a peer actor observed on its connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromPeer {
    pub key: PeerKey,
    pub event: PeerEvent,
}

pub enum PeerEvent {
    /// Handshakes done: the peer is live, and takes orders at `addr`.
    Connected {
        addr: Recipient<ToPeer>,
        peer_id: [u8; 20],
        fast: bool,
        extensions: Option<ExtendedHandshake>,
        /// The connection is RC4-encrypted (MSE).
        encrypted: bool,
        transport: TransportKind,
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
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub enum ToPeer {
    Request(Vec<BlockRef>),
    Cancel(BlockRef),
    Interested(bool),
    /// Choke (true) or unchoke (false) the peer.
    Choke(bool),
    /// We verified a piece (or, super-seeding, show it to this peer): tell the peer, and serve
    /// it from now on.
    Have(u32),
    /// Super-seeding ended: tell the peer every piece of this set it was not told of yet.
    HaveEach(Bitfield),
    /// Leave, with the reason logged.
    Disconnect(String),
    /// A BEP 10 extended message, already encoded, with the peer's id for it.
    Extended {
        id: u8,
        payload: bytes::Bytes,
    },
}

/// A peer actor asks for our have-bitfield right after its handshake.
#[derive(Message)]
#[rtype(result = "Bitfield")]
pub struct GetHave;

/// How a peer actor reaches its torrent: events (the hot path, a bounded mailbox) and the
/// have-bitfield it asks for once.
#[derive(Clone)]
pub struct TorrentInbox {
    pub events: Recipient<FromPeer>,
    pub have: Recipient<GetHave>,
}

/// How a peer connection comes to be.
pub enum Dial {
    /// We connect and send our handshake first; over the transport that last worked with this
    /// address first, if any (see `transport::dial_order`).
    Outgoing { worked: Option<TransportKind> },
    /// The listener (TCP) or the UDP port (uTP) accepted it and read the peer's handshake (and
    /// maybe some bytes after it, decrypted). `mse`: the encryption handshake the listener ran
    /// first, if the peer began with one (its `received` bytes are in `handshake` and
    /// `leftover`).
    Incoming {
        stream: Accepted,
        handshake: Handshake,
        leftover: BytesMut,
        mse: Option<Box<crate::torrent::peer::encryption::MseDone>>,
    },
}

// ---- from the listener, the announcer, the DHT ---------------------------------------------

/// A connection the listener accepted for this torrent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingPeer {
    pub addr: SocketAddr,
    pub dial: Dial,
}

/// Where we heard of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerSource {
    Tracker,
    Incoming,
    Pex,
    Dht,
    Manual,
    /// Peers that served a magnet link's metadata.
    Magnet,
}

impl PeerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::Tracker => "tracker",
            PeerSource::Incoming => "incoming",
            PeerSource::Pex => "pex",
            PeerSource::Dht => "dht",
            PeerSource::Manual => "manual",
            PeerSource::Magnet => "magnet",
        }
    }
}

/// Peer addresses from a tracker, the DHT or the user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeersFound {
    pub addrs: Vec<SocketAddr>,
    pub source: PeerSource,
}

// ---- control: queries and orders from the root and the session -----------------------------

#[derive(Message)]
#[rtype(result = "TorrentSummary")]
pub struct GetSummary;

#[derive(Message)]
#[rtype(result = "TorrentDetail")]
pub struct GetDetail;

#[derive(Message)]
#[rtype(result = "Vec<PeerInfo>")]
pub struct GetPeers;

#[derive(Message)]
#[rtype(result = "Vec<FileInfo>")]
pub struct GetFiles;

#[derive(Message)]
#[rtype(result = "Vec<Vec<String>>")]
pub struct GetTrackerTiers;

/// The pieces we have, as the wire's bitfield (bit 7 of byte 0 is piece 0).
#[derive(Message)]
#[rtype(result = "Vec<u8>")]
pub struct GetPieces;

/// Sets file priorities: `(file index, priority)` pairs.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct SetFilePriorities(pub Vec<(u32, FilePriority)>);

/// Pause (stop trading, keep everything) or resume (also: retry after an error).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

/// Super-seeding (BEP 16) on or off: it runs while the torrent seeds, for peers that connect
/// from then on; turning it off shows every peer all we have.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSuperSeed(pub bool);

/// From the root's queue: the torrent's hold (in `TorrentShared::held`) may have changed, and
/// its queue settings if `Some` (position, force start, seeding limits: saved in its record).
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueChanged(pub Option<crate::torrent::resume_state::QueueSettings>);

/// To the root's queue: a torrent waits in `queued_download` / `queued_seed` now, decide at
/// once rather than at the next period (a slot may be free).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WantsSlot;
/// The torrent's own limits, replacing the ones it had (rates go to the rate limiter; peers and
/// upload slots apply to new connections and the next choke round). Saved at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLimits(pub swarm_model::TorrentLimits);

/// The user's labels, replacing the ones the torrent had (normalized already). Saved at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLabels(pub Vec<String>);

/// Move the data to `to` (`move_data`), or only look for it there (transmission's
/// `torrent-set-location` with `move: false`, which rechecks). Answers once the move has started
/// (or was refused); the move goes on file by file, shown in the summary's `moving`.
#[derive(Message)]
#[rtype(result = "Result<(), swarm_model::EngineError>")]
pub struct MoveStorage {
    pub to: std::path::PathBuf,
    pub move_data: bool,
}

/// Hash everything on disk again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Verify;

/// Ask the trackers for peers now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reannounce;

/// From the root: the listener or the announcer has a new incarnation, which knows no torrent.
/// Register again now rather than at the next slow tick (30 s away for a quiet seed, which
/// meanwhile would turn incoming peers away as unknown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ServicesRestarted;
