//! Every control method, called over the socket, with its result and its effect on the engine.

use serde_json::{json, Value};
use swarm_control::codes;
use swarm_control::methods::names;

use super::*;

fn base64(bytes: &[u8]) -> String {
    match swarm_control::TorrentSource::from_metainfo_bytes(bytes) {
        swarm_control::TorrentSource::Metainfo(text) => text,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn daemon_info_and_session_methods() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let info = c.ok(names::DAEMON_INFO, Value::Null).await;
    assert_eq!(info["pid"], json!(std::process::id()));
    assert_eq!(info["socket"], json!(s.path.display().to_string()));
    assert_eq!(info["version"], json!(env!("CARGO_PKG_VERSION")));

    let stats = c.ok(names::SESSION_STATS, json!({})).await;
    assert_eq!(stats["torrents"], 3);

    assert_eq!(
        c.ok(names::SESSION_GET_LIMITS, Value::Null).await,
        json!({"download": null, "upload": null})
    );
    let l = c
        .ok(names::SESSION_SET_LIMITS, json!({"download": 4194304}))
        .await;
    assert_eq!(l, json!({"download": 4194304, "upload": null}));
    // Omitted keeps, 0 clears.
    let l = c
        .ok(names::SESSION_SET_LIMITS, json!({"upload": 2048}))
        .await;
    assert_eq!(l, json!({"download": 4194304, "upload": 2048}));
    let l = c
        .ok(names::SESSION_SET_LIMITS, json!({"download": 0}))
        .await;
    assert_eq!(l, json!({"download": null, "upload": 2048}));
}

#[tokio::test]
async fn list_show_and_prefixes() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let list = c.ok(names::TORRENT_LIST, Value::Null).await;
    assert_eq!(list.as_array().unwrap().len(), 3);

    let shown = c.ok(names::TORRENT_SHOW, json!({"torrent": HASH_C})).await;
    assert_eq!(shown["name"], "gamma");
    assert_eq!(shown["pieces"], 13);
    // Unique prefix, either case.
    let shown = c
        .ok(names::TORRENT_SHOW, json!({"torrent": "CCCCCC"}))
        .await;
    assert_eq!(shown["info_hash"], HASH_C);
    let shown = c
        .ok(names::TORRENT_SHOW, json!({"torrent": &HASH_C[..39]}))
        .await;
    assert_eq!(shown["name"], "gamma");

    let v = c
        .call(names::TORRENT_SHOW, json!({"torrent": "aaaaaa"}))
        .await;
    assert_eq!(v["error"]["code"], codes::AMBIGUOUS_TORRENT);
    assert_eq!(v["error"]["data"]["matches"].as_array().unwrap().len(), 2);
    // The ambiguous prefix's message lists its matches, for people.
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("aaaaaa matches 2 torrents (aaaaaa000000 alpha, aaaaaa000000 beta)"),
        "{msg}"
    );
    let (code, msg) = c
        .err(names::TORRENT_SHOW, json!({"torrent": "dddddd"}))
        .await;
    assert_eq!(code, codes::TORRENT_NOT_FOUND);
    assert!(
        msg.starts_with("no torrent matches dddddd: give its info-hash"),
        "{msg}"
    );
    let (code, _) = c
        .err(names::TORRENT_SHOW, json!({"torrent": "d".repeat(40)}))
        .await;
    assert_eq!(code, codes::TORRENT_NOT_FOUND);
    // Too short for a prefix, or not hex: a name, which no torrent has.
    for name in ["aaa", "not-hex!"] {
        let (code, msg) = c.err(names::TORRENT_SHOW, json!({"torrent": name})).await;
        assert_eq!(code, codes::TORRENT_NOT_FOUND, "{name}");
        assert!(msg.contains("or its exact name"), "{msg}");
    }
    let (code, _) = c.err(names::TORRENT_SHOW, json!({"torrent": " "})).await;
    assert_eq!(code, codes::INVALID_PARAMS);
}

#[tokio::test]
async fn torrents_by_name() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let shown = c.ok(names::TORRENT_SHOW, json!({"torrent": "gamma"})).await;
    assert_eq!(shown["info_hash"], HASH_C);
    assert_eq!(
        c.ok(names::TORRENT_PAUSE, json!({"torrent": "gamma"}))
            .await,
        Value::Null
    );
    let calls = s.engine.state().calls.join("\n");
    assert!(calls.contains(&format!("pause {HASH_C}")), "{calls}");
    // Names are exact: another case or a part of the name is no match.
    for other in ["Gamma", "gam"] {
        let (code, _) = c.err(names::TORRENT_SHOW, json!({"torrent": other})).await;
        assert_eq!(code, codes::TORRENT_NOT_FOUND, "{other}");
    }
}

