//! Torrents' lifecycle under the root: adding one (its save directory tried, its `.torrent` and
//! first resume record saved, its shared handle made, its actor started as a `Transient` child
//! on a torrent thread), removing one (its actor stopped, its state files and perhaps its data
//! deleted), what is left to do when one ends on its own, and starting one the root gave up on
//! again (`StartGivenUp`, from `resume` and `verify`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix::prelude::*;
use swarm_model::{Event, TorrentState};
use swarm_supervisor::{ChildHandle, ExitReason, Restart};
use swarm_wire::{InfoHash, Metainfo};

use super::{blank_summary, Root, RootChild, TorrentEntry};
use crate::bitfield::Bitfield;
use crate::resume::{ResumeRecord, StatePaths};
use crate::services::rate_limiter::ForgetTorrent;
use crate::storage::Storage;
use crate::torrent::resume_state::QueueSettings;
use crate::torrent::shared::{Counts, Published, StatusCell, TorrentShared};
use crate::torrent::{Torrent, TorrentConfig};
use swarm_model::EngineError;

#[derive(Message)]
#[rtype(result = "Result<InfoHash, EngineError>")]
pub struct AddTorrent {
    pub meta: Metainfo,
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    /// Pieces known good without hashing; `None` checks the data on disk.
    pub known_have: Option<Bitfield>,
    /// The resume record found at start-up (trusted only if the files match it).
    pub record: Option<ResumeRecord>,
    /// A new torrent's labels (a restored one has its record's).
    pub labels: Vec<String>,
}

impl Handler<AddTorrent> for Root {
    type Result = Result<InfoHash, EngineError>;

    fn handle(&mut self, msg: AddTorrent, ctx: &mut Context<Self>) -> Self::Result {
        let name = msg.meta.info.name.clone();
        let ih = self.add_torrent(msg, true, ctx)?;
        tracing::info!(torrent = %name, info_hash = %ih, "added");
        Ok(ih)
    }
}

impl Root {
    /// `Duplicate` if a torrent or a magnet has this info-hash already.
    pub(super) fn check_new(&self, ih: InfoHash) -> Result<(), EngineError> {
        if self.torrents.contains_key(&ih) || self.magnets.contains_key(&ih) {
            return Err(EngineError::Duplicate(ih));
        }
        Ok(())
    }

