use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use swarm_supervisor::ExitReason;

use super::*;

/// A torrent stand-in: answers `CollectPeers` (maybe slowly) and records decisions.
struct FakeTorrent {
    report: PeersReport,
    delay: Duration,
    collected: Arc<AtomicUsize>,
    decisions: Arc<Mutex<Vec<ChokeDecision>>>,
}

impl Actor for FakeTorrent {
    type Context = Context<Self>;
}

impl Handler<CollectPeers> for FakeTorrent {
    type Result = ResponseFuture<PeersReport>;

    fn handle(&mut self, _: CollectPeers, _: &mut Context<Self>) -> Self::Result {
        self.collected.fetch_add(1, Ordering::SeqCst);
        let (report, delay) = (self.report.clone(), self.delay);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            report
        })
    }
}

impl Handler<ChokeDecision> for FakeTorrent {
    type Result = ();

    fn handle(&mut self, msg: ChokeDecision, _: &mut Context<Self>) {
        self.decisions.lock().unwrap().push(msg);
    }
}

struct Probe {
    addr: Addr<FakeTorrent>,
    collected: Arc<AtomicUsize>,
    decisions: Arc<Mutex<Vec<ChokeDecision>>>,
}

impl Probe {
    fn start(peers: Vec<PeerSnapshot>, delay: Duration) -> Self {
        let collected = Arc::new(AtomicUsize::new(0));
        let decisions = Arc::new(Mutex::new(Vec::new()));
        let addr = FakeTorrent {
            report: PeersReport {
                seeding: false,
                slots: None,
                peers,
            },
            delay,
            collected: collected.clone(),
            decisions: decisions.clone(),
        }
        .start();
        Probe {
            addr,
            collected,
            decisions,
        }
    }

    fn register(&self, n: u8) -> RegisterTorrent {
        RegisterTorrent {
            info_hash: InfoHash([n; 20]),
            seeding: false,
            to: self.addr.clone().recipient(),
            collect: self.addr.clone().recipient(),
        }
    }

    fn collected(&self) -> usize {
        self.collected.load(Ordering::SeqCst)
    }

    fn last(&self) -> Option<ChokeDecision> {
        self.decisions.lock().unwrap().last().cloned()
    }
}

fn peers() -> Vec<PeerSnapshot> {
    (1..=6)
        .map(|k| PeerSnapshot {
            interested: true,
            download_rate: k * 100,
            connected_for: Duration::from_secs(600),
            ..PeerSnapshot::new(k)
        })
        .collect()
}

fn config(interval_ms: u64) -> ChokerConfig {
    ChokerConfig {
        interval: Duration::from_millis(interval_ms),
        collect_timeout: Duration::from_millis(100),
        min_extra_gap: Duration::from_millis(200),
        choke: ChokeConfig::default(),
    }
}

fn choker(cfg: ChokerConfig) -> Addr<Choker> {
    Choker::with_rng(cfg, StdRng::seed_from_u64(1), ChildLink::detached()).start()
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Polls `cond` for up to 3 s: the machine may be busy, the tests must not depend on its speed.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(3);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        sleep_ms(10).await;
    }
}

#[actix_rt::test]
async fn each_round_asks_every_torrent_and_sends_each_its_decision() {
    let choker = choker(config(100));
    let (a, b) = (
        Probe::start(peers(), Duration::ZERO),
        Probe::start(peers(), Duration::ZERO),
    );
    choker.do_send(a.register(1));
    choker.do_send(b.register(2));
    eventually("three rounds", || a.collected() >= 3 && b.collected() >= 3).await;
    sleep_ms(20).await;
    for p in [&a, &b] {
        let d = p.last().expect("a decision");
        assert_eq!(d.unchoke.len(), 4);
        for k in [4, 5, 6] {
            assert!(d.unchoke.contains(&k), "{d:?}");
        }
        assert!(p.collected() >= 3);
    }
    let stats = choker.send(GetChokerStats).await.unwrap();
    assert_eq!(stats.registered, 2);
    assert!(stats.rounds >= 3);
}

#[actix_rt::test]
async fn a_busy_torrent_misses_the_round_without_stalling_the_others() {
    let choker = choker(ChokerConfig {
        min_extra_gap: Duration::from_millis(20),
        ..config(60_000)
    });
    let quick = Probe::start(peers(), Duration::ZERO);
    let busy = Probe::start(peers(), Duration::from_secs(30));
    // Round 1 starts with the busy torrent alone; the quick one's registration queues round 2.
    choker.do_send(busy.register(1));
    choker.do_send(quick.register(2));
    eventually("the quick torrent's decision", || quick.last().is_some()).await;
    sleep_ms(250).await;
    assert!(busy.last().is_none());
    let stats = choker.send(GetChokerStats).await.unwrap();
    assert_eq!(stats.rounds, 2);
    assert_eq!(
        stats.missed_reports, 2,
        "each round waited 100 ms for it, no more"
    );
}

