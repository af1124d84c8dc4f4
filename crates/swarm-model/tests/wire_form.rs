//! Serde round trips of the model's types, and their wire form where clients depend on it.

use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use swarm_model::*;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    v: &T,
) -> serde_json::Value {
    let value = serde_json::to_value(v).unwrap();
    let back: T = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(&back, v);
    value
}

fn summary() -> TorrentSummary {
    TorrentSummary {
        info_hash: InfoHash::from_hex(&"ab".repeat(20)).unwrap(),
        name: "debian.iso".into(),
        state: TorrentState::Downloading,
        progress: 0.5,
        total_bytes: 100,
        have_bytes: 50,
        wanted_bytes: 100,
        left_bytes: 50,
        download_rate: 10,
        upload_rate: 1,
        downloaded: 50,
        uploaded: 3,
        peers: 4,
        save_dir: "/d".into(),
        error: None,
        queue_position: 0,
        forced: false,
        labels: vec!["tv".into()],
        moving: None,
    }
}

#[test]
fn summary_and_detail() {
    let v = round_trip(&summary());
    assert_eq!(v["state"], "downloading");
    let detail = TorrentDetail {
        summary: summary(),
        piece_length: 262144,
        pieces: 4,
        pieces_have: 2,
        private: false,
        comment: Some("c".into()),
        added_at: 1,
        completed_at: None,
        peer_restarts: 0,
        hash_failures: 1,
        eta_secs: Some(5),
        super_seed: false,
        seed_limits: Default::default(),
        seeding_secs: 0,
        limits: TorrentLimits {
            upload: Some(1 << 20),
            max_peers: Some(20),
            ..TorrentLimits::default()
        },
    };
    let v = round_trip(&detail);
    assert_eq!(v["labels"], json!(["tv"]));
    assert_eq!(
        v["limits"],
        json!({"download": null, "upload": 1048576, "max_peers": 20, "upload_slots": null, "priority": "normal"})
    );
    // Flattened: the summary's fields sit at the top level.
    assert_eq!(v["name"], "debian.iso");
    assert_eq!(v["pieces"], 4);
}

#[test]
fn files_peers_trackers() {
    let f = FileInfo {
        index: 0,
        path: "a/b".into(),
        length: 5,
        have_bytes: 0,
        priority: FilePriority::Skip,
    };
    assert_eq!(round_trip(&f)["priority"], "skip");
    round_trip(&PeerInfo {
        addr: "1.2.3.4:5".into(),
        client: "qB".into(),
        direction: "outgoing".into(),
        source: "tracker".into(),
        transport: "tcp".into(),
        progress: 1.0,
        download_rate: 1,
        upload_rate: 2,
        downloaded: 3,
        uploaded: 4,
        am_choking: true,
        am_interested: false,
        peer_choking: true,
        peer_interested: false,
        requests_in_flight: 0,
        encrypted: false,
    });
    round_trip(&TrackerInfo {
        url: "http://t/announce".into(),
        tier: 0,
        status: "ok".into(),
        message: None,
        seeders: Some(1),
        leechers: None,
        peers_received: 3,
        next_announce_secs: Some(1800),
    });
}

#[test]
fn stats_and_limits() {
    let v = round_trip(&Limits {
        download: Some(1024),
        upload: None,
    });
    assert_eq!(v, json!({"download": 1024, "upload": null}));
    let l: Limits = serde_json::from_value(json!({})).unwrap();
    assert_eq!(l, Limits::default());
    round_trip(&SessionStats {
        torrents: 2,
        dht_nodes: Some(100),
        ..Default::default()
    });
}

#[test]
fn events_are_tagged() {
    let e = Event::Progress {
        info_hash: InfoHash([0xaa; 20]),
        progress: 0.25,
        download_rate: 5,
        upload_rate: 0,
        state: TorrentState::Checking,
    };
    let v = round_trip(&e);
    assert_eq!(v["event"], "progress");
    assert_eq!(v["state"], "checking");
    for e in [
        Event::Added {
            info_hash: InfoHash([0x0a; 20]),
            name: "n".into(),
        },
        Event::Completed {
            info_hash: InfoHash([0x0a; 20]),
            name: "n".into(),
        },
        Event::Error {
            info_hash: InfoHash([0x0a; 20]),
            message: "disk full".into(),
        },
        Event::Removed {
            info_hash: InfoHash([0x0a; 20]),
        },
    ] {
        round_trip(&e);
    }
    // The info-hash is 40 lowercase hex digits on the wire.
    let removed = Event::Removed {
        info_hash: InfoHash([0x0a; 20]),
    };
    assert_eq!(
        serde_json::to_string(&removed).unwrap(),
        format!(r#"{{"event":"removed","info_hash":"{}"}}"#, "0a".repeat(20))
    );
    // Read once, at the edge: a bad one is refused, and the error shows it.
    let err = serde_json::from_str::<Event>(r#"{"event":"removed","info_hash":"zz"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#""zz" is not an info-hash"#), "{err}");
}

/// Every state has one spelling: the one on the wire is the one people see.
#[test]
fn states_are_spelled_as_on_the_wire() {
    for state in [
        TorrentState::FetchingMetadata,
        TorrentState::CheckingQueued,
        TorrentState::Checking,
        TorrentState::Downloading,
        TorrentState::Seeding,
        TorrentState::QueuedDownload,
        TorrentState::QueuedSeed,
        TorrentState::Paused,
        TorrentState::Error,
    ] {
        assert_eq!(round_trip(&state), json!(state.as_str()));
        assert_eq!(state.to_string(), state.as_str());
    }
}

/// An event kind this client does not know (from a newer daemon) reads as `Unknown`, so that a
/// subscriber skips it instead of failing; a state change reads with its state.
#[test]
fn unknown_event_kinds_are_skippable() {
    let e: Event =
        serde_json::from_str(r#"{"event":"webseed_banned","info_hash":"ab","url":"x"}"#).unwrap();
    assert_eq!(e, Event::Unknown);
    let line = format!(
        r#"{{"event":"state","info_hash":"{}","name":"n","state":"paused"}}"#,
        "ab".repeat(20)
    );
    let e: Event = serde_json::from_str(&line).unwrap();
    assert_eq!(
        e,
        Event::State {
            info_hash: InfoHash([0xab; 20]),
            name: "n".into(),
            state: TorrentState::Paused
        }
    );
}
