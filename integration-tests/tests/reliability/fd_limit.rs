//! The open-file limit: a daemon started under `ulimit -n 256` and flooded with 1 000 incoming
//! connections refuses what does not fit and keeps serving (`docs/reliability.md`, "Open-file
//! limit").

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use swarm_integration_tests::daemon::is_complete_seed;
use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::wire::{self, RawPeer};

use super::config;

/// Connections the flood opens, and torrents they ask for (each takes at most
/// `max_peers_per_torrent` = 50 of them: with six torrents, 300 peers and the listener's 128
/// half-open slots would need more descriptors than 256 on their own).
const FLOOD: usize = 1000;
const TORRENTS: usize = 6;

/// A script that runs the real daemon under `ulimit -n 256` (soft and hard: the daemon cannot
/// raise it).
fn limited_swarmd(env: &TestEnv) -> std::path::PathBuf {
    let script = env.path().join("swarmd-ulimit-256");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nulimit -n 256 || exit 97\nexec '{}' \"$@\"\n",
            swarmd_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The test process holds 1 000 sockets and more: its soft limit goes up to its hard one.
fn raise_own_open_file_limit() {
    // SAFETY: plain old data, read then written back with a larger soft limit.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        assert!(
            lim.rlim_cur >= (FLOOD + 200) as u64,
            "the test needs {} descriptors, its hard limit is {}",
            FLOOD + 200,
            lim.rlim_max
        );
    }
}

/// `n` connections to `addr` from 10 threads, two in three of them sending a handshake for one
/// of `hashes` (they become peers until swarmd's caps close them), the others silent (they wait
/// in the handshake until its timeout, or are closed at once past the half-open cap). Returns
/// those that connected.
fn flood(addr: SocketAddr, n: usize, hashes: &[InfoHash]) -> Vec<TcpStream> {
    let per = n / 10;
    let threads: Vec<_> = (0..10)
        .map(|t| {
            let hashes = hashes.to_vec();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for i in 0..per {
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    else {
                        continue;
                    };
                    let k = t * per + i;
                    if !k.is_multiple_of(3) {
                        let ih = &hashes[k % hashes.len()];
                        let _ = s.write_all(&wire::handshake(ih, false, false));
                    }
                    held.push(s);
                }
                held
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// Under `ulimit -n 256` the daemon fits its limits (and says so), then 1 000 incoming
/// connections arrive, asking for six torrents, while a libtorrent leecher downloads: the
/// leecher completes with correct data, the control socket answers throughout, nothing fails
/// for want of a descriptor (no "Too many open files" anywhere in the log: not a tracker
/// announce, a piece read, a resume record or an accept), and after the flood a new peer is
/// served at once.
#[test]
fn a_flood_under_ulimit_256_is_refused_and_serving_goes_on() {
    raise_own_open_file_limit();
    let env = TestEnv::new("rel-fd-limit");
    let tracker = Opentracker::start(&env, &[]);
    let dirs = config().write(&env, free_tcp_port());
    let builder = Swarmd::command(&[] as &[&str])
        .name("daemon")
        .bin(&limited_swarmd(&env));
    let d = Daemon::start_with(&env, &dirs, builder);
    let fitted = d.log_lines("is too low for 500 peers");
    assert!(
        fitted.iter().any(|l| l.contains("limit=256")),
        "no word of the fitted limits: {fitted:?}\n{}",
        d.log_tail()
    );

    let mut hashes = Vec::new();
    let mut leeched = None;
    for i in 0..TORRENTS {
        let size = if i == 0 { 8 * MIB + 333 } else { MIB };
        let payload = Payload::single(
            &env.subdir(&format!("seed-{i}")),
            &format!("fd-{i}.bin"),
            size,
            70 + i as u64,
        );
        let torrent = payload.make_torrent(
            &env.path().join(format!("fd-{i}.torrent")),
            16,
            &[&tracker.announce_url()],
        );
        tracker.allow(torrent.info_hash);
        let ih = d.add(&torrent.path, Some(&payload.dir));
        d.wait_torrent(&ih, "seeding", Duration::from_secs(30), is_complete_seed);
        hashes.push(torrent.info_hash);
        if i == 0 {
            leeched = Some((torrent, payload));
        }
    }
    let (torrent, payload) = leeched.unwrap();
    let out = env.subdir("lt-out");
    let lt = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &out,
        LtOptions {
            connect: vec![d.addr()],
            no_announce: true,
            download_limit: Some(MIB),
            ..LtOptions::leech()
        },
    );
    lt.wait_status(
        "the leecher to start receiving",
        Duration::from_secs(30),
        |s| s.total_payload_download > 0,
    );

    let held = flood(d.addr(), FLOOD, &hashes);
    assert!(!held.is_empty(), "no connection got through");
    for _ in 0..5 {
        d.ctl_ok(&["list"]);
        std::thread::sleep(Duration::from_secs(1));
    }
    lt.wait_finished(Duration::from_secs(60));
    verify_download(&torrent, &payload, &out);
    drop(held);

    let mut p = RawPeer::connect(d.addr()).expect("a new connection after the flood");
    p.handshake(&hashes[1], false, false)
        .expect("a new peer is served after the flood");
    d.assert_alive("the flood under ulimit -n 256");
    let emfile = d.log_lines("Too many open files");
    assert!(
        emfile.is_empty(),
        "descriptors ran out: {} lines, first {:?}",
        emfile.len(),
        emfile.first()
    );
}
