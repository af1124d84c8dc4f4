//! # Metadata fetch — BEP 9 `ut_metadata` for magnet links (pure: no I/O, no actix)
//!
//! A torrent added from a magnet link knows only its info-hash. [`MetadataFetch`] gathers the
//! info dictionary from several peers, 16 KiB at a time, and hands it back once its SHA-1 is the
//! info-hash. [`serve_request`] answers the same requests from our own info bytes.
//!
//! Owned by: the Torrent actor, while it has no metadata (one `MetadataFetch` per torrent), fed
//! from its peers' `PeerEvent`s. Peers are named by their
//! [`PeerKey`](crate::torrent::messages::PeerKey). Time is passed in, so the state machine is
//! deterministic under test.
//!
//! Why it is shaped this way:
//! - **Peers may lie about the size.** Sizes are kept per peer; one size is assembled at a time
//!   (the one with the fewest failed attempts, then the most peers), so only one buffer exists.
//! - **Memory is bounded by the accepted size**, never by the wire: sizes above
//!   [`METADATA_MAX_SIZE`] are refused, the buffer is allocated at the first piece that arrives
//!   (a peer that announces 16 MiB and sends nothing costs nothing) and is exactly `size` bytes.
//! - **Blame.** Bytes are only trusted as a whole (the hash). When the hash fails, every peer
//!   that contributed a piece gets a strike, and the next attempt at that size takes all pieces
//!   from *one* peer: a failure then proves that peer wrong, and it is never asked again. Without
//!   that rule one liar mixed with honest peers could get them all struck out.
//! - **Fairness and progress.** A peer gets at most [`MAX_IN_FLIGHT_PER_PEER`] pieces at a time,
//!   so the pieces spread over the peers; a request unanswered after [`REQUEST_TIMEOUT`] goes
//!   back to the pool; a peer that rejected us is left alone for [`REJECT_BACKOFF`].
//!
//! The hash proves the bytes are the info dictionary the magnet link names; whether that
//! dictionary is a valid one (parsing it) is the torrent's next step.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use swarm_wire::peer::extension::{MetadataMsg, METADATA_MAX_SIZE, METADATA_PIECE_SIZE};

/// A request not answered in this time is handed to another peer (or the same one again).
/// Pieces are 16 KiB: a peer that cannot send that in 20 s is not worth waiting for.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer that rejected a request is not asked again. Clients reject when they do not
/// have the metadata yet, or rate-limit it; asking again right away only earns more rejects.
pub const REJECT_BACKOFF: Duration = Duration::from_secs(60);
/// Pieces requested from one peer at a time.
pub const MAX_IN_FLIGHT_PER_PEER: usize = 4;
/// Strikes (hash failures a peer contributed to) after which a peer is not asked again.
/// A peer that was the sole source of a failed attempt is struck out at once.
pub const MAX_STRIKES: u8 = 3;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// The peer's `total_size` differs from the size it announced in its extension handshake.
    #[error("peer {peer} sent total_size {sent}, but announced {announced}")]
    SizeMismatch {
        peer: u64,
        announced: u32,
        sent: u32,
    },
    /// Piece index past the end, or a piece of the wrong length.
    #[error(
        "peer {peer} sent metadata piece {piece} of {len} bytes, not a piece of {total_size} bytes"
    )]
    BadPiece {
        peer: u64,
        piece: u32,
        len: usize,
        total_size: u32,
    },
    /// The assembled bytes do not hash to the info-hash. The attempt was discarded; `blamed` are
    /// the peers that contributed pieces to it (one peer: that peer certainly lied).
    #[error(
        "metadata of {size} bytes does not match the info-hash (pieces from peers {blamed:?})"
    )]
    HashMismatch { size: u32, blamed: Vec<u64> },
}

#[derive(Clone, Debug)]
struct PeerMeta {
    /// The `metadata_size` from the peer's extension handshake.
    size: u32,
    rejected_until: Option<Instant>,
    strikes: u8,
}

impl PeerMeta {
    fn usable(&self) -> bool {
        self.strikes < MAX_STRIKES
    }

