//! The DHT and magnet links with real processes: swarmd's DHT node against libtorrent's, and
//! magnet links resolved through a tracker or the DHT, with libtorrent on the other side.
//!
//! Everything stays on 127.0.0.1. No process ever sees the public bootstrap routers: every swarmd
//! that runs a DHT node (`--dht`, or any magnet link) gets an explicit `--dht-bootstrap`, and the
//! libtorrent driver bootstraps only from what [`LtOptions::dht_bootstrap`] names. The DHT network
//! of a test is a swarmd node acting as router (`swarmd download SMALL.torrent --seed --dht`,
//! seeding an unrelated torrent), which the others join; libtorrent's one-node-per-IP rules are
//! lifted by the driver, since every node here shares 127.0.0.1.
//!
//! Also BEP 27 at the wire: a private torrent never invites a peer into the DHT (no DHT bit in
//! its handshake, no `port` message), while a public one of the same daemon does; and
//! `session.stats` counts the DHT's nodes while it runs.
//!
//! The many-node DHT behaviour (lookups converging across ~30 nodes) is tested in process in
//! `crates/swarm-dht/tests/swarm.rs`; this file covers what needs the real binaries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use swarm_integration_tests::bencode::{self, Value};
use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::payload::write_torrent_file;
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::wire::{self, Frame, RawPeer};
use swarm_wire::peer::Handshake;

/// Logging for the swarmd processes: enough to diagnose a DHT or metadata failure from the logs
/// that a failing test prints.
const SWARMD_LOG: &str = "info,swarm_engine=debug,swarm_dht=debug";

/// Waits until `needle` appears in the log of `p`.
fn wait_log(p: &SwarmdProcess, what: &str, needle: &str, timeout: Duration) {
    wait_until(what, timeout, Duration::from_millis(50), || {
        p.guard().assert_running();
        p.guard().log_contents().contains(needle)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", p.guard().log_tail(40)));
}

/// A swarmd DHT node for the others to join: seeds a small unrelated torrent with `--dht`. Its
/// own bootstrap node is a loopback port nobody listens on, so it starts alone and learns the
/// nodes that query it. Its DHT address is `router.addr()` (UDP, the peer port's number).
fn dht_router(env: &TestEnv) -> SwarmdProcess {
    let payload = Payload::single(&env.subdir("router"), "router.bin", 64 * KIB, 901);
    let torrent = payload.make_torrent(&env.path().join("router.torrent"), 15, &[]);
    let nowhere = loopback(free_udp_port());
    let router = Swarmd::download(&torrent.path)
        .out(&payload.dir)
        .seed(true)
        .port(free_tcp_udp_port())
        .arg("--dht")
        .arg("--dht-bootstrap")
        .arg(nowhere.to_string())
        .env("RUST_LOG", SWARMD_LOG)
        .name("swarmd-router")
        .spawn(env);
    router.wait_listening(Duration::from_secs(15));
    wait_log(
        &router,
        "the router's DHT node to start",
        "DHT node started",
        Duration::from_secs(10),
    );
    router
}

/// A magnet link with only the info-hash (no tracker, no peer, no name).
fn bare_magnet(t: &Torrent) -> String {
    format!("magnet:?xt=urn:btih:{}", t.info_hash.to_hex())
}

/// `swarmd download MAGNET` with its DHT node joining through `bootstrap`, giving up after 60 s.
fn swarmd_magnet(env: &TestEnv, magnet: &str, bootstrap: SocketAddr, name: &str) -> SwarmdProcess {
    Swarmd::download(Path::new(magnet))
        .out(&env.subdir(name))
        .port(free_tcp_udp_port())
        .arg("--dht-bootstrap")
        .arg(bootstrap.to_string())
        .arg("--timeout")
        .arg("60")
        .env("RUST_LOG", SWARMD_LOG)
        .name(name)
        .spawn(env)
}

/// Minimal percent-encoding for a URL inside a magnet parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// 1(a): swarmd resolves a bare magnet link (no tracker, no `x.pe`) through the DHT: a libtorrent
/// seeder announced the torrent to the DHT, swarmd's node finds it with get_peers, fetches the
/// metadata from libtorrent over ut_metadata and downloads the payload.
#[test]
fn swarmd_magnet_finds_libtorrent_seeder_through_dht() {
    let env = TestEnv::new("dht-lt-seeds");
    let router = dht_router(&env);
    let payload = Payload::multi(&env.subdir("seed"), "dhtdata", 3 * MIB + 4_321, 3, 71);
    let torrent = payload.make_torrent(&env.path().join("dhtdata.torrent"), 15, &[]);

    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            dht: true,
            dht_bootstrap: vec![router.addr()],
            ..LtOptions::seed()
        },
    );
    seeder.wait_seeding();
    // libtorrent bootstrapped through the swarmd router and announced the torrent (announce_peer
    // queries go to the nodes that answered its get_peers with a token: the router among them).
    seeder.wait_status(
        "libtorrent to announce the torrent to the DHT",
        Duration::from_secs(30),
        |s| s.dht_announces_out >= 1,
    );
    let log = seeder.dht_log();
    let to_router = format!("==> [{}]", router.addr());
    assert!(
        log.lines()
            .any(|l| l.contains(&to_router) && l.contains("'q': 'announce_peer'")),
        "libtorrent never sent announce_peer to the swarmd router:\n{log}"
    );

    let leecher = swarmd_magnet(&env, &bare_magnet(&torrent), router.addr(), "swarmd-leech");
    let status = leecher.wait_exit(Duration::from_secs(70));
    assert!(
        status.success(),
        "swarmd download MAGNET exited with {status}\n{}",
        leecher.guard().log_tail(60)
    );
    torrent.verify_dir(leecher.out_dir()).unwrap();
    assert!(files_equal(
        &payload.root(),
        &leecher.out_dir().join("dhtdata")
    ));
    let log = leecher.guard().log_contents();
    assert!(
        log.contains("metadata fetched"),
        "{}",
        leecher.guard().log_tail(60)
    );
    // libtorrent was the only source of the payload.
    seeder.wait_status("uploaded the whole payload", Duration::from_secs(10), |s| {
        s.total_payload_upload >= torrent.total_len
    });
}

