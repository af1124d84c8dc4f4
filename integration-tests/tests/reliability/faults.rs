//! Crash containment through the daemon: the fault-injection build (`SWARMD_FAULTS=point:p,…`)
//! panics at torrents' ticks, the announcer's polls and disk writes; the downloads still
//! complete, restarts are counted, a crash-looping torrent is given up alone, and restarted
//! torrents and announcers announce again.

use std::time::{Duration, Instant};

use swarm_integration_tests::daemon::{brief, is_complete_seed};
use swarm_integration_tests::libtorrent::{seeded, LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;

use super::{start_faulty_daemon, POLL};

/// Lines that are exactly the panic hook's message for an injected fault at `point`.
fn injected(log: &str, point: &str) -> usize {
    let msg = format!("injected fault at {point}");
    log.lines().filter(|l| l.trim() == msg).count()
}

/// The root's `restarting` lines for children whose id starts with `child`
/// (`Torrent(`, `Announcer`, …).
fn root_restarts(log: &str, child: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("swarm_engine::root: restarting") && l.contains(&format!("child={child}"))
        })
        .count()
}

/// Lines of a log that contain `needle`.
fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// `swarmd run` (fault-injection build) with `SWARMD_FAULTS=torrent.tick:0.05,
/// announcer.poll:0.05,disk.write:0.01` and two torrents from two libtorrent seeders: both
/// complete with correct data on their own, the daemon stays up, and `session.stats` counts
/// exactly the restarts the injected panics caused.
///
/// The test never helps: a torrent that stops in `error` fails it at once (a disk-job panic
/// used to stop its torrent), and one that stalls fails it by the deadline (a torrent resumed
/// after an error used to re-dial its peers only after a minute; a torrent whose `Track` was
/// lost with a crashing announcer used to be announced never again).
///
/// The run is kept short (~10 s of transfer): a global service that crashes more than 5 times
/// in 60 s stops the daemon by design, and with an announcer that polls often (it used to poll
/// every 500 ms) 0.05 per poll comes close to that (docs/reliability.md, "Crash containment").
#[test]
fn injected_faults_in_the_daemon_are_contained() {
    const FAULTS: &str = "torrent.tick:0.05,announcer.poll:0.05,disk.write:0.01";
    let env = TestEnv::new("rel-faults");
    let tracker = Opentracker::start(&env, &[]);
    let throttled = LtOptions {
        upload_limit: Some(3 * MIB),
        ..LtOptions::seed()
    };
    let (pa, ta, _sa) = seeded(
        &env,
        &tracker,
        Payload::multi(&env.subdir("seed-a"), "alpha", 24 * MIB + 1_234, 5, 11),
        17,
        throttled.clone(),
    );
    let (pb, tb, _sb) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed-b"), "beta.bin", 24 * MIB + 4_321, 12),
        17,
        throttled,
    );
    let (d, dirs) = start_faulty_daemon(&env, "daemon-faults", FAULTS);
    let events = Events::subscribe(&dirs.socket);
    let ihs = [d.add(&ta.path, None), d.add(&tb.path, None)];
    let took = complete_despite_faults(&d, &ihs);
    verify_download(&ta, &pa, &dirs.downloads);
    verify_download(&tb, &pb, &dirs.downloads);
    d.assert_alive("the faulty run");
    every_injected_panic_is_a_counted_restart(&d, &events, took, FAULTS);
}

