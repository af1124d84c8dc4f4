//! The ready-made `Supervisor` actor with real child actors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{eventually, ms, recording_link, worker, Boom, Mode, Ping, Probe, Quit, Worker};
use crate::{
    ChildHandle, ChildSpec, ChildState, ExitReason, GetStats, Restart, RestartPolicy, Shutdown,
    StartChild, Supervisor, SupervisorError, SupervisorStats, TerminateChild,
};

type Sup = Addr<Supervisor<&'static str>>;

/// Fast backoff, generous intensity: tests that want escalation set their own.
fn fast(policy: RestartPolicy) -> RestartPolicy {
    policy
        .intensity(100, Duration::from_secs(10))
        .backoff(ms(5), ms(50), Duration::from_secs(5))
        .shutdown_timeout(ms(500))
}

async fn stats(sup: &Sup) -> SupervisorStats<&'static str> {
    sup.send(GetStats::new()).await.unwrap()
}

fn abc(probe: &Probe, restart: Restart) -> Vec<ChildSpec<&'static str>> {
    ["a", "b", "c"]
        .into_iter()
        .map(|n| worker(n, restart, Mode::Healthy, probe))
        .collect()
}

fn last_starts(probe: &Probe, n: usize) -> Vec<String> {
    let starts: Vec<_> = probe
        .events()
        .into_iter()
        .filter(|e| e.starts_with("start"))
        .collect();
    starts[starts.len() - n..].to_vec()
}

