//! The JSON-RPC form's translation (pure) and its calls against the fake engine.

use super::*;
use swarm_model::InfoHash;

#[test]
fn snake_case_spellings() {
    for (legacy, snake_case) in [
        ("hashString", "hash_string"),
        ("peer-limit", "peer_limit"),
        ("isUTP", "is_utp"),
        ("rpc-version-semver", "rpc_version_semver"),
        ("seedRatioLimited", "seed_ratio_limited"),
        ("cache-size-mb", "cache_size_mib"),
        ("torrent-added", "torrent_added"),
        ("primary-mime-type", "primary_mime_type"),
        ("total_size", "total_size"),
    ] {
        assert_eq!(snake(legacy), snake_case, "{legacy}");
    }
}

#[test]
fn params_get_their_legacy_names() {
    let p = legacy_params(
        "torrent-get",
        json!({"fields": ["hash_string", "download_dir", "file_count", "frobnicate"],
                   "ids": "recently_active", "download_dir": "/d", "delete_local_data": true,
                   "speed_limit_down_enabled": true, "encryption": "allowed"})
        .as_object()
        .unwrap()
        .clone(),
    );
    assert_eq!(
        Value::Object(p),
        json!({"fields": ["hashString", "downloadDir", "file-count", "frobnicate"],
                   "ids": "recently-active", "download-dir": "/d", "delete-local-data": true,
                   "speed-limit-down-enabled": true, "encryption": "tolerated"})
    );
}

#[test]
fn answers_get_4_1_names_and_values() {
    let mut r = snake_keys(json!({"torrents": [
            {"hashString": "ab", "wanted": [1, 0], "fileStats": [{"bytesCompleted": 3}]}]}));
    fix_values("torrent-get", &mut r);
    assert_eq!(
        r,
        json!({"torrents": [{"hash_string": "ab", "wanted": [true, false],
                                 "file_stats": [{"bytes_completed": 3}]}]})
    );
    let mut t = snake_keys(json!({"torrents": [["id", "wanted"], [1, [0, 1]]]}));
    fix_values("torrent-get", &mut t);
    assert_eq!(
        t,
        json!({"torrents": [["id", "wanted"], [1, [false, true]]]})
    );
    let mut s = snake_keys(json!({"encryption": "tolerated", "rpc-version": 17,
                                       "cache-size-mb": 4}));
    fix_values("session-get", &mut s);
    assert_eq!(
        s,
        json!({"encryption": "allowed", "rpc_version": 18, "cache_size_mib": 4})
    );
}

mod calls {
    use super::*;
    use crate::fake_engine::FakeEngine;

    pub(super) const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

    pub(super) fn rpc() -> Rpc<FakeEngine> {
        let engine = FakeEngine::new();
        engine.insert(HASH, "ubuntu");
        let info = crate::http_rpc::SessionInfo {
            download_dir: "/downloads".into(),
            incomplete_dir: None,
            config_dir: "/etc/swarmd".into(),
            peer_limit: 50,
            peer_limit_global: 200,
            dht_enabled: false,
            tcp_enabled: true,
            utp_enabled: true,
            settings: None,
        };
        Rpc::new(
            engine,
            info,
            "SID".into(),
            crate::control::StopRequest::new(),
        )
    }

