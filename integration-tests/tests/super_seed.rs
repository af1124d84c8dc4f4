//! Super-seeding (BEP 16) end to end: `swarmctl super-seed on` makes a seeding daemon tell a new
//! peer it has nothing and show it pieces two at a time, the next once the peer announces one;
//! off shows everything; a real libtorrent leecher downloads everything from a super-seed; the
//! setting survives a restart.

use std::time::Duration;

use swarm_integration_tests::daemon::{self as testd, is_complete_seed, DaemonConfig};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::swarmctl_ok;
use swarm_integration_tests::wire::{msg, Frame, RawPeer};

const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const HAVE_ALL: u8 = 14;
const HAVE_NONE: u8 = 15;
const REJECT: u8 = 16;

/// A daemon seeding an 8-piece torrent (32 KiB pieces), super-seeding turned on.
fn super_seed(env: &TestEnv) -> (SwarmdProcess, testd::DaemonDirs, Torrent, Payload, String) {
    let dirs = DaemonConfig::new("super_seed").write(env, free_tcp_port());
    let proc = testd::start(env, &dirs, Swarmd::command(&[] as &[&str]), "info");
    let payload = Payload::single(&env.subdir("seed"), "ss.bin", 256 * KIB, 3);
    let torrent = payload.make_torrent(&env.path().join("ss.torrent"), 15, &[]);
    let out = swarmctl_ok(
        env,
        &[
            "add",
            torrent.path.to_str().unwrap(),
            "-o",
            payload.dir.to_str().unwrap(),
        ],
    );
    let ih = torrent.info_hash.to_string();
    assert!(!out.is_empty(), "add printed nothing");
    testd::wait_torrent(
        &proc,
        &dirs.socket,
        &ih,
        "seeding",
        Duration::from_secs(30),
        is_complete_seed,
    );
    let out = swarmctl_ok(env, &["super-seed", "on", &ih]);
    assert!(
        out.contains("super-seeding"),
        "swarmctl super-seed on: {out}"
    );
    (proc, dirs, torrent, payload, ih)
}

/// The `have` indices among the frames that arrive within `wait`; panics on a bitfield or
/// have-all (a super-seed shows nothing at once).
fn haves(p: &mut RawPeer, wait: Duration) -> Vec<u32> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = p.next(wait) {
        if let Frame::Msg(id, payload) = f {
            assert!(
                id != BITFIELD && id != HAVE_ALL,
                "a super-seed sent message {id}"
            );
            if id == HAVE {
                out.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
            }
        }
    }
    out
}

#[test]
fn pieces_are_shown_two_at_a_time_then_all_when_off() {
    let env = TestEnv::new("super-seed-wire");
    let (proc, dirs, torrent, _payload, ih) = super_seed(&env);
    let show = testd::rpc(
        &dirs.socket,
        "torrent.show",
        Some(serde_json::json!({ "torrent": ih })),
    )
    .expect("torrent.show");
    assert_eq!(show["super_seed"], true, "{show}");

    let mut p = RawPeer::connect(loopback(dirs.port)).expect("connect");
    p.handshake(&torrent.info_hash, true, true)
        .expect("handshake");
    // HaveNone first (fast extension), then two pieces.
    let mut first = Vec::new();
    let mut saw_none = false;
    while let Ok(Some(f)) = p.next(Duration::from_millis(700)) {
        if let Frame::Msg(id, payload) = f {
            assert!(
                id != BITFIELD && id != HAVE_ALL,
                "a super-seed sent message {id}"
            );
            saw_none |= id == HAVE_NONE;
            if id == HAVE {
                first.push(u32::from_be_bytes(payload[..4].try_into().unwrap()));
            }
        }
    }
    assert!(saw_none, "no have-none from the super-seed");
    assert_eq!(first.len(), 2, "two pieces shown: {first:?}");
    assert_ne!(first[0], first[1]);

    // A piece it was not shown is not served.
    let hidden = (0..8).find(|i| !first.contains(i)).unwrap();
    let mut req = hidden.to_be_bytes().to_vec();
    req.extend_from_slice(&0u32.to_be_bytes());
    req.extend_from_slice(&(16 * 1024u32).to_be_bytes());
    p.send(&msg(REQUEST, &req)).unwrap();
    let mut rejected = false;
    while let Ok(Some(f)) = p.next(Duration::from_millis(700)) {
        if let Frame::Msg(id, _) = f {
            assert_ne!(id, 7, "a piece that was not shown was sent");
            rejected |= id == REJECT;
        }
    }
    assert!(rejected, "the request for a hidden piece was not rejected");

    // Announcing a shown piece shows the next one.
    p.send(&msg(HAVE, &first[0].to_be_bytes())).unwrap();
    let next = haves(&mut p, Duration::from_millis(1500));
    assert_eq!(next.len(), 1, "one more piece after a have: {next:?}");
    assert!(!first.contains(&next[0]));

    // Off: every piece not shown yet is announced.
    swarmctl_ok(&env, &["super-seed", "off", &ih]);
    let rest = haves(&mut p, Duration::from_millis(1500));
    let mut all: Vec<u32> = first.iter().chain(&next).chain(&rest).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all, (0..8).collect::<Vec<_>>(), "after off: {rest:?}");
    drop(proc);
}

#[test]
fn a_leecher_gets_everything_and_the_setting_survives_a_restart() {
    let env = TestEnv::new("super-seed-leech");
    let (proc, dirs, torrent, payload, ih) = super_seed(&env);
    let leech_dir = env.subdir("leech");
    let leecher = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &leech_dir,
        LtOptions {
            connect: vec![loopback(dirs.port)],
            no_announce: true,
            ..LtOptions::leech()
        },
    );
    leecher.wait_finished(Duration::from_secs(60));
    verify_download(&torrent, &payload, &leech_dir);

    swarmctl_ok(&env, &["shutdown"]);
    proc.wait_exit(Duration::from_secs(20));
    let _proc = testd::start(&env, &dirs, Swarmd::command(&[] as &[&str]), "info");
    let show = testd::wait_torrent(
        &_proc,
        &dirs.socket,
        &ih,
        "seeding again",
        Duration::from_secs(30),
        is_complete_seed,
    );
    assert_eq!(
        show["super_seed"], true,
        "not kept across a restart: {show}"
    );
}
