//! The daemon end to end: the real `swarmd` (run mode) and `swarmctl` binaries, a real tracker
//! (opentracker) and a real seeder (libtorrent), all on 127.0.0.1. This is the issue's "done
//! when" list:
//!
//! 1. the watch directory adds complete `.torrent` files (never half-written ones) and marks bad
//!    ones `*.invalid` with the reason in `*.invalid.txt`;
//! 2. every `swarmctl` daemon command, with and without `--json`, and its exit status;
//! 3. `kill -9` mid-download and a restart: the torrent comes back and verified pieces are not
//!    downloaded again; a clean SIGTERM announces `stopped`;
//! 4. systemd: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1` on `$NOTIFY_SOCKET`, and a
//!    frozen actor system (fault-injection build) stops the watchdog pings;
//! 5. the control socket's mode and its answers to bad requests; config errors name key and line.
//!
//! Around those, tests that pin down bugs this list turned up: pause/resume in the middle of a
//! download, the first progress events of a download, the trackers of a paused torrent, a crash
//! right after `add -o DIR --paused`, and `[trackers] stopped_timeout_secs`.
//!
//! `systemd-analyze verify config/swarmd.service` is checked by swarmd's own unit tests
//! (`crates/swarmd/src/tests/unit_file.rs`), not here.
//!
//! Each daemon gets its own HOME and XDG directories inside the test's temp dir (so `swarmctl`
//! finds its socket there), DHT off, and listens on 127.0.0.1. Polling goes straight to the
//! control socket (JSON-RPC) so that the logs hold only the `swarmctl` runs the test asserts on.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{brief, is_complete_seed};
use swarm_integration_tests::libtorrent::{seeded, LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{default_home, isolate, swarmctl_code};

const POLL: Duration = Duration::from_millis(100);

// -----------------------------------------------------------------------------------------------
// Helpers: a daemon with its config, swarmctl watch, lists
// -----------------------------------------------------------------------------------------------

/// Writes `<env>/swarmd.toml` (see [`DaemonConfig`]: the default home, a watch directory
/// rescanned every 2 s); `extra` is appended (whole sections: `[limits]`, `[trackers]`, …).
fn config(env: &TestEnv, extra: &str) -> DaemonDirs {
    DaemonConfig {
        extra,
        ..DaemonConfig::new("integration-tests/tests/daemon.rs")
    }
    .write(env, free_tcp_port())
}

/// A daemon named `daemon` with the config of [`config`].
fn start_daemon(env: &TestEnv, extra: &str) -> (Daemon, DaemonDirs) {
    let dirs = config(env, extra);
    (Daemon::start(env, &dirs, "daemon"), dirs)
}

/// `swarmctl ARGS` with no daemon running must exit 3 ("not running"); returns stderr.
#[track_caller]
fn ctl_not_running(env: &TestEnv, args: &[&str]) -> String {
    let (code, out, err) = swarmctl_code(env, args);
    assert_eq!(
        code, 3,
        "swarmctl {args:?}: expected exit 3, got {code}\nstdout: {out}\nstderr: {err}"
    );
    err
}

/// `swarmctl watch [--json]` running in the background (output in its log), stopped on drop.
fn spawn_watch(env: &TestEnv, name: &str, json: bool) -> ChildGuard {
    let mut cmd = Command::new(swarmctl_bin());
    cmd.arg("watch");
    if json {
        cmd.arg("--json");
    }
    isolate(&mut cmd, &default_home(env));
    ChildGuard::spawn(env, name, cmd)
}

/// The log of a guard without the `$ command line` it starts with.
fn output_of(g: &ChildGuard) -> String {
    let log = g.log_contents();
    match log.split_once('\n') {
        Some((first, rest)) if first.starts_with("$ ") => rest.to_string(),
        _ => log,
    }
}

fn list_hashes(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|t| t["info_hash"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn find<'a>(list: &'a Value, ih: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|t| t["info_hash"] == ih))
        .unwrap_or_else(|| panic!("{ih} not in {list}"))
}