    #[tokio::test]
    async fn a_call_a_batch_and_notifications() {
        let rpc = rpc();
        let r = answer(
            &rpc,
            json!({"jsonrpc": "2.0", "method": "torrent_get", "id": "a",
                   "params": {"fields": ["id", "hash_string", "pieces", "wanted"]}}),
        )
        .await
        .unwrap();
        assert_eq!(
            r,
            json!({"jsonrpc": "2.0", "id": "a", "result": {"torrents": [
                {"id": 1, "hash_string": HASH, "pieces": "4AA=", "wanted": [true, true]}]}})
        );
        let r = answer(
            &rpc,
            json!([
                {"jsonrpc": "2.0", "method": "session_get", "id": 1,
                 "params": {"fields": ["rpc_version", "rpc_version_semver", "download_dir"]}},
                {"jsonrpc": "2.0", "method": "torrent_stop", "params": {"ids": [HASH]}},
                {"jsonrpc": "2.0", "method": "torrent_frobnicate", "id": 2},
                {"jsonrpc": "2.0", "method": "torrent_set", "id": 3,
                 "params": {"group": "fast"}},
                {"jsonrpc": "1.0", "method": "session_get", "id": 4},
                {"jsonrpc": "2.0", "method": "session_get", "id": 5, "params": [1]},
            ]),
        )
        .await
        .unwrap();
        let answers = r.as_array().unwrap();
        assert_eq!(answers.len(), 5, "the notification gets no answer: {r}");
        assert_eq!(
            answers[0]["result"],
            json!({"rpc_version": 18, "rpc_version_semver": "6.0.0", "download_dir": "/downloads"})
        );
        assert_eq!(answers[1]["error"]["code"], -32601);
        assert_eq!(answers[1]["id"], 2);
        assert_eq!(answers[2]["error"]["code"], -32000);
        let why = answers[2]["error"]["data"]["error_string"]
            .as_str()
            .unwrap();
        assert!(why.contains("bandwidth groups"), "{why}");
        assert_eq!(answers[3]["error"]["code"], -32600);
        assert_eq!(answers[3]["id"], Value::Null);
        assert_eq!(answers[4]["error"]["code"], -32602);
        assert_eq!(
            rpc.engine.state().torrents[&InfoHash::from_hex(HASH).unwrap()]
                .summary
                .state,
            swarm_control::TorrentState::Paused,
            "the notification ran"
        );
        // Only notifications: nothing to answer; a read-only one is not even run.
        let before = rpc.engine.state().calls.len();
        let none = answer(&rpc, json!({"jsonrpc": "2.0", "method": "session_stats"})).await;
        assert_eq!(none, None);
        assert_eq!(rpc.engine.state().calls.len(), before);
        let empty = answer(&rpc, json!([])).await.unwrap();
        assert_eq!(empty["error"]["code"], -32600);
    }
}

/// A torrent's labels and own limits, set and read back through the 4.1 form (snake_case
/// keys, the engine's view in between).
#[tokio::test]
async fn labels_and_limits_set_and_read_back() {
    let rpc = calls::rpc();
    let set = answer(
        &rpc,
        json!({"jsonrpc": "2.0", "method": "torrent_set", "id": 1, "params": {
            "labels": ["tv", "hd"], "upload_limit": 500, "upload_limited": true,
            "peer_limit": 30}}),
    )
    .await
    .unwrap();
    assert_eq!(set["result"], json!({}), "{set}");
    let got = answer(
        &rpc,
        json!({"jsonrpc": "2.0", "method": "torrent_get", "id": 2, "params": {"fields": [
            "labels", "upload_limit", "upload_limited", "download_limited", "peer_limit"]}}),
    )
    .await
    .unwrap();
    assert_eq!(
        got["result"]["torrents"][0],
        json!({"labels": ["tv", "hd"], "upload_limit": 500, "upload_limited": true,
               "download_limited": false, "peer_limit": 30}),
        "{got}"
    );
}

/// A session key `session-get` reports but the list does not know would not be found by
/// `session_set` under its snake_case name.
#[tokio::test]
async fn every_session_key_has_its_snake_case_name() {
    let rpc = calls::rpc();
    let all = rpc.call("session-get", &Map::new()).await.unwrap();
    for key in all.keys() {
        assert!(
            ARGUMENT_KEYS.contains(&key.as_str()),
            "{key} is missing from ARGUMENT_KEYS"
        );
    }
}

/// `torrent-set-location` moves with `move: true` and only re-points without it, as
/// transmission does; `torrent-set`'s `location` re-points; a relative or missing location is
/// refused before the engine hears of it.
#[tokio::test]
async fn set_location_moves_or_repoints() {
    let rpc = calls::rpc();
    let ids = json!([calls::HASH]);
    let args = |v: Value| v.as_object().unwrap().clone();
    let call = |method: &'static str, a: Value| {
        let rpc = &rpc;
        async move { rpc.call(method, &args(a)).await }
    };
    call(
        "torrent-set-location",
        json!({"ids": ids, "location": "/srv/a", "move": true}),
    )
    .await
    .unwrap();
    call(
        "torrent-set-location",
        json!({"ids": ids, "location": "/srv/b"}),
    )
    .await
    .unwrap();
    call("torrent-set", json!({"ids": ids, "location": "/srv/c"}))
        .await
        .unwrap();
    let calls = rpc.engine.state().calls.clone();
    let moves: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("move_storage"))
        .collect();
    assert_eq!(
        moves,
        [
            &format!("move_storage {} /srv/a true", calls::HASH),
            &format!("move_storage {} /srv/b false", calls::HASH),
            &format!("move_storage {} /srv/c false", calls::HASH),
        ]
    );
    let err = call(
        "torrent-set-location",
        json!({"ids": ids, "location": "srv"}),
    )
    .await
    .unwrap_err();
    assert!(
        err.message.contains("location srv is not an absolute path"),
        "{}",
        err.message
    );
    let err = call("torrent-set-location", json!({"ids": ids}))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("location is missing"),
        "{}",
        err.message
    );
}
