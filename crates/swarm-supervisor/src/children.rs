//! [`Children`]: supervision embedded in an actor that also does real work.
//!
//! The torrent actor owns its piece picker *and* supervises its peer actors; it cannot
//! hand its children to a separate supervisor actor without sharing its state. So the
//! supervision lives in a field: the owner forwards each [`ChildExited`] to
//! [`Children::handle_exit`] and acts on the returned [`ExitOutcome`]. Everything that
//! must happen later (a restart after its backoff, a stop that timed out, the next step of
//! an orderly shutdown) is scheduled on the owner's context with `run_later`, and finds its
//! way back to this field through the `access` function given to [`Children::new`].
//!
//! The ready-made [`Supervisor`](crate::Supervisor) actor is this plus a mailbox.
//!
//! ```
//! use std::{net::SocketAddr, time::Duration};
//! use actix::prelude::*;
//! use swarm_supervisor::{
//!     ChildExited, ChildHandle, ChildLink, Children, ExitOutcome, ExitReason, Restart,
//!     RestartPolicy, Terminate,
//! };
//!
//! struct Peer { link: ChildLink, addr: SocketAddr }
//! impl Actor for Peer {
//!     type Context = Context<Self>;
//!     fn started(&mut self, ctx: &mut Context<Self>) {
//!         // A refused connect is an ordinary exit: the backoff throttles the re-dial.
//!         self.link.fail(format!("connect to {} refused", self.addr));
//!         ctx.stop();
//!     }
//! }
//! impl Handler<Terminate> for Peer {
//!     type Result = ();
//!     fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) { ctx.stop() }
//! }
//!
//! struct Torrent {
//!     peers: Children<SocketAddr, Torrent>, // before `link`: peers are stopped first
//!     link: ChildLink,                      // to the root
//!     banned: Vec<SocketAddr>,              // ... and the picker, bitfield, etc.
//! }
//! impl Actor for Torrent {
//!     type Context = Context<Self>;
//!     fn started(&mut self, ctx: &mut Context<Self>) {
//!         let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
//!         let dial = move |link| Ok(ChildHandle::new(Peer { link, addr }.start()));
//!         self.peers.start(addr, Restart::Transient, dial, ctx).unwrap();
//!     }
//! }
//! impl Handler<ChildExited<SocketAddr>> for Torrent {
//!     type Result = ();
//!     fn handle(&mut self, msg: ChildExited<SocketAddr>, ctx: &mut Context<Self>) {
//!         match self.peers.handle_exit(msg, ctx) {
//!             ExitOutcome::GaveUp { id, .. } => self.banned.push(id),
//!             ExitOutcome::Escalate(e) => {
//!                 self.link.set_reason(ExitReason::Escalated(Box::new(e)));
//!                 ctx.stop();
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//!
//! # #[actix::main] async fn main() {
//! let policy = RestartPolicy::one_for_one()
//!     .unlimited_intensity()                       // one bad peer never fails the torrent
//!     .child_budget(3, Duration::from_secs(60))    // ... it is given up instead
//!     .backoff(Duration::from_millis(5), Duration::from_secs(30), Duration::from_secs(60));
//! let torrent = Torrent {
//!     peers: Children::new(policy, |t: &mut Torrent| &mut t.peers).named("torrent"),
//!     link: ChildLink::detached(),
//!     banned: Vec::new(),
//! }
//! .start();
//! # tokio::time::sleep(Duration::from_millis(200)).await; // 5 + 10 + 20 ms of re-dials
//! # drop(torrent);
//! # }
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler};
use tokio::sync::oneshot;

use crate::core::{Decision, Due, Incarnation, Supervision, SupervisorStats, Termination, Ticket};
use crate::link::{ChildExited, ChildHandle, ChildLink, ChildSpec, StartFn};
use crate::policy::{Escalation, ExitReason, Restart, RestartPolicy, SupervisorError};
use crate::ChildId;

/// How often a due restart checks again whether the siblings it took down have stopped.
const STOP_POLL: Duration = Duration::from_millis(5);

