//! The bookkeeping core: [`Supervision`] knows the children, their order and state, and
//! decides what an exit means. It does no I/O, knows nothing of actix and takes the time
//! as an argument, so every rule is tested here with a fake clock. The actix glue
//! (`children.rs`) carries out its [`Decision`]s.
//!
//! Each start of a child gets a fresh [`Incarnation`]; an exit report names the
//! incarnation it is about, so a late report from a child that was already replaced (or
//! abandoned after a stop timeout) is ignored instead of killing its successor. Each
//! scheduled restart gets a [`Ticket`]; a later decision that reschedules the same child
//! (a group restart overtaking a single one) takes the ticket over, so the child is
//! started once, in order.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use crate::policy::{Escalation, ExitReason, Intensity, Restart, RestartPolicy, Strategy};
use crate::SupervisorError;

/// Identifies one start of one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Incarnation(u64);

/// Identifies one scheduled (group) restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// What to do about an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<K> {
    /// Stop the running children `stop` (siblings taken down by the strategy), wait `after`,
    /// then start `start` in this order once [`Supervision::due`] says so.
    Restart {
        stop: Vec<K>,
        start: Vec<K>,
        after: Duration,
        ticket: Ticket,
    },
    /// The child is gone for good and was removed: temporary, transient after a normal
    /// exit, terminated on request, or any exit during shutdown.
    Remove,
    /// The child used up its own budget ([`RestartPolicy::child_budget`]) and was removed.
    GiveUp { restarts: u32, period: Duration },
    /// The supervisor exceeded its intensity: stop every child and then itself.
    Escalate(Escalation),
    /// A sibling the supervisor stopped for a group restart is down; its restart is
    /// already scheduled.
    Stopped,
    /// A stale report (an older incarnation, or a child no longer supervised).
    Ignore,
}

/// Answer of [`Supervision::due`] when a restart's delay has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due<K> {
    /// Start these children now, in this order.
    Ready(Vec<K>),
    /// Some sibling taken down for this restart has not reported its exit yet.
    Waiting,
}

/// Answer of [`Supervision::terminate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// The child is running: ask it to stop; its exit report will remove it.
    Stopping(Incarnation),
    /// The child was not running (waiting for a restart) and is removed already.
    Removed,
}

/// A child's state as shown in statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildState {
    Running,
    /// Asked to stop; its exit has not been reported yet.
    Stopping,
    /// Down, waiting for its backoff delay to pass.
    Restarting,
}

/// One child's counters, for the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildStats<K> {
    pub id: K,
    pub restart: Restart,
    pub state: ChildState,
    /// How often this child was restarted (not counting its first start).
    pub restarts: u64,
    pub last_exit: Option<ExitReason>,
}

/// A supervisor's counters, for the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisorStats<K> {
    /// In start order.
    pub children: Vec<ChildStats<K>>,
    /// Restarts of all children ever supervised, including removed ones.
    pub total_restarts: u64,
}

impl<K: PartialEq> SupervisorStats<K> {
    pub fn running(&self) -> usize {
        self.children
            .iter()
            .filter(|c| c.state == ChildState::Running)
            .count()
    }

    pub fn child(&self, id: &K) -> Option<&ChildStats<K>> {
        self.children.iter().find(|c| &c.id == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Asked to stop; `then_remove` for a termination, otherwise a group restart follows.
    Stopping {
        then_remove: bool,
    },
    Down,
}

#[derive(Debug)]
struct Child<K> {
    id: K,
    restart: Restart,
    state: State,
    incarnation: Option<Incarnation>,
    started_at: Option<Instant>,
    /// Consecutive quick failures: the backoff exponent.
    failures: u32,
    /// Recent restarts, for the per-child budget.
    recent: VecDeque<Instant>,
    restarts: u64,
    last_exit: Option<ExitReason>,
    pending: Option<Ticket>,
}

/// The supervision bookkeeping for children identified by `K`.
#[derive(Debug)]
pub struct Supervision<K> {
    policy: RestartPolicy,
    /// In start order; linear search is fine for the few hundred peers of a torrent.
    children: Vec<Child<K>>,
    recent: VecDeque<Instant>,
    total_restarts: u64,
    next_incarnation: u64,
    next_ticket: u64,
    shutting_down: bool,
}

/// Records a restart at `now`; `false` when that is one more than `limit` allows.
fn within(limit: &Intensity, recent: &mut VecDeque<Instant>, now: Instant) -> bool {
    if limit.is_unlimited() {
        return true;
    }
    while recent
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= limit.period)
    {
        recent.pop_front();
    }
    recent.push_back(now);
    // Bounded: the caller gives up as soon as this exceeds `max_restarts`.
    recent.len() <= limit.max_restarts as usize
}

impl<K: Clone + PartialEq + Debug> Supervision<K> {
    pub fn new(policy: RestartPolicy) -> Self {
        Supervision {
            policy,
            children: Vec::new(),
            recent: VecDeque::new(),
            total_restarts: 0,
            next_incarnation: 0,
            next_ticket: 0,
            shutting_down: false,
        }
    }