#[tokio::test]
async fn torrent_actions_reach_the_engine() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let t = json!({"torrent": "cccccc"});
    for method in [
        names::TORRENT_PAUSE,
        names::TORRENT_RESUME,
        names::TORRENT_VERIFY,
        names::TORRENT_REANNOUNCE,
    ] {
        assert_eq!(c.ok(method, t.clone()).await, Value::Null, "{method}");
    }
    assert_eq!(
        s.engine.state().torrents[&ih(HASH_C)].summary.state,
        swarm_control::TorrentState::Checking
    );
    let calls = s.engine.state().calls.join("\n");
    for expected in ["pause", "resume", "verify", "reannounce"] {
        assert!(calls.contains(&format!("{expected} {HASH_C}")), "{calls}");
    }

    let peers = c.ok(names::TORRENT_PEERS, t.clone()).await;
    assert_eq!(peers[0]["addr"], "192.0.2.7:51413");
    let trackers = c.ok(names::TORRENT_TRACKERS, t.clone()).await;
    assert_eq!(trackers[0]["status"], "ok");
    let files = c.ok(names::TORRENT_FILES, t.clone()).await;
    assert_eq!(files.as_array().unwrap().len(), 2);

    let files = c
        .ok(
            names::TORRENT_SET_FILE_PRIORITY,
            json!({"torrent": HASH_C, "priorities": [{"index": 1, "priority": "skip"}]}),
        )
        .await;
    assert_eq!(files[1]["priority"], "skip");
    let (code, msg) = c
        .err(
            names::TORRENT_SET_FILE_PRIORITY,
            json!({"torrent": HASH_C, "priorities": [{"index": 9, "priority": "high"}]}),
        )
        .await;
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("out of range"), "{msg}");

    assert_eq!(
        c.ok(
            names::TORRENT_REMOVE,
            json!({"torrent": HASH_C, "delete_data": true})
        )
        .await,
        Value::Null
    );
    assert!(s
        .engine
        .state()
        .calls
        .iter()
        .any(|c| c == &format!("remove {HASH_C} delete_data=true")));
    let (code, _) = c
        .err(names::TORRENT_PAUSE, json!({"torrent": HASH_C}))
        .await;
    assert_eq!(code, codes::TORRENT_NOT_FOUND);
}

#[tokio::test]
async fn add_by_metainfo_path_and_magnet() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let bytes = torrent_bytes("file.iso", 40000);
    let hash = info_hash_of(&bytes);
    let b64 = base64(&bytes);
    let added = c
        .ok(
            names::TORRENT_ADD,
            json!({"metainfo": b64, "save_dir": "/data", "paused": true}),
        )
        .await;
    assert_eq!(added, json!({"info_hash": hash, "name": "file.iso"}));
    {
        let st = s.engine.state();
        let t = &st.torrents[&ih(&hash)];
        assert!(t.paused_at_add);
        assert_eq!(t.save_dir.as_deref(), Some(std::path::Path::new("/data")));
    }
    // The same torrent again, now by path.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.torrent");
    std::fs::write(&file, &bytes).unwrap();
    let v = c.call(names::TORRENT_ADD, json!({"path": file})).await;
    assert_eq!(v["error"]["code"], codes::TORRENT_EXISTS);
    assert_eq!(v["error"]["data"]["info_hash"], json!(hash));

    let other = torrent_bytes("other.iso", 10);
    std::fs::write(&file, &other).unwrap();
    let added = c.ok(names::TORRENT_ADD, json!({"path": file})).await;
    assert_eq!(added["name"], "other.iso");

    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=From%20Magnet";
    let added = c.ok(names::TORRENT_ADD, json!({"magnet": magnet})).await;
    assert_eq!(
        added,
        json!({"info_hash": "0123456789abcdef0123456789abcdef01234567", "name": "From Magnet"})
    );
    assert_eq!(s.engine.state().torrents.len(), 6);
}

