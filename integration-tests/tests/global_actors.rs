//! The engine's global actors seen from outside, against real libtorrent peers, all on 127.0.0.1:
//!
//! 1. the **RateLimiter**: a global download limit from the daemon's config holds a 40 MiB
//!    download to at least 9 s at 4 MiB/s, and `swarmctl limits --down` changes it at run time
//!    (1 MiB/s, then unlimited);
//! 2. the **Choker**: with 2 upload slots per torrent (the optimistic one included), swarmd never
//!    unchokes more than 2 of four libtorrent leechers at once, the leechers never see more than
//!    3 (a choke reaches a peer after the data queued before it), and the optimistic slot
//!    rotates over all four;
//! 3. **per-peer bounds**: raw peers that flood requests and never read do not grow swarmd's
//!    RSS by more than 16 MiB, and swarmd keeps serving a well-behaved leecher;
//! 4. **BEP 6 and BEP 11 with libtorrent**: libtorrent logs HAVE_ALL and ALLOWED_FAST from a
//!    swarmd seeder; PEX from swarmd introduces two libtorrent leechers to each other, and swarmd
//!    learns peers from libtorrent's PEX (`swarmctl peers --json` shows source `pex`).
//!
//! Every daemon runs with its own HOME (so several can run in one test), `swarm_engine=debug`
//! logs, no DHT and no watch directory; every process dies with its guard.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_integration_tests::daemon::is_complete_seed as is_complete;
use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::wire::{self, Frame, RawPeer};

const POLL: Duration = Duration::from_millis(100);
/// Requests the choked flooder writes (17 bytes each, ~16 MiB).
const CHOKED_FLOOD: usize = 1_000_000;
/// ut_metadata requests the metadata flooder writes (~31 bytes each, answered with ~10 KiB).
const METADATA_FLOOD: usize = 5_000;

// -----------------------------------------------------------------------------------------------
// Helpers: daemons with their own homes, seeding, leechers
// -----------------------------------------------------------------------------------------------

/// Writes `<env>/<name>.toml` (127.0.0.1:free port, no DHT, no watch dir, explicit dirs and a
/// home of its own, so several daemons can run in one test; `extra` appended, e.g. a `[limits]`
/// section), starts the daemon and waits for its control socket.
fn start_daemon(env: &TestEnv, name: &str, extra: &str) -> Daemon {
    let dirs = DaemonConfig {
        name: Some(name),
        watch_rescan_secs: None,
        extra,
        ..DaemonConfig::fast("integration-tests/tests/global_actors.rs")
    }
    .write(env, free_tcp_port());
    Daemon::start(env, &dirs, name)
}

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number `{key}` in {v}"))
}

/// A daemon seeding `payload` (its data already in `payload.dir`): added, checked, seeding.
fn seed_in_daemon(d: &Daemon, torrent: &Torrent, payload: &Payload) -> String {
    let ih = d.add(&torrent.path, Some(&payload.dir));
    d.wait_torrent(
        &ih,
        "the daemon to check its copy and seed",
        Duration::from_secs(60),
        is_complete,
    );
    ih
}

/// `swarmctl peers IH --json` against `d`.
fn swarmctl_peers(d: &Daemon, ih: &str) -> Vec<Value> {
    match d.ctl_json(&["peers", ih]) {
        Value::Array(a) => a,
        v => panic!("swarmctl peers printed no list: {v}"),
    }
}

/// A libtorrent leecher that dials only `to` (no tracker), with a download limit.
fn lt_leecher(
    env: &TestEnv,
    torrent: &Torrent,
    name: &str,
    to: SocketAddr,
    download_limit: Option<u64>,
    pex: bool,
    peer_log: bool,
) -> LibtorrentPeer {
    LibtorrentPeer::spawn(
        env,
        &torrent.path,
        &env.subdir(name),
        LtOptions {
            connect: vec![to],
            no_announce: true,
            no_pex: !pex,
            download_limit,
            peer_log,
            name: Some(name.to_string()),
            ..LtOptions::leech()
        },
    )
}

// -----------------------------------------------------------------------------------------------
// 1. Global download limit from the config, changed at run time
// -----------------------------------------------------------------------------------------------

