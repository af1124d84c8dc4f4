//! The piece picker: which blocks to ask a peer for next. Pure code, owned by the torrent actor.
//!
//! Order of preference, per request slot:
//! 1. **Strict priority**: blocks of pieces already started, so that pieces complete (and can be
//!    verified, written and shared) instead of many pieces being half done.
//! 2. **New pieces**: random among the available ones until [`RANDOM_FIRST`] pieces are complete
//!    (a rare piece is worth little when we have nothing to trade), then rarest first. File
//!    priorities rank first (high > normal > low; skipped pieces are never picked); `sequential`
//!    replaces rarity by index order.
//! 3. **Endgame**: when every missing block of the torrent is already requested (not only every
//!    block a given peer has), blocks are requested again from other peers, at most
//!    [`ENDGAME_MAX_DUP`] times each; the torrent cancels the duplicates when the first copy
//!    arrives.
//!
//! The picker tracks blocks, not bytes: block `b` of piece `p` covers
//! `[b * BLOCK_SIZE, min((b + 1) * BLOCK_SIZE, piece_len(p)))`.

use std::collections::BTreeMap;

use rand::Rng;
use swarm_wire::peer::{BlockRef, BLOCK_SIZE};

use crate::bitfield::{ones_in_byte, Bitfield};

/// Complete pieces before rarest-first takes over from random picking.
pub const RANDOM_FIRST: u32 = 4;
/// How many peers may have the same block in flight during endgame.
const ENDGAME_MAX_DUP: u8 = 3;

/// Piece priorities, from the file priorities. 0 means skip.
pub type Priority = u8;
pub const PRIORITY_SKIP: Priority = 0;
pub const PRIORITY_NORMAL: Priority = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Free,
    /// Requested from this many peers (more than one only in endgame).
    Requested(u8),
    Received,
}

#[derive(Debug)]
struct Progress {
    blocks: Vec<Block>,
    received: u32,
    /// Blocks in state `Free`: a pick skips a piece with none without looking at its blocks.
    free: u32,
    /// A piece that failed its hash is fetched again from one peer only, so that a second
    /// failure names the culprit.
    owner: Option<u64>,
}

/// What a received block meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// Not expected (never requested, already received, or piece already had): drop it.
    Unexpected,
    Accepted,
    /// The last missing block of the piece: hand the piece to the disk pool.
    PieceComplete,
}

#[derive(Debug)]
pub struct Picker {
    piece_length: u32,
    total_length: u64,
    have: Bitfield,
    /// Pieces handed to the disk pool and not yet verified: not picked again meanwhile.
    verifying: Bitfield,
    /// Wanted pieces that are neither started nor verifying: where new pieces come from. Kept
    /// in step with `have`, `verifying`, `in_progress` and `priority`, so that choosing a new
    /// piece scans the bytes of `open & peer` instead of testing every piece one by one.
    open: Bitfield,
    /// Wanted pieces not had yet: `is_complete` without a scan.
    missing: u32,
    availability: Vec<u16>,
    priority: Vec<Priority>,
    /// The highest piece priority (changes only with `set_priorities`).
    top_priority: Priority,
    in_progress: BTreeMap<u32, Progress>,
    /// Pieces that failed their hash once.
    suspect: Bitfield,
    sequential: bool,
}

impl Picker {
    pub fn new(piece_length: u32, total_length: u64, have: Bitfield) -> Self {
        let n = have.len();
        let mut picker = Picker {
            piece_length,
            total_length,
            verifying: Bitfield::new(n),
            open: Bitfield::new(n),
            missing: 0,
            availability: vec![0; n as usize],
            priority: vec![PRIORITY_NORMAL; n as usize],
            top_priority: PRIORITY_NORMAL,
            in_progress: BTreeMap::new(),
            suspect: Bitfield::new(n),
            have,
            sequential: false,
        };
        picker.recount();
        picker
    }

