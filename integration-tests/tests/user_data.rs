//! What users' ratio and data depend on, through the real daemon and real clients:
//!
//! 1. every uploaded byte is counted once, whatever way a peer ends: a fast libtorrent leecher
//!    that closes when done, an aria2 leecher, a slow leecher we disconnect from (pause), a raw
//!    peer that lags behind in reading when we pause (no reset may throw away what it has not
//!    read yet), and peer actors that crash mid-upload (fault-injection build) — swarmd's
//!    `uploaded` equals what the leechers received, within a block per connection end;
//! 2. a torrent whose data vanished (an unmounted disk) stops with an error instead of
//!    downloading everything again into a recreated folder; `resume` checks and goes on;
//! 3. a magnet still fetching its metadata answers every command (show, peers, trackers, files,
//!    pause, resume, reannounce; verify says why it cannot);
//! 4. a save directory we cannot write to is refused at `add`, with its name;
//! 5. a skipped file is not created: the bytes of it that pieces shared with wanted files carry
//!    live in the parts file, through a restart and a recheck; un-skipped, it is made from them
//!    and the rest downloaded; `remove --delete-data` takes the parts file too; progress counts
//!    the wanted bytes only.
//!
//! Each daemon has its own HOME and state inside the test's temp dir and listens on 127.0.0.1.

use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{self as testd, rpc, wait_torrent, DaemonConfig, DaemonDirs};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{fault_swarmd_bin, swarmctl_code, swarmctl_ok};
use swarm_integration_tests::wire::{self, Frame, RawPeer};

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

