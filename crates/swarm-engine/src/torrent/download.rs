//! The download path inside the torrent actor: a block arrives from a peer actor, is copied into
//! its piece buffer, and a complete piece goes to the disk pool to be hashed and written; the
//! verdict comes back as `Have` to every peer, or as a re-pick and a strike against the senders.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use swarm_control::{Event, TorrentState};
use swarm_wire::peer::BlockRef;

use crate::bitfield::Bitfield;
use crate::disk::WriteOutcome;
use crate::picker::BlockOutcome;
use crate::torrent::actor::Torrent;
use crate::torrent::messages::{PeerKey, ToPeer};

/// A piece being assembled in memory.
pub struct PieceBuf {
    pub data: Vec<u8>,
    /// Endpoints that sent blocks of it (blamed together if the hash fails).
    pub senders: Vec<SocketAddr>,
}

/// Hash failures (as the only sender of a piece) before an endpoint is banned.
const STRIKES_TO_BAN: u32 = 2;
const BAN_FOR: Duration = Duration::from_secs(3600);
/// A peer that owes us blocks and sends nothing for this long loses its requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

impl Torrent {
    pub(super) fn on_block(
        &mut self,
        key: PeerKey,
        block: BlockRef,
        data: Bytes,
        ctx: &mut Context<Self>,
    ) {
        let len = data.len() as u64;
        let Some(slot) = self.peers.get_mut(&key) else {
            return;
        };
        let requested = slot.take_request(&block);
        slot.downloaded += len;
        slot.down.add(len);
        self.stats.down.add(len);
        if requested {
            slot.last_block = Instant::now();
            slot.last_piece_at = Some(slot.last_block);
            slot.snubbed = false;
            slot.on_block_in_time();
        }
        let sender = slot.sock;
        match self.picker.on_block(&block) {
            BlockOutcome::Unexpected => self.stats.wasted += len,
            outcome => {
                let piece_len = self.picker.piece_len(block.index) as usize;
                let spare = &mut self.spare_buffers;
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
                buf.data[start..start + data.len()].copy_from_slice(&data);
                if !buf.senders.contains(&sender) {
                    buf.senders.push(sender);
                }
                if self.endgame {
                    self.cancel_duplicates(key, &block);
                }
                if outcome == BlockOutcome::PieceComplete {
                    if let Some(buf) = self.buffers.remove(&block.index) {
                        self.write_piece(block.index, buf, ctx);
                    }
                }
            }
        }
        self.fill_requests(key);
    }

    fn cancel_duplicates(&mut self, from: PeerKey, block: &BlockRef) {
        for (k, p) in self.peers.iter_mut() {
            if *k != from && p.take_request(block) {
                if let Some(a) = &p.addr {
                    a.do_send(ToPeer::Cancel(*block));
                }
            }
        }
    }

    fn write_piece(&mut self, index: u32, buf: PieceBuf, ctx: &mut Context<Self>) {
        self.pending_writes += 1;
        let disk = self.shared.disk.clone();
        let storage = self.shared.storage.clone();
        let senders = buf.senders;
        let fut = async move { disk.write_piece(storage, index, buf.data).await };
        ctx.spawn(fut.into_actor(self).map(move |(outcome, buf), act, ctx| {
            act.pending_writes -= 1;
            if let Some(buf) = buf {
                if act.spare_buffers.len() < act.cfg.max_pending_writes {
                    act.spare_buffers.push(buf);
                }
            }
            act.on_piece_written(index, senders, outcome, ctx);
        }));
    }

    fn on_piece_written(
        &mut self,
        index: u32,
        senders: Vec<SocketAddr>,
        outcome: WriteOutcome,
        ctx: &mut Context<Self>,
    ) {
        match outcome {
            WriteOutcome::Written => {
                self.picker.on_piece_verified(index);
                self.dirty = true;
                for p in self.peers.values() {
                    if let Some(a) = &p.addr {
                        a.do_send(ToPeer::Have(index));
                    }
                }
                if self.picker.is_complete() && self.state == TorrentState::Downloading {
                    self.on_complete(ctx);
                }
            }
            WriteOutcome::HashMismatch => {
                self.picker.on_piece_failed(index);
                self.stats.hash_failures += 1;
                self.stats.wasted += self.picker.piece_len(index) as u64;
                tracing::warn!(torrent = %self.name(), piece = index, ?senders, "piece failed its hash check");
                self.blame(&senders);
            }
            WriteOutcome::Crashed => {
                // The disk job died (a panic in the pool): that piece is lost, nothing else.
                tracing::warn!(torrent = %self.name(), piece = index, "disk job crashed; fetching the piece again");
                self.picker.on_piece_failed(index);
            }
            WriteOutcome::Failed(e) => {
                self.picker.on_piece_failed(index);
                let msg = if e.raw_os_error() == Some(libc::ENOSPC) {
                    format!(
                        "no space left on device writing to {}",
                        self.cfg.save_dir.display()
                    )
                } else {
                    format!("writing piece {index}: {e}")
                };
                self.enter_error(msg, ctx);
                return;
            }
        }
        self.fill_all();
    }