    /// Adds a torrent; `announce`: send the `added` event (a magnet whose metadata arrived was
    /// announced when it was added).
    pub(super) fn add_torrent(
        &mut self,
        msg: AddTorrent,
        announce: bool,
        ctx: &mut Context<Self>,
    ) -> Result<InfoHash, EngineError> {
        let ih = msg.meta.info_hash;
        self.check_new(ih)?;
        let save_dir = msg
            .save_dir
            .clone()
            .or_else(|| msg.record.as_ref().map(|r| r.save_dir.clone()))
            .unwrap_or_else(|| self.cfg.download_dir.clone());
        // A new torrent's save directory is made and tried now, so that a directory we cannot
        // write to is the add's error, named, rather than a failed piece later. A restored one
        // is made only if its record had no data (a failure there shows when it writes): one
        // that had data and is gone is an unmounted disk, which the torrent reports (see
        // `Torrent::trusted_record`) instead of our making it again on the mount point.
        let (save_dir, complete_dir) = self.download_place(&msg, save_dir);
        if let Some(dir) = &complete_dir {
            if msg.record.is_none() {
                writable_save_dir(dir)?;
            }
        }
        match &msg.record {
            None => writable_save_dir(&save_dir)?,
            Some(r) if !r.have_bytes().is_some_and(|b| b.iter().any(|&x| x != 0)) => {
                let _ = std::fs::create_dir_all(&save_dir);
            }
            Some(_) => {}
        }
        let state = self.torrents_dir.as_ref().map(|d| StatePaths::of(d, ih));
        if let Some(paths) = &state {
            paths.save_torrent_once(|| msg.meta.to_bytes())?;
            // A new torrent's first resume record, at once: until the first periodic save, a
            // crash would otherwise bring it back in the default directory, unpaused.
            if msg.record.is_none() && !paths.has_record() {
                let rec = ResumeRecord {
                    labels: msg.labels.clone(),
                    complete_dir: complete_dir.clone(),
                    ..ResumeRecord::first(ih, save_dir.clone(), msg.paused, crate::now_unix())
                };
                if let Err(e) = paths.save_record(&rec) {
                    tracing::warn!(torrent = %msg.meta.info.name, "{e}");
                }
            }
        }
        let paused = msg.paused || msg.record.as_ref().is_some_and(|r| r.paused);
        let (meta, shared) = self.torrent_shared(msg.meta, &save_dir, paused);
        // A move under way when the daemon stopped goes on: the files it finished are at the
        // destination, the others where they were.
        if let Some(journal) = msg.record.as_ref().and_then(|r| r.moving.as_ref()) {
            shared.storage.resume_move(journal);
        }
        // Into the queue, at its end (a restarted daemon adds torrents in their saved order),
        // decided at once: it runs after its check if a slot is free now, else it waits queued.
        let forced = msg.record.as_ref().is_some_and(|r| r.forced);
        let seed_limits = msg
            .record
            .as_ref()
            .map(|r| r.seed_limits)
            .unwrap_or_default();
        let now = std::time::Instant::now();
        self.queue.push(ih, forced, seed_limits, now);
        if !paused {
            self.queue.expect(ih, super::queue::Want::Download, now);
        }
        self.decide_queue(ctx);
        shared
            .held
            .store(self.queue.held(ih), std::sync::atomic::Ordering::Relaxed);
        let (labels, limits) = match &msg.record {
            Some(r) => (r.labels.clone(), r.limits),
            None => (msg.labels, Default::default()),
        };
        let tcfg = TorrentConfig {
            queue: self.queue_settings(ih).unwrap_or_default(),
            super_seed: msg.record.as_ref().is_some_and(|r| r.super_seed),
            labels,
            limits,
            known_have: msg.known_have,
            record: msg.record.map(Box::new),
            complete_dir,
            ..self.torrent_config(save_dir, paused, state.clone())
        };
        // `added` goes out before the torrent can publish anything: its first `state` event
        // must not reach a subscriber that has not heard of it yet.
        let name = meta.info.name.clone();
        let events = self.services.events.clone();
        if announce {
            let _ = events.send(Event::Added {
                info_hash: ih,
                name,
            });
        }
        if let Err(e) = self.start_torrent(meta.clone(), shared.clone(), tcfg, ctx) {
            self.queue.remove(ih);
            if announce {
                let _ = events.send(Event::Removed { info_hash: ih });
            }
            return Err(e);
        }
        let entry = TorrentEntry {
            shared,
            state,
            meta,
            gave_up: None,
        };
        self.torrents.insert(ih, entry);
        Ok(ih)
    }

    /// Where a torrent's data is written, and where it goes once complete: a new download goes
    /// to the incomplete directory (when one is set) and on to `save_dir` when complete, unless
    /// it is complete already (its pieces are known, or its data is in `save_dir`: seeding what
    /// is there); a restored torrent is where its record says.
    fn download_place(&self, msg: &AddTorrent, save_dir: PathBuf) -> (PathBuf, Option<PathBuf>) {
        if let Some(r) = &msg.record {
            return (save_dir, r.complete_dir.clone());
        }
        let Some(incomplete) = &self.cfg.incomplete_dir else {
            return (save_dir, None);
        };
        let n = msg.meta.info.num_pieces();
        let complete = msg.known_have.as_ref().is_some_and(|h| h.count() == n)
            || save_dir.join(&msg.meta.info.name).exists();
        if complete || *incomplete == save_dir {
            return (save_dir, None);
        }
        (incomplete.clone(), Some(save_dir))
    }

    /// A torrent's settings from the session's, with no known pieces and no resume record.
    fn torrent_config(
        &self,
        save_dir: PathBuf,
        paused: bool,
        resume: Option<StatePaths>,
    ) -> TorrentConfig {
        TorrentConfig {
            save_dir,
            max_peers: self.cfg.max_peers_per_torrent,
            max_half_open: self.cfg.max_half_open,
            unchoke_slots: self.cfg.unchoke_slots,
            max_pending_writes: self.cfg.max_pending_writes,
            paused,
            super_seed: false,
            labels: Vec::new(),
            limits: Default::default(),
            known_have: None,
            resume,
            record: None,
            restarted: false,
            queue: Default::default(),
            complete_dir: None,
        }
    }