#[actix_rt::test]
async fn a_burst_of_rechoke_requests_costs_one_extra_round() {
    let gap = 400;
    let choker = choker(ChokerConfig {
        min_extra_gap: Duration::from_millis(gap),
        ..config(60_000)
    });
    let t = Probe::start(peers(), Duration::ZERO);
    let registered = Instant::now();
    choker.do_send(t.register(1)); // a new torrent: one round at once
    eventually("the first round", || t.collected() == 1).await;
    for _ in 0..50 {
        choker.do_send(RechokeNow);
    }
    sleep_ms(50).await;
    if registered.elapsed() < Duration::from_millis(gap - 50) {
        assert_eq!(t.collected(), 1, "within the gap: nothing yet");
    }
    eventually("one extra round after the gap", || t.collected() == 2).await;
    sleep_ms(2 * gap).await;
    assert_eq!(t.collected(), 2, "and nothing more");
    // Re-registering a known torrent does not cost a round.
    choker.do_send(t.register(1));
    sleep_ms(2 * gap).await;
    assert_eq!(t.collected(), 2);
}

#[actix_rt::test]
async fn unregistered_and_dead_torrents_leave_the_rounds() {
    let choker = choker(config(100));
    let (a, b) = (
        Probe::start(peers(), Duration::ZERO),
        Probe::start(peers(), Duration::ZERO),
    );
    choker.do_send(a.register(1));
    choker.do_send(b.register(2));
    eventually("a round", || a.collected() >= 1).await;
    choker.do_send(UnregisterTorrent {
        info_hash: InfoHash([1; 20]),
    });
    let Probe { addr, .. } = b;
    addr.do_send(Terminate); // FakeTorrent has no handler: stop it by dropping every address
    drop(addr);
    let end = Instant::now() + Duration::from_secs(3);
    while choker.send(GetChokerStats).await.unwrap().registered > 0 {
        assert!(Instant::now() < end, "the dead torrent is still registered");
        sleep_ms(20).await;
    }
    let seen = a.collected();
    sleep_ms(250).await;
    assert_eq!(
        a.collected(),
        seen,
        "no more rounds for an unregistered torrent"
    );
}

#[actix_rt::test]
async fn a_torrent_without_peers_leaves_the_rounds_until_it_registers_again() {
    let choker = choker(config(100));
    let (busy, idle) = (
        Probe::start(peers(), Duration::ZERO),
        Probe::start(Vec::new(), Duration::ZERO),
    );
    choker.do_send(busy.register(1));
    choker.do_send(idle.register(2));
    eventually("a round", || idle.collected() >= 1).await;
    let end = Instant::now() + Duration::from_secs(3);
    while choker.send(GetChokerStats).await.unwrap().registered > 1 {
        assert!(Instant::now() < end, "the idle torrent is still registered");
        sleep_ms(20).await;
    }
    let (seen, busy_seen) = (idle.collected(), busy.collected());
    eventually("more rounds", || busy.collected() >= busy_seen + 2).await;
    assert_eq!(
        idle.collected(),
        seen,
        "an idle torrent is not asked every round"
    );
    // Its next peer's handshake registers it again.
    choker.do_send(idle.register(2));
    eventually("asked again", || idle.collected() > seen).await;
}

impl Handler<Terminate> for FakeTorrent {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[actix_rt::test]
async fn settings_change_at_run_time() {
    let choker = choker(config(60_000));
    let t = Probe::start(peers(), Duration::ZERO);
    choker.do_send(t.register(1));
    eventually("a decision", || t.last().is_some()).await;
    assert_eq!(t.last().unwrap().unchoke.len(), 4);
    let mut cfg = config(60_000);
    cfg.choke.slots_per_torrent = 1;
    choker.do_send(SetChokerConfig(cfg));
    eventually("one slot", || t.last().unwrap().unchoke == vec![6]).await;
}

#[actix_rt::test]
async fn terminate_stops_it_with_the_shutdown_reason() {
    let seen = Arc::new(Mutex::new(None));
    let sink = seen.clone();
    let link = ChildLink::new(move |r| *sink.lock().unwrap() = Some(r));
    let choker = Choker::new(config(100), link).start();
    choker.send(Terminate).await.unwrap();
    eventually("the choker stops", || !choker.connected()).await;
    assert_eq!(*seen.lock().unwrap(), Some(ExitReason::Shutdown));
}