    /// A failed piece with one sender is that sender's fault; with several we cannot tell, and the
    /// picker fetches it again from a single peer so that the next failure is conclusive.
    fn blame(&mut self, senders: &[SocketAddr]) {
        let [culprit] = senders else { return };
        let name = self.name();
        let Some((key, slot)) = self.peers.iter_mut().find(|(_, p)| p.sock == *culprit) else {
            return;
        };
        slot.hash_failures += 1;
        if slot.hash_failures >= STRIKES_TO_BAN {
            tracing::warn!(torrent = %name, peer = %culprit, "banning peer after {} bad pieces", slot.hash_failures);
            if let Some(a) = &slot.addr {
                a.do_send(ToPeer::Disconnect("sent corrupt data".into()));
            }
            let key = *key;
            let book = self.book.get_or_insert_with(Box::default);
            book.ban(*culprit, BAN_FOR);
            // An incoming connection comes from a new port each time: ban the peer id too.
            book.banned_ids.insert(slot.peer_id);
            self.banned_keys.insert(key);
            self.stats.bans += 1;
        }
    }

    pub(super) fn on_complete(&mut self, _ctx: &mut Context<Self>) {
        self.state = TorrentState::Seeding;
        self.endgame = false;
        self.stats.completed_at = Some(crate::now_unix());
        tracing::info!(torrent = %self.name(), "download complete; seeding");
        self.save_resume();
        self.publish();
        let _ = self.services.events.send(Event::Completed {
            info_hash: self.shared.info_hash.to_hex(),
            name: self.name(),
        });
        self.services
            .announcer
            .do_send(crate::services::announcer::Completed {
                info_hash: self.shared.info_hash,
            });
        for p in self.peers.values_mut() {
            if p.am_interested {
                p.am_interested = false;
                if let Some(a) = &p.addr {
                    a.do_send(ToPeer::Interested(false));
                }
            }
            // Two seeds have nothing to say to each other.
            if p.bitfield.is_complete() {
                if let Some(a) = &p.addr {
                    a.do_send(ToPeer::Disconnect("both seeding".into()));
                }
            }
        }
    }

    pub(super) fn fill_all(&mut self) {
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill_requests(k);
        }
    }

    /// Tops up a peer's request pipeline.
    pub(super) fn fill_requests(&mut self, key: PeerKey) {
        if self.state != TorrentState::Downloading
            || self.pending_writes >= self.cfg.max_pending_writes
        {
            return;
        }
        let Some(slot) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(addr) = &slot.addr else { return };
        if !slot.am_interested || slot.snubbed {
            return;
        }
        // Choked: only the pieces the peer allows us anyway (BEP 6 allowed fast).
        let choked_mask = if slot.peer_choking {
            if slot.allowed_fast.pieces().is_empty() {
                return;
            }
            let mut mask = Bitfield::new(slot.bitfield.len());
            for &i in slot.allowed_fast.pieces() {
                if slot.bitfield.get(i) {
                    mask.set(i);
                }
            }
            Some(mask)
        } else {
            None
        };
        let want = slot.target_depth.saturating_sub(slot.in_flight.len());
        // Batch small top-ups: one message for several blocks.
        if want == 0 || (want < 4 && slot.in_flight.len() > 4) {
            return;
        }
        let mut out = Vec::with_capacity(want);
        let in_flight = &slot.in_flight;
        self.picker.pick(
            key,
            choked_mask.as_ref().unwrap_or(&slot.bitfield),
            want,
            |r| in_flight.contains(r),
            &mut out,
        );
        if out.is_empty() {
            if !self.endgame && self.picker.in_endgame() {
                self.endgame = true;
            }
            return;
        }
        slot.in_flight.extend(out.iter().copied());
        addr.do_send(ToPeer::Request(out));
    }

    /// Once a second: requests that went unanswered too long go back to the picker.
    pub(super) fn expire_requests(&mut self) {
        let now = Instant::now();
        let mut released = Vec::new();
        for p in self.peers.values_mut() {
            if !p.in_flight.is_empty() && now.duration_since(p.last_block) > REQUEST_TIMEOUT {
                tracing::debug!(peer = %p.sock, n = p.in_flight.len(), "requests timed out; peer snubbed");
                p.snubbed = true;
                for r in p.in_flight.drain(..) {
                    if let Some(a) = &p.addr {
                        a.do_send(ToPeer::Cancel(r));
                    }
                    released.push(r);
                }
            }
        }
        for r in released {
            self.picker.on_request_dropped(&r);
        }
    }

    /// Requests the peer will not answer any more (it choked us, rejected, or left).
    pub(super) fn release_requests(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            for r in p.in_flight.drain(..) {
                self.picker.on_request_dropped(&r);
            }
        }
    }

    pub(super) fn enter_error(&mut self, msg: String, ctx: &mut Context<Self>) {
        tracing::error!(torrent = %self.name(), "{msg}");
        self.state = TorrentState::Error;
        self.error = Some(msg.clone());
        let _ = self.services.events.send(Event::Error {
            info_hash: self.shared.info_hash.to_hex(),
            message: msg,
        });
        // The peers did nothing wrong: `resume` may dial them again at once.
        for p in self.peers.values_mut() {
            p.released = true;
        }
        self.disconnect_all("torrent stopped by an error", ctx);
        self.publish();
    }
}
