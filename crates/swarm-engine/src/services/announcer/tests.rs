//! The announcer against a local tracker that cuts every connection: many torrents, one dead
//! tracker.

use std::net::TcpListener;
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
    let announcer =
        Announcer::new([7; 20], 6881, UdpConfig::default(), ChildLink::detached()).start();
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