    /// Recomputes `open`, `missing` and `top_priority` from scratch.
    fn recount(&mut self) {
        self.missing = 0;
        for i in 0..self.num_pieces() {
            self.refresh_open(i);
            self.missing += u32::from(self.wanted(i));
        }
        self.top_priority = self
            .priority
            .iter()
            .copied()
            .max()
            .unwrap_or(PRIORITY_NORMAL);
    }

    fn refresh_open(&mut self, i: u32) {
        if self.wanted(i) && !self.verifying.get(i) && !self.in_progress.contains_key(&i) {
            self.open.set(i);
        } else {
            self.open.clear(i);
        }
    }

    pub fn num_pieces(&self) -> u32 {
        self.have.len()
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn set_sequential(&mut self, on: bool) {
        self.sequential = on;
    }

    pub fn set_priorities(&mut self, priority: Vec<Priority>) {
        if priority.len() == self.priority.len() {
            self.priority = priority;
            self.recount();
        }
    }

    pub fn piece_len(&self, index: u32) -> u32 {
        let start = index as u64 * self.piece_length as u64;
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length as u64) as u32
    }

    fn blocks_in(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_SIZE)
    }

    fn block_ref(&self, index: u32, block: u32) -> BlockRef {
        let begin = block * BLOCK_SIZE;
        BlockRef {
            index,
            begin,
            length: (self.piece_len(index) - begin).min(BLOCK_SIZE),
        }
    }

    /// True when every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }

    /// Bytes of wanted pieces not verified yet (the tracker's `left`).
    pub fn bytes_left(&self) -> u64 {
        (0..self.num_pieces())
            .filter(|&i| !self.have.get(i) && self.priority[i as usize] != PRIORITY_SKIP)
            .map(|i| self.piece_len(i) as u64)
            .sum()
    }

    /// Bytes of the wanted pieces (verified or not: the size when done), and of those the bytes
    /// not verified yet.
    pub fn wanted_and_left(&self) -> (u64, u64) {
        (0..self.num_pieces())
            .filter(|&i| self.priority[i as usize] != PRIORITY_SKIP)
            .fold((0, 0), |(wanted, left), i| {
                let len = self.piece_len(i) as u64;
                (wanted + len, left + if self.have.get(i) { 0 } else { len })
            })
    }

    fn wanted(&self, i: u32) -> bool {
        !self.have.get(i) && self.priority[i as usize] != PRIORITY_SKIP
    }

    // ---- availability -------------------------------------------------------------------------

    /// How many connected peers have piece `i`.
    pub fn availability(&self, i: u32) -> u16 {
        self.availability.get(i as usize).copied().unwrap_or(0)
    }

    pub fn add_peer_bitfield(&mut self, bf: &Bitfield) {
        for i in bf.iter_ones() {
            self.add_have(i);
        }
    }

    pub fn remove_peer_bitfield(&mut self, bf: &Bitfield) {
        for i in bf.iter_ones() {
            if let Some(a) = self.availability.get_mut(i as usize) {
                *a = a.saturating_sub(1);
            }
        }
    }

    pub fn add_have(&mut self, index: u32) {
        if let Some(a) = self.availability.get_mut(index as usize) {
            *a = a.saturating_add(1);
        }
    }

    /// Whether a peer with this bitfield has anything we want.
    pub fn is_interesting(&self, peer: &Bitfield) -> bool {
        if self.missing == 0 {
            return false;
        }
        let theirs = peer.as_bytes().iter().zip(self.have.as_bytes());
        theirs
            .enumerate()
            .any(|(byte, (p, h))| ones_in_byte(byte, p & !h).any(|i| self.wants(i)))
    }

    pub fn wants(&self, index: u32) -> bool {
        index < self.num_pieces() && self.wanted(index)
    }

    // ---- picking ------------------------------------------------------------------------------

    /// Appends up to `max` blocks for peer `who`, which has `peer`, to `out`. `in_flight` tells
    /// whether this peer already has a block requested (used in endgame, where blocks are shared).
    pub fn pick(
        &mut self,
        who: u64,
        peer: &Bitfield,
        max: usize,
        in_flight: impl Fn(&BlockRef) -> bool,
        out: &mut Vec<BlockRef>,
    ) {
        let start = out.len();
        let target = start + max;
        // 1. Strict priority: started pieces first.
        let mut from = 0;
        while let Some(index) = self
            .in_progress
            .range(from..)
            .find(|(i, p)| p.free > 0 && peer.get(**i) && p.owner.is_none_or(|o| o == who))
            .map(|(i, _)| *i)
        {
            self.take_free_blocks(index, target, out);
            if out.len() >= target {
                return;
            }
            from = index + 1;
        }
        // 2. New pieces.
        while out.len() < target {
            let Some(index) = self.choose_new_piece(peer) else {
                break;
            };
            let n = self.blocks_in(index);
            let owner = self.suspect.get(index).then_some(who);
            self.in_progress.insert(
                index,
                Progress {
                    blocks: vec![Block::Free; n as usize],
                    received: 0,
                    free: n,
                    owner,
                },
            );
            self.open.clear(index);
            self.take_free_blocks(index, target, out);
        }
        if out.len() > start || out.len() >= target {
            return;
        }
        // 3. Endgame: every wanted block of the torrent is requested or received, not merely
        // every block this peer could serve. A peer with only pieces others are already sending
        // us (a leecher early in a swarm) gets no duplicates: in a swarm of capped uplinks each
        // duplicate costs some peer's upload that a missing piece needed (the lab measured
        // leechers fetching 1.5 copies of the payload with the per-peer rule).
        // (Then no peer has a wanted piece unstarted or a block nobody was asked for.)
        if !self.in_endgame() {
            return;
        }
        let candidates: Vec<(u32, u32)> = self
            .in_progress
            .iter()
            .filter(|(i, p)| peer.get(**i) && p.owner.is_none_or(|o| o == who))
            .flat_map(|(&i, p)| {
                p.blocks
                    .iter()
                    .enumerate()
                    .filter_map(move |(b, s)| match s {
                        Block::Requested(n) if *n < ENDGAME_MAX_DUP => Some((i, b as u32)),
                        _ => None,
                    })
            })
            .collect();
        for (index, b) in candidates {
            let r = self.block_ref(index, b);
            if in_flight(&r) {
                continue;
            }
            if let Some(Block::Requested(n)) = self
                .in_progress
                .get_mut(&index)
                .and_then(|p| p.blocks.get_mut(b as usize))
            {
                *n += 1;
                out.push(r);
            }
            if out.len() >= target {
                return;
            }
        }
    }

    /// True while the endgame has begun: every wanted piece is started or done.
    pub fn in_endgame(&self) -> bool {
        self.open.count() == 0
            && self
                .in_progress
                .iter()
                .all(|(i, p)| p.free == 0 || !self.wanted(*i))
    }

    fn take_free_blocks(&mut self, index: u32, target: usize, out: &mut Vec<BlockRef>) {
        let piece_len = self.piece_len(index);
        let Some(p) = self.in_progress.get_mut(&index) else {
            return;
        };
        for (b, state) in p.blocks.iter_mut().enumerate() {
            if out.len() >= target || p.free == 0 {
                break;
            }
            if *state == Block::Free {
                *state = Block::Requested(1);
                p.free -= 1;
                let begin = b as u32 * BLOCK_SIZE;
                out.push(BlockRef {
                    index,
                    begin,
                    length: (piece_len - begin).min(BLOCK_SIZE),
                });
            }
        }
    }

    fn choose_new_piece(&self, peer: &Bitfield) -> Option<u32> {
        let n = self.num_pieces();
        if n == 0 {
            return None;
        }
        let offset = if self.sequential {
            0
        } else {
            rand::thread_rng().gen_range(0..n)
        };
        let random_phase = !self.sequential && self.have.count() < RANDOM_FIRST;
        let top = u8::MAX - self.top_priority;
        // Nothing beats a top-priority piece that only this peer has (availability counts it):
        // with one seeder that is every piece, so the scan stops at the first candidate.
        let unbeatable = (
            top,
            if random_phase || self.sequential {
                0
            } else {
                1
            },
        );
        // Candidates are the set bits of `open & peer`, taken a byte at a time from a random
        // byte on (index order when sequential); ties go to the first found.
        let open = self.open.as_bytes();
        let theirs = peer.as_bytes();
        let bytes = open.len().min(theirs.len());
        let first = (offset / 8) as usize;
        let mut best: Option<(u32, (u8, u16))> = None;
        for k in 0..bytes {
            let byte = (first + k) % bytes;
            for i in ones_in_byte(byte, open[byte] & theirs[byte]) {
                // Lower key is better: higher priority first, then rarer (or any, while random).
                let prio = u8::MAX - self.priority[i as usize];
                let rarity = if random_phase || self.sequential {
                    0
                } else {
                    self.availability[i as usize]
                };
                let key = (prio, rarity);
                if best.is_none_or(|(_, k)| key < k) {
                    best = Some((i, key));
                    if key <= unbeatable {
                        return Some(i);
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }

    // ---- results ------------------------------------------------------------------------------

    /// A block arrived.
    pub fn on_block(&mut self, r: &BlockRef) -> BlockOutcome {
        if !r.begin.is_multiple_of(BLOCK_SIZE) {
            return BlockOutcome::Unexpected;
        }
        let b = r.begin / BLOCK_SIZE;
        if r.index >= self.num_pieces() || self.block_ref(r.index, b) != *r {
            return BlockOutcome::Unexpected;
        }
        let Some(p) = self.in_progress.get_mut(&r.index) else {
            return BlockOutcome::Unexpected;
        };
        match p.blocks.get_mut(b as usize) {
            Some(state @ Block::Requested(_)) => {
                *state = Block::Received;
                p.received += 1;
            }
            _ => return BlockOutcome::Unexpected,
        }
        if p.received as usize == p.blocks.len() {
            self.in_progress.remove(&r.index);
            self.verifying.set(r.index);
            BlockOutcome::PieceComplete
        } else {
            BlockOutcome::Accepted
        }
    }

    /// A request will not be answered (choke, reject, timeout, peer gone).
    pub fn on_request_dropped(&mut self, r: &BlockRef) {
        let b = (r.begin / BLOCK_SIZE) as usize;
        let Some(p) = self.in_progress.get_mut(&r.index) else {
            return;
        };
        match p.blocks.get_mut(b) {
            Some(state @ Block::Requested(1)) => {
                *state = Block::Free;
                p.free += 1;
            }
            Some(Block::Requested(n)) => *n -= 1,
            _ => {}
        }
    }

    /// Whether `r` is still wanted (not received yet): used to cancel endgame duplicates.
    pub fn is_block_received(&self, r: &BlockRef) -> bool {
        let b = (r.begin / BLOCK_SIZE) as usize;
        self.have.get(r.index)
            || self.verifying.get(r.index)
            || self.in_progress.get(&r.index).and_then(|p| p.blocks.get(b))
                == Some(&Block::Received)
    }

    pub fn on_piece_verified(&mut self, index: u32) {
        self.verifying.clear(index);
        self.in_progress.remove(&index);
        self.suspect.clear(index);
        self.open.clear(index);
        if self.have.set(index) && self.priority.get(index as usize) != Some(&PRIORITY_SKIP) {
            self.missing -= 1;
        }
    }

    /// The piece failed its hash (or could not be written): every block is wanted again.
    pub fn on_piece_failed(&mut self, index: u32) {
        self.verifying.clear(index);
        self.in_progress.remove(&index);
        self.suspect.set(index);
        self.refresh_open(index);
    }

    /// A peer left: pieces reserved for it are open to everyone again.
    pub fn on_peer_gone(&mut self, who: u64) {
        for p in self.in_progress.values_mut() {
            if p.owner == Some(who) {
                p.owner = None;
            }
        }
    }

    /// Number of pieces with a partial buffer (memory bound for the torrent).
    pub fn pieces_in_progress(&self) -> usize {
        self.in_progress.len()
    }

    pub fn pieces_verifying(&self) -> u32 {
        self.verifying.count()
    }
}

#[cfg(test)]
mod tests;
