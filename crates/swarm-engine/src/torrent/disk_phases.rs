//! The torrent actor's disk-facing phases, as a shell over their pure cores: the hash check of
//! the data on disk (start-up, `verify`; decisions in [`Checking`]) carried out on the disk pool,
//! and the resume record (how to start from it and what to save; decisions in [`ResumeState`])
//! written off the actor thread. `impl Torrent`, like `download.rs`, `links.rs` and `control.rs`.

use std::path::PathBuf;

use actix::prelude::*;
use swarm_model::TorrentState;

use super::actor::Torrent;
use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::torrent::check::{CheckStep, Checking};
use crate::torrent::resume_state::{ResumeState, Snapshot, StartFrom};

impl Torrent {
    // ---- checking -----------------------------------------------------------------------------

    /// Checks the data once a turn is free (at once if one is); meanwhile the torrent waits in
    /// `checking_queued`.
    pub(super) fn start_check(&mut self, ctx: &mut Context<Self>) {
        self.checks_asked += 1;
        self.check_turn = None;
        let turns = self.shared.checks.clone();
        match turns.clone().try_acquire_owned() {
            Ok(turn) => self.begin_check(Some(turn), ctx),
            // Never closed: a check without a turn is better than none.
            Err(tokio::sync::TryAcquireError::Closed) => self.begin_check(None, ctx),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                self.state = TorrentState::CheckingQueued;
                self.publish();
                let asked = self.checks_asked;
                let wait = async move { turns.acquire_owned().await.ok() };
                ctx.spawn(wait.into_actor(self).map(move |turn, act, ctx| {
                    // A check asked again meanwhile (or given up) has its own wait.
                    if act.checks_asked == asked && act.state == TorrentState::CheckingQueued {
                        act.begin_check(turn, ctx);
                    }
                }));
            }
        }
    }

    fn begin_check(
        &mut self,
        turn: Option<tokio::sync::OwnedSemaphorePermit>,
        ctx: &mut Context<Self>,
    ) {
        self.check_turn = turn;
        self.state = TorrentState::Checking;
        self.publish();
        let sizes = self.shared.storage.sizes_for_check();
        let n = self.picker.num_pieces();
        self.checking = Some(Box::new(Checking::new(n, sizes)));
        self.pump_check(ctx);
    }

    fn pump_check(&mut self, ctx: &mut Context<Self>) {
        let limit = self.cfg.max_pending_writes.max(2);
        loop {
            let Some(c) = &mut self.checking else { return };
            match c.step(&self.meta.info, limit) {
                CheckStep::Hash(index) => {
                    let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
                    let fut = async move { disk.check_piece(storage, index).await };
                    ctx.spawn(fut.into_actor(self).map(move |ok, act, ctx| {
                        if let Some(c) = &mut act.checking {
                            c.hashed(index, ok);
                        }
                        act.pump_check(ctx);
                    }));
                }
                CheckStep::Wait => return,
                CheckStep::Done => {
                    if let Some(c) = self.checking.take() {
                        self.finish_check(c.into_have(), true, ctx);
                    }
                    return;
                }
            }
        }
    }

    /// The pieces we have are known: from a check (`checked`), or from the resume record.
    pub(super) fn finish_check(&mut self, have: Bitfield, checked: bool, ctx: &mut Context<Self>) {
        // Handed on once this torrent's next state is out: the next check's `checking` comes
        // after it in the event stream.
        let _turn = self.check_turn.take();
        self.resume.unchecked = false;
        // What a check found is worth a record soon: a crash should not repeat the check. What
        // the record said is on disk already (saving it again made every restart of a daemon
        // with a thousand torrents write a thousand records).
        if checked {
            self.resume.dirty = true;
        }
        let info = &self.meta.info;
        let mut picker = Picker::new(info.piece_length, info.total_length, have);
        self.peers.add_bitfields_to(&mut picker);
        self.picker = picker;
        self.apply_file_priorities();
        let n = self.picker.num_pieces();
        tracing::info!(torrent = %self.name(), have = self.picker.have().count(), of = n, "check done");
        if self.cfg.paused {
            self.state = TorrentState::Paused;
            self.publish();
            return;
        }
        self.go_live(ctx);
    }

    // ---- resume -------------------------------------------------------------------------------

    /// Where to start: the resume record's decision (see [`ResumeState::start_from`]), after
    /// taking its counters and settings.
    pub(super) fn trusted_record(&mut self) -> StartFrom {
        let Some(rec) = self.cfg.record.take() else {
            self.place_skipped_files_now();
            // A new torrent none of whose files is on disk (nor a parts file) has nothing to
            // check: it starts with no pieces, as transmission's fresh add does, instead of
            // passing through `checking` (which a client that adds paused sees).
            let storage = &self.shared.storage;
            if storage.nothing_on_disk() && !storage.parts_path().exists() {
                return StartFrom::Known(Bitfield::new(self.picker.num_pieces()));
            }
            return StartFrom::Check;
        };
        let restored = ResumeState::restored(&rec);
        if !self.cfg.restarted {
            self.shared
                .transferred
                .restore(restored.uploaded, restored.downloaded);
            self.shared
                .transferred
                .add_seeding_secs(restored.seeding_secs);
        }
        if let Some(at) = restored.added_at {
            self.stats.added_at = at;
        }
        self.stats.completed_at = restored.completed_at;
        if let Some(p) = restored.priorities {
            self.file_priorities = p;
        }
        // Before the file stats: they include the parts file while a skipped file is parted.
        self.place_skipped_files_now();
        let storage = &self.shared.storage;
        let files = storage.file_stats();
        let n = self.picker.num_pieces();
        let start = ResumeState::start_from(&rec, n, &files, || storage.nothing_on_disk());
        let had = rec.have_bytes().and_then(|b| Bitfield::from_wire(&b, n));
        match &start {
            StartFrom::Check if had.is_some() => {
                tracing::info!(torrent = %self.name(), "data changed since the last resume record; rechecking")
            }
            StartFrom::Known(have) if self.cfg.restarted => tracing::info!(
                torrent = %self.name(),
                pieces = have.count(),
                "restarted after a crash from its resume record, without a check"
            ),
            _ => {}
        }
        start
    }

    pub(super) fn resume_bytes(&self) -> Option<(PathBuf, Vec<u8>)> {
        self.resume.record(Snapshot {
            info_hash: self.shared.info_hash,
            // The storage's: the source until a move is done, the destination from then on,
            // whichever incarnation of the torrent saw the move finish.
            save_dir: self.shared.storage.save_dir(),
            paused: self.state == TorrentState::Paused || self.cfg.paused,
            have: self.picker.have(),
            files: self.shared.storage.file_stats(),
            priorities: self.file_priorities.clone(),
            downloaded: self.shared.transferred.downloaded(),
            uploaded: self.shared.transferred.uploaded(),
            added_at: self.stats.added_at,
            completed_at: self.stats.completed_at,
            super_seed: self.cfg.super_seed,
            queue: self.cfg.queue,
            seeding_secs: self.shared.transferred.seeding_secs(),
            labels: self.cfg.labels.clone(),
            limits: self.cfg.limits,
            moving: self.shared.storage.move_journal(),
            complete_dir: self.cfg.complete_dir.clone(),
        })
    }

    /// Saves the resume record off the actor thread. Not while checking: the pieces are not
    /// known then, and a record saying none are would be trusted by the next start (after a
    /// crash, too) as long as the files do not change; the tick saves once the check is done.
    pub(super) fn save_resume(&mut self) {
        if self.checking.is_some() {
            self.resume.dirty = true;
            return;
        }
        self.resume.dirty = false;
        if let Some((path, bytes)) = self.resume_bytes() {
            self.record_saves
                .begin()
                .write_later(path, bytes, self.name().to_string());
        }
    }
}