/// Issue item 1, the reset that loses data: a reader that lags behind (a rate-limited client)
/// has blocks in its kernel's receive buffer, acknowledged but not read, when we pause; it keeps
/// talking meanwhile, so our socket has input nobody reads. Closing that socket then would send a
/// reset, and the client quits on it with those blocks unread. swarmd keeps the socket until the
/// peer has read up to its FIN: no reset, and what it counted is exactly what the peer read.
#[test]
fn a_lagging_reader_gets_every_counted_block() {
    let env = TestEnv::new("user-data-lagging-reader");
    let tracker = Opentracker::start(&env, &[]);
    let (proc, dirs) = daemon(&env, Swarmd::command(&[] as &[&str]));
    let payload = Payload::single(&env.subdir("seed"), "lag.bin", 4 * MIB, 71);
    let torrent = seed_in_daemon(&env, &proc, &dirs, &tracker, &payload);
    let ih = torrent.info_hash.to_hex();

    let mut p = RawPeer::connect((dirs.ip, dirs.port).into()).expect("connect to swarmd");
    // This peer requests once, after the first unchoke, and never again: a choke that swarmd
    // took back at once (a choke round that had not seen the free slot it gave) left it with
    // nothing uploaded.
    p.handshake(&torrent.info_hash, false, false)
        .expect("swarmd's handshake");
    p.send(&wire::msg(wire::INTERESTED, &[])).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !matches!(
        p.next(Duration::from_millis(200)),
        Ok(Some(Frame::Msg(wire::UNCHOKE, _)))
    ) {
        assert!(
            std::time::Instant::now() < deadline,
            "swarmd never unchoked"
        );
    }
    let blocks = (2 * MIB / BLOCK) as u32;
    for i in 0..blocks {
        p.send(&wire::block_msg(wire::REQUEST, i, 0, BLOCK as u32))
            .unwrap();
    }
    // Uploads flow, and we stop reading: swarmd's send queue and our receive buffer fill.
    wait_until("swarmd to upload", Duration::from_secs(10), POLL, || {
        show(&dirs, &ih)["uploaded"].as_u64().unwrap_or(0) > 0
    })
    .unwrap();
    pause(&env, &proc, &dirs, &ih);
    let read = p.read_slowly_to_end(
        16 * 1024,
        Duration::from_millis(20),
        Duration::from_secs(40),
    );
    let received = match read {
        Ok(received) => received,
        Err((received, e)) => panic!(
            "the connection ended with {e} after {received} bytes read, swarmd counted {}",
            show(&dirs, &ih)["uploaded"]
        ),
    };
    drop(p);
    assert_counted("lagging reader", &dirs, &ih, received, 0);
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

/// A libtorrent seeder of a 2 MiB, 4-file payload (pieces of 64 KiB, file edges inside pieces),
/// and a daemon that added its torrent paused, skipped the second file (a neighbour on each
/// side shares a piece with it) and downloaded the rest. Returns the torrent, the skipped
/// file's path and the seeder's payload.
struct SkippedDownload {
    proc: SwarmdProcess,
    dirs: DaemonDirs,
    payload: Payload,
    torrent: Torrent,
    seeder: LibtorrentPeer,
    ih: String,
    skipped: std::path::PathBuf,
}

fn download_with_a_file_skipped(env: &TestEnv, tracker: &Opentracker) -> SkippedDownload {
    let payload = Payload::multi(&env.subdir("src"), "album", 2 * MIB, 4, 83);
    let (payload, torrent, seeder) =
        swarm_integration_tests::libtorrent::seeded(env, tracker, payload, 16, LtOptions::seed());
    let (proc, dirs) = daemon(env, Swarmd::command(&[] as &[&str]));
    let ih = torrent.info_hash.to_hex();
    let save = dirs.downloads.to_str().unwrap().to_owned();
    swarmctl_ok(
        env,
        &[
            "add",
            torrent.path.to_str().unwrap(),
            "-o",
            &save,
            "--paused",
        ],
    );
    wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "paused",
        Duration::from_secs(10),
        |v| v["state"] == "paused",
    );
    let files = rpc(
        &dirs.socket,
        "torrent.files",
        Some(json!({ "torrent": ih })),
    )
    .unwrap();
    let second = &files.as_array().unwrap()[1];
    let index = second["index"].as_u64().unwrap();
    let skipped = dirs
        .downloads
        .join("album")
        .join(second["path"].as_str().unwrap());
    swarmctl_ok(env, &["files", &ih, "--priority", &format!("{index}=skip")]);

    // Progress is of the wanted bytes: nothing downloaded is 0 %, however much is skipped.
    let v = show(&dirs, &ih);
    let (total, wanted) = (
        v["total_bytes"].as_u64().unwrap(),
        v["wanted_bytes"].as_u64().unwrap(),
    );
    assert!(wanted < total && wanted > 0, "wanted {wanted} of {total}");
    assert_eq!(v["left_bytes"].as_u64(), Some(wanted), "{v}");
    let progress_before = v["progress"].as_f64();

    swarmctl_ok(env, &["resume", &ih]);
    let v = wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "seeding what is wanted",
        Duration::from_secs(60),
        |v| v["state"] == "seeding",
    );
    assert_eq!(v["progress"].as_f64(), Some(1.0), "{v}");
    assert_eq!(v["left_bytes"].as_u64(), Some(0), "{v}");
    let d = SkippedDownload {
        proc,
        dirs,
        payload,
        torrent,
        seeder,
        ih,
        skipped,
    };
    // Both checks, then one verdict that names each failure.
    let mut problems = d.off_disk_problems("after the download");
    if progress_before != Some(0.0) {
        problems.push(format!(
            "with nothing downloaded, progress was {progress_before:?}, not 0 (of the wanted bytes)"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    d
}

impl SkippedDownload {
    fn parts_file(&self) -> std::path::PathBuf {
        self.dirs.downloads.join(format!(".{}.parts", self.ih))
    }

    /// The skipped file is not there, the bytes its neighbours share pieces with are in the
    /// parts file, the other files are whole and right.
    fn assert_skipped_file_off_disk(&self, when: &str) {
        let problems = self.off_disk_problems(when);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    fn off_disk_problems(&self, when: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.skipped.exists() {
            problems.push(format!(
                "{when}: the skipped file {} exists",
                self.skipped.display()
            ));
        }
        if !self.parts_file().exists() {
            problems.push(format!(
                "{when}: no parts file {}",
                self.parts_file().display()
            ));
        }
        for f in &self.payload.files {
            let ours = self.dirs.downloads.join("album").join(&f.rel_path);
            if ours == self.skipped {
                continue;
            }
            let theirs = std::fs::read(self.payload.file_path(f)).unwrap();
            match std::fs::read(&ours) {
                Ok(got) if got == theirs => {}
                Ok(_) => problems.push(format!(
                    "{when}: {} differs from the seeder's",
                    ours.display()
                )),
                Err(e) => problems.push(format!("{when}: {}: {e}", ours.display())),
            }
        }
        problems
    }
}

/// Issue 22 (rough edge) and issue 15 (progress): a skipped file never appears on disk, across
/// a restart and a recheck with no seeder to fill gaps; un-skipped, it is made, completed and
/// verified, and the parts file goes.
#[test]
fn a_skipped_file_is_not_created_and_comes_back_when_unskipped() {
    let env = TestEnv::new("user-data-skip");
    let tracker = Opentracker::start(&env, &[]);
    let mut d = download_with_a_file_skipped(&env, &tracker);
    let pieces_have = show(&d.dirs, &d.ih)["pieces_have"].clone();

    // A restart trusts its record, the parts file included.
    shut_down(&env, &d.proc);
    d.proc = start_again(&env, &d.dirs);
    let v = wait_torrent(
        &d.proc,
        &d.dirs.socket,
        &d.ih,
        "seeding after the restart",
        Duration::from_secs(20),
        |v| v["state"] == "seeding",
    );
    assert_eq!(v["pieces_have"], pieces_have, "{v}");
    d.assert_skipped_file_off_disk("after the restart");

    // A recheck with no seeder around: every piece it had is found again, those that straddle
    // the skipped file through the parts file.
    d.seeder.stop();
    swarmctl_ok(&env, &["verify", &d.ih]);
    let v = wait_torrent(
        &d.proc,
        &d.dirs.socket,
        &d.ih,
        "the recheck done",
        Duration::from_secs(20),
        |v| v["state"] != "checking" && v["pieces_have"] == pieces_have,
    );
    assert_eq!(v["state"], "seeding", "{v}");
    assert_eq!(v["progress"].as_f64(), Some(1.0), "{v}");
    d.assert_skipped_file_off_disk("after the recheck");

    // Un-skipped: the file is made from the parts file and the rest downloaded.
    let seeder = LibtorrentPeer::seed(&env, &d.torrent.path, &d.payload.dir);
    swarmctl_ok(&env, &["files", &d.ih, "--priority", "0-3=normal"]);
    seeder.connect(std::net::SocketAddr::from(([127, 0, 0, 1], d.dirs.port)));
    wait_torrent(
        &d.proc,
        &d.dirs.socket,
        &d.ih,
        "complete",
        Duration::from_secs(60),
        testd::is_complete_seed,
    );
    d.torrent.verify_dir(&d.dirs.downloads).unwrap();
    assert!(!d.parts_file().exists(), "the parts file outlived its use");

    // And a recheck of it all, without a seeder.
    drop(seeder);
    swarmctl_ok(&env, &["verify", &d.ih]);
    let v = wait_torrent(
        &d.proc,
        &d.dirs.socket,
        &d.ih,
        "the last recheck done",
        Duration::from_secs(20),
        |v| v["state"] != "checking" && v["state"] != "downloading" || testd::is_complete_seed(v),
    );
    assert!(testd::is_complete_seed(&v), "{v}");
}

/// Issue 22: `remove --delete-data` takes the parts file with the data.
#[test]
fn removing_with_data_removes_the_parts_file() {
    let env = TestEnv::new("user-data-skip-remove");
    let tracker = Opentracker::start(&env, &[]);
    let d = download_with_a_file_skipped(&env, &tracker);
    swarmctl_ok(&env, &["remove", &d.ih, "--delete-data"]);
    assert!(!d.parts_file().exists(), "the parts file is left behind");
    assert!(
        !d.dirs.downloads.join("album").exists(),
        "the data is left behind"
    );
}
