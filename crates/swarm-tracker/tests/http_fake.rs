//! The HTTP client against a fake tracker: a std TcpListener on 127.0.0.1 that records each request
//! line and answers with a canned reply.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use swarm_tracker::{
    http_announce, http_scrape, AnnounceRequest, Event, ScrapeStats, TrackerError,
};
use swarm_wire::InfoHash;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes chosen to exercise the encoder: unreserved characters, reserved ones, space, high bytes.
const HASH: [u8; 20] = *b"\x00\x01ab-._~ %&=+/?\x7f\x80\xfeZ9";
const HASH_ENCODED: &str = "%00%01ab-._~%20%25%26%3D%2B%2F%3F%7F%80%FEZ9";

/// A tracker that answers every request with `reply(target)` and reports each request target.
struct FakeTracker {
    addr: SocketAddr,
    requests: mpsc::Receiver<String>,
}

impl FakeTracker {
    fn start(reply: impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake tracker");
        let addr = listener.local_addr().expect("local addr");
        let (tx, requests) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(target) = serve(stream, &reply) else {
                    continue;
                };
                if tx.send(target).is_err() {
                    break;
                }
            }
        });
        FakeTracker { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn last_request(&self) -> String {
        self.requests
            .recv_timeout(TIMEOUT)
            .expect("the tracker saw a request")
    }
}

/// Reads one request head and answers it; returns the request target.
fn serve(mut stream: TcpStream, reply: &impl Fn(&str) -> (u16, Vec<u8>)) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8(head).ok()?;
    let target = head.split(' ').nth(1)?.to_owned();
    let (status, body) = reply(&target);
    let mut out = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend(body);
    // The client may hang up early (reply too large); that is fine.
    let _ = stream.write_all(&out);
    Some(target)
}

