//! The UDP client against a fake BEP 15 tracker on 127.0.0.1, with short timeouts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_tracker::{AnnounceRequest, Event, TrackerError, UdpConfig, UdpTrackerClient};
use swarm_wire::InfoHash;
use tokio::net::UdpSocket;

const CONN_ID: u64 = 0x00c0_ffee_1234_5678;

/// How the fake tracker misbehaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Ignore this many announce packets before answering.
    drop_announces: usize,
    /// Answer announces with an error packet carrying this message.
    error: Option<&'static str>,
    /// Answer announces with a packet cut short.
    truncate: bool,
    /// First answer each announce from another socket (which the client must ignore).
    spoof: bool,
    /// Never answer anything.
    silent: bool,
}

#[derive(Default)]
struct Seen {
    connects: AtomicUsize,
    announces: AtomicUsize,
    last_announce: Mutex<Vec<u8>>,
}

struct FakeTracker {
    url: String,
    seen: Arc<Seen>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

impl FakeTracker {
    async fn start(behaviour: Behaviour) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", socket.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut dropped = 0;
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let p = buf[..n].to_vec();
                if behaviour.silent || n < 16 {
                    continue;
                }
                let (action, txid) = (be32(&p, 8), &p[12..16]);
                let mut reply = Vec::new();
                match action {
                    0 => {
                        assert_eq!(&p[..8], &0x41727101980u64.to_be_bytes());
                        s.connects.fetch_add(1, Ordering::SeqCst);
                        reply.extend(0u32.to_be_bytes());
                        reply.extend(txid);
                        reply.extend(CONN_ID.to_be_bytes());
                    }
                    1 => {
                        assert_eq!(n, 98, "announce packet length");
                        assert_eq!(&p[..8], &CONN_ID.to_be_bytes(), "connection id");
                        s.announces.fetch_add(1, Ordering::SeqCst);
                        *s.last_announce.lock().unwrap() = p.clone();
                        if dropped < behaviour.drop_announces {
                            dropped += 1;
                            continue;
                        }
                        if let Some(msg) = behaviour.error {
                            reply.extend(3u32.to_be_bytes());
                            reply.extend(txid);
                            reply.extend(msg.as_bytes());
                        } else {
                            reply.extend(1u32.to_be_bytes());
                            reply.extend(txid);
                            reply.extend(1800u32.to_be_bytes());
                            reply.extend(3u32.to_be_bytes()); // leechers
                            reply.extend(7u32.to_be_bytes()); // seeders
                            reply.extend([10, 1, 2, 3, 0x1a, 0xe1]);
                            if behaviour.truncate {
                                reply.truncate(23);
                            }
                            if behaviour.spoof {
                                let mut fake = reply[..20].to_vec();
                                fake.extend([6, 6, 6, 6, 0, 66]);
                                spoofer.send_to(&fake, from).await.unwrap();
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                    2 => {
                        reply.extend(2u32.to_be_bytes());
                        reply.extend(txid);
                        for i in 0..(n - 16) / 20 {
                            let i = i as u32;
                            for v in [i + 1, i + 10, i + 100] {
                                reply.extend(v.to_be_bytes());
                            }
                        }
                    }
                    _ => continue,
                }
                let _ = socket.send_to(&reply, from).await;
            }
        });
        FakeTracker { url, seen }
    }

    fn connects(&self) -> usize {
        self.seen.connects.load(Ordering::SeqCst)
    }

    fn announces(&self) -> usize {
        self.seen.announces.load(Ordering::SeqCst)
    }
}

fn fast() -> UdpConfig {
    UdpConfig {
        base_timeout: Duration::from_millis(200),
        max_retries: 2,
        connection_ttl: Duration::from_secs(60),
    }
}

async fn client() -> UdpTrackerClient {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    UdpTrackerClient::with_config(bind, fast()).await.unwrap()
}

fn request() -> AnnounceRequest {
    let mut req = AnnounceRequest::new(InfoHash([0x11; 20]), [0x22; 20], 51413);
    req.left = 999;
    req.event = Event::Started;
    req.key = 0xabcd;
    req
}

#[tokio::test]
async fn connect_then_announce() {
    let t = FakeTracker::start(Behaviour::default()).await;
    let c = client().await;
    let resp = c.announce(&t.url, &request()).await.expect("announce");
    assert_eq!(resp.interval, Duration::from_secs(1800));
    assert_eq!((resp.complete, resp.incomplete), (Some(7), Some(3)));
    assert_eq!(resp.peers, vec!["10.1.2.3:6881".parse().unwrap()]);
    assert_eq!((t.connects(), t.announces()), (1, 1));
    let p = t.seen.last_announce.lock().unwrap().clone();
    assert_eq!(&p[16..36], &[0x11; 20], "info_hash");
    assert_eq!(&p[36..56], &[0x22; 20], "peer_id");
    assert_eq!(&p[64..72], &999u64.to_be_bytes(), "left");
    assert_eq!(be32(&p, 80), 2, "event started");
    assert_eq!(be32(&p, 88), 0xabcd, "key");
    assert_eq!(&p[96..98], &51413u16.to_be_bytes(), "port");
}

#[tokio::test]
async fn connection_id_is_reused() {
    let t = FakeTracker::start(Behaviour::default()).await;
    let c = client().await;
    c.announce(&t.url, &request()).await.expect("first");
    let mut again = request();
    again.event = Event::None;
    c.announce(&t.url, &again).await.expect("second");
    assert_eq!(t.connects(), 1, "second announce skipped the connect");
    assert_eq!(t.announces(), 2);
}

