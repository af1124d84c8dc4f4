//! `aria2c` as a BitTorrent seeder or leecher, with JSON-RPC for status.
//!
//! Flags: `--listen-port=P --interface=127.0.0.1 --bt-external-ip=127.0.0.1`, DHT/DHT6/LPD/PEX
//! off, `--disable-ipv6`, JSON-RPC on a free loopback port, and `--stop-with-process=<test pid>` so
//! aria2 exits by itself if the test process dies. A leecher runs with `--seed-time=0`, so it
//! stops seeding the moment its download is complete (but, RPC being on, the process stays up
//! until [`Aria2::wait_download_complete`] shuts it down); a seeder hash-checks its data
//! (`--check-integrity --bt-hash-check-seed`) and seeds without end (`--seed-ratio=0.0`).
//!
//! aria2 finds peers only through the torrent's tracker (there is no "add peer" RPC), but it
//! accepts 127.0.0.1 peers from a tracker and accepts incoming connections. Give it an **HTTP**
//! tracker: aria2 speaks UDP trackers only through its DHT socket, so with DHT off a `udp://`
//! announce fails with "udp is not supported yet" and aria2 never finds a peer.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::aria2::Aria2;
//! # use swarm_integration_tests::util::TestEnv;
//! # let env = TestEnv::new("aria2-example");
//! # let torrent = std::path::Path::new("t.torrent");
//! let leecher = Aria2::leech(&env, torrent, &env.subdir("aria2"));
//! let status = leecher.wait_exit(Duration::from_secs(30));
//! assert!(status.success());
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use serde_json::{json, Value};

use crate::http;
use crate::util::{free_tcp_port, loopback, require_tool, wait_for, ChildGuard, TestEnv};

/// Fields of `aria2.tellActive` we ask for.
const KEYS: &[&str] = &[
    "gid",
    "status",
    "totalLength",
    "completedLength",
    "verifiedLength",
    "uploadLength",
    "downloadSpeed",
    "uploadSpeed",
    "connections",
    "numSeeders",
    "seeder",
    "errorCode",
    "errorMessage",
];

/// One download as aria2 reports it.
#[derive(Clone, Debug)]
pub struct Aria2Status {
    pub gid: String,
    /// `active`, `waiting`, `paused`, `error`, `complete`, `removed`.
    pub status: String,
    pub total_length: u64,
    pub completed_length: u64,
    pub upload_length: u64,
    pub connections: u32,
    pub num_seeders: u32,
    /// aria2 has the whole torrent and is seeding.
    pub seeder: bool,
    pub error_message: String,
    /// The whole JSON object.
    pub raw: Value,
}

impl Aria2Status {
    pub fn is_complete(&self) -> bool {
        self.total_length > 0 && self.completed_length == self.total_length
    }

    fn from_json(v: &Value) -> Aria2Status {
        let n = |k: &str| {
            v[k].as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Aria2Status {
            gid: s("gid"),
            status: s("status"),
            total_length: n("totalLength"),
            completed_length: n("completedLength"),
            upload_length: n("uploadLength"),
            connections: n("connections") as u32,
            num_seeders: n("numSeeders") as u32,
            seeder: v["seeder"].as_str() == Some("true"),
            error_message: s("errorMessage"),
            raw: v.clone(),
        }
    }
}

/// A running `aria2c`. Killed on drop.
///
/// With RPC on, aria2 never exits by itself (it stays up as an RPC server even after a
/// `--seed-time=0` download completes); [`Aria2::wait_download_complete`] handles that.
pub struct Aria2 {
    guard: ChildGuard,
    port: u16,
    rpc_port: u16,
}

impl Aria2 {
    /// Downloads `torrent` into `dir` and stops seeding as soon as it is complete. Does not wait;
    /// see [`Aria2::wait_download_complete`].
    pub fn leech(env: &TestEnv, torrent: &Path, dir: &Path) -> Aria2 {
        Self::spawn(env, torrent, dir, false, &[])
    }

    /// Hash-checks the data for `torrent` in `dir`, then seeds it without end. Returns once aria2
    /// reports itself a seeder.
    pub fn seed(env: &TestEnv, torrent: &Path, dir: &Path) -> Aria2 {
        let a = Self::spawn(env, torrent, dir, true, &[]);
        a.wait_status("seeding", Duration::from_secs(30), |s| {
            s.seeder && s.is_complete()
        });
        a
    }