/// `download_kib_s = 4096` holds a 40 MiB download from a libtorrent seeder to ≥ 9 s: the
/// limiter grants at most `rate · t + burst` bytes in any `t` (burst = one second of rate, the
/// bucket starts full), so the last request can go out at 9 s at the earliest. `swarmctl limits
/// --down 1M` then slows a second download to about 1 MiB/s (≤ 2 MiB/s over 5 s), and `--down 0`
/// lets it finish at once.
#[test]
fn global_download_limit_and_runtime_change() {
    let env = TestEnv::new("global-rate-limit");
    let tracker = Opentracker::start(&env, &[]);
    let url = tracker.announce_url();
    let p1 = Payload::single(&env.subdir("seed1"), "forty.bin", 40 * MIB, 401);
    let t1 = p1.make_torrent(&env.path().join("forty.torrent"), 18, &[&url]);
    let p2 = Payload::single(&env.subdir("seed2"), "sixteen.bin", 16 * MIB, 402);
    let t2 = p2.make_torrent(&env.path().join("sixteen.torrent"), 18, &[&url]);
    tracker.allow(t1.info_hash);
    tracker.allow(t2.info_hash);
    let _s1 = LibtorrentPeer::spawn(
        &env,
        &t1.path,
        &p1.dir,
        LtOptions {
            name: Some("lt-seed1".into()),
            ..LtOptions::seed()
        },
    );
    let _s2 = LibtorrentPeer::spawn(
        &env,
        &t2.path,
        &p2.dir,
        LtOptions {
            name: Some("lt-seed2".into()),
            ..LtOptions::seed()
        },
    );
    for t in [&t1, &t2] {
        tracker.wait_seeder(t.info_hash, Duration::from_secs(30));
    }

    let d = start_daemon(&env, "swarmd", "[limits]\ndownload_kib_s = 4096\n");
    let limits = d.ctl_json(&["limits"]);
    assert_eq!(
        limits["download"],
        json!(4 * MIB),
        "the configured limit is not in force: {limits}"
    );

    forty_mib_take_at_least_9_s(&env, &d, &t1, &p1);
    let (ih2, out2) = runtime_limit_slows_a_download(&env, &d, &t2);
    lifted_limit_lets_it_finish(&d, &ih2, &t2, &p2, &out2);
}

/// 40 MiB at the configured 4 MiB/s take at least 9 s, and arrive intact.
fn forty_mib_take_at_least_9_s(env: &TestEnv, d: &Daemon, t1: &Torrent, p1: &Payload) {
    // 40 MiB at 4 MiB/s. The clock starts before the add: a lower bound can only get easier to
    // meet by including the set-up, never harder.
    let out1 = env.subdir("out1");
    let started = Instant::now();
    let ih1 = d.add(&t1.path, Some(&out1));
    let first_byte = std::cell::Cell::new(None);
    d.wait_torrent(
        &ih1,
        "the 40 MiB download at 4 MiB/s",
        Duration::from_secs(90),
        |v| {
            if first_byte.get().is_none() && v["downloaded"].as_u64().unwrap_or(0) > 0 {
                first_byte.set(Some(Instant::now()));
            }
            is_complete(v)
        },
    );
    let took = started.elapsed();
    if let Some(t) = first_byte.get() {
        eprintln!("first byte seen {:?} after the add", t - started);
    }
    eprintln!("40 MiB at a 4 MiB/s global limit took {took:?}");
    assert!(
        took >= Duration::from_secs(9),
        "40 MiB arrived in {took:?} under a 4 MiB/s limit (at least 9 s expected)\n{}",
        d.log_tail()
    );
    verify_download(t1, p1, &out1);
}