#[tokio::test]
async fn connection_id_expires() {
    let t = FakeTracker::start(Behaviour::default()).await;
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = UdpConfig {
        connection_ttl: Duration::from_millis(100),
        ..fast()
    };
    let c = UdpTrackerClient::with_config(bind, config).await.unwrap();
    c.announce(&t.url, &request()).await.expect("first");
    tokio::time::sleep(Duration::from_millis(150)).await;
    c.announce(&t.url, &request()).await.expect("second");
    assert_eq!(t.connects(), 2);
}

#[tokio::test]
async fn dropped_announce_is_retransmitted() {
    let t = FakeTracker::start(Behaviour {
        drop_announces: 1,
        ..Default::default()
    })
    .await;
    let c = client().await;
    let start = Instant::now();
    let resp = c.announce(&t.url, &request()).await.expect("announce");
    assert_eq!(resp.peers.len(), 1);
    assert_eq!(t.announces(), 2, "sent twice");
    assert_eq!(
        t.connects(),
        1,
        "connection id kept across the retransmission"
    );
    assert!(start.elapsed() >= fast().base_timeout);
}

#[tokio::test]
async fn error_action_is_a_failure_with_the_message() {
    let t = FakeTracker::start(Behaviour {
        error: Some("info_hash not registered"),
        ..Default::default()
    })
    .await;
    let c = client().await;
    let err = c.announce(&t.url, &request()).await.unwrap_err();
    match &err {
        TrackerError::Failure { reason, url } => {
            assert_eq!(reason, "info_hash not registered");
            assert_eq!(url, &t.url);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains(&t.url));
    // The error may be about the connection id: the next announce connects afresh.
    let _ = c.announce(&t.url, &request()).await;
    assert_eq!(t.connects(), 2);
}

#[tokio::test]
async fn truncated_reply_is_a_bad_reply() {
    let t = FakeTracker::start(Behaviour {
        truncate: true,
        ..Default::default()
    })
    .await;
    let c = client().await;
    let err = c.announce(&t.url, &request()).await.unwrap_err();
    assert!(matches!(err, TrackerError::BadReply { .. }), "{err:?}");
    assert!(err.to_string().contains(&t.url));
}

#[tokio::test]
async fn replies_from_other_addresses_are_ignored() {
    let t = FakeTracker::start(Behaviour {
        spoof: true,
        ..Default::default()
    })
    .await;
    let c = client().await;
    let resp = c.announce(&t.url, &request()).await.expect("announce");
    assert_eq!(resp.peers, vec!["10.1.2.3:6881".parse().unwrap()]);
}

#[tokio::test]
async fn silent_tracker_times_out_after_the_retries() {
    let t = FakeTracker::start(Behaviour {
        silent: true,
        ..Default::default()
    })
    .await;
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = UdpConfig {
        base_timeout: Duration::from_millis(50),
        max_retries: 2,
        ..fast()
    };
    let c = UdpTrackerClient::with_config(bind, config).await.unwrap();
    let start = Instant::now();
    let err = c.announce(&t.url, &request()).await.unwrap_err();
    // 50 + 100 + 200 ms.
    assert!(start.elapsed() >= Duration::from_millis(350));
    assert!(start.elapsed() < Duration::from_secs(3));
    match err {
        TrackerError::Timeout { url, after } => {
            assert_eq!(url, t.url);
            assert_eq!(after, Duration::from_millis(350));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn scrape_several_hashes() {
    let t = FakeTracker::start(Behaviour::default()).await;
    let c = client().await;
    let hashes = [InfoHash([1; 20]), InfoHash([2; 20])];
    let resp = c.scrape(&t.url, &hashes).await.expect("scrape");
    assert_eq!(resp.files.len(), 2);
    let second = resp.get(&InfoHash([2; 20])).unwrap();
    assert_eq!(
        (second.complete, second.downloaded, second.incomplete),
        (2, 11, 101)
    );
}

#[tokio::test]
async fn concurrent_announces_share_the_socket() {
    let a = FakeTracker::start(Behaviour::default()).await;
    let b = FakeTracker::start(Behaviour::default()).await;
    let c = client().await;
    let req = request();
    let (ra, rb) = tokio::join!(c.announce(&a.url, &req), c.announce(&b.url, &req));
    assert!(ra.is_ok() && rb.is_ok());
    assert_eq!((a.connects(), b.connects()), (1, 1));
}

/// A dual-stack client (bound to `[::]:0`) reaches an IPv4 tracker through an IPv4-mapped address
/// and still reads 6-byte IPv4 peer entries.
#[tokio::test]
async fn dual_stack_client_talks_to_an_ipv4_tracker() {
    let t = FakeTracker::start(Behaviour::default()).await;
    let bind: SocketAddr = "[::]:0".parse().unwrap();
    let c = match UdpTrackerClient::with_config(bind, fast()).await {
        Ok(c) => c,
        Err(e) => panic!("this test needs IPv6 sockets (dual-stack bind of [::]:0 failed: {e})"),
    };
    let resp = c.announce(&t.url, &request()).await.expect("announce");
    assert_eq!(resp.peers, vec!["10.1.2.3:6881".parse().unwrap()]);
    c.announce(&t.url, &request())
        .await
        .expect("second announce");
    assert_eq!(t.connects(), 1);
}

#[tokio::test]
async fn bad_urls_are_unsupported() {
    let c = client().await;
    for url in ["udp://127.0.0.1/announce", "http://127.0.0.1:1/announce"] {
        let err = c.announce(url, &request()).await.unwrap_err();
        assert!(
            matches!(err, TrackerError::Unsupported { .. }),
            "{url}: {err:?}"
        );
    }
}