#[tokio::test]
async fn add_rejects_bad_input_with_reasons() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let (code, msg) = c.err(names::TORRENT_ADD, json!({"metainfo": "%%%"})).await;
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("base64"), "{msg}");
    let junk = base64(b"not bencode at all");
    let (code, msg) = c.err(names::TORRENT_ADD, json!({"metainfo": junk})).await;
    assert_eq!(code, codes::INVALID_TORRENT);
    assert!(msg.starts_with("invalid torrent: "), "{msg}");
    let (code, msg) = c
        .err(names::TORRENT_ADD, json!({"magnet": "magnet:?dn=nohash"}))
        .await;
    assert_eq!(code, codes::INVALID_TORRENT);
    assert!(msg.contains("magnet"), "{msg}");
    let (code, msg) = c
        .err(names::TORRENT_ADD, json!({"path": "relative.torrent"}))
        .await;
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("absolute"), "{msg}");
    let (code, msg) = c
        .err(
            names::TORRENT_ADD,
            json!({"path": "/nonexistent/x.torrent"}),
        )
        .await;
    assert_eq!(code, codes::INVALID_PARAMS);
    assert!(msg.contains("/nonexistent/x.torrent"), "{msg}");
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    let (code, _) = c
        .err(
            names::TORRENT_ADD,
            json!({"magnet": magnet, "save_dir": "rel"}),
        )
        .await;
    assert_eq!(code, codes::INVALID_PARAMS);
    let (code, _) = c.err(names::TORRENT_ADD, json!({"save_dir": "/x"})).await;
    assert_eq!(code, codes::INVALID_PARAMS);

    s.engine.state().fail_add = Some(crate::EngineError::ShuttingDown);
    let (code, _) = c.err(names::TORRENT_ADD, json!({"magnet": magnet})).await;
    assert_eq!(code, codes::SHUTTING_DOWN);
    s.engine.state().fail_add = Some(crate::EngineError::Internal("disk on fire".into()));
    let (code, msg) = c.err(names::TORRENT_ADD, json!({"magnet": magnet})).await;
    assert_eq!(
        (code, msg.as_str()),
        (codes::INTERNAL_ERROR, "internal error: disk on fire")
    );
}

#[tokio::test]
async fn shutdown_answers_then_stops() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    assert!(!s.stop.is_requested());
    assert_eq!(c.ok(names::DAEMON_SHUTDOWN, Value::Null).await, Value::Null);
    tokio::time::timeout(std::time::Duration::from_secs(5), s.stop.requested())
        .await
        .unwrap();
}

#[tokio::test]
async fn blocking_client_against_the_server() {
    let s = TestServer::default().await;
    let path = s.path.clone();
    let engine = s.engine.clone();
    let got = tokio::task::spawn_blocking(move || {
        let mut c = swarm_control::Client::connect(&path).unwrap();
        let list = c.list().unwrap();
        let detail = c.show("cccccc").unwrap();
        let err = c.show("dddddd").unwrap_err();
        let limits = c
            .set_limits(swarm_control::SetLimitsParams {
                download: Some(5000),
                upload: None,
            })
            .unwrap();
        let mut events = c.subscribe().unwrap();
        engine.emit(swarm_control::Event::Removed {
            info_hash: ih(HASH_A),
        });
        let first = events.next().unwrap().unwrap();
        (
            list.len(),
            detail.summary.name,
            err.rpc_code(),
            limits.download,
            first,
        )
    })
    .await
    .unwrap();
    assert_eq!(got.0, 3);
    assert_eq!(got.1, "gamma");
    assert_eq!(got.2, Some(codes::TORRENT_NOT_FOUND));
    assert_eq!(got.3, Some(5000));
    assert_eq!(
        got.4,
        swarm_control::StreamItem::Event(swarm_control::Event::Removed {
            info_hash: ih(HASH_A)
        })
    );
}

#[tokio::test]
async fn shutdown_with_wait_answers_once_the_daemon_has_stopped() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    c.send(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.shutdown\",\"params\":{\"wait\":true}}\n")
        .await;
    tokio::time::timeout(std::time::Duration::from_secs(5), s.stop.requested())
        .await
        .unwrap();
    // The server is stopped (as the daemon does) and the connection still waits for its answer.
    s.cancel.cancel();
    s.task.await.unwrap().unwrap();
    let early = tokio::time::timeout(std::time::Duration::from_millis(200), c.recv()).await;
    assert!(early.is_err(), "answered before the stop: {early:?}");
    s.stop.answer_waiting().await;
    let v = c.recv().await;
    assert_eq!(
        (v["id"].clone(), v["result"].clone()),
        (json!(1), Value::Null)
    );
}
