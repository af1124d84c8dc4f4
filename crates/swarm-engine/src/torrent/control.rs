//! The torrent actor's answers to the control queries and orders (the messages are in
//! `messages.rs`): views for `swarmctl`, pause/resume, verify,
//! file priorities, removal.

use actix::prelude::*;
use swarm_model::{FileInfo, FilePriority, PeerInfo, TorrentDetail, TorrentState, TorrentSummary};

use crate::picker::{Priority, PRIORITY_SKIP};
use crate::services::rate_limiter::SetTorrentLimits;
use crate::torrent::actor::Torrent;
use crate::torrent::messages::{
    GetDetail, GetFiles, GetPeers, GetPieces, GetSummary, GetTrackerTiers, QueueChanged,
    Reannounce, SetFilePriorities, SetLabels, SetLimits, SetPaused, SetSuperSeed, Verify,
};
use crate::torrent::peer::transport::TransportKind;

impl Torrent {
    pub fn summary(&self) -> TorrentSummary {
        let (wanted_bytes, left_bytes) = self.picker.wanted_and_left();
        TorrentSummary {
            info_hash: self.shared.info_hash,
            name: self.name(),
            state: self.state,
            progress: self.progress(),
            total_bytes: self.meta.info.total_length,
            have_bytes: self.have_bytes(),
            wanted_bytes,
            left_bytes,
            download_rate: self.stats.down.per_second(),
            upload_rate: self.stats.up.per_second(),
            downloaded: self.shared.transferred.downloaded(),
            uploaded: self.shared.transferred.uploaded(),
            peers: self.peers.live_count() as u32,
            save_dir: self.shared.storage.save_dir().display().to_string(),
            error: self.error.clone(),
            queue_position: self.cfg.queue.position,
            forced: self.cfg.queue.forced,
            labels: self.cfg.labels.clone(),
            moving: self.move_progress(),
        }
    }

    /// Publishes the summary for `list` and `stats` (see [`crate::torrent::shared::StatusCell`]):
    /// called on every tick and after every change of state.
    /// Publishes the summary for `list` and `stats`; a change of state is also an event, at once
    /// (pause, resume, a check, completion, an error: what `swarmctl watch` shows as it happens).
    pub(super) fn publish(&self) {
        let summary = self.summary();
        let mut counts = crate::torrent::shared::Counts {
            peer_restarts: self.stats.peer_restarts,
            ..Default::default()
        };
        for (_, p, l) in self.peers.live() {
            let utp = l.transport == TransportKind::Utp;
            counts.peers_incoming += u32::from(!p.outgoing);
            counts.peers_utp += u32::from(utp);
            counts.peers_utp_incoming += u32::from(utp && !p.outgoing);
        }
        if self.shared.status.publish(&summary, counts) {
            let _ = self.services.events.send(swarm_model::Event::State {
                info_hash: summary.info_hash,
                name: summary.name,
                state: summary.state,
            });
        }
    }

    fn have_bytes(&self) -> u64 {
        self.picker
            .have()
            .iter_ones()
            .map(|i| self.picker.piece_len(i) as u64)
            .sum()
    }

    fn detail(&self) -> TorrentDetail {
        let rate = self.stats.down.per_second();
        let left = self.picker.bytes_left();
        TorrentDetail {
            summary: self.summary(),
            piece_length: self.meta.info.piece_length,
            pieces: self.meta.info.num_pieces(),
            pieces_have: self.picker.have().count(),
            private: self.meta.info.private,
            comment: self.meta.comment.clone(),
            added_at: self.stats.added_at,
            completed_at: self.stats.completed_at,
            peer_restarts: self.stats.peer_restarts,
            hash_failures: self.stats.hash_failures,
            eta_secs: (rate > 0 && left > 0).then(|| left / rate),
            super_seed: self.cfg.super_seed,
            seed_limits: self.cfg.queue.seed_limits,
            seeding_secs: self.shared.transferred.seeding_secs(),
            limits: self.cfg.limits,
        }
    }

    /// Hands the torrent's own rates to the rate limiter: on the board first, which outlives
    /// the limiter (a restarting one reads it), then to the limiter's buckets.
    pub(super) fn apply_rate_limits(&self) {
        let (ih, l) = (self.shared.info_hash, self.cfg.limits);
        self.services.board.set_torrent(
            ih,
            crate::services::rate_limiter::Limits::new(l.download, l.upload),
            l.priority,
        );
        self.services.limiter.do_send(SetTorrentLimits {
            info_hash: ih,
            down: l.download,
            up: l.upload,
            priority: l.priority,
        });
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let n = self.picker.num_pieces().max(1) as f64;
        self.peers
            .live()
            .map(|(_, p, l)| PeerInfo {
                addr: p.sock.to_string(),
                client: l.client.clone(),
                direction: if p.outgoing { "outgoing" } else { "incoming" }.into(),
                source: p.source.as_str().into(),
                transport: l.transport.as_str().into(),
                progress: l.bitfield.count() as f64 / n,
                download_rate: p.down.per_second(),
                upload_rate: p.up.per_second(),
                downloaded: p.downloaded,
                uploaded: p.uploaded,
                am_choking: l.am_choking,
                am_interested: l.am_interested,
                peer_choking: l.peer_choking,
                peer_interested: l.peer_interested,
                requests_in_flight: l.in_flight.len() as u32,
                encrypted: l.encrypted,
            })
            .collect()
    }

