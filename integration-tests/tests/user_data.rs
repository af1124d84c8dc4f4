//! What users' ratio and data depend on, through the real daemon and real clients:
//!
//! 1. every uploaded byte is counted once, whatever way a peer ends: a fast libtorrent leecher
//!    that closes when done, an aria2 leecher, a slow leecher we disconnect from (pause), and
//!    peer actors that crash mid-upload (fault-injection build) — swarmd's `uploaded` equals what
//!    the leechers received, within a block per connection end;
//! 2. a torrent whose data vanished (an unmounted disk) stops with an error instead of
//!    downloading everything again into a recreated folder; `resume` checks and goes on;
//! 3. a magnet still fetching its metadata answers every command (show, peers, trackers, files,
//!    pause, resume, reannounce; verify says why it cannot);
//! 4. a save directory we cannot write to is refused at `add`, with its name.
//!
//! Each daemon has its own HOME and state inside the test's temp dir and listens on 127.0.0.1.

use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{self as testd, rpc, wait_torrent, DaemonConfig, DaemonDirs};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{fault_swarmd_bin, swarmctl_code, swarmctl_ok};

const RUST_LOG: &str = "info,swarm_engine=debug";
/// One block: how far a count may be off per connection that ended mid-block.
const BLOCK: u64 = 16 * 1024;
const POLL: Duration = Duration::from_millis(100);

fn show(dirs: &DaemonDirs, ih: &str) -> Value {
    rpc(&dirs.socket, "torrent.show", Some(json!({ "torrent": ih }))).expect("torrent.show")
}

/// A daemon (`builder`, e.g. the fault build) with its config.
fn daemon(env: &TestEnv, builder: Swarmd) -> (SwarmdProcess, DaemonDirs) {
    let dirs =
        DaemonConfig::new("integration-tests/tests/user_data.rs").write(env, free_tcp_port());
    let proc = testd::start(env, &dirs, builder, RUST_LOG);
    (proc, dirs)
}

/// The normal daemon again, on the config and state of an earlier one.
fn start_again(env: &TestEnv, dirs: &DaemonDirs) -> SwarmdProcess {
    testd::start(env, dirs, Swarmd::command(&[] as &[&str]), RUST_LOG)
}

/// `swarmctl shutdown`, and the process gone.
fn shut_down(env: &TestEnv, proc: &SwarmdProcess) {
    swarmctl_ok(env, &["shutdown"]);
    proc.wait_exit(Duration::from_secs(20));
}

