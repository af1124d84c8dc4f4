//! Malformed input, limits and permissions: every failure is a proper JSON-RPC error and the
//! connection stays usable.

use std::time::Duration;

use serde_json::{json, Value};
use swarm_control::codes;
use swarm_control::methods::names;

use super::*;
use crate::control::dispatch::{Caller, Dispatcher};

async fn still_works(c: &mut Conn) {
    let list = c.ok(names::TORRENT_LIST, Value::Null).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn garbage_gives_parse_errors() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    for garbage in [
        &b"{not json\n"[..],
        b"\xff\xfe\x00binary\n",
        b"{\"jsonrpc\":\"2.0\",\n",
        b"}\n",
    ] {
        c.send(garbage).await;
        let v = c.recv().await;
        assert_eq!(v["error"]["code"], codes::PARSE_ERROR, "{v}");
        assert_eq!(v["id"], Value::Null);
    }
    // Blank lines are ignored, not answered.
    c.send(b"\n  \r\n").await;
    still_works(&mut c).await;
}

#[tokio::test]
async fn invalid_requests() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    let cases: [(&[u8], i64, Value); 6] = [
        (
            b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"torrent.list\"}]\n",
            codes::INVALID_REQUEST,
            Value::Null,
        ),
        (b"42\n", codes::INVALID_REQUEST, Value::Null),
        (
            b"{\"id\":7,\"method\":\"torrent.list\"}\n",
            codes::INVALID_REQUEST,
            json!(7),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":\"x\"}\n",
            codes::INVALID_REQUEST,
            json!("x"),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"torrent.list\",\"params\":[]}\n",
            codes::INVALID_PARAMS,
            json!(8),
        ),
        (
            b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"no.such\"}\n",
            codes::METHOD_NOT_FOUND,
            json!(9),
        ),
    ];
    for (line, code, id) in cases {
        c.send(line).await;
        let v = c.recv().await;
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["id"], id, "{v}");
        assert_eq!(v["jsonrpc"], "2.0");
    }
    still_works(&mut c).await;
}

#[tokio::test]
async fn wrong_params() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    for (method, params) in [
        (names::TORRENT_SHOW, json!({})),
        (names::TORRENT_SHOW, json!({"torrent": 5})),
        (
            names::TORRENT_SHOW,
            json!({"torrent": HASH_A, "extra": true}),
        ),
        (names::TORRENT_LIST, json!({"unexpected": 1})),
        (names::SESSION_SET_LIMITS, json!({"download": "fast"})),
        (
            names::TORRENT_REMOVE,
            json!({"torrent": HASH_A, "delete_data": "yes"}),
        ),
        (
            names::TORRENT_SET_FILE_PRIORITY,
            json!({"torrent": HASH_A, "priorities": [{"index": 0, "priority": "max"}]}),
        ),
    ] {
        let (code, msg) = c.err(method, params.clone()).await;
        assert_eq!(code, codes::INVALID_PARAMS, "{method} {params}: {msg}");
        assert!(msg.contains(method), "{msg}");
    }
    still_works(&mut c).await;
}

#[tokio::test]
async fn notifications_get_no_answer_but_run() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    c.send(
        b"{\"jsonrpc\":\"2.0\",\"method\":\"torrent.pause\",\"params\":{\"torrent\":\"cccccc\"}}\n",
    )
    .await;
    c.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"}\n")
        .await;
    // The next line read must be the answer to this call, not to the notifications.
    let v = c
        .call(names::TORRENT_SHOW, json!({"torrent": HASH_C}))
        .await;
    assert_eq!(v["result"]["state"], "paused");
}

#[tokio::test]
async fn oversized_line_is_refused_and_skipped() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    // 10 MiB of a syntactically plausible request, then a normal one on the same connection.
    let mut big =
        br#"{"jsonrpc":"2.0","id":1,"method":"torrent.add","params":{"metainfo":""#.to_vec();
    big.resize(10 << 20, b'A');
    big.extend_from_slice(b"\"}}\n");
    // The server answers as soon as the line passes the limit and discards the rest while we are
    // still writing; its one-line answer waits in our receive buffer.
    c.send(&big).await;
    let v = c.recv().await;
    assert_eq!(v["error"]["code"], codes::REQUEST_TOO_LARGE, "{v}");
    assert_eq!(v["id"], Value::Null);
    still_works(&mut c).await;
}

#[tokio::test]
async fn too_many_clients_are_turned_away() {
    let mut opts = options();
    opts.max_clients = 2;
    let engine = crate::fake_engine::FakeEngine::new();
    let s = TestServer::start(engine, opts).await;
    let mut a = s.conn().await;
    let mut b = s.conn().await;
    a.ok(names::TORRENT_LIST, Value::Null).await;
    b.ok(names::TORRENT_LIST, Value::Null).await;
    // This test runs as the daemon's owner, who also gets the reserve.
    let mut reserve = Vec::new();
    for _ in 0..crate::control::OWNER_RESERVE {
        let mut c = s.conn().await;
        c.ok(names::TORRENT_LIST, Value::Null).await;
        reserve.push(c);
    }
    let mut third = s.conn().await;
    let v = third.recv().await;
    assert_eq!(v["error"]["code"], codes::BUSY);
    assert!(third.closed().await);
    drop(a);
    // The slot frees once the server notices the hang-up.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut d = s.conn().await;
        let line = d.call(names::TORRENT_LIST, Value::Null).await;
        if line.get("result").is_some() {
            ok = true;
            break;
        }
    }
    assert!(ok);
    b.ok(names::TORRENT_LIST, Value::Null).await;
}

