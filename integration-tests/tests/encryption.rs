//! Message Stream Encryption (MSE/PE) end to end: the real `swarmd` against libtorrent and
//! transmission set to require encryption, swarmd against swarmd with `require` on both ends,
//! and hostile handshakes at the daemon's peer port. Every download is checked byte for byte
//! against the seeder's copy and piece by piece against the torrent's hashes; that the
//! connection really was RC4 is read from the other client (libtorrent's `rc4_encrypted`) or
//! from `swarmctl peers` (flag `E`, `encrypted` in JSON).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;
use swarm_integration_tests::libtorrent::{seeded, Encryption};
use swarm_integration_tests::prelude::*;

const TIMEOUT_SECS: u64 = 60;
const EXIT_WAIT: Duration = Duration::from_secs(TIMEOUT_SECS + 20);
const RUST_LOG: &str = "info,swarm_engine=debug";
/// A seeder slow enough (1 MiB/s) to see its peers while a transfer runs: once both ends are
/// complete they part ("both seeding") and the peer list is empty.
const SLOW_UPLOAD: &str = "[limits]\nupload_kib_s = 1024\n";

/// `swarmd download` of `torrent` with the encryption policy `policy`.
fn download(env: &TestEnv, torrent: &Torrent, name: &str, policy: &str) -> SwarmdProcess {
    Swarmd::download(&torrent.path)
        .out(&env.subdir(name))
        .name(name)
        .arg("--timeout")
        .arg(TIMEOUT_SECS.to_string())
        .arg("--encryption")
        .arg(policy)
        .env("RUST_LOG", RUST_LOG)
        .spawn(env)
}

fn lt_forced() -> LtOptions {
    LtOptions {
        encryption: Encryption::Forced,
        ..LtOptions::seed()
    }
}

/// libtorrent requiring RC4 both ways (it refuses plaintext): swarmd, with the default policy
/// (prefer), dials it encrypted and downloads everything.
#[test]
fn downloads_from_libtorrent_that_forces_encryption() {
    let env = TestEnv::new("mse-lt-down");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "mselt", 3 * MIB + 1_234, 11);
    let (payload, torrent, seeder) = seeded(&env, &tracker, payload, 15, lt_forced());
    let leech = download(&env, &torrent, "swarmd", "prefer");
    leech.expect_complete(EXIT_WAIT);
    verify_download(&torrent, &payload, leech.out_dir());
    // The seeder refuses anything but RC4 (forced, allowed_enc_level = rc4): the download could
    // only go over an encrypted connection.
    seeder.wait_status("uploaded the payload", Duration::from_secs(10), |s| {
        s.total_payload_upload >= torrent.total_len
    });
}

/// A libtorrent leecher requiring RC4 dials swarmd (the listener's MSE path) and gets everything.
#[test]
fn seeds_to_libtorrent_that_forces_encryption() {
    let env = TestEnv::new("mse-lt-up");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("orig"), "mseup", 3 * MIB + 4_321, 12);
    let torrent = payload.make_torrent(
        &env.path().join("mseup.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let copy = payload.copy_to(&env.subdir("swarmd-seed"));
    let seeder = Swarmd::download(&torrent.path)
        .out(&copy.dir)
        .name("swarmd-seed")
        .seed(true)
        .arg("--timeout")
        .arg(TIMEOUT_SECS.to_string())
        .arg("--encryption")
        .arg("require")
        .env("RUST_LOG", RUST_LOG)
        .spawn(&env);
    seeder.wait_listening(Duration::from_secs(20));
    let dir = env.subdir("lt-leech");
    let leecher = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &dir,
        LtOptions {
            encryption: Encryption::Forced,
            connect: vec![seeder.addr()],
            ..LtOptions::leech()
        },
    );
    let st = leecher.wait_finished(Duration::from_secs(TIMEOUT_SECS));
    assert_eq!(st.total_done, torrent.total_len);
    verify_download(&torrent, &payload, &dir);
    // Both ends refuse anything but RC4 (swarmd `require`, libtorrent forced with RC4 only).
    assert!(
        seeder.guard().is_running(),
        "{}",
        seeder.guard().log_tail(40)
    );
}