fn query(target: &str) -> Vec<(String, String)> {
    let (_, q) = target.split_once('?').expect("a query string");
    q.split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn request() -> AnnounceRequest {
    let mut req = AnnounceRequest::new(
        InfoHash(HASH),
        *b"-SW0001-\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c",
        6881,
    );
    req.left = 1234;
    req.uploaded = 5;
    req.downloaded = 6;
    req.event = Event::Started;
    req
}

fn ok_reply(_: &str) -> (u16, Vec<u8>) {
    (
        200,
        b"d8:completei2e10:incompletei3e8:intervali900e5:peers6:\x0a\x00\x00\x01\x1a\xe1e".to_vec(),
    )
}

#[test]
fn announce_sends_every_parameter_and_parses_the_reply() {
    let t = FakeTracker::start(ok_reply);
    let url = t.url("/announce?passkey=s3cr3t");
    let resp = http_announce(&url, &request(), TIMEOUT).expect("announce");
    assert_eq!(resp.interval, Duration::from_secs(900));
    assert_eq!((resp.complete, resp.incomplete), (Some(2), Some(3)));
    assert_eq!(resp.peers, vec!["10.0.0.1:6881".parse().unwrap()]);

    let target = t.last_request();
    assert!(target.starts_with("/announce?passkey=s3cr3t&"), "{target}");
    let q = query(&target);
    assert_eq!(param(&q, "info_hash"), Some(HASH_ENCODED));
    assert_eq!(
        param(&q, "peer_id"),
        Some("-SW0001-%01%02%03%04%05%06%07%08%09%0A%0B%0C")
    );
    assert_eq!(param(&q, "port"), Some("6881"));
    assert_eq!(param(&q, "left"), Some("1234"));
    assert_eq!(param(&q, "uploaded"), Some("5"));
    assert_eq!(param(&q, "downloaded"), Some("6"));
    assert_eq!(param(&q, "event"), Some("started"));
    assert_eq!(param(&q, "compact"), Some("1"));
    assert_eq!(param(&q, "passkey"), Some("s3cr3t"));
}

#[test]
fn periodic_announce_has_no_event_and_echoes_tracker_id() {
    let t = FakeTracker::start(ok_reply);
    let mut req = request();
    req.event = Event::None;
    req.tracker_id = Some("tid-1".into());
    req.numwant = Some(25);
    http_announce(&t.url("/announce"), &req, TIMEOUT).expect("announce");
    let q = query(&t.last_request());
    assert_eq!(param(&q, "event"), None);
    assert_eq!(param(&q, "trackerid"), Some("tid-1"));
    assert_eq!(param(&q, "numwant"), Some("25"));
}

#[test]
fn failure_reason_is_an_error_naming_the_tracker() {
    for status in [200, 400] {
        let t = FakeTracker::start(move |_| {
            (
                status,
                b"d14:failure reason19:torrent not allowede".to_vec(),
            )
        });
        let url = t.url("/announce");
        let err = http_announce(&url, &request(), TIMEOUT).unwrap_err();
        match &err {
            TrackerError::Failure { reason, .. } => assert_eq!(reason, "torrent not allowed"),
            other => panic!("status {status}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&url) && msg.contains("torrent not allowed"),
            "{msg}"
        );
    }
}

#[test]
fn warning_message_comes_through() {
    let t = FakeTracker::start(|_| {
        (
            200,
            b"d8:intervali60e5:peers0:15:warning message9:slow down"
                .iter()
                .chain(b"e")
                .copied()
                .collect(),
        )
    });
    let resp = http_announce(&t.url("/announce"), &request(), TIMEOUT).expect("announce");
    assert_eq!(resp.warning.as_deref(), Some("slow down"));
}

#[test]
fn bad_replies_are_errors_with_the_url() {
    let cases: Vec<(u16, Vec<u8>, &str)> = vec![
        (200, b"<html>hello</html>".to_vec(), "bencode"),
        (
            200,
            b"d8:intervali60e5:peers7:1234567e".to_vec(),
            "multiple of 6",
        ),
        (404, b"<html>not found</html>".to_vec(), "404"),
        (200, Vec::new(), "empty"),
    ];
    for (status, body, needle) in cases {
        let t = FakeTracker::start(move |_| (status, body.clone()));
        let url = t.url("/announce");
        let err = http_announce(&url, &request(), TIMEOUT).unwrap_err();
        assert!(matches!(err, TrackerError::BadReply { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&url) && msg.contains(needle), "{msg}");
    }
}

#[test]
fn oversized_reply_is_refused() {
    let t = FakeTracker::start(|_| {
        let mut body = b"d8:intervali60e5:peers3145728:".to_vec();
        body.resize(body.len() + 3 * 1024 * 1024, 0);
        body.push(b'e');
        (200, body)
    });
    let err = http_announce(&t.url("/announce"), &request(), TIMEOUT).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[test]
fn silent_tracker_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        // Accept and hold the connections, never answering.
        let held: Vec<TcpStream> = listener.incoming().take(2).filter_map(Result::ok).collect();
        thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    let url = format!("http://{addr}/announce");
    let start = Instant::now();
    let err = http_announce(&url, &request(), Duration::from_millis(500)).unwrap_err();
    assert!(matches!(err, TrackerError::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains(&url));
}

#[test]
fn refused_connection_is_an_io_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/announce");
    let err = http_announce(&url, &request(), TIMEOUT).unwrap_err();
    assert!(matches!(err, TrackerError::Io { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(
        !msg.contains("info_hash"),
        "the query is not repeated: {msg}"
    );
}

#[test]
fn scrape_uses_the_scrape_url_and_every_hash() {
    let other = InfoHash([0x42; 20]);
    let t = FakeTracker::start(|_| {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend(HASH);
        body.extend(b"d8:completei4e10:downloadedi9e10:incompletei1eeee");
        (200, body)
    });
    let resp =
        http_scrape(&t.url("/x/announce?k=1"), &[InfoHash(HASH), other], TIMEOUT).expect("scrape");
    assert_eq!(
        resp.get(&InfoHash(HASH)),
        Some(ScrapeStats {
            complete: 4,
            downloaded: 9,
            incomplete: 1
        })
    );
    assert_eq!(resp.get(&other), None);
    let target = t.last_request();
    assert_eq!(
        target,
        format!(
            "/x/scrape?k=1&info_hash={HASH_ENCODED}&info_hash={}",
            "B".repeat(20)
        )
    );
}

#[test]
fn scrape_without_the_convention_is_unsupported() {
    let err =
        http_scrape("http://127.0.0.1:1/tracker.php", &[InfoHash(HASH)], TIMEOUT).unwrap_err();
    assert!(matches!(err, TrackerError::Unsupported { .. }), "{err:?}");
}
