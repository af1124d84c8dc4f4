//! # Piece assembly — pure core
//!
//! Owns: the pieces being assembled in memory (one buffer each, with the endpoints that sent its
//! blocks), the spare buffers back from the disk pool for reuse, the count of pieces waiting for
//! the disk (the memory bound: no new requests while `max_pending_writes` wait) and the endgame
//! flag. Decides: where a block goes, when a piece is complete and leaves for the disk, which
//! duplicate requests to cancel in the endgame, and whom a failed piece blames.
//!
//! Takes: the torrent actor's calls (blocks, write verdicts), with the peer set and the picker it
//! works on passed in. Sends: `Cancel` and `Request` orders through the peer set. The torrent
//! actor carries the complete pieces to the disk pool. Unit tests: `assembly/tests.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use swarm_wire::peer::BlockRef;

use crate::picker::{BlockOutcome, Picker};
use crate::torrent::messages::PeerKey;
use crate::torrent::peer_set::{PeerHandle, PeerSet, Strike};

#[cfg(test)]
mod tests;

/// A piece being assembled in memory.
pub struct PieceBuf {
    pub data: Vec<u8>,
    /// Endpoints that sent blocks of it (blamed together if the hash fails).
    pub senders: Vec<SocketAddr>,
}

/// What became of a block.
pub enum Stored {
    /// Not asked for, or already there: its bytes are wasted.
    Unexpected,
    /// Copied into its piece.
    Kept,
    /// Copied, and its piece is complete: it goes to the disk (a pending write until
    /// [`Assembly::written`]).
    Complete(u32, PieceBuf),
}

pub struct Assembly {
    buffers: HashMap<u32, PieceBuf>,
    /// Piece buffers back from the disk pool, for reuse.
    spare: Vec<Vec<u8>>,
    pending_writes: usize,
    /// Complete pieces waiting for the disk before we stop requesting more (memory bound).
    max_pending_writes: usize,
    endgame: bool,
}

impl Assembly {
    pub fn new(max_pending_writes: usize) -> Self {
        Assembly {
            buffers: HashMap::new(),
            spare: Vec::new(),
            pending_writes: 0,
            max_pending_writes,
            endgame: false,
        }
    }

    pub fn in_endgame(&self) -> bool {
        self.endgame
    }

    pub fn pending_writes(&self) -> usize {
        self.pending_writes
    }

    /// A block from `key`, whose endpoint is `sender`: into its piece buffer. In the endgame the
    /// other peers asked for the same block are told to cancel.
    pub fn on_block<H: PeerHandle>(
        &mut self,
        peers: &mut PeerSet<H>,
        picker: &mut Picker,
        key: PeerKey,
        block: &BlockRef,
        data: &[u8],
        sender: SocketAddr,
    ) -> Stored {
        let outcome = picker.on_block(block);
        if outcome == BlockOutcome::Unexpected {
            return Stored::Unexpected;
        }
        let piece_len = picker.piece_len(block.index) as usize;
        let spare = &mut self.spare;
        let buf = self.buffers.entry(block.index).or_insert_with(|| {
            // Every byte is overwritten by the piece's blocks before it is hashed, so a
            // recycled buffer needs no clearing.
            let mut data = spare.pop().unwrap_or_default();
            data.resize(piece_len, 0);
            PieceBuf {
                data,
                senders: Vec::new(),
            }
        });
        let start = block.begin as usize;
        // The picker checked that the block is exactly one of the piece's blocks.
        buf.data[start..start + data.len()].copy_from_slice(data);
        if !buf.senders.contains(&sender) {
            buf.senders.push(sender);
        }
        if self.endgame {
            peers.cancel_duplicates(key, block);
        }
        if outcome == BlockOutcome::PieceComplete {
            if let Some(buf) = self.buffers.remove(&block.index) {
                self.pending_writes += 1;
                return Stored::Complete(block.index, buf);
            }
        }
        Stored::Kept
    }

    /// A piece left the disk pool; its buffer (if it came back) is kept for the next piece.
    pub fn written(&mut self, buf: Option<Vec<u8>>) {
        self.pending_writes -= 1;
        if let Some(buf) = buf {
            if self.spare.len() < self.max_pending_writes {
                self.spare.push(buf);
            }
        }
    }

    /// A piece failed its hash check. One sender: that sender's fault (a strike, a ban at the
    /// second). Several: we cannot tell, and the picker fetches it again from a single peer so
    /// that the next failure is conclusive.
    pub fn hash_failed<H: PeerHandle>(
        &mut self,
        peers: &mut PeerSet<H>,
        senders: &[SocketAddr],
        now: Instant,
    ) -> Strike {
        match senders {
            [culprit] => peers.strike(*culprit, now),
            _ => Strike::Nobody,
        }
    }

    /// Tops up the request pipeline of `key`, unless the torrent is not `downloading` or too many
    /// pieces wait for the disk. A peer the picker has nothing for, with the picker in its
    /// endgame, starts ours.
    pub fn fill_requests<H: PeerHandle>(
        &mut self,
        peers: &mut PeerSet<H>,
        picker: &mut Picker,
        key: PeerKey,
        downloading: bool,
    ) {
        if !downloading || self.pending_writes >= self.max_pending_writes {
            return;
        }
        if !peers.fill_requests(key, picker) && !self.endgame && picker.in_endgame() {
            self.endgame = true;
        }
    }

    pub fn fill_all<H: PeerHandle>(
        &mut self,
        peers: &mut PeerSet<H>,
        picker: &mut Picker,
        downloading: bool,
    ) {
        for k in peers.keys() {
            self.fill_requests(peers, picker, k, downloading);
        }
    }

    /// The download is complete.
    pub fn complete(&mut self) {
        self.endgame = false;
    }

    /// Everything is hashed again (`verify`): partial pieces are dropped.
    pub fn clear(&mut self) {
        self.buffers.clear();
    }
}