/// transmission with `encryption` = required seeds; swarmd dials it and downloads.
#[test]
fn downloads_from_transmission_that_requires_encryption() {
    let env = TestEnv::new("mse-tr-down");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "msetr", 2 * MIB + 999, 13);
    let torrent = payload.make_torrent(
        &env.path().join("msetr.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let tr = TransmissionDaemon::start(&env);
    tr.rpc("session-set", json!({"encryption": "required"}))
        .expect("transmission takes encryption = required");
    tr.seed(&torrent.path, &payload.dir);
    tracker.wait_seeder(torrent.info_hash, Duration::from_secs(20));
    let leech = download(&env, &torrent, "swarmd", "prefer");
    leech.expect_complete(EXIT_WAIT);
    verify_download(&torrent, &payload, leech.out_dir());
}

/// Two swarmd with `require` on both ends: a daemon seeds, `swarmd download` fetches, and the
/// daemon's `peers` shows the connection encrypted. A plaintext dialler is refused meanwhile.
#[test]
fn swarmd_to_swarmd_with_encryption_required() {
    let env = TestEnv::new("mse-sw-sw");
    let tracker = Opentracker::start(&env, &[]);
    let dirs = DaemonConfig {
        network: "encryption = \"require\"",
        // Slow enough (2 MiB at 1 MiB/s) to see the leecher in the peer list while it runs.
        extra: SLOW_UPLOAD,
        ..DaemonConfig::new("integration-tests/tests/encryption.rs")
    }
    .write(&env, free_tcp_udp_port());
    let payload = Payload::single(&dirs.downloads, "mseswsw", 2 * MIB + 77, 14);
    let torrent = payload.make_torrent(
        &env.path().join("mseswsw.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let daemon = Daemon::start(&env, &dirs, "daemon");
    let ih = daemon.add(&torrent.path, Some(&dirs.downloads));
    daemon.wait_torrent(&ih, "seeding", Duration::from_secs(20), |v| {
        v["state"] == "seeding"
    });
    assert!(daemon.ctl_ok(&["encryption"]).contains("require"));

    // Plaintext is refused (the connection closes without an answer).
    let mut plain = TcpStream::connect(daemon.addr()).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&torrent.info_hash.0);
    hs.extend_from_slice(b"-XX0000-plaintextpeer");
    hs.truncate(68);
    plain.write_all(&hs).unwrap();
    let mut answer = [0u8; 68];
    assert!(
        !matches!(plain.read(&mut answer), Ok(n) if n > 0),
        "swarmd answered a plaintext handshake under require"
    );

    let leech = download(&env, &torrent, "swarmd-leech", "require");
    // The daemon shows the leecher as encrypted while it downloads (or it finished already).
    let mut seen = false;
    let _ = wait_until(
        "the daemon to list the leecher",
        Duration::from_secs(TIMEOUT_SECS),
        Duration::from_millis(50),
        || {
            seen = daemon.peers(&ih).iter().any(|p| p["encrypted"] == true);
            seen || !leech.guard().is_running()
        },
    );
    leech.expect_complete(EXIT_WAIT);
    verify_download(&torrent, &payload, leech.out_dir());
    assert!(seen, "the daemon never listed an encrypted peer");
    daemon.assert_alive("serving an encrypted leecher");
}

/// Garbage, a truncated MSE handshake, a stalled DH exchange and a peer that never sends the
/// sync marker: each is dropped (the connection closes, within the handshake timeout), and the
/// daemon serves an encrypting leecher meanwhile.
#[test]
fn hostile_handshakes_are_dropped_and_others_served() {
    let env = TestEnv::new("mse-hostile");
    let tracker = Opentracker::start(&env, &[]);
    let dirs = DaemonConfig {
        network: "handshake_timeout_secs = 2",
        ..DaemonConfig::new("integration-tests/tests/encryption.rs")
    }
    .write(&env, free_tcp_udp_port());
    let payload = Payload::single(&dirs.downloads, "msehostile", MIB + 5, 15);
    let torrent = payload.make_torrent(
        &env.path().join("msehostile.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);
    let daemon = Daemon::start(&env, &dirs, "daemon");
    let ih = daemon.add(&torrent.path, Some(&dirs.downloads));
    daemon.wait_torrent(&ih, "seeding", Duration::from_secs(20), |v| {
        v["state"] == "seeding"
    });

    let cases: [(&str, Vec<u8>); 4] = [
        (
            "garbage after a public key",
            (0..2000u32).map(|i| (i * 7) as u8).collect(),
        ),
        ("a truncated public key", vec![0x42; 50]),
        (
            "a stalled DH exchange (Ya and nothing more)",
            vec![0x42; 96],
        ),
        ("no sync marker within 512 bytes", vec![0x42; 96 + 600]),
    ];
    let mut open = Vec::new();
    for (what, bytes) in cases {
        let mut s = TcpStream::connect(daemon.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(&bytes).unwrap();
        open.push((what, s, Instant::now()));
    }
    // An honest encrypting leecher is served meanwhile.
    let leech = download(&env, &torrent, "swarmd-leech", "require");
    for (what, mut s, _) in open {
        // Whatever swarmd answered (Yb and PadB to a well-formed Ya), it closes the connection.
        let mut sink = [0u8; 4096];
        let mut closed = false;
        for _ in 0..100 {
            match s.read(&mut sink) {
                Ok(0) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        assert!(closed, "swarmd kept a connection open after {what}");
    }
    leech.expect_complete(EXIT_WAIT);
    verify_download(&torrent, &payload, leech.out_dir());
    daemon.assert_alive("hostile handshakes");
}

/// Two daemons that speak uTP only and require encryption: the leecher dials the seeder over
/// uTP, the seeder's UDP port tells the MSE handshake from plaintext, and RC4 runs over the uTP
/// stream both ways.
#[test]
fn swarmd_to_swarmd_encrypted_over_utp() {
    let env = TestEnv::new("mse-utp");
    let fake = FakeHttpTracker::start();
    let network = "encryption = \"require\"\ntransports = [\"utp\"]";
    let daemon = |name, extra| {
        let dirs = DaemonConfig {
            name: Some(name),
            network,
            extra,
            ..DaemonConfig::new("integration-tests/tests/encryption.rs")
        }
        .write(&env, free_tcp_udp_port());
        Daemon::start(&env, &dirs, name)
    };
    let seed = daemon("seed", SLOW_UPLOAD);
    let payload = Payload::single(&env.subdir("seed-data"), "mseutp", 2 * MIB + 33, 16);
    let torrent = payload.make_torrent(
        &env.path().join("mseutp.torrent"),
        15,
        &[&fake.announce_url()],
    );
    let ih = seed.add(&torrent.path, Some(&payload.dir));
    seed.wait_torrent(&ih, "seeding", Duration::from_secs(30), |v| {
        v["state"] == "seeding"
    });
    fake.set_peers(&[SocketAddrV4::new(Ipv4Addr::LOCALHOST, seed.port())]);
    let leech = daemon("leech", "");
    leech.add(&torrent.path, None);
    let seen = wait_for(
        "an encrypted peer over uTP",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let peers = leech.peers(&ih);
            if peers
                .iter()
                .any(|p| p["encrypted"] == true && p["transport"] == "utp")
            {
                Ok(())
            } else {
                Err(format!("peers {peers:?}"))
            }
        },
    );
    if let Err(e) = seen {
        panic!("{e}\n{}", leech.log_tail());
    }
    leech.wait_torrent(
        &ih,
        "the download to complete",
        Duration::from_secs(60),
        |v| v["have_bytes"] == v["total_bytes"] && v["total_bytes"].as_u64() > Some(0),
    );
    verify_download(&torrent, &payload, &leech.dirs.downloads);
    seed.assert_alive("serving an encrypted uTP leecher");
}