    pub fn policy(&self) -> &RestartPolicy {
        &self.policy
    }

    fn index(&self, id: &K) -> Option<usize> {
        self.children.iter().position(|c| &c.id == id)
    }

    pub fn contains(&self, id: &K) -> bool {
        self.index(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Child ids in start order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.children.iter().map(|c| &c.id)
    }

    /// Adds a child at the end of the order, not yet started.
    pub fn add(&mut self, id: K, restart: Restart) -> Result<(), SupervisorError> {
        if self.shutting_down {
            return Err(SupervisorError::ShuttingDown);
        }
        if self.contains(&id) {
            return Err(SupervisorError::DuplicateChild(format!("{id:?}")));
        }
        self.children.push(Child {
            id,
            restart,
            state: State::Down,
            incarnation: None,
            started_at: None,
            failures: 0,
            recent: VecDeque::new(),
            restarts: 0,
            last_exit: None,
            pending: None,
        });
        Ok(())
    }

    /// Forgets a child at once, whatever its state (a failed first start, or a child that
    /// did not stop in time). Returns whether it was there.
    pub fn remove(&mut self, id: &K) -> bool {
        match self.index(id) {
            Some(i) => {
                self.children.remove(i);
                true
            }
            None => false,
        }
    }

    /// Records that `id` is being started at `now`; the returned incarnation goes into the
    /// child's link. `None` if the child is unknown.
    pub fn started(&mut self, id: &K, now: Instant) -> Option<Incarnation> {
        let i = self.index(id)?;
        let incarnation = Incarnation(self.next_incarnation);
        self.next_incarnation += 1;
        let child = &mut self.children[i];
        child.state = State::Running;
        child.incarnation = Some(incarnation);
        child.started_at = Some(now);
        child.pending = None;
        Some(incarnation)
    }

    /// How often `id` was restarted so far.
    pub fn restarts_of(&self, id: &K) -> u64 {
        self.index(id).map_or(0, |i| self.children[i].restarts)
    }

    /// Whether `id` may be started now: it is down and no restart is scheduled for it.
    pub fn is_startable(&self, id: &K) -> bool {
        self.index(id).is_some_and(|i| {
            let c = &self.children[i];
            c.state == State::Down && c.pending.is_none()
        })
    }

    /// Whether incarnation `inc` of `id` was asked to stop and has not reported yet.
    pub fn is_stopping(&self, id: &K, inc: Incarnation) -> bool {
        self.index(id).is_some_and(|i| {
            let c = &self.children[i];
            c.incarnation == Some(inc) && matches!(c.state, State::Stopping { .. })
        })
    }

    /// Decides what the exit of incarnation `inc` of `id` with `reason` at `now` means.
    pub fn on_exit(
        &mut self,
        id: &K,
        inc: Incarnation,
        reason: ExitReason,
        now: Instant,
    ) -> Decision<K> {
        let Some(i) = self.index(id) else {
            return Decision::Ignore;
        };
        let child = &mut self.children[i];
        if child.incarnation != Some(inc) {
            return Decision::Ignore;
        }
        match child.state {
            State::Down => return Decision::Ignore,
            State::Stopping { then_remove: true } => {
                self.children.remove(i);
                return Decision::Remove;
            }
            State::Stopping { then_remove: false } => {
                child.state = State::Down;
                return Decision::Stopped;
            }
            State::Running => {}
        }
        child.last_exit = Some(reason.clone());
        if self.shutting_down || !child.restart.restarts_after(&reason) {
            self.children.remove(i);
            return Decision::Remove;
        }

        let ran = child
            .started_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if ran >= self.policy.backoff.reset_after {
            child.failures = 0;
        }
        child.failures = child.failures.saturating_add(1);
        let after = self.policy.backoff.delay(child.failures);
        child.state = State::Down;

        if let Some(budget) = self.policy.child_budget {
            if !within(&budget, &mut child.recent, now) {
                self.children.remove(i);
                return Decision::GiveUp {
                    restarts: budget.max_restarts,
                    period: budget.period,
                };
            }
        }
        if !within(&self.policy.intensity, &mut self.recent, now) {
            self.shutting_down = true;
            return Decision::Escalate(Escalation {
                child: format!("{id:?}"),
                reason,
                max_restarts: self.policy.intensity.max_restarts,
                period: self.policy.intensity.period,
            });
        }
        self.plan_restart(i, after)
    }

    /// The restart of child `i` (already down) and of the siblings its strategy takes along.
    fn plan_restart(&mut self, i: usize, after: Duration) -> Decision<K> {
        let group = match self.policy.strategy {
            Strategy::OneForOne => i..i + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => i..self.children.len(),
        };
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        let (mut stop, mut start) = (Vec::new(), Vec::new());
        for child in &mut self.children[group] {
            let temporary = child.restart == Restart::Temporary;
            match child.state {
                State::Running => {
                    stop.push(child.id.clone());
                    child.state = State::Stopping {
                        then_remove: temporary,
                    };
                }
                // Already leaving for good: let it go.
                State::Stopping { then_remove: true } => continue,
                State::Stopping { then_remove: false } | State::Down => {}
            }
            // A temporary sibling is stopped with the group but never comes back (OTP).
            if !temporary {
                // A child already waiting for its own restart was counted then.
                if child.pending.is_none() {
                    child.restarts += 1;
                    self.total_restarts += 1;
                }
                child.pending = Some(ticket);
                start.push(child.id.clone());
            }
        }
        Decision::Restart {
            stop,
            start,
            after,
            ticket,
        }
    }

    /// Called when the delay of restart `ticket` has passed.
    pub fn due(&mut self, ticket: Ticket) -> Due<K> {
        let mine = |c: &&mut Child<K>| c.pending == Some(ticket);
        if self
            .children
            .iter_mut()
            .filter(mine)
            .any(|c| matches!(c.state, State::Stopping { .. }))
        {
            return Due::Waiting;
        }
        let ready = self
            .children
            .iter_mut()
            .filter(mine)
            .map(|c| {
                c.pending = None;
                c.id.clone()
            })
            .collect();
        Due::Ready(ready)
    }

    /// Gives up waiting for the siblings of restart `ticket` to stop: they count as down
    /// and a late report from them is ignored.
    pub fn force_down(&mut self, ticket: Ticket) -> Vec<K> {
        let mut abandoned = Vec::new();
        for c in &mut self.children {
            if c.pending == Some(ticket) && matches!(c.state, State::Stopping { .. }) {
                c.state = State::Down;
                c.incarnation = None;
                abandoned.push(c.id.clone());
            }
        }
        abandoned
    }

    /// Marks `id` for removal: a running child is to be stopped, a waiting one is gone.
    pub fn terminate(&mut self, id: &K) -> Result<Termination, SupervisorError> {
        let i = self
            .index(id)
            .ok_or_else(|| SupervisorError::NoSuchChild(format!("{id:?}")))?;
        let child = &mut self.children[i];
        child.pending = None;
        match (child.state, child.incarnation) {
            (State::Running | State::Stopping { .. }, Some(inc)) => {
                child.state = State::Stopping { then_remove: true };
                Ok(Termination::Stopping(inc))
            }
            _ => {
                self.children.remove(i);
                Ok(Termination::Removed)
            }
        }
    }

    /// From now on nothing is restarted and nothing added. Children waiting for a restart
    /// are removed and returned; running ones are left for the caller to stop in order.
    pub fn begin_shutdown(&mut self) -> Vec<K> {
        self.shutting_down = true;
        let mut removed = Vec::new();
        self.children.retain(|c| {
            let keep = c.state != State::Down;
            if !keep {
                removed.push(c.id.clone());
            }
            keep
        });
        removed
    }

    pub fn stats(&self) -> SupervisorStats<K> {
        let children = self
            .children
            .iter()
            .map(|c| ChildStats {
                id: c.id.clone(),
                restart: c.restart,
                state: match c.state {
                    State::Running => ChildState::Running,
                    State::Stopping { .. } => ChildState::Stopping,
                    State::Down => ChildState::Restarting,
                },
                restarts: c.restarts,
                last_exit: c.last_exit.clone(),
            })
            .collect();
        SupervisorStats {
            children,
            total_restarts: self.total_restarts,
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
