//! Tests of the bookkeeping core with a fake clock: `t(ms)` is an instant `ms` after start.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Clock(Instant);

impl Clock {
    fn t(&self, n: u64) -> Instant {
        self.0 + ms(n)
    }
}

fn err(s: &str) -> ExitReason {
    ExitReason::Error(s.into())
}

/// Backoff 10 ms .. 80 ms, stable after 1 s; intensity generous unless a test sets it.
fn policy(strategy: Strategy) -> RestartPolicy {
    RestartPolicy::new(strategy)
        .intensity(100, Duration::from_secs(1))
        .backoff(ms(10), ms(80), Duration::from_secs(1))
}

/// A supervision with children `a`, `b`, `c` (of `restart`) all started at `t(0)`.
fn abc(
    policy: RestartPolicy,
    restart: Restart,
) -> (Clock, Supervision<&'static str>, Vec<Incarnation>) {
    let clock = Clock(Instant::now());
    let mut s = Supervision::new(policy);
    let mut incs = Vec::new();
    for id in ["a", "b", "c"] {
        s.add(id, restart).unwrap();
        incs.push(s.started(&id, clock.t(0)).unwrap());
    }
    (clock, s, incs)
}

fn restart_plan(
    d: Decision<&'static str>,
) -> (Vec<&'static str>, Vec<&'static str>, Duration, Ticket) {
    match d {
        Decision::Restart {
            stop,
            start,
            after,
            ticket,
        } => (stop, start, after, ticket),
        other => panic!("expected a restart, got {other:?}"),
    }
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    let (stop, start, after, ticket) =
        restart_plan(s.on_exit(&"b", incs[1], err("boom"), clock.t(5)));
    assert!(stop.is_empty());
    assert_eq!(start, vec!["b"]);
    assert_eq!(after, ms(10));
    assert_eq!(s.due(ticket), Due::Ready(vec!["b"]));
    let stats = s.stats();
    assert_eq!(stats.child(&"b").unwrap().restarts, 1);
    assert_eq!(stats.child(&"b").unwrap().last_exit, Some(err("boom")));
    assert_eq!(stats.child(&"a").unwrap().state, ChildState::Running);
    assert_eq!(stats.total_restarts, 1);
}

#[test]
fn one_for_all_stops_the_others_and_restarts_all_in_order() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForAll), Restart::Permanent);
    let (stop, start, _, ticket) = restart_plan(s.on_exit(&"b", incs[1], err("x"), clock.t(5)));
    assert_eq!(stop, vec!["a", "c"]);
    assert_eq!(start, vec!["a", "b", "c"]);
    // The siblings have not stopped yet: the restart waits for them.
    assert_eq!(s.due(ticket), Due::Waiting);
    assert_eq!(
        s.on_exit(&"a", incs[0], ExitReason::Shutdown, clock.t(6)),
        Decision::Stopped
    );
    assert_eq!(s.due(ticket), Due::Waiting);
    // Whatever reason the sibling gives, it was stopped on purpose: no second restart.
    assert_eq!(
        s.on_exit(&"c", incs[2], err("late"), clock.t(7)),
        Decision::Stopped
    );
    assert_eq!(s.due(ticket), Due::Ready(vec!["a", "b", "c"]));
    assert_eq!(s.stats().total_restarts, 3);
}