/// 1(b): libtorrent finds a swarmd seeder through the DHT: swarmd announced the torrent to the
/// DHT; a libtorrent leecher with only a bare magnet link (no tracker, no peer) looks it up,
/// connects to swarmd, fetches the metadata from swarmd and downloads the payload.
#[test]
fn libtorrent_magnet_finds_swarmd_seeder_through_dht() {
    let env = TestEnv::new("dht-swarmd-seeds");
    let router = dht_router(&env);
    let payload = Payload::multi(&env.subdir("seed"), "dhtseed", 3 * MIB + 999, 4, 72);
    let torrent = payload.make_torrent(&env.path().join("dhtseed.torrent"), 15, &[]);

    let seeder = Swarmd::download(&torrent.path)
        .out(&payload.dir)
        .seed(true)
        .port(free_tcp_udp_port())
        .arg("--dht")
        .arg("--dht-bootstrap")
        .arg(router.addr().to_string())
        .env("RUST_LOG", SWARMD_LOG)
        .name("swarmd-seed")
        .spawn(&env);
    seeder.wait_listening(Duration::from_secs(15));
    wait_log(
        &seeder,
        "swarmd to seed",
        "complete; seeding",
        Duration::from_secs(15),
    );
    // Joined through the router, which is when the node announces the registered torrent.
    wait_log(
        &seeder,
        "swarmd's DHT node to bootstrap",
        "DHT bootstrapped",
        Duration::from_secs(15),
    );

    let leech_dir = env.subdir("leech");
    let leecher = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &leech_dir,
        LtOptions {
            magnet: Some(bare_magnet(&torrent)),
            dht: true,
            dht_bootstrap: vec![router.addr()],
            // Slow enough that the connection to the seeder is seen before the download ends
            // (two seeds then part).
            download_limit: Some(2 * MIB),
            ..LtOptions::leech()
        },
    );
    let peer = leecher.wait_peer(
        "the swarmd seeder, found through the DHT",
        Duration::from_secs(45),
        |p| p.port == seeder.port() && p.flags.local_connection,
    );
    assert!(
        peer.source.iter().any(|s| s == "dht"),
        "libtorrent learnt of the swarmd seeder other than through the DHT: {peer:?}"
    );
    let st = leecher.wait_finished(Duration::from_secs(45));
    assert!(st.has_metadata);
    assert_eq!(st.total_done, torrent.total_len);
    torrent.verify_dir(&leech_dir).unwrap();
    assert!(files_equal(&payload.root(), &leech_dir.join("dhtseed")));
    assert!(st.dht_replies >= 1, "no DHT reply for the torrent: {st}");
}

