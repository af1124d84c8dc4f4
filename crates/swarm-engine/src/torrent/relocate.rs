//! The torrent actor's side of moving its data to another directory (`impl Torrent`, like
//! `disk_phases.rs`): it asks the disk pool for one step at a time (one file, then the finish;
//! the decisions are `relocation.rs`'s, the I/O `storage/moving.rs`'s, on a disk thread), saves
//! the move's journal in the resume record after each step, and takes the new directory as its
//! save directory when the move is done. The torrent trades all along: reads find each file
//! where it is at that moment.
//!
//! A move starts from `MoveStorage` (`swarmctl move`, transmission's `torrent-set-location`),
//! or by itself when a download in the incomplete directory completes (`cfg.complete_dir`); it
//! goes on after a crash of the torrent (the storage, shared across incarnations, keeps it) or
//! of the daemon (the record's journal, which the root gives back to the storage at add).

use std::path::PathBuf;

use actix::prelude::*;
use swarm_model::{EngineError, Event};

use super::actor::Torrent;
use super::messages::MoveStorage;
use crate::disk::MoveOrder;
use crate::storage::moving::{MoveFailed, MoveStep};

impl Torrent {
    /// The summary's `moving`: the move under way, or one that could not start (a download
    /// complete in the incomplete directory whose save directory has a file of its name).
    pub(super) fn move_progress(&self) -> Option<swarm_model::MoveProgress> {
        let view = |to: &std::path::Path, progress, error: Option<&String>| {
            Some(swarm_model::MoveProgress {
                to: to.display().to_string(),
                progress,
                error: error.cloned(),
            })
        };
        match (self.shared.storage.moving(), &self.move_error) {
            (Some((to, progress)), error) => view(&to, progress, error.as_ref()),
            (None, Some(error)) => view(self.cfg.complete_dir.as_ref()?, 0.0, Some(error)),
            (None, None) => None,
        }
    }

    /// Goes on with the move the storage has under way, if any and no step is running.
    pub(super) fn continue_move(&mut self, ctx: &mut Context<Self>) {
        if !self.move_running && self.shared.storage.moving().is_some() {
            self.move_next(ctx);
        }
    }

    /// A complete download in the incomplete directory starts for its save directory.
    pub(super) fn move_when_complete(&mut self, ctx: &mut Context<Self>) {
        let Some(to) = self.cfg.complete_dir.clone() else {
            return;
        };
        if !self.picker.is_complete() || self.move_running || self.move_error.is_some() {
            return;
        }
        let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
        let fut = async move { disk.relocate(storage, MoveOrder::Start(to)).await };
        self.move_running = true;
        ctx.spawn(fut.into_actor(self).map(|started, act, ctx| {
            act.move_running = false;
            match started {
                Ok(_) => {
                    tracing::info!(torrent = %act.name(), "complete: moving to the save directory");
                    act.save_resume();
                    act.continue_move(ctx);
                }
                Err(e) => act.move_stopped(e),
            }
        }));
    }

    fn move_next(&mut self, ctx: &mut Context<Self>) {
        self.move_running = true;
        self.wake_tick(ctx);
        let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
        let fut = async move { disk.relocate(storage, MoveOrder::Step).await };
        ctx.spawn(fut.into_actor(self).map(|step, act, ctx| {
            act.move_running = false;
            match step {
                Ok(Some(MoveStep::Moved { .. })) => {
                    // The journal on disk after each file: a crash goes on from here.
                    act.save_resume();
                    act.publish();
                    act.moving_event();
                    act.move_next(ctx);
                }
                Ok(Some(MoveStep::Finished { save_dir })) => act.move_finished(save_dir),
                Ok(None) | Err(MoveFailed::NotMoving) => act.publish(),
                Err(e) => act.move_stopped(e),
            }
        }));
    }

    fn move_finished(&mut self, save_dir: PathBuf) {
        tracing::info!(torrent = %self.name(), dir = %save_dir.display(), "data moved");
        if self.cfg.complete_dir.as_ref() == Some(&save_dir) {
            self.cfg.complete_dir = None;
        }
        let _ = self.services.events.send(Event::Moving {
            info_hash: self.shared.info_hash,
            to: save_dir.display().to_string(),
            progress: 1.0,
        });
        self.cfg.save_dir = save_dir;
        self.move_error = None;
        self.save_resume();
        self.publish();
    }

    /// Tells subscribers (`swarmctl watch`) how far the move under way is.
    pub(super) fn moving_event(&self) {
        if let Some((to, progress)) = self.shared.storage.moving() {
            let _ = self.services.events.send(Event::Moving {
                info_hash: self.shared.info_hash,
                to: to.display().to_string(),
                progress,
            });
        }
    }

    /// A step failed: the files stay where they are now (each whole at one place), the torrent
    /// trades on, and the summary says why; `move` to the same directory, or a restart, goes on.
    fn move_stopped(&mut self, e: MoveFailed) {
        tracing::error!(torrent = %self.name(), "moving the data: {e}");
        self.move_error = Some(e.to_string());
        self.save_resume();
        self.publish();
    }
}

impl Handler<MoveStorage> for Torrent {
    type Result = ResponseActFuture<Self, Result<(), EngineError>>;

    fn handle(&mut self, msg: MoveStorage, _: &mut Context<Self>) -> Self::Result {
        let (disk, storage) = (self.shared.disk.clone(), self.shared.storage.clone());
        let to = msg.to.clone();
        let order = match msg.move_data {
            true => MoveOrder::Start(to.clone()),
            false => MoveOrder::Repoint(to.clone()),
        };
        let fut = async move { disk.relocate(storage, order).await };
        Box::pin(fut.into_actor(self).map(move |done, act, ctx| {
            let name = act.name();
            done.map_err(|e| {
                EngineError::Invalid(format!("moving {name} to {}: {e}", to.display()))
            })?;
            // The user's choice of place wins over the incomplete directory's destination.
            act.cfg.complete_dir = None;
            act.move_error = None;
            if msg.move_data {
                tracing::info!(torrent = %name, dir = %to.display(), "moving the data");
                act.save_resume();
                act.continue_move(ctx);
            } else {
                tracing::info!(torrent = %name, dir = %to.display(), "looking for the data in another directory");
                act.cfg.save_dir = to;
                act.save_resume();
                act.verify(ctx);
            }
            act.publish();
            Ok(())
        }))
    }
}