    fn askable(&self, now: Instant) -> bool {
        // Not `is_none_or`: the workspace's rust-version is 1.80.
        self.usable() && !matches!(self.rejected_until, Some(until) if now < until)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Missing,
    Requested { peer: u64, at: Instant },
    Received { from: u64 },
}

/// One attempt at assembling metadata of one size.
#[derive(Debug)]
struct Attempt {
    size: u32,
    /// One per piece: at most `METADATA_MAX_SIZE / METADATA_PIECE_SIZE` (1024).
    slots: Vec<Slot>,
    /// Empty until the first piece arrives, then exactly `size` bytes.
    buf: Vec<u8>,
    received: u32,
    /// After a failed attempt at this size, only this peer is asked (see the module docs).
    exclusive: Option<u64>,
    single_source: bool,
}

impl Attempt {
    fn new(size: u32, single_source: bool) -> Self {
        let count = MetadataMsg::piece_count(size) as usize;
        Attempt {
            size,
            slots: vec![Slot::Missing; count],
            buf: Vec::new(),
            received: 0,
            exclusive: None,
            single_source,
        }
    }

    fn release(&mut self, peer: u64) {
        for slot in &mut self.slots {
            if matches!(*slot, Slot::Requested { peer: p, .. } if p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    fn in_flight(&self, peer: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(**s, Slot::Requested { peer: p, .. } if p == peer))
            .count()
    }

    /// Returns requests older than [`REQUEST_TIMEOUT`] to the pool; true if there were any.
    fn expire(&mut self, now: Instant) -> bool {
        let mut any = false;
        for slot in &mut self.slots {
            if let Slot::Requested { at, .. } = *slot {
                if now.saturating_duration_since(at) >= REQUEST_TIMEOUT {
                    *slot = Slot::Missing;
                    any = true;
                }
            }
        }
        any
    }

    fn contributors(&self) -> Vec<u64> {
        let mut from: Vec<u64> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Received { from } => Some(*from),
                _ => None,
            })
            .collect();
        from.sort_unstable();
        from.dedup();
        from
    }
}

/// The state of fetching one torrent's info dictionary from its peers.
#[derive(Debug)]
pub struct MetadataFetch {
    info_hash: [u8; 20],
    peers: HashMap<u64, PeerMeta>,
    /// Failed attempts per size, only for sizes some current peer announces.
    failures: BTreeMap<u32, u32>,
    attempt: Option<Attempt>,
    done: bool,
}

impl MetadataFetch {
    pub fn new(info_hash: [u8; 20]) -> Self {
        MetadataFetch {
            info_hash,
            peers: HashMap::new(),
            failures: BTreeMap::new(),
            attempt: None,
            done: false,
        }
    }

    pub fn info_hash(&self) -> &[u8; 20] {
        &self.info_hash
    }

    /// True once [`MetadataFetch::on_data`] has returned the verified bytes.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Pieces received and pieces in total for the current attempt; `None` before one starts.
    pub fn progress(&self) -> Option<(u32, u32)> {
        let a = self.attempt.as_ref()?;
        Some((a.received, a.slots.len() as u32))
    }

    /// A peer's `metadata_size` (BEP 10 handshake). Returns false, and forgets any size the peer
    /// announced before, for 0 or anything above [`METADATA_MAX_SIZE`]. A peer that changes its
    /// size loses its requests in flight: they were asked at the old size.
    pub fn on_peer_metadata_size(&mut self, peer: u64, size: u32) -> bool {
        if size == 0 || size > METADATA_MAX_SIZE {
            self.on_peer_gone(peer);
            return false;
        }
        match self.peers.get_mut(&peer) {
            Some(p) if p.size == size => {}
            Some(p) => {
                p.size = size;
                self.drop_from_attempt(peer);
            }
            None => {
                self.peers.insert(
                    peer,
                    PeerMeta {
                        size,
                        rejected_until: None,
                        strikes: 0,
                    },
                );
            }
        }
        true
    }

    /// The peer's connection closed (or it turned `ut_metadata` off): its requests go back to
    /// the pool. Its strikes are forgotten with it; the torrent decides about bans by address.
    pub fn on_peer_gone(&mut self, peer: u64) {
        if self.peers.remove(&peer).is_some() {
            self.drop_from_attempt(peer);
        }
    }