#[test]
fn one_for_all_drops_temporary_siblings() {
    let clock = Clock(Instant::now());
    let mut s = Supervision::new(policy(Strategy::OneForAll));
    s.add("perm", Restart::Permanent).unwrap();
    s.add("temp", Restart::Temporary).unwrap();
    let p = s.started(&"perm", clock.t(0)).unwrap();
    let t = s.started(&"temp", clock.t(0)).unwrap();
    let (stop, start, _, ticket) = restart_plan(s.on_exit(&"perm", p, err("x"), clock.t(1)));
    assert_eq!(stop, vec!["temp"]);
    assert_eq!(start, vec!["perm"]);
    assert_eq!(
        s.on_exit(&"temp", t, ExitReason::Shutdown, clock.t(2)),
        Decision::Remove
    );
    assert!(!s.contains(&"temp"));
    assert_eq!(s.due(ticket), Due::Ready(vec!["perm"]));
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let (clock, mut s, incs) = abc(policy(Strategy::RestForOne), Restart::Permanent);
    let (stop, start, _, ticket) = restart_plan(s.on_exit(&"b", incs[1], err("x"), clock.t(5)));
    assert_eq!(stop, vec!["c"]);
    assert_eq!(start, vec!["b", "c"]);
    assert_eq!(
        s.on_exit(&"c", incs[2], ExitReason::Shutdown, clock.t(6)),
        Decision::Stopped
    );
    assert_eq!(s.due(ticket), Due::Ready(vec!["b", "c"]));
    assert_eq!(s.stats().child(&"a").unwrap().restarts, 0);
}

#[test]
fn a_group_restart_takes_over_a_pending_single_restart() {
    let (clock, mut s, incs) = abc(policy(Strategy::RestForOne), Restart::Permanent);
    let (_, _, _, c_ticket) = restart_plan(s.on_exit(&"c", incs[2], err("c"), clock.t(1)));
    let (stop, start, _, ticket) = restart_plan(s.on_exit(&"a", incs[0], err("a"), clock.t(2)));
    assert_eq!(stop, vec!["b"]);
    assert_eq!(start, vec!["a", "b", "c"]);
    // c's own timer is stale now: c is started once, by the group, after a and b.
    assert_eq!(s.due(c_ticket), Due::Ready(vec![]));
    s.on_exit(&"b", incs[1], ExitReason::Shutdown, clock.t(3));
    assert_eq!(s.due(ticket), Due::Ready(vec!["a", "b", "c"]));
    assert_eq!(s.stats().child(&"c").unwrap().restarts, 1);
}

#[test]
fn force_down_abandons_a_sibling_that_does_not_stop() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForAll), Restart::Permanent);
    let (_, _, _, ticket) = restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    s.on_exit(&"b", incs[1], ExitReason::Shutdown, clock.t(2));
    assert_eq!(s.due(ticket), Due::Waiting);
    assert_eq!(s.force_down(ticket), vec!["c"]);
    assert_eq!(s.due(ticket), Due::Ready(vec!["a", "b", "c"]));
    s.started(&"c", clock.t(3)).unwrap();
    // The abandoned incarnation's late report does not touch its successor.
    assert_eq!(
        s.on_exit(&"c", incs[2], err("late"), clock.t(4)),
        Decision::Ignore
    );
}

#[test]
fn stale_and_unknown_reports_are_ignored() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    // Reported twice (e.g. a start function that failed and dropped its link).
    assert_eq!(
        s.on_exit(&"a", incs[0], err("x"), clock.t(1)),
        Decision::Ignore
    );
    let new = s.started(&"a", clock.t(20)).unwrap();
    assert_ne!(new, incs[0]);
    assert_eq!(
        s.on_exit(&"a", incs[0], err("x"), clock.t(21)),
        Decision::Ignore
    );
    assert_eq!(
        s.on_exit(&"zz", new, err("x"), clock.t(21)),
        Decision::Ignore
    );
}

#[test]
fn restart_types_decide_by_reason() {
    for (restart, reason, restarted) in [
        (Restart::Permanent, ExitReason::Normal, true),
        (Restart::Permanent, err("x"), true),
        (Restart::Transient, ExitReason::Normal, false),
        (Restart::Transient, ExitReason::Shutdown, false),
        (Restart::Transient, err("x"), true),
        (Restart::Transient, ExitReason::Panic("p".into()), true),
        (
            Restart::Transient,
            ExitReason::StartFailed("s".into()),
            true,
        ),
        (Restart::Temporary, ExitReason::Normal, false),
        (Restart::Temporary, ExitReason::Panic("p".into()), false),
    ] {
        let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), restart);
        let d = s.on_exit(&"a", incs[0], reason.clone(), clock.t(1));
        if restarted {
            restart_plan(d);
            assert!(s.contains(&"a"));
        } else {
            assert_eq!(d, Decision::Remove, "{restart:?} after {reason:?}");
            assert!(!s.contains(&"a"));
            assert_eq!(s.len(), 2);
        }
    }
}

