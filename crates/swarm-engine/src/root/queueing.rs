//! The root's shell over the queue core (`root/queue.rs`): every second it feeds the core what
//! each torrent published, and carries out what the core decides — a torrent's hold
//! (`TorrentShared::held`, then `QueueChanged` so the torrent leaves or joins its swarm), and
//! the session's action on a torrent that reached a seeding limit (pause, remove, remove with
//! its data). It also takes the user's queue orders (`QueueOrder`: move, force start, seeding
//! limits) and the queue's settings (`QueueSettingsMsg`), and tells each torrent whose position,
//! force flag or limits changed, so that its resume record keeps them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use swarm_model::{EngineError, QueueConfig, QueueMove, SeedAction, SeedLimits, SeedingConfig};
use swarm_wire::InfoHash;

use super::queue::{LimitReached, Observed, Want};
use super::{Root, RootChild};
use crate::torrent::messages::{QueueChanged, SetPaused, WantsSlot};
use crate::torrent::resume_state::QueueSettings;
use crate::torrent::Torrent;

/// How often the queue looks at the torrents. Transmission's queue runs once a second too.
const QUEUE_PERIOD: Duration = Duration::from_secs(1);

/// A user's order about one torrent's place in the queue or its seeding limits.
#[derive(Clone, Copy, Debug)]
pub enum QueueCommand {
    Move(QueueMove),
    /// Force start off (a pause).
    Unforce,
    /// The torrent is being started (resumed), forced or not (a plain start ends a force
    /// start): it runs at once if the queue has a slot for it, else it waits queued.
    Start {
        force: bool,
    },
    SeedLimits(SeedLimits),
}

/// Carries out a [`QueueCommand`]; answers the torrent's queue settings after it. A magnet
/// still fetching its metadata is not queued yet: `Invalid`.
#[derive(Message)]
#[rtype(result = "Result<QueueSettings, EngineError>")]
pub struct QueueOrder {
    pub info_hash: InfoHash,
    pub command: QueueCommand,
}

/// The queue's and the seeding limits' settings; `Some` changes them first.
#[derive(Message)]
#[rtype(result = "(QueueConfig, SeedingConfig)")]
pub struct QueueSettingsMsg(pub Option<(QueueConfig, SeedingConfig)>);

impl Root {
    /// Starts the queue's period (from `started`).
    pub(super) fn start_queue(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(QUEUE_PERIOD, |root, ctx| root.run_queue(ctx));
    }

    /// The settings a torrent keeps in its record, as the queue has them now.
    pub(super) fn queue_settings(&self, ih: InfoHash) -> Option<QueueSettings> {
        Some(QueueSettings {
            position: self.queue.position(ih)?,
            forced: self.queue.forced(ih),
            seed_limits: self.queue.limits(ih)?,
        })
    }

    /// Tells the torrents whose queue settings changed, so that their records keep them.
    pub(super) fn tell_queue_settings(&self, changed: impl IntoIterator<Item = InfoHash>) {
        for ih in changed {
            if let (Some(t), Some(q)) = (
                self.children.addr::<Torrent>(&RootChild::Torrent(ih)),
                self.queue_settings(ih),
            ) {
                t.do_send(QueueChanged(Some(q)));
            }
        }
    }

    /// One look at every torrent: feed the core, carry out its decision.
    pub(super) fn run_queue(&mut self, ctx: &mut Context<Self>) {
        let torrents = &self.torrents;
        self.queue.observe_all(Instant::now(), |ih| {
            let e = torrents.get(&ih)?;
            let (state, wanted_bytes) = e
                .shared
                .status
                .with(|p| (p.totals.state, p.totals.wanted_bytes));
            let state = match e.gave_up {
                Some(_) => swarm_model::TorrentState::Error,
                None => state,
            };
            let t = &e.shared.transferred;
            let seen = Observed {
                downloaded: t.downloaded(),
                uploaded: t.uploaded(),
                wanted_bytes,
                seeding_secs: t.seeding_secs(),
            };
            Some((state, seen))
        });
        self.decide_queue(ctx);
    }