/// `swarmctl limits --down 1M` at run time: a second download runs at ≤ 2 MiB/s (and not
/// stalled) over 5 s. Returns it (info-hash, save directory).
fn runtime_limit_slows_a_download(
    env: &TestEnv,
    d: &Daemon,
    t2: &Torrent,
) -> (String, std::path::PathBuf) {
    // Down to 1 MiB/s at run time, then a second download: ~5 s of it, well below 4 MiB/s.
    let limits = d.ctl_json(&["limits", "--down", "1M"]);
    assert_eq!(limits["download"], json!(MIB), "limits --down 1M: {limits}");
    let out2 = env.subdir("out2");
    let ih2 = d.add(&t2.path, Some(&out2));
    let v = d.wait_torrent(
        &ih2,
        "the second download to start",
        Duration::from_secs(30),
        |v| v["downloaded"].as_u64().unwrap_or(0) > 0,
    );
    let (t_a, bytes_a) = (Instant::now(), u64_of(&v, "downloaded"));
    std::thread::sleep(Duration::from_secs(5));
    let v = d.show(&ih2).unwrap();
    let (t_b, bytes_b) = (Instant::now(), u64_of(&v, "downloaded"));
    let rate = (bytes_b - bytes_a) as f64 / (t_b - t_a).as_secs_f64();
    eprintln!(
        "at a 1 MiB/s limit: {} bytes in {:?} = {:.0} KiB/s",
        bytes_b - bytes_a,
        t_b - t_a,
        rate / 1024.0
    );
    assert!(
        rate <= 2.0 * MIB as f64,
        "{rate:.0} B/s over 5 s with a 1 MiB/s limit (≤ 2 MiB/s expected)\n{}",
        d.log_tail()
    );
    assert!(
        rate >= 128.0 * KIB as f64,
        "only {rate:.0} B/s with a 1 MiB/s limit: the download stalled\n{}",
        d.log_tail()
    );
    assert!(
        !is_complete(&v),
        "16 MiB finished within 5 s under a 1 MiB/s limit"
    );

    (ih2, out2)
}

/// `--down 0` lifts the limit: the rest of the second download comes at once, intact.
fn lifted_limit_lets_it_finish(
    d: &Daemon,
    ih2: &str,
    t2: &Torrent,
    p2: &Payload,
    out2: &std::path::Path,
) {
    // Lifted: the rest comes at loopback speed.
    let limits = d.ctl_json(&["limits", "--down", "0"]);
    assert!(
        limits["download"].is_null(),
        "limits --down 0 left a limit: {limits}"
    );
    let lifted = Instant::now();
    d.wait_torrent(
        ih2,
        "the second download to finish once the limit is lifted",
        Duration::from_secs(30),
        is_complete,
    );
    eprintln!(
        "the rest of the 16 MiB took {:?} unlimited",
        lifted.elapsed()
    );
    verify_download(t2, p2, out2);
}

// -----------------------------------------------------------------------------------------------
// 2. Upload slots and the optimistic unchoke
// -----------------------------------------------------------------------------------------------

/// `upload_slots_per_torrent = 2`, four libtorrent leechers at 512 KiB/s each, sampled every
/// second. From libtorrent's side (`remote_choked` of its connection to swarmd) at most 2 + 1
/// are unchoked at once: a choke travels behind the piece data already queued for the peer, so
/// for a few seconds after a rotation the old and the new holder both look unchoked. From
/// swarmd's side (`torrent.peers`, `am_choking`) at most 2, the optimistic slot included. And
/// each of the four is unchoked at some point within 100 s (the optimistic slot rotates every
/// 30 s; rounds every 10 s).
#[test]
fn upload_slots_and_optimistic_rotation() {
    let env = TestEnv::new("global-choker");
    let payload = Payload::single(&env.subdir("seed"), "slots.bin", 48 * MIB, 402);
    let torrent = payload.make_torrent(&env.path().join("slots.torrent"), 18, &[]);
    let d = start_daemon(
        &env,
        "swarmd",
        "[limits]\nupload_slots_per_torrent = 2\nupload_slots_global = 20\n",
    );
    let ih = seed_in_daemon(&d, &torrent, &payload);

    let leechers: Vec<LibtorrentPeer> = (0..4)
        .map(|i| {
            lt_leecher(
                &env,
                &torrent,
                &format!("lt-leech{i}"),
                d.addr(),
                Some(512 * KIB),
                false,
                false,
            )
        })
        .collect();
    for l in &leechers {
        l.wait_status(
            "connected to swarmd and interested",
            Duration::from_secs(20),
            |s| {
                s.peer_by_port(d.port())
                    .is_some_and(|p| p.flags.interesting)
            },
        );
    }

    let seen = sample_unchokes_every_second(&d, &ih, &leechers);
    every_leecher_was_unchoked(&d, &seen, leechers.len());
}

/// What the sampling saw: the most unchoked at once from each side, who was ever unchoked and
/// when all were, and one line per second.
struct Unchokes {
    start: Instant,
    max_lt: usize,
    max_swarmd: usize,
    ever: BTreeSet<usize>,
    covered_at: Option<Duration>,
    timeline: Vec<String>,
}

