//! `transmission-daemon` (3.00) driven over its JSON RPC.
//!
//! The daemon runs in the foreground (`-f`) with a generated `settings.json`: peer port on
//! 127.0.0.1, DHT/LPD/PEX/port forwarding off, uTP off unless started with
//! [`TransmissionDaemon::start_utp`], RPC on a free loopback port without
//! authentication or whitelists, no speed/ratio/queue limits, `rename-partial-files=false`
//! (files keep their final names, so verification finds them), and `encryption=0` (prefer
//! plaintext).
//!
//! **Loopback pitfall:** transmission ignores peers in 127.0.0.0/8 learnt from a tracker. It
//! only ever talks to peers that dial *it*: as a seeder it serves whoever connects to
//! [`TransmissionDaemon::peer_port`]; as a leecher someone must dial it.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::transmission::TransmissionDaemon;
//! # use swarm_integration_tests::{payload::{Payload, MIB}, util::TestEnv};
//! # let env = TestEnv::new("tr-example");
//! # let payload = Payload::single(&env.subdir("seed"), "a.bin", MIB, 1);
//! # let torrent = payload.make_torrent(&env.path().join("a.torrent"), 15, &[]);
//! let tr = TransmissionDaemon::start(&env);
//! let id = tr.seed(&torrent.path, &payload.dir); // add + verify + start, waits until seeding
//! // ... a leecher dials 127.0.0.1:{tr.peer_port()} ...
//! let st = tr.status(id);
//! assert!(st.is_seeding());
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::http;
use crate::util::{
    free_tcp_port, free_tcp_udp_port, loopback, require_tool, wait_for, ChildGuard, TestEnv,
};

/// Transmission's numeric torrent states (`status` field).
pub mod state {
    pub const STOPPED: i64 = 0;
    pub const CHECK_WAIT: i64 = 1;
    pub const CHECK: i64 = 2;
    pub const DOWNLOAD_WAIT: i64 = 3;
    pub const DOWNLOAD: i64 = 4;
    pub const SEED_WAIT: i64 = 5;
    pub const SEED: i64 = 6;
}

/// One peer as transmission reports it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrPeer {
    pub address: String,
    pub port: u16,
    pub client_name: String,
    /// Transmission's flag letters (e.g. `D` downloading from, `U` uploading to, `I` incoming,
    /// `E` encrypted, `d`/`u` interested but choked).
    pub flag_str: String,
    pub progress: f64,
    /// We are choked by the peer.
    pub client_is_choked: bool,
    /// We are interested in the peer.
    pub client_is_interested: bool,
    /// We choke the peer.
    pub peer_is_choked: bool,
    /// The peer is interested in us.
    pub peer_is_interested: bool,
    pub is_downloading_from: bool,
    pub is_uploading_to: bool,
    pub is_incoming: bool,
    pub rate_to_client: u64,
    pub rate_to_peer: u64,
}

/// `torrent-get` fields for one torrent.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrStatus {
    pub id: i64,
    pub name: String,
    /// See [`state`].
    pub status: i64,
    pub percent_done: f64,
    pub left_until_done: u64,
    pub have_valid: u64,
    pub size_when_done: u64,
    pub error: i64,
    pub error_string: String,
    pub peers_connected: u32,
    pub peers: Vec<TrPeer>,
    pub rate_download: u64,
    pub rate_upload: u64,
    pub uploaded_ever: u64,
    pub downloaded_ever: u64,
    pub corrupt_ever: u64,
    pub hash_string: String,
}

impl TrStatus {
    pub fn is_seeding(&self) -> bool {
        self.status == state::SEED && self.is_complete()
    }

    pub fn is_complete(&self) -> bool {
        self.left_until_done == 0 && self.percent_done >= 1.0
    }
}

const FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "percentDone",
    "leftUntilDone",
    "haveValid",
    "sizeWhenDone",
    "error",
    "errorString",
    "peersConnected",
    "peers",
    "rateDownload",
    "rateUpload",
    "uploadedEver",
    "downloadedEver",
    "corruptEver",
    "hashString",
];

/// A running `transmission-daemon`. Killed on drop.
pub struct TransmissionDaemon {
    guard: ChildGuard,
    peer_port: u16,
    rpc_port: u16,
    session_id: Mutex<String>,
}

impl TransmissionDaemon {
    /// Starts the daemon with its own config dir in the test env and waits until RPC answers.
    pub fn start(env: &TestEnv) -> TransmissionDaemon {
        Self::start_with(env, false)
    }