#[test]
fn exceeding_the_intensity_escalates() {
    let p = policy(Strategy::OneForOne).intensity(3, ms(1000));
    let (clock, mut s, incs) = abc(p, Restart::Permanent);
    let mut inc = incs[0];
    // Three restarts within the period are allowed ...
    for n in 1..=3 {
        restart_plan(s.on_exit(&"a", inc, err("x"), clock.t(n * 100)));
        inc = s.started(&"a", clock.t(n * 100 + 10)).unwrap();
    }
    // ... the fourth is one too many.
    match s.on_exit(&"a", inc, err("last"), clock.t(400)) {
        Decision::Escalate(e) => {
            assert_eq!(e.child, "\"a\"");
            assert_eq!(e.reason, err("last"));
            assert_eq!(e.max_restarts, 3);
        }
        other => panic!("expected escalation, got {other:?}"),
    }
    // A supervisor that gave up restarts nothing more.
    assert_eq!(
        s.on_exit(&"b", incs[1], err("x"), clock.t(401)),
        Decision::Remove
    );
}

#[test]
fn restarts_spread_over_time_do_not_escalate() {
    let p = policy(Strategy::OneForOne).intensity(2, ms(1000));
    let (clock, mut s, incs) = abc(p, Restart::Permanent);
    let mut inc = incs[0];
    for n in 1..=10 {
        let now = n * 600; // at most two restarts in any 1 s window
        restart_plan(s.on_exit(&"a", inc, err("x"), clock.t(now)));
        inc = s.started(&"a", clock.t(now + 1)).unwrap();
    }
}

#[test]
fn intensity_counts_all_children_together() {
    let p = policy(Strategy::OneForOne).intensity(2, ms(1000));
    let (clock, mut s, incs) = abc(p, Restart::Permanent);
    restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    restart_plan(s.on_exit(&"b", incs[1], err("x"), clock.t(2)));
    assert!(matches!(
        s.on_exit(&"c", incs[2], err("x"), clock.t(3)),
        Decision::Escalate(_)
    ));
}

#[test]
fn zero_intensity_escalates_on_the_first_restart() {
    let p = policy(Strategy::OneForOne).intensity(0, ms(1000));
    let (clock, mut s, incs) = abc(p, Restart::Permanent);
    assert!(matches!(
        s.on_exit(&"a", incs[0], err("x"), clock.t(1)),
        Decision::Escalate(_)
    ));
}

#[test]
fn backoff_grows_caps_and_resets_after_a_stable_run() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    let mut inc = incs[0];
    let mut now = 0;
    let mut delays = Vec::new();
    for _ in 0..6 {
        now += 5; // fails 5 ms after each start: never stable
        let (_, _, after, _) = restart_plan(s.on_exit(&"a", inc, err("x"), clock.t(now)));
        delays.push(after);
        now += after.as_millis() as u64;
        inc = s.started(&"a", clock.t(now)).unwrap();
    }
    assert_eq!(delays, vec![ms(10), ms(20), ms(40), ms(80), ms(80), ms(80)]);
    // Runs for the whole reset period, then fails: back to the first delay.
    now += 1000;
    let (_, _, after, _) = restart_plan(s.on_exit(&"a", inc, err("x"), clock.t(now)));
    assert_eq!(after, ms(10));
}

#[test]
fn backoff_is_per_child() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    let a = s.started(&"a", clock.t(11)).unwrap();
    let (_, _, after_a, _) = restart_plan(s.on_exit(&"a", a, err("x"), clock.t(12)));
    let (_, _, after_b, _) = restart_plan(s.on_exit(&"b", incs[1], err("x"), clock.t(13)));
    assert_eq!((after_a, after_b), (ms(20), ms(10)));
}