/// Every second (for 45 to 100 s): who libtorrent says swarmd unchokes, and how many swarmd says
/// it unchokes; never more than 3 and 2.
fn sample_unchokes_every_second(d: &Daemon, ih: &str, leechers: &[LibtorrentPeer]) -> Unchokes {
    let start = Instant::now();
    let (mut max_lt, mut max_swarmd) = (0, 0);
    let mut ever: BTreeSet<usize> = BTreeSet::new();
    let mut covered_at = None;
    let mut timeline = Vec::new();
    while start.elapsed() < Duration::from_secs(100) {
        let tick = Instant::now();
        let mut unchoked = Vec::new();
        for (i, l) in leechers.iter().enumerate() {
            let st = l.status();
            if st
                .peer_by_port(d.port())
                .is_some_and(|p| !p.flags.remote_choked)
            {
                unchoked.push(i);
            }
        }
        let ours = d.peers(ih);
        let ours_unchoked: Vec<String> = ours
            .iter()
            .filter(|p| p["am_choking"] == false)
            .map(|p| {
                let addr = p["addr"].as_str().unwrap_or("?");
                format!("{addr}@{}KiB/s", u64_of(p, "upload_rate") / 1024)
            })
            .collect();
        ever.extend(unchoked.iter().copied());
        if ever.len() == leechers.len() && covered_at.is_none() {
            covered_at = Some(start.elapsed());
        }
        max_lt = max_lt.max(unchoked.len());
        max_swarmd = max_swarmd.max(ours_unchoked.len());
        timeline.push(format!(
            "{:>3}s libtorrent: {unchoked:?}  swarmd: {ours_unchoked:?}",
            start.elapsed().as_secs()
        ));
        assert!(
            unchoked.len() <= 3 && ours_unchoked.len() <= 2,
            "too many unchoked at once with 2 upload slots (optimistic included)\n{}\n{}",
            timeline.join("\n"),
            d.log_tail()
        );
        if covered_at.is_some() && start.elapsed() >= Duration::from_secs(45) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(tick.elapsed()));
    }
    Unchokes {
        start,
        max_lt,
        max_swarmd,
        ever,
        covered_at,
        timeline,
    }
}

/// Each of the `n` leechers was unchoked at some point, and at some point two at once.
fn every_leecher_was_unchoked(d: &Daemon, seen: &Unchokes, n: usize) {
    let Unchokes { ever, timeline, .. } = seen;
    let (max_lt, max_swarmd, covered_at) = (seen.max_lt, seen.max_swarmd, seen.covered_at);
    eprintln!("unchoked, every second:\n{}", timeline.join("\n"));
    eprintln!(
        "most unchoked at once: {max_lt} (libtorrent's view), {max_swarmd} (swarmd's); all four \
         unchoked at some point after {covered_at:?}"
    );
    assert_eq!(
        ever.len(),
        n,
        "the optimistic unchoke did not reach every leecher in {:?}: unchoked at some point \
         {ever:?}\n{}\n{}",
        seen.start.elapsed(),
        timeline.join("\n"),
        d.log_tail()
    );
    assert!(max_lt >= 2, "never two leechers unchoked at once");
}

// -----------------------------------------------------------------------------------------------
// 3. A request flood from a peer that never reads
// -----------------------------------------------------------------------------------------------

/// A raw peer of the test library: a handshake with the fast-extension bit (and the
/// extension-protocol bit when `extensions`), then whatever frames the test writes. It never
/// reads what swarmd answers (but for [`exchange_extension_handshakes`]).
fn never_reading_peer(to: SocketAddr, info_hash: &InfoHash, extensions: bool) -> RawPeer {
    let mut p =
        RawPeer::connect(to).unwrap_or_else(|e| panic!("raw peer: connecting to {to}: {e}"));
    p.send(&wire::handshake(info_hash, true, extensions))
        .expect("raw peer: sending the handshake");
    p
}

