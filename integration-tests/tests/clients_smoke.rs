//! Smoke tests of the drivers themselves: real clients only, no swarmd. If these fail, the
//! problem is the test environment or a driver, not swarmd.

use std::time::Duration;

use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;

/// opentracker + libtorrent seeder → libtorrent leecher, peers found through the tracker (HTTP),
/// multi-file payload with file edges inside pieces.
#[test]
fn libtorrent_to_libtorrent_via_opentracker() {
    let env = TestEnv::new("smoke-lt-lt");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("seed"), "multi", 4 * MIB + 12_345, 5, 11);
    let torrent = payload.make_torrent(
        &env.path().join("multi.torrent"),
        15,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);

    let seeder = LibtorrentPeer::seed(&env, &torrent.path, &payload.dir);
    // The seeder has announced once the tracker counts a complete peer.
    tracker.wait_scrape(
        torrent.info_hash,
        "the seeder's announce",
        Duration::from_secs(15),
        |c, _, _| c >= 1,
    );

    let leech_dir = env.subdir("leech");
    let leecher = LibtorrentPeer::leech(&env, &torrent.path, &leech_dir);
    let st = leecher.wait_finished(Duration::from_secs(40));
    assert_eq!(st.total_done, torrent.total_len);

    torrent.verify_dir(&leech_dir).unwrap();
    assert!(files_equal(&payload.root(), &leech_dir.join("multi")));
    // The leecher found the seeder through the tracker and the seeder uploaded everything
    // (libtorrent folds transfer counters into its status once per second, hence the wait).
    seeder.wait_status("uploaded the whole payload", Duration::from_secs(10), |s| {
        s.total_payload_upload >= torrent.total_len
    });
    // The tracker saw the completion.
    tracker.wait_scrape(
        torrent.info_hash,
        "event=completed",
        Duration::from_secs(15),
        |c, _, d| c >= 2 && d >= 1,
    );
}

/// libtorrent seeder → aria2 leecher (aria2 finds the seeder through opentracker; HTTP, as aria2
/// without DHT cannot announce over UDP), completes, and exits 0 on a graceful shutdown.
#[test]
fn libtorrent_to_aria2() {
    let env = TestEnv::new("smoke-lt-aria2");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "single.bin", 3 * MIB + 777, 22);
    let torrent = payload.make_torrent(
        &env.path().join("single.torrent"),
        16,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);

    let _seeder = LibtorrentPeer::seed(&env, &torrent.path, &payload.dir);
    tracker.wait_scrape(
        torrent.info_hash,
        "the seeder's announce",
        Duration::from_secs(15),
        |c, _, _| c >= 1,
    );

    let leech_dir = env.subdir("aria2");
    let aria2 = Aria2::leech(&env, &torrent.path, &leech_dir);
    aria2.wait_download_complete(Duration::from_secs(40));
    verify_dir_against_torrent(&torrent.path, &leech_dir).unwrap();
    assert!(files_equal(&payload.root(), &leech_dir.join("single.bin")));
}

/// transmission seeds a payload; a libtorrent leecher without any tracker dials it directly
/// (transmission would ignore 127.0.0.1 peers from a tracker anyway).
#[test]
fn transmission_seeds_to_libtorrent() {
    let env = TestEnv::new("smoke-tr-lt");
    let payload = Payload::multi(&env.subdir("seed"), "trdata", 2 * MIB + 4_321, 4, 33);
    let torrent = payload.make_torrent(&env.path().join("trdata.torrent"), 15, &[]);

    let tr = TransmissionDaemon::start(&env);
    let id = tr.seed(&torrent.path, &payload.dir);

    let leech_dir = env.subdir("leech");
    let leecher = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &leech_dir,
        LtOptions {
            connect: vec![tr.peer_addr()],
            no_announce: true,
            ..LtOptions::leech()
        },
    );
    // Transmission lists the incoming libtorrent peer (it unchokes it only at its next 10 s
    // rechoke, so the download itself starts late).
    let seen = tr.wait_status(id, "the leecher to connect", Duration::from_secs(15), |s| {
        s.peers.iter().any(|p| p.is_incoming)
    });
    assert_eq!(seen.peers[0].address, "127.0.0.1");
    leecher.wait_finished(Duration::from_secs(45));
    torrent.verify_dir(&leech_dir).unwrap();
    let st = tr.status(id);
    assert!(
        st.uploaded_ever >= torrent.total_len,
        "transmission uploaded only {}",
        st.uploaded_ever
    );
}

/// The libtorrent driver's control and status surface, and the fake tracker with a real client:
/// the leecher finds the seeder only through `FakeHttpTracker`, the seeder has no tracker and is
/// observed through its per-peer flags and wire log, and stopping the leecher sends
/// `event=stopped`.
#[test]
fn libtorrent_driver_surface_with_fake_tracker() {
    let env = TestEnv::new("smoke-lt-surface");
    let fake = FakeHttpTracker::start();
    let payload = Payload::single(&env.subdir("seed"), "surface.bin", 2 * MIB + 99, 44);
    let torrent = payload.make_torrent(
        &env.path().join("surface.torrent"),
        15,
        &[&fake.announce_url()],
    );

    let seeder = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            peer_log: true,
            // Slow enough that the transfer is observable mid-way even on a loaded machine (at
            // 1 MiB/s the leecher was sometimes done before the first poll saw it connected);
            // lifted once the connection is seen.
            upload_limit: Some(128 * 1024),
            ..LtOptions::seed()
        },
    );
    seeder.wait_seeding();
    fake.set_peers(&[std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        seeder.port(),
    )]);

    let leech_dir = env.subdir("leech");
    let mut leecher = LibtorrentPeer::leech(&env, &torrent.path, &leech_dir);
    let started = fake.wait_for_announce("event=started", Duration::from_secs(10), |a| {
        a.event() == Some("started")
    });
    assert_eq!(started.info_hash(), Some(torrent.info_hash));
    assert_eq!(started.port(), Some(leecher.port()));

    // The seeder unchokes the interested leecher; the leecher sees an unchoking seed.
    let from_seeder = seeder.wait_peer(
        "an interested, unchoked leecher",
        Duration::from_secs(10),
        |p| p.flags.remote_interested && !p.flags.choked && !p.flags.local_connection,
    );
    assert!(from_seeder.flags.supports_extensions);
    let from_leecher =
        leecher.wait_peer("the seeder, unchoking us", Duration::from_secs(10), |p| {
            p.port == seeder.port() && p.flags.seed && !p.flags.remote_choked && p.flags.interesting
        });
    assert!(
        from_leecher.source.contains(&"tracker".to_string()),
        "{from_leecher:?}"
    );

    // Commands run and are acknowledged.
    seeder.command("upload_limit 0");
    leecher.wait_finished(Duration::from_secs(30));
    torrent.verify_dir(&leech_dir).unwrap();
    let fin = fake.wait_for_announce("event=completed", Duration::from_secs(10), |a| {
        a.event() == Some("completed")
    });
    assert_eq!(fin.left(), Some(0));

    // The wire log has the fast-extension and extension handshakes the seeder sent.
    let log = seeder.peer_log();
    assert!(
        log.contains("==> HAVE_ALL"),
        "no HAVE_ALL in the seeder's wire log"
    );
    assert!(
        log.contains("<== EXTENDED_HANDSHAKE"),
        "no extension handshake received"
    );

    leecher.stop();
    fake.wait_for_announce("event=stopped", Duration::from_secs(10), |a| {
        a.event() == Some("stopped")
    });
}
