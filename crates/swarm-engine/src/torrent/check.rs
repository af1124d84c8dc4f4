//! # The check — pure core
//!
//! Owns: the progress of a hash check of the data on disk (the initial check, or `verify`):
//! the next piece to hash, how many are done and in flight, the pieces found good, and the file
//! sizes on disk when the check began. Decides: which piece to hash next, which to skip (a piece
//! beyond the end of its file is missing without reading it), when the check is done.
//!
//! Takes: the torrent actor's calls (next step, a piece's verdict). The actor carries the hashing
//! out on the disk pool. Unit tests: `check/tests.rs`.

use swarm_wire::Info;

use crate::bitfield::Bitfield;

#[cfg(test)]
mod tests;

/// Progress of a check.
pub struct Checking {
    next: u32,
    done: u32,
    in_flight: usize,
    have: Bitfield,
    /// File sizes on disk when the check began: pieces beyond them are known missing.
    sizes: Vec<u64>,
}

/// What the check does next.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckStep {
    /// Hash this piece (and ask again).
    Hash(u32),
    /// Enough in flight, or nothing left to start: wait for a verdict.
    Wait,
    /// Every piece is done: [`Checking::into_have`].
    Done,
}

impl Checking {
    /// A check of `pieces` pieces, with `sizes` the file sizes on disk now (0 for a missing file).
    pub fn new(pieces: u32, sizes: Vec<u64>) -> Self {
        Checking {
            next: 0,
            done: 0,
            in_flight: 0,
            have: Bitfield::new(pieces),
            sizes,
        }
    }

    /// The next step, with at most `limit` hashes in flight. Pieces not all on disk are done at
    /// once, as missing.
    pub fn step(&mut self, info: &Info, limit: usize) -> CheckStep {
        let n = self.have.len();
        while self.in_flight < limit && self.next < n {
            let index = self.next;
            self.next += 1;
            let len = info.piece_len(index);
            let present = info.spans(index, 0, len).iter().all(|s| {
                info.files[s.file_index].pad
                    || self
                        .sizes
                        .get(s.file_index)
                        .is_some_and(|&sz| sz >= s.file_offset + s.len)
            });
            if !present {
                self.done += 1;
                continue;
            }
            self.in_flight += 1;
            return CheckStep::Hash(index);
        }
        if self.done == n {
            CheckStep::Done
        } else {
            CheckStep::Wait
        }
    }

    /// The verdict on a piece [`CheckStep::Hash`] named.
    pub fn hashed(&mut self, index: u32, ok: bool) {
        self.in_flight -= 1;
        self.done += 1;
        if ok {
            self.have.set(index);
        }
    }

    /// Done, of all pieces (0 to 1).
    pub fn progress(&self) -> f64 {
        self.done as f64 / self.have.len().max(1) as f64
    }

    /// The pieces found good.
    pub fn into_have(self) -> Bitfield {
        self.have
    }
}
