//! Reliability: what swarmd promises when things go wrong, end to end with the real binaries
//! (`docs/reliability.md` states the guarantees and names these tests):
//!
//! 1. crash containment through the daemon (fault-injection build): torrents, the announcer and
//!    disk jobs panic at random and the downloads still complete; a torrent that crashes in a
//!    loop is given up alone;
//! 2. hostile peers: raw-TCP peers of our own that break the wire protocol in every way we could
//!    think of, against a `swarmd download --seed` seeder that must stay up, keep serving and
//!    keep its memory bounded;
//! 3. hostile files and requests: the hostile `.torrent` corpus of swarm-wire through the watch
//!    directory and `swarmctl add`, hostile magnet links, hostile control-socket requests, and a
//!    symlink planted in the save directory;
//! 4. a crash-resume soak: `kill -9` at random moments of a download, again and again;
//! 5. a full disk (a small tmpfs; needs root);
//! 6. privilege and exposure: the control socket's mode, no TCP control port, the unit file.
//!
//! Everything runs on 127.0.0.1 with the DHT off. A missing tool FAILS a test, never skips it.
//! The soak is tunable for a longer run: `SWARM_IT_SOAK_ROUNDS` (default 20) and
//! `SWARM_IT_SOAK_SEED` (the seed of the kill times; printed by every run).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{
    self as testd, brief, is_complete_seed, rpc, DaemonConfig, DaemonDirs as Dirs,
};
use swarm_integration_tests::libtorrent::{seeded, LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{fault_swarmd_bin, workspace_root};
use swarm_integration_tests::swarmd::{swarmctl_code as ctl, swarmctl_ok as ctl_ok};

const RUST_LOG: &str = "info,swarmd=debug,swarm_engine=debug";
const POLL: Duration = Duration::from_millis(100);

// -----------------------------------------------------------------------------------------------
// Helpers: a daemon with its config, the control socket, events
// -----------------------------------------------------------------------------------------------

/// Writes `<env>/swarmd.toml` (see [`DaemonConfig`]: a watch directory rescanned every second,
/// `stopped` announces bounded to 1 s, the directories made now); `extra` is appended.
fn write_config(env: &TestEnv, port: u16, extra: &str) -> Dirs {
    DaemonConfig {
        watch_rescan_secs: Some(1),
        stopped_timeout_secs: 1,
        make_dirs: true,
        extra,
        ..DaemonConfig::new("integration-tests/tests/reliability.rs")
    }
    .write(env, port)
}

/// A `swarmd --config … run` process.
struct Daemon {
    proc: SwarmdProcess,
    dirs: Dirs,
    port: u16,
}

impl Daemon {
    fn start(env: &TestEnv, dirs: &Dirs, port: u16, name: &str) -> Daemon {
        Self::start_with(env, dirs, port, Swarmd::command(&[] as &[&str]).name(name))
    }

    /// Spawns `builder --config … run` and waits until the control socket answers.
    fn start_with(env: &TestEnv, dirs: &Dirs, port: u16, builder: Swarmd) -> Daemon {
        let dirs = Dirs {
            port,
            ..dirs.clone()
        };
        Daemon {
            proc: testd::start(env, &dirs, builder, RUST_LOG),
            dirs,
            port,
        }
    }

    fn guard(&self) -> &ChildGuard {
        self.proc.guard()
    }

    /// The peer port's address.
    fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    fn rpc(&self, method: &str, params: Option<Value>) -> Result<Value, String> {
        rpc(&self.dirs.socket, method, params)
    }

    fn show(&self, ih: &str) -> Result<Value, String> {
        self.rpc("torrent.show", Some(json!({ "torrent": ih })))
    }

    /// Panics with the log unless the daemon runs and answers on its control socket.
    #[track_caller]
    fn assert_alive(&self, after: &str) {
        self.guard().assert_running();
        if let Err(e) = self.rpc("daemon.info", None) {
            panic!(
                "swarmd no longer answers after {after}: {e}\n{}",
                self.guard().log_tail(40)
            );
        }
    }

    /// Polls `torrent.show` until `pred` holds; panics with the last state and the log.
    fn wait_torrent(
        &self,
        ih: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        testd::wait_torrent(&self.proc, &self.dirs.socket, ih, what, timeout, pred)
    }

    /// Adds a `.torrent` through the control socket (as `swarmctl add` does, by content).
    fn add(&self, torrent: &Path, save_dir: Option<&Path>) -> String {
        let bytes = fs::read(torrent).unwrap();
        let mut params = json!({ "metainfo": base64(&bytes) });
        if let Some(d) = save_dir {
            params["save_dir"] = json!(d.display().to_string());
        }
        let v = self
            .rpc("torrent.add", Some(params))
            .unwrap_or_else(|e| panic!("torrent.add {}: {e}", torrent.display()));
        v["info_hash"].as_str().unwrap().to_string()
    }
}

/// A one-line summary of a `torrent.show` result, for wait messages.
/// Standard base64 with padding (what `torrent.add` takes).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The daemon's event stream (`events.subscribe`), collected by a thread.
struct Events {
    seen: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Events {
    fn subscribe(socket: &Path) -> Events {
        let mut stream = UnixStream::connect(socket).expect("connecting for events");
        stream
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0u8; 8192];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue
                        }
                        Err(_) => break,
                    }
                    while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                            if v["method"] == "event" {
                                seen.lock().unwrap().push(v["params"].clone());
                            }
                        }
                    }
                }
            })
        };
        Events {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn all(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Events of kind `kind` ("error", "completed", …) for `ih`.
    fn of(&self, kind: &str, ih: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|e| e["event"] == kind && e["info_hash"] == ih)
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn verify(torrent: &Torrent, payload: &Payload, save_dir: &Path) {
    torrent
        .verify_dir(save_dir)
        .unwrap_or_else(|e| panic!("piece check: {e}"));
    compare_paths(&payload.root(), &save_dir.join(&payload.name))
        .unwrap_or_else(|e| panic!("byte comparison with the seeder's copy: {e}"));
}

/// Resident set size of a process in bytes (`VmRSS` in /proc/PID/status).
fn rss_bytes(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Lines of a log that contain `needle`.
fn count_lines(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A tiny xorshift generator: reproducible randomness from a printed seed.
struct Rng(u64);

impl Rng {
    fn from_env(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    ^ u64::from(std::process::id())
            });
        eprintln!("{var}={seed}");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi)`.
    fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// -----------------------------------------------------------------------------------------------
// 1. Fault injection through the daemon
// -----------------------------------------------------------------------------------------------

/// A second libtorrent seeder for `torrent` (data in `dir`) that dials `daemon` as soon as it
/// starts: a fresh peer for a torrent that was resumed after an error. (The torrent itself
/// re-dials the peers it dropped only after 60 s, see `resume_after_error_redials_at_once`, and a
/// libtorrent seeder told to `connect` to a peer that just dropped it does not always do so.)
fn dialling_seeder(
    env: &TestEnv,
    torrent: &Torrent,
    dir: &Path,
    daemon: SocketAddr,
) -> LibtorrentPeer {
    LibtorrentPeer::spawn(
        env,
        &torrent.path,
        dir,
        LtOptions {
            connect: vec![daemon],
            no_announce: true,
            name: Some(format!("lt-redial-{}", torrent.name)),
            ..LtOptions::seed()
        },
    )
}

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

/// `swarmd run` (fault-injection build) with `SWARMD_FAULTS=torrent.tick:0.05,
/// announcer.poll:0.05,disk.write:0.01` and two torrents from two libtorrent seeders: both
/// complete with correct data, the daemon stays up, and `session.stats` counts exactly the
/// restarts the injected panics caused.
///
/// The run is kept short (~10 s of transfer): a global service that crashes more than 5 times
/// in 60 s stops the daemon by design, and with an announcer that polls often (it used to poll
/// every 500 ms) 0.05 per poll comes close to that (docs/reliability.md, "Crash containment").
///
/// WORKAROUNDS (bugs, see docs/reliability.md "Known bugs"; each is counted and printed, and an
/// ignored test checks the intended behaviour):
/// * bug 1: a panicking disk job puts its torrent into `error` ("disk worker crashed"): the test
///   resumes it, as an operator would (`disk_job_panic_costs_only_its_piece`);
/// * bug 3: a torrent resumed after an error re-dials its peers only after 60 s: a fresh seeder
///   dials in (`resume_after_error_redials_at_once`);
/// * bug 4: a torrent whose `Track` was lost with a crashing announcer is never announced: after
///   5 s without peers or progress a fresh seeder dials in (`restarted_announcer_announces_again`).
#[test]
fn injected_faults_in_the_daemon_are_contained() {
    const FAULTS: &str = "torrent.tick:0.05,announcer.poll:0.05,disk.write:0.01";
    let bin = fault_swarmd_bin();
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

    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start_with(
        &env,
        &dirs,
        port,
        Swarmd::command(&[] as &[&str])
            .name("daemon-faults")
            .bin(&bin)
            .env("SWARMD_FAULTS", FAULTS)
            .env("RUST_BACKTRACE", "0"),
    );
    let events = Events::subscribe(&dirs.socket);
    let (a, b) = (d.add(&ta.path, None), d.add(&tb.path, None));
    let (mut resumed, mut stalled) = (0, 0);
    let mut fresh_seeders = Vec::new();
    // Per torrent: (have_bytes, when it last changed, when we last helped it).
    let mut progress: BTreeMap<String, (u64, Instant, Instant)> = BTreeMap::new();
    let (_, took) = wait_for(
        "both torrents to complete",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || {
            d.guard().assert_running();
            let mut states = Vec::new();
            let mut done = 0;
            for (ih, t, dir) in [(&a, &ta, &pa.dir), (&b, &tb, &pb.dir)] {
                let v = d.show(ih)?;
                let have = v["have_bytes"].as_u64().unwrap_or(0);
                let now = Instant::now();
                let p = progress.entry(ih.to_string()).or_insert((have, now, now));
                if have != p.0 {
                    *p = (have, now, p.2);
                }
                if is_complete_seed(&v) {
                    done += 1;
                } else if v["state"] == "error" {
                    let msg = v["error"].as_str().unwrap_or_default();
                    assert!(
                        msg.contains("disk worker crashed"),
                        "{ih} stopped by an error the faults do not explain: {}",
                        brief(&v)
                    );
                    // WORKAROUND for bugs 1 and 3 of docs/reliability.md.
                    d.rpc("torrent.resume", Some(json!({ "torrent": ih })))?;
                    fresh_seeders.push(dialling_seeder(&env, t, dir, d.addr()));
                    p.2 = now;
                    resumed += 1;
                } else if v["state"] == "downloading"
                    && v["peers"] == 0
                    && p.1.elapsed() > Duration::from_secs(5)
                    && p.2.elapsed() > Duration::from_secs(10)
                {
                    // WORKAROUND for bug 4: its `Track` went down with a crashing announcer
                    // (the handler polls, and the poll panics), so no tracker names a peer.
                    fresh_seeders.push(dialling_seeder(&env, t, dir, d.addr()));
                    p.2 = now;
                    stalled += 1;
                }
                states.push(brief(&v));
            }
            if done == 2 {
                Ok(())
            } else {
                Err(states.join(" | "))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n--- swarmd log:\n{}", d.guard().log_tail(80)));
    verify(&ta, &pa, &dirs.downloads);
    verify(&tb, &pb, &dirs.downloads);
    d.assert_alive("the faulty run");

    let stats: Value = serde_json::from_str(&ctl_ok(&env, &["stats", "--json"]))
        .expect("swarmctl stats --json prints JSON");
    let restarts = &stats["session"]["restarts"];
    let log = d.guard().log_contents();
    let (ticks, polls, writes) = (
        injected(&log, "torrent.tick"),
        injected(&log, "announcer.poll"),
        injected(&log, "disk.write"),
    );
    eprintln!(
        "both complete after {:.1}s; stats.restarts {restarts}; injected panics: torrent.tick \
         {ticks}, announcer.poll {polls}, disk.write {writes}; torrents resumed after a disk-job \
         panic (workaround, bugs 1 and 3): {resumed}; torrents never announced because the \
         announcer crashed (workaround, bug 4): {stalled}; events: {:?}",
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
        "no injected panic at all ({FAULTS}): is the fault-injection build in use?"
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
/// The fault points are global (no per-torrent rate), so the "other" torrent crash-loops too; it
/// completes because it needs less than one tick per incarnation. docs/reliability.md proposes a
/// per-torrent fault filter for the engine.
#[test]
fn torrent_crash_loop_stays_local() {
    let bin = fault_swarmd_bin();
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
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start_with(
        &env,
        &dirs,
        port,
        Swarmd::command(&[] as &[&str])
            .name("daemon-crash-loop")
            .bin(&bin)
            .env("SWARMD_FAULTS", "torrent.tick:1.0")
            .env("RUST_BACKTRACE", "0"),
    );
    let events = Events::subscribe(&dirs.socket);
    let l = d.add(&tl.path, None);
    let c = d.add(&tc.path, None);
    // Peers for every incarnation: the seeders dial the daemon (a restarted torrent does not
    // hear from the tracker again, see `restarted_torrent_is_announced_again`).
    let mut last_dial = Instant::now() - Duration::from_secs(10);
    wait_for(
        "the small torrent to complete between crashes",
        Duration::from_secs(40),
        Duration::from_millis(50),
        || {
            d.guard().assert_running();
            if !events.of("completed", &c).is_empty() {
                return Ok(());
            }
            if last_dial.elapsed() > Duration::from_millis(700) {
                last_dial = Instant::now();
                sc.connect(d.addr());
                sl.connect(d.addr());
            }
            Err(format!("{:?}", d.show(&c)))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n--- swarmd log:\n{}", d.guard().log_tail(60)));
    verify(&tc, &pc, &dirs.downloads);

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
            gave_up(&l)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; events {:?}\n{}", events.all(), d.guard().log_tail(40)));
    assert!(
        d.show(&l).is_err(),
        "a torrent that was given up is still listed"
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
    // The root is healthy: it still adds torrents and shuts down cleanly.
    let extra = Payload::single(&env.subdir("extra"), "extra.bin", 64 * KIB, 23);
    let te = extra.make_torrent(&env.path().join("extra.torrent"), 15, &[]);
    let e = d.add(&te.path, None);
    assert!(d.show(&e).is_ok());
    ctl_ok(&env, &["shutdown"]);
    let st = d.proc.wait_exit(Duration::from_secs(20));
    assert!(st.success(), "swarmd exited with {st} after the crash loop");
}

/// A panicking disk job (`disk.write`) costs only the piece it was writing: the piece is fetched
/// again and the torrent never stops.
#[test]
fn disk_job_panic_costs_only_its_piece() {
    let bin = fault_swarmd_bin();
    let env = TestEnv::new("rel-disk-panic");
    let tracker = Opentracker::start(&env, &[]);
    let (p, t, _s) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed"), "disk.bin", 8 * MIB, 31),
        15,
        LtOptions::seed(),
    );
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start_with(
        &env,
        &dirs,
        port,
        Swarmd::command(&[] as &[&str])
            .name("daemon-disk-panic")
            .bin(&bin)
            .env("SWARMD_FAULTS", "disk.write:0.05")
            .env("RUST_BACKTRACE", "0"),
    );
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
    verify(&t, &p, &dirs.downloads);
    assert!(injected(&d.guard().log_contents(), "disk.write") > 0);
}

/// After a torrent restarts (a crash), the trackers hear from it again: every incarnation
/// announces `started` (the crashed one's `stopping` untracked it), so the peers they name reach
/// the new incarnation.
#[test]
fn restarted_torrent_is_announced_again() {
    let bin = fault_swarmd_bin();
    let env = TestEnv::new("rel-retrack");
    let fake = FakeHttpTracker::start();
    let payload = Payload::single(&env.subdir("seed"), "retrack.bin", MIB, 41);
    let t = payload.make_torrent(
        &env.path().join("retrack.torrent"),
        15,
        &[&fake.announce_url()],
    );
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start_with(
        &env,
        &dirs,
        port,
        Swarmd::command(&[] as &[&str])
            .name("daemon-retrack")
            .bin(&bin)
            .env("SWARMD_FAULTS", "torrent.tick:1.0")
            .env("RUST_BACKTRACE", "0"),
    );
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

/// After the Announcer restarts (a crash), the torrents it tracked are announced again.
#[test]
fn restarted_announcer_announces_again() {
    let bin = fault_swarmd_bin();
    let env = TestEnv::new("rel-announcer-restart");
    let fake = FakeHttpTracker::start();
    fake.set_interval(3600);
    let payload = Payload::single(&env.subdir("seed"), "ann.bin", 256 * KIB, 42);
    let t = payload.make_torrent(&env.path().join("ann.torrent"), 15, &[&fake.announce_url()]);
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    // The announcer polls when a tracker is due, on `Track` and `Reannounce`, and every 30 s:
    // each poll panics with probability 0.2.
    let d = Daemon::start_with(
        &env,
        &dirs,
        port,
        Swarmd::command(&[] as &[&str])
            .name("daemon-announcer")
            .bin(&bin)
            .env("SWARMD_FAULTS", "announcer.poll:0.2")
            .env("RUST_BACKTRACE", "0"),
    );
    let ih = d.add(&t.path, None);
    let ours = |fake: &FakeHttpTracker| {
        fake.announces()
            .iter()
            .filter(|a| a.info_hash() == Some(t.info_hash))
            .count()
    };
    let restarts = || root_restarts(&d.guard().log_contents(), "Announcer");
    // Reannounces make the announcer poll until one of the polls panics.
    let mut asked = Instant::now() - Duration::from_secs(5);
    wait_until(
        "an announcer restart",
        Duration::from_secs(40),
        POLL,
        || {
            d.guard().assert_running();
            if restarts() == 0 && asked.elapsed() > Duration::from_secs(1) {
                asked = Instant::now();
                let _ = d.rpc("torrent.reannounce", Some(json!({ "torrent": ih })));
            }
            restarts() >= 1
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    // Give the restart its backoff, then one more reannounce: the new incarnation must know
    // the torrent (or learn of it within a few ticks).
    std::thread::sleep(Duration::from_secs(1));
    let before = ours(&fake);
    let _ = d.rpc("torrent.reannounce", Some(json!({ "torrent": ih })));
    wait_until(
        "an announce after the announcer restarted",
        Duration::from_secs(25),
        POLL,
        || {
            d.guard().assert_running();
            ours(&fake) > before
        },
    )
    .unwrap_or_else(|e| panic!("{e}: the restarted announcer no longer tracks {ih}"));
}

// -----------------------------------------------------------------------------------------------
// 2. Hostile peers
// -----------------------------------------------------------------------------------------------

mod wire {
    //! Just enough of the peer wire protocol to misbehave on purpose.

    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const REJECT: u8 = 16;
    pub const ALLOWED_FAST: u8 = 17;
    pub const EXTENDED: u8 = 20;

    /// A BitTorrent handshake; `fast` sets the BEP 6 bit, `ext` the BEP 10 bit. Every handshake
    /// has a peer id of its own (swarmd drops a second connection from the same peer id).
    pub fn handshake(info_hash: &[u8; 20], fast: bool, ext: bool) -> Vec<u8> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut h = vec![19u8];
        h.extend_from_slice(b"BitTorrent protocol");
        let mut reserved = [0u8; 8];
        if ext {
            reserved[5] |= 0x10;
        }
        if fast {
            reserved[7] |= 0x04;
        }
        h.extend_from_slice(&reserved);
        h.extend_from_slice(info_hash);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        h.extend_from_slice(format!("-XX0001-{n:012}").as_bytes());
        h
    }

    /// A framed message: length, id, payload.
    pub fn msg(id: u8, payload: &[u8]) -> Vec<u8> {
        let mut m = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
        m.push(id);
        m.extend_from_slice(payload);
        m
    }

    pub fn block_msg(id: u8, index: u32, begin: u32, len: u32) -> Vec<u8> {
        let mut p = index.to_be_bytes().to_vec();
        p.extend_from_slice(&begin.to_be_bytes());
        p.extend_from_slice(&len.to_be_bytes());
        msg(id, &p)
    }

    pub fn u32_at(p: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(p[at..at + 4].try_into().unwrap())
    }
}

/// One message as read off the socket.
#[derive(Debug)]
enum Frame {
    KeepAlive,
    Msg(u8, Vec<u8>),
}

/// A raw TCP peer of our own.
struct RawPeer {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawPeer {
    fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        Ok(RawPeer { s, buf: Vec::new() })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.s.write_all(bytes)
    }

    /// Reads more bytes into the buffer; `Ok(false)` on timeout, `Err` on EOF/reset.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.s.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 65536];
        match self.s.read(&mut chunk) {
            Ok(0) => Err(io::Error::new(ErrorKind::UnexpectedEof, "closed by swarmd")),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends our handshake and reads swarmd's.
    fn handshake(&mut self, ih: &[u8; 20], fast: bool, ext: bool) -> io::Result<Vec<u8>> {
        self.send(&wire::handshake(ih, fast, ext))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.buf.len() < 68 {
            if !self.fill(deadline)? {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "no handshake from swarmd",
                ));
            }
        }
        let theirs: Vec<u8> = self.buf.drain(..68).collect();
        if &theirs[28..48] != ih {
            return Err(io::Error::other("swarmd answered with another info-hash"));
        }
        Ok(theirs)
    }

    /// The next frame, `Ok(None)` if none arrived within `timeout`.
    fn next(&mut self, timeout: Duration) -> io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 4 {
                let len = wire::u32_at(&self.buf, 0) as usize;
                if len > (1 << 20) {
                    return Err(io::Error::other(format!("swarmd sent a {len}-byte frame")));
                }
                if self.buf.len() >= 4 + len {
                    let frame: Vec<u8> = self.buf.drain(..4 + len).collect();
                    return Ok(Some(if len == 0 {
                        Frame::KeepAlive
                    } else {
                        Frame::Msg(frame[4], frame[5..].to_vec())
                    }));
                }
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads (and drops) whatever comes until swarmd closes the connection. `Ok(elapsed)` when
    /// it did within `timeout`.
    fn wait_closed(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            self.buf.clear();
            match self.fill(deadline) {
                Err(_) => return Ok(start.elapsed()),
                Ok(_) if Instant::now() >= deadline => {
                    return Err(format!("still open after {timeout:?}"))
                }
                Ok(_) => {}
            }
        }
    }

    /// True while swarmd keeps the connection open for `for_` (whatever it sends meanwhile).
    fn stays_open(&mut self, for_: Duration) -> bool {
        self.wait_closed(for_).is_err()
    }
}

/// What a well-behaved peer learns right after the handshake: the allowed-fast pieces and
/// whether swarmd unchoked it. Collects frames for up to `timeout`, stopping early once it has
/// an allowed-fast piece or an unchoke.
fn collect_permissions(p: &mut RawPeer, timeout: Duration) -> io::Result<(Vec<u32>, bool)> {
    let deadline = Instant::now() + timeout;
    let (mut allowed, mut unchoked) = (Vec::new(), false);
    while Instant::now() < deadline {
        match p.next(Duration::from_millis(200))? {
            Some(Frame::Msg(wire::ALLOWED_FAST, pl)) if pl.len() == 4 => {
                allowed.push(wire::u32_at(&pl, 0))
            }
            Some(Frame::Msg(wire::UNCHOKE, _)) => unchoked = true,
            Some(Frame::Msg(wire::CHOKE, _)) => unchoked = false,
            Some(_) => continue,
            None if !allowed.is_empty() || unchoked => break,
            None => {}
        }
    }
    Ok((allowed, unchoked))
}

/// A well-behaved raw peer: handshake (fast + extensions), interested, one piece requested (the
/// torrent has one block per piece), its SHA-1 checked against the torrent. Returns the piece.
fn fetch_one_piece(addr: SocketAddr, t: &Torrent) -> Result<u32, String> {
    let mut p = RawPeer::connect(addr).map_err(|e| format!("connect: {e}"))?;
    p.handshake(&t.info_hash.0, true, true)
        .map_err(|e| format!("handshake: {e}"))?;
    p.send(&wire::msg(wire::INTERESTED, &[]))
        .map_err(|e| e.to_string())?;
    let (allowed, unchoked) =
        collect_permissions(&mut p, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let index = match (allowed.first(), unchoked) {
        (Some(&i), _) => i,
        (None, true) => (t.num_pieces() / 2) as u32,
        (None, false) => return Err("neither unchoked nor given allowed-fast pieces".into()),
    };
    let len = t.piece_len(index as usize) as u32;
    p.send(&wire::block_msg(wire::REQUEST, index, 0, len))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match p
            .next(Duration::from_millis(500))
            .map_err(|e| e.to_string())?
        {
            Some(Frame::Msg(wire::PIECE, pl)) if wire::u32_at(&pl, 0) == index => {
                let data = &pl[8..];
                let mut h = sha1_smol::Sha1::new();
                h.update(data);
                if h.digest().bytes() != t.pieces[index as usize] {
                    return Err(format!("piece {index} failed its hash check"));
                }
                return Ok(index);
            }
            Some(Frame::Msg(wire::REJECT, _)) => return Err(format!("piece {index} rejected")),
            _ => {}
        }
    }
    Err(format!("piece {index} never came"))
}

/// A peer that sent `what`, as recorded for the summary.
struct Outcome {
    case: &'static str,
    result: String,
}

/// `swarmd download --seed` under attack.
struct Target<'a> {
    seeder: &'a SwarmdProcess,
    torrent: &'a Torrent,
    max_rss: u64,
    outcomes: Vec<Outcome>,
}

impl Target<'_> {
    fn addr(&self) -> SocketAddr {
        self.seeder.addr()
    }

    fn ih(&self) -> [u8; 20] {
        self.torrent.info_hash.0
    }

    /// A connection past the handshake (fast + extensions), swarmd's opening frames drained.
    fn session(&self) -> RawPeer {
        let mut p = RawPeer::connect(self.addr()).expect("connecting to the seeder");
        p.handshake(&self.ih(), true, true)
            .expect("handshake with the seeder");
        while let Ok(Some(_)) = p.next(Duration::from_millis(150)) {}
        p
    }

    /// After each case: the seeder runs, serves a well-behaved peer a verified piece (retrying
    /// for a while: slots of hostile connections may still be freeing up), and stays small.
    #[track_caller]
    fn check_healthy(&mut self, after: &str) {
        self.seeder.guard().assert_running();
        let (r, _) = wait_for(
            &format!("a well-behaved peer to be served after `{after}`"),
            Duration::from_secs(15),
            Duration::from_millis(300),
            || {
                self.seeder.guard().assert_running();
                fetch_one_piece(self.addr(), self.torrent)
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.seeder.guard().log_tail(30)));
        let rss = rss_bytes(self.seeder.guard().pid());
        self.max_rss = self.max_rss.max(rss);
        assert!(
            rss < 64 * MIB,
            "swarmd's RSS is {} MiB after `{after}`",
            rss / MIB
        );
        let _ = r;
    }

    fn record(&mut self, case: &'static str, result: impl Into<String>) {
        self.outcomes.push(Outcome {
            case,
            result: result.into(),
        });
    }

    /// `case` must end with swarmd closing the connection within 5 s.
    #[track_caller]
    fn expect_closed(&mut self, case: &'static str, mut p: RawPeer) {
        match p.wait_closed(Duration::from_secs(5)) {
            Ok(t) => self.record(case, format!("closed after {} ms", t.as_millis())),
            Err(e) => panic!(
                "`{case}`: swarmd must drop this peer, but the connection is {e}\n{}",
                self.seeder.guard().log_tail(20)
            ),
        }
        self.check_healthy(case);
    }

    /// `case` is legal or tolerable: whatever swarmd does with the connection is recorded.
    fn tolerated(&mut self, case: &'static str, mut p: RawPeer) {
        let r = match p.wait_closed(Duration::from_secs(2)) {
            Ok(t) => format!("closed after {} ms", t.as_millis()),
            Err(_) => "kept open".to_string(),
        };
        self.record(case, r);
        self.check_healthy(case);
    }
}

/// Raw-TCP peers break the wire protocol against a `swarmd download --seed` seeder: after every
/// case the seeder is running, serves a well-behaved peer a verified piece, and its RSS stays
/// under 64 MiB; peers that BEP 3 says must be dropped are disconnected within 5 s; finally a
/// libtorrent leecher downloads the whole torrent from it.
#[test]
fn hostile_peers_cannot_hurt_a_seeder() {
    let env = TestEnv::new("rel-hostile-peers");
    // 16 KiB pieces (one block each, so a block's hash is checkable) and 257 of them: the
    // bitfield has 7 spare bits.
    let payload = Payload::single(&env.subdir("seed"), "target.bin", 4 * MIB + 5_000, 51);
    let torrent = payload.make_torrent_native(&env.path().join("target.torrent"), 16 * 1024, &[]);
    assert_eq!(torrent.num_pieces(), 257);
    let seeder = Swarmd::download(&torrent.path)
        .out(&payload.dir)
        .seed(true)
        .name("swarmd-seed")
        .env("RUST_LOG", "info,swarm_engine=debug")
        .spawn(&env);
    seeder.wait_listening(Duration::from_secs(20));
    let mut t = Target {
        seeder: &seeder,
        torrent: &torrent,
        max_rss: 0,
        outcomes: Vec::new(),
    };
    // The seeder checks its data before it serves.
    t.check_healthy("start-up");
    let idle_rss = t.max_rss;
    let ih = t.ih();
    let n = torrent.num_pieces() as u32;

    // A slow handshake, one byte a second, runs alongside the other cases.
    let slow = {
        let addr = t.addr();
        let hs = wire::handshake(&ih, false, false);
        std::thread::spawn(move || -> Result<(usize, Duration), String> {
            let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            let start = Instant::now();
            s.set_read_timeout(Some(Duration::from_millis(1000)))
                .unwrap();
            for (i, b) in hs.iter().enumerate() {
                if s.write_all(&[*b]).is_err() {
                    return Ok((i, start.elapsed()));
                }
                let mut x = [0u8; 1];
                match s.read(&mut x) {
                    Ok(0) => return Ok((i + 1, start.elapsed())),
                    Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        return Ok((i + 1, start.elapsed()))
                    }
                    _ => {}
                }
                if start.elapsed() > Duration::from_secs(30) {
                    break;
                }
            }
            Err(format!("still open after {:?}", start.elapsed()))
        })
    };

    let mut rng = Rng::from_env("SWARM_IT_HOSTILE_SEED");

    // --- before or instead of a handshake ---
    let mut p = RawPeer::connect(t.addr()).unwrap();
    let mut garbage = rng.bytes(68);
    garbage[0] = 0xEE;
    p.send(&garbage).unwrap();
    t.expect_closed("garbage handshake", p);

    let mut p = RawPeer::connect(t.addr()).unwrap();
    let mut hs = wire::handshake(&ih, false, false);
    hs[1..20].copy_from_slice(b"BitTorrent protocoX");
    p.send(&hs).unwrap();
    t.expect_closed("wrong protocol string", p);

    let mut p = RawPeer::connect(t.addr()).unwrap();
    p.send(&wire::handshake(&[0x5a; 20], true, true)).unwrap();
    t.expect_closed("unknown info-hash", p);

    let mut p = RawPeer::connect(t.addr()).unwrap();
    p.send(&wire::handshake(&ih, false, false)[..30]).unwrap();
    p.s.shutdown(Shutdown::Write).unwrap();
    t.expect_closed("half a handshake, then EOF", p);

    // --- broken framing ---
    let mut p = t.session();
    p.send(&[0xFF, 0xFF, 0xFF, 0xF0]).unwrap();
    t.expect_closed("length prefix 0xFFFFFFF0", p);

    let mut p = t.session();
    p.send(&(70_000u32).to_be_bytes()).unwrap();
    p.send(&[wire::PIECE]).unwrap();
    t.expect_closed("frame over the 64 KiB limit", p);

    for id in [42u8, 99, 255] {
        let mut p = t.session();
        p.send(&wire::msg(id, b"what is this")).unwrap();
        t.tolerated(
            match id {
                42 => "unknown message id 42",
                99 => "unknown message id 99",
                _ => "unknown message id 255",
            },
            p,
        );
    }

    for (case, bytes) in [
        ("3-byte Have", wire::msg(wire::HAVE, &[0, 0, 1])),
        ("Have with 5 bytes", wire::msg(wire::HAVE, &[0, 0, 0, 1, 0])),
        ("11-byte Request", wire::msg(wire::REQUEST, &[0; 11])),
        (
            "Piece shorter than its header",
            wire::msg(wire::PIECE, &[0; 5]),
        ),
        ("Cancel with 13 bytes", wire::msg(wire::CANCEL, &[0; 13])),
        ("Choke with a payload", wire::msg(wire::CHOKE, &[1])),
        ("Port with 3 bytes", wire::msg(wire::PORT, &[0, 1, 2])),
        (
            "Have for piece 4294967295",
            wire::msg(wire::HAVE, &[0xFF; 4]),
        ),
    ] {
        let mut p = t.session();
        p.send(&bytes).unwrap();
        t.expect_closed(case, p);
    }

    // --- bitfield abuse (BEP 3: drop a bitfield of the wrong size or with spare bits set) ---
    let bf_len = n.div_ceil(8) as usize;
    let mut p = t.session();
    p.send(&wire::msg(wire::BITFIELD, &vec![0u8; bf_len + 1]))
        .unwrap();
    t.expect_closed("bitfield one byte too long", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::BITFIELD, &vec![0u8; bf_len - 1]))
        .unwrap();
    t.expect_closed("bitfield one byte too short", p);

    let mut p = t.session();
    let mut bf = vec![0u8; bf_len];
    bf[bf_len - 1] = 0x01; // a spare bit
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    t.expect_closed("bitfield with a spare bit set", p);

    let mut p = t.session();
    let mut bf = vec![0u8; bf_len];
    bf[0] = 0x80;
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    t.tolerated("bitfield sent twice", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::HAVE, &3u32.to_be_bytes())).unwrap();
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    t.tolerated("bitfield sent late, after a Have", p);

    // A full bitfield: the seeder and this "seed" have nothing to say to each other.
    let mut p = t.session();
    let mut full = vec![0xFFu8; bf_len];
    full[bf_len - 1] = 0x80; // 257 = 32 * 8 + 1
    p.send(&wire::msg(wire::BITFIELD, &full)).unwrap();
    t.tolerated("a full bitfield (seed meets seed)", p);

    // --- requests (BEP 6: a fast peer gets a Reject for each request not served) ---
    let mut p = t.session();
    let bad: Vec<(u32, u32, u32)> = vec![
        (n, 0, 16 * 1024),             // piece out of range
        (u32::MAX, 0, 16 * 1024),      // far out of range
        (0, 16 * 1024, 16 * 1024),     // past the end of the piece
        (0, u32::MAX - 10, 16 * 1024), // begin + length overflows
        (0, 0, 64 * 1024),             // oversize (> 32 KiB)
        (0, 0, 33 * 1024),             // oversize by 1 KiB
        (0, 0, 0),                     // zero length
        (n - 1, 0, 16 * 1024),         // the last piece is shorter (5000 bytes)
    ];
    for &(i, b, l) in &bad {
        p.send(&wire::block_msg(wire::REQUEST, i, b, l)).unwrap();
    }
    let mut rejects = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejects < bad.len() && Instant::now() < deadline {
        match p.next(Duration::from_millis(300)) {
            Ok(Some(Frame::Msg(wire::REJECT, _))) => rejects += 1,
            Ok(Some(Frame::Msg(wire::PIECE, pl))) => panic!(
                "swarmd served an invalid request: piece {} begin {} ({} bytes)",
                wire::u32_at(&pl, 0),
                wire::u32_at(&pl, 4),
                pl.len() - 8
            ),
            Ok(_) => {}
            Err(e) => panic!("swarmd dropped a peer for invalid requests: {e}"),
        }
    }
    assert_eq!(
        rejects,
        bad.len(),
        "every invalid request of a fast peer must be rejected"
    );
    t.tolerated("requests out of range, oversize, zero length", p);

    // 10 000 requests at once, while choked and for pieces it may not have while choked.
    let mut p = t.session();
    let mut burst = Vec::with_capacity(10_000 * 17);
    for k in 0..10_000u32 {
        burst.extend_from_slice(&wire::block_msg(wire::REQUEST, k % n, 0, 16 * 1024));
    }
    p.send(&burst).unwrap();
    t.tolerated("10 000 requests at once (choked)", p);

    // The same after an unchoke or on allowed-fast pieces: more than the advertised queue.
    let mut p = RawPeer::connect(t.addr()).unwrap();
    p.handshake(&ih, true, true).unwrap();
    p.send(&wire::msg(wire::INTERESTED, &[])).unwrap();
    let (allowed, _) = collect_permissions(&mut p, Duration::from_secs(5)).unwrap();
    let piece = *allowed.first().expect("no allowed-fast piece");
    let mut burst = Vec::with_capacity(10_000 * 17);
    for _ in 0..10_000u32 {
        burst.extend_from_slice(&wire::block_msg(wire::REQUEST, piece, 0, 16 * 1024));
    }
    // Do not read: swarmd must bound what it queues for a peer that does not read.
    let _ = p.send(&burst);
    std::thread::sleep(Duration::from_secs(1));
    t.check_healthy("10 000 valid requests from a peer that does not read");
    t.tolerated("10 000 valid requests, never read", p);

    let mut p = t.session();
    let mut cancels = Vec::new();
    for _ in 0..1000 {
        let r = rng.next();
        cancels.extend_from_slice(&wire::block_msg(
            wire::CANCEL,
            (r % 300) as u32,
            ((r >> 16) % 4) as u32 * 16384,
            16384,
        ));
    }
    p.send(&cancels).unwrap();
    assert!(
        p.stays_open(Duration::from_secs(1)),
        "swarmd dropped a peer for cancels of requests it never made (legal)"
    );
    t.tolerated("1000 cancels for nothing", p);

    // Unsolicited blocks: data we never asked for, in range and out of it.
    let mut p = t.session();
    for (i, b, len) in [
        (0u32, 0u32, 16 * 1024usize),
        (5, 8192, 16 * 1024),
        (n, 0, 1024),
        (u32::MAX, u32::MAX, 100),
        (1, 3, 7),
    ] {
        let mut pl = i.to_be_bytes().to_vec();
        pl.extend_from_slice(&b.to_be_bytes());
        pl.extend_from_slice(&rng.bytes(len));
        if p.send(&wire::msg(wire::PIECE, &pl)).is_err() {
            break;
        }
    }
    t.tolerated("unsolicited pieces", p);

    // --- extension protocol (BEP 10) and ut_metadata (BEP 9) ---
    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00this is not bencode"))
        .unwrap();
    t.tolerated("malformed extension handshake", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai-5eee"))
        .unwrap();
    t.tolerated("extension handshake with a negative id", p);

    let mut p = t.session();
    let mut deep = b"\x00".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 5000));
    p.send(&wire::msg(wire::EXTENDED, &deep)).unwrap();
    t.tolerated("extension handshake nested 5000 deep", p);

    // ut_metadata: our extension handshake names id 3 for it; swarmd's local id is 1.
    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai3eee"))
        .unwrap();
    p.send(&wire::msg(
        wire::EXTENDED,
        b"\x01d8:msg_typei0e5:piecei99999ee",
    ))
    .unwrap();
    t.tolerated("ut_metadata request for piece 99999", p);

    // A request for a piece the metadata does not have (it fits in piece 0) is rejected.
    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai3eee"))
        .unwrap();
    p.send(&wire::msg(wire::EXTENDED, b"\x01d8:msg_typei0e5:piecei7ee"))
        .unwrap();
    let mut rejected = false;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !rejected && Instant::now() < deadline {
        match p.next(Duration::from_millis(300)) {
            Ok(Some(Frame::Msg(wire::EXTENDED, pl))) => {
                rejected = pl.first() == Some(&3) && pl.windows(10).any(|w| w == b"msg_typei2")
            }
            Ok(_) => {}
            Err(e) => panic!("swarmd dropped a peer for a legal ut_metadata request: {e}"),
        }
    }
    assert!(
        rejected,
        "no ut_metadata reject for a piece beyond the metadata"
    );
    p.send(&wire::msg(wire::EXTENDED, b"\x01not bencode at all"))
        .unwrap();
    t.tolerated("malformed ut_metadata message", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai3eee"))
        .unwrap();
    p.send(&wire::msg(
        wire::EXTENDED,
        b"\x01d8:msg_typei1e5:piecei0e10:total_sizei99999999999eee",
    ))
    .unwrap();
    t.tolerated("unsolicited ut_metadata data with a huge total_size", p);

    // --- a burst of 300 connections, half of them handshaking ---
    let mut burst = Vec::new();
    for k in 0..300 {
        if let Ok(mut p) = RawPeer::connect(t.addr()) {
            if k % 2 == 0 {
                let _ = p.send(&wire::handshake(&ih, true, true));
            }
            burst.push(p);
        }
    }
    let opened = burst.len();
    std::thread::sleep(Duration::from_secs(1));
    seeder.guard().assert_running();
    let rss_during = rss_bytes(seeder.guard().pid());
    let mut still_open = 0;
    for p in &mut burst {
        if p.stays_open(Duration::from_millis(5)) {
            still_open += 1;
        }
    }
    drop(burst);
    t.record(
        "300 connections at once",
        format!(
            "{opened} opened, {still_open} still open after 1 s; RSS {} MiB meanwhile",
            rss_during / MIB
        ),
    );
    t.check_healthy("300 connections at once");

    let (bytes, took) = slow
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("a 1 byte/s handshake was {e}: no handshake timeout"));
    t.record(
        "handshake at 1 byte/s",
        format!("closed after {bytes} bytes, {:.1} s", took.as_secs_f64()),
    );
    assert!(
        took < Duration::from_secs(15),
        "a 1 byte/s handshake was allowed {took:?}"
    );

    // Finally a real client downloads the whole torrent from the seeder.
    let leech = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &env.subdir("leech"),
        LtOptions {
            connect: vec![t.addr()],
            no_announce: true,
            ..LtOptions::leech()
        },
    );
    leech.wait_finished(Duration::from_secs(60));
    torrent.verify_dir(&env.path().join("leech")).unwrap();
    t.check_healthy("the libtorrent leecher");

    eprintln!(
        "hostile peers: RSS {} MiB idle, at most {} MiB",
        idle_rss / MIB,
        t.max_rss / MIB
    );
    for o in &t.outcomes {
        eprintln!("  {:<55} {}", o.case, o.result);
    }
}

// -----------------------------------------------------------------------------------------------
// 3. Hostile files and requests
// -----------------------------------------------------------------------------------------------

/// `crates/swarm-wire/tests/hostile/`: every file and the text its error must contain.
fn hostile_corpus() -> Vec<(PathBuf, String)> {
    let dir = workspace_root().join("crates/swarm-wire/tests/hostile");
    let expected = fs::read_to_string(dir.join("EXPECTED")).expect("hostile/EXPECTED");
    let corpus: Vec<(PathBuf, String)> = expected
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, text) = l.split_once('\t').expect("EXPECTED: file<TAB>text");
            (dir.join(file), text.to_string())
        })
        .collect();
    let on_disk = fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "torrent"))
        })
        .count();
    assert_eq!(
        corpus.len(),
        on_disk,
        "hostile/EXPECTED does not list every .torrent of the corpus"
    );
    corpus
}

