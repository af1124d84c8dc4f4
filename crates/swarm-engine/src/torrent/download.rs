//! The torrent actor's data path: the events of its peers go to the peer set, a block goes to
//! the piece assembly, a complete piece to the disk pool to be hashed and written; the verdict
//! comes back as `Have` to every peer, or as a re-pick and a strike against the only sender.
//! The decisions are the cores' (`peer_set`, `assembly`); this file carries them out.

use std::net::SocketAddr;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use swarm_model::{Event, TorrentState};
use swarm_wire::peer::BlockRef;

use crate::disk::WriteOutcome;
use crate::torrent::actor::Torrent;
use crate::torrent::assembly::{PieceBuf, Stored};
use crate::torrent::messages::{PeerEvent, PeerKey, PeerSource, ToPeer};
use crate::torrent::peer_set::Strike;
use crate::torrent::super_seed::SuperSeed;

impl Torrent {
    pub(super) fn on_peer_event(
        &mut self,
        key: PeerKey,
        event: PeerEvent,
        ctx: &mut Context<Self>,
    ) {
        let now = Instant::now();
        match event {
            PeerEvent::Block { block, data } => self.on_block(key, block, data, ctx),
            PeerEvent::Connected {
                addr,
                peer_id,
                fast,
                extensions,
                encrypted,
                transport,
            } => {
                if self
                    .peers
                    .connected(key, addr, peer_id, fast, extensions, now)
                {
                    self.peers.set_encrypted(key, encrypted);
                    self.peers.note_transport(key, transport);
                    self.register_with_choker(ctx);
                    self.show_pieces(key, None);
                    self.rechoke();
                    // Leave the slow idle ticks: rates and pipelines need a tick every second.
                    self.wake_tick(ctx);
                }
            }
            PeerEvent::Extensions(ext) => {
                let private = self.meta.info.private;
                self.peers.on_extensions(key, ext, private);
            }
            PeerEvent::Bitfield(bf) => {
                let seed = self.peers.on_bitfield(key, bf, &mut self.picker);
                self.show_pieces(key, None);
                self.update_interest(key);
                if seed && self.state == TorrentState::Seeding {
                    self.peers.disconnect(key, "both seeding");
                }
            }
            PeerEvent::Have(i) => {
                if self.peers.on_have(key, i, &mut self.picker) {
                    self.update_interest(key);
                }
                self.show_pieces(key, Some(i));
            }
            PeerEvent::Choked => self.peers.on_choked(key, &mut self.picker),
            PeerEvent::Unchoked => {
                self.peers.on_unchoked(key, now);
                self.fill_requests(key);
            }
            PeerEvent::Interested(on) => {
                let (trading, slots) = (self.trading(), self.cfg.upload_slots());
                self.peers.on_interested(key, on, trading, slots);
                self.rechoke();
            }
            PeerEvent::Rejected(r) => self.peers.on_rejected(key, &r, &mut self.picker),
            PeerEvent::Uploaded(n) => {
                self.peers.on_uploaded(key, n);
                self.stats.up.add(n);
            }
            PeerEvent::Pex(msg) => {
                if self.meta.info.private {
                    return;
                }
                if let Some(addrs) = self.peers.on_pex(key, &msg, now) {
                    self.add_peers(addrs, PeerSource::Pex, ctx);
                }
            }
            PeerEvent::AllowedFast(i) => {
                if self.peers.on_allowed_fast(key, i) {
                    self.fill_requests(key);
                }
            }
            PeerEvent::DhtPort(port) => {
                let Some(p) = self.peers.get(key) else { return };
                let node = SocketAddr::new(p.sock.ip(), port);
                if let Some(dht) = self.dht() {
                    let _ = dht.add_node(node);
                }
            }
        }
    }

    fn on_block(&mut self, key: PeerKey, block: BlockRef, data: Bytes, ctx: &mut Context<Self>) {
        let len = data.len() as u64;
        let Some(sender) = self.peers.on_block(key, &block, len, Instant::now()) else {
            return;
        };
        self.stats.down.add(len);
        match self.assembly.on_block(
            &mut self.peers,
            &mut self.picker,
            key,
            &block,
            &data,
            sender,
        ) {
            Stored::Unexpected => self.stats.wasted += len,
            Stored::Kept => {}
            Stored::Complete(index, buf) => self.write_piece(index, buf, ctx),
        }
        self.fill_requests(key);
    }