    /// What the torrent and its peers share: its storage, the session's settings and services,
    /// and the status the read-side queries show until its first publish.
    fn torrent_shared(
        &mut self,
        mut meta: Metainfo,
        save_dir: &Path,
        paused: bool,
    ) -> (Arc<Metainfo>, Arc<TorrentShared>) {
        let ih = meta.info_hash;
        // The raw info dictionary moves to the torrent's shared handle (served over
        // `ut_metadata`); the metainfo keeps the parsed form only, not a second copy.
        let info_bytes = bytes::Bytes::from(std::mem::take(&mut meta.info_bytes));
        let meta = Arc::new(meta);
        let id = self.next_storage_id;
        self.next_storage_id += 1;
        let storage = Arc::new(Storage::new(id, save_dir.to_path_buf(), meta.clone()));
        // What `list` shows until the torrent's first publish (its thread may be busy): a
        // torrent added paused is paused (a client that adds paused and reads at once, as
        // Sonarr does, must not see a check).
        let first = match paused {
            true => swarm_model::TorrentState::Paused,
            false => swarm_model::TorrentState::Checking,
        };
        let summary = blank_summary(
            ih,
            meta.info.name.clone(),
            first,
            meta.info.total_length,
            save_dir,
        );
        let shared = Arc::new(TorrentShared {
            info_hash: ih,
            peer_id: self.peer_id,
            storage,
            disk: self.disk.clone(),
            listen_port: self.listen_port,
            max_frame: self.cfg.max_frame,
            max_upload_queue: self.cfg.max_upload_queue,
            max_write_queue_bytes: self.cfg.max_write_queue_bytes,
            connect_timeout: self.cfg.connect_timeout,
            handshake_timeout: self.cfg.handshake_timeout,
            idle_timeout: self.cfg.idle_timeout,
            dht: self.dht.clone(),
            udp: self.udp.clone(),
            transports: self.cfg.transports.clone().into(),
            info_bytes,
            gate: self.board.gate(ih),
            limiter: self.services.limiter.clone(),
            peer_budget: self.peer_budget.clone(),
            // Until the torrent's first publish, microseconds from now.
            status: StatusCell::new(Published::new(&summary, Default::default())),
            transferred: Default::default(),
            encryption: self.encryption.clone(),
            blocklist: self.blocklist.clone(),
            held: Default::default(),
            checks: self.checks.clone(),
        });
        (meta, shared)
    }

    /// Starts the torrent's actor as the root's `Transient` child, on its torrent thread.
    fn start_torrent(
        &mut self,
        meta: Arc<Metainfo>,
        shared: Arc<TorrentShared>,
        tcfg: TorrentConfig,
        ctx: &mut Context<Self>,
    ) -> Result<(), EngineError> {
        let ih = shared.info_hash;
        // Spread torrents over the torrent threads by info-hash.
        let arbiter = self.arbiters[ih.0[0] as usize % self.arbiters.len()].clone();
        let services = self.services.clone();
        // Kept by the supervisor for restarts, which start from the resume record as it is on
        // disk then (see `restart_config`). The first start's configuration is boxed and gone
        // once used, so the supervision entry stays small.
        let restart_cfg = Arc::new(TorrentConfig {
            known_have: None,
            record: None,
            restarted: true,
            ..tcfg.clone()
        });
        let mut first = Some(Box::new(tcfg));
        let start = move |link| {
            let cfg = match first.take() {
                Some(c) => *c,
                None => restart_config(&restart_cfg),
            };
            let (meta, sh, services) = (meta.clone(), shared.clone(), services.clone());
            let addr = Torrent::start_in_arbiter(&arbiter, move |_| {
                Torrent::new(meta, sh, cfg, services, link)
            });
            Ok(ChildHandle::new(addr))
        };
        self.children
            .start(RootChild::Torrent(ih), Restart::Transient, start, ctx)
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// A torrent's actor ended for good: removed (its entry is gone already), or given up after
    /// repeated crashes. A given-up torrent stays listed, in `error` with the reason, so that the
    /// user sees it and can start it again; it is not running, so its cached files are dropped.
    pub(super) fn torrent_ended(&mut self, ih: InfoHash, reason: &ExitReason) {
        if !reason.is_abnormal() {
            if let Some(e) = self.torrents.remove(&ih) {
                self.disk.forget(e.shared.storage.id);
                self.leave_queue(ih);
            }
            return;
        }
        let message = format!(
            "torrent gave up after repeated crashes: {reason} (`resume` or `verify` starts it again)"
        );
        if let Some(e) = self.torrents.get_mut(&ih) {
            self.disk.forget(e.shared.storage.id);
            let mut summary = e.shared.status.with(|p| p.summary());
            summary.state = TorrentState::Error;
            summary.error = Some(message.clone());
            (summary.peers, summary.download_rate, summary.upload_rate) = (0, 0, 0);
            e.shared.status.publish(&summary, Counts::default());
            e.gave_up = Some(message.clone());
        }
        let _ = self.services.events.send(Event::Error {
            info_hash: ih,
            message,
        });
    }
}

/// A torrent the root gave up on, as `show` presents it: its last summary (in `error`, with the
/// reason) and what its metainfo says. `None` if `ih` is not such a torrent.
#[derive(Message)]
#[rtype(result = "Option<swarm_model::TorrentDetail>")]
pub struct GetGivenUp(pub InfoHash);

impl Handler<GetGivenUp> for Root {
    type Result = Option<swarm_model::TorrentDetail>;