/// Finds the [`Children`] inside its owner, e.g. `|t: &mut Torrent| &mut t.peers`.
pub type Access<K, A> = fn(&mut A) -> &mut Children<K, A>;

type OnDone<A> = Box<dyn FnOnce(&mut A, &mut Context<A>) + Send>;

/// What [`Children::handle_exit`] made of an exit report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an escalation must stop the owner"]
pub enum ExitOutcome<K> {
    /// A stale report; nothing changed.
    Ignored,
    /// `id` exited and will be started again (with `group`, in order) after `after`.
    Restarting {
        id: K,
        reason: ExitReason,
        group: Vec<K>,
        after: Duration,
    },
    /// `id` was stopped as part of a sibling's group restart; it is restarted with it.
    SiblingStopped { id: K },
    /// `id` is gone for good: temporary, transient after a normal exit, terminated on
    /// request, or shutting down.
    Removed { id: K, reason: ExitReason },
    /// `id` used up its restart budget and was removed (ban the address, say).
    GaveUp { id: K, reason: ExitReason },
    /// Too many restarts: every child was asked to stop; the owner must stop too, with
    /// `ExitReason::Escalated`, so that its own parent sees a crash.
    Escalate(Escalation),
}

impl<K> ExitOutcome<K> {
    /// The escalation, if this is one.
    pub fn escalation(self) -> Option<Escalation> {
        match self {
            ExitOutcome::Escalate(e) => Some(e),
            _ => None,
        }
    }
}

struct Entry {
    start: StartFn,
    handle: Option<ChildHandle>,
    shutdown_timeout: Option<Duration>,
}

struct ShutdownState<K, A: Actor<Context = Context<A>>> {
    /// In start order; popped from the back, so children stop in reverse order.
    queue: Vec<K>,
    current: Option<K>,
    on_done: Option<OnDone<A>>,
}

/// The supervised children of an actor of type `A`, identified by `K`.
pub struct Children<K, A: Actor<Context = Context<A>>> {
    name: String,
    /// Exits with `ExitReason::Error` are logged at debug (see [`Children::expected_errors`]).
    expected_errors: bool,
    core: Supervision<K>,
    entries: HashMap<K, Entry>,
    access: Access<K, A>,
    shutdown: Option<ShutdownState<K, A>>,
    stop_waiters: HashMap<K, Vec<oneshot::Sender<()>>>,
}