/// `payload`'s torrent behind `tracker`, added to the daemon over the payload itself: it checks
/// the data and seeds.
fn seed_in_daemon(
    env: &TestEnv,
    proc: &SwarmdProcess,
    dirs: &DaemonDirs,
    tracker: &Opentracker,
    payload: &Payload,
) -> Torrent {
    let torrent = payload.make_torrent(
        &env.path().join(format!("{}.torrent", payload.name)),
        16,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let dir = payload.dir.to_str().unwrap();
    swarmctl_ok(env, &["add", torrent.path.to_str().unwrap(), "-o", dir]);
    let ih = torrent.info_hash.to_hex();
    wait_torrent(
        proc,
        &dirs.socket,
        &ih,
        "the daemon to seed",
        Duration::from_secs(30),
        testd::is_complete_seed,
    );
    torrent
}

/// Pauses the torrent (every connection closes) and waits until no peer is left.
fn pause(env: &TestEnv, proc: &SwarmdProcess, dirs: &DaemonDirs, ih: &str) {
    swarmctl_ok(env, &["pause", ih]);
    wait_torrent(
        proc,
        &dirs.socket,
        ih,
        "paused, no peers",
        Duration::from_secs(10),
        |v| v["state"] == "paused" && v["peers"] == 0,
    );
}

/// A libtorrent leecher's payload received, once it has no connection left (the figure is final).
fn lt_received(lt: &LibtorrentPeer) -> u64 {
    lt.wait_status("no connection left", Duration::from_secs(15), |s| {
        s.num_peers == 0
    })
    .total_payload_download
}

/// Waits until swarmd's `uploaded` is what the leechers `received`, within a block per connection
/// end. Blocks in flight when a connection ends are counted as the peer acknowledges them, a few
/// seconds at most after it ended: the count may still be growing when the peer is gone.
fn assert_counted(what: &str, dirs: &DaemonDirs, ih: &str, received: u64, ends: u64) {
    let mut last = 0;
    let settled = wait_until(what, Duration::from_secs(40), POLL, || {
        last = show(dirs, ih)["uploaded"].as_u64().unwrap_or(0);
        last.abs_diff(received) <= ends * BLOCK
    });
    assert!(
        settled.is_ok(),
        "{what}: swarmd counted {last} bytes uploaded, the leechers received {received} \
         ({} apart, {ends} connection ends allow {})",
        last.abs_diff(received),
        ends * BLOCK
    );
}

/// Issue item 1, normal build: a fast libtorrent leecher that leaves as soon as it is done, a fast
/// aria2 leecher, and a slow libtorrent leecher that we leave (pause) in the middle.
#[test]
fn uploaded_bytes_are_what_the_leechers_received() {
    let env = TestEnv::new("user-data-upload");
    let tracker = Opentracker::start(&env, &[]);
    let (proc, dirs) = daemon(&env, Swarmd::command(&[] as &[&str]));
    let payload = Payload::single(&env.subdir("seed"), "ratio.bin", 12 * MIB, 61);
    let torrent = seed_in_daemon(&env, &proc, &dirs, &tracker, &payload);
    let ih = torrent.info_hash.to_hex();
    let total = torrent.total_len;

    // Fast, and gone the moment it is complete.
    let mut lt = LibtorrentPeer::leech(&env, &torrent.path, &env.subdir("lt-fast"));
    lt.wait_finished(Duration::from_secs(60));
    let received = lt.status().total_payload_download;
    assert!(
        received >= total,
        "the leecher finished with {received} of {total}"
    );
    lt.stop();
    pause(&env, &proc, &dirs, &ih);
    assert_counted("fast libtorrent leecher", &dirs, &ih, received, 1);
    let mut sum = received;

    // aria2, fast too.
    swarmctl_ok(&env, &["resume", &ih]);
    let aria = Aria2::leech(&env, &torrent.path, &env.subdir("aria2"));
    aria.wait_download_complete(Duration::from_secs(60));
    drop(aria);
    sum += total;
    pause(&env, &proc, &dirs, &ih);
    assert_counted("aria2 leecher", &dirs, &ih, sum, 2);

    // Slow (1 MiB/s), and we close the connection in the middle.
    swarmctl_ok(&env, &["resume", &ih]);
    let slow_opts = LtOptions {
        download_limit: Some(MIB),
        ..LtOptions::leech()
    };
    let slow = LibtorrentPeer::spawn(&env, &torrent.path, &env.subdir("lt-slow"), slow_opts);
    slow.wait_status("a third of the data", Duration::from_secs(60), |s| {
        s.total_payload_download >= total / 3
    });
    pause(&env, &proc, &dirs, &ih);
    let received = lt_received(&slow);
    assert!(received < total, "the slow leecher was not slow");
    sum += received;
    assert_counted("slow leecher left mid-download", &dirs, &ih, sum, 3);
}

/// Issue item 1, crashes: each peer actor panics at its 50th block sent (fault-injection build),
/// with blocks in flight (the leecher reads at 4 MiB/s). What swarmd counted is what the leecher
/// received, within a block per connection end.
#[test]
fn uploaded_bytes_survive_peer_crashes() {
    let env = TestEnv::new("user-data-upload-crash");
    let tracker = Opentracker::start(&env, &[]);
    let builder = Swarmd::command(&[] as &[&str])
        .bin(&fault_swarmd_bin())
        .env("SWARMD_FAULTS", "peer.upload_after:50");
    let (proc, dirs) = daemon(&env, builder);
    let payload = Payload::single(&env.subdir("seed"), "crash.bin", 6 * MIB, 67);
    let torrent = seed_in_daemon(&env, &proc, &dirs, &tracker, &payload);
    let ih = torrent.info_hash.to_hex();
    let opts = LtOptions {
        download_limit: Some(4 * MIB),
        ..LtOptions::leech()
    };
    let lt = LibtorrentPeer::spawn(&env, &torrent.path, &env.subdir("lt"), opts);
    let crashes = || {
        proc.guard()
            .log_contents()
            .matches("injected fault at peer.upload_after")
            .count() as u64
    };
    wait_until("a peer crash", Duration::from_secs(60), POLL, || {
        crashes() >= 1
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: is this the fault build?\n{}",
            proc.guard().log_tail(30)
        )
    });
    // Whatever reconnects meanwhile crashes the same way.
    std::thread::sleep(Duration::from_secs(3));
    pause(&env, &proc, &dirs, &ih);
    let received = lt_received(&lt);
    assert!(received > 0, "the leecher received nothing");
    assert_counted(
        "leecher across peer crashes",
        &dirs,
        &ih,
        received,
        crashes() + 1,
    );
}