    /// The same with uTP on (transmission's default outside these tests): it accepts and makes
    /// uTP connections on the UDP port numbered like its peer port, and still speaks TCP.
    pub fn start_utp(env: &TestEnv) -> TransmissionDaemon {
        Self::start_with(env, true)
    }

    fn start_with(env: &TestEnv, utp: bool) -> TransmissionDaemon {
        let exe = require_tool("transmission-daemon");
        let config = env.unique_subdir("transmission");
        let downloads = config.join("downloads");
        fs::create_dir_all(&downloads).unwrap();
        // uTP shares the peer port's number on UDP.
        let peer_port = if utp {
            free_tcp_udp_port()
        } else {
            free_tcp_port()
        };
        let rpc_port = free_tcp_port();
        let settings = json!({
            "peer-port": peer_port,
            "peer-port-random-on-start": false,
            "bind-address-ipv4": "127.0.0.1",
            "bind-address-ipv6": "::1",
            "dht-enabled": false,
            "lpd-enabled": false,
            "pex-enabled": false,
            "utp-enabled": utp,
            "port-forwarding-enabled": false,
            "rpc-enabled": true,
            "rpc-bind-address": "127.0.0.1",
            "rpc-port": rpc_port,
            "rpc-authentication-required": false,
            "rpc-whitelist-enabled": false,
            "rpc-host-whitelist-enabled": false,
            "download-dir": downloads,
            "incomplete-dir-enabled": false,
            "watch-dir-enabled": false,
            "rename-partial-files": false,
            "speed-limit-down-enabled": false,
            "speed-limit-up-enabled": false,
            "alt-speed-enabled": false,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "queue-stalled-enabled": false,
            "download-queue-enabled": false,
            "seed-queue-enabled": false,
            "peer-limit-global": 500,
            "peer-limit-per-torrent": 200,
            // 0 = prefer plaintext (1 prefers encryption, 2 requires it).
            "encryption": 0,
            "blocklist-enabled": false,
            "start-added-torrents": true,
            "script-torrent-done-enabled": false,
            "message-level": 2,
            "umask": 18,
        });
        fs::write(
            config.join("settings.json"),
            serde_json::to_vec_pretty(&settings).unwrap(),
        )
        .unwrap();
        let mut cmd = Command::new(exe);
        cmd.arg("-f").arg("-g").arg(&config).arg("--log-info");
        let guard = ChildGuard::spawn(env, "transmission", cmd);
        let tr = TransmissionDaemon {
            guard,
            peer_port,
            rpc_port,
            session_id: Mutex::new(String::new()),
        };
        wait_for(
            "transmission RPC to answer",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || {
                tr.guard.assert_running();
                tr.rpc("session-get", json!({})).map(|_| ())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", tr.guard.log_tail(30)));
        tr
    }

    /// The peer (BitTorrent) port on 127.0.0.1.
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// `127.0.0.1:peer_port`.
    pub fn peer_addr(&self) -> SocketAddr {
        loopback(self.peer_port)
    }

    /// `http://127.0.0.1:RPC/transmission/rpc`
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}/transmission/rpc", self.rpc_port)
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    /// One RPC call; returns `arguments` on `result == "success"`. Handles the CSRF dance:
    /// transmission answers 409 with a fresh `X-Transmission-Session-Id` until we echo it.
    pub fn rpc(&self, method: &str, arguments: Value) -> Result<Value, String> {
        let body =
            serde_json::to_vec(&json!({ "method": method, "arguments": arguments })).unwrap();
        for _ in 0..3 {
            let sid = self.session_id.lock().unwrap().clone();
            let r = http::post(
                &self.rpc_url(),
                &[
                    ("Content-Type", "application/json"),
                    ("X-Transmission-Session-Id", &sid),
                ],
                &body,
                Duration::from_secs(10),
            )
            .map_err(|e| format!("{method}: {e}"))?;
            if r.status == 409 {
                let new = r
                    .header("X-Transmission-Session-Id")
                    .ok_or("409 without a session id")?;
                *self.session_id.lock().unwrap() = new.to_string();
                continue;
            }
            if r.status != 200 {
                return Err(format!("{method}: HTTP {}: {}", r.status, r.text()));
            }
            let v: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("{method}: {e}: {}", r.text()))?;
            return match v["result"].as_str() {
                Some("success") => Ok(v["arguments"].clone()),
                other => Err(format!("{method}: result {other:?}")),
            };
        }
        Err(format!("{method}: no session id after 3 tries"))
    }

