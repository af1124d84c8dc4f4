//! Restarts through the daemon (fault-injection build), one level of the tree at a time: each
//! global service (choker, rate limiter, listener, DHT) crashes once and the daemon keeps
//! serving with its new incarnation; a torrent restarted after a crash keeps the user's state
//! (paused, file priorities, counters) and its pieces without a recheck; a fault aimed at one
//! torrent (`point@<info-hash prefix>`) leaves the others alone.

use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{brief, is_complete_seed};
use swarm_integration_tests::prelude::*;

use super::{config, POLL};

/// A fault-injection daemon with `SWARMD_FAULTS=faults`, `extra` appended to its config, on
/// `port`.
fn faulty(env: &TestEnv, name: &str, faults: &str, extra: &str, port: u16) -> (Daemon, DaemonDirs) {
    let dirs = DaemonConfig { extra, ..config() }.write(env, port);
    (Daemon::start_faulty(env, &dirs, name, faults), dirs)
}

/// How many times the daemon's panic hook reported an injected fault at `point`.
fn injected(d: &Daemon, point: &str) -> usize {
    let msg = format!("injected fault at {point}");
    d.guard()
        .log_contents()
        .lines()
        .filter(|l| l.trim() == msg)
        .count()
}

/// `session.stats` once `restarts.services` is `n` (20 s at most; the daemon must stay up).
fn wait_service_restarts(d: &Daemon, n: u64) -> Value {
    let (stats, _) = wait_for(
        &format!("{n} service restart(s)"),
        Duration::from_secs(20),
        POLL,
        || {
            d.guard().assert_running();
            let s = d.rpc("session.stats", None)?;
            if s["restarts"]["services"] == n {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    stats
}

/// A torrent whose data the daemon has (made in its download directory), added and seeding.
fn seeding_in_daemon(env: &TestEnv, d: &Daemon, payload: &Payload) -> Torrent {
    let t = payload.make_torrent(
        &env.path().join(format!("{}.torrent", payload.name)),
        15,
        &[],
    );
    let ih = d.add(&t.path, None);
    d.wait_torrent(
        &ih,
        "the daemon seeding",
        Duration::from_secs(20),
        is_complete_seed,
    );
    t
}

/// A libtorrent leecher that dials the daemon for `t` and downloads it all, with correct data.
fn leech_all_from(env: &TestEnv, d: &Daemon, t: &Torrent, payload: &Payload, name: &str) {
    let dir = env.subdir(name);
    let leecher = LibtorrentPeer::spawn(
        env,
        &t.path,
        &dir,
        LtOptions {
            connect: vec![d.addr()],
            no_announce: true,
            name: Some(name.to_string()),
            ..LtOptions::leech()
        },
    );
    leecher.wait_finished(Duration::from_secs(30));
    verify_download(t, payload, &dir);
    d.assert_alive("a leecher's download");
}

/// The choker crashes at its first round (`choker.round:1.0:1`, a leecher's interest asks for
/// one): it is restarted, and the leecher still downloads everything from the daemon.
#[test]
fn restarted_choker_keeps_the_daemon_serving() {
    let env = TestEnv::new("rel-choker-restart");
    let (d, dirs) = faulty(
        &env,
        "daemon-choker",
        "choker.round:1.0:1",
        "",
        free_tcp_port(),
    );
    let payload = Payload::single(&dirs.downloads, "choked.bin", 2 * MIB + 5, 51);
    let t = seeding_in_daemon(&env, &d, &payload);
    leech_all_from(&env, &d, &t, &payload, "lt-leech-choker");
    wait_service_restarts(&d, 1);
    assert_eq!(injected(&d, "choker.round"), 1);
}

/// The rate limiter crashes on its first pass (the limits the root hands it at start,
/// `rate_limiter.serve:1.0:1`): the limits survive in the board every incarnation shares, and a
/// download under them completes, its quota granted by the new incarnation.
#[test]
fn restarted_rate_limiter_keeps_the_limits_and_grants_quota() {
    let env = TestEnv::new("rel-limiter-restart");
    let (d, dirs) = faulty(
        &env,
        "daemon-limiter",
        "rate_limiter.serve:1.0:1",
        "[limits]\ndownload_kib_s = 4096\n",
        free_tcp_port(),
    );
    let stats = wait_service_restarts(&d, 1);
    assert_eq!(stats["limits"]["download"], 4096 * 1024, "{stats}");
    let payload = Payload::single(&env.subdir("seed"), "limited.bin", 2 * MIB + 7, 52);
    let t = payload.make_torrent(&env.path().join("limited.torrent"), 15, &[]);
    let ih = d.add(&t.path, None);
    let _seeder = LibtorrentPeer::spawn(
        &env,
        &t.path,
        &payload.dir,
        LtOptions {
            connect: vec![d.addr()],
            no_announce: true,
            name: Some("lt-seed-limited".into()),
            ..LtOptions::seed()
        },
    );
    d.wait_torrent(
        &ih,
        "the limited download",
        Duration::from_secs(30),
        is_complete_seed,
    );
    verify_download(&t, &payload, &dirs.downloads);
    let stats = d.rpc("session.stats", None).unwrap();
    assert_eq!(stats["restarts"]["services"], 1, "{stats}");
    assert_eq!(injected(&d, "rate_limiter.serve"), 1);
}

/// The listener crashes on the first connection it accepts (`listener.accept:1.0:1`): the root
/// restarts it on the same, still bound socket, and the next peer that dials gets through.
#[test]
fn restarted_listener_accepts_again_on_the_same_port() {
    let env = TestEnv::new("rel-listener-restart");
    let (d, dirs) = faulty(
        &env,
        "daemon-listener",
        "listener.accept:1.0:1",
        "",
        free_tcp_port(),
    );
    let payload = Payload::single(&dirs.downloads, "listened.bin", MIB + 3, 53);
    let t = seeding_in_daemon(&env, &d, &payload);
    drop(TcpStream::connect(d.addr()).expect("dialling the daemon's peer port"));
    wait_service_restarts(&d, 1);
    leech_all_from(&env, &d, &t, &payload, "lt-leech-listener");
    assert_eq!(injected(&d, "listener.accept"), 1);
}

/// A KRPC `ping` (BEP 5) to `addr`; its reply (a response with our transaction id), if one
/// came within a second. The node may ping us back first (it met a new node): skipped.
fn krpc_ping(addr: std::net::SocketAddr) -> Option<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    sock.send_to(ping, addr).ok()?;
    let mut buf = [0u8; 1500];
    for _ in 0..4 {
        let n = sock.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains("1:t2:aa1:y1:r") {
            return Some(text);
        }
    }
    None
}

/// The DHT service crashes right after its node came up (`dht.started:1.0:1`): the restarted
/// service brings a node up again on the same UDP port, which answers a KRPC ping.
#[test]
fn restarted_dht_answers_on_its_port_again() {
    let env = TestEnv::new("rel-dht-restart");
    let port = free_tcp_udp_port();
    let (d, _dirs) = faulty(
        &env,
        "daemon-dht",
        "dht.started:1.0:1",
        "[dht]\nenabled = true\nbootstrap = []\n",
        port,
    );
    wait_service_restarts(&d, 1);
    let node = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let (text, _) = wait_for(
        "a KRPC reply from the restarted DHT node",
        Duration::from_secs(10),
        POLL,
        || {
            d.guard().assert_running();
            krpc_ping(node).ok_or_else(String::new)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    assert!(text.contains("1:rd2:id20:"), "not a ping reply: {text:?}");
    let stats = d.rpc("session.stats", None).unwrap();
    assert_eq!(
        stats["restarts"]["services"], 1,
        "the DHT did not stay up: {stats}"
    );
}

/// `torrent.show` of `ih`.
fn show(d: &Daemon, ih: &str) -> Value {
    d.show(ih)
        .unwrap_or_else(|e| panic!("{ih}: {e}\n{}", d.log_tail()))
}

/// The priorities of `ih`'s files, in order.
fn priorities(d: &Daemon, ih: &str) -> Vec<String> {
    let files = d
        .rpc("torrent.files", Some(json!({ "torrent": ih })))
        .unwrap();
    files
        .as_array()
        .unwrap_or_else(|| panic!("torrent.files: {files}"))
        .iter()
        .map(|f| f["priority"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A torrent that crashes (`torrent.reannounce@<its prefix>`: it panics when told to
/// reannounce) comes back as the user left it: still paused, its skipped file still skipped,
/// its upload counter unchanged, and its pieces taken from its resume record without a check
/// (its state never goes to `checking`). The fault is aimed at it alone: the other torrent,
/// told to reannounce too, never crashes.
#[test]
fn restarted_torrent_keeps_the_users_state_without_a_recheck() {
    let env = TestEnv::new("rel-torrent-state");
    let files = [
        ("a.bin", 300 * KIB + 1),
        ("b.bin", 200 * KIB + 2),
        ("c.bin", 100 * KIB + 3),
    ];
    // The payloads first, in a place of their own: the fault names one info-hash.
    let dirs0 = env.subdir("payloads");
    let pa = Payload::with_files(&dirs0, "kept", &files, 61);
    let pb = Payload::single(&dirs0, "other.bin", 256 * KIB + 9, 62);
    let ta = pa.make_torrent(&env.path().join("kept.torrent"), 15, &[]);
    let tb = pb.make_torrent(&env.path().join("other.torrent"), 15, &[]);
    let prefix = &ta.info_hash.to_hex()[..10];
    let (d, dirs) = faulty(
        &env,
        "daemon-torrent-state",
        &format!("torrent.reannounce@{prefix}:1.0"),
        "",
        free_tcp_port(),
    );
    let pa = pa.copy_to(&dirs.downloads);
    pb.copy_to(&dirs.downloads);
    let a = d.add(&ta.path, None);
    let b = d.add(&tb.path, None);
    for ih in [&a, &b] {
        d.wait_torrent(
            ih,
            "seeding its data",
            Duration::from_secs(20),
            is_complete_seed,
        );
    }
    // Something uploaded, so that the counter is worth keeping.
    leech_all_from(&env, &d, &ta, &pa, "lt-leech-kept");
    d.rpc(
        "torrent.set_file_priority",
        Some(json!({ "torrent": a, "priorities": [{ "index": 1, "priority": "skip" }] })),
    )
    .unwrap();
    d.ctl_ok(&["pause", &a]);
    let before = show(&d, &a);
    let uploaded = before["uploaded"].as_u64().unwrap_or(0);
    assert!(
        uploaded >= pa.total_len() - 2 * 16 * KIB,
        "uploaded {uploaded}: {}",
        brief(&before)
    );
    let events = Events::subscribe(&dirs.socket);
    // b is told first: it must not crash (the fault is aimed at a only).
    d.rpc("torrent.reannounce", Some(json!({ "torrent": b })))
        .unwrap();
    // The order crashes a: its answer may be an error.
    let _ = d.rpc("torrent.reannounce", Some(json!({ "torrent": a })));
    // The new incarnation answers once it started (through its check, if it makes one).
    let (after, _) = wait_for("a's restart", Duration::from_secs(20), POLL, || {
        d.guard().assert_running();
        let stats = d.rpc("session.stats", None)?;
        let v = d.show(&a)?;
        if stats["restarts"]["torrents"].as_u64() >= Some(1) && v["state"] != "checking" {
            Ok(v)
        } else {
            Err(format!("{stats} {}", brief(&v)))
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    eprintln!(
        "before the crash: {}\nafter: {}",
        brief(&before),
        brief(&after)
    );
    assert_eq!(
        after["state"],
        "paused",
        "the restart lost the pause: {}",
        brief(&after)
    );
    assert_eq!(
        priorities(&d, &a),
        ["normal", "skip", "normal"],
        "the restart lost the priorities"
    );
    assert_eq!(
        after["uploaded"].as_u64(),
        Some(uploaded),
        "the upload counter changed"
    );
    assert_eq!(
        after["have_bytes"],
        before["have_bytes"],
        "pieces lost: {}",
        brief(&after)
    );
    let states: Vec<Value> = events
        .of("state", &a)
        .iter()
        .map(|e| e["state"].clone())
        .collect();
    assert!(
        !states.iter().any(|s| s == "checking"),
        "the restarted torrent rechecked its data (states {states:?})"
    );
    let stats = d.rpc("session.stats", None).unwrap();
    assert_eq!(stats["restarts"]["torrents"], 1, "only a crashes: {stats}");
    assert_eq!(injected(&d, "torrent.reannounce"), 1);
    assert!(
        is_complete_seed(&show(&d, &b)),
        "the other torrent: {}",
        brief(&show(&d, &b))
    );
    // Resumed, it seeds again from the kept pieces.
    d.ctl_ok(&["resume", &a]);
    d.wait_torrent(
        &a,
        "seeding again",
        Duration::from_secs(10),
        is_complete_seed,
    );
}
