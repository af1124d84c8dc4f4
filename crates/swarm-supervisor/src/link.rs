//! What passes between a parent and a child: the [`ChildLink`] the child holds (its exit
//! report), the [`ChildHandle`] the parent holds (its way to ask the child to stop), the
//! [`ChildExited`] and [`Terminate`] messages, and the [`ChildSpec`] that makes a child.
//!
//! Why a guard and not a message the child sends: a child must be reported however it
//! ends, including by panic. Actix destroys a panicking actor (tokio catches the panic)
//! and the actor struct is dropped while the panic unwinds, so a field whose `Drop`
//! reports covers clean stops, error stops and panics with one mechanism. During that
//! unwinding `std::thread::panicking()` is true, and the panic hook installed here has
//! just stored the panic's message in a thread-local, so the report can carry it.

use std::any::Any;
use std::cell::RefCell;
use std::fmt::{self, Debug, Display};
use std::sync::Once;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::{Actor, Addr, Handler, Message, Recipient};

use crate::core::Incarnation;
use crate::policy::{ExitReason, Restart};

thread_local! {
    /// The message of the last panic on this thread, stored by the hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that remembers each panic's message for
/// [`ChildLink`], then calls the hook that was installed before (by default the one that
/// prints the panic). Called by every [`ChildLink`] constructor; call it early in `main`
/// if you replace the hook yourself, and chain to the previous one when you do.
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            let message = match info.location() {
                Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                None => message,
            };
            // `try_` everywhere: a panic inside the panic hook would abort the process.
            let _ = LAST_PANIC.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    *slot = Some(message);
                }
            });
            previous(info);
        }));
    });
}

fn last_panic_message() -> String {
    LAST_PANIC
        .try_with(|slot| slot.try_borrow().ok().and_then(|s| s.clone()))
        .ok()
        .flatten()
        .unwrap_or_else(|| "unknown panic (panic hook not installed?)".to_owned())
}

type Notify = Box<dyn FnOnce(ExitReason) + Send>;

/// The exit guard a child holds for its whole life (as a field of its actor struct).
///
/// When it is dropped, it reports exactly once: [`ExitReason::Panic`] with the message if
/// the thread is panicking, otherwise the reason set with [`ChildLink::set_reason`] /
/// [`ChildLink::fail`], or [`ExitReason::Normal`] if none was set. A supervisor creates
/// it and passes it to the child's start function; it is `Send`, so the child may be
/// started on another `Arbiter`.
pub struct ChildLink {
    notify: Option<Notify>,
    reason: Option<ExitReason>,
}

impl ChildLink {
    /// A link that calls `notify` with the exit reason. Supervisors build theirs with
    /// this; `main` can use it to learn how the root supervisor ended.
    pub fn new(notify: impl FnOnce(ExitReason) + Send + 'static) -> Self {
        install_panic_hook();
        ChildLink {
            notify: Some(Box::new(notify)),
            reason: None,
        }
    }

    /// A link that reports to no one, for an actor that is run without a parent.
    pub fn detached() -> Self {
        install_panic_hook();
        ChildLink {
            notify: None,
            reason: None,
        }
    }

    pub(crate) fn to_parent<K: Send + 'static>(
        parent: Recipient<ChildExited<K>>,
        id: K,
        incarnation: Incarnation,
    ) -> Self {
        ChildLink::new(move |reason| {
            // `do_send` ignores the mailbox bound: fine for a rare control message, and it
            // never blocks or panics, which matters while unwinding.
            parent.do_send(ChildExited {
                id,
                incarnation,
                reason,
            })
        })
    }

    /// Sets the reason reported when the child stops; call it before `ctx.stop()`.
    /// A later call overrides an earlier one; a panic overrides both.
    pub fn set_reason(&mut self, reason: ExitReason) {
        self.reason = Some(reason);
    }

    /// Shorthand for `set_reason(ExitReason::Error(error.to_string()))`.
    pub fn fail(&mut self, error: impl Display) {
        self.set_reason(ExitReason::Error(error.to_string()));
    }

    /// The reason set so far, if any.
    pub fn reason(&self) -> Option<&ExitReason> {
        self.reason.as_ref()
    }
}

impl Drop for ChildLink {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            ExitReason::Panic(last_panic_message())
        } else {
            self.reason.take().unwrap_or(ExitReason::Normal)
        };
        if let Some(notify) = self.notify.take() {
            notify(reason);
        }
    }
}

impl Debug for ChildLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildLink")
            .field("attached", &self.notify.is_some())
            .field("reason", &self.reason)
            .finish()
    }
}

/// A child's exit report, sent by its [`ChildLink`] to the parent.
///
/// The parent passes it on unchanged to `Children::handle_exit` (or lets a
/// [`Supervisor`](crate::Supervisor) handle it). Only this crate builds it.
#[derive(Debug)]
pub struct ChildExited<K> {
    pub id: K,
    pub reason: ExitReason,
    /// Which start of the child this is about: a late report from a replaced child is
    /// ignored.
    pub(crate) incarnation: Incarnation,
}

impl<K: 'static> Message for ChildExited<K> {
    type Result = ();
}