    fn file_infos(&self) -> Vec<FileInfo> {
        let info = &self.meta.info;
        let have = self.picker.have();
        info.files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.pad)
            .map(|(i, f)| {
                let mut have_bytes = 0;
                if f.length > 0 {
                    let pl = info.piece_length as u64;
                    let (first, last) = (f.offset / pl, (f.offset + f.length - 1) / pl);
                    for p in first..=last {
                        if have.get(p as u32) {
                            let (ps, pe) =
                                (p * pl, p * pl + self.picker.piece_len(p as u32) as u64);
                            have_bytes += pe.min(f.offset + f.length) - ps.max(f.offset);
                        }
                    }
                }
                FileInfo {
                    index: i as u32,
                    path: f.path.join("/"),
                    length: f.length,
                    have_bytes,
                    priority: self
                        .file_priorities
                        .get(i)
                        .copied()
                        .unwrap_or(FilePriority::Normal),
                }
            })
            .collect()
    }

    /// `skipped[i]`: the user skipped file `i`.
    fn skipped_files(&self) -> Vec<bool> {
        self.file_priorities
            .iter()
            .map(|p| *p == FilePriority::Skip)
            .collect()
    }

    /// Tells the storage which files are skipped, at start-up, before the files are looked at:
    /// on this thread, as the file stats are (a stat per skipped file; at start nothing moves
    /// out of the parts file, no file being parted yet). An error (a parts file that is not
    /// ours) is logged: the pieces it would hold are missing, and the check says so.
    pub(super) fn place_skipped_files_now(&self) {
        if let Err(e) = self.shared.storage.set_skipped(&self.skipped_files()) {
            tracing::warn!(torrent = %self.name(), "placing skipped files: {e}");
        }
    }

    /// Tells the storage which files are skipped after a change, on the disk pool: bytes of an
    /// un-skipped file move from the parts file into the file. If they cannot, the torrent
    /// stops with the reason (they stay in the parts file).
    fn place_skipped_files(&self, ctx: &mut Context<Self>) {
        let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
        let skipped = self.skipped_files();
        let fut = async move { disk.set_skipped(storage, skipped).await };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.enter_error(
                    format!("moving the bytes of un-skipped files out of the parts file: {e}"),
                    ctx,
                );
            }
        }));
    }

    /// Piece priorities from file priorities: a piece takes the highest priority of its files;
    /// only a piece all of whose files are skipped is skipped.
    pub(super) fn apply_file_priorities(&mut self) {
        let info = &self.meta.info;
        let mut prio: Vec<Priority> = vec![PRIORITY_SKIP; info.num_pieces() as usize];
        let pl = info.piece_length as u64;
        for (i, f) in info.files.iter().enumerate() {
            if f.length == 0 || f.pad {
                continue;
            }
            let fp = match self
                .file_priorities
                .get(i)
                .copied()
                .unwrap_or(FilePriority::Normal)
            {
                FilePriority::Skip => 0,
                FilePriority::Low => 1,
                FilePriority::Normal => 2,
                FilePriority::High => 3,
            };
            for p in f.offset / pl..=(f.offset + f.length - 1) / pl {
                if let Some(x) = prio.get_mut(p as usize) {
                    *x = (*x).max(fp);
                }
            }
        }
        self.picker.set_priorities(prio);
    }
}

macro_rules! query {
    ($msg:ident, |$t:ident| $body:expr) => {
        impl Handler<$msg> for Torrent {
            type Result = MessageResult<$msg>;

            fn handle(&mut self, _: $msg, _: &mut Context<Self>) -> MessageResult<$msg> {
                let $t = &*self;
                MessageResult($body)
            }
        }
    };
}

query!(GetSummary, |t| t.summary());
query!(GetDetail, |t| t.detail());
query!(GetPeers, |t| t.peer_infos());
query!(GetFiles, |t| t.file_infos());
query!(GetTrackerTiers, |t| t.meta.tracker_tiers());
query!(GetPieces, |t| t.picker.have().as_bytes().to_vec());