    /// The peer rejected a request: it is not asked again for [`REJECT_BACKOFF`], and all its
    /// requests go back to the pool (a peer that rejects one piece rejects the rest too).
    /// `_piece` is taken for symmetry with the wire message; the peer is judged as a whole.
    pub fn on_reject(&mut self, peer: u64, _piece: u32, now: Instant) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.rejected_until = Some(now + REJECT_BACKOFF);
            self.drop_from_attempt(peer);
        }
    }

    /// Peers worth calling [`MetadataFetch::next_requests`] for now (for the torrent's tick).
    pub fn askable_peers(&self, now: Instant) -> Vec<u64> {
        if self.done {
            return Vec::new();
        }
        let mut keys: Vec<u64> = (self.peers.iter())
            .filter(|(_, p)| p.askable(now))
            .map(|(k, _)| *k)
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Pieces to request from `peer` now (at most `max`), marked as requested at `now`. Empty
    /// when the peer has no usable size, is backing off, is struck out, announces a size other
    /// than the one being assembled, or already has its share in flight.
    pub fn next_requests(&mut self, peer: u64, max: usize, now: Instant) -> Vec<u32> {
        if self.done {
            return Vec::new();
        }
        let Some(meta) = self.peers.get(&peer).filter(|p| p.askable(now)) else {
            return Vec::new();
        };
        let size = meta.size;
        self.ensure_attempt();
        let Some(attempt) = self.attempt.as_mut() else {
            return Vec::new();
        };
        if attempt.size != size {
            return Vec::new();
        }
        if attempt.expire(now) && attempt.single_source {
            // The single source stalled: start over with whoever asks (see drop_from_attempt).
            *attempt = Attempt::new(size, true);
        }
        if attempt.single_source {
            match attempt.exclusive {
                Some(holder) if holder != peer => return Vec::new(),
                Some(_) => {}
                None => attempt.exclusive = Some(peer),
            }
        }
        let room = MAX_IN_FLIGHT_PER_PEER
            .saturating_sub(attempt.in_flight(peer))
            .min(max);
        let mut out = Vec::with_capacity(room);
        for (index, slot) in attempt.slots.iter_mut().enumerate() {
            if out.len() >= room {
                break;
            }
            if *slot == Slot::Missing {
                *slot = Slot::Requested { peer, at: now };
                out.push(index as u32);
            }
        }
        out
    }

    /// A `ut_metadata` data message. `Ok(Some(bytes))` exactly once: the whole info dictionary,
    /// verified against the info-hash. `Ok(None)`: kept (or ignored: a duplicate, a piece of a
    /// size we are not assembling, a peer we do not ask). `Err`: the peer broke the protocol
    /// (`SizeMismatch`, `BadPiece`: the torrent may disconnect it), or the attempt failed
    /// (`HashMismatch`: already reset and blamed here).
    pub fn on_data(
        &mut self,
        peer: u64,
        piece: u32,
        total_size: u32,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, MetadataError> {
        if self.done {
            return Ok(None);
        }
        let Some(meta) = self.peers.get(&peer).filter(|p| p.usable()) else {
            return Ok(None);
        };
        if total_size != meta.size {
            return Err(MetadataError::SizeMismatch {
                peer,
                announced: meta.size,
                sent: total_size,
            });
        }
        let bad_piece = MetadataError::BadPiece {
            peer,
            piece,
            len: data.len(),
            total_size,
        };
        let Some(expected) = MetadataMsg::piece_len(total_size, piece) else {
            return Err(bad_piece);
        };
        if data.len() != expected as usize {
            return Err(bad_piece);
        }
        let Some(attempt) = self.attempt.as_mut().filter(|a| a.size == total_size) else {
            return Ok(None);
        };
        if attempt.exclusive.is_some_and(|holder| holder != peer)
            || (attempt.single_source && attempt.exclusive.is_none())
        {
            return Ok(None);
        }
        let Some(slot) = attempt.slots.get_mut(piece as usize) else {
            return Err(bad_piece);
        };
        if matches!(slot, Slot::Received { .. }) {
            return Ok(None);
        }
        if attempt.buf.is_empty() {
            // `size` was checked against METADATA_MAX_SIZE when the peer announced it.
            attempt.buf = vec![0; attempt.size as usize];
        }
        let start = piece as usize * METADATA_PIECE_SIZE as usize;
        let Some(dest) = attempt.buf.get_mut(start..start + data.len()) else {
            return Err(bad_piece);
        };
        dest.copy_from_slice(data);
        *slot = Slot::Received { from: peer };
        attempt.received += 1;
        if attempt.received as usize == attempt.slots.len() {
            return self.finish();
        }
        Ok(None)
    }

    fn finish(&mut self) -> Result<Option<Vec<u8>>, MetadataError> {
        let Some(attempt) = self.attempt.take() else {
            return Ok(None);
        };
        if crate::hash::piece_hash(&attempt.buf) == self.info_hash {
            self.done = true;
            self.peers.clear();
            self.failures.clear();
            return Ok(Some(attempt.buf));
        }
        let blamed = attempt.contributors();
        let sole = blamed.len() == 1;
        for key in &blamed {
            if let Some(p) = self.peers.get_mut(key) {
                p.strikes = if sole {
                    MAX_STRIKES
                } else {
                    p.strikes.saturating_add(1)
                };
            }
        }
        *self.failures.entry(attempt.size).or_insert(0) += 1;
        // Bounded by the peers we have: forget failures of sizes nobody announces any more.
        let sizes: Vec<u32> = self.peers.values().map(|p| p.size).collect();
        self.failures.retain(|size, _| sizes.contains(size));
        Err(MetadataError::HashMismatch {
            size: attempt.size,
            blamed,
        })
    }

    /// Takes `peer` out of the current attempt. If it was the single source, the attempt starts
    /// over: mixing its pieces with another peer's would make a failure unattributable.
    fn drop_from_attempt(&mut self, peer: u64) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        if attempt.exclusive == Some(peer) {
            let size = attempt.size;
            self.attempt = Some(Attempt::new(size, true));
        } else {
            attempt.release(peer);
        }
    }

    /// Keeps the current attempt while some usable peer announces its size; otherwise starts
    /// one at the best size: fewest failed attempts, then most usable peers, then the smallest.
    fn ensure_attempt(&mut self) {
        let usable_sizes = || self.peers.values().filter(|p| p.usable()).map(|p| p.size);
        if let Some(a) = &self.attempt {
            if usable_sizes().any(|s| s == a.size) {
                return;
            }
        }
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for size in usable_sizes() {
            *counts.entry(size).or_insert(0) += 1;
        }
        let best = counts.into_iter().min_by_key(|&(size, peers)| {
            let failed = self.failures.get(&size).copied().unwrap_or(0);
            (failed, std::cmp::Reverse(peers), size)
        });
        self.attempt = best.map(|(size, _)| {
            let failed = self.failures.get(&size).is_some_and(|&n| n > 0);
            Attempt::new(size, failed)
        });
    }
}