#[test]
fn a_start_failure_is_a_quick_failure() {
    let (clock, mut s, _) = abc(policy(Strategy::OneForOne), Restart::Transient);
    let mut delays = Vec::new();
    let mut now = 100;
    for _ in 0..4 {
        let inc = s.started(&"a", clock.t(now)).unwrap();
        let d = s.on_exit(
            &"a",
            inc,
            ExitReason::StartFailed("refused".into()),
            clock.t(now),
        );
        let (_, _, after, _) = restart_plan(d);
        delays.push(after);
        now += after.as_millis() as u64;
    }
    assert_eq!(delays, vec![ms(10), ms(20), ms(40), ms(80)]);
}

#[test]
fn a_child_over_its_budget_is_given_up_and_the_rest_live_on() {
    let p = policy(Strategy::OneForOne)
        .unlimited_intensity()
        .child_budget(2, ms(1000));
    let (clock, mut s, incs) = abc(p, Restart::Transient);
    let mut inc = incs[0];
    for n in 1..=2 {
        restart_plan(s.on_exit(&"a", inc, err("refused"), clock.t(n * 100)));
        inc = s.started(&"a", clock.t(n * 100 + 50)).unwrap();
    }
    assert_eq!(
        s.on_exit(&"a", inc, err("refused"), clock.t(300)),
        Decision::GiveUp {
            restarts: 2,
            period: ms(1000)
        }
    );
    assert!(!s.contains(&"a"));
    // The unlimited intensity never escalates the supervisor: b fails 50 times, each time
    // within its own budget (one failure per period).
    let mut b = incs[1];
    for n in 1..=50 {
        let now = 300 + n * 1000;
        restart_plan(s.on_exit(&"b", b, err("x"), clock.t(now)));
        b = s.started(&"b", clock.t(now + 100)).unwrap();
    }
}

#[test]
fn terminate_removes_a_child_once_it_has_stopped() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForAll), Restart::Permanent);
    assert_eq!(s.terminate(&"b"), Ok(Termination::Stopping(incs[1])));
    assert!(s.is_stopping(&"b", incs[1]));
    // Stopped on request: removed, siblings untouched, not a restart.
    assert_eq!(
        s.on_exit(&"b", incs[1], ExitReason::Shutdown, clock.t(1)),
        Decision::Remove
    );
    assert_eq!(s.ids().copied().collect::<Vec<_>>(), vec!["a", "c"]);
    assert_eq!(s.stats().total_restarts, 0);
    assert_eq!(
        s.terminate(&"b"),
        Err(SupervisorError::NoSuchChild("\"b\"".into()))
    );
}

#[test]
fn terminating_a_child_that_waits_for_its_restart_removes_it_at_once() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    let (_, _, _, ticket) = restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    assert_eq!(s.terminate(&"a"), Ok(Termination::Removed));
    assert_eq!(s.due(ticket), Due::Ready(vec![]));
}

#[test]
fn dynamic_add_and_duplicates() {
    let (clock, mut s, _) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    assert_eq!(
        s.add("a", Restart::Permanent),
        Err(SupervisorError::DuplicateChild("\"a\"".into()))
    );
    s.add("d", Restart::Temporary).unwrap();
    assert!(s.is_startable(&"d"));
    s.started(&"d", clock.t(1)).unwrap();
    assert_eq!(
        s.ids().copied().collect::<Vec<_>>(),
        vec!["a", "b", "c", "d"]
    );
    assert!(s.remove(&"d"));
    assert!(!s.remove(&"d"));
}

#[test]
fn shutdown_restarts_nothing_and_drops_waiting_children() {
    let (clock, mut s, incs) = abc(policy(Strategy::OneForOne), Restart::Permanent);
    restart_plan(s.on_exit(&"a", incs[0], err("x"), clock.t(1)));
    assert_eq!(s.begin_shutdown(), vec!["a"]);
    assert_eq!(
        s.on_exit(&"b", incs[1], err("x"), clock.t(2)),
        Decision::Remove
    );
    assert_eq!(
        s.add("z", Restart::Permanent),
        Err(SupervisorError::ShuttingDown)
    );
    assert_eq!(s.ids().copied().collect::<Vec<_>>(), vec!["c"]);
}