    fn rpc_or_panic(&self, method: &str, arguments: Value) -> Value {
        self.rpc(method, arguments)
            .unwrap_or_else(|e| panic!("transmission RPC failed: {e}\n{}", self.guard.log_tail(30)))
    }

    /// Adds `torrent` with `download_dir` and starts it. Returns the torrent id.
    pub fn add_torrent(&self, torrent: &Path, download_dir: &Path) -> i64 {
        self.add(torrent, download_dir, false)
    }

    /// Adds `torrent` paused. Returns the torrent id.
    pub fn add_torrent_paused(&self, torrent: &Path, download_dir: &Path) -> i64 {
        self.add(torrent, download_dir, true)
    }

    fn add(&self, torrent: &Path, download_dir: &Path, paused: bool) -> i64 {
        let meta =
            fs::read(torrent).unwrap_or_else(|e| panic!("reading {}: {e}", torrent.display()));
        fs::create_dir_all(download_dir).unwrap();
        let args = self.rpc_or_panic(
            "torrent-add",
            json!({
                "metainfo": crate::util::base64(&meta),
                "download-dir": download_dir,
                "paused": paused,
            }),
        );
        let t = args
            .get("torrent-added")
            .or_else(|| args.get("torrent-duplicate"))
            .unwrap_or_else(|| panic!("torrent-add answered {args}"));
        t["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("torrent-add without id: {args}"))
    }

    /// The torrent's current status, or an error if RPC fails or the id is unknown.
    pub fn try_status(&self, id: i64) -> Result<TrStatus, String> {
        let args = self.rpc("torrent-get", json!({ "ids": [id], "fields": FIELDS }))?;
        let t = args["torrents"]
            .get(0)
            .ok_or_else(|| format!("no torrent {id}"))?;
        serde_json::from_value(t.clone()).map_err(|e| format!("torrent-get: {e}: {t}"))
    }

    /// The torrent's current status. Panics if the daemon died or RPC fails.
    pub fn status(&self, id: i64) -> TrStatus {
        self.guard.assert_running();
        self.try_status(id)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)))
    }

    /// Hash-checks the torrent's existing data, then starts it (`torrent-verify`,
    /// `torrent-start`).
    pub fn verify_and_start(&self, id: i64) {
        self.rpc_or_panic("torrent-verify", json!({ "ids": [id] }));
        self.rpc_or_panic("torrent-start", json!({ "ids": [id] }));
    }

    /// Stops (pauses) the torrent.
    pub fn stop_torrent(&self, id: i64) {
        self.rpc_or_panic("torrent-stop", json!({ "ids": [id] }));
    }

    /// Polls until `pred` holds for the torrent's status.
    pub fn wait_status(
        &self,
        id: i64,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&TrStatus) -> bool,
    ) -> TrStatus {
        wait_for(
            &format!("transmission: {what}"),
            timeout,
            Duration::from_millis(100),
            || {
                self.guard.assert_running();
                let st = self.try_status(id)?;
                if pred(&st) {
                    Ok(st)
                } else {
                    Err(format!(
                        "status={} done={:.3} left={} peers={} error={:?}",
                        st.status,
                        st.percent_done,
                        st.left_until_done,
                        st.peers_connected,
                        st.error_string
                    ))
                }
            },
        )
        .map(|(st, _)| st)
        .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)))
    }

    /// Waits until the torrent is complete and seeding.
    pub fn wait_seeding(&self, id: i64, timeout: Duration) -> TrStatus {
        self.wait_status(id, "seeding", timeout, TrStatus::is_seeding)
    }

    /// Waits until all wanted data is downloaded and verified.
    pub fn wait_finished(&self, id: i64, timeout: Duration) -> TrStatus {
        self.wait_status(id, "download complete", timeout, TrStatus::is_complete)
    }

    /// Adds `torrent` whose data is in `data_dir`, verifies it, starts it, and waits (30 s)
    /// until it seeds. Returns the torrent id.
    pub fn seed(&self, torrent: &Path, data_dir: &Path) -> i64 {
        let id = self.add_torrent_paused(torrent, data_dir);
        self.verify_and_start(id);
        self.wait_seeding(id, Duration::from_secs(30));
        id
    }
}