/// Piece `index` of our info dictionary for a `ut_metadata` data message: the total size and
/// the piece's bytes (a slice of `info`, not a copy). `None` past the end, for empty info, and
/// for info larger than [`METADATA_MAX_SIZE`] (peers would refuse it anyway).
pub fn metadata_piece(info: &Bytes, index: u32) -> Option<(u32, Bytes)> {
    let total = u32::try_from(info.len())
        .ok()
        .filter(|&n| n <= METADATA_MAX_SIZE)?;
    let len = MetadataMsg::piece_len(total, index)?;
    let start = index as usize * METADATA_PIECE_SIZE as usize;
    let end = start + len as usize;
    Some((total, info.slice(start..end)))
}

/// The answer to a peer's `ut_metadata` request: the piece, or a reject when we have no
/// metadata yet (a magnet still fetching) or the index is out of range.
pub fn serve_request(info: Option<&Bytes>, piece: u32) -> MetadataMsg {
    match info.and_then(|info| metadata_piece(info, piece)) {
        Some((total_size, data)) => MetadataMsg::Data {
            piece,
            total_size,
            data,
        },
        None => MetadataMsg::Reject { piece },
    }
}

/// The `metadata_size` to announce in our extension handshake; `None` without metadata or when
/// it is too large to serve.
pub fn announced_size(info: Option<&Bytes>) -> Option<u32> {
    info.and_then(|info| u32::try_from(info.len()).ok())
        .filter(|&n| n != 0 && n <= METADATA_MAX_SIZE)
}

#[cfg(test)]
mod tests;