    fn write_piece(&mut self, index: u32, buf: PieceBuf, ctx: &mut Context<Self>) {
        let disk = self.shared.disk.clone();
        let storage = self.shared.storage.clone();
        let senders = buf.senders;
        let fut = async move { disk.write_piece(storage, index, buf.data).await };
        ctx.spawn(fut.into_actor(self).map(move |(outcome, buf), act, ctx| {
            act.assembly.written(buf);
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
                self.resume.dirty = true;
                self.peers.broadcast(&ToPeer::Have(index));
                if self.picker.is_complete() && self.state == TorrentState::Downloading {
                    self.on_complete();
                    self.move_when_complete(ctx);
                }
            }
            WriteOutcome::HashMismatch => {
                self.picker.on_piece_failed(index);
                self.stats.hash_failures += 1;
                self.stats.wasted += self.picker.piece_len(index) as u64;
                tracing::warn!(torrent = %self.name(), piece = index, ?senders, "piece failed its hash check");
                let strike = self
                    .assembly
                    .hash_failed(&mut self.peers, &senders, Instant::now());
                if let Strike::Banned(n) = strike {
                    tracing::warn!(torrent = %self.name(), peer = ?senders, "banning peer after {n} bad pieces");
                    self.stats.bans += 1;
                }
            }
            WriteOutcome::Crashed => {
                // The disk job died (a panic in the pool): that piece is lost, nothing else.
                tracing::warn!(torrent = %self.name(), piece = index, "disk job crashed; fetching the piece again");
                self.picker.on_piece_failed(index);
            }
            WriteOutcome::Failed(e) => {
                self.picker.on_piece_failed(index);
                // Storage errors name their file (`storage::at`), which keeps the kind but not
                // the OS error number.
                let full = e.kind() == std::io::ErrorKind::StorageFull
                    || e.raw_os_error() == Some(libc::ENOSPC);
                let msg = if full {
                    format!(
                        "no space left on device writing to {}",
                        self.shared.storage.save_dir().display()
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

    fn on_complete(&mut self) {
        self.state = TorrentState::Seeding;
        self.assembly.complete();
        self.stats.completed_at = Some(crate::now_unix());
        tracing::info!(torrent = %self.name(), "download complete; seeding");
        self.save_resume();
        self.publish();
        let _ = self.services.events.send(Event::Completed {
            info_hash: self.shared.info_hash,
            name: self.name(),
        });
        self.services
            .announcer
            .do_send(crate::services::announcer::Completed {
                info_hash: self.shared.info_hash,
            });
        self.peers.on_complete();
    }

    pub(super) fn enter_error(&mut self, msg: String, ctx: &mut Context<Self>) {
        tracing::error!(torrent = %self.name(), "{msg}");
        self.state = TorrentState::Error;
        self.error = Some(msg.clone());
        let _ = self.services.events.send(Event::Error {
            info_hash: self.shared.info_hash,
            message: msg,
        });
        // The peers did nothing wrong: `resume` may dial them again at once.
        self.peers.release_all();
        self.disconnect_all("torrent stopped by an error", ctx);
        self.publish();
    }
}

// ---- super-seeding (BEP 16; the decisions are `SuperSeed`'s) ----------------------------------

impl Torrent {
    /// Super-seeding runs while it is on and the torrent seeds. When it stops (turned off, or
    /// the torrent downloads again after a file was un-skipped), every peer is shown all we have.
    pub(super) fn sync_super_seed(&mut self) {
        let run = self.cfg.super_seed && self.state == TorrentState::Seeding;
        match (run, self.super_seed.is_some()) {
            (true, false) => {
                tracing::info!(torrent = %self.name(), "super-seeding");
                self.super_seed = Some(Box::new(SuperSeed::new(self.picker.num_pieces())));
            }
            (false, true) => {
                self.super_seed = None;
                self.peers
                    .broadcast(&ToPeer::HaveEach(self.picker.have().clone()));
            }
            _ => {}
        }
    }

    /// Super-seeding: shows `key` its next pieces, after it connected, sent its bitfield, or
    /// announced piece `had`.
    fn show_pieces(&mut self, key: PeerKey, had: Option<u32>) {
        let Some(ss) = &mut self.super_seed else {
            return;
        };
        let Some(l) = self.peers.get(key).and_then(|p| p.live()) else {
            return;
        };
        let picker = &self.picker;
        let availability = |i| picker.availability(i);
        let show = match had {
            Some(i) => ss.on_have(key, i, &l.bitfield, availability),
            None => ss.on_peer(key, &l.bitfield, availability),
        };
        for i in show {
            l.handle.do_send(ToPeer::Have(i));
        }
    }
}