// -----------------------------------------------------------------------------------------------
// sd_notify receiver
// -----------------------------------------------------------------------------------------------

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`: a thread records every message
/// with the time it arrived.
struct NotifySocket {
    path: PathBuf,
    messages: Arc<Mutex<Vec<(Instant, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NotifySocket {
    fn bind(env: &TestEnv) -> NotifySocket {
        let path = env.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("binding the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (messages, stop) = (messages.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        messages.lock().unwrap().push((Instant::now(), text));
                    }
                }
            })
        };
        NotifySocket {
            path,
            messages,
            stop,
            thread: Some(thread),
        }
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// Times of the messages that contain the line `line`.
    fn times_of(&self, line: &str) -> Vec<Instant> {
        self.all()
            .into_iter()
            .filter(|(_, m)| m.lines().any(|l| l == line))
            .map(|(t, _)| t)
            .collect()
    }

    /// Waits for a message containing the line `line` and returns the whole message. `sender`,
    /// if given, must keep running meanwhile.
    fn wait_line(&self, line: &str, timeout: Duration, sender: Option<&ChildGuard>) -> String {
        wait_for(
            &format!("sd_notify `{line}`"),
            timeout,
            Duration::from_millis(20),
            || {
                if let Some(g) = sender {
                    g.assert_running();
                }
                let all = self.all();
                all.iter()
                    .find(|(_, m)| m.lines().any(|l| l == line))
                    .map(|(_, m)| m.clone())
                    .ok_or_else(|| {
                        format!(
                            "received: {:?}",
                            all.iter().map(|(_, m)| m).collect::<Vec<_>>()
                        )
                    })
            },
        )
        .map(|(m, _)| m)
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// -----------------------------------------------------------------------------------------------
// 1. Watch directory
// -----------------------------------------------------------------------------------------------

/// A `.torrent` dropped into the watch directory is added and downloads from a libtorrent seeder
/// (found through opentracker), and the file becomes `NAME.added`; garbage becomes
/// `NAME.invalid` with the reason in `NAME.invalid.txt`; a half-written `.torrent` is neither
/// added nor declared invalid until the rest of it arrives.
#[test]
fn watch_dir_adds_complete_torrents_only() {
    let env = TestEnv::new("daemon-watch");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("seed"), "watched", 3 * MIB + 4_321, 4, 101);
    let torrent = payload.make_torrent(
        &env.path().join("watched.torrent"),
        16,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    // A second torrent, for the half-written drop (nobody seeds it; it only has to be added).
    let other = Payload::single(&env.subdir("other"), "half.bin", 700 * KIB, 102);
    let half_torrent = other.make_torrent(&env.path().join("half-src.torrent"), 15, &[]);
    let _seeder = LibtorrentPeer::seed(&env, &torrent.path, &payload.dir);
    tracker.wait_seeder(torrent.info_hash, Duration::from_secs(20));

    let (d, dirs) = start_daemon(&env, "");
    let watch = &dirs.watch;
    assert!(
        watch.is_dir(),
        "the daemon did not create {}",
        watch.display()
    );

    // Half a .torrent first: the daemon must wait for the rest.
    let half_bytes = fs::read(&half_torrent.path).unwrap();
    let half_path = watch.join("half.torrent");
    let mut half_file = fs::File::create(&half_path).unwrap();
    half_file
        .write_all(&half_bytes[..half_bytes.len() / 2])
        .unwrap();
    half_file.flush().unwrap();
    let half_written = Instant::now();

    // A complete one and a bad one.
    fs::write(
        watch.join("garbage.torrent"),
        b"this is not a torrent file\n",
    )
    .unwrap();
    fs::copy(&torrent.path, watch.join("watched.torrent")).unwrap();

    let added = watch.join("watched.torrent.added");
    d.wait_file(
        &added,
        "watched.torrent to become .added",
        Duration::from_secs(15),
    );
    assert!(!watch.join("watched.torrent").exists());
    garbage_becomes_invalid_with_its_reason(&d, watch);

    // Two seconds after the first half: still waiting, neither added nor invalid.
    let elapsed = half_written.elapsed();
    if elapsed < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_secs(2) - elapsed);
    }
    let half_ih = half_torrent.info_hash.to_hex();
    let list = d.rpc("torrent.list", None).unwrap();
    assert!(
        !list_hashes(&list).contains(&half_ih),
        "a half-written .torrent was added: {list}"
    );
    assert!(
        half_path.exists()
            && !watch.join("half.torrent.added").exists()
            && !watch.join("half.torrent.invalid").exists(),
        "a half-written .torrent was processed: {:?}\n--- swarmd log:\n{}",
        fs::read_dir(watch)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>(),
        d.guard().log_tail(30)
    );
    // The rest arrives.
    half_file
        .write_all(&half_bytes[half_bytes.len() / 2..])
        .unwrap();
    drop(half_file);
    d.wait_file(
        &watch.join("half.torrent.added"),
        "half.torrent to become .added once complete",
        Duration::from_secs(15),
    );
    assert!(!watch.join("half.torrent.invalid").exists());
    let list = d.rpc("torrent.list", None).unwrap();
    assert!(list_hashes(&list).contains(&half_ih), "{list}");

    // The watched torrent downloads into the download dir.
    let ih = torrent.info_hash.to_hex();
    let done = d.wait_torrent(
        &ih,
        "the watched torrent to complete",
        Duration::from_secs(60),
        is_complete_seed,
    );
    assert_eq!(done["save_dir"], dirs.downloads.display().to_string());
    verify_download(&torrent, &payload, &dirs.downloads);

    // Dropping the same torrent again does not add it twice.
    fs::copy(&torrent.path, watch.join("again.torrent")).unwrap();
    d.wait_file(
        &watch.join("again.torrent.added"),
        "a duplicate to be treated as added",
        Duration::from_secs(15),
    );
    let list = d.rpc("torrent.list", None).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

/// `garbage.torrent` becomes `garbage.torrent.invalid` (its bytes kept) with a reason naming
/// the file and what is wrong in `garbage.torrent.invalid.txt`.
fn garbage_becomes_invalid_with_its_reason(d: &Daemon, watch: &std::path::Path) {
    let invalid = watch.join("garbage.torrent.invalid");
    d.wait_file(
        &invalid,
        "garbage.torrent to become .invalid",
        Duration::from_secs(15),
    );
    let reason_file = watch.join("garbage.torrent.invalid.txt");
    d.wait_file(
        &reason_file,
        "the .invalid.txt reason",
        Duration::from_secs(5),
    );
    let reason = fs::read_to_string(&reason_file).unwrap();
    assert!(
        reason.contains("garbage.torrent") && reason.contains("bencode"),
        "the reason does not say which file and why: {reason:?}"
    );
    assert!(fs::read(&invalid).unwrap().starts_with(b"this is not"));
}

// -----------------------------------------------------------------------------------------------
// 2. Every swarmctl command
// -----------------------------------------------------------------------------------------------

/// Every daemon command of swarmctl against a running daemon that downloads from a libtorrent
/// seeder, with and without `--json`, asserting on what it prints and on its exit status.
#[test]
fn swarmctl_commands_against_a_running_daemon() {
    let env = TestEnv::new("daemon-ctl");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("seed"), "ctl", 8 * MIB + 999, 4, 201);
    let torrent = payload.make_torrent(
        &env.path().join("ctl.torrent"),
        16,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let ih = torrent.info_hash.to_hex();
    let short = ih[..8].to_string();
    // A second torrent without tracker or seeder: added paused, then removed.
    let other_payload = Payload::single(&env.subdir("other-src"), "other.bin", 300 * KIB, 202);
    let other = other_payload.make_torrent(&env.path().join("other.torrent"), 15, &[]);
    let other_ih = other.info_hash.to_hex();
    let other_dir = env.subdir("other-save");
    // The seeder is throttled so that the download lasts about 8 s: peers are visible, and
    // `watch` sees progress even though a torrent without peers only ticks every 5 s (see
    // `progress_events_start_with_the_download`).
    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            upload_limit: Some(MIB),
            ..LtOptions::seed()
        },
    );
    seeder.wait_seeding();
    tracker.wait_seeder(torrent.info_hash, Duration::from_secs(20));

    // No daemon yet: exit 3, with and without --json.
    let err = ctl_not_running(&env, &["list"]);
    assert!(err.contains("not running"), "{err}");
    ctl_not_running(&env, &["stats", "--json"]);

    let (mut d, dirs) = start_daemon(&env, "");
    let watch_text = spawn_watch(&env, "watch-text", false);
    let watch_json = spawn_watch(&env, "watch-json", true);
    // Give both watchers time to connect and subscribe before anything happens (a watcher that
    // missed the `added` event fails the checks at the end, it does not hide a bug).
    std::thread::sleep(Duration::from_secs(1));
    assert!(watch_text.is_running() && watch_json.is_running());
    let mut c = Ctl {
        env: &env,
        d: &mut d,
        dirs: &dirs,
        torrent: &torrent,
        payload: &payload,
        ih,
        short,
        other: &other,
        other_ih,
        other_dir,
    };
    add_text_json_and_twice(&c);
    list_and_show(&c);
    files_and_priorities(&c);
    limits_show_set_lift(&c);
    resume_starts_the_download_from_the_seeder(&c, &seeder);
    trackers_of_a_running_torrent(&c, &tracker);
    download_completes(&c);
    pause_resume_reannounce_verify(&c);
    stats_of_the_daemon(&c);
    unknown_torrents_are_exit_4(&c);
    remove_and_delete_data(&c);
    watch_printed_the_whole_story(&c, [&watch_text, &watch_json]);
    shutdown_ends_the_watchers(&mut c, [&watch_text, &watch_json]);
}

/// What the walk through every swarmctl command works on: the daemon, the torrent it
/// downloads from the seeder, and a second torrent (paused, never downloaded).
struct Ctl<'a> {
    env: &'a TestEnv,
    d: &'a mut Daemon,
    dirs: &'a DaemonDirs,
    torrent: &'a Torrent,
    payload: &'a Payload,
    ih: String,
    short: String,
    other: &'a Torrent,
    other_ih: String,
    other_dir: PathBuf,
}

/// `add` in text and JSON; the same torrent again is exit 6, a missing file exit 2.
fn add_text_json_and_twice(c: &Ctl) {
    let d = &*c.d;
    let env = c.env;
    let other = c.other;
    let ih = c.ih.as_str();
    let other_ih = c.other_ih.as_str();
    let other_dir = &c.other_dir;
    let torrent_arg = c.torrent.path.to_str().unwrap();
    // add: text, then --json; the same torrent again is exit 6.
    let out = d.ctl_ok(&["add", torrent_arg, "--paused"]);
    assert_eq!(out.trim(), format!("added {ih} ctl"));
    let out = d.ctl_json(&[
        "add",
        other.path.to_str().unwrap(),
        "--paused",
        "-o",
        other_dir.to_str().unwrap(),
    ]);
    assert_eq!(out, json!({"info_hash": other_ih, "name": "other.bin"}));
    let err = d.ctl_exit(&["add", torrent_arg, "--json"], 6);
    assert!(err.contains(ih) || err.contains("already"), "{err}");
    d.ctl_exit(
        &["add", env.path().join("nope.torrent").to_str().unwrap()],
        2,
    );
}

/// `list` and `show` (by full hash and by prefix), text and JSON, of the two paused torrents.
fn list_and_show(c: &Ctl) {
    let d = &*c.d;
    let dirs = c.dirs;
    let torrent = c.torrent;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    let other_ih = c.other_ih.as_str();
    let other_dir = &c.other_dir;
    // list
    let out = d.ctl_ok(&["list"]);
    assert!(out.starts_with("ID"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(short))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("paused") && line.contains("ctl"), "{line}");
    assert!(out.contains(&other_ih[..8]), "{out}");
    let list = d.ctl_json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let t = find(&list, ih);
    assert_eq!(t["state"], "paused");
    assert_eq!(t["name"], "ctl");
    assert_eq!(t["total_bytes"], torrent.total_len);
    assert_eq!(t["save_dir"], dirs.downloads.display().to_string());
    assert_eq!(
        find(&list, other_ih)["save_dir"],
        other_dir.display().to_string()
    );

    // show, by full hash and by prefix
    let out = d.ctl_ok(&["show", ih]);
    assert!(out.contains(&format!("Info-hash:    {ih}")), "{out}");
    assert!(out.contains("State:        paused"), "{out}");
    let v = d.ctl_json(&["show", short]);
    assert_eq!(v["info_hash"], ih);
    assert_eq!(v["pieces"], torrent.pieces.len());
    assert_eq!(v["piece_length"], torrent.piece_length);
    assert_eq!(v["private"], false);
}

/// `files`, and setting priorities by index and range; bad ones are exit 2.
fn files_and_priorities(c: &Ctl) {
    let d = &*c.d;
    let payload = c.payload;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    // files, and priorities
    let out = d.ctl_ok(&["files", ih]);
    assert!(out.starts_with("IDX"), "{out}");
    for f in &payload.files {
        let rel = f.rel_path.trim_start_matches("ctl/");
        assert!(out.contains(rel), "{rel} not in\n{out}");
    }
    let files = d.ctl_json(&["files", ih]);
    let files = files.as_array().unwrap().clone();
    assert_eq!(files.len(), payload.files.len());
    assert!(files.iter().all(|f| f["priority"] == "normal"), "{files:?}");
    let files = d.ctl_json(&[
        "files",
        short,
        "--priority",
        "0=skip",
        "--priority",
        "1-2=high",
    ]);
    let prios: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"].as_str().unwrap())
        .collect();
    assert_eq!(prios, ["skip", "high", "high", "normal"]);
    let out = d.ctl_ok(&["files", ih, "--priority", "0-3=normal"]);
    assert_eq!(out.matches("normal").count(), 4, "{out}");
    d.ctl_exit(&["files", ih, "--priority", "99=skip"], 2);
    d.ctl_exit(&["files", ih, "--priority", "0=bogus"], 2);
}

/// `limits`: shown, set, shown again, lifted; a bad rate is exit 2.
fn limits_show_set_lift(c: &Ctl) {
    let d = &*c.d;
    // limits: show, set, lift
    let out = d.ctl_ok(&["limits"]);
    assert!(
        out.contains("download: unlimited") && out.contains("upload:   unlimited"),
        "{out}"
    );
    let l = d.ctl_json(&["limits", "--down", "4M", "--up", "500K"]);
    assert_eq!(l, json!({"download": 4 * MIB, "upload": 500 * KIB}));
    let out = d.ctl_ok(&["limits"]);
    assert!(out.contains("download: 4.0 MiB/s"), "{out}");
    assert_eq!(d.ctl_json(&["limits"])["upload"], 500 * KIB);
    let out = d.ctl_ok(&["limits", "--down", "0", "--up", "unlimited"]);
    assert!(
        out.contains("download: unlimited") && out.contains("upload:   unlimited"),
        "{out}"
    );
    d.ctl_exit(&["limits", "--down", "lots"], 2);
}

/// `resume`: the download starts, and `peers` lists the seeder while it runs.
fn resume_starts_the_download_from_the_seeder(c: &Ctl, seeder: &LibtorrentPeer) {
    let d = &*c.d;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    // resume: the download starts; peers are listed while it runs.
    let out = d.ctl_ok(&["resume", short]);
    assert_eq!(out.trim(), format!("{short}: resumed"));
    let seeder_addr = format!("127.0.0.1:{}", seeder.port());
    wait_for(
        "swarmd to connect to the seeder",
        Duration::from_secs(20),
        POLL,
        || {
            d.guard().assert_running();
            let peers = d.rpc("torrent.peers", Some(json!({"torrent": ih})))?;
            let found = peers
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["addr"] == seeder_addr.as_str()));
            if found {
                Ok(())
            } else {
                Err(peers.to_string())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(40)));
    let peers = d.ctl_json(&["peers", ih]);
    let p = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["addr"] == seeder_addr.as_str())
        .unwrap_or_else(|| panic!("the seeder is gone already: {peers}"));
    assert_eq!(p["direction"], "outgoing");
    assert_eq!(p["source"], "tracker");
    let client = p["client"].as_str().unwrap().to_lowercase();
    // From the peer id ("LT 2080") or, once its extension handshake is in, its `v`
    // (the driver's user agent "swarm-it-lt/…").
    assert!(
        client.contains("lt ") || client.contains("libtorrent") || client.contains("-lt/"),
        "{p}"
    );
    let out = d.ctl_ok(&["peers", short]);
    assert!(
        out.contains(&seeder_addr) || out.contains("no peers"),
        "{out}"
    );
    assert!(
        out.starts_with("ADDRESS") || out.starts_with("no peers"),
        "{out}"
    );
}

/// `trackers` of a running torrent: its one tracker, contacted, with peers.
fn trackers_of_a_running_torrent(c: &Ctl, tracker: &Opentracker) {
    let d = &*c.d;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    // trackers (of a running torrent: see `trackers_of_a_paused_torrent_are_listed`)
    let trackers = d.ctl_json(&["trackers", ih]);
    assert_eq!(trackers.as_array().map(Vec::len), Some(1), "{trackers}");
    assert_eq!(trackers[0]["url"], tracker.announce_url());
    assert_eq!(trackers[0]["tier"], 0);
    assert_eq!(trackers[0]["status"], "ok", "{trackers}");
    assert!(
        trackers[0]["peers_received"].as_u64() >= Some(1),
        "{trackers}"
    );
    let out = d.ctl_ok(&["trackers", short]);
    assert!(out.starts_with("TIER"), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains(&tracker.announce_url()))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.trim_end().ends_with("ok"), "{row}");
}

/// The download completes with correct data.
fn download_completes(c: &Ctl) {
    let d = &*c.d;
    let dirs = c.dirs;
    let torrent = c.torrent;
    let payload = c.payload;
    let ih = c.ih.as_str();
    let done = d.wait_torrent(
        ih,
        "the download to complete",
        Duration::from_secs(60),
        is_complete_seed,
    );
    assert!(done["completed_at"].is_i64(), "{done}");
    verify_download(torrent, payload, &dirs.downloads);
}

/// `pause`/`resume`/`reannounce`/`verify` of the seeding torrent, text and JSON.
fn pause_resume_reannounce_verify(c: &Ctl) {
    let d = &*c.d;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    // pause/resume with --json (of a seeding torrent; mid-download: `pause_and_resume_mid_download`)
    let v = d.ctl_json(&["pause", ih]);
    assert_eq!(v, json!({"torrent": ih, "result": "paused"}));
    d.wait_torrent(ih, "state paused", Duration::from_secs(5), |v| {
        v["state"] == "paused"
    });
    let v = d.ctl_json(&["resume", ih]);
    assert_eq!(v, json!({"torrent": ih, "result": "resumed"}));
    d.wait_torrent(
        ih,
        "seeding again",
        Duration::from_secs(5),
        is_complete_seed,
    );

    // reannounce
    let out = d.ctl_ok(&["reannounce", ih]);
    assert_eq!(out.trim(), format!("{ih}: announcing"));
    let v = d.ctl_json(&["reannounce", short]);
    assert_eq!(v["result"], "announcing");

    // verify: a recheck of good data ends seeding with everything
    let out = d.ctl_ok(&["verify", ih]);
    assert_eq!(out.trim(), format!("{ih}: verifying"));
    d.wait_torrent(
        ih,
        "the recheck to end",
        Duration::from_secs(20),
        is_complete_seed,
    );
    let v = d.ctl_json(&["verify", ih]);
    assert_eq!(v, json!({"torrent": ih, "result": "verifying"}));
    let v = d.wait_torrent(
        ih,
        "the second recheck to end",
        Duration::from_secs(20),
        is_complete_seed,
    );
    assert_eq!(v["hash_failures"], 0);
}

/// `stats`, text and JSON: the daemon's pid, mode, socket and config, the session's counts.
fn stats_of_the_daemon(c: &Ctl) {
    let d = &*c.d;
    let dirs = c.dirs;
    let torrent = c.torrent;
    // stats
    let out = d.ctl_ok(&["stats"]);
    assert!(out.contains(&format!("pid {}", d.guard().pid())), "{out}");
    assert!(
        out.contains("torrents:   2 (0 downloading, 1 seeding)"),
        "{out}"
    );
    assert!(out.contains(&format!("port:       {}", d.port())), "{out}");
    let s = d.ctl_json(&["stats"]);
    assert_eq!(s["daemon"]["pid"], d.guard().pid());
    assert_eq!(s["daemon"]["mode"], "user");
    assert_eq!(s["daemon"]["socket"], dirs.socket.display().to_string());
    assert_eq!(
        s["daemon"]["config_file"],
        dirs.config.display().to_string()
    );
    assert_eq!(s["session"]["torrents"], 2);
    assert_eq!(s["session"]["seeding"], 1);
    assert_eq!(s["session"]["listen_port"], d.port());
    assert!(
        s["session"]["downloaded"].as_u64().unwrap() >= torrent.total_len,
        "{s}"
    );
}

/// Every command on an unknown torrent is exit 4; a too short prefix never succeeds.
fn unknown_torrents_are_exit_4(c: &Ctl) {
    let d = &*c.d;
    // unknown torrents: exit 4, with and without --json
    let unknown = "0123456789abcdef0123456789abcdef01234567";
    let err = d.ctl_exit(&["show", unknown], 4);
    assert!(err.contains("0123456789"), "{err}");
    d.ctl_exit(&["show", "abcdef", "--json"], 4);
    d.ctl_exit(&["pause", unknown], 4);
    d.ctl_exit(&["resume", unknown, "--json"], 4);
    d.ctl_exit(&["verify", unknown], 4);
    d.ctl_exit(&["files", unknown, "--json"], 4);
    d.ctl_exit(&["peers", unknown], 4);
    d.ctl_exit(&["trackers", unknown, "--json"], 4);
    d.ctl_exit(&["remove", unknown], 4);
    // A prefix that is too short is a usage error or "no such torrent", never success.
    let (code, _, _) = d.ctl(&["show", "01"]);
    assert!(code == 2 || code == 4, "show 01 exited {code}");
}

/// `remove`, then `remove --delete-data --json`, which deletes the data.
fn remove_and_delete_data(c: &Ctl) {
    let d = &*c.d;
    let dirs = c.dirs;
    let short = c.short.as_str();
    let other_ih = c.other_ih.as_str();
    // remove, then remove --delete-data --json
    let out = d.ctl_ok(&["remove", other_ih]);
    assert_eq!(out.trim(), format!("{other_ih}: removed"));
    let data = dirs.downloads.join("ctl");
    assert!(data.exists());
    let v = d.ctl_json(&["remove", short, "--delete-data"]);
    assert_eq!(
        v,
        json!({"torrent": short, "result": "removed, data deleted"})
    );
    wait_until(
        "the data to be deleted",
        Duration::from_secs(10),
        POLL,
        || !data.exists(),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", data.display()));
    assert_eq!(d.ctl_ok(&["list"]).trim(), "no torrents");
    assert_eq!(d.ctl_json(&["list"]), json!([]));
}

/// `swarmctl watch` printed one line per event (text) and JSON lines, the whole story.
fn watch_printed_the_whole_story(c: &Ctl, watchers: [&ChildGuard; 2]) {
    let [watch_text, watch_json] = watchers;
    let ih = c.ih.as_str();
    let short = c.short.as_str();
    let other_ih = c.other_ih.as_str();
    // watch printed the whole story: one line per event (text) and JSON lines.
    wait_until(
        "watch to print the removal",
        Duration::from_secs(5),
        POLL,
        || {
            output_of(watch_json).contains("\"removed\"")
                && output_of(watch_text).contains("removed")
        },
    )
    .ok();
    let text = output_of(watch_text);
    for needle in [
        format!("{short} added ctl"),
        "% downloading".to_string(),
        format!("{short} completed ctl"),
        format!("{short} removed"),
        format!("{} removed", &other_ih[..8]),
    ] {
        assert!(
            text.contains(&needle),
            "`swarmctl watch` did not print {needle:?}:\n{text}"
        );
    }
    let events: Vec<Value> = output_of(watch_json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("watch --json line {l:?}: {e}")))
        .collect();
    let kinds = |kind: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind && e["info_hash"] == ih)
            .count()
    };
    assert_eq!(kinds("added"), 1, "{events:?}");
    assert!(kinds("progress") >= 2, "{events:?}");
    assert_eq!(kinds("completed"), 1, "{events:?}");
    assert_eq!(kinds("removed"), 1, "{events:?}");
    assert!(
        events.iter().any(|e| e["event"] == "progress"
            && e["state"] == "downloading"
            && e["progress"].as_f64().is_some_and(|p| p > 0.0 && p < 1.0)),
        "no progress event in the middle of the download: {events:?}"
    );
}

/// `shutdown`: the daemon stops, the watchers learn it (exit 3), swarmctl says "not running".
fn shutdown_ends_the_watchers(c: &mut Ctl, watchers: [&ChildGuard; 2]) {
    let d = &mut *c.d;
    let dirs = c.dirs;
    let [watch_text, watch_json] = watchers;
    // shutdown: the daemon stops, the watchers learn it (exit 3), swarmctl then says "not running"
    let out = d.ctl_ok(&["shutdown"]);
    assert_eq!(out.trim(), "swarmd is shutting down");
    let st = d.proc.wait_exit(Duration::from_secs(15));
    assert!(st.success(), "swarmd exited with {st}");
    assert!(!dirs.socket.exists(), "the socket was not removed");
    for w in [watch_text, watch_json] {
        let st = w
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}: {}", w.log_tail(5)));
        assert_eq!(st.code(), Some(3), "{} exited with {st}", w.name());
    }
    d.ctl_exit(&["list", "--json"], 3);
    d.ctl_exit(&["shutdown"], 3);
    let _ = d.proc.guard_mut().stop();
}

/// `pause` in the middle of a download stops it (no peers, no progress); `resume` picks it up
/// again at once from the same seeder and completes it.
#[test]
fn pause_and_resume_mid_download() {
    let env = TestEnv::new("daemon-pause");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "pause.bin", 6 * MIB, 251);
    let seed_opts = LtOptions {
        upload_limit: Some(MIB),
        ..LtOptions::seed()
    };
    let (payload, torrent, _seeder) = seeded(&env, &tracker, payload, 16, seed_opts);
    let ih = torrent.info_hash.to_hex();
    let (d, dirs) = start_daemon(&env, "");
    d.ctl_ok(&["add", torrent.path.to_str().unwrap()]);
    let total = torrent.total_len;
    d.wait_torrent(
        &ih,
        "the download to reach 20%",
        Duration::from_secs(30),
        |v| v["have_bytes"].as_u64().unwrap_or(0) * 5 >= total,
    );
    let out = d.ctl_ok(&["pause", &ih]);
    assert_eq!(out.trim(), format!("{ih}: paused"));
    let paused = d.wait_torrent(&ih, "paused without peers", Duration::from_secs(5), |v| {
        v["state"] == "paused" && v["peers"] == 0
    });
    std::thread::sleep(Duration::from_secs(1));
    let still = d.show(&ih).unwrap();
    assert_eq!(
        still["have_bytes"], paused["have_bytes"],
        "a paused torrent went on downloading"
    );
    assert!(still["have_bytes"].as_u64().unwrap() < total);
    d.ctl_ok(&["resume", &ih]);
    // The seeder is still there and known: the download goes on within seconds, not after a
    // minute-long reconnect delay.
    d.wait_torrent(
        &ih,
        "the download to go on after resume",
        Duration::from_secs(10),
        |v| v["have_bytes"].as_u64() > still["have_bytes"].as_u64(),
    );
    d.wait_torrent(
        &ih,
        "the download to complete after resume",
        Duration::from_secs(30),
        is_complete_seed,
    );
    verify_download(&torrent, &payload, &dirs.downloads);
}

/// `swarmctl watch --json` reports progress from the first seconds of a download, not only
/// once the torrent's next idle tick (every 5 s while it has no peers) comes round.
#[test]
fn progress_events_start_with_the_download() {
    let env = TestEnv::new("daemon-progress");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "prog.bin", 6 * MIB, 271);
    let seed_opts = LtOptions {
        upload_limit: Some(MIB),
        ..LtOptions::seed()
    };
    let (_payload, torrent, _seeder) = seeded(&env, &tracker, payload, 16, seed_opts);
    let ih = torrent.info_hash.to_hex();
    let (d, _dirs) = start_daemon(&env, "");
    let watch = spawn_watch(&env, "watch-json", true);
    std::thread::sleep(Duration::from_secs(1));
    d.ctl_ok(&["add", torrent.path.to_str().unwrap()]);
    let added = Instant::now();
    // Data flows within a fraction of a second (the seeder is in the tracker's list)...
    d.wait_torrent(&ih, "the first block", Duration::from_secs(5), |v| {
        v["downloaded"].as_u64() > Some(0)
    });
    // ...and `watch` says so within the 2 s progress period (plus slack), not 5 s later.
    let seen = wait_until(
        "a progress event in state downloading",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            output_of(&watch).lines().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|e| {
                    e["event"] == "progress"
                        && e["info_hash"] == ih.as_str()
                        && e["state"] == "downloading"
                        && e["progress"].as_f64() > Some(0.0)
                })
            })
        },
    );
    let after = added.elapsed();
    assert!(
        seen.is_ok(),
        "no progress event at all: {}",
        output_of(&watch)
    );
    assert!(
        after < Duration::from_millis(3500),
        "the first progress event came {after:?} after the add (download already running):\n{}",
        output_of(&watch)
    );
}

/// A paused torrent still lists its trackers (status `not_contacted` or the last known one):
/// `torrent.trackers` describes the torrent, not the announcer's current work list.
#[test]
fn trackers_of_a_paused_torrent_are_listed() {
    let env = TestEnv::new("daemon-paused-trackers");
    let fake = FakeHttpTracker::start();
    let payload = Payload::single(&env.subdir("seed"), "pt.bin", 64 * KIB, 261);
    let torrent = payload.make_torrent(&env.path().join("pt.torrent"), 15, &[&fake.announce_url()]);
    let ih = torrent.info_hash.to_hex();
    let (d, _dirs) = start_daemon(&env, "");
    d.ctl_ok(&["add", torrent.path.to_str().unwrap(), "--paused"]);
    let trackers = d.ctl_json(&["trackers", &ih]);
    assert_eq!(
        trackers.as_array().map(Vec::len),
        Some(1),
        "a paused torrent lists no trackers: {trackers}"
    );
    assert_eq!(trackers[0]["url"], fake.announce_url());
    assert_eq!(trackers[0]["status"], "not_contacted", "{trackers}");
    let out = d.ctl_ok(&["trackers", &ih]);
    assert!(out.contains(&fake.announce_url()), "{out}");
    assert!(fake.announces().is_empty(), "a paused torrent announced");
}

// -----------------------------------------------------------------------------------------------
// 3. kill -9 and restart; SIGTERM announces stopped
// -----------------------------------------------------------------------------------------------

/// `kill -9` in the middle of a throttled download (past 40% and after the daemon's first
/// periodic resume save, which comes every 10 s), restart: the torrent is back, the pieces it had
/// verified are not downloaded again (the `downloaded` counter, restored from the resume record,
/// grows by at most what was missing plus a few pieces), and the data ends up correct.
#[test]
fn kill_9_mid_download_and_restart_resumes() {
    let env = TestEnv::new("daemon-kill9");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "big.bin", 32 * MIB, 301);
    let seed_opts = LtOptions {
        // 21 s for the whole payload: the first resume save (10 s) comes in the middle.
        upload_limit: Some(3 * MIB / 2),
        ..LtOptions::seed()
    };
    let (payload, torrent, _seeder) = seeded(&env, &tracker, payload, 18, seed_opts);
    let ih = torrent.info_hash.to_hex();
    let piece = torrent.piece_length;

    let (mut d, dirs) = start_daemon(&env, "");
    let record_path = dirs.state.join("torrents").join(format!("{ih}.resume"));
    let read_record =
        || -> Option<Value> { serde_json::from_slice(&fs::read(&record_path).ok()?).ok() };
    let out = d.ctl_ok(&["add", torrent.path.to_str().unwrap()]);
    assert!(out.contains(&ih), "{out}");
    let total = torrent.total_len;
    let before = d.wait_torrent(
        &ih,
        "the download to pass 40% and a resume save",
        Duration::from_secs(60),
        |v| {
            v["have_bytes"].as_u64().unwrap_or(0) * 10 >= total * 4
                && read_record().is_some_and(|r| r["downloaded"].as_u64() > Some(0))
        },
    );
    d.proc.guard_mut().kill();
    let have_before = before["have_bytes"].as_u64().unwrap();
    assert!(
        have_before < total,
        "the download finished before the kill: {}",
        brief(&before)
    );
    // A socket with nobody behind it: "not running".
    assert!(
        dirs.socket.exists(),
        "a killed daemon cannot remove its socket"
    );
    d.ctl_exit(&["list"], 3);

    let (restored, record_have) =
        resume_record(&read_record().expect("the resume record vanished"), piece);

    // The seeder is still in the tracker's list: the restarted daemon finds it at once. So the
    // first look after the start-up check may already include a few new blocks; every byte
    // of `have` gained since the check was downloaded, which bounds what the check found.
    let d = Daemon::start(&env, &dirs, "daemon-restarted");
    let list = d.ctl_json(&["list"]);
    assert_eq!(
        list_hashes(&list),
        vec![ih.clone()],
        "the torrent did not come back: {list}"
    );
    let after = d.wait_torrent(
        &ih,
        "the start-up check to end",
        Duration::from_secs(30),
        |v| v["state"] != "checking",
    );
    let have_now = after["have_bytes"].as_u64().unwrap();
    let downloaded_now = after["downloaded"].as_u64().unwrap();
    eprintln!(
        "before kill: {}; record: downloaded={restored} have={record_have}; after restart: {}",
        brief(&before),
        brief(&after)
    );
    assert!(
        downloaded_now >= restored,
        "the downloaded counter was not restored from the resume record ({restored}): {}",
        brief(&after)
    );
    let since_start = downloaded_now - restored;
    let have_at_start = have_now.saturating_sub(since_start);
    // Everything verified before the kill is still there (the last few pieces may have been in
    // flight, or verified after the last resume save and so rechecked).
    assert!(
        have_at_start + 4 * piece >= have_before.max(record_have),
        "pieces were lost: had {have_before} before the kill ({record_have} in the resume \
         record), {have_at_start} after the restart"
    );

    let done = d.wait_torrent(
        &ih,
        "the download to complete after the restart",
        Duration::from_secs(60),
        is_complete_seed,
    );
    let downloaded_after = done["downloaded"].as_u64().unwrap() - restored;
    let missing = total - have_at_start;
    eprintln!("after the restart: downloaded {downloaded_after} bytes, {missing} were missing");
    assert!(
        downloaded_after <= missing + 4 * piece,
        "downloaded {downloaded_after} bytes after the restart, but only {missing} were missing \
         (+ 4 pieces of {piece}): verified pieces were downloaded again"
    );
    // And it did download what it lacked (the counter counts after a restart).
    assert!(
        downloaded_after >= total - have_now,
        "downloaded only {downloaded_after} bytes after the restart for {} missing ones",
        total - have_now
    );
    verify_download(&torrent, &payload, &dirs.downloads);
}

/// A resume record's `downloaded` counter and the bytes its `have` bitfield (hex) names, for
/// pieces of `piece` bytes.
fn resume_record(record: &Value, piece: u64) -> (u64, u64) {
    let restored = record["downloaded"].as_u64().unwrap();
    let record_have = record["have"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c.to_digit(16).expect("hex bitfield").count_ones() as u64)
        .sum::<u64>()
        * piece;
    (restored, record_have)
}

/// A torrent added with `-o DIR --paused` keeps its save directory and its paused state across a
/// `kill -9` that comes before any periodic resume save.
#[test]
fn kill_9_soon_after_add_keeps_save_dir_and_paused() {
    let env = TestEnv::new("daemon-kill9-early");
    let payload = Payload::single(&env.subdir("seed"), "early.bin", 128 * KIB, 311);
    let torrent = payload.make_torrent(&env.path().join("early.torrent"), 15, &[]);
    let ih = torrent.info_hash.to_hex();
    let save = env.subdir("elsewhere");
    let (mut d, dirs) = start_daemon(&env, "");
    d.ctl_ok(&[
        "add",
        torrent.path.to_str().unwrap(),
        "-o",
        save.to_str().unwrap(),
        "--paused",
    ]);
    let v = d.wait_torrent(
        &ih,
        "the torrent to be added, paused",
        Duration::from_secs(5),
        |v| v["state"] == "paused",
    );
    assert_eq!(v["save_dir"], save.display().to_string());
    std::thread::sleep(Duration::from_millis(500));
    d.proc.guard_mut().kill();

    let _d = Daemon::start(&env, &dirs, "daemon-restarted");
    let list = d.ctl_json(&["list"]);
    let t = find(&list, &ih);
    assert_eq!(
        (t["save_dir"].as_str(), t["state"].as_str()),
        (Some(save.to_str().unwrap()), Some("paused")),
        "after a crash, the torrent came back elsewhere or unpaused: {t}"
    );
}

/// A clean SIGTERM: the tracker sees `event=stopped`, systemd sees `STOPPING=1`, the daemon
/// exits 0 and removes its socket. On the way: `READY=1` with a `STATUS=`, and `WATCHDOG=1`
/// pings every `WATCHDOG_USEC / 2`.
#[test]
fn sd_notify_and_sigterm_announces_stopped() {
    let env = TestEnv::new("daemon-notify");
    let fake = FakeHttpTracker::start();
    fake.set_interval(60);
    let payload = Payload::single(&env.subdir("seed"), "term.bin", 256 * KIB, 401);
    let torrent = payload.make_torrent(
        &env.path().join("term.torrent"),
        15,
        &[&fake.announce_url()],
    );
    let notify = NotifySocket::bind(&env);

    let dirs = config(&env, "");
    let d = Daemon::start_with(
        &env,
        &dirs,
        Swarmd::command(&[] as &[&str])
            .name("daemon")
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "2000000"),
    );
    let ready = notify.wait_line("READY=1", Duration::from_secs(5), Some(d.guard()));
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or_else(|| panic!("READY=1 without STATUS=: {ready:?}"));
    assert!(status.contains("0 torrents"), "{status:?}");
    // Two pings a period (2 s): at least three in the 3 s after the first.
    let first_ping = notify.wait_line("WATCHDOG=1", Duration::from_secs(3), Some(d.guard()));
    assert_eq!(first_ping, "WATCHDOG=1");
    std::thread::sleep(Duration::from_secs(3));
    let pings = notify.times_of("WATCHDOG=1");
    assert!(pings.len() >= 3, "only {} WATCHDOG=1 in ~3 s", pings.len());

    let ih = torrent.info_hash;
    d.ctl_ok(&["add", torrent.path.to_str().unwrap()]);
    let started = fake.wait_for_announce("event=started", Duration::from_secs(10), |a| {
        a.event() == Some("started") && a.info_hash() == Some(ih)
    });
    assert_eq!(started.port(), Some(d.port()));

    d.guard().signal_leader(libc::SIGTERM);
    let st = d.proc.wait_exit(Duration::from_secs(15));
    assert!(st.success(), "swarmd exited with {st} after SIGTERM");
    let stopped = fake.wait_for_announce("event=stopped", Duration::from_secs(1), |a| {
        a.event() == Some("stopped") && a.info_hash() == Some(ih)
    });
    assert_eq!(stopped.port(), Some(d.port()));
    notify.wait_line("STOPPING=1", Duration::from_secs(1), None);
    assert!(!dirs.socket.exists(), "the socket was not removed");
    // Resume state was flushed: the record is there for the next start.
    assert!(dirs
        .state
        .join("torrents")
        .join(format!("{}.resume", ih.to_hex()))
        .exists());
}

/// An HTTP tracker that answers announces at once, except `event=stopped`, which it receives
/// and never answers.
struct StallingTracker {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicBool>,
    stopped: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl StallingTracker {
    fn start() -> StallingTracker {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let stopped = Arc::new(Mutex::new(None));
        let thread = {
            let (stop, started, stopped) = (stop.clone(), started.clone(), stopped.clone());
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut conn, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut req = Vec::new();
                    let mut buf = [0u8; 2048];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match std::io::Read::read(&mut conn, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&req);
                    if head.contains("event=stopped") {
                        stopped.lock().unwrap().get_or_insert(Instant::now());
                        held.push(conn); // never answered
                        continue;
                    }
                    if head.contains("event=started") {
                        started.store(true, Ordering::Relaxed);
                    }
                    let body = b"d8:intervali1800e5:peers0:e";
                    let _ = write!(
                        conn,
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(body);
                }
            })
        };
        StallingTracker {
            addr,
            stop,
            started,
            stopped,
            thread: Some(thread),
        }
    }

    fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }
}

impl Drop for StallingTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `[trackers] stopped_timeout_secs` bounds how long a SIGTERM waits for a tracker that does not
/// answer the `stopped` announce.
#[test]
fn stopped_timeout_from_config_bounds_shutdown() {
    let env = TestEnv::new("daemon-stopped-timeout");
    let tracker = StallingTracker::start();
    let payload = Payload::single(&env.subdir("seed"), "st.bin", 64 * KIB, 421);
    let torrent = payload.make_torrent(
        &env.path().join("st.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    let dirs = config(
        &env,
        "\n[trackers]\nstopped_timeout_secs = 1\nannounce_timeout_secs = 5\n",
    );
    let d = Daemon::start(&env, &dirs, "daemon");
    d.ctl_ok(&["add", torrent.path.to_str().unwrap()]);
    wait_until(
        "the started announce",
        Duration::from_secs(10),
        POLL,
        || tracker.started.load(Ordering::Relaxed),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(20)));
    let t0 = Instant::now();
    d.guard().signal_leader(libc::SIGTERM);
    let st = d.proc.wait_exit(Duration::from_secs(20));
    let took = t0.elapsed();
    assert!(st.success(), "swarmd exited with {st}");
    assert!(
        tracker.stopped.lock().unwrap().is_some(),
        "no stopped announce was sent"
    );
    assert!(
        took < Duration::from_millis(3500),
        "shutdown took {took:?} with stopped_timeout_secs = 1"
    );
}

// -----------------------------------------------------------------------------------------------
// 4. Watchdog with a frozen actor system
// -----------------------------------------------------------------------------------------------

/// A fault-injection daemon with `SWARMD_FAULTS=faults` under a stand-in for systemd's notify
/// socket, with a 2 s watchdog period (pings every second), once it is ready and pinging.
fn start_watched(env: &TestEnv, faults: &str) -> (NotifySocket, DaemonDirs, Daemon) {
    let notify = NotifySocket::bind(env);
    let dirs = config(env, "");
    let d = Daemon::start_with(
        env,
        &dirs,
        Daemon::fault_build("daemon-faulty", faults)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "2000000"),
    );
    notify.wait_line("READY=1", Duration::from_secs(5), Some(d.guard()));
    notify.wait_line("WATCHDOG=1", Duration::from_secs(3), Some(d.guard()));
    (notify, dirs, d)
}

/// With `SWARMD_FAULTS=torrent.freeze_after:2` (fault-injection build) the thread of the one
/// torrent blocks for good 2 s after the torrent started. The root's thread, which runs the
/// control socket and the watchdog task, runs on: the watchdog itself finds the engine's
/// heartbeat late (and logs it), stops the pings, and the daemon still answers. (Freezing the
/// root's thread would freeze the watchdog task too, and stop the pings whether or not the
/// watchdog looks at the heartbeat.)
#[test]
fn frozen_actor_system_stops_the_watchdog() {
    let env = TestEnv::new("daemon-freeze");
    let (notify, dirs, mut d) = start_watched(&env, "torrent.freeze_after:2");
    let payload = Payload::single(&dirs.downloads, "frozen.bin", 64 * KIB, 431);
    let torrent = payload.make_torrent(&env.path().join("frozen.torrent"), 15, &[]);
    d.add(&torrent.path, None);
    let frozen = |d: &Daemon| !d.log_lines("fault injection: freezing").is_empty();
    wait_until("the injected freeze", Duration::from_secs(10), POLL, || {
        d.guard().assert_running();
        frozen(&d)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    let frozen_at = Instant::now();
    let before = notify.times_of("WATCHDOG=1").len();
    assert!(
        before >= 2,
        "too few WATCHDOG=1 before the freeze: {before}"
    );
    // The watchdog task is alive and decides: it finds the heartbeat late.
    wait_until(
        "the watchdog to miss a heartbeat",
        Duration::from_secs(5),
        POLL,
        || {
            d.guard().assert_running();
            !d.log_lines("engine heartbeat missed its deadline")
                .is_empty()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.guard().log_tail(30)));
    // No ping in a 4 s window starting 1 s after the freeze (pings are 1 s apart).
    let window = (
        frozen_at + Duration::from_secs(1),
        frozen_at + Duration::from_secs(5),
    );
    std::thread::sleep(window.1.saturating_duration_since(Instant::now()));
    let late: Vec<_> = notify
        .times_of("WATCHDOG=1")
        .into_iter()
        .filter(|t| *t >= window.0)
        .map(|t| t - frozen_at)
        .collect();
    assert!(
        late.is_empty(),
        "WATCHDOG=1 still sent after a torrent thread froze (at +{late:?})\n{}",
        d.guard().log_tail(20)
    );
    // The root's thread answers throughout.
    d.rpc("torrent.list", None)
        .unwrap_or_else(|e| panic!("the control socket no longer answers: {e}"));
    d.proc.guard_mut().kill();
}

/// A global service crashing past its budget stops the daemon with exit code 1, the code
/// `Restart=on-failure` restarts (docs/reliability.md). `rate_limiter.serve:1.0` crashes the
/// rate limiter on every pass, and the test sets the limits again and again (a pass each) until
/// the root gives up: 5 restarts within 60 s, which the backoff (0.2 s, 0.4 s … 3.2 s) makes
/// about 7 s. The daemon says `STOPPING=1`, no `WATCHDOG=1` follows, and the process ends.
#[test]
fn service_past_its_budget_stops_the_daemon_with_exit_1() {
    let env = TestEnv::new("daemon-service-budget");
    let (notify, _dirs, d) = start_watched(&env, "rate_limiter.serve:1.0");
    let limits = json!({ "download": 1 << 20 });
    let (status, took) = wait_for("the daemon to stop", Duration::from_secs(40), POLL, || {
        if let Some(st) = d.guard().exit_status() {
            return Ok(st);
        }
        // Each order is a pass of the rate limiter (lost while it waits for its restart).
        let _ = d.rpc("session.set_limits", Some(limits.clone()));
        Err(format!(
            "{} restarts so far",
            d.log_lines("swarm_engine::root: restarting").len()
        ))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: the daemon lives on past the budget\n{}",
            d.guard().log_tail(30)
        )
    });
    let log = d.guard().log_contents();
    eprintln!("exited with {status} after {took:?}");
    assert_eq!(
        status.code(),
        Some(1),
        "exit status {status}\n{}",
        d.guard().log_tail(30)
    );
    assert!(
        log.contains("RateLimiter service gave up after repeated crashes"),
        "the reason is not in the log:\n{}",
        d.guard().log_tail(30)
    );
    let restarts = log
        .lines()
        .filter(|l| l.contains("swarm_engine::root: restarting") && l.contains("RateLimiter"))
        .count();
    assert_eq!(restarts, 5, "the budget is 5 restarts");
    let stopping = notify.times_of("STOPPING=1");
    assert_eq!(stopping.len(), 1, "no STOPPING=1: {:?}", notify.all());
    let fed_after: Vec<_> = notify
        .times_of("WATCHDOG=1")
        .into_iter()
        .filter(|t| *t > stopping[0])
        .collect();
    assert!(
        fed_after.is_empty(),
        "the watchdog was fed after STOPPING=1"
    );
}

// -----------------------------------------------------------------------------------------------
// 5. Control socket and config errors
// -----------------------------------------------------------------------------------------------

/// Reads one answer line.
fn read_answer(reader: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    let n = reader.read_line(&mut line).expect("reading an answer");
    assert!(n > 0, "the daemon closed the connection");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line:?}"))
}

#[track_caller]
fn assert_error(v: &Value, id: Value, code: i64) {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert_eq!(v["id"], id, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v.get("result").is_none(), "{v}");
}

/// The socket file is mode 0660; bad requests (not JSON, not a request, unknown method, wrong
/// params, a 10 MiB line) get JSON-RPC errors and the connection and the daemon carry on.
#[test]
fn control_socket_mode_and_bad_requests() {
    let env = TestEnv::new("daemon-socket");
    let (d, dirs) = start_daemon(&env, "\n[limits]\ndownload_kib_s = 2048\n");
    // The config's rate limits are in force from the start.
    assert_eq!(
        d.ctl_json(&["limits"]),
        json!({"download": 2 * MIB, "upload": null})
    );

    let meta = fs::metadata(&dirs.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "socket mode");

    let stream = UnixStream::connect(&dirs.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut send = |line: &str| {
        writer.write_all(line.as_bytes()).unwrap();
        writer.write_all(b"\n").unwrap();
    };

    send("this is not json");
    assert_error(&read_answer(&mut reader), Value::Null, -32700);
    send(r#"{"jsonrpc":"2.0","id":"a","method":"no.such.method"}"#);
    assert_error(&read_answer(&mut reader), json!("a"), -32601);
    send(
        r#"{"jsonrpc":"2.0","id":2,"method":"torrent.show","params":{"torrent":"abcdef","bogus":1}}"#,
    );
    assert_error(&read_answer(&mut reader), json!(2), -32602);
    send(r#"{"jsonrpc":"2.0","id":3,"method":"torrent.show"}"#);
    assert_error(&read_answer(&mut reader), json!(3), -32602);
    send(r#"{"jsonrpc":"2.0","id":4,"method":"session.set_limits","params":{"download":"fast"}}"#);
    assert_error(&read_answer(&mut reader), json!(4), -32602);
    send(r#"{"jsonrpc":"2.0","id":5,"method":"torrent.add","params":{"path":"relative.torrent"}}"#);
    assert_error(&read_answer(&mut reader), json!(5), -32602);
    send(
        r#"{"jsonrpc":"2.0","id":6,"method":"torrent.add","params":{"metainfo":"bm90IGEgdG9ycmVudA"}}"#,
    );
    assert_error(&read_answer(&mut reader), json!(6), -32005);
    send(r#"{"id":7,"method":"daemon.info"}"#);
    assert_error(&read_answer(&mut reader), json!(7), -32600);
    send(r#"[{"jsonrpc":"2.0","id":8,"method":"daemon.info"}]"#);
    assert_error(&read_answer(&mut reader), Value::Null, -32600);
    // A notification (no id) is never answered: the next answer is the next request's.
    send(r#"{"jsonrpc":"2.0","method":"session.get_limits"}"#);
    send("");
    // A 10 MiB line (the limit is 4 MiB): skipped with an error, the connection stays usable.
    let mut huge =
        String::from(r#"{"jsonrpc":"2.0","id":9,"method":"torrent.add","params":{"metainfo":""#);
    huge.push_str(&"A".repeat(10 * MIB as usize));
    huge.push_str(r#""}}"#);
    send(&huge);
    assert_error(&read_answer(&mut reader), Value::Null, -32007);
    send(r#"{"jsonrpc":"2.0","id":10,"method":"session.stats"}"#);
    let ok = read_answer(&mut reader);
    assert_eq!(ok["id"], 10, "{ok}");
    assert_eq!(ok["result"]["torrents"], 0, "{ok}");
    assert_eq!(ok["result"]["listen_port"], d.port(), "{ok}");
    drop(reader);

    // The daemon as a whole carries on: swarmctl works, and shuts it down (with --json).
    assert!(d.guard().is_running());
    assert_eq!(d.ctl_json(&["list"]), json!([]));
    assert_eq!(
        d.ctl_json(&["shutdown"]),
        json!({"result": "shutting down"})
    );
    let st = d.proc.wait_exit(Duration::from_secs(15));
    assert!(st.success(), "swarmd exited with {st}");
    d.ctl_exit(&["stats", "--json"], 3);
}

/// An unknown key makes `check-config` and the daemon itself fail with the key and its line; a
/// bad value too; a valid file passes.
#[test]
fn config_errors_name_key_and_line() {
    let env = TestEnv::new("daemon-config");
    let run = |args: &[&str], name: &str| {
        let p = Swarmd::command(args).name(name).spawn(&env);
        let st = p.wait_exit(Duration::from_secs(15));
        (st, output_of(p.guard()))
    };

    let dirs = config(&env, "");
    let good = dirs.config.to_str().unwrap();
    let (st, out) = run(&["--config", good, "check-config"], "check-good");
    assert!(st.success(), "{out}");
    assert!(out.contains(&format!("{good}: OK")), "{out}");

    let unknown = env.path().join("unknown.toml");
    fs::write(
        &unknown,
        "[daemon]\nlog_level = \"info\"\n\n[network]\nlisten = \"127.0.0.1:1\"\nmax_peerz = 3\n",
    )
    .unwrap();
    let unknown_s = unknown.to_str().unwrap();
    for (args, name) in [
        (vec!["--config", unknown_s, "check-config"], "check-unknown"),
        (vec!["--config", unknown_s], "run-unknown"),
        (vec!["--config", unknown_s, "run"], "run-unknown-explicit"),
    ] {
        let (st, out) = run(&args, name);
        assert_eq!(st.code(), Some(1), "swarmd {args:?}: {st}\n{out}");
        assert!(
            out.contains("max_peerz") && out.contains("line 6") && out.contains(unknown_s),
            "swarmd {args:?} does not name the file, key and line:\n{out}"
        );
    }
    assert!(
        !dirs.socket.exists(),
        "a daemon with a bad config bound its socket"
    );

    let bad_value = env.path().join("bad-value.toml");
    fs::write(&bad_value, "[network]\n\nmax_peers_global = \"lots\"\n").unwrap();
    let (st, out) = run(
        &["--config", bad_value.to_str().unwrap(), "check-config"],
        "check-bad-value",
    );
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains("max_peers_global") && out.contains("line 3"),
        "does not name the key and line:\n{out}"
    );
}

/// `stats` tells whether the DHT runs: its node count (0 here: nobody to bootstrap from), not
/// `off` as when it is disabled.
#[test]
fn stats_shows_the_dht_that_runs() {
    let env = TestEnv::new("daemon-stats-dht");
    let (d, _dirs) = start_daemon(&env, "[dht]\nenabled = true\nbootstrap = []\n");
    let s = d.ctl_json(&["stats"]);
    assert_eq!(s["session"]["dht_nodes"], 0, "{s}");
    let out = d.ctl_ok(&["stats"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("dht nodes:"))
        .unwrap_or_else(|| panic!("no dht line in {out}"));
    assert!(!line.contains("off"), "{line}");
    let (off, _) = start_daemon(&TestEnv::new("daemon-stats-nodht"), "");
    assert_eq!(
        off.ctl_json(&["stats"])["session"]["dht_nodes"],
        Value::Null
    );
}

/// Pause, resume and verify are events the moment they happen (`state`), not only at the next
/// progress tick, which an idle torrent never sends.
#[test]
fn state_changes_are_events() {
    let env = TestEnv::new("daemon-state-events");
    let tracker = Opentracker::start(&env, &[]);
    let (d, dirs) = start_daemon(&env, "");
    let payload = Payload::single(&env.subdir("src"), "events.bin", MIB, 83);
    let torrent = payload.make_torrent(
        &env.path().join("events.torrent"),
        16,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let ih = torrent.info_hash.to_hex();
    let events = Events::subscribe(&dirs.socket);
    d.ctl_ok(&[
        "add",
        torrent.path.to_str().unwrap(),
        "-o",
        payload.dir.to_str().unwrap(),
    ]);
    let states = || -> Vec<String> {
        events
            .of("state", &ih)
            .iter()
            .map(|e| e["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let wait_state = |what: &str, n: usize, state: &str| {
        wait_until(what, Duration::from_secs(20), POLL, || {
            states().get(n).is_some_and(|s| s == state)
        })
        .unwrap_or_else(|e| panic!("{e}: state events {:?}", states()));
    };
    wait_state("seeding after the check", 0, "seeding");
    d.ctl_ok(&["pause", &ih]);
    wait_state("paused", 1, "paused");
    d.ctl_ok(&["resume", &ih]);
    wait_state("seeding again", 2, "seeding");
    d.ctl_ok(&["verify", &ih]);
    wait_state("checking", 3, "checking");
    wait_state("seeding after verify", 4, "seeding");
    let watch = d.ctl_ok(&["show", &ih]);
    assert!(watch.contains("seeding"), "{watch}");
}