/// A daemon that seeded `payload`, shut down; and a libtorrent seeder of a copy, which would
/// hand the data back at once if the daemon asked for it.
fn seeded_and_shut_down(
    env: &TestEnv,
    tracker: &Opentracker,
    payload: &Payload,
) -> (DaemonDirs, Torrent, LibtorrentPeer) {
    let (proc, dirs) = daemon(env, Swarmd::command(&[] as &[&str]));
    let torrent = seed_in_daemon(env, &proc, &dirs, tracker, payload);
    let copy = payload.copy_to(&env.subdir("lt-copy"));
    let lt_seed = LibtorrentPeer::seed(env, &torrent.path, &copy.dir);
    shut_down(env, &proc);
    (dirs, torrent, lt_seed)
}

/// Issue item 2: the download folder moved away while the daemon was down (an unmounted disk):
/// the torrent stops with an error that names the path, nothing is written there; `resume`
/// after the folder is back checks it and seeds without downloading anything.
#[test]
fn vanished_data_is_an_error_not_a_new_download() {
    let env = TestEnv::new("user-data-vanished");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("disk/media"), "album", 3 * MIB, 3, 71);
    let (dirs, torrent, _lt_seed) = seeded_and_shut_down(&env, &tracker, &payload);
    let ih = torrent.info_hash.to_hex();

    let media = env.path().join("disk/media");
    let away = env.path().join("disk-unmounted");
    std::fs::rename(&media, &away).unwrap();
    let proc = start_again(&env, &dirs);
    let v = wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "the error",
        Duration::from_secs(10),
        |v| v["state"] == "error",
    );
    let err = v["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("data not found at") && err.contains("is the disk mounted"),
        "{err}"
    );
    assert!(
        err.contains(&*media.join("album").to_string_lossy()),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(!media.exists(), "the vanished folder was made again");
    assert_eq!(show(&dirs, &ih)["downloaded"], 0);

    // A restart in that state keeps the error (the record of what we had is not overwritten).
    shut_down(&env, &proc);
    let proc = start_again(&env, &dirs);
    wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "the error again",
        Duration::from_secs(10),
        |v| v["state"] == "error",
    );

    // The disk is back: resume checks and seeds, with nothing downloaded.
    std::fs::rename(&away, &media).unwrap();
    swarmctl_ok(&env, &["resume", &ih]);
    let v = wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "seeding again",
        Duration::from_secs(30),
        testd::is_complete_seed,
    );
    assert_eq!(
        v["downloaded"], 0,
        "data that was there was downloaded again"
    );
    torrent.verify_dir(&media).unwrap();
}

