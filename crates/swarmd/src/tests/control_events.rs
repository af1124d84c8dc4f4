//! The event stream: delivery, interleaving with calls, and slow subscribers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_control::methods::names;
use swarm_control::{Event, TorrentState};

use super::*;
use crate::fake_engine::FakeEngine;

fn progress(i: u64) -> Event {
    Event::Progress {
        info_hash: ih(HASH_A),
        progress: (i % 100) as f64 / 100.0,
        download_rate: i,
        upload_rate: 0,
        state: TorrentState::Downloading,
    }
}

#[tokio::test]
async fn subscribers_get_events_and_can_still_call() {
    let s = TestServer::default().await;
    let mut sub = s.conn().await;
    let mut other = s.conn().await;
    assert_eq!(
        sub.ok(names::EVENTS_SUBSCRIBE, Value::Null).await,
        json!({"subscribed": true})
    );
    // Subscribing twice is harmless.
    sub.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;

    // An add on another connection shows up as an event.
    let magnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=m";
    other
        .ok(names::TORRENT_ADD, json!({"magnet": magnet}))
        .await;
    let n = sub.recv().await;
    assert_eq!(n["jsonrpc"], "2.0");
    assert_eq!(n["method"], "event");
    assert_eq!(
        n["params"],
        json!({"event": "added", "info_hash": "0123456789abcdef0123456789abcdef01234567", "name": "m"})
    );
    assert!(n.get("id").is_none());

    // Calls on the subscribed connection still work.
    let shown = sub
        .ok(names::TORRENT_SHOW, json!({"torrent": "cccccc"}))
        .await;
    assert_eq!(shown["name"], "gamma");
    s.engine.emit(Event::Completed {
        info_hash: ih(HASH_C),
        name: "gamma".into(),
    });
    let n = sub.recv().await;
    assert_eq!(n["params"]["event"], "completed");

    // The connection that did not subscribe gets nothing but its answers.
    let v = other.call(names::TORRENT_LIST, Value::Null).await;
    assert!(v.get("result").is_some());
}

#[tokio::test]
async fn a_slow_subscriber_lags_without_blocking_the_engine() {
    let engine = FakeEngine::with_event_capacity(16);
    let mut opts = options();
    // Long enough that the slow reader is lagged, not dropped (dropping is the next test).
    opts.limits.write_timeout = Duration::from_secs(120);
    let s = TestServer::start(engine.clone(), opts).await;
    let mut slow = s.conn().await;
    let mut fast = s.conn().await;
    slow.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;
    fast.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;

    // Far more events than the socket buffers and the channel hold; `slow` reads none meanwhile.
    let fast_reader = tokio::spawn(async move {
        let mut seen = 0u64;
        let mut lagged = 0u64;
        while seen + lagged < 50_000 {
            let n = fast.recv().await;
            match n["method"].as_str() {
                Some("event") => seen += 1,
                Some("lagged") => lagged += n["params"]["missed"].as_u64().unwrap(),
                other => panic!("unexpected {other:?}: {n}"),
            }
        }
        (seen, lagged)
    });
    let start = Instant::now();
    for i in 0..50_000u64 {
        engine.emit(progress(i));
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "emitting blocked: {:?}",
        start.elapsed()
    );
    let (seen, lagged) = tokio::time::timeout(Duration::from_secs(20), fast_reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen + lagged, 50_000);

    // Now the slow one reads: it sees some events, at least one `lagged`, and the newest event.
    let mut lagged_total = 0;
    engine.emit(progress(99_999));
    loop {
        let n = slow.recv().await;
        match n["method"].as_str() {
            Some("lagged") => lagged_total += n["params"]["missed"].as_u64().unwrap(),
            Some("event") if n["params"]["download_rate"] == 99_999 => break,
            Some("event") => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        lagged_total > 0,
        "the slow subscriber was never told it lagged"
    );
    // And it can still make calls.
    slow.ok(names::TORRENT_LIST, Value::Null).await;
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_dropped() {
    let mut opts = options();
    opts.limits.write_timeout = Duration::from_millis(300);
    let engine = FakeEngine::with_event_capacity(16);
    let s = TestServer::start(engine.clone(), opts).await;
    let mut stuck = s.conn().await;
    stuck.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;
    // Fill the socket buffers so the server's writes stall.
    for i in 0..100_000u64 {
        engine.emit(progress(i));
        if i % 500 == 0 {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    // The server gave up on it: reading drains what was buffered, then end of stream.
    let mut lines = 0;
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncBufReadExt::read_line(&mut stuck.reader, &mut line),
        )
        .await
        .unwrap()
        .unwrap();
        if n == 0 {
            break;
        }
        lines += 1;
    }
    assert!(lines > 0);
    // The server itself is fine.
    let mut c = s.conn().await;
    c.ok(names::TORRENT_LIST, Value::Null).await;
}

/// `echo '{…events.subscribe}' | socat -t … - UNIX-CONNECT:…`: the client's input ends right
/// after the request, its output stays open.
#[tokio::test]
async fn a_subscriber_that_half_closed_still_gets_events() {
    let s = TestServer::default().await;
    let mut sub = s.conn().await;
    sub.ok(names::EVENTS_SUBSCRIBE, Value::Null).await;
    sub.half_close().await;
    // Let the server read the end of input before the event is sent.
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.engine.emit(Event::Removed {
        info_hash: ih(HASH_A),
    });
    assert_eq!(sub.recv().await["params"]["event"], "removed");
    // A client that half-closed without subscribing is done: its connection ends.
    let mut plain = s.conn().await;
    plain.ok(names::TORRENT_LIST, Value::Null).await;
    plain.half_close().await;
    assert!(plain.closed().await);
}