/// The one read the metadata flooder does: swarmd's handshake and frames up to its extension
/// handshake, for the message id swarmd wants for `ut_metadata`. Then it sends its own
/// extension handshake (`ut_metadata` = 3), so swarmd answers metadata requests.
fn exchange_extension_handshakes(p: &mut RawPeer, info_hash: &InfoHash) -> u8 {
    let read = Duration::from_secs(10);
    p.read_handshake(info_hash, read)
        .expect("raw peer: reading swarmd's handshake");
    loop {
        let frame = p
            .next(read)
            .expect("raw peer: reading a frame")
            .expect("raw peer: no frame from swarmd within 10 s");
        let Frame::Msg(wire::EXTENDED, body) = frame else {
            continue;
        };
        if body.first() != Some(&0) {
            continue;
        }
        let key = b"11:ut_metadatai";
        let at = body
            .windows(key.len())
            .position(|w| w == key)
            .unwrap_or_else(|| {
                panic!(
                    "no ut_metadata in swarmd's extension handshake: {:?}",
                    String::from_utf8_lossy(&body[1..])
                )
            });
        let digits: String = body[at + key.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .map(|&b| b as char)
            .collect();
        let id = digits.parse().expect("ut_metadata id");
        p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai3eee"))
            .expect("raw peer: writing");
        return id;
    }
}

/// Writes `n` ut_metadata requests for piece 0 (each answered with the whole info dictionary,
/// up to 16 KiB). Returns how many were written before swarmd hung up, or `n`.
fn flood_metadata_requests(p: &mut RawPeer, their_id: u8, n: usize) -> usize {
    let mut payload = vec![their_id];
    payload.extend_from_slice(b"d8:msg_typei0e5:piecei0ee");
    let one = wire::msg(wire::EXTENDED, &payload);
    let mut sent = 0;
    while sent < n {
        let batch = (n - sent).min(1024);
        if let Err(e) = p.send(&one.repeat(batch)) {
            eprintln!("raw peer: write failed after {sent} metadata requests: {e}");
            return sent;
        }
        sent += batch;
    }
    sent
}

/// Writes `n` Request frames for valid blocks of `torrent`, cycling over every block of the
/// pieces `pieces` lets through. Returns how many were written before the connection failed
/// (swarmd hung up), or `n`.
fn flood_requests(
    p: &mut RawPeer,
    torrent: &Torrent,
    n: usize,
    pieces: impl Fn(u32) -> bool,
) -> usize {
    let block = 16 * 1024u64;
    let mut blocks = Vec::new();
    for i in (0..torrent.num_pieces()).filter(|&i| pieces(i as u32)) {
        let len = torrent.piece_len(i);
        let mut b = 0;
        while b < len {
            blocks.push((i as u32, b as u32, block.min(len - b) as u32));
            b += block;
        }
    }
    assert!(!blocks.is_empty(), "no piece to request");
    let mut buf = Vec::with_capacity(17 * 4096);
    let mut sent = 0;
    while sent < n {
        buf.clear();
        let batch = (n - sent).min(4096);
        for k in sent..sent + batch {
            let (index, begin, length) = blocks[k % blocks.len()];
            buf.extend_from_slice(&wire::block_msg(wire::REQUEST, index, begin, length));
        }
        if let Err(e) = p.send(&buf) {
            eprintln!("raw peer: write failed after {sent} requests: {e}");
            return sent;
        }
        sent += batch;
    }
    sent
}

/// The first `k` pieces of the BEP 6 allowed-fast sequence for a peer at 127.0.0.1 (computed
/// here, independently of swarmd): `x = SHA-1(ip & 0xFFFFFF00 ‖ info_hash)`, each 4-byte
/// big-endian word of `x` modulo the piece count if new, then `x = SHA-1(x)`. Any set of size
/// up to `k` that swarmd sends is a prefix of this.
fn allowed_fast_prefix(info_hash: &InfoHash, num_pieces: u32, k: usize) -> Vec<u32> {
    let k = k.min(num_pieces as usize);
    let mut seed = vec![127, 0, 0, 0];
    seed.extend_from_slice(&info_hash.0);
    let mut x = sha1_smol::Sha1::from(&seed).digest().bytes();
    let mut set = Vec::new();
    while set.len() < k {
        for w in x.chunks_exact(4) {
            let i = u32::from_be_bytes([w[0], w[1], w[2], w[3]]) % num_pieces;
            if !set.contains(&i) && set.len() < k {
                set.push(i);
            }
        }
        x = sha1_smol::Sha1::from(x).digest().bytes();
    }
    set
}

/// Max of a few RSS samples over `over` (the allocator's high-water mark, not a lucky low).
fn rss_max(d: &Daemon, over: Duration) -> u64 {
    let end = Instant::now() + over;
    let mut max = d.rss_bytes();
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(250));
        max = max.max(d.rss_bytes());
    }
    max
}

/// One phase of the flood test: what was done and swarmd's RSS (max of a few samples) after.
struct Phase {
    what: String,
    rss: u64,
    kept: Option<bool>,
}