impl Handler<SetFilePriorities> for Torrent {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: SetFilePriorities, ctx: &mut Context<Self>) -> Result<(), String> {
        let n = self.meta.info.files.len();
        if let Some((i, _)) = msg.0.iter().find(|(i, _)| *i as usize >= n) {
            return Err(format!("no file {i} (the torrent has {n})"));
        }
        self.file_priorities.resize(n, FilePriority::Normal);
        for (i, p) in msg.0 {
            self.file_priorities[i as usize] = p;
        }
        self.apply_file_priorities();
        self.place_skipped_files(ctx);
        // Saved at once, as a pause is: a crash before the next periodic save would bring the
        // torrent back with the old priorities (a restart starts from the record).
        self.save_resume();
        if self.state == TorrentState::QueuedDownload && self.picker.is_complete() {
            self.state = TorrentState::QueuedSeed;
        } else if self.state == TorrentState::QueuedSeed && !self.picker.is_complete() {
            self.state = TorrentState::QueuedDownload;
        } else if self.state == TorrentState::Downloading && self.picker.is_complete() {
            self.state = TorrentState::Seeding;
        } else if self.state == TorrentState::Seeding && !self.picker.is_complete() {
            self.state = TorrentState::Downloading;
            // The seeds we left as a seed ("both seeding") have what we now want: dial them
            // now, not when their minute of back-off is over.
            self.peers.wanted_again(std::time::Instant::now());
            self.connect_more(ctx);
        }
        self.fill_all();
        self.publish();
        Ok(())
    }
}

impl Handler<SetPaused> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: SetPaused, ctx: &mut Context<Self>) {
        match (msg.0, self.state) {
            (true, TorrentState::Paused)
            | (false, TorrentState::Downloading | TorrentState::Seeding) => {}
            // The check goes on (or waits for its turn), then the torrent stays paused.
            (true, TorrentState::Checking | TorrentState::CheckingQueued) => self.cfg.paused = true,
            (true, _) => {
                self.go_quiet(ctx);
                self.state = TorrentState::Paused;
                self.cfg.paused = true;
            }
            (false, TorrentState::Checking | TorrentState::CheckingQueued) => {
                self.cfg.paused = false
            }
            (false, _) if self.resume.unchecked => {
                // The data was missing at start: what is there now is unknown until hashed.
                self.cfg.paused = false;
                self.error = None;
                self.start_check(ctx);
            }
            (false, _) => {
                self.cfg.paused = false;
                self.go_live(ctx);
            }
        }
        self.save_resume();
        self.publish();
    }
}

impl Handler<QueueChanged> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: QueueChanged, ctx: &mut Context<Self>) {
        if let Some(q) = msg.0.filter(|q| *q != self.cfg.queue) {
            self.cfg.queue = q;
            // At once, as a pause is: a restarted daemon adds torrents back in this order.
            self.save_resume();
        }
        let held = self.shared.held.load(std::sync::atomic::Ordering::Relaxed);
        match self.state {
            TorrentState::Downloading | TorrentState::Seeding if held => {
                self.go_quiet(ctx);
                self.go_live(ctx);
            }
            TorrentState::QueuedDownload | TorrentState::QueuedSeed if !held => self.go_live(ctx),
            _ => {}
        }
        self.publish();
    }
}

impl Handler<SetSuperSeed> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: SetSuperSeed, _: &mut Context<Self>) {
        if self.cfg.super_seed != msg.0 {
            self.cfg.super_seed = msg.0;
            self.resume.dirty = true;
            self.sync_super_seed();
            self.publish();
        }
    }
}

impl Handler<SetLimits> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: SetLimits, ctx: &mut Context<Self>) {
        self.cfg.limits = msg.0;
        self.apply_rate_limits();
        // A kept record at once: a crash must not bring back the old limits.
        self.save_resume();
        // More room for peers is used now, not at the next tick; fewer upload slots at the
        // next round, which this asks for.
        self.connect_more(ctx);
        self.rechoke();
        self.publish();
    }
}

impl Handler<SetLabels> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: SetLabels, _: &mut Context<Self>) {
        self.cfg.labels = msg.0;
        self.save_resume();
        self.publish();
    }
}

impl Handler<Verify> for Torrent {
    type Result = ();

    fn handle(&mut self, _: Verify, ctx: &mut Context<Self>) {
        self.verify(ctx);
    }
}

impl Torrent {
    /// Hashes everything on disk again (`verify`, and a torrent pointed at another directory).
    pub(super) fn verify(&mut self, ctx: &mut Context<Self>) {
        if matches!(
            self.state,
            TorrentState::Checking | TorrentState::CheckingQueued
        ) {
            return;
        }
        let was_paused = self.state == TorrentState::Paused;
        self.go_quiet(ctx);
        self.cfg.paused = was_paused;
        self.assembly.clear();
        self.start_check(ctx);
    }
}

impl Handler<Reannounce> for Torrent {
    type Result = ();

    fn handle(&mut self, _: Reannounce, ctx: &mut Context<Self>) {
        // A torrent crash at a moment a test picks (`swarmctl reannounce`).
        crate::fault::maybe_panic_for("torrent.reannounce", Some(&self.shared.info_hash));
        // Make sure the announcer knows us (it may have restarted since we went live).
        if matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            self.announce_self(ctx);
        }
        self.services
            .announcer
            .do_send(crate::services::announcer::Reannounce {
                info_hash: self.shared.info_hash,
            });
    }
}
