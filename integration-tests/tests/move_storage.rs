//! Moving a torrent's data, with real clients, all on 127.0.0.1 (issue #19):
//!
//! 1. **across filesystems while seeding**: `swarmctl move` to a tmpfs the test mounts, while a
//!    libtorrent leecher downloads (the torrent's upload limited so that it is mid-download):
//!    the leecher completes with correct data, which is then only at the new place;
//! 2. **`kill -9` in the middle**: the fault-injection build pauses a move after its first file
//!    (`disk.move_pause`), swarmd is killed once the resume record's journal shows that file
//!    done, and the restarted daemon finishes the move with correct data;
//! 3. **incomplete directory**: a download from a libtorrent seeder is written to
//!    `[daemon] incomplete_dir` and ends in its save directory;
//! 4. **no overwrite**: a move onto a directory that has a file of the torrent's is refused,
//!    naming the file; nothing moves and both the data and that file stay intact.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use swarm_integration_tests::daemon::is_complete_seed;
use swarm_integration_tests::prelude::*;

const POLL: Duration = Duration::from_millis(100);

fn config<'a>(name: &'a str, daemon: &'a str) -> DaemonConfig<'a> {
    DaemonConfig {
        name: Some(name),
        watch_rescan_secs: None,
        daemon,
        ..DaemonConfig::fast("integration-tests/tests/move_storage.rs")
    }
}

/// Waits until the torrent's data is at `dir` and no move is under way; returns its summary.
fn wait_moved(d: &Daemon, ih: &str, dir: &Path, timeout: Duration) -> Value {
    let want = dir.display().to_string();
    d.wait_torrent(ih, "the move to be done", timeout, |v| {
        v["save_dir"] == want.as_str() && v["moving"].is_null()
    })
}

/// Regular files below `dir` (none when it does not exist).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(e.path()),
                _ => out.push(e.path()),
            }
        }
    }
    out
}

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (with a message) where mounting is impossible; with `CI=true` that fails the test.
    fn mount(dir: &Path) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "mounting a tmpfs at {} (the test needs root): {why}",
                    dir.display()
                );
                eprintln!("SKIPPED: cannot mount a tmpfs (the test needs root): {why}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon that is still stopping may hold a file there.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A move to another filesystem (a tmpfs) while a libtorrent leecher downloads: every file is
/// copied, synced and renamed into place, its source deleted; the leecher, mid-download when
/// the move starts (the torrent sends 1 MiB/s), completes with correct data from the new place.
#[test]
fn a_move_to_another_filesystem_keeps_serving_a_leecher() {
    let env = TestEnv::new("move-across-filesystems");
    let payload = Payload::multi(&env.subdir("data"), "album", 6 * MIB + 123, 3, 1931);
    let torrent = payload.make_torrent(&env.path().join("album.torrent"), 16, &[]);
    let Some(tmpfs) = Tmpfs::mount(&env.subdir("tmpfs")) else {
        return;
    };
    let dirs = config("swarmd", "").write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "swarmd");
    let ih = d.add(&torrent.path, Some(&payload.dir));
    d.wait_torrent(&ih, "seeding", Duration::from_secs(30), is_complete_seed);
    d.ctl_ok(&["limits", &ih, "--up", "1M"]);
    let leech = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &env.subdir("leech"),
        LtOptions {
            connect: vec![d.addr()],
            no_announce: true,
            ..LtOptions::leech()
        },
    );
    leech.wait_status("the leecher to have 1 MiB", Duration::from_secs(30), |s| {
        s.total_done >= MIB
    });

    let to = tmpfs.0.join("music");
    let out = d.ctl_ok(&["move", &ih, to.to_str().unwrap()]);
    assert!(out.contains("moving to"), "{out}");
    let at_start = leech.status();
    assert!(
        !at_start.finished,
        "the leecher finished before the move started: nothing tested"
    );
    wait_moved(&d, &ih, &to, Duration::from_secs(30));
    leech.wait_finished(Duration::from_secs(60));
    torrent
        .verify_dir(&to)
        .unwrap_or_else(|e| panic!("the data at the new place: {e}"));
    torrent
        .verify_dir(&env.subdir("leech"))
        .unwrap_or_else(|e| panic!("the leecher's data: {e}"));
    let left = files_below(&payload.dir);
    assert!(left.is_empty(), "left at the old place: {left:?}");
    // Seeding from the new place after a restart too: its record names it.
    let v = d.show(&ih).unwrap();
    assert!(is_complete_seed(&v), "{v}");
    drop(leech);
    drop(d);
}

