//! The clients a benchmark run starts, as leechers or seeders, on top of the test-support
//! drivers (`swarm_integration_tests::{swarmd, libtorrent, aria2}`), plus a small rqbit driver.
//!
//! Completion of a leecher ("detect"):
//! * swarmd: its progress line reports `seeding` (`log`), or it exits 0 (`exit`);
//! * libtorrent: the driver's `status.json` says finished; the time is libtorrent's own
//!   `torrent_finished` timestamp (`client`);
//! * aria2: JSON-RPC `status == complete` (`client`) or exit 0 (`exit`);
//! * rqbit: exit 0 with `--exit-on-finish` (`exit`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swarm_integration_tests::aria2::Aria2;
use swarm_integration_tests::libtorrent::{Encryption, LibtorrentPeer, LtOptions};

/// libtorrent's setting for an encrypted (forced, RC4) or a plaintext run.
fn lt_encryption(encrypted: bool) -> Encryption {
    if encrypted {
        Encryption::Forced
    } else {
        Encryption::Disabled
    }
}
use swarm_integration_tests::swarmd::{Swarmd, SwarmdProcess};
use swarm_integration_tests::util::{find_tool, free_tcp_port, ChildGuard, TestEnv};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Swarmd,
    Libtorrent,
    Aria2,
    Rqbit,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Swarmd, Kind::Libtorrent, Kind::Aria2, Kind::Rqbit];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Swarmd => "swarmd",
            Kind::Libtorrent => "libtorrent",
            Kind::Aria2 => "aria2",
            Kind::Rqbit => "rqbit",
        }
    }

    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "swarmd" => Ok(Kind::Swarmd),
            "libtorrent" | "lt" => Ok(Kind::Libtorrent),
            "aria2" | "aria2c" => Ok(Kind::Aria2),
            "rqbit" => Ok(Kind::Rqbit),
            _ => Err(format!(
                "unknown client `{s}` (swarmd, libtorrent, aria2, rqbit)"
            )),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the optional rqbit binary is: `$RQBIT_BIN`, `~/.cargo/bin/rqbit`, or `rqbit` in PATH.
pub fn rqbit_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RQBIT_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".cargo/bin/rqbit");
        if p.is_file() {
            return Some(p);
        }
    }
    find_tool("rqbit")
}

// ---------------------------------------------------------------------------------------------
// rqbit
// ---------------------------------------------------------------------------------------------

/// `rqbit download` on 127.0.0.1 (DHT, LSD, UPnP off), with HOME and the XDG directories inside
/// the run's temp dir so nothing touches the real home.
pub struct Rqbit {
    guard: ChildGuard,
}