    /// What a started torrent will want: to seed if it has everything it wants, else to
    /// download.
    pub(super) fn want_of(&self, ih: InfoHash) -> Want {
        match self.torrents.get(&ih) {
            Some(e) if e.shared.status.with(|p| p.totals.left_bytes) == 0 => Want::Seed,
            _ => Want::Download,
        }
    }

    /// The queue's decision on what it knows now, carried out.
    pub(super) fn decide_queue(&mut self, ctx: &mut Context<Self>) {
        let decision = self.queue.decide(Instant::now());
        for (ih, held) in decision.holds {
            let Some(e) = self.torrents.get(&ih) else {
                continue;
            };
            e.shared.held.store(held, Ordering::Relaxed);
            tracing::debug!(info_hash = %ih, held, "queue");
            if let Some(t) = self.children.addr::<Torrent>(&RootChild::Torrent(ih)) {
                t.do_send(QueueChanged(None));
            }
        }
        for (ih, reached) in decision.limits {
            self.seed_limit_reached(ih, reached, ctx);
        }
    }

    /// Carries out the session's seeding action on a torrent that reached a limit.
    fn seed_limit_reached(&mut self, ih: InfoHash, reached: LimitReached, ctx: &mut Context<Self>) {
        let action = self.queue.config().1.action;
        let name = self
            .torrents
            .get(&ih)
            .map(|e| e.meta.info.name.clone())
            .unwrap_or_default();
        tracing::info!(torrent = %name, info_hash = %ih, ?action, "{reached}");
        match action {
            SeedAction::Pause => {
                if self.queue.set_forced(ih, false) {
                    self.tell_queue_settings([ih]);
                }
                if let Some(t) = self.children.addr::<Torrent>(&RootChild::Torrent(ih)) {
                    t.do_send(SetPaused(true));
                }
            }
            SeedAction::Remove | SeedAction::RemoveWithData => {
                let delete = action == SeedAction::RemoveWithData;
                let removal = self.remove_torrent(ih, delete, ctx);
                ctx.spawn(removal.map(move |res, _, _| {
                    if let Err(e) = res {
                        tracing::warn!(torrent = %name, "removing at its seeding limit: {e}");
                    }
                }));
            }
        }
    }
}

impl Handler<QueueOrder> for Root {
    type Result = Result<QueueSettings, EngineError>;

    fn handle(&mut self, msg: QueueOrder, ctx: &mut Context<Self>) -> Self::Result {
        let ih = msg.info_hash;
        if self.magnets.contains_key(&ih) {
            return Err(EngineError::Invalid(format!(
                "{ih} has no metadata yet: it joins the queue once it has"
            )));
        }
        if self.queue.position(ih).is_none() {
            return Err(EngineError::UnknownTorrent(ih));
        }
        let changed = match msg.command {
            QueueCommand::Move(to) => self.queue.move_to(ih, to).unwrap_or_default(),
            QueueCommand::Unforce => {
                self.queue.set_forced(ih, false);
                vec![(ih, 0)]
            }
            QueueCommand::Start { force } => {
                self.queue.set_forced(ih, force);
                self.queue.expect(ih, self.want_of(ih), Instant::now());
                vec![(ih, 0)]
            }
            QueueCommand::SeedLimits(limits) => {
                self.queue.set_limits(ih, limits);
                vec![(ih, 0)]
            }
        };
        self.tell_queue_settings(changed.into_iter().map(|(ih, _)| ih));
        // At once: a force start should not wait for the next period.
        self.run_queue(ctx);
        self.queue_settings(ih)
            .ok_or(EngineError::UnknownTorrent(ih))
    }
}

impl Handler<WantsSlot> for Root {
    type Result = ();

    fn handle(&mut self, _: WantsSlot, ctx: &mut Context<Self>) {
        self.run_queue(ctx);
    }
}

impl Handler<QueueSettingsMsg> for Root {
    type Result = MessageResult<QueueSettingsMsg>;

    fn handle(&mut self, msg: QueueSettingsMsg, ctx: &mut Context<Self>) -> Self::Result {
        if let Some((queue, seeding)) = msg.0 {
            self.queue.set_config(queue, seeding);
            self.run_queue(ctx);
        }
        MessageResult(self.queue.config())
    }
}
