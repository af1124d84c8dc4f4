//! The session's `list` and `stats`, which read what each torrent published: every change of
//! state shows at once, without waiting for a tick.

use std::time::{Duration, Instant};

use swarm_model::TorrentState;
use swarm_wire::create::{create_metainfo, CreateOptions};

use super::*;

fn config(dir: &std::path::Path) -> EngineConfig {
    EngineConfig {
        listen: ([127, 0, 0, 1], 0).into(),
        download_dir: dir.join("data"),
        state_dir: Some(dir.join("state")),
        torrent_threads: 2,
        ..EngineConfig::default()
    }
}

/// A 3-piece single-file torrent (no trackers) whose data is in `dir/data`.
fn seedable(dir: &std::path::Path) -> Metainfo {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("three.bin");
    let bytes: Vec<u8> = (0..3 * 16 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, bytes).unwrap();
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        threads: 1,
        ..CreateOptions::default()
    };
    create_metainfo(&file, &opts).unwrap()
}

async fn state_of(s: &Session) -> Vec<TorrentState> {
    s.list().await.unwrap().iter().map(|t| t.state).collect()
}

#[actix_rt::test]
async fn list_shows_every_change_of_state_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let meta = seedable(dir.path());
    let s = Session::start(config(dir.path())).unwrap();
    let ih = s.add(meta, AddOptions::default()).await.unwrap();
    // Listed from the moment it is added, then seeding once its data is checked (bounded).
    assert_eq!(s.list().await.unwrap().len(), 1);
    let end = Instant::now() + Duration::from_secs(10);
    while state_of(&s).await != [TorrentState::Seeding] {
        assert!(Instant::now() < end, "never seeding: {:?}", s.list().await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = &s.list().await.unwrap()[0];
    assert_eq!(
        (t.have_bytes, t.total_bytes),
        (3 * 16 * 1024, 3 * 16 * 1024)
    );
    assert_eq!(t.info_hash, ih);

    // No waiting from here on: each answer already shows the change.
    s.pause(ih).await.unwrap();
    assert_eq!(state_of(&s).await, [TorrentState::Paused]);
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.torrents, stats.seeding), (1, 0));
    s.resume(ih).await.unwrap();
    assert_eq!(state_of(&s).await, [TorrentState::Seeding]);
    assert_eq!(s.stats().await.unwrap().seeding, 1);
    // The published summary is the one the torrent itself gives, and `list_json` is the list.
    assert_eq!(s.list().await.unwrap()[0], s.summary(ih).await.unwrap());
    let joined: Vec<TorrentSummary> = serde_json::from_str(&s.list_json().await.unwrap()).unwrap();
    assert_eq!(joined, s.list().await.unwrap());
    s.remove(ih, false).await.unwrap();
    assert!(s.list().await.unwrap().is_empty());
    assert_eq!(s.list_json().await.unwrap(), "[]");
    s.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn list_is_sorted_by_name_and_includes_magnets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = Session::start(config(dir.path())).unwrap();
    for name in ["b.bin", "c.bin", "a.bin"] {
        let file = data.join(name);
        std::fs::write(&file, name.repeat(5000)).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16 * 1024),
            threads: 1,
            ..CreateOptions::default()
        };
        let meta = create_metainfo(&file, &opts).unwrap();
        s.add(meta, AddOptions::default()).await.unwrap();
    }
    let magnet =
        swarm_wire::Magnet::parse(&format!("magnet:?xt=urn:btih:{}&dn=bb", "ab".repeat(20)))
            .unwrap();
    s.add_magnet(magnet, AddOptions::default()).await.unwrap();
    let names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["a.bin", "b.bin", "bb", "c.bin"]);
    let joined: Vec<TorrentSummary> = serde_json::from_str(&s.list_json().await.unwrap()).unwrap();
    assert_eq!(joined, s.list().await.unwrap());
    assert_eq!(joined[2].state, TorrentState::FetchingMetadata);
    // The names prefix resolution reads are the listed ones, magnets included.
    let mut names = s.names().await.unwrap();
    names.sort();
    let mut listed: Vec<_> = joined
        .iter()
        .map(|t| (t.info_hash, t.name.clone()))
        .collect();
    listed.sort();
    assert_eq!(names, listed);
    s.shutdown(Duration::from_secs(1)).await;
}