/// Issue item 2, the other half: with some files deleted (not the whole folder), the torrent
/// rechecks and downloads only what is missing.
#[test]
fn partly_missing_data_is_rechecked() {
    let env = TestEnv::new("user-data-partly");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("data"), "set", 3 * MIB, 3, 73);
    let (dirs, torrent, _lt_seed) = seeded_and_shut_down(&env, &tracker, &payload);
    let ih = torrent.info_hash.to_hex();
    std::fs::remove_file(payload.file_path(&payload.files[0])).unwrap();
    let proc = start_again(&env, &dirs);
    let v = wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "complete again",
        Duration::from_secs(60),
        testd::is_complete_seed,
    );
    let downloaded = v["downloaded"].as_u64().unwrap();
    assert!(
        downloaded > 0 && downloaded < torrent.total_len,
        "downloaded {downloaded} of {}",
        torrent.total_len
    );
    torrent.verify_dir(&env.subdir("data")).unwrap();
}

/// Issue item 3: a magnet whose metadata nobody serves stays in `fetching_metadata`; every
/// command finds it.
#[test]
fn a_magnet_without_metadata_answers_every_command() {
    let env = TestEnv::new("user-data-magnet");
    let tracker = Opentracker::start(&env, &[]);
    let (proc, dirs) = daemon(&env, Swarmd::command(&[] as &[&str]));
    let ih = "3f1d000000000000000000000000000000000b0b";
    tracker.allow(InfoHash::from_hex(ih).unwrap());
    let magnet = format!(
        "magnet:?xt=urn:btih:{ih}&dn=nobody-has-it&tr={}",
        tracker.announce_url()
    );
    swarmctl_ok(&env, &["add", &magnet]);
    let ok = |args: &[&str]| swarmctl_ok(&env, args);

    let shown = ok(&["show", ih]);
    assert!(shown.contains("nobody-has-it"), "{shown}");
    ok(&["peers", ih]);
    let trackers = ok(&["trackers", ih]);
    assert!(trackers.contains(&tracker.announce_url()), "{trackers}");
    ok(&["files", ih]);
    ok(&["reannounce", ih]);
    let (code, _, err) = swarmctl_code(&env, &["verify", ih]);
    assert_ne!(code, 0);
    assert_ne!(code, 4, "verify said the magnet does not exist: {err}");
    assert!(err.contains("no metadata yet"), "{err}");

    ok(&["pause", ih]);
    wait_torrent(
        &proc,
        &dirs.socket,
        ih,
        "paused",
        Duration::from_secs(5),
        |v| v["state"] == "paused",
    );
    // Paused survives a restart, and so does the save directory.
    shut_down(&env, &proc);
    let proc = start_again(&env, &dirs);
    wait_torrent(
        &proc,
        &dirs.socket,
        ih,
        "paused after restart",
        Duration::from_secs(5),
        |v| v["state"] == "paused",
    );
    ok(&["resume", ih]);
    wait_torrent(
        &proc,
        &dirs.socket,
        ih,
        "fetching again",
        Duration::from_secs(5),
        |v| v["state"] != "paused",
    );
    ok(&["remove", ih]);
}

/// Issue item 6: `add` into a directory we cannot write to is refused at once, naming it.
#[test]
fn an_unwritable_save_directory_is_refused_at_add() {
    let env = TestEnv::new("user-data-unwritable");
    let tracker = Opentracker::start(&env, &[]);
    let (_proc, dirs) = daemon(&env, Swarmd::command(&[] as &[&str]));
    let payload = Payload::single(&env.subdir("src"), "ro.bin", MIB, 79);
    let torrent = payload.make_torrent(
        &env.path().join("ro.torrent"),
        16,
        &[&tracker.announce_url()],
    );
    // A file where a directory is wanted fails for root too (permissions would not).
    let blocker = env.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("downloads");
    let (code, out, err) = swarmctl_code(
        &env,
        &[
            "add",
            torrent.path.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0, "added into an unwritable directory: {out}");
    assert!(err.contains(&*target.to_string_lossy()), "{err}");
    let list = rpc(&dirs.socket, "torrent.list", None).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}