/// Magnet links that must be refused, and the text their error must contain.
fn hostile_magnets() -> Vec<(String, &'static str)> {
    let h = "0123456789abcdef0123456789abcdef01234567";
    let g = "fedcba9876543210fedcba9876543210fedcba98";
    vec![
        ("magnet:".into(), "not a magnet URI"),
        ("magnet:?".into(), "no BitTorrent info-hash"),
        ("magnet:?dn=no-hash".into(), "no BitTorrent info-hash"),
        (
            "magnet:?xt=urn:sha1:YNCKHTQCWBTRNJIV4WNAE52SJUQCZO5C".into(),
            "no BitTorrent info-hash",
        ),
        ("magnet:?xt=urn:btih:xyz".into(), "invalid info-hash"),
        (
            format!("magnet:?xt=urn:btih:{}", &h[..39]),
            "invalid info-hash",
        ),
        (format!("magnet:?xt=urn:btih:{h}0"), "invalid info-hash"),
        (
            format!("magnet:?xt=urn:btih:{}", "z".repeat(40)),
            "invalid info-hash",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&xt=urn:btih:{g}"),
            "two different info-hashes",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&dn=%ZZ"),
            "invalid percent-encoding",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&dn=%C3%28"),
            "invalid percent-encoding",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&dn=100%"),
            "invalid percent-encoding",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&x.pe=nonsense"),
            "invalid peer address",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&x.pe=1.2.3.4:99999"),
            "invalid peer address",
        ),
        (
            format!("magnet:?xt=urn:btih:{h}&so=0-4294967295"),
            "invalid `so`",
        ),
        (format!("magnet:?xt=urn:btih:{h}&so=5-1"), "invalid `so`"),
        (format!("magnet:?xt=urn:btih:{h}&so=a,b"), "invalid `so`"),
        (
            format!("magnet:?xt=urn:btih:{h}&dn={}", "x".repeat(70_000)),
            "more than the limit",
        ),
    ]
}

