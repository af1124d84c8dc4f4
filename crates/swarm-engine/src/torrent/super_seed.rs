//! Super-seeding (BEP 16): how an initial seed spreads each piece once before any twice.
//!
//! A seed in this mode tells a new peer it has nothing (an empty bitfield) and then reveals
//! pieces to it one `HAVE` at a time, at most [`PER_PEER`] outstanding: the pieces the swarm has
//! least — fewest connected peers have them, counting the pieces already revealed to someone
//! as had — ties broken at random. A peer gets its next piece once it announces (`HAVE`) one it
//! was shown; until then it can only complete its set from the other peers, who got other
//! pieces. The seed's upload thus goes to pieces the swarm lacks instead of pieces it already
//! has, which a plain seed cannot choose: its peers ask for what they want.
//!
//! Pure: the torrent actor feeds it its peers' bitfields and `HAVE`s and sends the `HAVE`s it
//! returns ([`ToPeer::Have`](super::messages::ToPeer::Have), which also lets the peer actor
//! serve the piece: a peer actor serves only what its have-set holds). Availability comes from
//! the picker, which counts every connected peer's pieces whatever the torrent's state.

use std::collections::HashMap;

use rand::Rng;

use crate::bitfield::Bitfield;
use crate::torrent::messages::PeerKey;

/// Pieces revealed to one peer and not yet announced by it: two keep its request pipeline to
/// us full while it announces the first.
pub const PER_PEER: usize = 2;

#[derive(Debug)]
pub struct SuperSeed {
    /// Per piece: to how many live peers it is revealed and not yet announced.
    shown: Vec<u16>,
    /// Per peer: the pieces revealed to it that it has not announced.
    pending: HashMap<PeerKey, Vec<u32>>,
}

impl SuperSeed {
    pub fn new(num_pieces: u32) -> Self {
        SuperSeed {
            shown: vec![0; num_pieces as usize],
            pending: HashMap::new(),
        }
    }

    /// A peer is live, or its bitfield arrived (`theirs`, empty if it sent none). Pieces it
    /// already has leave its pending set; returns the pieces to reveal to it now.
    /// `availability(i)`: how many connected peers have piece `i`.
    pub fn on_peer(
        &mut self,
        key: PeerKey,
        theirs: &Bitfield,
        availability: impl Fn(u32) -> u16,
    ) -> Vec<u32> {
        let mut pending = self.pending.remove(&key).unwrap_or_default();
        pending.retain(|&i| {
            let keep = !theirs.get(i);
            if !keep {
                self.unshow(i);
            }
            keep
        });
        self.top_up(key, pending, theirs, availability)
    }

    /// The peer announced piece `i` (`theirs` already includes it). Returns what to reveal next.
    pub fn on_have(
        &mut self,
        key: PeerKey,
        i: u32,
        theirs: &Bitfield,
        availability: impl Fn(u32) -> u16,
    ) -> Vec<u32> {
        let Some(mut pending) = self.pending.remove(&key) else {
            return Vec::new();
        };
        if let Some(pos) = pending.iter().position(|&p| p == i) {
            pending.swap_remove(pos);
            self.unshow(i);
        }
        self.top_up(key, pending, theirs, availability)
    }

    /// The peer left: its revealed pieces count no more.
    pub fn on_peer_gone(&mut self, key: PeerKey) {
        for i in self.pending.remove(&key).unwrap_or_default() {
            self.unshow(i);
        }
    }

    /// Pieces revealed to `key` and not announced by it yet.
    pub fn pending(&self, key: PeerKey) -> &[u32] {
        self.pending.get(&key).map_or(&[], Vec::as_slice)
    }

    fn unshow(&mut self, i: u32) {
        if let Some(n) = self.shown.get_mut(i as usize) {
            *n = n.saturating_sub(1);
        }
    }

    fn top_up(
        &mut self,
        key: PeerKey,
        mut pending: Vec<u32>,
        theirs: &Bitfield,
        availability: impl Fn(u32) -> u16,
    ) -> Vec<u32> {
        let mut new = Vec::new();
        while pending.len() < PER_PEER {
            let Some(i) = self.least_spread(theirs, &pending, &availability) else {
                break;
            };
            self.shown[i as usize] += 1;
            pending.push(i);
            new.push(i);
        }
        self.pending.insert(key, pending);
        new
    }

    /// The piece the peer lacks that the swarm has least, random among equals.
    fn least_spread(
        &self,
        theirs: &Bitfield,
        pending: &[u32],
        availability: &impl Fn(u32) -> u16,
    ) -> Option<u32> {
        let n = self.shown.len() as u32;
        if n == 0 {
            return None;
        }
        let start = rand::thread_rng().gen_range(0..n);
        let mut best: Option<(u32, u32)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if theirs.get(i) || pending.contains(&i) {
                continue;
            }
            let spread = u32::from(availability(i)) + u32::from(self.shown[i as usize]);
            if best.is_none_or(|(_, s)| spread < s) {
                best = Some((i, spread));
                if spread == 0 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests;
