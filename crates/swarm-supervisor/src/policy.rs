//! The vocabulary of supervision: why a child ended ([`ExitReason`]), whether it comes back
//! ([`Restart`]), which siblings come back with it ([`Strategy`]), how often that may happen
//! ([`Intensity`]) and how long to wait first ([`Backoff`]). Plain data, no actix.

use std::time::Duration;

/// Why a child (or a supervisor) ended.
///
/// `Normal` and `Shutdown` are the two normal exits; everything else is a crash. A parent
/// sees a supervisor that gave up as an ordinary crash carrying [`ExitReason::Escalated`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExitReason {
    /// The child finished its work and stopped on its own.
    #[error("normal exit")]
    Normal,
    /// The child was asked to stop (by its supervisor, or an orderly shutdown).
    #[error("shut down")]
    Shutdown,
    /// The child stopped because of an error it reported itself (`ChildLink::fail`).
    #[error("error: {0}")]
    Error(String),
    /// The child panicked; the message and location come from the panic hook.
    #[error("panic: {0}")]
    Panic(String),
    /// The start function returned an error instead of a running child.
    #[error("start failed: {0}")]
    StartFailed(String),
    /// A supervisor exceeded its restart intensity and gave up.
    /// Boxed: an escalation carries the reason that triggered it, and the box keeps the
    /// enum small.
    #[error("{0}")]
    Escalated(Box<Escalation>),
}

impl ExitReason {
    /// `true` for every reason except `Normal` and `Shutdown`.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

/// A supervisor's report that it gave up: too many restarts too quickly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "restart intensity exceeded: more than {max_restarts} restarts within {period:?}; \
     last exit: child {child} ({reason})"
)]
pub struct Escalation {
    /// The child whose exit tipped the balance (its id, `Debug`-formatted).
    pub child: String,
    /// Why that child exited.
    pub reason: ExitReason,
    /// The intensity that was exceeded.
    pub max_restarts: u32,
    /// The period of that intensity.
    pub period: Duration,
}

/// Errors returned to whoever asks a supervisor to add, start or stop a child.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// A child with this id is already supervised.
    #[error("child {0} already exists")]
    DuplicateChild(String),
    /// No child with this id is supervised.
    #[error("no child {0}")]
    NoSuchChild(String),
    /// The start function of a new child failed; the child was not added.
    #[error("child {child} failed to start: {error}")]
    StartFailed { child: String, error: String },
    /// The supervisor is shutting down and takes no new children.
    #[error("supervisor is shutting down")]
    ShuttingDown,
}

/// Whether a child that ended is started again (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted, whatever the reason (a global service).
    Permanent,
    /// Restarted only after an abnormal exit (an outgoing peer: re-dial after an error,
    /// forget it after a clean goodbye).
    Transient,
    /// Never restarted (an incoming peer: it cannot be re-dialled).
    Temporary,
}

impl Restart {
    /// Whether a child of this type is restarted after exiting with `reason`.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => false,
        }
    }
}

/// Which children are restarted together when one of them has to be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: the others are stopped and all are started again, in order.
    OneForAll,
    /// The child that exited and every child added after it (they depend on it).
    RestForOne,
}

/// At most `max_restarts` restarts within any `period`; one more means giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    pub max_restarts: u32,
    pub period: Duration,
}

impl Intensity {
    pub fn new(max_restarts: u32, period: Duration) -> Self {
        Intensity {
            max_restarts,
            period,
        }
    }

    /// Never give up. For a set of peers, where one bad address must not take the torrent
    /// down; pair it with a per-child budget ([`RestartPolicy::child_budget`]).
    pub fn unlimited() -> Self {
        Intensity {
            max_restarts: u32::MAX,
            period: Duration::ZERO,
        }
    }

    pub(crate) fn is_unlimited(&self) -> bool {
        self.max_restarts == u32::MAX
    }
}

