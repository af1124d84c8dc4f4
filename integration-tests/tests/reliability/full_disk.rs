//! A full disk stops only the torrent saved on it, and a resume goes on at once once there is
//! room; a resume after a pause re-dials its peers at once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use swarm_integration_tests::daemon::{brief, is_complete_seed};
use swarm_integration_tests::libtorrent::{seeded, seeded_via_fake, LtOptions};
use swarm_integration_tests::prelude::*;

use super::{dialling_seeder, start_daemon};

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
    let (d, dirs) = start_daemon(&env, "");
    let events = Events::subscribe(&dirs.socket);
    let (b, a) = (d.add(&tb.path, None), d.add(&ta.path, Some(&small)));
    full_disk_stops_its_torrent(&d, &events, &a);
    d.wait_torrent(
        &b,
        "the other torrent to complete",
        Duration::from_secs(60),
        is_complete_seed,
    );
    verify_download(&tb, &pb, &dirs.downloads);
    d.assert_alive("a full disk");
    assert_eq!(
        d.show(&a).unwrap()["state"],
        "error",
        "the full-disk torrent left `error`"
    );

    tmpfs.resize("64m");
    let out = d.ctl_ok(&["resume", &a]);
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
    verify_download(&ta, &pa, &small);
    d.assert_alive("the resumed download");
    drop(d);
    drop(tmpfs);
}

/// The torrent `a` on the full disk goes to `error` saying "no space", with an `error` event.
fn full_disk_stops_its_torrent(d: &Daemon, events: &Events, a: &str) {
    let v = d.wait_torrent(
        a,
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
            .of("error", a)
            .iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("no space")),
        "no error event: {:?}",
        events.all()
    );
}

/// `resume` after a pause goes on at once from the peers the torrent had: it does not wait for a
/// tracker or for the peers to dial in.
#[test]
fn resume_redials_peers_at_once() {
    let env = TestEnv::new("rel-redial");
    // The seeder never announces: it cannot learn the daemon's address and dial it.
    let fake = FakeHttpTracker::start();
    let (_payload, torrent, _seeder) = seeded_via_fake(
        &env,
        &fake,
        Payload::single(&env.subdir("seed"), "redial.bin", 8 * MIB, 91),
        16,
        LtOptions {
            upload_limit: Some(MIB),
            ..LtOptions::seed()
        },
    );
    let (d, _dirs) = start_daemon(&env, "");
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