impl Phase {
    /// 3 s after a flood by `peer`: swarmd's RSS (max over 1 s) and whether it kept the peer.
    fn after_flood(d: &Daemon, ih: &str, what: String, peer: &RawPeer) -> Phase {
        std::thread::sleep(Duration::from_secs(3));
        let rss = rss_max(d, Duration::from_secs(1));
        let a = peer.local_addr().to_string();
        let kept = d.peers(ih).iter().any(|v| v["addr"] == a.as_str());
        Phase {
            what,
            rss,
            kept: Some(kept),
        }
    }
}

/// A peer that sends 10 000 requests and never reads our replies grows swarmd's RSS by at most
/// 16 MiB; swarmd keeps the connection or hangs up (more than 500 requests queued), both fine.
/// Two more peers that never read make swarmd *answer* without bound unless it bounds what it
/// buffers per peer: one floods requests while choked (each answered by a BEP 6 Reject), one
/// floods `ut_metadata` requests (each answered by the whole info dictionary). Together, still
/// at most 16 MiB. Afterwards swarmd still serves a libtorrent leecher to completion.
#[test]
fn request_flood_without_reading_is_bounded() {
    let env = TestEnv::new("global-flood");
    // 32 KiB pieces: 512 of them, so the info dictionary (the ut_metadata answer) is ~10 KiB.
    let payload = Payload::single(&env.subdir("seed"), "flood.bin", 16 * MIB, 403);
    let torrent = payload.make_torrent(&env.path().join("flood.torrent"), 15, &[]);
    let d = start_daemon(&env, "swarmd", "");
    let ih = seed_in_daemon(&d, &torrent, &payload);
    let baseline = warmed_up_baseline(&env, &d, &torrent);
    let mut phases = Vec::new();

    // The brief's peer: handshake, interested, 10 000 requests for valid blocks, never a read.
    let mut reader_less = never_reading_peer(d.addr(), &torrent.info_hash, false);
    reader_less
        .send(&wire::msg(wire::INTERESTED, &[]))
        .expect("raw peer: interested");
    let sent = flood_requests(&mut reader_less, &torrent, 10_000, |_| true);
    let what = format!("interested peer, {sent} requests");
    phases.push(Phase::after_flood(&d, &ih, what, &reader_less));

    // Never interested, so always choked: every request outside its allowed-fast set (served
    // while choked, BEP 6) is answered with a Reject frame it never reads.
    let allowed = allowed_fast_prefix(&torrent.info_hash, torrent.num_pieces() as u32, 20);
    let mut choked = never_reading_peer(d.addr(), &torrent.info_hash, false);
    let sent = flood_requests(&mut choked, &torrent, CHOKED_FLOOD, |i| {
        !allowed.contains(&i)
    });
    let what = format!(
        "choked peer, {sent} requests ({} MiB on the wire)",
        sent * 17 / MIB as usize
    );
    phases.push(Phase::after_flood(&d, &ih, what, &choked));

    // ut_metadata requests: tiny, each answered with the info dictionary.
    let mut meta = never_reading_peer(d.addr(), &torrent.info_hash, true);
    let their_id = exchange_extension_handshakes(&mut meta, &torrent.info_hash);
    let sent = flood_metadata_requests(&mut meta, their_id, METADATA_FLOOD);
    let what = format!(
        "ut_metadata peer, {sent} requests for a {} byte info dictionary",
        torrent.info_bytes.len()
    );
    phases.push(Phase::after_flood(&d, &ih, what, &meta));

    // Still serving: a well-behaved leecher completes while the flooders hang on.
    let out = env.subdir("lt-after");
    let after = lt_leecher(&env, &torrent, "lt-after", d.addr(), None, false, false);
    after.wait_finished(Duration::from_secs(60));
    verify_download(&torrent, &payload, &out);
    phases.push(Phase {
        what: "a libtorrent leecher completed".into(),
        rss: rss_max(&d, Duration::from_secs(1)),
        kept: None,
    });
    rss_growth_stays_under_16_mib(&d, baseline, &phases);
    drop((reader_less, choked, meta));
}

/// Warm up: one full upload fills the read cache and the allocator's pools, so the baseline is
/// a daemon that has served this torrent, not an idle one. Returns that baseline RSS.
fn warmed_up_baseline(env: &TestEnv, d: &Daemon, torrent: &Torrent) -> u64 {
    {
        let warm = lt_leecher(env, torrent, "lt-warmup", d.addr(), None, false, false);
        warm.wait_finished(Duration::from_secs(60));
    }
    std::thread::sleep(Duration::from_secs(2));
    rss_max(d, Duration::from_secs(1))
}