/// `kill -9` in the middle of a move (paused after its first file by the fault build): the
/// restarted daemon finishes it from the journal in the resume record, with correct data.
#[test]
fn a_move_interrupted_by_kill_9_finishes_after_the_restart() {
    let env = TestEnv::new("move-kill-9");
    let payload = Payload::multi(&env.subdir("data"), "set", 3 * MIB + 5, 3, 1932);
    let torrent = payload.make_torrent(&env.path().join("set.torrent"), 15, &[]);
    let dirs = config("swarmd", "").write(&env, free_tcp_port());
    let mut d = Daemon::start_faulty(&env, &dirs, "swarmd-faulty", "disk.move_pause:60");
    let ih = d.add(&torrent.path, Some(&payload.dir));
    d.wait_torrent(&ih, "seeding", Duration::from_secs(30), is_complete_seed);
    let to = env.path().join("moved");
    d.ctl_ok(&["move", &ih, to.to_str().unwrap()]);
    let record = dirs.state.join("torrents").join(format!("{ih}.resume"));
    wait_for(
        "the journal to show a file moved",
        Duration::from_secs(20),
        POLL,
        || {
            let text = std::fs::read_to_string(&record).map_err(|e| e.to_string())?;
            let rec: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match rec["moving"]["done"].as_array() {
                Some(done) if !done.is_empty() => Ok(()),
                _ => Err(format!("record: {}", rec["moving"])),
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    let v = d.show(&ih).unwrap();
    let progress = v["moving"]["progress"].as_f64().unwrap_or(-1.0);
    assert!(
        progress > 0.0 && progress < 1.0,
        "show while moving: {}",
        v["moving"]
    );
    assert!(
        files_below(&payload.dir).len() < 3,
        "no file moved: nothing to resume"
    );
    d.kill();

    let d = Daemon::start(&env, &dirs, "swarmd-restarted");
    let v = wait_moved(&d, &ih, &to, Duration::from_secs(30));
    assert!(is_complete_seed(&v), "after the move: {v}");
    torrent
        .verify_dir(&to)
        .unwrap_or_else(|e| panic!("the data after the resumed move: {e}"));
    let left = files_below(&payload.dir);
    assert!(left.is_empty(), "left at the old place: {left:?}");
}

/// With `[daemon] incomplete_dir`, a download is written there and moved to its save directory
/// once complete.
#[test]
fn a_download_in_the_incomplete_dir_ends_in_its_save_dir() {
    let env = TestEnv::new("move-incomplete-dir");
    let payload = Payload::multi(&env.subdir("seed"), "show", 2 * MIB + 9, 2, 1933);
    let torrent = payload.make_torrent(&env.path().join("show.torrent"), 15, &[]);
    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            ..LtOptions::seed()
        },
    );
    let incomplete = env.subdir("incomplete");
    let line = format!("incomplete_dir = \"{}\"", incomplete.display());
    let dirs = config("swarmd", &line).write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "swarmd");
    let out = env.subdir("out");
    let ih = d.add(&torrent.path, Some(&out));
    let v = d.show(&ih).unwrap();
    assert_eq!(
        v["save_dir"].as_str(),
        incomplete.to_str(),
        "a new download is written to the incomplete dir: {v}"
    );
    d.ctl_ok(&["peers", "add", &ih, &format!("127.0.0.1:{}", seeder.port())]);
    let v = wait_moved(&d, &ih, &out, Duration::from_secs(60));
    assert!(is_complete_seed(&v), "{v}");
    verify_download(&torrent, &payload, &out);
    let left = files_below(&incomplete);
    assert!(left.is_empty(), "left in the incomplete dir: {left:?}");
}

/// A move onto a directory holding a file of the torrent's name: refused, naming the file, with
/// nothing moved: the data is where it was and whole, the other file untouched.
#[test]
fn a_move_that_would_overwrite_a_file_is_refused() {
    let env = TestEnv::new("move-refused");
    let payload = Payload::multi(&env.subdir("data"), "docs", MIB + 17, 2, 1934);
    let torrent = payload.make_torrent(&env.path().join("docs.torrent"), 15, &[]);
    let dirs = config("swarmd", "").write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "swarmd");
    let ih = d.add(&torrent.path, Some(&payload.dir));
    d.wait_torrent(&ih, "seeding", Duration::from_secs(30), is_complete_seed);
    let to = env.subdir("taken");
    let theirs = payload.file_path(&payload.files[1]);
    let theirs = to.join(theirs.strip_prefix(&payload.dir).unwrap());
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, b"someone else's").unwrap();

    let (code, _, err) = d.ctl(&["move", &ih, to.to_str().unwrap()]);
    assert_ne!(code, 0, "the move was not refused");
    assert!(
        err.contains(&*theirs.to_string_lossy()) && err.contains("exists already"),
        "the refusal names the file: {err}"
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), b"someone else's");
    let v = d.show(&ih).unwrap();
    assert_eq!(v["save_dir"].as_str(), payload.dir.to_str(), "{v}");
    assert!(v["moving"].is_null(), "{v}");
    assert!(is_complete_seed(&v), "{v}");
    verify_download(&torrent, &payload, &payload.dir);
    d.assert_alive("a refused move");
}
