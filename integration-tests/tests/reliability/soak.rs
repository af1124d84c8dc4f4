//! A crash-resume soak: `kill -9` at random moments of a download, again and again, on the same
//! state directory; no verified piece is ever lost and the data ends up correct.

use std::time::{Duration, Instant};

use swarm_integration_tests::daemon::is_complete_seed;
use swarm_integration_tests::libtorrent::{seeded, LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;

use super::{config, Rng};

/// One round of the soak, as observed through the control socket.
#[derive(Debug, Default)]
struct Round {
    kill_after: Duration,
    /// `have_bytes` at the first observation after the start-up check, if the round got there.
    have_after_check: Option<u64>,
    /// The last `have_bytes` seen before the kill.
    have_at_kill: u64,
    /// `downloaded` grew by this much while we watched.
    downloaded: u64,
    state_at_kill: String,
}

/// `kill -9` at a random moment (uniform 0.3–2 s after the start) of a daemon downloading a
/// 256 MiB torrent from a libtorrent seeder throttled to 10 MiB/s (so that the download spans
/// all the rounds: at 32 MiB/s it is over after ~8 of them), 20 times, each time
/// restarting it on the same state directory; then it may finish. No piece that was verified
/// before a kill is missing after the restart's check, and the data ends up correct. Prints how
/// much was fetched twice (`docs/reliability.md` has the measured numbers).
///
/// `SWARM_IT_SOAK_ROUNDS=N` for a longer run, `SWARM_IT_SOAK_SEED` to replay the kill times.
#[test]
fn crash_resume_soak() {
    let rounds: usize = std::env::var("SWARM_IT_SOAK_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = Rng::from_env("SWARM_IT_SOAK_SEED");
    let env = TestEnv::new("rel-soak");
    let tracker = Opentracker::start(&env, &[]);
    let (payload, torrent, seeder) = seeded(
        &env,
        &tracker,
        Payload::single(&env.subdir("seed"), "soak.bin", 256 * MIB, 71),
        19,
        LtOptions {
            upload_limit: Some(10 * MIB),
            ..LtOptions::seed()
        },
    );
    let dirs = config().write(&env, free_tcp_port());
    let soak_start = Instant::now();
    let mut log: Vec<Round> = Vec::new();
    let mut ih = String::new();
    let mut floor = 0u64; // the most ever seen verified: never lost
    for round in 0..rounds {
        let kill_after = Duration::from_secs_f64(rng.range_f64(0.3, 2.0));
        let mut d = Daemon::start(&env, &dirs, &format!("daemon-{round:02}"));
        if round == 0 {
            ih = d.add(&torrent.path, None);
        }
        let r = watch_until_the_kill(&d, &ih, round, kill_after, &mut floor);
        d.kill();
        print_round(round, &r, torrent.total_len);
        log.push(r);
    }
    let soak_took = soak_start.elapsed();

    let d = Daemon::start(&env, &dirs, "daemon-final");
    let done = nothing_lost_and_complete(&d, &ih, floor);
    verify_download(&torrent, &payload, &dirs.downloads);
    report_refetched(&seeder, &torrent, &log, &done, rounds, soak_took, floor);
}

/// Watches a freshly started daemon's download through `torrent.show` every 25 ms until
/// `kill_after` from now; the first look after the start-up check must find at least `floor`
/// verified bytes (the most ever seen before), which it raises.
fn watch_until_the_kill(
    d: &Daemon,
    ih: &str,
    round: usize,
    kill_after: Duration,
    floor: &mut u64,
) -> Round {
    let started = Instant::now();
    let mut r = Round {
        kill_after,
        ..Round::default()
    };
    let mut first_downloaded = None;
    while started.elapsed() < kill_after {
        if let Ok(v) = d.show(ih) {
            let have = v["have_bytes"].as_u64().unwrap_or(0);
            let down = v["downloaded"].as_u64().unwrap_or(0);
            let state = v["state"].as_str().unwrap_or("?").to_string();
            if matches!(state.as_str(), "downloading" | "seeding") {
                if r.have_after_check.is_none() {
                    r.have_after_check = Some(have);
                    assert!(
                        have >= *floor,
                        "round {round}: {have} bytes verified after the restart's check, but \
                         {floor} had been verified before a kill: pieces were lost"
                    );
                }
                first_downloaded.get_or_insert(down);
                r.downloaded = down - first_downloaded.unwrap();
                r.have_at_kill = have;
                *floor = (*floor).max(have);
            }
            r.state_at_kill = state;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    r
}

fn print_round(round: usize, r: &Round, total: u64) {
    eprintln!(
        "round {round:2}: killed after {:4} ms ({:<11}) check found {:>9} have at kill {:>9} \
         downloaded this round {:>9}",
        r.kill_after.as_millis(),
        r.state_at_kill,
        r.have_after_check
            .map_or("-".to_string(), |h| (h / KIB).to_string() + "K"),
        r.have_at_kill / KIB,
        r.downloaded / KIB
    );
    if r.have_at_kill >= total {
        eprintln!("complete before the last round");
    }
}

/// After the last kill: the check finds at least `floor` verified bytes, and the download
/// completes. Returns the final `torrent.show`.
fn nothing_lost_and_complete(d: &Daemon, ih: &str, floor: u64) -> serde_json::Value {
    let after = d.wait_torrent(
        ih,
        "the check after the last kill",
        Duration::from_secs(30),
        |v| v["state"] == "downloading" || v["state"] == "seeding",
    );
    let have_after = after["have_bytes"].as_u64().unwrap();
    assert!(
        have_after >= floor,
        "after the last kill: {have_after} verified, but {floor} had been: pieces were lost"
    );
    d.wait_torrent(
        ih,
        "the download to complete after the soak",
        Duration::from_secs(60),
        is_complete_seed,
    )
}

/// How much the seeder sent beyond the payload (fetched twice because of the kills), printed;
/// it sent at least the payload.
fn report_refetched(
    seeder: &LibtorrentPeer,
    torrent: &Torrent,
    log: &[Round],
    done: &serde_json::Value,
    rounds: usize,
    soak_took: Duration,
    floor: u64,
) {
    let total = torrent.total_len;
    let seen_down: u64 = log.iter().map(|r| r.downloaded).sum::<u64>();
    let final_down = done["downloaded"].as_u64().unwrap_or(0);
    let uploaded = seeder
        .wait_status("its counters to settle", Duration::from_secs(5), |_| true)
        .total_payload_upload;
    let twice = uploaded.saturating_sub(total);
    eprintln!(
        "soak: {rounds} kills in {:.1}s; {} MiB verified before the last kill; the seeder sent \
         {:.1} MiB for a {} MiB payload: {:.1} MiB ({:.1}%) fetched twice; downloaded counters \
         seen during the rounds: {:.1} MiB, final `downloaded` {:.1} MiB",
        soak_took.as_secs_f64(),
        floor / MIB,
        uploaded as f64 / MIB as f64,
        total / MIB,
        twice as f64 / MIB as f64,
        twice as f64 * 100.0 / total as f64,
        seen_down as f64 / MIB as f64,
        final_down as f64 / MIB as f64,
    );
    assert!(
        uploaded >= total,
        "the seeder sent less than the payload ({uploaded} < {total})?"
    );
}
