//! The queue and the seeding limits end to end, against libtorrent peers.
//!
//! - With `max_active_downloads = 1`, three torrents download one after another from libtorrent
//!   seeders, in queue order, and one moved to the top goes next; a queued torrent does not
//!   announce; the state changes are watched through the event stream (never two downloading at
//!   once), the order through the first `seeding` of each.
//! - A seed whose own ratio limit is reached pauses while a libtorrent leecher is still
//!   fetching; with the session's action switched to `remove`, the next limit removes it.

use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::libtorrent::seeded_via_fake;
use swarm_integration_tests::prelude::*;

const WAIT: Duration = Duration::from_secs(60);

/// The order of `state` events, as `(info_hash, state)`.
fn states(events: &Events) -> Vec<(String, String)> {
    events
        .all()
        .into_iter()
        .filter(|e| e["event"] == "state")
        .map(|e| {
            (
                e["info_hash"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn downloads_run_one_at_a_time_in_queue_order_and_a_moved_one_goes_next() {
    let env = TestEnv::new("queue-order");
    let dirs = DaemonConfig {
        extra: "[queue]\nmax_active_downloads = 1\n",
        ..DaemonConfig::fast("queueing")
    }
    .write(&env, free_tcp_port());
    let daemon = Daemon::start(&env, &dirs, "queue");
    let events = Events::subscribe(&dirs.socket);

    // Three torrents, each with a libtorrent seeder that only its own tracker names. The first
    // seeder is slow until the move below is done, so that the move happens while it runs.
    let mut seeded = Vec::new();
    for (i, name) in ["qa.bin", "qb.bin", "qc.bin"].iter().enumerate() {
        let tracker = FakeHttpTracker::start();
        let payload = Payload::single(&env.subdir(&format!("seed{i}")), name, 256 * KIB, i as u64);
        let opts = LtOptions {
            upload_limit: (i == 0).then_some(8 * KIB),
            name: Some(format!("lt-seed-{i}")),
            ..LtOptions::seed()
        };
        let (payload, torrent, seeder) = seeded_via_fake(&env, &tracker, payload, 15, opts);
        seeded.push((tracker, payload, torrent, seeder));
    }
    let hashes: Vec<String> = seeded
        .iter()
        .map(|(_, _, t, _)| daemon.add(&t.path, None))
        .collect();
    let (a, b, c) = (&hashes[0], &hashes[1], &hashes[2]);

    daemon.wait_torrent(a, "the first one downloading", WAIT, |v| {
        v["state"] == "downloading" && v["downloaded"].as_u64() > Some(0)
    });
    for ih in [b, c] {
        daemon.wait_torrent(ih, "queued", WAIT, |v| v["state"] == "queued_download");
    }
    // The last one to the top: it goes before the second.
    let moved = daemon.ctl_json(&["queue", "top", c]);
    assert_eq!(moved["result"], "queue position 0", "{moved}");
    let show = daemon.show(b).unwrap();
    assert_eq!(show["queue_position"], 2, "{show}");
    assert!(
        seeded[1].0.announces().is_empty() && seeded[2].0.announces().is_empty(),
        "a queued torrent announced"
    );
    seeded[0].3.command("upload_limit 0");

    for ih in [c, b] {
        daemon.wait_torrent(ih, "downloaded in turn", WAIT, |v| v["state"] == "seeding");
    }
    for (_, payload, torrent, _) in &seeded {
        verify_download(torrent, payload, &dirs.downloads);
    }
    let seen = states(&events);
    // With its slot free, the first went straight to downloading, never through the queue.
    let first = seen.iter().find(|(ih, _)| ih == a).map(|(_, s)| s.as_str());
    assert_eq!(first, Some("downloading"), "{seen:?}");
    let mut downloading: Vec<&str> = Vec::new();
    let mut finished: Vec<&str> = Vec::new();
    for (ih, state) in &seen {
        downloading.retain(|d| d != ih);
        match state.as_str() {
            "downloading" => downloading.push(ih),
            "seeding" if !finished.contains(&ih.as_str()) => finished.push(ih),
            _ => {}
        }
        assert!(downloading.len() <= 1, "two downloading at once: {seen:?}");
    }
    assert_eq!(
        finished,
        [a.as_str(), c.as_str(), b.as_str()],
        "not in queue order: {seen:?}"
    );
    daemon.assert_alive("the queue");
}

#[test]
fn a_seed_pauses_at_its_ratio_limit_and_one_set_to_remove_is_removed() {
    let env = TestEnv::new("seed-limits");
    let dirs = DaemonConfig::fast("queueing").write(&env, free_tcp_port());
    let daemon = Daemon::start(&env, &dirs, "limits");
    let payload = Payload::single(&env.subdir("seed"), "ratio.bin", MIB, 7);
    let torrent = payload.make_torrent(&env.path().join("ratio.torrent"), 15, &[]);
    let ih = daemon.add(&torrent.path, Some(&payload.dir));
    daemon.wait_torrent(&ih, "seeding", WAIT, |v| v["state"] == "seeding");
    let limits = daemon.ctl_json(&["seed-limits", &ih, "--ratio", "0.25"]);
    assert_eq!(limits["ratio"], json!({"own": 0.25}), "{limits}");

    // Leechers slow enough to be still fetching when the limits are reached.
    let leech = |name: &str| {
        LibtorrentPeer::spawn(
            &env,
            &torrent.path,
            &env.subdir(name),
            LtOptions {
                connect: vec![daemon.addr()],
                no_announce: true,
                download_limit: Some(64 * KIB),
                name: Some(name.to_owned()),
                ..LtOptions::leech()
            },
        )
    };
    let mut leecher = leech("lt-leech-1");
    let paused = daemon.wait_torrent(&ih, "paused at its ratio limit", WAIT, |v| {
        v["state"] == "paused"
    });
    let uploaded = paused["uploaded"].as_u64().unwrap();
    assert!(uploaded >= MIB / 4, "paused before its limit: {paused}");
    let lt = leecher.status();
    assert!(lt.progress < 1.0, "the leecher was done first: {lt:?}");

    // The session's action becomes remove; a higher limit lets the torrent seed on until it.
    daemon
        .rpc(
            "session.set_queue",
            Some(json!({"seeding": {"action": "remove"}})),
        )
        .expect("session.set_queue");
    daemon.ctl_ok(&["seed-limits", &ih, "--ratio", "0.5"]);
    daemon.ctl_ok(&["resume", &ih]);
    daemon.wait_torrent(&ih, "seeding again", WAIT, |v| v["state"] == "seeding");
    // (libtorrent does not dial a peer again at once that just left it: a new leecher.)
    leecher.stop();
    let leecher = leech("lt-leech-2");
    wait_until(
        "removed at its ratio limit",
        WAIT,
        Duration::from_millis(200),
        || {
            let list = daemon.rpc("torrent.list", None).expect("torrent.list");
            !list
                .as_array()
                .unwrap()
                .iter()
                .any(|t: &Value| t["info_hash"] == ih.as_str())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log_tail()));
    let lt = leecher.status();
    assert!(lt.progress < 1.0, "the leecher was done first: {lt:?}");
    assert!(
        payload.root().exists(),
        "remove (not remove-with-data) deleted the data"
    );
    daemon.assert_alive("the seeding limits");
}

/// Checks take turns (`[queue] max_active_checks`, 1 by default, as transmission and
/// qBittorrent): three torrents told to verify at once hash one after another, the others
/// waiting in `checking_queued`, never two `checking` together, each ending as it was.
#[test]
fn checks_take_turns() {
    let env = TestEnv::new("queue-checks");
    let dirs = DaemonConfig::fast("queueing").write(&env, free_tcp_port());
    let daemon = Daemon::start(&env, &dirs, "checks");
    // The first is big enough that its check outlasts the two verify requests after it.
    let sizes = [48 * MIB, 256 * KIB, 256 * KIB];
    let mut hashes = Vec::new();
    for (i, len) in sizes.into_iter().enumerate() {
        let payload = Payload::single(
            &env.subdir(&format!("data{i}")),
            "c.bin",
            len,
            40 + i as u64,
        );
        let torrent = payload.make_torrent(&env.path().join(format!("c{i}.torrent")), 20, &[]);
        hashes.push(daemon.add(&torrent.path, Some(&payload.dir)));
    }
    for ih in &hashes {
        daemon.wait_torrent(ih, "seeding after the first check", WAIT, |v| {
            v["state"] == "seeding"
        });
    }
    let events = Events::subscribe(&dirs.socket);
    let mut args = vec!["verify"];
    args.extend(hashes.iter().map(String::as_str));
    daemon.ctl_ok(&args);
    for ih in &hashes {
        daemon.wait_torrent(ih, "seeding after verify", WAIT, |v| {
            v["state"] == "seeding" && v["have_bytes"] == v["total_bytes"]
        });
    }
    let seen = states(&events);
    let mut checking: Vec<&str> = Vec::new();
    for (ih, state) in &seen {
        checking.retain(|c| c != ih);
        if state == "checking" {
            checking.push(ih);
        }
        assert!(checking.len() <= 1, "two checking at once: {seen:?}");
    }
    let of = |ih: &str| -> Vec<&str> {
        seen.iter()
            .filter(|(h, _)| h == ih)
            .map(|(_, s)| s.as_str())
            .collect()
    };
    assert_eq!(of(&hashes[0]), ["checking", "seeding"], "{seen:?}");
    for ih in &hashes[1..] {
        assert_eq!(
            of(ih),
            ["checking_queued", "checking", "seeding"],
            "{seen:?}"
        );
    }
    daemon.assert_alive("the check queue");
}

/// `swarmctl queue-settings` changes the queue and the session's seeding limits at run time;
/// they survive a restart (kept beside the config, which they override), and an edit of the
/// config's `[queue]` that is reloaded replaces them.
#[test]
fn queue_settings_set_at_run_time_survive_a_restart() {
    let env = TestEnv::new("queue-settings");
    let dirs = DaemonConfig::fast("queueing").write(&env, free_tcp_port());
    let daemon = Daemon::start(&env, &dirs, "settings");
    let now = daemon.ctl_json(&["queue-settings"]);
    assert_eq!(now["queue"]["max_active_downloads"], 5, "{now}");
    let set = daemon.ctl_json(&[
        "queue-settings",
        "--downloads",
        "2",
        "--seeds",
        "0",
        "--ratio",
        "1.5",
        "--action",
        "remove",
    ]);
    let want = json!({
        "queue": {"max_active_downloads": 2, "max_active_seeds": null, "max_active_total": null,
                  "stalled_minutes": 30},
        "seeding": {"ratio_limit": 1.5, "seed_time_minutes": null, "idle_minutes": null,
                    "action": "remove"},
    });
    assert_eq!(set, want);
    daemon.ctl_exit(&["queue-settings", "--ratio", "lots"], 2);
    daemon.ctl_ok(&["shutdown", "--wait"]);
    drop(daemon);

    let daemon = Daemon::start(&env, &dirs, "settings-again");
    assert_eq!(
        daemon.ctl_json(&["queue-settings"]),
        want,
        "after a restart"
    );
    let out = daemon.ctl_ok(&["queue-settings"]);
    assert!(
        out.contains("downloads at once: 2") && out.contains("at a limit: remove"),
        "{out}"
    );

    // The config file's [queue] edited and reloaded: its values apply, the run-time ones go.
    let mut text = std::fs::read_to_string(&dirs.config).unwrap();
    text.push_str("\n[queue]\nmax_active_downloads = 3\n");
    std::fs::write(&dirs.config, text).unwrap();
    daemon.guard().signal(libc::SIGHUP);
    wait_until("the reload", WAIT, Duration::from_millis(100), || {
        daemon.ctl_json(&["queue-settings"])["queue"]["max_active_downloads"] == 3
    })
    .unwrap();
    let after = daemon.ctl_json(&["queue-settings"]);
    assert_eq!(after["seeding"]["ratio_limit"], Value::Null, "{after}");
}