impl Rqbit {
    pub fn spawn(env: &TestEnv, bin: &Path, torrent: &Path, dir: &Path, seed: bool) -> Rqbit {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_tcp_port();
        let api = free_tcp_port();
        let home = env.unique_subdir("rqbit-home");
        let mut cmd = Command::new(bin);
        cmd.args([
            "--disable-dht",
            "--disable-dht-persistence",
            "--disable-lsd",
            "--disable-upnp-port-forward",
            "--listen-ip",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
            // Said again for the trackers: rqbit 9.1 announces its default port 4240
            // otherwise, where nothing listens (seen in the tracker's peer lists).
            "--announce-port",
            &port.to_string(),
            "--http-api-listen-addr",
            &format!("127.0.0.1:{api}"),
            "download",
            "-o",
        ])
        .arg(dir);
        if seed {
            // Reuse (hash-check) the existing files and keep seeding.
            cmd.arg("--overwrite");
        } else {
            cmd.arg("--exit-on-finish");
        }
        cmd.arg(torrent);
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .current_dir(&home);
        let name = if seed { "rqbit-seed" } else { "rqbit-leech" };
        Rqbit {
            guard: ChildGuard::spawn(env, name, cmd),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Leechers
// ---------------------------------------------------------------------------------------------

enum LeecherProc {
    Swarmd(SwarmdProcess),
    Lt(LibtorrentPeer),
    Aria2(Aria2),
    Rqbit(Rqbit),
}

/// A leecher downloading into an empty directory.
pub struct Leecher {
    pub kind: Kind,
    proc: LeecherProc,
}

/// What [`Leecher::poll`] found.
pub enum Poll {
    Running,
    /// Complete. `at_unix`: when the client says it completed (libtorrent), if it says.
    Done {
        detect: &'static str,
        at_unix: Option<f64>,
    },
    Failed(String),
}

impl Leecher {
    /// Spawns the leecher. Returns once the process exists (libtorrent: once its driver wrote its
    /// first status, ~0.3 s of Python start-up that is part of the measured time). `encrypted`:
    /// swarmd and libtorrent require MSE/PE with RC4.
    pub fn spawn(
        kind: Kind,
        env: &TestEnv,
        torrent: &Path,
        out: &Path,
        rqbit: Option<&Path>,
        encrypted: bool,
        utp_only: bool,
    ) -> Leecher {
        let proc = match kind {
            Kind::Swarmd => LeecherProc::Swarmd(
                Swarmd::download(torrent)
                    .out(out)
                    .name("swarmd-leech")
                    .arg("--encryption")
                    .arg(if encrypted { "require" } else { "prefer" })
                    // What a user gets: `swarmd download` logs warnings only by default.
                    .env("RUST_LOG", "warn")
                    .spawn(env),
            ),
            Kind::Libtorrent => LeecherProc::Lt(LibtorrentPeer::spawn(
                env,
                torrent,
                out,
                LtOptions {
                    name: Some("lt-leech".into()),
                    encryption: lt_encryption(encrypted),
                    utp_only,
                    ..LtOptions::leech()
                },
            )),
            Kind::Aria2 => LeecherProc::Aria2(Aria2::leech(env, torrent, out)),
            Kind::Rqbit => LeecherProc::Rqbit(Rqbit::spawn(
                env,
                rqbit.expect("rqbit is not installed"),
                torrent,
                out,
                false,
            )),
        };
        Leecher { kind, proc }
    }

    pub fn guard(&self) -> &ChildGuard {
        match &self.proc {
            LeecherProc::Swarmd(p) => p.guard(),
            LeecherProc::Lt(p) => p.guard(),
            LeecherProc::Aria2(p) => p.guard(),
            LeecherProc::Rqbit(p) => &p.guard,
        }
    }

    pub fn pid(&self) -> u32 {
        self.guard().pid()
    }

    /// Checks once for completion. `rpc` says whether an RPC-based check may run this time
    /// (aria2's JSON-RPC costs the client a little CPU, so it is polled less often).
    pub fn poll(&self, rpc: bool) -> Poll {
        let g = self.guard();
        if let Some(st) = g.exit_status() {
            return if st.success() {
                Poll::Done {
                    detect: "exit",
                    at_unix: None,
                }
            } else {
                Poll::Failed(format!(
                    "{} exited with {st}:\n{}",
                    g.name(),
                    g.log_tail(25)
                ))
            };
        }
        match &self.proc {
            LeecherProc::Swarmd(p) => {
                // Non-terminal progress line: "NAME 100.0% of N bytes, R MiB/s, P peers, seeding, T s".
                let log = p.guard().log_tail(20);
                if log
                    .lines()
                    .any(|l| l.contains(" 100.0% of ") && l.contains(", seeding,"))
                {
                    return Poll::Done {
                        detect: "log",
                        at_unix: None,
                    };
                }
                Poll::Running
            }
            LeecherProc::Lt(p) => match p.try_status() {
                Some(st) if st.finished && st.progress >= 1.0 => Poll::Done {
                    detect: "client",
                    at_unix: st.t_finished,
                },
                Some(st) if !st.error.is_empty() => {
                    Poll::Failed(format!("libtorrent: {}", st.error))
                }
                _ => Poll::Running,
            },
            LeecherProc::Aria2(a) => {
                if !rpc {
                    return Poll::Running;
                }
                match a.status() {
                    Ok(st) if st.status == "complete" => Poll::Done {
                        detect: "client",
                        at_unix: None,
                    },
                    Ok(st) if st.status == "error" => {
                        Poll::Failed(format!("aria2: {}", st.error_message))
                    }
                    _ => Poll::Running,
                }
            }
            LeecherProc::Rqbit(_) => Poll::Running,
        }
    }

    /// After completion: waits up to `timeout` for a client that exits by itself (swarmd, rqbit)
    /// to do so; returns whether it exited with 0. Others are stopped by dropping them.
    pub fn wait_exit(&self, timeout: Duration) -> Option<bool> {
        match self.kind {
            Kind::Swarmd | Kind::Rqbit => {
                self.guard().wait_exit(timeout).ok().map(|st| st.success())
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeders
// ---------------------------------------------------------------------------------------------

#[allow(dead_code)] // the handles only keep the processes alive
enum SeederProc {
    Swarmd(SwarmdProcess),
    Lt(LibtorrentPeer),
    Aria2(Aria2),
    Rqbit(Rqbit),
}

/// A seeder of data already in its directory.
pub struct Seeder {
    proc: SeederProc,
}

impl Seeder {
    /// Starts a seeder. libtorrent runs in seed mode (no check; pieces are hashed when first
    /// requested) unless `recheck`; aria2, rqbit and swarmd hash-check the data first. Waits
    /// until libtorrent/aria2 report seeding; the caller waits for the tracker to count every
    /// seeder as complete.
    pub fn spawn(
        kind: Kind,
        env: &TestEnv,
        torrent: &Path,
        data: &Path,
        rqbit: Option<&Path>,
        (recheck, encrypted, utp_only): (bool, bool, bool),
    ) -> Seeder {
        let proc = match kind {
            Kind::Swarmd => SeederProc::Swarmd(
                Swarmd::download(torrent)
                    .out(data)
                    .seed(true)
                    .name("swarmd-seed")
                    .env("RUST_LOG", "warn")
                    .spawn(env),
            ),
            Kind::Libtorrent => {
                let p = LibtorrentPeer::spawn(
                    env,
                    torrent,
                    data,
                    LtOptions {
                        name: Some("lt-seed".into()),
                        recheck,
                        encryption: lt_encryption(encrypted),
                        utp_only,
                        ..LtOptions::seed()
                    },
                );
                p.wait_status("seeding", Duration::from_secs(300), |s| s.seeding);
                SeederProc::Lt(p)
            }
            Kind::Aria2 => SeederProc::Aria2(Aria2::seed(env, torrent, data)),
            Kind::Rqbit => SeederProc::Rqbit(Rqbit::spawn(
                env,
                rqbit.expect("rqbit is not installed"),
                torrent,
                data,
                true,
            )),
        };
        Seeder { proc }
    }

    pub fn guard(&self) -> &ChildGuard {
        match &self.proc {
            SeederProc::Swarmd(p) => p.guard(),
            SeederProc::Lt(p) => p.guard(),
            SeederProc::Aria2(p) => p.guard(),
            SeederProc::Rqbit(p) => &p.guard,
        }
    }
}
