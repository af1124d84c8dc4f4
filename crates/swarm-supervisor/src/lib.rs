//! Erlang/OTP-style supervision for actix 0.13 actors.
//!
//! actix's own `Supervisor` restarts an actor only when it stops, never after a panic, with
//! no restart limit and no backoff (ARCHITECTURE §7). This crate gives swarmd what
//! etorrent's supervisors give etorrent, at every level of the tree (root → services and
//! torrents, torrent → peers):
//!
//! - **restart types** ([`Restart`]): permanent, transient (only after a crash), temporary;
//! - **strategies** ([`Strategy`]): one_for_one, one_for_all, rest_for_one;
//! - **restart intensity** ([`Intensity`]): more than N restarts within T and the
//!   supervisor gives up, stops its children and itself with [`ExitReason::Escalated`],
//!   which its own parent sees as a crash; optionally a per-child budget that gives up on
//!   one child only (a peer address that keeps failing);
//! - **exponential backoff** ([`Backoff`]) per child, capped, reset after a stable run: a
//!   child that dies in its start-up is throttled, never restarted in a tight loop;
//! - **panics are crashes**: a child's [`ChildLink`] reports its exit when dropped, with
//!   the panic message if it is dropped by a panic; siblings and the thread live on.
//!
//! It comes in three layers:
//!
//! 1. [`Supervision`], the pure bookkeeping core: children, order, incarnations, counters,
//!    and the [`Decision`] an exit leads to. No actix, time passed in: unit-tested with a
//!    fake clock.
//! 2. The link between parent and child ([`ChildLink`], [`ChildHandle`], [`ChildExited`],
//!    [`Terminate`], [`ChildSpec`]) and [`Children`], which carries out the decisions
//!    inside any actor: an actor that does real work (the torrent, owning the piece picker)
//!    supervises its peers with a `Children` field and a one-line exit handler.
//! 3. [`Supervisor`], a ready-made actor for pure supervisors (one that does nothing but
//!    supervise), with [`StartChild`], [`TerminateChild`], [`GetStats`] and [`Shutdown`].
//!    swarmd's tree does not use it: its root keeps the torrent registry and answers queries,
//!    its torrents own their pickers, so both supervise with a [`Children`] field. It stays
//!    as the crate's whole-actor form, and the actix tests of strategies, intensity, nested
//!    escalation and ordered shutdown run through it.
//!
//! What it is not: a process registry, a way to kill a busy actor (actix cannot interrupt
//! a handler; a child that ignores [`Terminate`] is abandoned after its shutdown timeout),
//! or a guard against `panic = "abort"` (with abort nothing unwinds and nothing is
//! reported; swarmd never builds with it). Children must handle [`Terminate`]
//! (normally with `ctx.stop()`) and keep their [`ChildLink`] as a field.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use actix::prelude::*;
//! use swarm_supervisor::{
//!     ChildHandle, ChildLink, ChildSpec, GetStats, Restart, RestartPolicy, Shutdown,
//!     Supervisor, Terminate,
//! };
//!
//! /// A service that may crash.
//! struct Announcer {
//!     link: ChildLink, // reports the exit (and any panic) to the supervisor when dropped
//! }
//! impl Actor for Announcer {
//!     type Context = Context<Self>;
//! }
//! impl Handler<Terminate> for Announcer {
//!     type Result = ();
//!     fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
//!         ctx.stop();
//!     }
//! }
//!
//! #[actix::main]
//! async fn main() {
//!     let policy = RestartPolicy::one_for_one()
//!         .intensity(5, Duration::from_secs(10))
//!         .backoff(Duration::from_millis(100), Duration::from_secs(30), Duration::from_secs(60));
//!     let announcer = ChildSpec::new("announcer", Restart::Permanent, |link| {
//!         Ok(ChildHandle::new(Announcer { link }.start()))
//!     });
//!     let root = Supervisor::new("root", policy, vec![announcer]).start();
//!
//!     let stats = root.send(GetStats::<&str>::new()).await.unwrap();
//!     assert_eq!(stats.running(), 1);
//!     root.send(Shutdown).await.unwrap(); // stops the children in reverse order, then itself
//! }
//! ```

mod children;
mod core;
mod link;
mod policy;
mod supervisor;

pub use crate::children::{Access, Children, ExitOutcome};
pub use crate::core::{
    ChildState, ChildStats, Decision, Due, Incarnation, Supervision, SupervisorStats, Termination,
    Ticket,
};
pub use crate::link::{
    install_panic_hook, ChildExited, ChildHandle, ChildLink, ChildSpec, StartFn, Terminate,
};
pub use crate::policy::{
    Backoff, Escalation, ExitReason, Intensity, Restart, RestartPolicy, Strategy, SupervisorError,
    MIN_DELAY,
};
pub use crate::supervisor::{GetStats, Shutdown, StartChild, Supervisor, TerminateChild};

/// What a child id must be: cheap to clone, comparable, printable in logs, sendable.
/// `&'static str`, `String`, `SocketAddr` and an info-hash newtype all qualify.
pub trait ChildId: Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Unpin + 'static {}

impl<T: Clone + Eq + std::hash::Hash + std::fmt::Debug + Send + Unpin + 'static> ChildId for T {}

#[cfg(test)]
mod tests;