impl<K, A> Children<K, A>
where
    K: ChildId,
    A: Actor<Context = Context<A>> + Handler<ChildExited<K>>,
{
    pub fn new(policy: RestartPolicy, access: Access<K, A>) -> Self {
        Children {
            name: String::new(),
            expected_errors: false,
            core: Supervision::new(policy),
            entries: HashMap::new(),
            access,
            shutdown: None,
            stop_waiters: HashMap::new(),
        }
    }

    /// Names this set of children in the logs (e.g. `"root"`, `"torrent 5a1f…"`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Children whose errors are part of normal life (a peer connection that is refused,
    /// reset or closed by the remote): their `Error` exits and restarts are logged at debug, so a
    /// real swarm does not fill the journal. Panics and escalations stay warnings.
    pub fn expected_errors(mut self) -> Self {
        self.expected_errors = true;
        self
    }

    fn routine(&self, reason: &ExitReason) -> bool {
        self.expected_errors && matches!(reason, ExitReason::Error(_))
    }

    /// Adds a child and starts it now. If its start function fails, the child is not
    /// added and the error is returned (a failure in a *restart* is a crash instead).
    pub fn start(
        &mut self,
        id: K,
        restart: Restart,
        start: impl FnMut(ChildLink) -> Result<ChildHandle, String> + Send + 'static,
        ctx: &mut Context<A>,
    ) -> Result<(), SupervisorError> {
        self.start_spec(ChildSpec::new(id, restart, start), ctx)
    }

    /// [`Children::start`] from a [`ChildSpec`].
    pub fn start_spec(
        &mut self,
        spec: ChildSpec<K>,
        ctx: &mut Context<A>,
    ) -> Result<(), SupervisorError> {
        let id = spec.id;
        self.core.add(id.clone(), spec.restart)?;
        self.entries.insert(
            id.clone(),
            Entry {
                start: spec.start,
                handle: None,
                shutdown_timeout: spec.shutdown_timeout,
            },
        );
        let launched = match self.core.started(&id, Instant::now()) {
            Some(inc) => self.launch(&id, inc, ctx),
            None => Err("child vanished before its start".to_owned()),
        };
        match launched {
            Ok(()) => {
                tracing::debug!(supervisor = %self.name, child = ?id, "child started");
                Ok(())
            }
            Err(error) => {
                self.core.remove(&id);
                self.entries.remove(&id);
                Err(SupervisorError::StartFailed {
                    child: format!("{id:?}"),
                    error,
                })
            }
        }
    }

    /// Creates the link for incarnation `inc` and runs the start function.
    fn launch(&mut self, id: &K, inc: Incarnation, ctx: &mut Context<A>) -> Result<(), String> {
        let link = ChildLink::to_parent(ctx.address().recipient(), id.clone(), inc);
        let entry = self
            .entries
            .get_mut(id)
            .ok_or_else(|| "child has no start function".to_owned())?;
        entry.handle = Some((entry.start)(link)?);
        Ok(())
    }

    /// Acts on a child's exit report. Call it from the owner's `Handler<ChildExited<K>>`;
    /// on [`ExitOutcome::Escalate`] the owner must stop.
    pub fn handle_exit(&mut self, msg: ChildExited<K>, ctx: &mut Context<A>) -> ExitOutcome<K> {
        let ChildExited {
            id,
            reason,
            incarnation,
        } = msg;
        let decision = self
            .core
            .on_exit(&id, incarnation, reason.clone(), Instant::now());
        self.apply(id, reason, decision, ctx)
    }

    fn apply(
        &mut self,
        id: K,
        reason: ExitReason,
        decision: Decision<K>,
        ctx: &mut Context<A>,
    ) -> ExitOutcome<K> {
        let name = &self.name;
        match decision {
            Decision::Ignore => ExitOutcome::Ignored,
            Decision::Stopped => {
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.handle = None;
                }
                ExitOutcome::SiblingStopped { id }
            }
            Decision::Remove => {
                if reason.is_abnormal() && !self.core.is_shutting_down() && !self.routine(&reason) {
                    tracing::info!(supervisor = %name, child = ?id, %reason, "child exited, not restarted");
                } else {
                    tracing::debug!(supervisor = %name, child = ?id, %reason, "child exited");
                }
                self.forget(&id, ctx);
                ExitOutcome::Removed { id, reason }
            }
            Decision::GiveUp { restarts, period } => {
                if self.routine(&reason) {
                    tracing::debug!(
                        supervisor = %name, child = ?id, %reason,
                        "child exceeded {restarts} restarts within {period:?}; giving up on it"
                    );
                } else {
                    tracing::warn!(
                        supervisor = %name, child = ?id, %reason,
                        "child exceeded {restarts} restarts within {period:?}; giving up on it"
                    );
                }
                self.forget(&id, ctx);
                ExitOutcome::GaveUp { id, reason }
            }
            Decision::Restart {
                stop,
                start,
                after,
                ticket,
            } => {
                if self.routine(&reason) {
                    tracing::debug!(
                        supervisor = %name, child = ?id, %reason, restart_in = ?after,
                        restarts = self.core.restarts_of(&id), "restarting child"
                    );
                } else {
                    tracing::warn!(
                        supervisor = %name, child = ?id, %reason, restart_in = ?after,
                        restarts = self.core.restarts_of(&id), "restarting child"
                    );
                }
                for sibling in &stop {
                    tracing::info!(supervisor = %name, child = ?sibling, because = ?id, "stopping sibling for a group restart");
                    if let Some(handle) = self.entries.get(sibling).and_then(|e| e.handle.as_ref())
                    {
                        handle.terminate();
                    }
                }
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.handle = None;
                }
                self.schedule_restart(ticket, after, ctx);
                ExitOutcome::Restarting {
                    id,
                    reason,
                    group: start,
                    after,
                }
            }
            Decision::Escalate(escalation) => {
                tracing::error!(supervisor = %name, %escalation, "giving up: stopping all children");
                self.terminate_all();
                ExitOutcome::Escalate(escalation)
            }
        }
    }

    fn schedule_restart(&mut self, ticket: Ticket, after: Duration, ctx: &mut Context<A>) {
        let access = self.access;
        let deadline = Instant::now() + after + self.core.policy().shutdown_timeout;
        ctx.run_later(after, move |act, ctx| {
            access(act).restart_due(ticket, deadline, ctx)
        });
    }

    fn restart_due(&mut self, ticket: Ticket, deadline: Instant, ctx: &mut Context<A>) {
        let ids = match self.core.due(ticket) {
            Due::Ready(ids) => ids,
            Due::Waiting if Instant::now() < deadline => {
                let access = self.access;
                ctx.run_later(STOP_POLL, move |act, ctx| {
                    access(act).restart_due(ticket, deadline, ctx)
                });
                return;
            }
            Due::Waiting => {
                for id in self.core.force_down(ticket) {
                    tracing::warn!(supervisor = %self.name, child = ?id, "sibling did not stop in time; abandoned");
                    if let Some(entry) = self.entries.get_mut(&id) {
                        entry.handle = None;
                    }
                }
                match self.core.due(ticket) {
                    Due::Ready(ids) => ids,
                    Due::Waiting => return,
                }
            }
        };
        for id in ids {
            // A termination or a newer restart may have taken the child over meanwhile.
            if !self.core.is_startable(&id) {
                continue;
            }
            let Some(inc) = self.core.started(&id, Instant::now()) else {
                continue;
            };
            if let Err(error) = self.launch(&id, inc, ctx) {
                // The failed start function dropped the link, which reports `Normal` for
                // `inc`; a fresh incarnation makes that report stale. The failure goes
                // through the owner's mailbox so that the owner sees its outcome (a
                // give-up, an escalation) like any other exit.
                if let Some(inc) = self.core.started(&id, Instant::now()) {
                    tracing::warn!(supervisor = %self.name, child = ?id, %error, "restart failed to start");
                    ctx.notify(ChildExited {
                        id,
                        reason: ExitReason::StartFailed(error),
                        incarnation: inc,
                    });
                }
                // The children after it belong to its group (one_for_all, rest_for_one):
                // its own restart brings them up.
                return;
            }
            tracing::debug!(supervisor = %self.name, child = ?id, "child restarted");
        }
    }

    /// Asks child `id` to stop and removes it (no restart). The receiver completes when it
    /// has stopped, or was abandoned after its shutdown timeout.
    pub fn terminate(
        &mut self,
        id: &K,
        ctx: &mut Context<A>,
    ) -> Result<oneshot::Receiver<()>, SupervisorError> {
        let (done, wait) = oneshot::channel();
        if self.stop_child(id, ctx)? {
            self.stop_waiters.entry(id.clone()).or_default().push(done);
        } else {
            let _ = done.send(());
        }
        Ok(wait)
    }

    /// Starts stopping `id`; `true` if there is an exit to wait for.
    fn stop_child(&mut self, id: &K, ctx: &mut Context<A>) -> Result<bool, SupervisorError> {
        match self.core.terminate(id)? {
            Termination::Stopping(inc) => {
                let entry = self.entries.get(id);
                if let Some(handle) = entry.and_then(|e| e.handle.as_ref()) {
                    handle.terminate();
                }
                let timeout = entry
                    .and_then(|e| e.shutdown_timeout)
                    .unwrap_or(self.core.policy().shutdown_timeout);
                let access = self.access;
                let id = id.clone();
                ctx.run_later(timeout, move |act, ctx| {
                    access(act).stop_timed_out(id, inc, timeout, ctx)
                });
                Ok(true)
            }
            Termination::Removed => {
                self.forget(id, ctx);
                Ok(false)
            }
        }
    }

    fn stop_timed_out(&mut self, id: K, inc: Incarnation, timeout: Duration, ctx: &mut Context<A>) {
        if self.core.is_stopping(&id, inc) {
            tracing::warn!(supervisor = %self.name, child = ?id, "child did not stop within {timeout:?}; abandoned");
            self.core.remove(&id);
            self.forget(&id, ctx);
        }
    }

    /// Drops everything kept for a child the core no longer has.
    fn forget(&mut self, id: &K, ctx: &mut Context<A>) {
        self.entries.remove(id);
        for waiter in self.stop_waiters.remove(id).unwrap_or_default() {
            let _ = waiter.send(());
        }
        let current = self.shutdown.as_ref().and_then(|s| s.current.as_ref());
        if current == Some(id) {
            if let Some(state) = &mut self.shutdown {
                state.current = None;
            }
            self.shutdown_step(ctx);
        }
    }

    /// Orderly shutdown: no more restarts; the children are stopped one at a time in
    /// reverse start order, each waited for up to its shutdown timeout; then `on_done`
    /// runs on the owner (a [`Supervisor`](crate::Supervisor) stops itself there).
    pub fn shutdown(
        &mut self,
        ctx: &mut Context<A>,
        on_done: impl FnOnce(&mut A, &mut Context<A>) + Send + 'static,
    ) {
        if let Some(state) = &mut self.shutdown {
            let earlier = state.on_done.take();
            state.on_done = Some(Box::new(move |act, ctx| {
                if let Some(earlier) = earlier {
                    earlier(act, ctx);
                }
                on_done(act, ctx);
            }));
            return;
        }
        for id in self.core.begin_shutdown() {
            self.forget(&id, ctx);
        }
        tracing::info!(supervisor = %self.name, children = self.core.len(), "shutting down");
        self.shutdown = Some(ShutdownState {
            queue: self.core.ids().cloned().collect(),
            current: None,
            on_done: Some(Box::new(on_done)),
        });
        self.shutdown_step(ctx);
    }

    fn shutdown_step(&mut self, ctx: &mut Context<A>) {
        loop {
            let Some(state) = &mut self.shutdown else {
                return;
            };
            if state.current.is_some() {
                return;
            }
            let Some(id) = state.queue.pop() else {
                if let Some(on_done) = state.on_done.take() {
                    tracing::info!(supervisor = %self.name, "all children stopped");
                    ctx.run_later(Duration::ZERO, on_done);
                }
                return;
            };
            if let Some(state) = &mut self.shutdown {
                state.current = Some(id.clone());
            }
            // A child that crashed meanwhile is gone already: on to the next one.
            if !matches!(self.stop_child(&id, ctx), Ok(true)) {
                if let Some(state) = &mut self.shutdown {
                    state.current = None;
                }
            }
        }
    }

    /// Asks every child to stop, without waiting (escalation, or the owner going away).
    fn terminate_all(&mut self) {
        let ids: Vec<K> = self.core.ids().rev().cloned().collect();
        for id in ids {
            if let Some(handle) = self.entries.remove(&id).and_then(|e| e.handle) {
                handle.terminate();
            }
        }
        self.entries.clear();
    }

    pub fn stats(&self) -> SupervisorStats<K> {
        self.core.stats()
    }

    /// The current address of child `id`, if it is running and an actor of type `C`.
    pub fn addr<C: Actor>(&self, id: &K) -> Option<Addr<C>> {
        self.entries.get(id)?.handle.as_ref()?.addr()
    }

    /// Child ids in start order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.core.ids()
    }

    pub fn contains(&self, id: &K) -> bool {
        self.core.contains(id)
    }

    pub fn len(&self) -> usize {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.core.is_shutting_down()
    }
}

/// Children do not outlive their owner: when it goes away (stopped, or destroyed by a
/// panic) the remaining children are asked to stop. Their parent is gone, so nobody would
/// restart or stop them otherwise.
impl<K, A: Actor<Context = Context<A>>> Drop for Children<K, A> {
    fn drop(&mut self) {
        for entry in self.entries.values() {
            if let Some(handle) = &entry.handle {
                handle.terminate();
            }
        }
    }
}
