//! A BitTorrent swarm on a [`netlab`](crate::netlab) lab: a tracker on a host of its own, one
//! initial seed, N leechers, every client on its own host with its uplink capped, so that the
//! swarm's behaviour (choking, piece selection, who uploads to whom) decides the completion
//! times rather than the CPU. Used by the `swarm_lab` benchmark and by the functional test in
//! `tests/swarm_lab.rs`.
//!
//! One run: the tracker starts, the seed starts and is seeding, every leecher is started and
//! held (swarmd: a daemon without the torrent; libtorrent: the torrent added paused); then all
//! are released at t0 (a flash crowd) or one every `arrival_gap` (late joiners). Leechers
//! keep seeding when done, as in the fluid model. Each leecher's completion time is taken by
//! polling every 100 ms (its control socket / status file), so times are ±0.1 s. With
//! `seed_leaves_after`, the seed is stopped once it has uploaded that many times the payload.
//!
//! The fluid lower bound (Kumar & Ross) for a flash crowd of N leechers of upload `u` and a
//! seed of upload `u_s`, payload F: `T_min = max(F/u_s, N·F/(u_s + N·u))` (every byte must
//! leave the seed once, and the swarm's total upload must carry N copies).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::daemon::{Daemon, DaemonConfig};
use crate::libtorrent::{LibtorrentPeer, LtOptions};
use crate::netlab::{Host, Lab, Link};
use crate::payload::{Payload, Torrent};
use crate::swarmd::Swarmd;
use crate::tracker::Opentracker;
use crate::util::{free_tcp_port, wait_until, TestEnv};