    fn handle(&mut self, msg: GetGivenUp, _: &mut Context<Self>) -> Self::Result {
        let e = self.torrents.get(&msg.0).filter(|e| e.gave_up.is_some())?;
        let info = &e.meta.info;
        Some(swarm_model::TorrentDetail {
            summary: e.shared.status.with(|p| p.summary()),
            piece_length: info.piece_length,
            pieces: info.num_pieces(),
            pieces_have: 0,
            private: info.private,
            comment: e.meta.comment.clone(),
            added_at: 0,
            completed_at: None,
            peer_restarts: 0,
            hash_failures: 0,
            eta_secs: None,
            super_seed: false,
            seed_limits: Default::default(),
            seeding_secs: 0,
            limits: Default::default(),
        })
    }
}

/// Starts a torrent the root gave up on again, unpaused and rechecking its data (what it knew
/// died with it). `Ok(false)`: it was not given up (running, a magnet, or unknown), nothing done.
#[derive(Message)]
#[rtype(result = "Result<bool, EngineError>")]
pub struct StartGivenUp(pub InfoHash);

impl Handler<StartGivenUp> for Root {
    type Result = Result<bool, EngineError>;

    fn handle(&mut self, msg: StartGivenUp, ctx: &mut Context<Self>) -> Self::Result {
        let ih = msg.0;
        let Some(e) = self.torrents.get(&ih).filter(|e| e.gave_up.is_some()) else {
            return Ok(false);
        };
        let (meta, shared, state) = (e.meta.clone(), e.shared.clone(), e.state.clone());
        let mut tcfg = TorrentConfig {
            queue: self.queue_settings(ih).unwrap_or_default(),
            ..self.torrent_config(shared.storage.save_dir(), false, state)
        };
        // The user's settings survive giving up: they are in the record, as after a crash.
        if let Some(r) = tcfg.resume.as_ref().and_then(StatePaths::load_record) {
            (tcfg.labels, tcfg.limits) = (r.labels, r.limits);
        }
        self.start_torrent(meta, shared, tcfg, ctx)?;
        if let Some(e) = self.torrents.get_mut(&ih) {
            e.gave_up = None;
        }
        tracing::info!(info_hash = %ih, "started again after it was given up");
        Ok(true)
    }
}

/// The configuration of a torrent's next incarnation after a crash: the user's state as its last
/// resume record keeps it (paused, file priorities; the torrent saves the record at once when
/// the user changes either), and its pieces without a check when the files' sizes and mtimes
/// still match the record (`ResumeState::start_from`). The counters are not taken from the
/// record: they live on in the torrent's shared handle, newer than any record. Without a state
/// directory, the settings it was added with, and a check.
fn restart_config(base: &TorrentConfig) -> TorrentConfig {
    let mut cfg = base.clone();
    if let Some(record) = base.resume.as_ref().and_then(StatePaths::load_record) {
        cfg.paused = record.paused;
        cfg.super_seed = record.super_seed;
        cfg.queue = QueueSettings {
            position: record.queue_position.unwrap_or(cfg.queue.position),
            forced: record.forced,
            seed_limits: record.seed_limits,
        };
        cfg.labels = record.labels.clone();
        cfg.limits = record.limits;
        // Moved since the add, or still to move when complete.
        cfg.save_dir = record.save_dir.clone();
        cfg.complete_dir = record.complete_dir.clone();
        cfg.record = Some(Box::new(record));
    }
    cfg
}

/// Makes the save directory and tries writing to it: the error of an add names the directory.
pub(super) fn writable_save_dir(dir: &Path) -> Result<(), EngineError> {
    crate::storage::prepare_save_dir(dir).map_err(|e| EngineError::Io {
        doing: "cannot write to the save directory",
        path: dir.to_path_buf(),
        reason: crate::storage::io_reason(&e),
    })
}

#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct RemoveTorrent {
    pub info_hash: InfoHash,
    pub delete_data: bool,
}

