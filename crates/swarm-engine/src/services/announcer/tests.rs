//! The announcer against local trackers: one that cuts every connection (many torrents, one dead
//! tracker), one that records the announces it answers, and silent ones (HTTP and UDP) for the
//! user's announce timeout.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use swarm_supervisor::ChildLink;

use super::*;

/// Stands in for the torrents: takes the peers found and forgets them.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<PeersFound> for Sink {
    type Result = ();

    fn handle(&mut self, _: PeersFound, _: &mut Context<Self>) {}
}

/// A tracker that accepts connections and closes them at once, counting them: every announce
/// to it fails with an I/O error. Its thread stops when the guard drops (checked every 5 ms).
struct CuttingTracker {
    url: String,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl CuttingTracker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        CuttingTracker {
            url,
            accepted,
            stop,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CuttingTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The torrents' tracker states, as `swarmctl trackers` shows them.
async fn states(announcer: &Addr<Announcer>, n: u8) -> Vec<TrackerInfo> {
    let mut out = Vec::new();
    for i in 0..n {
        let info = announcer
            .send(GetTrackers {
                info_hash: InfoHash([i; 20]),
            })
            .await
            .unwrap();
        out.extend(info);
    }
    out
}

#[actix_rt::test]
async fn a_dead_tracker_shared_by_many_torrents_is_tried_a_few_times_not_by_each() {
    const TORRENTS: u8 = 64;
    let tracker = CuttingTracker::start();
    let announcer = Announcer::new(
        [7; 20],
        6881,
        UdpConfig::default(),
        AnnounceSettings::default(),
        ChildLink::detached(),
    )
    .start();
    let sink = Sink.start();
    for i in 0..TORRENTS {
        announcer.do_send(Track {
            info_hash: InfoHash([i; 20]),
            tiers: vec![vec![tracker.url.clone()]],
            to: sink.clone().recipient(),
            left: 0,
            private: false,
        });
    }
    // Every torrent ends up failing (bounded: 10 s, whatever the machine's load).
    let end = Instant::now() + Duration::from_secs(10);
    let all = loop {
        let all = states(&announcer, TORRENTS).await;
        if all.len() == usize::from(TORRENTS) && all.iter().all(|t| t.status == "error") {
            break all;
        }
        assert!(Instant::now() < end, "not every torrent failed: {all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Only the announces already holding an HTTP slot when the first failure came back tried.
    let tried = tracker.accepted();
    assert!(
        (1..=MAX_HTTP_ANNOUNCES).contains(&tried),
        "{tried} connections for {TORRENTS} torrents"
    );
    let skipped = all
        .iter()
        .filter(|t| {
            t.message
                .as_deref()
                .is_some_and(|m| m.contains("not tried"))
        })
        .count();
    assert!(
        skipped >= usize::from(TORRENTS) - MAX_HTTP_ANNOUNCES,
        "{skipped} skipped: {all:?}"
    );

    // The user's reannounce tries for real.
    announcer
        .send(Reannounce {
            info_hash: InfoHash([0; 20]),
        })
        .await
        .unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while tracker.accepted() == tried {
        assert!(
            Instant::now() < end,
            "the reannounce did not reach the tracker"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tracker that answers every HTTP announce (no peers, interval 30 min) and keeps the request
/// lines; or, `silent`, never answers (the connections are held open until it stops).
struct LocalTracker {
    url: String,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl LocalTracker {
    fn start(silent: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                if silent {
                    held.push(stream);
                    continue;
                }
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let line = String::from_utf8_lossy(&head);
                seen.lock()
                    .unwrap()
                    .push(line.lines().next().unwrap_or("").to_owned());
                let body = b"d8:intervali1800e5:peers0:e";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(body);
            }
        });
        LocalTracker {
            url,
            requests,
            stop,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for LocalTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn announcer_with(settings: AnnounceSettings) -> Addr<Announcer> {
    Announcer::new(
        [7; 20],
        6881,
        UdpConfig::default(),
        settings,
        ChildLink::detached(),
    )
    .start()
}

fn track(announcer: &Addr<Announcer>, url: &str) {
    announcer.do_send(Track {
        info_hash: InfoHash([0; 20]),
        tiers: vec![vec![url.to_owned()]],
        to: Sink.start().recipient(),
        left: 0,
        private: false,
    });
}

/// The tracker's state once it has an error (bounded: 60 s, far above any timeout used here).
async fn first_error(announcer: &Addr<Announcer>) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let all = states(announcer, 1).await;
        if let Some(m) = all.first().and_then(|t| t.message.clone()) {
            if all[0].status == "error" {
                return m;
            }
        }
        assert!(Instant::now() < end, "no announce error: {all:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn numwant_is_the_configured_one() {
    let tracker = LocalTracker::start(false);
    let announcer = announcer_with(AnnounceSettings {
        numwant: 7,
        ..AnnounceSettings::default()
    });
    track(&announcer, &tracker.url);
    let end = Instant::now() + Duration::from_secs(10);
    while tracker.requests().is_empty() {
        assert!(Instant::now() < end, "no announce reached the tracker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = &tracker.requests()[0];
    assert!(line.contains("&numwant=7"), "{line}");
    // The answer asked for 30 min, above the floor: the next announce waits for it.
    let info = states(&announcer, 1).await;
    let next = info[0].next_announce_secs.unwrap_or(0);
    assert!((1700..=1800).contains(&next), "{info:?}");
}

#[actix_rt::test]
async fn the_configured_min_interval_is_the_floor() {
    let tracker = LocalTracker::start(false);
    let announcer = announcer_with(AnnounceSettings {
        min_interval: Duration::from_secs(4 * 3600),
        ..AnnounceSettings::default()
    });
    track(&announcer, &tracker.url);
    let end = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = states(&announcer, 1).await;
        if info.first().is_some_and(|t| t.status == "ok") {
            break info;
        }
        assert!(Instant::now() < end, "no answer from the tracker: {info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The tracker asked for 30 min; the user's 4 h floor wins.
    let next = info[0].next_announce_secs.unwrap_or(0);
    assert!(next > 3 * 3600, "{info:?}");
}

#[actix_rt::test]
async fn an_http_announce_is_bounded_by_the_configured_timeout() {
    let tracker = LocalTracker::start(true);
    let announcer = announcer_with(AnnounceSettings {
        timeout: Duration::from_secs(1),
        ..AnnounceSettings::default()
    });
    track(&announcer, &tracker.url);
    let message = first_error(&announcer).await;
    assert!(message.contains("did not answer within 1s"), "{message}");
}

#[actix_rt::test]
async fn a_udp_announce_is_bounded_by_the_configured_timeout() {
    // Its retransmission schedule alone (15 s, then 30 s, …) would take far longer.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let announcer = announcer_with(AnnounceSettings {
        timeout: Duration::from_secs(1),
        ..AnnounceSettings::default()
    });
    track(&announcer, &url);
    let message = first_error(&announcer).await;
    assert!(message.contains("did not answer within 1s"), "{message}");
}