#[actix::test]
async fn a_panic_is_a_crash_reported_with_its_message_and_siblings_live() {
    let probe = Probe::default();
    let sup = Supervisor::new(
        "t",
        fast(RestartPolicy::one_for_one()),
        abc(&probe, Restart::Permanent),
    )
    .start();
    eventually("children started", || probe.count("start c") == 1).await;
    let b = probe.addr("b");

    probe.addr("a").do_send(Boom);
    eventually("a restarted", || probe.count("start a") == 2).await;

    // stopped() ran while unwinding, and the report carried the panic message.
    assert_eq!(probe.count("stop a"), 1);
    let s = stats(&sup).await;
    let a = s.child(&"a").unwrap();
    assert_eq!(a.restarts, 1);
    match &a.last_exit {
        Some(ExitReason::Panic(msg)) => assert!(msg.starts_with("boom in a (at "), "{msg}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    // The siblings, on the same thread, never noticed.
    assert_eq!(b.send(Ping).await.unwrap(), "b");
    assert_eq!(probe.count("start b"), 1);
    // The restarted child is a new, working actor.
    assert_eq!(probe.addr("a").send(Ping).await.unwrap(), "a");
    assert_eq!(s.total_restarts, 1);
    assert_eq!(s.running(), 3);
}

#[actix::test]
async fn one_for_all_restarts_every_child_in_order() {
    let probe = Probe::default();
    let _sup = Supervisor::new(
        "t",
        fast(RestartPolicy::one_for_all()),
        abc(&probe, Restart::Permanent),
    )
    .start();
    eventually("children started", || probe.count("start c") == 1).await;
    probe.addr("b").do_send(Quit(Some("protocol violation")));
    eventually("all restarted", || probe.count("start c") == 2).await;
    assert_eq!(last_starts(&probe, 3), ["start a", "start b", "start c"]);
    // a and c were stopped before anything was started again.
    let events = probe.events();
    let first_restart = events.iter().rposition(|e| e == "start a").unwrap();
    for stop in ["stop a", "stop b", "stop c"] {
        let at = events.iter().position(|e| e == stop).unwrap();
        assert!(at < first_restart, "{stop} after the restart: {events:?}");
    }
}

#[actix::test]
async fn rest_for_one_restarts_the_failed_child_and_the_later_ones() {
    let probe = Probe::default();
    let sup = Supervisor::new(
        "t",
        fast(RestartPolicy::rest_for_one()),
        abc(&probe, Restart::Permanent),
    )
    .start();
    eventually("children started", || probe.count("start c") == 1).await;
    probe.addr("b").do_send(Boom);
    eventually("b and c restarted", || probe.count("start c") == 2).await;
    assert_eq!(last_starts(&probe, 2), ["start b", "start c"]);
    assert_eq!(probe.count("start a"), 1);
    let s = stats(&sup).await;
    assert_eq!(
        [0, 1, 1],
        ["a", "b", "c"].map(|id| s.child(&id).unwrap().restarts)
    );
}

#[actix::test]
async fn restart_types_in_practice() {
    let probe = Probe::default();
    let specs = vec![
        worker("perm", Restart::Permanent, Mode::Healthy, &probe),
        worker("trans", Restart::Transient, Mode::Healthy, &probe),
        worker("trans-err", Restart::Transient, Mode::Healthy, &probe),
        worker("temp", Restart::Temporary, Mode::Healthy, &probe),
    ];
    let sup = Supervisor::new("t", fast(RestartPolicy::one_for_one()), specs).start();
    eventually("children started", || probe.count("start temp") == 1).await;
    probe.addr("perm").do_send(Quit(None));
    probe.addr("trans").do_send(Quit(None));
    probe.addr("trans-err").do_send(Quit(Some("reset by peer")));
    probe.addr("temp").do_send(Quit(Some("reset by peer")));
    eventually("perm restarted", || probe.count("start perm") == 2).await;
    eventually("trans-err restarted", || {
        probe.count("start trans-err") == 2
    })
    .await;
    actix_rt::time::sleep(ms(100)).await; // ample time for wrong restarts to show
    assert_eq!(probe.count("start trans"), 1);
    assert_eq!(probe.count("start temp"), 1);
    let s = stats(&sup).await;
    let ids: Vec<_> = s.children.iter().map(|c| c.id).collect();
    assert_eq!(ids, ["perm", "trans-err"]);
}

#[actix::test]
async fn a_child_failing_in_started_is_throttled_by_backoff() {
    let probe = Probe::default();
    let policy = RestartPolicy::one_for_one().unlimited_intensity().backoff(
        ms(20),
        ms(200),
        Duration::from_secs(10),
    );
    let specs = vec![
        worker("dialer", Restart::Permanent, Mode::FailInStart, &probe),
        worker("other", Restart::Permanent, Mode::Healthy, &probe),
    ];
    let sup = Supervisor::new("t", policy, specs).start();
    let began = Instant::now();
    actix_rt::time::sleep(ms(1000)).await;
    // Delays 20, 40, 80, 160, 200, 200 ... ms: about 8 starts in a second, not millions.
    let starts = probe.start_times("dialer");
    assert!((4..=10).contains(&starts.len()), "{} starts", starts.len());
    // Each wait at least as long as the backoff says (lower bounds only: never flaky).
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, min) in gaps.iter().zip([20, 40, 80, 160, 200, 200, 200, 200, 200]) {
        assert!(*gap >= ms(min), "gaps {gaps:?}");
    }
    // The thread stayed responsive throughout.
    assert_eq!(probe.addr("other").send(Ping).await.unwrap(), "other");
    let s = stats(&sup).await;
    match &s.child(&"dialer").unwrap().last_exit {
        Some(ExitReason::Error(e)) => assert_eq!(e, "connection refused"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(began.elapsed() < Duration::from_secs(2));
}

#[actix::test]
async fn exceeding_the_intensity_stops_the_children_and_escalates() {
    let probe = Probe::default();
    let policy = fast(RestartPolicy::one_for_one()).intensity(2, Duration::from_secs(10));
    let specs = vec![
        worker("stable", Restart::Permanent, Mode::Healthy, &probe),
        worker("flaky", Restart::Permanent, Mode::FailInStart, &probe),
    ];
    let (link, seen) = recording_link();
    let sup = Supervisor::new("t", policy, specs).linked(link).start();
    eventually("supervisor gave up", || seen.lock().unwrap().is_some()).await;
    match seen.lock().unwrap().clone().unwrap() {
        ExitReason::Escalated(e) => {
            assert_eq!(e.child, "\"flaky\"");
            assert_eq!(e.reason, ExitReason::Error("connection refused".into()));
            assert_eq!(e.max_restarts, 2);
        }
        other => panic!("expected an escalation, got {other:?}"),
    }
    assert_eq!(probe.count("start flaky"), 3); // first start + 2 restarts
    eventually("siblings stopped", || probe.count("stop stable") == 1).await;
    assert!(!sup.connected() || sup.send(GetStats::new()).await.is_err());
}

#[actix::test]
async fn a_restart_whose_start_function_fails_counts_as_a_crash() {
    let probe = Probe::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (probe2, calls2) = (probe.clone(), calls.clone());
    let listener = ChildSpec::new("listener", Restart::Permanent, move |link| {
        // The first bind works; after the crash the port stays taken.
        if calls2.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(ChildHandle::new(Worker::spawn(
                "listener",
                Mode::Healthy,
                probe2.clone(),
                link,
            )))
        } else {
            Err("address in use".to_owned())
        }
    });
    let policy = fast(RestartPolicy::one_for_one()).intensity(3, Duration::from_secs(10));
    let (link, seen) = recording_link();
    let _sup = Supervisor::new("t", policy, vec![listener])
        .linked(link)
        .start();
    eventually("started", || probe.count("start listener") == 1).await;
    probe.addr("listener").do_send(Boom);
    eventually("supervisor gave up", || seen.lock().unwrap().is_some()).await;
    match seen.lock().unwrap().clone().unwrap() {
        ExitReason::Escalated(e) => {
            assert_eq!(e.reason, ExitReason::StartFailed("address in use".into()))
        }
        other => panic!("expected an escalation, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4); // first start + 3 failed restarts
}

#[actix::test]
async fn a_static_child_that_cannot_start_fails_the_supervisor() {
    let bad = ChildSpec::new("bad", Restart::Permanent, |_| {
        Err("no such device".to_owned())
    });
    let (link, seen) = recording_link();
    let _sup = Supervisor::new("t", fast(RestartPolicy::one_for_one()), vec![bad])
        .linked(link)
        .start();
    eventually("supervisor failed", || seen.lock().unwrap().is_some()).await;
    let reason = seen.lock().unwrap().clone().unwrap();
    assert!(
        matches!(&reason, ExitReason::StartFailed(e) if e.contains("no such device")),
        "{reason:?}"
    );
}

#[actix::test]
async fn children_are_added_and_removed_at_run_time() {
    let probe = Probe::default();
    let sup = Supervisor::new("root", fast(RestartPolicy::one_for_one()), vec![]).start();
    let d = worker("d", Restart::Permanent, Mode::Healthy, &probe);
    sup.send(StartChild(d)).await.unwrap().unwrap();
    let again = worker("d", Restart::Permanent, Mode::Healthy, &probe);
    assert_eq!(
        sup.send(StartChild(again)).await.unwrap(),
        Err(SupervisorError::DuplicateChild("\"d\"".into()))
    );
    let bad = ChildSpec::new("e", Restart::Permanent, |_| Err("bad torrent".to_owned()));
    assert!(matches!(
        sup.send(StartChild(bad)).await.unwrap(),
        Err(SupervisorError::StartFailed { .. })
    ));
    let s = stats(&sup).await;
    assert_eq!(s.children.len(), 1);
    assert_eq!(s.child(&"d").unwrap().state, ChildState::Running);
    eventually("d started", || probe.count("start d") == 1).await;

    // Answers once the child has stopped; it is not restarted.
    sup.send(TerminateChild("d")).await.unwrap().unwrap();
    assert_eq!(probe.count("stop d"), 1);
    assert!(stats(&sup).await.children.is_empty());
    assert_eq!(
        sup.send(TerminateChild("d")).await.unwrap(),
        Err(SupervisorError::NoSuchChild("\"d\"".into()))
    );
    actix_rt::time::sleep(ms(50)).await;
    assert_eq!(probe.count("start d"), 1);
}

#[actix::test]
async fn shutdown_stops_children_in_reverse_order_and_waits() {
    let probe = Probe::default();
    let (link, seen) = recording_link();
    let sup = Supervisor::new(
        "t",
        fast(RestartPolicy::one_for_one()),
        abc(&probe, Restart::Permanent),
    )
    .linked(link)
    .start();
    eventually("children started", || probe.count("start c") == 1).await;
    sup.send(Shutdown).await.unwrap();
    let stops: Vec<_> = probe
        .events()
        .into_iter()
        .filter(|e| e.starts_with("stop"))
        .collect();
    assert_eq!(stops, ["stop c", "stop b", "stop a"]);
    eventually("supervisor reported", || seen.lock().unwrap().is_some()).await;
    assert_eq!(seen.lock().unwrap().clone(), Some(ExitReason::Shutdown));
    assert_eq!(probe.count("start a"), 1); // nothing was restarted
}

#[actix::test]
async fn shutdown_abandons_a_child_that_does_not_stop() {
    let probe = Probe::default();
    let specs = vec![
        worker("a", Restart::Permanent, Mode::Healthy, &probe),
        worker("stubborn", Restart::Permanent, Mode::Stubborn, &probe),
    ];
    let policy = fast(RestartPolicy::one_for_one()).shutdown_timeout(ms(100));
    let sup = Supervisor::new("t", policy, specs).start();
    eventually("children started", || probe.count("start stubborn") == 1).await;
    let began = Instant::now();
    sup.send(Shutdown).await.unwrap();
    let took = began.elapsed();
    assert!(took >= ms(100) && took < ms(1000), "{took:?}");
    assert_eq!(probe.count("stop a"), 1);
}

/// Root → torrent supervisor → peer: the torrent supervisor gives up, the root restarts
/// it (and with it a fresh peer); the root's other child is untouched.
#[actix::test]
async fn a_nested_supervisor_that_gives_up_is_restarted_by_its_parent() {
    let probe = Probe::default();
    let probe2 = probe.clone();
    let torrent = ChildSpec::new("torrent", Restart::Permanent, move |link| {
        let peer = worker("peer", Restart::Permanent, Mode::Healthy, &probe2);
        let policy = fast(RestartPolicy::one_for_one()).intensity(0, Duration::from_secs(10));
        let sup = Supervisor::new("torrent", policy, vec![peer]).linked(link);
        Ok(ChildHandle::new(sup.start()))
    })
    .with_shutdown_timeout(Duration::from_secs(2));
    let specs = vec![
        worker("listener", Restart::Permanent, Mode::Healthy, &probe),
        torrent,
    ];
    let root = Supervisor::new("root", fast(RestartPolicy::one_for_one()), specs).start();
    eventually("peer started", || probe.count("start peer") == 1).await;

    probe.addr("peer").do_send(Boom);
    eventually("peer back", || probe.count("start peer") == 2).await;
    let s = stats(&root).await;
    let t = s.child(&"torrent").unwrap();
    assert_eq!(t.restarts, 1);
    assert!(
        matches!(&t.last_exit, Some(ExitReason::Escalated(e)) if matches!(e.reason, ExitReason::Panic(_)))
    );
    assert_eq!(s.child(&"listener").unwrap().restarts, 0);
    assert_eq!(probe.count("start listener"), 1);

    // Orderly shutdown reaches through the nested supervisor.
    root.send(Shutdown).await.unwrap();
    let stops: Vec<_> = probe
        .events()
        .into_iter()
        .filter(|e| e.starts_with("stop"))
        .collect();
    assert_eq!(stops, ["stop peer", "stop peer", "stop listener"]);
}

#[actix::test]
async fn a_child_on_another_arbiter_is_supervised_across_threads() {
    let probe = Probe::default();
    let arbiter = Arbiter::new();
    let (handle, probe2) = (arbiter.handle(), probe.clone());
    let remote = ChildSpec::new("remote", Restart::Permanent, move |link| {
        let probe = probe2.clone();
        let addr = Worker::start_in_arbiter(&handle, move |_| Worker {
            link,
            name: "remote",
            mode: Mode::Healthy,
            probe,
        });
        Ok(ChildHandle::new(addr))
    });
    let sup = Supervisor::new("t", fast(RestartPolicy::one_for_one()), vec![remote]).start();
    eventually("remote started", || probe.count("start remote") == 1).await;
    probe.addr("remote").do_send(Boom);
    eventually("remote restarted", || probe.count("start remote") == 2).await;
    let s = stats(&sup).await;
    assert!(matches!(
        &s.child(&"remote").unwrap().last_exit,
        Some(ExitReason::Panic(m)) if m.contains("boom in remote")
    ));
    sup.send(Shutdown).await.unwrap();
    assert_eq!(probe.count("stop remote"), 2);
    arbiter.stop();
}