impl Handler<RemoveTorrent> for Root {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;

    fn handle(&mut self, msg: RemoveTorrent, ctx: &mut Context<Self>) -> Self::Result {
        self.remove_torrent(msg.info_hash, msg.delete_data, ctx)
    }
}

impl Root {
    /// Takes a torrent out of the queue; those behind it move up, and their records say so.
    fn leave_queue(&mut self, ih: InfoHash) {
        let Some(from) = self.queue.position(ih) else {
            return;
        };
        self.queue.remove(ih);
        let behind: Vec<InfoHash> = self
            .torrents
            .keys()
            .copied()
            .filter(|t| self.queue.position(*t).is_some_and(|p| p >= from))
            .collect();
        self.tell_queue_settings(behind);
    }

    /// Removes a torrent (or a magnet): its actor stopped, its state files deleted, and its
    /// data if `delete_data`. From `RemoveTorrent` and from a seeding limit's action.
    pub(super) fn remove_torrent(
        &mut self,
        ih: InfoHash,
        delete_data: bool,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), EngineError>> {
        if self.magnets.remove(&ih).is_some() {
            let _ = self.children.terminate(&RootChild::Magnet(ih), ctx);
            if let Some(d) = &self.torrents_dir {
                StatePaths::of(d, ih).remove();
            }
            let _ = self.services.events.send(Event::Removed { info_hash: ih });
            return Box::pin(fut::ready(Ok(())));
        }
        let Some(entry) = self.torrents.remove(&ih) else {
            return Box::pin(fut::ready(Err(EngineError::UnknownTorrent(ih))));
        };
        self.leave_queue(ih);
        let stopped = self.children.terminate(&RootChild::Torrent(ih), ctx);
        let (disk, storage, events) = (
            self.disk.clone(),
            entry.shared.storage.clone(),
            self.services.events.clone(),
        );
        let delete = delete_data;
        let limiter = self.services.limiter.clone();
        let state = entry.state;
        Box::pin(
            async move {
                if let Ok(rx) = stopped {
                    let _ = rx.await;
                }
                disk.forget(storage.id);
                limiter.do_send(ForgetTorrent { info_hash: ih });
                if let Some(paths) = state {
                    paths.remove();
                }
                if delete {
                    let path = storage.data_path();
                    disk.delete_files(storage)
                        .await
                        .map_err(|e| EngineError::Io {
                            doing: "deleting",
                            path,
                            reason: e.to_string(),
                        })?;
                }
                let _ = events.send(Event::Removed { info_hash: ih });
                Ok(())
            }
            .into_actor(self),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_model::{Limit, SeedLimits};

    /// A torrent restarted after a crash takes its queue position, force start, seeding
    /// limits, labels and own limits from its record, as its pause and file priorities.
    #[test]
    fn a_restarted_torrent_keeps_its_settings() {
        let dir = tempfile::tempdir().unwrap();
        let ih = InfoHash([7; 20]);
        let paths = StatePaths::of(&StatePaths::torrents_dir(dir.path()), ih);
        std::fs::create_dir_all(dir.path().join("torrents")).unwrap();
        let limits = SeedLimits {
            ratio: Limit::Own(1.5),
            idle_minutes: Limit::Unlimited,
            ..SeedLimits::default()
        };
        let record = ResumeRecord {
            queue_position: Some(3),
            forced: true,
            seed_limits: limits,
            seeding_secs: 60,
            labels: vec!["tv".into()],
            limits: swarm_model::TorrentLimits {
                upload: Some(4096),
                ..Default::default()
            },
            ..ResumeRecord::first(ih, dir.path().into(), true, 1)
        };
        paths.save_record(&record).unwrap();
        let base = TorrentConfig {
            save_dir: dir.path().into(),
            max_peers: 1,
            max_half_open: 1,
            unchoke_slots: 1,
            max_pending_writes: 1,
            paused: false,
            super_seed: false,
            known_have: None,
            resume: Some(paths),
            record: None,
            restarted: true,
            queue: QueueSettings::default(),
            labels: Vec::new(),
            limits: Default::default(),
            complete_dir: None,
        };
        let cfg = restart_config(&base);
        assert_eq!(
            cfg.queue,
            QueueSettings {
                position: 3,
                forced: true,
                seed_limits: limits
            }
        );
        assert_eq!(cfg.labels, ["tv"]);
        assert_eq!(cfg.limits.upload, Some(4096));
        assert!(cfg.paused);
    }
}
