//! The blocking client against a scripted server on a real Unix socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::thread;

use serde_json::{json, Value};
use swarm_control::*;

/// Serves one connection: answers each request line with `reply(request)` lines.
fn serve_once(
    reply: impl Fn(&Request) -> Vec<String> + Send + 'static,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let req: Request = serde_json::from_str(&line).unwrap();
            for out in reply(&req) {
                if writer.write_all(format!("{out}\n").as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    (dir, path)
}

fn ok(req: &Request, result: Value) -> String {
    serde_json::to_string(&Response::ok(req.id.clone(), result)).unwrap()
}

#[test]
fn typed_calls_and_errors() {
    let (_dir, path) = serve_once(|req| match req.method.as_str() {
        names::SESSION_GET_LIMITS => vec![ok(req, json!({"download": 5, "upload": null}))],
        names::TORRENT_PAUSE => {
            assert_eq!(req.params, Some(json!({"torrent": "abcdef"})));
            vec![ok(req, Value::Null)]
        }
        _ => vec![serde_json::to_string(&Response::err(
            req.id.clone(),
            RpcError::new(codes::TORRENT_NOT_FOUND, "no torrent matches abcdef"),
        ))
        .unwrap()],
    });
    let mut c = Client::connect(&path).unwrap();
    assert_eq!(
        c.limits().unwrap(),
        Limits {
            download: Some(5),
            upload: None
        }
    );
    c.torrent_action(names::TORRENT_PAUSE, "abcdef").unwrap();
    let err = c.show("abcdef").unwrap_err();
    assert_eq!(err.rpc_code(), Some(codes::TORRENT_NOT_FOUND));
    assert_eq!(err.to_string(), "no torrent matches abcdef (code -32001)");
}

#[test]
fn notifications_between_calls_are_skipped_and_streamed() {
    let (_dir, path) = serve_once(|req| {
        let event = |e: Event| {
            serde_json::to_string(&Notification::new(
                names::NOTIFY_EVENT,
                serde_json::to_value(e).unwrap(),
            ))
            .unwrap()
        };
        match req.method.as_str() {
            names::EVENTS_SUBSCRIBE => vec![
                ok(req, json!({"subscribed": true})),
                event(Event::Added {
                    info_hash: InfoHash([0xaa; 20]),
                    name: "n".into(),
                }),
                r#"{"jsonrpc":"2.0","method":"from_the_future","params":{}}"#.into(),
                serde_json::to_string(&Notification::new(
                    names::NOTIFY_LAGGED,
                    json!({"missed": 3}),
                ))
                .unwrap(),
                event(Event::Removed {
                    info_hash: InfoHash([0xaa; 20]),
                }),
            ],
            _ => vec![
                event(Event::Removed {
                    info_hash: InfoHash([0xbb; 20]),
                }),
                ok(req, json!([])),
            ],
        }
    });
    let mut c = Client::connect(&path).unwrap();
    assert!(c.list().unwrap().is_empty());
    let mut events = c.subscribe().unwrap();
    assert_eq!(
        events.next().unwrap().unwrap(),
        StreamItem::Event(Event::Added {
            info_hash: InfoHash([0xaa; 20]),
            name: "n".into()
        })
    );
    assert_eq!(
        events.next().unwrap().unwrap(),
        StreamItem::Lagged { missed: 3 }
    );
    assert_eq!(
        events.next().unwrap().unwrap(),
        StreamItem::Event(Event::Removed {
            info_hash: InfoHash([0xaa; 20])
        })
    );
}

#[test]
fn timeout_is_reported() {
    let (_dir, path) = serve_once(|_| vec![]);
    let mut c = Client::connect(&path).unwrap();
    c.set_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let err = c.list().unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
}