/// Asks a child to stop. Every child actor handles it, normally with `ctx.stop()`; the
/// supervisor counts the exit as requested whatever reason the child then reports.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Terminate;

/// The parent's side of a running child: how to ask it to stop, and its address.
pub struct ChildHandle {
    stop: Option<Recipient<Terminate>>,
    addr: Option<Box<dyn Any + Send>>,
}

impl ChildHandle {
    /// The handle of an actor child; keeps its `Addr` for [`ChildHandle::addr`].
    pub fn new<C>(addr: Addr<C>) -> Self
    where
        C: Actor + Handler<Terminate>,
        C::Context: ToEnvelope<C, Terminate>,
    {
        ChildHandle {
            stop: Some(addr.clone().recipient()),
            addr: Some(Box::new(addr)),
        }
    }

    /// A child reachable only through a `Terminate` recipient.
    pub fn from_recipient(stop: Recipient<Terminate>) -> Self {
        ChildHandle {
            stop: Some(stop),
            addr: None,
        }
    }

    /// A child that cannot be asked to stop (it must end by itself): termination and
    /// shutdown wait for it up to the shutdown timeout, then abandon it.
    pub fn unstoppable() -> Self {
        ChildHandle {
            stop: None,
            addr: None,
        }
    }

    /// The child's address, if it is an actor of type `C`.
    pub fn addr<C: Actor>(&self) -> Option<Addr<C>> {
        self.addr.as_ref()?.downcast_ref::<Addr<C>>().cloned()
    }

    pub(crate) fn terminate(&self) {
        if let Some(stop) = &self.stop {
            stop.do_send(Terminate);
        }
    }
}

impl Debug for ChildHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle")
            .field("stoppable", &self.stop.is_some())
            .finish()
    }
}

/// Starts one incarnation of a child: creates the actor (on this thread, or on a given
/// `Arbiter` with `start_in_arbiter`), hands it the link, returns its handle. Called again
/// for every restart. It runs inside the parent's handler, so it must be quick and must not
/// panic; slow work (connecting) belongs in the child's `started()`, where a failure is an
/// ordinary exit that the backoff throttles.
pub type StartFn = Box<dyn FnMut(ChildLink) -> Result<ChildHandle, String> + Send>;

/// How to make and restart one child.
pub struct ChildSpec<K> {
    pub id: K,
    pub restart: Restart,
    pub start: StartFn,
    /// How long the child may take to stop; `None`: the policy's `shutdown_timeout`.
    /// Give a nested supervisor more than its own children need.
    pub shutdown_timeout: Option<Duration>,
}

impl<K> ChildSpec<K> {
    pub fn new(
        id: K,
        restart: Restart,
        start: impl FnMut(ChildLink) -> Result<ChildHandle, String> + Send + 'static,
    ) -> Self {
        ChildSpec {
            id,
            restart,
            start: Box::new(start),
            shutdown_timeout: None,
        }
    }

    /// A temporary child whose start can only run once, e.g. because it consumes an
    /// accepted socket (an incoming peer: it is never restarted, only dropped).
    pub fn once(
        id: K,
        start: impl FnOnce(ChildLink) -> Result<ChildHandle, String> + Send + 'static,
    ) -> Self {
        let mut start = Some(start);
        Self::new(id, Restart::Temporary, move |link| match start.take() {
            Some(start) => start(link),
            None => Err("one-shot child cannot be started twice".to_owned()),
        })
    }

    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }
}

impl<K: Debug> Debug for ChildSpec<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorded() -> (Arc<Mutex<Vec<ExitReason>>>, ChildLink) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let link = ChildLink::new(move |r| sink.lock().unwrap().push(r));
        (seen, link)
    }

    #[test]
    fn reports_normal_by_default_and_the_set_reason_otherwise() {
        let (seen, link) = recorded();
        drop(link);
        let (seen2, mut link2) = recorded();
        link2.fail("connection refused");
        drop(link2);
        assert_eq!(*seen.lock().unwrap(), vec![ExitReason::Normal]);
        assert_eq!(
            *seen2.lock().unwrap(),
            vec![ExitReason::Error("connection refused".into())]
        );
    }

    #[test]
    fn reports_a_panic_with_its_message() {
        let (seen, mut link) = recorded();
        link.fail("overridden by the panic");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _link = link;
            panic!("bad frame from peer {}", 7);
        }));
        assert!(result.is_err());
        let seen = seen.lock().unwrap();
        match seen.as_slice() {
            [ExitReason::Panic(msg)] => {
                assert!(msg.starts_with("bad frame from peer 7 (at "), "{msg}");
                assert!(msg.contains("link.rs"), "{msg}");
            }
            other => panic!("unexpected report {other:?}"),
        }
    }

    #[test]
    fn a_once_spec_refuses_a_second_start() {
        let mut spec = ChildSpec::once("x", |_link| Ok(ChildHandle::unstoppable()));
        assert_eq!(spec.restart, Restart::Temporary);
        assert!((spec.start)(ChildLink::detached()).is_ok());
        assert!((spec.start)(ChildLink::detached()).is_err());
    }
}
