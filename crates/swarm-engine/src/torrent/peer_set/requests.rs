//! The peer set's request pipelines: each live peer's requests topped up from the picker, blocks
//! taken off them as they arrive, the endgame's duplicates cancelled, and requests that a peer
//! will not answer (it choked us, left, or went quiet for [`REQUEST_TIMEOUT`]) handed back to the
//! picker. Part of the [`PeerSet`] core: time is an argument.

use std::net::SocketAddr;
use std::time::Instant;

use swarm_wire::peer::BlockRef;

use super::{Conn, PeerHandle, PeerSet, REQUEST_TIMEOUT};
use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::torrent::messages::{PeerKey, ToPeer};

impl<H: PeerHandle> PeerSet<H> {
    /// Tops up the request pipeline of `key` from the picker. False when the picker had nothing
    /// for a peer that wanted more (the caller checks for the endgame).
    pub fn fill_requests(&mut self, key: PeerKey, picker: &mut Picker) -> bool {
        let Some(slot) = self.slots.get_mut(&key) else {
            return true;
        };
        let snubbed = slot.snubbed;
        let Some(l) = slot.live_mut() else {
            return true;
        };
        if !l.am_interested || snubbed {
            return true;
        }
        // Choked: only the pieces the peer allows us anyway (BEP 6 allowed fast).
        let choked_mask = if l.peer_choking {
            if l.allowed_fast.pieces().is_empty() {
                return true;
            }
            let mut mask = Bitfield::new(l.bitfield.len());
            for &i in l.allowed_fast.pieces() {
                if l.bitfield.get(i) {
                    mask.set(i);
                }
            }
            Some(mask)
        } else {
            None
        };
        let want = l.target_depth.saturating_sub(l.in_flight.len());
        // Batch small top-ups: one message for several blocks.
        if want == 0 || (want < 4 && l.in_flight.len() > 4) {
            return true;
        }
        let mut out = Vec::with_capacity(want);
        let in_flight = &l.in_flight;
        picker.pick(
            key,
            choked_mask.as_ref().unwrap_or(&l.bitfield),
            want,
            |r| in_flight.contains(r),
            &mut out,
        );
        if out.is_empty() {
            return false;
        }
        l.in_flight.extend(out.iter().copied());
        l.handle.send(ToPeer::Request(out));
        true
    }

    /// A block arrived from `key`: counted, taken off its requests. Returns the sender's
    /// endpoint (for the hash-fail attribution), or `None` when the slot is gone.
    pub fn on_block(
        &mut self,
        key: PeerKey,
        block: &BlockRef,
        len: u64,
        now: Instant,
    ) -> Option<SocketAddr> {
        let slot = self.slots.get_mut(&key)?;
        slot.downloaded += len;
        slot.down.add(len);
        if let Some(l) = slot.live_mut() {
            if l.take_request(block) {
                l.last_block = now;
                l.on_block_in_time();
                slot.last_piece_at = Some(now);
                slot.snubbed = false;
            }
        }
        Some(slot.sock)
    }

    /// Endgame: `block` came from `from`; the others that were asked for it are told to cancel.
    pub fn cancel_duplicates(&mut self, from: PeerKey, block: &BlockRef) {
        for (k, p) in self.slots.iter_mut() {
            if *k == from {
                continue;
            }
            if let Some(l) = p.live_mut() {
                if l.take_request(block) {
                    l.handle.send(ToPeer::Cancel(*block));
                }
            }
        }
    }

    /// Requests `key` will not answer any more (it choked us, or left) go back to the picker.
    pub fn release_requests(&mut self, key: PeerKey, picker: &mut Picker) {
        if let Some(l) = self.live_mut(key) {
            for r in l.in_flight.drain(..) {
                picker.on_request_dropped(&r);
            }
        }
    }

    /// Requests that went unanswered too long go back to the picker; their peer is snubbed.
    pub fn expire_requests(&mut self, picker: &mut Picker, now: Instant) {
        for p in self.slots.values_mut() {
            let Conn::Live(l) = &mut p.conn else { continue };
            if !l.in_flight.is_empty() && now.duration_since(l.last_block) > REQUEST_TIMEOUT {
                tracing::debug!(peer = %p.sock, n = l.in_flight.len(), "requests timed out; peer snubbed");
                p.snubbed = true;
                for r in l.in_flight.drain(..) {
                    l.handle.send(ToPeer::Cancel(r));
                    picker.on_request_dropped(&r);
                }
            }
        }
    }
}
