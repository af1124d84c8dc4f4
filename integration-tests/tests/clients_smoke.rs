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
    leecher.wait_finished(Duration::from_secs(45));
    torrent.verify_dir(&leech_dir).unwrap();
    let st = tr.status(id);
    assert!(
        st.uploaded_ever >= torrent.total_len,
        "transmission uploaded only {}",
        st.uploaded_ever
    );
}