/// Prints the phases, then: the first flood grew the RSS by at most 16 MiB, and so did all of
/// them together.
fn rss_growth_stays_under_16_mib(d: &Daemon, baseline: u64, phases: &[Phase]) {
    let mut report = format!("swarmd RSS baseline {} KiB\n", baseline / 1024);
    let mut prev = baseline;
    for p in phases {
        report += &format!(
            "  after {}: {} KiB ({:+} KiB in this phase, {:+} KiB in all){}\n",
            p.what,
            p.rss / 1024,
            (p.rss as i64 - prev as i64) / 1024,
            (p.rss as i64 - baseline as i64) / 1024,
            match p.kept {
                Some(true) => ", connection kept",
                Some(false) => ", disconnected",
                None => "",
            }
        );
        prev = p.rss;
    }
    eprint!("{report}");
    for l in d.log_lines("peer connection ends") {
        eprintln!("{l}");
    }
    let first = phases[0].rss.saturating_sub(baseline);
    assert!(
        first <= 16 * MIB,
        "10 000 requests from a peer that never reads grew swarmd's RSS by {} KiB\n{report}{}",
        first / 1024,
        d.log_tail()
    );
    let worst = phases
        .iter()
        .map(|p| p.rss)
        .max()
        .unwrap()
        .saturating_sub(baseline);
    assert!(
        worst <= 16 * MIB,
        "peers that never read made swarmd buffer {} KiB (RSS growth; the per-peer write bound \
         is 1 MiB): swarmd queues its answers (Reject, ut_metadata data) without bound\n{report}",
        worst / 1024,
    );
}

// -----------------------------------------------------------------------------------------------
// 4. Fast extension and PEX with libtorrent
// -----------------------------------------------------------------------------------------------

