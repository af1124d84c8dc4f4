//! uTP (BEP 29) against real clients over loopback: swarmd downloads from and seeds to a
//! libtorrent that speaks uTP only (TCP disabled both ways) and a transmission with uTP on
//! (swarmd may speak uTP only), fetches a magnet's metadata from a uTP-only peer, talks to
//! swarmd over uTP only, and the UDP port it shares with the DHT survives hostile uTP traffic.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use serde_json::Value;
use swarm_integration_tests::libtorrent::{seeded_via_fake, LtOptions, Seeded};
use swarm_integration_tests::prelude::*;

fn daemon(env: &TestEnv, name: &str, network: &str, extra: &str) -> Daemon {
    let dirs = DaemonConfig {
        name: Some(name),
        network,
        extra,
        ..DaemonConfig::new("utp tests")
    }
    .write(env, free_tcp_udp_port());
    Daemon::start(env, &dirs, name)
}

/// The transports of `ih`'s live peers, as `torrent.peers` shows them.
fn transports(d: &Daemon, ih: &str) -> Vec<String> {
    d.peers(ih)
        .iter()
        .map(|p| p["transport"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Waits (bounded) until `ih` has a live peer over uTP. Called while a transfer runs: once
/// both ends are complete they part ("both seeding") and the peer list is empty.
fn wait_utp_peer(d: &Daemon, ih: &str) {
    let seen = wait_for(
        "a live peer over uTP",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let t = transports(d, ih);
            if t.iter().any(|t| t == "utp") {
                Ok(())
            } else {
                Err(format!("transports {t:?}"))
            }
        },
    );
    if let Err(e) = seen {
        panic!("{e}\n{}", d.log_tail());
    }
}

/// A download slow enough (1 MiB/s) to see its peers while it runs.
const SLOW: &str = "[limits]\ndownload_kib_s = 1024\n";
/// `[network]`: swarmd neither dials nor accepts TCP peers.
const ONLY_UTP: &str = "transports = [\"utp\"]";

/// A libtorrent seeder of one file (`len` bytes from `seed`) that speaks uTP only, announced by
/// `fake` as the torrent's only peer.
fn utp_only_seeder(
    env: &TestEnv,
    fake: &FakeHttpTracker,
    name: &str,
    len: u64,
    seed: u64,
) -> Seeded {
    let payload = Payload::single(&env.subdir("seed"), name, len, seed);
    let opts = LtOptions {
        utp_only: true,
        ..LtOptions::seed()
    };
    seeded_via_fake(env, fake, payload, 16, opts)
}

fn on_loopback(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
}

fn wait_complete(d: &Daemon, ih: &str) -> Value {
    d.wait_torrent(
        ih,
        "the download to complete",
        Duration::from_secs(60),
        |v| v["have_bytes"] == v["total_bytes"] && v["total_bytes"].as_u64() > Some(0),
    )
}

/// swarmd (default transports: TCP first, then uTP) dials a libtorrent seeder that refuses TCP:
/// it falls back to uTP and downloads everything.
#[test]
fn downloads_from_a_utp_only_libtorrent() {
    let env = TestEnv::new("utp-from-lt");
    let fake = FakeHttpTracker::start();
    let (payload, torrent, _seeder) =
        utp_only_seeder(&env, &fake, "from-lt.bin", 3 * MIB + 4_321, 7);
    let d = daemon(&env, "leech", "", SLOW);
    let ih = d.add(&torrent.path, None);
    wait_utp_peer(&d, &ih);
    wait_complete(&d, &ih);
    verify_download(&torrent, &payload, &d.dirs.downloads);
}

/// A libtorrent leecher that speaks uTP only dials swarmd: swarmd accepts on its UDP port and
/// seeds everything.
#[test]
fn seeds_to_a_utp_only_libtorrent() {
    let env = TestEnv::new("utp-to-lt");
    let payload = Payload::single(&env.subdir("seed"), "to-lt.bin", 3 * MIB + 1_234, 8);
    let torrent = payload.make_torrent(&env.path().join("to-lt.torrent"), 16, &[]);
    let d = daemon(&env, "seed", "", "");
    let ih = d.add(&torrent.path, Some(&payload.dir));
    d.wait_torrent(&ih, "seeding", Duration::from_secs(30), |v| {
        v["state"] == "seeding"
    });
    let leech_dir = env.subdir("lt-leech");
    let leecher = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &leech_dir,
        LtOptions {
            utp_only: true,
            no_announce: true,
            connect: vec![d.addr()],
            download_limit: Some(1 << 20),
            ..LtOptions::leech()
        },
    );
    wait_utp_peer(&d, &ih);
    let st = leecher.wait_finished(Duration::from_secs(60));
    assert_eq!(st.total_done, torrent.total_len);
    verify_download(&torrent, &payload, &leech_dir);
}

/// Two swarmd daemons that may speak uTP only: the leecher dials the seeder over uTP.
#[test]
fn swarmd_to_swarmd_over_utp_only() {
    let env = TestEnv::new("utp-swarmd");
    let payload = Payload::multi(&env.subdir("seed"), "sw", 2 * MIB + 99, 3, 9);
    let fake = FakeHttpTracker::start();
    let torrent = payload.make_torrent(&env.path().join("sw.torrent"), 15, &[&fake.announce_url()]);
    let seed = daemon(&env, "seed", ONLY_UTP, "");
    let ih = seed.add(&torrent.path, Some(&payload.dir));
    seed.wait_torrent(&ih, "seeding", Duration::from_secs(30), |v| {
        v["state"] == "seeding"
    });
    fake.set_peers(&[on_loopback(seed.port())]);
    let leech = daemon(&env, "leech", ONLY_UTP, SLOW);
    let ih2 = leech.add(&torrent.path, None);
    assert_eq!(ih, ih2);
    leech.wait_torrent(&ih, "a live peer", Duration::from_secs(30), |v| {
        v["peers"].as_u64() > Some(0)
    });
    wait_utp_peer(&leech, &ih);
    // `swarmctl peers` shows the transport too.
    let (code, out, _) = seed.ctl(&["peers", &ih]);
    assert_eq!(code, 0);
    assert!(out.contains("VIA") && out.contains("utp"), "{out}");
    wait_complete(&leech, &ih);
    verify_download(&torrent, &payload, &leech.dirs.downloads);
}

/// transmission (uTP on, its default) and a swarmd that may speak uTP only, both ways at once
/// (one of each and two torrents, since transmission's 10 s rechoke is most of the time either
/// way): swarmd downloads one torrent from transmission and seeds the other to it. swarmd dials
/// (transmission never dials a loopback peer it learns from a tracker); both ends list the
/// connections as uTP (swarmd's `transport`, transmission's `T` flag); all data arrives intact.
#[test]
fn downloads_from_and_seeds_to_transmission_over_utp() {
    let env = TestEnv::new("utp-tr");
    let fake = FakeHttpTracker::start();
    let announce = fake.announce_url();
    let theirs = Payload::single(&env.subdir("tr-seed"), "from-tr.bin", 2 * MIB + 3_210, 11);
    let theirs_t = theirs.make_torrent(&env.path().join("from-tr.torrent"), 15, &[&announce]);
    let ours = Payload::single(&env.subdir("sw-seed"), "to-tr.bin", 2 * MIB + 4_567, 12);
    let ours_t = ours.make_torrent(&env.path().join("to-tr.torrent"), 15, &[&announce]);

    let tr = TransmissionDaemon::start_utp(&env);
    tr.seed(&theirs_t.path, &theirs.dir);
    let tr_leech_dir = env.subdir("tr-leech");
    let tr_leech = tr.add_torrent(&ours_t.path, &tr_leech_dir);
    fake.set_peers(&[on_loopback(tr.peer_port())]);

    let d = daemon(
        &env,
        "swarmd",
        ONLY_UTP,
        &format!("{SLOW}upload_kib_s = 1024\n"),
    );
    let down = d.add(&theirs_t.path, None);
    let up = d.add(&ours_t.path, Some(&ours.dir));
    wait_utp_peer(&d, &down);
    wait_utp_peer(&d, &up);
    tr.wait_status(
        tr_leech,
        "its peer over uTP",
        Duration::from_secs(30),
        |s| s.peers.iter().any(|p| p.flag_str.contains('T')),
    );
    wait_complete(&d, &down);
    verify_download(&theirs_t, &theirs, &d.dirs.downloads);
    tr.wait_finished(tr_leech, Duration::from_secs(60));
    ours_t.verify_dir(&tr_leech_dir).unwrap();
}

/// A magnet whose only peer is a libtorrent that speaks uTP only: swarmd (default transports,
/// TCP refused) reaches it over uTP, fetches the metadata (`ut_metadata`) there, and then the
/// data.
#[test]
fn magnet_metadata_over_utp() {
    let env = TestEnv::new("utp-magnet");
    let fake = FakeHttpTracker::start();
    let (payload, torrent, _seeder) = utp_only_seeder(&env, &fake, "magnet.bin", 2 * MIB + 55, 13);
    let d = daemon(&env, "leech", "", SLOW);
    let magnet = torrent.magnet(&[&fake.announce_url()]);
    let added = d
        .rpc("torrent.add", Some(serde_json::json!({ "magnet": magnet })))
        .unwrap_or_else(|e| panic!("torrent.add {magnet}: {e}\n{}", d.log_tail()));
    let ih = added["info_hash"].as_str().expect("info_hash").to_owned();
    wait_utp_peer(&d, &ih);
    wait_complete(&d, &ih);
    verify_download(&torrent, &payload, &d.dirs.downloads);
}

/// A uTP header (BEP 29) of type `kind` (4 = SYN, 0 = DATA, 2 = STATE) with these fields.
fn utp_packet(kind: u8, conn_id: u16, wnd: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![(kind << 4) | 1, 0];
    p.extend_from_slice(&conn_id.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&wnd.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    p
}

/// Sends a KRPC ping to `to` and waits (bounded) for its answer.
fn dht_ping(sock: &UdpSocket, to: SocketAddr) -> Result<Vec<u8>, String> {
    let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..10 {
        sock.send_to(ping, to).map_err(|e| e.to_string())?;
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == to && buf[..n].windows(7).any(|w| w == b"1:y1:re") {
                return Ok(buf[..n].to_vec());
            }
        }
    }
    Err("no answer to a DHT ping".into())
}

/// Hostile uTP traffic on the port shared with the DHT: a SYN flood from one source, packets
/// for connections that do not exist, zero and huge windows, out-of-window sequence numbers and
/// garbage. The daemon stays up, its DHT node still answers on the same port, and a real uTP
/// peer is still served (memory stays bounded: the SYN flood is rate-limited per source, the
/// endpoint's connections are capped).
#[test]
fn hostile_utp_traffic_leaves_dht_and_peers_served() {
    let env = TestEnv::new("utp-hostile");
    let fake = FakeHttpTracker::start();
    let (payload, torrent, _seeder) = utp_only_seeder(&env, &fake, "hostile.bin", 2 * MIB + 17, 10);
    let d = daemon(
        &env,
        "target",
        "",
        &format!("[dht]\nenabled = true\nbootstrap = []\n{SLOW}"),
    );
    let to = d.addr();
    let pinger = UdpSocket::bind("127.0.0.1:0").unwrap();
    dht_ping(&pinger, to).expect("the DHT answers on the peer port before the flood");
    let rss_before = d.rss_bytes();

    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5_000u32 {
        let id = i as u16;
        let packets = [
            utp_packet(4, id, 1 << 20, id), // SYN flood, a new connection id each
            utp_packet(0, id.wrapping_add(7), 0, 9), // DATA for no connection
            utp_packet(2, id, u32::MAX, id.wrapping_mul(31)), // STATE, huge window, any seq
            vec![0x41; 3],                  // too short to be uTP
            vec![0xff; 40],                 // neither uTP nor KRPC
        ];
        for p in packets {
            let _ = attacker.send_to(&p, to);
        }
    }
    dht_ping(&pinger, to).expect("the DHT answers on the peer port after the flood");
    d.assert_alive("a uTP flood");

    let ih = d.add(&torrent.path, None);
    wait_utp_peer(&d, &ih);
    wait_complete(&d, &ih);
    verify_download(&torrent, &payload, &d.dirs.downloads);
    let rss_after = d.rss_bytes();
    assert!(
        rss_after < rss_before + 64 * MIB,
        "RSS grew from {rss_before} to {rss_after} bytes under a uTP flood"
    );
}