/// Exponential backoff between a child's exit and its restart.
///
/// The n-th consecutive quick failure waits `initial * 2^(n-1)`, capped at `max`. A child
/// that ran for at least `reset_after` before failing counts as stable: its count starts
/// again at one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

/// The smallest delay ever used. A zero delay would let a child that dies in its start-up
/// spin its thread (actix's own `Supervisor` does exactly that, see ARCHITECTURE §7).
pub const MIN_DELAY: Duration = Duration::from_millis(1);

impl Backoff {
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Self {
        Backoff {
            initial,
            max,
            reset_after,
        }
    }

    /// The delay before restart number `failures` (1-based) of a run of quick failures.
    pub fn delay(&self, failures: u32) -> Duration {
        let initial = self.initial.max(MIN_DELAY);
        let cap = self.max.max(initial);
        let shift = failures.saturating_sub(1).min(31);
        initial
            .checked_mul(1u32 << shift)
            .map_or(cap, |d| d.min(cap))
    }
}

impl Default for Backoff {
    /// 100 ms, doubling up to 30 s; stable after a minute.
    fn default() -> Self {
        Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

/// Everything a supervisor needs to decide what to do when a child exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub strategy: Strategy,
    /// Across all children: exceeded means the supervisor escalates (stops itself).
    pub intensity: Intensity,
    /// Per child: exceeded means this child is given up and removed, the supervisor lives
    /// on. `None`: children are only limited by `intensity`.
    pub child_budget: Option<Intensity>,
    pub backoff: Backoff,
    /// How long a child may take to stop when asked, before it is abandoned.
    pub shutdown_timeout: Duration,
}

impl RestartPolicy {
    /// `strategy` with the defaults: 3 restarts in 5 s, no per-child budget, default
    /// backoff, 5 s to stop.
    pub fn new(strategy: Strategy) -> Self {
        RestartPolicy {
            strategy,
            intensity: Intensity::new(3, Duration::from_secs(5)),
            child_budget: None,
            backoff: Backoff::default(),
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    pub fn one_for_one() -> Self {
        Self::new(Strategy::OneForOne)
    }

    pub fn one_for_all() -> Self {
        Self::new(Strategy::OneForAll)
    }

    pub fn rest_for_one() -> Self {
        Self::new(Strategy::RestForOne)
    }

    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity::new(max_restarts, period);
        self
    }

    pub fn unlimited_intensity(mut self) -> Self {
        self.intensity = Intensity::unlimited();
        self
    }

    pub fn child_budget(mut self, max_restarts: u32, period: Duration) -> Self {
        self.child_budget = Some(Intensity::new(max_restarts, period));
        self
    }

    pub fn backoff(mut self, initial: Duration, max: Duration, reset_after: Duration) -> Self {
        self.backoff = Backoff::new(initial, max, reset_after);
        self
    }

    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self::one_for_one()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff::new(ms(10), ms(100), ms(1000));
        let delays: Vec<_> = (1..=7).map(|n| b.delay(n)).collect();
        assert_eq!(
            delays,
            vec![ms(10), ms(20), ms(40), ms(80), ms(100), ms(100), ms(100)]
        );
        // A huge count neither overflows nor exceeds the cap.
        assert_eq!(b.delay(u32::MAX), ms(100));
    }

    #[test]
    fn zero_backoff_is_raised_to_the_minimum() {
        let b = Backoff::new(Duration::ZERO, Duration::ZERO, ms(10));
        assert_eq!(b.delay(1), MIN_DELAY);
        assert_eq!(b.delay(5), MIN_DELAY);
    }

    #[test]
    fn restart_types() {
        let err = ExitReason::Error("x".into());
        for (restart, normal, crash) in [
            (Restart::Permanent, true, true),
            (Restart::Transient, false, true),
            (Restart::Temporary, false, false),
        ] {
            assert_eq!(restart.restarts_after(&ExitReason::Normal), normal);
            assert_eq!(restart.restarts_after(&ExitReason::Shutdown), normal);
            assert_eq!(restart.restarts_after(&err), crash);
        }
    }
}
