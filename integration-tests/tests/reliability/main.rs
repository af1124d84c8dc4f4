//! Reliability: what swarmd promises when things go wrong, end to end with the real binaries
//! (`docs/reliability.md` states the guarantees and names these tests). One test binary, one
//! module per kind of trouble:
//!
//! 1. [`faults`]: crash containment through the daemon (fault-injection build): torrents, the
//!    announcer and disk jobs panic at random and the downloads still complete; a torrent that
//!    crashes in a loop is given up alone;
//! 2. [`hostile_peers`]: raw-TCP peers of our own that break the wire protocol in every way we
//!    could think of, against a `swarmd download --seed` seeder that must stay up, keep serving
//!    and keep its memory bounded;
//! 3. [`hostile_input`]: the hostile `.torrent` corpus of swarm-wire through the watch directory
//!    and `swarmctl add`, hostile magnet links, hostile control-socket requests, and a symlink
//!    planted in the save directory;
//! 4. [`restarts`]: each global service crashes once and the daemon keeps serving; a torrent
//!    restarted after a crash keeps the user's state; a fault aimed at one torrent stays there;
//! 5. [`soak`]: a crash-resume soak, `kill -9` at random moments of a download, again and again;
//! 6. [`full_disk`]: a full disk (a small tmpfs; needs root), and a resume that goes on at once;
//! 7. [`exposure`]: privilege and exposure: the control socket's mode, no TCP control port, the
//!    unit file;
//! 8. [`fd_limit`]: a daemon under `ulimit -n 256` flooded with 1 000 connections keeps serving;
//! 9. [`churn`]: the churn soak, half an hour of peers, a tracker and data misbehaving (ignored:
//!    `make soak` runs it).
//!
//! Everything runs on 127.0.0.1 with the DHT off (on only for the DHT restart). A missing tool FAILS a test, never skips it.
//! The daemons are the test library's [`Daemon`] with the [`DaemonConfig::fast`] preset. The soak
//! is tunable for a longer run: `SWARM_IT_SOAK_ROUNDS` (default 20) and `SWARM_IT_SOAK_SEED` (the
//! seed of the kill times; printed by every run).

mod churn;
mod exposure;
mod faults;
mod fd_limit;
mod full_disk;
mod hostile_input;
mod hostile_peers;
mod restarts;
mod soak;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;

const POLL: Duration = Duration::from_millis(100);

/// The config of these tests' daemons (`<env>/swarmd.toml`, see [`DaemonConfig::fast`]).
fn config() -> DaemonConfig<'static> {
    DaemonConfig::fast("integration-tests/tests/reliability")
}

/// A daemon of the normal build, named `daemon`, on a fresh port, `extra` appended to its config.
fn start_daemon(env: &TestEnv, extra: &str) -> (Daemon, DaemonDirs) {
    let dirs = DaemonConfig { extra, ..config() }.write(env, free_tcp_port());
    (Daemon::start(env, &dirs, "daemon"), dirs)
}

/// A daemon of the fault-injection build with `SWARMD_FAULTS=faults`, on a fresh port.
fn start_faulty_daemon(env: &TestEnv, name: &str, faults: &str) -> (Daemon, DaemonDirs) {
    let dirs = config().write(env, free_tcp_port());
    (Daemon::start_faulty(env, &dirs, name, faults), dirs)
}

/// A second libtorrent seeder for `torrent` (data in `dir`) that dials `daemon` as soon as it
/// starts: a fresh peer for a torrent that was resumed after an error. (The torrent itself
/// re-dials the peers it dropped only after 60 s, see `resume_after_error_redials_at_once`, and a
/// libtorrent seeder told to `connect` to a peer that just dropped it does not always do so.)
fn dialling_seeder(
    env: &TestEnv,
    torrent: &Torrent,
    dir: &Path,
    daemon: SocketAddr,
) -> LibtorrentPeer {
    LibtorrentPeer::spawn(
        env,
        &torrent.path,
        dir,
        LtOptions {
            connect: vec![daemon],
            no_announce: true,
            name: Some(format!("lt-redial-{}", torrent.name)),
            ..LtOptions::seed()
        },
    )
}

/// A tiny xorshift generator: reproducible randomness from a printed seed.
struct Rng(u64);

impl Rng {
    fn from_env(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    ^ u64::from(std::process::id())
            });
        eprintln!("{var}={seed}");
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi)`.
    fn range_f64(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