/// Magnet links that parse but are odd: swarmd may take or refuse them, never crash; taken ones
/// are removed again.
fn odd_magnets() -> Vec<String> {
    let hs = [
        "1111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222",
        "3333333333333333333333333333333333333333",
        "4444444444444444444444444444444444444444",
        "5555555555555555555555555555555555555555",
    ];
    vec![
        format!(
            "magnet:?xt=urn:btih:{}&dn=..%2F..%2F..%2Fetc%2Fpasswd",
            hs[0]
        ),
        format!(
            "magnet:?xt=urn:btih:{}&dn=%00%01%02&tr=file%3A%2F%2F%2Fetc%2Fpasswd",
            hs[1]
        ),
        format!(
            "magnet:?xt=urn:btih:{}&x.pe=127.0.0.1:1&x.pe=0.0.0.0:0&tr=udp%3A%2F%2F127.0.0.1%3A1",
            hs[2]
        ),
        format!(
            "magnet:?xt=urn:btih:{}{}",
            hs[3],
            (0..2000)
                .map(|i| format!("&tr=http://127.0.0.1:1/{i}"))
                .collect::<String>()
        ),
        format!("MAGNET:?XT=URN:BTIH:{}&so=0-99999", hs[4].to_uppercase()),
    ]
}

/// Every file of swarm-wire's hostile `.torrent` corpus, through the watch directory and through
/// `swarmctl add`, and hostile magnet links both ways: each is refused with its message (the
/// watch directory renames it `NAME.invalid` and writes the reason next to it, `swarmctl add`
/// exits 2 with the reason), nothing is added, and the daemon never crashes.
#[test]
fn hostile_torrents_and_magnets_are_refused() {
    let env = TestEnv::new("rel-hostile-files");
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let corpus = hostile_corpus();
    let magnets = hostile_magnets();

    // Into the watch directory, all at once.
    for (path, _) in &corpus {
        fs::copy(path, dirs.watch.join(path.file_name().unwrap())).unwrap();
    }
    for (i, (m, _)) in magnets.iter().enumerate() {
        fs::write(dirs.watch.join(format!("hostile-{i:02}.magnet")), m).unwrap();
    }

    // Meanwhile through swarmctl add.
    for (path, text) in &corpus {
        let (code, out, err) = ctl(&env, &["add", path.to_str().unwrap()]);
        assert_eq!(
            code,
            2,
            "swarmctl add {}: exit {code}\nstdout: {out}\nstderr: {err}",
            path.display()
        );
        assert!(
            err.contains(text.as_str()),
            "swarmctl add {}: the error does not say `{text}`: {err}",
            path.display()
        );
    }
    for (m, text) in &magnets {
        let (code, out, err) = ctl(&env, &["add", m]);
        let short: String = m.chars().take(80).collect();
        assert_eq!(code, 2, "swarmctl add {short}: exit {code}\n{out}\n{err}");
        assert!(
            err.contains(text),
            "swarmctl add {short}: `{text}` not in: {err}"
        );
    }
    // The same refusals straight through the socket, by content.
    for (path, _) in corpus.iter().take(10) {
        let r = d.rpc(
            "torrent.add",
            Some(json!({ "metainfo": base64(&fs::read(path).unwrap()) })),
        );
        let e: Value = serde_json::from_str(&r.expect_err("a hostile torrent was added"))
            .expect("an error object");
        assert_eq!(e["code"], -32005, "{}: {e}", path.display());
    }
    d.assert_alive("the hostile corpus through swarmctl");

    // Odd magnets that parse: taken or refused, never a crash; taken ones go again.
    for m in odd_magnets() {
        let r = d.rpc("torrent.add", Some(json!({ "magnet": m })));
        if let Ok(v) = r {
            let ih = v["info_hash"].as_str().unwrap().to_string();
            std::thread::sleep(Duration::from_millis(200));
            d.rpc("torrent.remove", Some(json!({ "torrent": ih })))
                .unwrap_or_else(|e| panic!("removing the odd magnet {ih}: {e}"));
        }
        d.assert_alive("an odd magnet");
    }

    // The watch directory: every file becomes NAME.invalid with its reason (files that merely
    // end too early are given 30 s to be completed first).
    let names: Vec<(String, String)> = corpus
        .iter()
        .map(|(p, t)| {
            (
                p.file_name().unwrap().to_str().unwrap().to_string(),
                t.clone(),
            )
        })
        .chain(
            magnets
                .iter()
                .enumerate()
                .map(|(i, (_, t))| (format!("hostile-{i:02}.magnet"), t.to_string())),
        )
        .collect();
    wait_for(
        "every hostile file in the watch directory to be marked invalid",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            d.guard().assert_running();
            let left: Vec<&str> = names
                .iter()
                .filter(|(n, _)| !dirs.watch.join(format!("{n}.invalid.txt")).exists())
                .map(|(n, _)| n.as_str())
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("not yet: {left:?}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    for (n, text) in &names {
        let why = fs::read_to_string(dirs.watch.join(format!("{n}.invalid.txt"))).unwrap();
        assert!(
            why.contains(text.as_str()),
            "{n}.invalid.txt does not say `{text}`: {why}"
        );
        assert!(dirs.watch.join(format!("{n}.invalid")).exists());
        assert!(!dirs.watch.join(n).exists(), "{n} is still there");
    }
    assert_eq!(d.rpc("torrent.list", None).unwrap(), json!([]));
    d.assert_alive("the hostile corpus through the watch directory");
    let log = d.guard().log_contents();
    assert!(!log.contains("panicked"), "swarmd panicked:\n{log}");
}

/// Sends `line` (plus a newline) and then a sentinel request, and returns every answer that came
/// before the sentinel's.
fn answers_before_sentinel(
    w: &mut UnixStream,
    r: &mut BufReader<UnixStream>,
    line: &[u8],
    n: usize,
) -> Vec<Value> {
    w.write_all(line).unwrap();
    w.write_all(b"\n").unwrap();
    let sentinel = format!("sentinel-{n}");
    w.write_all(
        format!("{{\"jsonrpc\":\"2.0\",\"id\":\"{sentinel}\",\"method\":\"daemon.info\"}}\n")
            .as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    loop {
        let mut answer = String::new();
        let got = r.read_line(&mut answer).unwrap_or_else(|e| {
            panic!("no answer after hostile request #{n} ({e}): the connection was dropped")
        });
        assert!(
            got > 0,
            "the daemon closed the connection after hostile request #{n}"
        );
        let v: Value = serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("answer to hostile request #{n} is not JSON ({e})"));
        if v["id"] == sentinel.as_str() {
            assert!(v["result"].is_object(), "{v}");
            return out;
        }
        out.push(v);
    }
}

/// Hostile control-socket requests: deep nesting, huge numbers, wrong types, binary garbage, a
/// 10 MiB line, an unterminated line then close, more clients than allowed, absurd limits. Each
/// bad line gets a JSON-RPC error (never a hang or a dropped connection), the connection stays
/// usable, the daemon never crashes.
#[test]
fn hostile_control_requests_are_answered() {
    let env = TestEnv::new("rel-hostile-control");
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "[control]\nmax_clients = 8\n");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let mut rng = Rng::from_env("SWARM_IT_HOSTILE_SEED");
    let stream = UnixStream::connect(&dirs.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);

    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(50_000);
    let deep_params = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"torrent.show","params":{{"torrent":{}}}}}"#,
        "[".repeat(10_000)
    );
    let big_array = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"torrent.show","params":{{"torrent":"abcdef","x":[{}0]}}}}"#,
        "0,".repeat(1_000_000)
    );
    let line = |id: u64, method: &str, params: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#)
    };
    // (request, error codes allowed in the answer; empty = any JSON answer is fine)
    let cases: Vec<(String, &[i64])> = vec![
        (deep_array, &[-32700]),
        (deep_object, &[-32700]),
        (deep_params, &[-32700]),
        (big_array, &[-32602]),
        (
            r#"{"jsonrpc":"2.0","id":1e400,"method":"daemon.info"}"#.into(),
            &[-32700],
        ),
        (
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"daemon.info"}"#
                .into(),
            &[],
        ),
        (
            line(3, "session.set_limits", r#"{"download":1e300}"#),
            &[-32602],
        ),
        (
            line(4, "session.set_limits", r#"{"download":-1}"#),
            &[-32602],
        ),
        (
            line(
                5,
                "session.set_limits",
                r#"{"upload":18446744073709551616}"#,
            ),
            &[-32602],
        ),
        (line(6, "torrent.show", r#"{"torrent":5}"#), &[-32602]),
        (
            line(7, "torrent.show", r#"{"torrent":"zzzzzzzz"}"#),
            &[-32602],
        ),
        (line(8, "torrent.show", r#"[1,2,3]"#), &[-32602]),
        (line(9, "torrent.show", r#""abcdef""#), &[-32602]),
        (line(10, "torrent.add", r#"{"magnet":123}"#), &[-32602]),
        (
            line(11, "torrent.add", r#"{"metainfo":"%%%%"}"#),
            &[-32602, -32005],
        ),
        // Two sources: docs/control-protocol.md says exactly one (see the report: the daemon
        // currently takes one of them and ignores the other).
        (
            line(
                12,
                "torrent.add",
                r#"{"metainfo":"AAAA","magnet":"magnet:?"}"#,
            ),
            &[-32602, -32005],
        ),
        (
            line(13, "torrent.add", r#"{"path":"/dev/zero"}"#),
            &[-32602, -32005],
        ),
        (
            line(14, "torrent.add", r#"{"path":"/"}"#),
            &[-32602, -32005],
        ),
        (
            line(15, "torrent.add", r#"{"path":"/proc/self/mem"}"#),
            &[-32602, -32005],
        ),
        (
            line(16, "torrent.add", r#"{"metainfo":"AAAA","paused":"yes"}"#),
            &[-32602],
        ),
        (
            line(17, "torrent.add", r#"{"metainfo":"AAAA","save_dir":5}"#),
            &[-32602],
        ),
        (
            line(
                18,
                "torrent.set_file_priority",
                r#"{"torrent":"abcdef","priorities":[{"index":-1,"priority":"high"}]}"#,
            ),
            &[-32602],
        ),
        (
            line(19, "torrent.show", r#"{"torrent":"\ud800abcdef"}"#),
            &[-32700, -32602],
        ),
        (r#"{"jsonrpc":"2.0","id":20,"method":5}"#.into(), &[-32600]),
        (
            r#"{"jsonrpc":"2.0","id":{},"method":"daemon.info"}"#.into(),
            &[-32600],
        ),
        (
            r#"{"jsonrpc":"1.0","id":21,"method":"daemon.info"}"#.into(),
            &[-32600],
        ),
        (
            r#"{"jsonrpc":"2.0","id":22,"method":"daemon.info\u0000"}"#.into(),
            &[-32601],
        ),
        ("null".into(), &[-32600]),
        ("\"just a string\"".into(), &[-32600]),
        ("123".into(), &[-32600]),
        ("{}".into(), &[-32600]),
    ];
    for (n, (req, codes)) in cases.iter().enumerate() {
        let answers = answers_before_sentinel(&mut w, &mut r, req.as_bytes(), n);
        let short: String = req.chars().take(100).collect();
        assert_eq!(answers.len(), 1, "request {short}: answers {answers:?}");
        if !codes.is_empty() {
            let code = answers[0]["error"]["code"].as_i64();
            assert!(
                code.is_some_and(|c| codes.contains(&c)),
                "request {short}: expected an error in {codes:?}, got {}",
                answers[0]
            );
            assert!(answers[0]["error"]["message"].is_string());
        }
    }

    // Binary garbage, newlines and all: only errors come back, the connection stays usable.
    for n in 0..20 {
        let mut garbage = rng.bytes(4096);
        garbage.retain(|&b| b != b'\n');
        garbage.push(b'\n');
        garbage.extend(rng.bytes(100).into_iter().filter(|&b| b != b'\n'));
        let answers = answers_before_sentinel(&mut w, &mut r, &garbage, 100 + n);
        assert!(
            answers.iter().all(|a| a["error"]["code"] == -32700),
            "garbage got {answers:?}"
        );
    }
    // 10 MiB in one line (the limit is 4 MiB): skipped with an error.
    let mut huge = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\",\"x\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'A', 10 * MIB as usize));
    huge.extend_from_slice(b"\"}");
    let answers = answers_before_sentinel(&mut w, &mut r, &huge, 200);
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["error"]["code"], -32007);
    drop((w, r));

    // Unterminated lines, then close: garbage, a 3 MiB half request, and a request that does
    // not change state (a last request without its newline is still carried out).
    for bytes in [
        rng.bytes(1000),
        {
            let mut v = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"torrent.add\",\"params\":{\"metainfo\":\"".to_vec();
            v.extend(std::iter::repeat_n(b'Q', 3 * MIB as usize));
            v
        },
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.info\"".to_vec(),
    ] {
        let mut s = UnixStream::connect(&dirs.socket).unwrap();
        s.write_all(&bytes).unwrap();
        drop(s);
        d.assert_alive("an unterminated line");
    }

    // More clients than `max_clients` (8): the extra ones are turned away with an error, the
    // others keep working, and the slots come back once they close.
    let held: Vec<UnixStream> = (0..8)
        .map(|_| UnixStream::connect(&dirs.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = UnixStream::connect(&dirs.socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    let _ = BufReader::new(&mut extra).read_line(&mut answer);
    let busy: Value = serde_json::from_str(&answer)
        .unwrap_or_else(|e| panic!("the 9th client got no JSON error ({e}): {answer:?}"));
    assert_eq!(busy["error"]["code"], -32008, "{busy}");
    drop(held);
    wait_until(
        "a client slot to come back",
        Duration::from_secs(5),
        POLL,
        || d.rpc("daemon.info", None).is_ok(),
    )
    .unwrap();

    // Absurd but well-formed limits are taken (or refused) without hurting anyone.
    let r = d.rpc(
        "session.set_limits",
        Some(json!({"download": u64::MAX, "upload": u64::MAX})),
    );
    eprintln!("limits of u64::MAX: {r:?}");
    std::thread::sleep(Duration::from_secs(2));
    d.assert_alive("limits of u64::MAX");
    d.rpc(
        "session.set_limits",
        Some(json!({"download": 0, "upload": 0})),
    )
    .unwrap();

    d.assert_alive("the hostile control requests");
    let log = d.guard().log_contents();
    assert!(
        !log.contains("panicked"),
        "swarmd panicked:\n{}",
        d.guard().log_tail(40)
    );
}

/// A symlink planted inside the save directory (`NAME/sub` → a directory outside) is never
/// followed: the pieces of the files behind it fail with an error naming the symlink (the torrent
/// goes to `error`), nothing is written outside, and the daemon carries on.
#[test]
fn symlink_in_save_dir_is_not_followed() {
    let env = TestEnv::new("rel-symlink");
    let payload = Payload::with_files(
        &env.subdir("seed"),
        "linked",
        &[
            ("sub/a.bin", 300 * KIB + 11),
            ("sub/deeper/b.bin", 200 * KIB + 13),
            ("top.bin", 100 * KIB + 17),
        ],
        61,
    );
    let fake = FakeHttpTracker::start();
    let torrent = payload.make_torrent(
        &env.path().join("linked.torrent"),
        15,
        &[&fake.announce_url()],
    );
    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            ..LtOptions::seed()
        },
    );
    seeder.wait_seeding();
    fake.set_peers(&[std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        seeder.port(),
    )]);

    let save = env.subdir("save");
    let outside = env.subdir("outside");
    fs::create_dir_all(save.join("linked")).unwrap();
    std::os::unix::fs::symlink(&outside, save.join("linked/sub")).unwrap();

    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let ih = d.add(&torrent.path, Some(&save));
    let v = d.wait_torrent(
        &ih,
        "the torrent to refuse the symlink",
        Duration::from_secs(30),
        |v| v["state"] == "error",
    );
    let msg = v["error"].as_str().unwrap_or_default().to_string();
    eprintln!("error: {msg}");
    assert!(
        msg.contains("symlink"),
        "the error does not name the symlink: {msg}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let written: Vec<_> = walk(&outside);
    assert!(
        written.is_empty(),
        "swarmd wrote outside the save directory through a symlink: {written:?}"
    );
    assert!(fs::symlink_metadata(save.join("linked/sub"))
        .unwrap()
        .file_type()
        .is_symlink());
    // `resume` retries, and refuses again.
    d.rpc("torrent.resume", Some(json!({ "torrent": ih })))
        .unwrap();
    seeder.connect(d.addr());
    std::thread::sleep(Duration::from_secs(2));
    assert!(walk(&outside).is_empty(), "written outside after resume");
    d.assert_alive("the symlink refusal");
}

/// Every file below `dir` (recursively), as paths relative to it.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out
}

/// `remove --delete-data` on a torrent whose save directory holds a planted symlink deletes
/// nothing outside the save directory.
#[test]
fn delete_data_does_not_follow_symlinks() {
    let env = TestEnv::new("rel-symlink-delete");
    let payload = Payload::with_files(
        &env.subdir("seed"),
        "victim",
        &[("sub/a.bin", 40 * KIB + 1), ("top.bin", 20 * KIB + 3)],
        62,
    );
    let torrent = payload.make_torrent(&env.path().join("victim.torrent"), 15, &[]);
    let save = env.subdir("save");
    let outside = env.subdir("outside");
    fs::write(outside.join("a.bin"), b"precious, not part of any torrent").unwrap();
    fs::create_dir_all(save.join("victim")).unwrap();
    std::os::unix::fs::symlink(&outside, save.join("victim/sub")).unwrap();
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let ih = d.add(&torrent.path, Some(&save));
    d.wait_torrent(&ih, "the check to end", Duration::from_secs(10), |v| {
        v["state"] != "checking"
    });
    d.rpc(
        "torrent.remove",
        Some(json!({ "torrent": ih, "delete_data": true })),
    )
    .unwrap_or_else(|e| panic!("remove --delete-data: {e}"));
    assert!(
        outside.join("a.bin").exists(),
        "remove --delete-data deleted {} through the symlink {}",
        outside.join("a.bin").display(),
        save.join("victim/sub").display()
    );
    d.assert_alive("remove --delete-data");
}

// -----------------------------------------------------------------------------------------------
// 4. Crash-resume soak
// -----------------------------------------------------------------------------------------------

/// One round of the soak, as observed through the control socket.
#[derive(Debug, Default)]
struct Round {
    kill_after: Duration,
    /// `have_bytes` at the first observation after the start-up check, if the round got there.
    have_after_check: Option<u64>,
    /// The last `have_bytes` seen before the kill.
    have_at_kill: u64,
    /// `downloaded` grew by this much while we watched.
    downloaded: u64,
    state_at_kill: String,
}

/// `kill -9` at a random moment (uniform 0.3–2 s after the start) of a daemon downloading a
/// 256 MiB torrent from a libtorrent seeder throttled to 10 MiB/s (so that the download spans
/// all the rounds: at 32 MiB/s it is over after ~8 of them), 20 times, each time
/// restarting it on the same state directory; then it may finish. No piece that was verified
/// before a kill is missing after the restart's check, and the data ends up correct. Prints how
/// much was fetched twice (`docs/reliability.md` has the measured numbers).
///
/// `SWARM_IT_SOAK_ROUNDS=N` for a longer run, `SWARM_IT_SOAK_SEED` to replay the kill times.
#[test]
fn crash_resume_soak() {
    let rounds: usize = std::env::var("SWARM_IT_SOAK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng::from_env("SWARM_IT_SOAK_SEED");
    let env = TestEnv::new("rel-soak");
    let tracker = Opentracker::start(&env, &[]);
    let (payload, torrent, seeder) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed"), "soak.bin", 256 * MIB, 71),
        19,
        LtOptions {
            upload_limit: Some(10 * MIB),
            ..LtOptions::seed()
        },
    );
    let total = torrent.total_len;
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let soak_start = Instant::now();
    let mut log: Vec<Round> = Vec::new();
    let mut ih = String::new();
    let mut floor = 0u64; // the most ever seen verified: never lost
    for round in 0..rounds {
        let kill_after = Duration::from_secs_f64(rng.range_f64(0.3, 2.0));
        let started = Instant::now();
        let mut d = Daemon::start_with(
            &env,
            &dirs,
            port,
            Swarmd::command(&[] as &[&str])
                .name(&format!("daemon-{round:02}"))
                .env("RUST_LOG", "info"),
        );
        if round == 0 {
            ih = d.add(&torrent.path, None);
        }
        let mut r = Round {
            kill_after,
            ..Round::default()
        };
        let mut first_downloaded = None;
        while started.elapsed() < kill_after {
            if let Ok(v) = d.show(&ih) {
                let have = v["have_bytes"].as_u64().unwrap_or(0);
                let down = v["downloaded"].as_u64().unwrap_or(0);
                let state = v["state"].as_str().unwrap_or("?").to_string();
                if matches!(state.as_str(), "downloading" | "seeding") {
                    if r.have_after_check.is_none() {
                        r.have_after_check = Some(have);
                        assert!(
                            have >= floor,
                            "round {round}: {have} bytes verified after the restart's check, but \
                             {floor} had been verified before a kill: pieces were lost"
                        );
                    }
                    first_downloaded.get_or_insert(down);
                    r.downloaded = down - first_downloaded.unwrap();
                    r.have_at_kill = have;
                    floor = floor.max(have);
                }
                r.state_at_kill = state;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        d.proc.guard_mut().kill();
        eprintln!(
            "round {round:2}: killed after {:4} ms ({:<11}) check found {:>9} have at kill {:>9} \
             downloaded this round {:>9}",
            r.kill_after.as_millis(),
            r.state_at_kill,
            r.have_after_check
                .map_or("-".to_string(), |h| (h / KIB).to_string() + "K"),
            r.have_at_kill / KIB,
            r.downloaded / KIB
        );
        if r.have_at_kill >= total {
            eprintln!("complete before the last round");
        }
        log.push(r);
    }
    let soak_took = soak_start.elapsed();

    let d = Daemon::start(&env, &dirs, port, "daemon-final");
    let after = d.wait_torrent(
        &ih,
        "the check after the last kill",
        Duration::from_secs(30),
        |v| v["state"] == "downloading" || v["state"] == "seeding",
    );
    let have_after = after["have_bytes"].as_u64().unwrap();
    assert!(
        have_after >= floor,
        "after the last kill: {have_after} verified, but {floor} had been: pieces were lost"
    );
    let done = d.wait_torrent(
        &ih,
        "the download to complete after the soak",
        Duration::from_secs(60),
        is_complete_seed,
    );
    verify(&torrent, &payload, &dirs.downloads);
    let seen_down: u64 = log.iter().map(|r| r.downloaded).sum::<u64>();
    let final_down = done["downloaded"].as_u64().unwrap_or(0);
    let uploaded = seeder
        .wait_status("its counters to settle", Duration::from_secs(5), |_| true)
        .total_payload_upload;
    let twice = uploaded.saturating_sub(total);
    eprintln!(
        "soak: {rounds} kills in {:.1}s; {} MiB verified before the last kill; the seeder sent \
         {:.1} MiB for a {} MiB payload: {:.1} MiB ({:.1}%) fetched twice; downloaded counters \
         seen during the rounds: {:.1} MiB, final `downloaded` {:.1} MiB",
        soak_took.as_secs_f64(),
        floor / MIB,
        uploaded as f64 / MIB as f64,
        total / MIB,
        twice as f64 / MIB as f64,
        twice as f64 * 100.0 / total as f64,
        seen_down as f64 / MIB as f64,
        final_down as f64 / MIB as f64,
    );
    assert!(
        uploaded >= total,
        "the seeder sent less than the payload ({uploaded} < {total})?"
    );
}

// -----------------------------------------------------------------------------------------------
// 5. Full disk
// -----------------------------------------------------------------------------------------------

/// A tmpfs mounted on a directory for the test; unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the full-disk test mounts a tmpfs and must run as root (CI does); euid is {euid}"
        );
        let mount = require_tool("mount");
        let out = Command::new(mount)
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A torrent saved on a full file system (an 8 MiB tmpfs for 16 MiB) goes to `error` with a
/// "no space" message while another torrent completes and the daemon stays up; once there is
/// room again (remount with 64 MiB), `swarmctl resume` completes it with correct data.
#[test]
fn full_disk_stops_only_its_torrent() {
    let env = TestEnv::new("rel-full-disk");
    let tracker = Opentracker::start(&env, &[]);
    let (pa, ta, _sa) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed-a"), "big.bin", 16 * MIB + 3_333, 81),
        16,
        LtOptions::seed(),
    );
    let (pb, tb, _sb) = seeded(
        &env,
        &tracker,
        Payload::multi(&env.subdir("seed-b"), "other", 8 * MIB + 2_222, 4, 82),
        16,
        LtOptions {
            upload_limit: Some(2 * MIB),
            ..LtOptions::seed()
        },
    );
    let small = env.subdir("small-disk");
    let tmpfs = Tmpfs::mount(&small, "8m");
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let events = Events::subscribe(&dirs.socket);
    let (b, a) = (d.add(&tb.path, None), d.add(&ta.path, Some(&small)));
    let v = d.wait_torrent(
        &a,
        "the torrent on the full disk to stop",
        Duration::from_secs(60),
        |v| v["state"] == "error",
    );
    let msg = v["error"].as_str().unwrap_or_default().to_string();
    eprintln!("full disk: {}", brief(&v));
    assert!(
        msg.contains("no space"),
        "the error does not say `no space`: {msg}"
    );
    assert!(
        events
            .of("error", &a)
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("no space")),
        "no error event: {:?}",
        events.all()
    );
    d.wait_torrent(
        &b,
        "the other torrent to complete",
        Duration::from_secs(60),
        is_complete_seed,
    );
    verify(&tb, &pb, &dirs.downloads);
    d.assert_alive("a full disk");
    assert_eq!(
        d.show(&a).unwrap()["state"],
        "error",
        "the full-disk torrent left `error`"
    );

    tmpfs.resize("64m");
    let out = ctl_ok(&env, &["resume", &a]);
    eprintln!("resume: {}", out.trim());
    // A fresh seeder dials in: the torrent re-dials the peers it dropped when it stopped only
    // after 60 s (`resume_after_error_redials_at_once`, a known bug).
    let _fresh = dialling_seeder(&env, &ta, &pa.dir, d.addr());
    d.wait_torrent(
        &a,
        "the resumed torrent to complete",
        Duration::from_secs(60),
        is_complete_seed,
    );
    verify(&ta, &pa, &small);
    d.assert_alive("the resumed download");
    drop(d);
    drop(tmpfs);
}

/// `resume` after a pause goes on at once from the peers the torrent had: it does not wait for a
/// tracker or for the peers to dial in.
#[test]
fn resume_redials_peers_at_once() {
    let env = TestEnv::new("rel-redial");
    let payload = Payload::single(&env.subdir("seed"), "redial.bin", 8 * MIB, 91);
    let fake = FakeHttpTracker::start();
    let torrent = payload.make_torrent(
        &env.path().join("redial.torrent"),
        16,
        &[&fake.announce_url()],
    );
    // The seeder never announces: it cannot learn the daemon's address and dial it.
    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            upload_limit: Some(MIB),
            ..LtOptions::seed()
        },
    );
    seeder.wait_seeding();
    fake.set_peers(&[std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        seeder.port(),
    )]);
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");
    let ih = d.add(&torrent.path, None);
    d.wait_torrent(&ih, "the download to start", Duration::from_secs(30), |v| {
        v["have_bytes"].as_u64() > Some(MIB)
    });
    d.rpc("torrent.pause", Some(json!({ "torrent": ih })))
        .unwrap();
    let paused = d.wait_torrent(&ih, "paused without peers", Duration::from_secs(10), |v| {
        v["state"] == "paused" && v["peers"] == 0
    });
    d.rpc("torrent.resume", Some(json!({ "torrent": ih })))
        .unwrap();
    d.wait_torrent(
        &ih,
        "the download to go on within 10 s",
        Duration::from_secs(10),
        |v| v["have_bytes"].as_u64() > paused["have_bytes"].as_u64(),
    );
}

// -----------------------------------------------------------------------------------------------
// 6. Privilege and exposure
// -----------------------------------------------------------------------------------------------

/// Inodes of the sockets a process holds (`socket:[N]` links in /proc/PID/fd).
fn socket_inodes(pid: u32) -> Vec<u64> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = fs::read_link(e.path()).ok()?;
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Listening TCP sockets (IPv4 and IPv6) among `inodes`: their local ports.
fn tcp_listeners(inodes: &[u64]) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue; // not LISTEN
            }
            let inode: u64 = f[9].parse().unwrap_or(0);
            if !inodes.contains(&inode) {
                continue;
            }
            let (addr, port) = f[1].split_once(':').unwrap();
            out.push((
                format!("{table}:{addr}"),
                u16::from_str_radix(port, 16).unwrap(),
            ));
        }
    }
    out
}

/// `setpriv` (util-linux) running `cmd` as `nobody` with no supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    let setpriv = require_tool("setpriv");
    Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// The control socket is mode 0660 and another user (`nobody`) cannot use it even when every
/// directory above it lets them through; given a world-writable socket, `nobody` could read but
/// still not change state. The daemon listens on no TCP port but the peer port. The systemd unit
/// runs as its own user with the hardening docs/operations.md promises.
#[test]
fn control_socket_and_unit_file_limit_exposure() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test switches to user `nobody` and must run as root (CI does); euid is {euid}"
    );
    let env = TestEnv::new("rel-exposure");
    let port = free_tcp_port();
    let dirs = write_config(&env, port, "");
    let d = Daemon::start(&env, &dirs, port, "daemon");

    // --- the socket ---
    let meta = fs::metadata(&dirs.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "socket owner");
    // Let `nobody` through every directory above the socket and to a copy of swarmctl, so that
    // only the socket's own mode stands in the way.
    let mut dir = dirs.socket.parent().unwrap().to_path_buf();
    while dir.starts_with(env.path()) {
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if !dir.pop() {
            break;
        }
    }
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let bin_dir = env.subdir("bin");
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let ctl_copy = bin_dir.join("swarmctl");
    fs::copy(swarmctl_bin(), &ctl_copy).unwrap();
    fs::set_permissions(&ctl_copy, fs::Permissions::from_mode(0o755)).unwrap();
    let (ctl_s, sock_s) = (ctl_copy.to_str().unwrap(), dirs.socket.to_str().unwrap());

    let out = as_nobody(&[ctl_s, "list", "--socket", sock_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("nobody, socket 0660: {} {err}", out.status);
    assert_eq!(
        out.status.code(),
        Some(5),
        "`nobody` must get `permission denied` (exit 5) on a 0660 socket: {err}"
    );
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    // Control: with the socket opened to everyone, `nobody` gets through; it may read, but the
    // daemon still refuses to let it change state (SO_PEERCRED).
    fs::set_permissions(&dirs.socket, fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&[ctl_s, "list", "--socket", sock_s]);
    assert!(
        out.status.success(),
        "control run: `nobody` could not use a 0666 socket, so the 0660 check proves nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&[ctl_s, "shutdown", "--socket", sock_s]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "`nobody` was not refused `shutdown`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::set_permissions(&dirs.socket, fs::Permissions::from_mode(0o660)).unwrap();
    d.assert_alive("`nobody` knocking");

    // --- no TCP port but the peer port ---
    let pid = d.guard().pid();
    let listeners = tcp_listeners(&socket_inodes(pid));
    eprintln!("swarmd's listening TCP sockets: {listeners:?}");
    assert!(
        listeners.iter().all(|(_, p)| *p == port),
        "swarmd listens on TCP ports other than its peer port {port}: {listeners:?}"
    );
    assert!(
        listeners.iter().any(|(_, p)| *p == port),
        "the peer port {port} is not among swarmd's listening sockets: {listeners:?}"
    );

    // --- the unit file ---
    let unit = fs::read_to_string(workspace_root().join("config/swarmd.service")).unwrap();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for l in unit.lines().map(str::trim) {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if l.starts_with('[') {
            section = l.to_string();
            continue;
        }
        if section == "[Service]" {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            keys.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    let one = |k: &str| -> String {
        keys.get(k)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("swarmd.service has no {k}="))
    };
    let user = one("User");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "the unit must run as its own user, not {user:?}"
    );
    assert!(!one("Group").is_empty() && one("Group") != "root");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("UMask", "0027"),
    ] {
        assert_eq!(one(k), v, "swarmd.service: {k}=");
    }
    let families: Vec<String> = one("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        families,
        ["AF_UNIX", "AF_INET", "AF_INET6"],
        "RestrictAddressFamilies"
    );
    assert!(
        keys["SystemCallFilter"]
            .iter()
            .any(|v| v == "@system-service"),
        "SystemCallFilter"
    );
    for k in ["ReadWritePaths", "DynamicUser", "PermissionsStartOnly"] {
        assert!(!keys.contains_key(k), "swarmd.service sets {k}");
    }
    let exec = one("ExecStart");
    assert!(
        !exec.starts_with(['+', '!', '@']),
        "ExecStart runs with full privileges: {exec}"
    );
}