/// A client in the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Swarmd,
    Libtorrent,
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::Swarmd => "swarmd",
            Client::Libtorrent => "libtorrent",
        }
    }

    /// `"swarmd"` / `"libtorrent"` (also `"lt"`).
    pub fn parse(s: &str) -> Option<Client> {
        match s {
            "swarmd" => Some(Client::Swarmd),
            "libtorrent" | "lt" => Some(Client::Libtorrent),
            _ => None,
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct SwarmSpec {
    /// Payload size in bytes (one file).
    pub payload: u64,
    /// Piece length, as a power of two (mktorrent's `-l`).
    pub piece_exp: u32,
    pub seed: Client,
    /// The seed's uplink, Mbit/s.
    pub seed_up_mbit: f64,
    /// The seed super-seeds (BEP 16).
    pub super_seed: bool,
    /// One entry per leecher, in arrival order.
    pub leechers: Vec<Client>,
    /// Each leecher's uplink, Mbit/s.
    pub leech_up_mbit: f64,
    /// Each leecher's downlink, Mbit/s (`None`: uncapped).
    pub leech_down_mbit: Option<f64>,
    /// Time between two leechers' arrivals (zero: a flash crowd).
    pub arrival_gap: Duration,
    /// Stop the seed once it has uploaded this many times the payload.
    pub seed_leaves_after: Option<f64>,
    /// The whole run, from t0 to the last completion.
    pub timeout: Duration,
}

impl SwarmSpec {
    /// The fluid lower bound of a flash crowd, seconds (see the module header).
    pub fn fluid_bound_secs(&self) -> f64 {
        let f = self.payload as f64 * 8.0;
        let n = self.leechers.len() as f64;
        let us = self.seed_up_mbit * 1e6;
        let u = self.leech_up_mbit * 1e6;
        (f / us).max(n * f / (us + n * u))
    }
}

/// One leecher's outcome.
#[derive(Clone, Debug)]
pub struct LeecherResult {
    pub client: Client,
    /// Arrival, from t0.
    pub arrived: Duration,
    /// Completion, from t0 (`None`: not complete within the timeout).
    pub done: Option<Duration>,
    /// Payload bytes as the client counts them at the end of the run.
    pub downloaded: u64,
    pub uploaded: u64,
    /// Bytes its uplink class carried (payload and overhead).
    pub uplink_bytes: u64,
    /// The piece check of its data (`Err` lists what is wrong).
    pub verified: Result<(), String>,
}

/// One run's outcome.
#[derive(Clone, Debug)]
pub struct SwarmResult {
    pub spec: SwarmSpec,
    pub leechers: Vec<LeecherResult>,
    /// Payload bytes the initial seed uploaded (as counted when it stopped or at the end).
    pub seed_uploaded: u64,
    /// Bytes the seed's uplink class carried.
    pub seed_uplink_bytes: u64,
    /// When the seed was stopped (`seed_leaves_after`), from t0.
    pub seed_left: Option<Duration>,
}

impl SwarmResult {
    /// The last completion, if every leecher completed.
    pub fn last_done(&self) -> Option<Duration> {
        self.leechers
            .iter()
            .map(|l| l.done)
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    /// `seed_uploaded / payload`.
    pub fn seed_copies(&self) -> f64 {
        self.seed_uploaded as f64 / self.spec.payload as f64
    }
}

/// A client running on a lab host.
enum Peer {
    Swarmd { daemon: Daemon, ih: String },
    Libtorrent(LibtorrentPeer),
}

/// What a poll of a peer says.
#[derive(Default)]
struct Progress {
    complete: bool,
    downloaded: u64,
    uploaded: u64,
}

impl Peer {
    fn poll(&self) -> Result<Progress, String> {
        match self {
            Peer::Swarmd { daemon, ih } => {
                daemon.guard().assert_running();
                let v = daemon.show(ih)?;
                Ok(Progress {
                    complete: crate::daemon::is_complete_seed(&v),
                    downloaded: v["downloaded"].as_u64().unwrap_or(0),
                    uploaded: v["uploaded"].as_u64().unwrap_or(0),
                })
            }
            Peer::Libtorrent(p) => {
                let st = p.try_status().ok_or("no status yet")?;
                Ok(Progress {
                    complete: st.finished || st.seeding,
                    downloaded: st.total_payload_download,
                    uploaded: st.total_payload_upload,
                })
            }
        }
    }

    fn log_tail(&self) -> String {
        match self {
            Peer::Swarmd { daemon, .. } => daemon.log_tail(),
            Peer::Libtorrent(p) => p.guard().log_tail(20),
        }
    }
}

/// Runs one swarm as `spec` says, in a lab of its own (removed before it returns).
pub fn run(env: &TestEnv, spec: &SwarmSpec) -> SwarmResult {
    let n = spec.leechers.len();
    let mut links = vec![Link::open(), Link::up_mbit(spec.seed_up_mbit)];
    for _ in 0..n {
        let mut l = Link::up_mbit(spec.leech_up_mbit);
        if let Some(d) = spec.leech_down_mbit {
            l = l.down_mbit(d);
        }
        links.push(l);
    }
    let lab = Lab::new(&links);
    let tracker = Opentracker::start_on(env, &[], Some(lab.host(0)));
    let payload = Payload::single(&env.unique_subdir("lab-seed"), "lab.bin", spec.payload, 7);
    let torrent = payload.make_torrent(
        &env.unique_subdir("lab-torrent").join("lab.torrent"),
        spec.piece_exp,
        &[&tracker.announce_url()],
    );
    tracker.allow(torrent.info_hash);

    let mut seed = Some(start_seed(env, spec, lab.host(1), &torrent, &payload));
    let mut held = Vec::new();
    for (i, &client) in spec.leechers.iter().enumerate() {
        let dir = env.unique_subdir(&format!("lab-leech{i}"));
        held.push((
            client,
            hold_leecher(env, client, lab.host(2 + i), &torrent, &dir, i),
            dir,
        ));
    }

    let t0 = Instant::now();
    let mut peers: Vec<Option<(Peer, PathBuf)>> = (0..n).map(|_| None).collect();
    let mut arrived = vec![None; n];
    let mut done = vec![None; n];
    let mut last: Vec<Progress> = Vec::new();
    let mut seed_uploaded = 0;
    let mut seed_left = None;
    let mut held = held.into_iter().enumerate().peekable();
    let mut last_error = String::new();
    while t0.elapsed() < spec.timeout {
        // Arrivals due.
        while let Some((i, _)) = held.peek() {
            if t0.elapsed() < spec.arrival_gap * (*i as u32) {
                break;
            }
            let (i, (_, h, dir)) = held.next().expect("peeked");
            arrived[i] = Some(t0.elapsed());
            peers[i] = Some((release(h, &torrent, &dir), dir));
        }
        // Completions.
        last.clear();
        for (i, p) in peers.iter().enumerate() {
            let Some((p, _)) = p else {
                last.push(Progress::default());
                continue;
            };
            match p.poll() {
                Ok(pr) => {
                    if pr.complete && done[i].is_none() {
                        done[i] = Some(t0.elapsed());
                    }
                    last.push(pr);
                }
                Err(e) => {
                    last_error = format!("leecher {i}: {e}");
                    last.push(Progress::default());
                }
            }
        }
        // The seed, and whether it leaves now.
        if let Some(s) = &seed {
            if let Ok(pr) = s.poll() {
                seed_uploaded = pr.uploaded;
            }
            if let Some(k) = spec.seed_leaves_after {
                if seed_uploaded as f64 >= k * spec.payload as f64 {
                    seed = None;
                    seed_left = Some(t0.elapsed());
                }
            }
        }
        if held.peek().is_none() && done.iter().all(Option::is_some) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(s) = &seed {
        if let Ok(pr) = s.poll() {
            seed_uploaded = pr.uploaded;
        }
    }

    let mut leechers = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let client = spec.leechers[i];
        let (downloaded, uploaded) = last.get(i).map_or((0, 0), |p| (p.downloaded, p.uploaded));
        let verified = match p {
            Some((_, dir)) => torrent.verify_dir(dir),
            None => Err("never arrived".into()),
        };
        if done[i].is_none() {
            if let Some((p, _)) = p {
                eprintln!(
                    "lab: {} leecher {i} incomplete after {:?} ({last_error})\n{}",
                    client.name(),
                    spec.timeout,
                    p.log_tail()
                );
            }
        }
        leechers.push(LeecherResult {
            client,
            arrived: arrived[i].unwrap_or_default(),
            done: done[i],
            downloaded,
            uploaded,
            uplink_bytes: lab.host(2 + i).uplink_bytes().unwrap_or(0),
            verified,
        });
    }
    let seed_uplink_bytes = lab.host(1).uplink_bytes().unwrap_or(0);
    // Processes go before the lab's namespaces.
    drop(peers);
    drop(seed);
    drop(tracker);
    drop(lab);
    SwarmResult {
        spec: spec.clone(),
        leechers,
        seed_uploaded,
        seed_uplink_bytes,
        seed_left,
    }
}

/// The initial seed, seeding before it returns.
fn start_seed(
    env: &TestEnv,
    spec: &SwarmSpec,
    host: &Host,
    torrent: &Torrent,
    payload: &Payload,
) -> Peer {
    match spec.seed {
        Client::Swarmd => {
            let daemon = lab_daemon(env, host, "lab-seed");
            let ih = daemon.add(&torrent.path, Some(&payload.dir));
            if spec.super_seed {
                daemon
                    .rpc(
                        "torrent.set_super_seed",
                        Some(json!({ "torrent": ih, "enabled": true })),
                    )
                    .unwrap_or_else(|e| panic!("torrent.set_super_seed: {e}"));
            }
            daemon.wait_torrent(
                &ih,
                "the lab's seed to seed",
                Duration::from_secs(60),
                crate::daemon::is_complete_seed,
            );
            Peer::Swarmd { daemon, ih }
        }
        Client::Libtorrent => {
            let p = LibtorrentPeer::spawn(
                env,
                &torrent.path,
                &payload.dir,
                LtOptions {
                    name: Some("lab-seed-lt".into()),
                    host: Some(host.clone()),
                    super_seed: spec.super_seed,
                    ..LtOptions::seed()
                },
            );
            p.wait_seeding();
            Peer::Libtorrent(p)
        }
    }
}

/// A leecher started and held until [`release`].
enum Held {
    Swarmd(Daemon),
    Libtorrent(LibtorrentPeer),
}

fn hold_leecher(
    env: &TestEnv,
    client: Client,
    host: &Host,
    torrent: &Torrent,
    dir: &std::path::Path,
    i: usize,
) -> Held {
    let name = format!("lab-leech{i}");
    match client {
        Client::Swarmd => Held::Swarmd(lab_daemon(env, host, &name)),
        Client::Libtorrent => Held::Libtorrent(LibtorrentPeer::spawn(
            env,
            &torrent.path,
            dir,
            LtOptions {
                name: Some(format!("{name}-lt")),
                host: Some(host.clone()),
                paused: true,
                ..LtOptions::leech()
            },
        )),
    }
}

fn release(h: Held, torrent: &Torrent, dir: &std::path::Path) -> Peer {
    match h {
        Held::Swarmd(daemon) => {
            let ih = daemon.add(&torrent.path, Some(dir));
            Peer::Swarmd { daemon, ih }
        }
        Held::Libtorrent(p) => {
            p.command("resume");
            Peer::Libtorrent(p)
        }
    }
}

/// A swarmd daemon on `host`: its defaults, no watch directory, no DHT.
fn lab_daemon(env: &TestEnv, host: &Host, name: &str) -> Daemon {
    let dirs = DaemonConfig {
        name: Some(name),
        watch_rescan_secs: None,
        listen_ip: host.ip,
        ..DaemonConfig::new("lab_swarm")
    }
    .write(env, free_tcp_port());
    let d = Daemon::start_with(
        env,
        &dirs,
        Swarmd::command(&[] as &[&str]).name(name).on_host(host),
    );
    wait_until(
        "the lab daemon to listen",
        Duration::from_secs(10),
        Duration::from_millis(20),
        || {
            host.enter(|| {
                std::net::TcpStream::connect(SocketAddr::from((host.ip, dirs.port))).is_ok()
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_tail()));
    d
}

/// A `torrent.show`-like line for a failure message.
pub fn describe(r: &SwarmResult) -> Value {
    json!({
        "super_seed": r.spec.super_seed,
        "t_min": r.spec.fluid_bound_secs(),
        "last_done": r.last_done().map(|d| d.as_secs_f64()),
        "seed_copies": r.seed_copies(),
        "seed_left": r.seed_left.map(|d| d.as_secs_f64()),
        "leechers": r.leechers.iter().map(|l| json!({
            "client": l.client.name(),
            "done": l.done.map(|d| d.as_secs_f64()),
            "down": l.downloaded,
            "up": l.uploaded,
            "uplink": l.uplink_bytes,
            "verified": l.verified.clone().err(),
        })).collect::<Vec<_>>(),
    })
}
