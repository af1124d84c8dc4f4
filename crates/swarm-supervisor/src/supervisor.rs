//! [`Supervisor`]: an actor that only supervises, built from a list of [`ChildSpec`]s.
//!
//! Owns: its [`Children`] and the link to its own parent. Takes: [`StartChild`],
//! [`TerminateChild`], [`GetStats`], [`Shutdown`], [`Terminate`] (from its parent) and the
//! [`ChildExited`] reports of its children. Sends: [`Terminate`] to its children, and its
//! own exit report to its parent when it stops. When its restart intensity is exceeded it
//! stops all children and then itself with [`ExitReason::Escalated`], which its parent
//! handles like any crash; a supervisor without a parent just stops (give it a
//! [`ChildLink::new`] to hear about it).

use std::marker::PhantomData;

use actix::{Actor, ActorContext, Context, Handler, Message, MessageResult, ResponseFuture};
use tokio::sync::oneshot;

use crate::children::{Children, ExitOutcome};
use crate::core::SupervisorStats;
use crate::link::{ChildExited, ChildLink, ChildSpec, Terminate};
use crate::policy::{ExitReason, RestartPolicy, SupervisorError};
use crate::ChildId;

/// A pure supervisor of children identified by `K`.
pub struct Supervisor<K: ChildId> {
    // Declared before `link`: on drop the children are asked to stop before the parent
    // hears that this supervisor is gone (and perhaps starts a new one).
    children: Children<K, Supervisor<K>>,
    initial: Vec<ChildSpec<K>>,
    link: Option<ChildLink>,
    /// Completed (by being dropped) when this supervisor has stopped.
    stopped_waiters: Vec<oneshot::Sender<()>>,
}

impl<K: ChildId> Supervisor<K> {
    /// A supervisor named `name` in the logs that starts `children` in order.
    pub fn new(
        name: impl Into<String>,
        policy: RestartPolicy,
        children: Vec<ChildSpec<K>>,
    ) -> Self {
        Supervisor {
            children: Children::new(policy, |s: &mut Self| &mut s.children).named(name),
            initial: children,
            link: None,
            stopped_waiters: Vec::new(),
        }
    }

    /// Reports this supervisor's exit through `link` (it is itself a child).
    pub fn linked(mut self, link: ChildLink) -> Self {
        self.link = Some(link);
        self
    }

    fn exit(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if let Some(link) = &mut self.link {
            link.set_reason(reason);
        }
        ctx.stop();
    }

    fn shut_down(&mut self, ctx: &mut Context<Self>) {
        self.children
            .shutdown(ctx, |act, ctx| act.exit(ExitReason::Shutdown, ctx));
    }

    fn when_stopped(&mut self) -> ResponseFuture<()> {
        let (done, wait) = oneshot::channel();
        self.stopped_waiters.push(done);
        // A dropped sender is the signal: it happens however the supervisor ends.
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

impl<K: ChildId> Actor for Supervisor<K> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for spec in std::mem::take(&mut self.initial) {
            if let Err(error) = self.children.start_spec(spec, ctx) {
                // As in OTP: a supervisor whose static children cannot start fails itself,
                // and its parent's backoff throttles the next attempt.
                tracing::error!(%error, "supervisor cannot start its children");
                self.exit(ExitReason::StartFailed(error.to_string()), ctx);
                return;
            }
        }
    }
}

impl<K: ChildId> Handler<ChildExited<K>> for Supervisor<K> {
    type Result = ();

    fn handle(&mut self, msg: ChildExited<K>, ctx: &mut Context<Self>) {
        if let ExitOutcome::Escalate(e) = self.children.handle_exit(msg, ctx) {
            self.exit(ExitReason::Escalated(Box::new(e)), ctx);
        }
    }
}

/// Adds a child at the end of the order and starts it.
#[derive(Debug)]
pub struct StartChild<K>(pub ChildSpec<K>);

impl<K: 'static> Message for StartChild<K> {
    type Result = Result<(), SupervisorError>;
}

impl<K: ChildId> Handler<StartChild<K>> for Supervisor<K> {
    type Result = Result<(), SupervisorError>;

    fn handle(&mut self, msg: StartChild<K>, ctx: &mut Context<Self>) -> Self::Result {
        self.children.start_spec(msg.0, ctx)
    }
}

/// Stops a child for good; answers once it has stopped (or was abandoned after its
/// shutdown timeout).
#[derive(Debug, Clone)]
pub struct TerminateChild<K>(pub K);

impl<K: 'static> Message for TerminateChild<K> {
    type Result = Result<(), SupervisorError>;
}

impl<K: ChildId> Handler<TerminateChild<K>> for Supervisor<K> {
    type Result = ResponseFuture<Result<(), SupervisorError>>;

    fn handle(&mut self, msg: TerminateChild<K>, ctx: &mut Context<Self>) -> Self::Result {
        let stopped = self.children.terminate(&msg.0, ctx);
        Box::pin(async move {
            let _ = stopped?.await;
            Ok(())
        })
    }
}

/// Asks for the supervisor's counters.
#[derive(Debug, Clone, Copy)]
pub struct GetStats<K>(PhantomData<fn() -> K>);

impl<K> GetStats<K> {
    pub fn new() -> Self {
        GetStats(PhantomData)
    }
}

impl<K> Default for GetStats<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: 'static> Message for GetStats<K> {
    type Result = SupervisorStats<K>;
}

impl<K: ChildId> Handler<GetStats<K>> for Supervisor<K> {
    type Result = MessageResult<GetStats<K>>;

    fn handle(&mut self, _: GetStats<K>, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.children.stats())
    }
}

/// Orderly shutdown: children stop in reverse start order, each waited for (bounded by
/// its shutdown timeout), then the supervisor stops. Answers once it has stopped.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl<K: ChildId> Handler<Shutdown> for Supervisor<K> {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.shut_down(ctx);
        self.when_stopped()
    }
}

/// From its own parent: a nested supervisor shuts its subtree down in order.
impl<K: ChildId> Handler<Terminate> for Supervisor<K> {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.shut_down(ctx);
    }
}