/// 2: a magnet link with a `tr=` (opentracker over HTTP) and nothing else: swarmd finds the
/// libtorrent seeder through the tracker, fetches the metadata from it and completes.
#[test]
fn swarmd_magnet_with_http_tracker_fetches_metadata_from_libtorrent() {
    magnet_with_tracker("magnet-tr-http", |t| t.announce_url());
}

/// 2, over UDP (BEP 15): the magnet's `tr=` is opentracker's `udp://` URL; the libtorrent seeder
/// announced over HTTP to the same tracker, which shares one swarm between both.
#[test]
fn swarmd_magnet_with_udp_tracker_fetches_metadata_from_libtorrent() {
    magnet_with_tracker("magnet-tr-udp", |t| t.udp_url());
}

/// A three-file payload `name` of `size` bytes, its torrent (32 KiB pieces) announcing to a
/// fresh opentracker, and a libtorrent seeder of it that has announced there.
fn tracked_seeder(
    env: &TestEnv,
    name: &str,
    size: u64,
    seed: u64,
) -> (Opentracker, Payload, Torrent, LibtorrentPeer) {
    let tracker = Opentracker::start(env, &[]);
    let payload = Payload::multi(&env.subdir("seed"), name, size, 3, seed);
    let torrent = payload.make_torrent(
        &env.path().join(format!("{name}.torrent")),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let seeder = LibtorrentPeer::seed(env, &torrent.path, &payload.dir);
    tracker.wait_scrape(
        torrent.info_hash,
        "the seeder's announce",
        Duration::from_secs(15),
        |c, _, _| c >= 1,
    );
    (tracker, payload, torrent, seeder)
}

fn magnet_with_tracker(name: &str, tr: impl Fn(&Opentracker) -> String) {
    let env = TestEnv::new(name);
    let (tracker, payload, torrent, seeder) = tracked_seeder(&env, "magnetdata", 3 * MIB + 17, 73);

    let magnet = format!(
        "{}&dn={}&tr={}",
        bare_magnet(&torrent),
        torrent.name,
        encode(&tr(&tracker))
    );
    // A magnet link always starts the DHT node: give it a bootstrap node that does not exist, so
    // the tracker is the only way to the seeder (and the public routers are never contacted).
    let nowhere = loopback(free_udp_port());
    let leecher = swarmd_magnet(&env, &magnet, nowhere, "swarmd-leech");
    let status = leecher.wait_exit(Duration::from_secs(70));
    assert!(
        status.success(),
        "swarmd download MAGNET exited with {status}\n{}",
        leecher.guard().log_tail(60)
    );
    torrent.verify_dir(leecher.out_dir()).unwrap();
    assert!(files_equal(
        &payload.root(),
        &leecher.out_dir().join("magnetdata")
    ));
    assert!(leecher.guard().log_contents().contains("metadata fetched"));
    seeder.wait_status("uploaded the whole payload", Duration::from_secs(10), |s| {
        s.total_payload_upload >= torrent.total_len
    });
}

/// A one-piece torrent (its data need not exist: the daemon only has to know it), `private` or
/// not, written to `<env>/<name>.torrent`.
fn bare_torrent(env: &TestEnv, name: &str, private: bool) -> (std::path::PathBuf, InfoHash) {
    let mut info = BTreeMap::new();
    info.insert(b"length".to_vec(), Value::Int(16 * KIB as i64));
    info.insert(b"name".to_vec(), bencode::bytes(format!("{name}.bin")));
    info.insert(b"piece length".to_vec(), Value::Int(16 * KIB as i64));
    info.insert(b"pieces".to_vec(), Value::Bytes(vec![0xab; 20]));
    if private {
        info.insert(b"private".to_vec(), Value::Int(1));
    }
    let info_bytes = Value::Dict(info).encode();
    let path = env.path().join(format!("{name}.torrent"));
    write_torrent_file(&path, None, &[], &info_bytes);
    (
        path,
        InfoHash(sha1_smol::Sha1::from(&info_bytes).digest().bytes()),
    )
}

/// Connects to `d` for `ih` as a peer that advertises the DHT (BEP 5) and the fast extension,
/// then requests a block while choked: swarmd rejects it (BEP 6), after everything it sends on
/// connecting. Returns whether swarmd's handshake had the DHT bit, and whether a `port` message
/// came before the reject.
fn dht_invitation(d: &Daemon, ih: &InfoHash) -> (bool, bool) {
    let mut p = RawPeer::connect(d.addr()).expect("raw peer: connecting");
    let ours = Handshake::new(*ih, wire::next_peer_id())
        .with_fast()
        .with_dht();
    p.send(&ours.encode()).expect("raw peer: handshake");
    let theirs = p
        .read_handshake(ih, Duration::from_secs(10))
        .expect("raw peer: swarmd's handshake");
    p.send(&wire::block_msg(wire::REQUEST, 0, 0, 16 * KIB as u32))
        .expect("raw peer: request");
    let mut port = false;
    loop {
        match p.next(Duration::from_secs(10)).expect("raw peer: reading") {
            Some(Frame::Msg(wire::PORT, _)) => port = true,
            Some(Frame::Msg(wire::REJECT, _)) => return (theirs.supports_dht(), port),
            Some(_) => {}
            None => panic!("no reject from swarmd within 10 s\n{}", d.log_tail()),
        }
    }
}

/// BEP 27: a private torrent keeps its peers out of the DHT: no DHT bit in swarmd's handshake
/// and no `port` message to a peer that advertises the DHT. A public torrent of the same daemon
/// sends both, which shows the DHT is running (`session.stats` counts its nodes, not `null`).
#[test]
fn private_torrents_send_no_dht_port() {
    let env = TestEnv::new("bep27-port");
    let dirs = DaemonConfig {
        name: Some("bep27"),
        watch_rescan_secs: None,
        // A DHT node of its own that knows nobody: it runs, and talks to no one.
        extra: "[dht]\nenabled = true\nbootstrap = []\n",
        ..DaemonConfig::fast("integration-tests/tests/dht_magnet.rs")
    }
    .write(&env, free_tcp_udp_port());
    let d = Daemon::start(&env, &dirs, "swarmd-bep27");
    wait_until(
        "session.stats to count the DHT's nodes",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            let s = d.rpc("session.stats", None).expect("session.stats");
            s["dht_nodes"].is_u64()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    for (name, private) in [("public", false), ("private", true)] {
        let (path, ih) = bare_torrent(&env, name, private);
        let added = d.add(&path, None);
        assert_eq!(added, ih.to_hex());
        d.wait_torrent(&added, "the check to end", Duration::from_secs(20), |v| {
            v["state"] != "checking"
        });
        let (dht_bit, port) = dht_invitation(&d, &ih);
        assert_eq!(
            (dht_bit, port),
            (!private, !private),
            "{name} torrent: (DHT bit, port message)"
        );
    }
}

/// BEP 53: a magnet link with `so=1`, added to the daemon, downloads its second file only (the
/// others are set to `skip` before any piece is asked for) and then seeds it; the file matches
/// the libtorrent seeder's, the others are not complete on disk.
#[test]
fn magnet_select_only_downloads_only_the_selected_file() {
    let env = TestEnv::new("magnet-so");
    let (tracker, payload, torrent, _seeder) = tracked_seeder(&env, "sodata", 6 * MIB + 17, 91);
    let dirs =
        DaemonConfig::new("integration-tests/tests/dht_magnet.rs").write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");
    let magnet = format!(
        "{}&dn=sodata&tr={}&so=1",
        bare_magnet(&torrent),
        encode(&tracker.announce_url())
    );
    d.ctl_ok(&["add", &magnet]);
    let ih = torrent.info_hash.to_hex();
    let v = d.wait_torrent(&ih, "the selected file", Duration::from_secs(60), |v| {
        v["state"] == "seeding"
    });
    let files = d.ctl_json(&["files", &ih]);
    let prio: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(prio, ["skip", "normal", "skip"], "{files}");
    let chosen = &payload.files[1];
    let got = dirs.downloads.join("sodata").join(&chosen.rel_path);
    assert!(
        files_equal(&payload.file_path(chosen), &got),
        "the selected file differs from the seeder's: {}",
        got.display()
    );
    assert!(
        v["have_bytes"].as_u64().unwrap() < torrent.total_len,
        "the whole torrent was downloaded: {v}"
    );
    for f in [&payload.files[0], &payload.files[2]] {
        let p = dirs.downloads.join("sodata").join(&f.rel_path);
        assert!(
            !files_equal(&payload.file_path(f), &p),
            "{} was downloaded though `so` left it out",
            f.rel_path
        );
    }
}