    /// Starts aria2 with extra command-line options (e.g. `--max-overall-download-limit=1M`).
    pub fn spawn(env: &TestEnv, torrent: &Path, dir: &Path, seed: bool, extra: &[&str]) -> Aria2 {
        let exe = require_tool("aria2c");
        std::fs::create_dir_all(dir).unwrap();
        let port = free_tcp_port();
        let rpc_port = free_tcp_port();
        let mut cmd = Command::new(exe);
        cmd.arg(format!("--dir={}", dir.display()))
            .arg(format!("--listen-port={port}"))
            .args([
                "--interface=127.0.0.1",
                "--bt-external-ip=127.0.0.1",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--disable-ipv6=true",
                "--enable-rpc=true",
                "--rpc-listen-all=false",
            ])
            .arg(format!("--rpc-listen-port={rpc_port}"))
            // Exit on our own if the test process disappears without killing us.
            .arg(format!("--stop-with-process={}", std::process::id()))
            .args([
                "--file-allocation=none",
                "--bt-max-peers=0",
                "--max-overall-upload-limit=0",
                "--max-overall-download-limit=0",
                "--console-log-level=notice",
                "--summary-interval=0",
                "--show-console-readout=false",
                "--auto-save-interval=0",
                "--bt-save-metadata=false",
                "--allow-overwrite=true",
                "--auto-file-renaming=false",
            ]);
        if seed {
            cmd.args([
                "--check-integrity=true",
                "--seed-ratio=0.0",
                "--bt-hash-check-seed=true",
            ]);
        } else {
            cmd.arg("--seed-time=0");
        }
        cmd.args(extra).arg(torrent);
        let guard = ChildGuard::spawn(env, if seed { "aria2-seed" } else { "aria2-leech" }, cmd);
        Aria2 {
            guard,
            port,
            rpc_port,
        }
    }

    /// The BitTorrent listen port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    /// One JSON-RPC call; returns `result`.
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": "it", "method": method, "params": params}),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{}/jsonrpc", self.rpc_port);
        let r = http::post(
            &url,
            &[("Content-Type", "application/json")],
            &body,
            Duration::from_secs(5),
        )
        .map_err(|e| format!("{method}: {e}"))?;
        let v: Value =
            serde_json::from_slice(&r.body).map_err(|e| format!("{method}: {e}: {}", r.text()))?;
        if let Some(err) = v.get("error") {
            return Err(format!("{method}: {err}"));
        }
        Ok(v["result"].clone())
    }

    /// Status of the (single) download: the active one, else the finished/stopped one. An error
    /// if RPC is not up yet or aria2 has nothing.
    pub fn status(&self) -> Result<Aria2Status, String> {
        let active = self.rpc("aria2.tellActive", json!([KEYS]))?;
        if let Some(v) = active.get(0) {
            return Ok(Aria2Status::from_json(v));
        }
        let stopped = self.rpc("aria2.tellStopped", json!([0, 1, KEYS]))?;
        if let Some(v) = stopped.get(0) {
            return Ok(Aria2Status::from_json(v));
        }
        let waiting = self.rpc("aria2.tellWaiting", json!([0, 1, KEYS]))?;
        waiting
            .get(0)
            .map(Aria2Status::from_json)
            .ok_or_else(|| "no download".into())
    }

    /// Polls [`Aria2::status`] until `pred` holds; panics with the log otherwise.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Aria2Status) -> bool,
    ) -> Aria2Status {
        wait_for(
            &format!("{}: {what}", self.guard.name()),
            timeout,
            Duration::from_millis(100),
            || {
                self.guard.assert_running();
                let st = self.status()?;
                if pred(&st) {
                    Ok(st)
                } else {
                    Err(format!(
                        "status={} {}/{} connections={} seeder={} {}",
                        st.status,
                        st.completed_length,
                        st.total_length,
                        st.connections,
                        st.seeder,
                        st.error_message
                    ))
                }
            },
        )
        .map(|(st, _)| st)
        .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)))
    }

    /// Waits for aria2 to exit and returns its status; panics with the log on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        self.guard.wait_exit(timeout).unwrap_or_else(|e| {
            panic!(
                "{e}; last status {:?}\n{}",
                self.status(),
                self.guard.log_tail(30)
            )
        })
    }

    /// Waits until a leecher's download is complete, then shuts aria2 down gracefully (it sends
    /// its final announce) and checks that it exits with code 0.
    ///
    /// aria2 with RPC enabled does not exit by itself when its downloads are done (it stays up
    /// as an RPC server), so completion is read from RPC (`status == "complete"`), or from an
    /// exit with code 0.
    pub fn wait_download_complete(&self, timeout: Duration) {
        wait_for(
            &format!("{}: download complete", self.guard.name()),
            timeout,
            Duration::from_millis(100),
            || {
                if let Some(st) = self.guard.exit_status() {
                    assert!(
                        st.success(),
                        "aria2 exited with {st}:\n{}",
                        self.guard.log_tail(30)
                    );
                    return Ok(());
                }
                match self.status() {
                    Ok(st) if st.status == "complete" => Ok(()),
                    Ok(st) if st.status == "error" => panic!(
                        "aria2 download failed: {}\n{}",
                        st.error_message,
                        self.guard.log_tail(30)
                    ),
                    Ok(st) => Err(format!(
                        "status={} {}/{} connections={}",
                        st.status, st.completed_length, st.total_length, st.connections
                    )),
                    Err(e) => Err(e),
                }
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)));
        if self.guard.is_running() {
            let _ = self.rpc("aria2.shutdown", json!([]));
        }
        let st = self.wait_exit(Duration::from_secs(15));
        assert!(
            st.success(),
            "aria2 exited with {st}:\n{}",
            self.guard.log_tail(30)
        );
    }
}