/// Lines of a libtorrent peer log about the connection to `port`.
fn log_for_port(log: &str, port: u16) -> Vec<&str> {
    let prefix = format!("127.0.0.1:{port} ");
    log.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// (a) BEP 6: swarmd seeding → a libtorrent leecher receives HAVE_ALL and ALLOWED_FAST, and sees
/// swarmd as a seed that speaks the extension protocol.
/// (b) BEP 11: two libtorrent leechers A and B that only know swarmd are introduced to each other
/// by swarmd's PEX (a peer whose source is `pex`, and A connected to B).
/// (c) BEP 11 the other way: a second swarmd that only knows A learns swarmd's seeder and B from
/// libtorrent's PEX (`swarmctl peers --json`: source `pex`).
#[test]
fn fast_extension_and_pex_with_libtorrent() {
    let env = TestEnv::new("global-fast-pex");
    let payload = Payload::single(&env.subdir("seed"), "pex.bin", 32 * MIB, 404);
    let torrent = payload.make_torrent(&env.path().join("pex.torrent"), 18, &[]);
    let s = start_daemon(&env, "swarmd-seed", "");
    seed_in_daemon(&s, &torrent, &payload);

    // Rate-limited, so that they are still leeching (and talking PEX) a minute from now.
    let a = lt_leecher(
        &env,
        &torrent,
        "lt-a",
        s.addr(),
        Some(256 * KIB),
        true,
        true,
    );
    let b = lt_leecher(
        &env,
        &torrent,
        "lt-b",
        s.addr(),
        Some(256 * KIB),
        true,
        true,
    );

    swarmd_speaks_the_fast_extension(&a, &s);
    swarmd_pex_introduces_a_and_b(&a, &b, &s);
    swarmd_learns_peers_from_libtorrent_pex(&env, &torrent, &a, &s, &b);
}

/// (a) The fast extension, from A's side: swarmd is a seed with extensions, and A's peer log
/// has HAVE_ALL, ALLOWED_FAST and the extension handshake from it.
fn swarmd_speaks_the_fast_extension(a: &LibtorrentPeer, s: &Daemon) {
    let sp = a.wait_peer(
        "connected to swarmd, seen as a seed with extensions",
        Duration::from_secs(20),
        |p| p.port == s.port() && p.flags.seed && p.flags.supports_extensions,
    );
    eprintln!("libtorrent A sees swarmd as {sp:?}");
    let fast = wait_for(
        "HAVE_ALL, ALLOWED_FAST and the extension handshake from swarmd in A's peer log",
        Duration::from_secs(20),
        POLL,
        || {
            let log = a.peer_log();
            let lines = log_for_port(&log, s.port());
            let has = |m: &str| lines.iter().any(|l| l.contains(m));
            if has("<== HAVE_ALL") && has("<== ALLOWED_FAST") && has("<== EXTENDED_HANDSHAKE") {
                Ok(lines.iter().map(|l| l.to_string()).collect::<Vec<_>>())
            } else {
                Err(lines
                    .iter()
                    .take(30)
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        },
    )
    .map(|(v, _)| v)
    .unwrap_or_else(|e| panic!("{e}\n{}", s.log_tail()));
    let allowed: Vec<&String> = fast.iter().filter(|l| l.contains("ALLOWED_FAST")).collect();
    eprintln!(
        "A's log of swarmd: {} ALLOWED_FAST, e.g. {:?}",
        allowed.len(),
        allowed.first()
    );
}

/// (b) swarmd's PEX introduces A and B: one of them has a peer from `pex`, and they are
/// connected to each other.
fn swarmd_pex_introduces_a_and_b(a: &LibtorrentPeer, b: &LibtorrentPeer, s: &Daemon) {
    let started = Instant::now();
    let (st, _) = wait_for(
        "libtorrent A to learn of B through PEX and connect to it",
        Duration::from_secs(80),
        Duration::from_millis(250),
        || {
            let (sa, sb) = (a.status(), b.status());
            let pex_a = sa.peers.iter().any(|p| p.source.iter().any(|x| x == "pex"));
            let pex_b = sb.peers.iter().any(|p| p.source.iter().any(|x| x == "pex"));
            // A dialled B (B's listen port), or B dialled A.
            let a_to_b = sa.peer_by_port(b.port()).is_some() || sb.peer_by_port(a.port()).is_some();
            if (pex_a || pex_b) && a_to_b {
                Ok((sa, sb))
            } else {
                Err(format!("A: {sa}\nB: {sb}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", s.log_tail()));
    eprintln!(
        "PEX from swarmd introduced A and B after {:?}: A's peers {:?}",
        started.elapsed(),
        st.0.peers
            .iter()
            .map(|p| (p.addr.clone(), p.source.clone()))
            .collect::<Vec<_>>()
    );
}

/// (c) swarmd learns from libtorrent's PEX: a second daemon, dialled by A only, lists a peer
/// whose source is `pex` (`swarmctl peers --json`).
fn swarmd_learns_peers_from_libtorrent_pex(
    env: &TestEnv,
    torrent: &Torrent,
    a: &LibtorrentPeer,
    s: &Daemon,
    b: &LibtorrentPeer,
) {
    let l = start_daemon(env, "swarmd-leech", "");
    let out = l.dirs.downloads.join("pex-leech");
    let ih = l.add(&torrent.path, Some(&out));
    l.wait_torrent(
        &ih,
        "the torrent to be live",
        Duration::from_secs(20),
        |v| v["state"] == "downloading",
    );
    a.connect(l.addr());
    let started = Instant::now();
    let (peers, _) = wait_for(
        "the second swarmd to list a peer with source `pex` (from libtorrent A's PEX)",
        Duration::from_secs(80),
        Duration::from_millis(250),
        || {
            let peers = swarmctl_peers(&l, &ih);
            if peers.iter().any(|p| p["source"] == "pex") {
                Ok(peers)
            } else {
                Err(format!("{peers:?}"))
            }
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", l.log_tail()));
    let summary: BTreeMap<String, String> = peers
        .iter()
        .map(|p| {
            (
                p["addr"].as_str().unwrap_or("?").to_string(),
                format!("{} {}", p["source"], p["client"]),
            )
        })
        .collect();
    eprintln!(
        "swarmd learnt through libtorrent's PEX after {:?}: {summary:#?}",
        started.elapsed()
    );
    // Which address libtorrent advertises for a peer depends on which of its connections to
    // that peer it kept (a listen port, or the port of a connection the peer dialled): what
    // matters here is that swarmd took peers from libtorrent's PEX and connected to them.
    let _known = [s.port(), b.port()];
    assert!(
        peers.iter().any(|p| p["source"] == "pex"),
        "swarmd learnt no peer through libtorrent's PEX: {summary:#?}"
    );
}