#[tokio::test]
async fn read_only_callers_cannot_change_state() {
    let engine = crate::fake_engine::FakeEngine::new();
    engine.insert(HASH_A, "alpha");
    let state = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher {
        engine: engine.clone(),
        info: static_info(std::path::Path::new("/s.sock")),
        access: crate::control::AccessPolicy {
            owner_uid: 1000,
            extra_uids: vec![1001],
        },
        settings: super::settings_in(state.path()),
    };
    let call = |uid: Option<u32>, method: &str, params: Value| {
        let line =
            serde_json::to_vec(&json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
                .unwrap();
        let d = &dispatcher;
        async move {
            let answer = d.handle_line(Caller { uid }, &line).await.response.unwrap();
            serde_json::from_slice::<Value>(&answer.encode()).unwrap()
        }
    };
    let t = json!({"torrent": HASH_A});
    for uid in [Some(4321), None] {
        for method in [
            names::TORRENT_PAUSE,
            names::TORRENT_REMOVE,
            names::DAEMON_SHUTDOWN,
            names::SESSION_SET_LIMITS,
        ] {
            let v = call(uid, method, t.clone()).await;
            assert_eq!(
                v["error"]["code"],
                codes::PERMISSION_DENIED,
                "{method}: {v}"
            );
        }
        let v = call(uid, names::TORRENT_SHOW, t.clone()).await;
        assert_eq!(v["result"]["name"], "alpha");
        let v = call(uid, names::EVENTS_SUBSCRIBE, Value::Null).await;
        assert_eq!(v["result"]["subscribed"], true);
    }
    let v = call(Some(4321), names::TORRENT_PAUSE, t.clone()).await;
    assert!(
        v["error"]["message"].as_str().unwrap().contains("uid 4321"),
        "{v}"
    );
    for uid in [0, 1000, 1001] {
        let v = call(Some(uid), names::TORRENT_PAUSE, t.clone()).await;
        assert_eq!(v["result"], Value::Null, "uid {uid}: {v}");
    }
    assert!(!engine.state().calls.iter().any(|c| c.starts_with("remove")));
}

#[tokio::test]
async fn many_clients_at_once() {
    let s = TestServer::default().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let path = s.path.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(&path).await;
            for _ in 0..25 {
                let hash = [HASH_A, HASH_B, HASH_C][i % 3];
                let v = c.ok(names::TORRENT_SHOW, json!({"torrent": hash})).await;
                assert_eq!(v["info_hash"], hash);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn cancel_closes_connections_and_removes_the_socket() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    still_works(&mut c).await;
    s.cancel.cancel();
    assert!(c.closed().await);
    tokio::time::timeout(Duration::from_secs(5), s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!s.path.exists());
}

/// Messages for people, not serde's: no "untagged enum", no "flattened data", no Rust types.
#[tokio::test]
async fn errors_speak_the_protocols_words() {
    let s = TestServer::default().await;
    let mut c = s.conn().await;
    c.send(b"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"torrent.list\"}\n")
        .await;
    let v = c.recv().await;
    assert_eq!(v["error"]["code"], codes::INVALID_REQUEST);
    assert_eq!(
        v["error"]["message"],
        "invalid request: \"id\" must be a whole number or a string, not {}"
    );
    c.send(b"{\"jsonrpc\":\"2.0\",\"id\":3}\n").await;
    let v = c.recv().await;
    assert_eq!(
        v["error"]["message"],
        "invalid request: \"method\" is missing"
    );
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567";
    for (method, params, expected) in [
        (
            names::TORRENT_ADD,
            json!({"paused": true}),
            "give the torrent as one of \"metainfo\" (base64), \"path\" or \"magnet\"",
        ),
        (
            names::TORRENT_ADD,
            json!({"magnet": magnet, "path": "/x.torrent"}),
            "give only one of \"metainfo\", \"path\", \"magnet\" (got path, magnet)",
        ),
        (
            names::TORRENT_ADD,
            json!({"magnet": magnet, "savedir": "/x"}),
            "unknown param \"savedir\"",
        ),
        (
            names::SESSION_SET_LIMITS,
            json!({"download": -1}),
            "expected a whole number, 0 or more",
        ),
        (
            names::SESSION_SET_LIMITS,
            json!({"download": 1}),
            "download limit 1 B/s is below the smallest limit",
        ),
        (
            names::SESSION_SET_LIMITS,
            json!({"upload": u64::MAX}),
            "is above the largest limit",
        ),
        (
            names::TORRENT_LIST,
            json!({"x": 1}),
            "this method takes no params",
        ),
    ] {
        let (code, msg) = c.err(method, params.clone()).await;
        assert_eq!(code, codes::INVALID_PARAMS, "{method} {params}: {msg}");
        assert!(msg.contains(expected), "{method} {params}: {msg}");
        for leak in ["enum", "flattened", "u64", "field"] {
            assert!(!msg.contains(leak), "{method} {params}: {msg}");
        }
    }
    assert_eq!(
        crate::engine::Engine::limits(&s.engine).await.unwrap(),
        swarm_control::Limits::default(),
        "refused limits are not applied"
    );
    still_works(&mut c).await;
}

#[tokio::test]
async fn idle_connections_are_closed_but_subscribers_stay() {
    let mut opts = options();
    opts.limits.idle_timeout = Duration::from_millis(300);
    let s = TestServer::start(crate::fake_engine::FakeEngine::new(), opts).await;
    let mut idle = s.conn().await;
    let mut sub = s.conn().await;
    sub.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;
    let v = idle.recv().await;
    assert_eq!(v["error"]["code"], codes::IDLE, "{v}");
    assert!(idle.closed().await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    s.engine.emit(swarm_control::Event::Removed {
        info_hash: ih(HASH_A),
    });
    assert_eq!(sub.recv().await["params"]["event"], "removed");
}