/// Waits (90 s at most) until every torrent of `ihs` seeds; one in `error` fails at once.
fn complete_despite_faults(d: &Daemon, ihs: &[String]) -> Duration {
    let (_, took) = wait_for(
        "both torrents to complete",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || {
            d.guard().assert_running();
            let mut states = Vec::new();
            for ih in ihs {
                let v = d.show(ih)?;
                assert_ne!(
                    v["state"],
                    "error",
                    "{ih} stopped by an error under faults: {}\n{}",
                    brief(&v),
                    d.guard().log_tail(40)
                );
                if !is_complete_seed(&v) {
                    states.push(brief(&v));
                }
            }
            if states.is_empty() {
                Ok(())
            } else {
                Err(states.join(" | "))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n--- swarmd log:\n{}", d.guard().log_tail(80)));
    took
}

/// `swarmctl stats --json` counts exactly the restarts the root logged, which are exactly the
/// injected torrent and announcer panics; a disk-job panic never crashes the process.
fn every_injected_panic_is_a_counted_restart(
    d: &Daemon,
    events: &Events,
    took: Duration,
    faults: &str,
) {
    let stats = d.ctl_json(&["stats"]);
    let restarts = &stats["session"]["restarts"];
    let log = d.guard().log_contents();
    let (ticks, polls, writes) = (
        injected(&log, "torrent.tick"),
        injected(&log, "announcer.poll"),
        injected(&log, "disk.write"),
    );
    eprintln!(
        "both complete after {:.1}s; stats.restarts {restarts}; injected panics: torrent.tick \
         {ticks}, announcer.poll {polls}, disk.write {writes}; events: {:?}",
        took.as_secs_f64(),
        events
            .all()
            .iter()
            .filter(|e| e["event"] != "progress")
            .map(|e| format!("{} {}", e["event"], e["message"]))
            .collect::<Vec<_>>()
    );
    for k in ["peers", "torrents", "services"] {
        assert!(
            restarts[k].is_u64(),
            "stats.restarts.{k} missing or not a count: {stats}"
        );
    }
    // Every injected torrent/announcer panic was a restart, and every restart is counted.
    assert_eq!(
        restarts["torrents"].as_u64(),
        Some(root_restarts(&log, "Torrent(") as u64),
        "restarts.torrents does not match the root's log"
    );
    assert_eq!(
        restarts["torrents"].as_u64(),
        Some(ticks as u64),
        "not every torrent.tick panic was a torrent restart"
    );
    assert_eq!(
        restarts["services"].as_u64(),
        Some(polls as u64),
        "not every announcer.poll panic was a service restart"
    );
    assert!(
        ticks + polls + writes > 0,
        "no injected panic at all ({faults}): is the fault-injection build in use?"
    );
    // A disk-job panic is never a process crash: the worker lives on.
    assert_eq!(count_lines(&log, "disk job panicked"), writes);
}

/// `SWARMD_FAULTS=torrent.tick:1.0`: every torrent panics on every tick, a crash loop. Each
/// torrent is given up alone once it used its restart budget (5 in 60 s), with an `error` event;
/// the daemon does not die: the services are never restarted, the control socket answers
/// throughout, a small torrent still completes with correct data between crashes (its verified
/// pieces survive every restart), and the daemon shuts down cleanly afterwards.
///
/// The fault is aimed at every torrent, so the "other" torrent crash-loops too; it completes
/// because it needs less than one tick per incarnation, which is the point: its verified pieces
/// survive each restart. (A fault aimed at one torrent, `point@<info-hash prefix>`, is tested in
/// `restarts::restarted_torrent_keeps_the_users_state_without_a_recheck`.)
#[test]
fn torrent_crash_loop_stays_local() {
    let env = TestEnv::new("rel-crash-loop");
    let tracker = Opentracker::start(&env, &[]);
    // The looping torrent's seeder is slow: it can never finish within a tick.
    let (_pl, tl, sl) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed-l"), "looping.bin", 16 * MIB, 21),
        16,
        LtOptions {
            upload_limit: Some(MIB),
            ..LtOptions::seed()
        },
    );
    let (pc, tc, sc) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed-c"), "small.bin", 256 * KIB + 17, 22),
        15,
        LtOptions::seed(),
    );
    let (d, dirs) = start_faulty_daemon(&env, "daemon-crash-loop", "torrent.tick:1.0");
    let events = Events::subscribe(&dirs.socket);
    let l = d.add(&tl.path, None);
    let c = d.add(&tc.path, None);
    small_torrent_completes_between_crashes(&d, &events, &c, [&sc, &sl]);
    verify_download(&tc, &pc, &dirs.downloads);
    looping_torrent_is_given_up_alone(&d, &events, &l);
    root_still_adds_and_shuts_down(&env, d);
}

/// Peers for every incarnation: the seeders dial the daemon every 0.7 s (a restarted torrent
/// does not hear from the tracker again, see `restarted_torrent_is_announced_again`) until the
/// small torrent `c` completes (40 s at most).
fn small_torrent_completes_between_crashes(
    d: &Daemon,
    events: &Events,
    c: &str,
    seeders: [&LibtorrentPeer; 2],
) {
    let mut last_dial = Instant::now() - Duration::from_secs(10);
    wait_for(
        "the small torrent to complete between crashes",
        Duration::from_secs(40),
        Duration::from_millis(50),
        || {
            d.guard().assert_running();
            if !events.of("completed", c).is_empty() {
                return Ok(());
            }
            if last_dial.elapsed() > Duration::from_millis(700) {
                last_dial = Instant::now();
                for s in seeders {
                    s.connect(d.addr());
                }
            }
            Err(format!("{:?}", d.show(c)))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n--- swarmd log:\n{}", d.guard().log_tail(60)));
}

/// The crash-looping torrent `l` is given up (an `error` event saying so) after using its
/// budget, it stays listed in `error` with the reason, no service was restarted for it, and
/// `resume` starts it again.
fn looping_torrent_is_given_up_alone(d: &Daemon, events: &Events, l: &str) {
    let gave_up = |ih: &str| {
        events
            .of("error", ih)
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("gave up"))
    };
    wait_until(
        "the crash-looping torrent to be given up",
        Duration::from_secs(40),
        POLL,
        || {
            d.assert_alive("a torrent crash loop");
            gave_up(l)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; events {:?}\n{}", events.all(), d.guard().log_tail(40)));
    // It stays listed, in `error` with the reason, until the user starts it again.
    let shown = d
        .show(l)
        .expect("a torrent that was given up is no longer shown");
    assert_eq!(shown["state"], "error", "{shown}");
    let reason = shown["error"].as_str().unwrap_or("");
    assert!(reason.contains("gave up after repeated crashes"), "{shown}");
    let listed = d.ctl_json(&["list"]);
    assert!(
        listed.to_string().contains(l),
        "a torrent that was given up is not listed: {listed}"
    );
    let stats = d.rpc("session.stats", None).unwrap();
    eprintln!("after the crash loop: {stats}");
    assert_eq!(
        stats["restarts"]["services"], 0,
        "a torrent crash loop restarted a service: {stats}"
    );
    assert!(
        stats["restarts"]["torrents"].as_u64() >= Some(5),
        "the looping torrent was given up before using its budget: {stats}"
    );
    // `resume` starts it again: it runs (and, with the fault still on, crashes) again.
    let restarts =
        |d: &Daemon| d.rpc("session.stats", None).unwrap()["restarts"]["torrents"].as_u64();
    let before = restarts(d);
    d.ctl_ok(&["resume", l]);
    wait_until(
        "the resumed torrent to run (and crash) again",
        Duration::from_secs(30),
        POLL,
        || restarts(d) > before,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(40)));
}

/// The root is healthy after a crash loop: it still adds torrents and shuts down cleanly.
fn root_still_adds_and_shuts_down(env: &TestEnv, d: Daemon) {
    let extra = Payload::single(&env.subdir("extra"), "extra.bin", 64 * KIB, 23);
    let te = extra.make_torrent(&env.path().join("extra.torrent"), 15, &[]);
    let e = d.add(&te.path, None);
    assert!(d.show(&e).is_ok());
    d.ctl_ok(&["shutdown"]);
    let st = d.wait_exit(Duration::from_secs(20));
    assert!(st.success(), "swarmd exited with {st} after the crash loop");
}

/// A panicking disk job (`disk.write`) costs only the piece it was writing: the piece is fetched
/// again and the torrent never stops.
#[test]
fn disk_job_panic_costs_only_its_piece() {
    let env = TestEnv::new("rel-disk-panic");
    let tracker = Opentracker::start(&env, &[]);
    let (p, t, _s) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed"), "disk.bin", 8 * MIB, 31),
        15,
        LtOptions::seed(),
    );
    let (d, dirs) = start_faulty_daemon(&env, "daemon-disk-panic", "disk.write:0.05");
    let ih = d.add(&t.path, None);
    d.wait_torrent(
        &ih,
        "completion despite disk-job panics",
        Duration::from_secs(60),
        |v| {
            assert_ne!(v["state"], "error", "the torrent stopped: {}", brief(v));
            is_complete_seed(v)
        },
    );
    verify_download(&t, &p, &dirs.downloads);
    assert!(injected(&d.guard().log_contents(), "disk.write") > 0);
}

/// After a torrent restarts (a crash), the trackers hear from it again: every incarnation
/// announces `started` (the crashed one's `stopping` untracked it), so the peers they name reach
/// the new incarnation.
#[test]
fn restarted_torrent_is_announced_again() {
    let env = TestEnv::new("rel-retrack");
    let fake = FakeHttpTracker::start();
    let payload = Payload::single(&env.subdir("seed"), "retrack.bin", MIB, 41);
    let t = payload.make_torrent(
        &env.path().join("retrack.torrent"),
        15,
        &[&fake.announce_url()],
    );
    let (d, _dirs) = start_faulty_daemon(&env, "daemon-retrack", "torrent.tick:1.0");
    let ih = d.add(&t.path, None);
    // An idle torrent ticks every 5 s, a checking one every second: the first incarnation
    // crashes after ~5 s, the next ones ~1 s after their start.
    let (incarnations, _) = wait_for(
        "three incarnations of the torrent",
        Duration::from_secs(20),
        POLL,
        || {
            d.guard().assert_running();
            let n = 1 + root_restarts(&d.guard().log_contents(), "Torrent(");
            if n >= 3 {
                Ok(n)
            } else {
                Err(format!("{n} so far"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    // Each incarnation's announce goes out right after its (instant) check.
    std::thread::sleep(Duration::from_millis(500));
    let announces = fake
        .announces()
        .iter()
        .filter(|a| a.info_hash() == Some(t.info_hash) && a.event() == Some("started"))
        .count();
    eprintln!("{incarnations}+ incarnations of {ih}, {announces} `started` announces");
    assert!(
        announces >= incarnations,
        "{incarnations} incarnations of the torrent but only {announces} `started` announces: \
         restarted incarnations are not announced"
    );
}

/// After the Announcer restarts (a crash), the torrents it tracked are announced again, by the
/// torrents themselves: a torrent repeats its `Track` when it finds a new incarnation of the
/// announcer (the root tells every torrent once the new one started; the torrents also check
/// every 10 s of their ticks). The announcer crashes on the poll that the
/// torrent's first `Track` asks for (`announcer.poll@<its prefix>:1.0:1`: only polls for this
/// torrent, only once), so that `Track` is lost with it. Nothing else tells the new incarnation
/// about the torrent: no `reannounce`, which would register the torrent by itself.
#[test]
fn restarted_announcer_announces_again() {
    let env = TestEnv::new("rel-announcer-restart");
    let fake = FakeHttpTracker::start();
    fake.set_interval(3600);
    // Its data is not there: the torrent downloads without peers, and ticks every 5 s.
    let payload = Payload::single(&env.subdir("seed"), "ann.bin", 256 * KIB, 42);
    let t = payload.make_torrent(&env.path().join("ann.torrent"), 15, &[&fake.announce_url()]);
    let faults = format!("announcer.poll@{}:1.0:1", &t.info_hash.to_hex()[..8]);
    let (d, _dirs) = start_faulty_daemon(&env, "daemon-announcer", &faults);
    d.add(&t.path, None);
    wait_until(
        "the announcer's restart",
        Duration::from_secs(20),
        POLL,
        || {
            d.guard().assert_running();
            root_restarts(&d.guard().log_contents(), "Announcer") == 1
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    let announces = || {
        fake.announces()
            .iter()
            .filter(|a| a.info_hash() == Some(t.info_hash))
            .count()
    };
    assert_eq!(announces(), 0, "the crashed announcer announced");
    wait_until(
        "an announce through the restarted announcer",
        Duration::from_secs(25),
        POLL,
        || {
            d.guard().assert_running();
            announces() > 0
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}: the torrent never told the new announcer\n{}",
            d.guard().log_tail(30)
        )
    });
    assert_eq!(injected(&d.guard().log_contents(), "announcer.poll"), 1);
}
