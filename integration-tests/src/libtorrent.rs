//! A libtorrent peer (Debian `python3-libtorrent` 2.0) driven through
//! `integration-tests/drivers/lt_driver.py`.
//!
//! The driver runs one torrent on 127.0.0.1 (TCP only; LSD, UPnP, NAT-PMP off, and the DHT
//! unless [`LtOptions::dht`]; PEX on unless [`LtOptions::no_pex`]; several connections per IP
//! allowed; plaintext unless [`LtOptions::encryption`] says otherwise). It writes `status.json`
//! atomically about every 100 ms ([`LtStatus`], with a [`LtPeer`] per connection carrying
//! libtorrent's `peer_info` flags) and executes commands dropped into its `commands/` directory
//! ([`LibtorrentPeer::command`]). Seeders trust their data (`seed_mode`, no recheck) unless
//! [`LtOptions::recheck`] is set.
//!
//! With [`LtOptions::dht`] the driver also runs libtorrent's DHT on UDP 127.0.0.1:port, joined
//! only through [`LtOptions::dht_bootstrap`] / [`LtOptions::dht_nodes`] (never the public
//! routers) and with libtorrent's per-IP restrictions lifted so that nodes sharing 127.0.0.1
//! work; [`LtStatus`] then reports `dht_nodes`, `dht_announces_out`, `dht_announces_in` and
//! `dht_replies`, and `dht_log.txt` in the state directory has every DHT packet
//! ([`LibtorrentPeer::dht_log`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
//! # use swarm_integration_tests::{payload::{Payload, MIB}, util::TestEnv};
//! # let env = TestEnv::new("lt-example");
//! # let payload = Payload::single(&env.subdir("seed"), "a.bin", MIB, 1);
//! # let torrent = payload.make_torrent(&env.path().join("a.torrent"), 15, &[]);
//! let seeder = LibtorrentPeer::seed(&env, &torrent.path, &payload.dir);
//! let leecher = LibtorrentPeer::spawn(
//!     &env,
//!     &torrent.path,
//!     &env.subdir("leech"),
//!     LtOptions { connect: vec![seeder.addr()], download_limit: Some(512 * 1024), ..LtOptions::leech() },
//! );
//! let st = leecher.wait_finished(Duration::from_secs(30));
//! assert!(st.finished);
//! let seen = seeder.wait_peer("leecher unchoked by the seeder", Duration::from_secs(5), |p| !p.flags.choked);
//! # let _ = seen;
//! ```

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;

use crate::netlab::Host;
use crate::util::{free_tcp_port, free_tcp_udp_port, wait_for, ChildGuard, TestEnv, LOOPBACK};

/// The interpreter that has Debian's `libtorrent` module (a pyenv/venv `python3` on PATH usually
/// does not).
pub const PYTHON: &str = "/usr/bin/python3";

/// Path of the Python driver script.
pub fn driver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers/lt_driver.py")
}

/// Panics unless `/usr/bin/python3` can `import libtorrent` (checked once per process).
pub fn require_python_libtorrent() {
    static CHECK: OnceLock<Result<String, String>> = OnceLock::new();
    let r = CHECK.get_or_init(|| {
        let out = Command::new(PYTHON)
            .args(["-c", "import libtorrent; print(libtorrent.__version__)"])
            .output()
            .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = r {
        panic!(
            "python3-libtorrent is not usable with {PYTHON} ({}). Install the integration-test \
             dependencies with `scripts/install-test-deps.sh` (Debian package python3-libtorrent).",
            e.trim()
        );
    }
}

/// Seeder or leecher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Seed,
    Leech,
}

/// What a finished leecher does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFinish {
    /// Keep running as a seed (libtorrent's default).
    Seed,
    /// Pause the torrent (disconnects every peer, stays alive for status).
    Pause,
    /// Exit the driver.
    Exit,
}

/// MSE/PE (BitTorrent protocol encryption) policy for both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Plaintext only (the default: otherwise libtorrent dials encrypted first and reconnects
    /// in plaintext only after the remote hangs up).
    Disabled,
    Enabled,
    Forced,
}

/// How to start a [`LibtorrentPeer`].
#[derive(Clone, Debug)]
pub struct LtOptions {
    pub role: Role,
    /// Use this magnet URI instead of the torrent file (leechers; fetches metadata from peers).
    pub magnet: Option<String>,
    /// Listen port; `None` = a free one.
    pub port: Option<u16>,
    /// Per-torrent upload limit, bytes/s.
    pub upload_limit: Option<u64>,
    /// Per-torrent download limit, bytes/s.
    pub download_limit: Option<u64>,
    /// Seeders: hash-check the data first instead of trusting it (`seed_mode`).
    pub recheck: bool,
    /// Drop the torrent's trackers: peers only come from `connect` / [`LibtorrentPeer::connect`].
    pub no_announce: bool,
    /// Disable PEX (ut_pex) for the torrent. PEX is on by default, unlike DHT and LSD, so tests
    /// can observe PEX between libtorrent and swarmd.
    pub no_pex: bool,
    pub on_finish: OnFinish,
    pub encryption: Encryption,
    /// Speak uTP only (no TCP either way) instead of TCP only. uTP listens on UDP `port`.
    pub utp_only: bool,
    /// Record every wire message in `peer_log.txt` (see [`LibtorrentPeer::peer_log`]).
    pub peer_log: bool,
    /// Peers to dial right after start.
    pub connect: Vec<SocketAddr>,
    /// Name for the log file and state directory (default `lt-seed` / `lt-leech`).
    pub name: Option<String>,
    /// Run libtorrent's DHT on UDP 127.0.0.1:port (the port is then free for TCP and UDP).
    /// Off by default.
    pub dht: bool,
    /// DHT routers to bootstrap from (libtorrent's `dht_bootstrap_nodes`: queried when the
    /// table is empty, never put in it). Only with `dht`.
    pub dht_bootstrap: Vec<SocketAddr>,
    /// DHT nodes to add to the routing table at start (`add_dht_node`). Only with `dht`.
    pub dht_nodes: Vec<SocketAddr>,
    /// Seeders: super-seeding (BEP 16), libtorrent's `super_seeding` torrent flag.
    pub super_seed: bool,
    /// Add the torrent paused: nothing is announced or dialled until the `resume` command.
    pub paused: bool,
    /// Run on a lab host ([`crate::netlab`]): inside its namespace, listening and dialling from
    /// its address. `None`: 127.0.0.1.
    pub host: Option<Host>,
    /// Listen and dial from this loopback address (`127.0.0.x`: all of 127/8 is the loopback)
    /// instead of 127.0.0.1, in the test's own namespace. Ignored with `host`.
    pub bind: Option<std::net::Ipv4Addr>,
}

impl LtOptions {
    /// Defaults for a seeder: trusts its data, announces, unlimited.
    pub fn seed() -> LtOptions {
        LtOptions {
            role: Role::Seed,
            magnet: None,
            port: None,
            upload_limit: None,
            download_limit: None,
            recheck: false,
            no_announce: false,
            no_pex: false,
            on_finish: OnFinish::Seed,
            encryption: Encryption::Disabled,
            utp_only: false,
            peer_log: false,
            connect: Vec::new(),
            name: None,
            dht: false,
            dht_bootstrap: Vec::new(),
            dht_nodes: Vec::new(),
            paused: false,
            super_seed: false,
            host: None,
            bind: None,
        }
    }

    /// Defaults for a leecher: announces, unlimited, keeps seeding when done.
    pub fn leech() -> LtOptions {
        LtOptions {
            role: Role::Leech,
            ..LtOptions::seed()
        }
    }
}

/// libtorrent's view of one connected peer. "We" are the libtorrent driver.
#[derive(Clone, Debug, Deserialize)]
pub struct LtPeer {
    pub ip: String,
    pub port: u16,
    /// `ip:port` as libtorrent sees it (for an incoming connection, the remote's ephemeral port).
    pub addr: String,
    /// Client name libtorrent derived from the peer id / extension handshake.
    pub client: String,
    /// The remote peer id, hex.
    pub pid: String,
    pub flags: LtPeerFlags,
    /// How we learnt of the peer: `tracker`, `dht`, `pex`, `lsd`, `resume_data` (empty when it
    /// dialled us or we were told to connect).
    pub source: Vec<String>,
    /// The remote's progress, 0..=1, from its bitfield/haves.
    pub progress: f64,
    pub num_pieces: u32,
    pub total_download: u64,
    pub total_upload: u64,
    pub down_speed: u64,
    pub up_speed: u64,
}

/// libtorrent's `peer_info` flags.
#[derive(Clone, Debug, Deserialize)]
pub struct LtPeerFlags {
    /// We are interested in the peer.
    pub interesting: bool,
    /// We choke the peer.
    pub choked: bool,
    /// The peer is interested in us.
    pub remote_interested: bool,
    /// The peer chokes us.
    pub remote_choked: bool,
    /// The peer set the extension-protocol bit (BEP 10).
    pub supports_extensions: bool,
    /// We dialled the peer (false: it connected to us).
    pub local_connection: bool,
    /// The handshake is not complete yet.
    pub handshake: bool,
    /// The TCP connect is still in progress.
    pub connecting: bool,
    pub on_parole: bool,
    /// The peer has every piece.
    pub seed: bool,
    pub optimistic_unchoke: bool,
    pub snubbed: bool,
    /// The peer said it only uploads (BEP 21 `upload_only`, or have-all + not interested).
    pub upload_only: bool,
    pub endgame_mode: bool,
    pub rc4_encrypted: bool,
    pub plaintext_encrypted: bool,
}

/// A tracker as libtorrent sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct LtTracker {
    pub url: String,
    pub fails: u32,
    /// Last tracker message or error.
    pub message: String,
}

/// The driver's `status.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct LtStatus {
    pub pid: u32,
    pub listen_port: u16,
    pub role: String,
    /// libtorrent's torrent state: `checking_files`, `downloading_metadata`, `downloading`,
    /// `finished`, `seeding`, `checking_resume_data`.
    pub state: String,
    pub has_metadata: bool,
    pub progress: f64,
    /// All wanted pieces are done.
    pub finished: bool,
    pub seeding: bool,
    pub paused: bool,
    /// Unix time when the torrent finished, if it has.
    pub t_finished: Option<f64>,
    pub num_peers: u32,
    pub num_seeds: u32,
    pub num_pieces: u32,
    pub total_done: u64,
    pub total_download: u64,
    pub total_upload: u64,
    pub total_payload_download: u64,
    pub total_payload_upload: u64,
    /// Bytes that failed the hash check (a bad peer sent them).
    pub total_failed_bytes: u64,
    pub download_rate: u64,
    pub upload_rate: u64,
    /// The torrent's error, empty if none.
    pub error: String,
    /// The last error alerts and failed commands.
    pub errors: Vec<String>,
    /// Sequence number of the last executed command.
    pub cmd_seq: u64,
    pub peers: Vec<LtPeer>,
    pub trackers: Vec<LtTracker>,
    pub stopping: bool,
    /// DHT routing-table size (0 without [`LtOptions::dht`]).
    #[serde(default)]
    pub dht_nodes: u64,
    /// `announce_peer` queries this node sent (DHT only).
    #[serde(default)]
    pub dht_announces_out: u64,
    /// `announce_peer` queries this node received (DHT only).
    #[serde(default)]
    pub dht_announces_in: u64,
    /// DHT `get_peers` replies for our torrent (libtorrent's `dht_reply_alert`; DHT only).
    #[serde(default)]
    pub dht_replies: u64,
}

impl LtStatus {
    /// The connection to/from `port` (the remote's listen port for outgoing connections).
    pub fn peer_by_port(&self, port: u16) -> Option<&LtPeer> {
        self.peers.iter().find(|p| p.port == port)
    }

    /// The connection whose client name contains `needle`.
    pub fn peer_by_client(&self, needle: &str) -> Option<&LtPeer> {
        self.peers.iter().find(|p| p.client.contains(needle))
    }
}

impl fmt::Display for LtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "state={} progress={:.3} finished={} seeding={} peers={} down={} up={} errors={:?} [",
            self.state,
            self.progress,
            self.finished,
            self.seeding,
            self.num_peers,
            self.total_payload_download,
            self.total_payload_upload,
            self.errors
        )?;
        for p in &self.peers {
            write!(
                f,
                " {}({} choked={} remote_choked={} int={} rint={})",
                p.addr,
                p.client,
                p.flags.choked,
                p.flags.remote_choked,
                p.flags.interesting,
                p.flags.remote_interested
            )?;
        }
        write!(f, " ]")
    }
}

/// A running libtorrent driver. Killed (SIGTERM, then SIGKILL) on drop.
pub struct LibtorrentPeer {
    guard: ChildGuard,
    ip: Ipv4Addr,
    port: u16,
    state_dir: PathBuf,
    peer_log: Option<PathBuf>,
    dht_log: Option<PathBuf>,
    seq: AtomicU64,
}

impl LibtorrentPeer {
    /// A seeder for `torrent` whose data is already in `data_dir` (trusted, no recheck).
    /// Returns once the torrent is seeding.
    pub fn seed(env: &TestEnv, torrent: &Path, data_dir: &Path) -> LibtorrentPeer {
        let p = Self::spawn(env, torrent, data_dir, LtOptions::seed());
        p.wait_seeding();
        p
    }

    /// A leecher downloading `torrent` into `save_dir`. Returns once it is up.
    pub fn leech(env: &TestEnv, torrent: &Path, save_dir: &Path) -> LibtorrentPeer {
        Self::spawn(env, torrent, save_dir, LtOptions::leech())
    }

    /// Starts the driver with `opts` (`torrent` is ignored when `opts.magnet` is set) and waits
    /// for its first status, i.e. until it listens.
    pub fn spawn(env: &TestEnv, torrent: &Path, dir: &Path, opts: LtOptions) -> LibtorrentPeer {
        require_python_libtorrent();
        let role = match opts.role {
            Role::Seed => "seed",
            Role::Leech => "leech",
        };
        let name = opts.name.clone().unwrap_or_else(|| format!("lt-{role}"));
        let state_dir = env.unique_subdir(&format!("state-{name}"));
        // The DHT shares the listen port number, over UDP.
        let port = opts.port.unwrap_or_else(if opts.dht || opts.utp_only {
            free_tcp_udp_port
        } else {
            free_tcp_port
        });
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let mut cmd = Command::new(PYTHON);
        cmd.arg("-u")
            .arg(driver_script())
            .args(["--role", role])
            .arg("--dir")
            .arg(dir)
            .args(["--port", &port.to_string()])
            .arg("--state-dir")
            .arg(&state_dir)
            .args([
                "--on-finish",
                match opts.on_finish {
                    OnFinish::Seed => "seed",
                    OnFinish::Pause => "pause",
                    OnFinish::Exit => "exit",
                },
            ])
            .args([
                "--encryption",
                match opts.encryption {
                    Encryption::Disabled => "disabled",
                    Encryption::Enabled => "enabled",
                    Encryption::Forced => "forced",
                },
            ]);
        match &opts.magnet {
            Some(m) => cmd.args(["--magnet", m]),
            None => cmd.arg("--torrent").arg(torrent),
        };
        if let Some(l) = opts.upload_limit {
            cmd.args(["--upload-limit", &l.to_string()]);
        }
        if let Some(l) = opts.download_limit {
            cmd.args(["--download-limit", &l.to_string()]);
        }
        if opts.recheck {
            cmd.arg("--recheck");
        }
        if opts.no_announce {
            cmd.arg("--no-announce");
        }
        if opts.no_pex {
            cmd.arg("--no-pex");
        }
        if opts.utp_only {
            cmd.args(["--transport", "utp"]);
        }
        let peer_log = opts.peer_log.then(|| state_dir.join("peer_log.txt"));
        if let Some(pl) = &peer_log {
            cmd.arg("--peer-log").arg(pl);
        }
        for a in &opts.connect {
            cmd.args(["--connect", &a.to_string()]);
        }
        let dht_log = opts.dht.then(|| state_dir.join("dht_log.txt"));
        if let Some(dl) = &dht_log {
            cmd.arg("--dht").arg("--dht-log").arg(dl);
            for a in &opts.dht_bootstrap {
                cmd.args(["--dht-bootstrap", &a.to_string()]);
            }
            for a in &opts.dht_nodes {
                cmd.args(["--dht-node", &a.to_string()]);
            }
        }
        if opts.paused {
            cmd.arg("--paused");
        }
        if opts.super_seed {
            cmd.arg("--super-seed");
        }
        if let Some(h) = &opts.host {
            cmd.args(["--bind", &h.ip.to_string()]);
            cmd = h.wrap(&cmd);
        } else if let Some(ip) = opts.bind {
            cmd.args(["--bind", &ip.to_string()]);
        }
        let guard = ChildGuard::spawn(env, &name, cmd);
        let peer = LibtorrentPeer {
            guard,
            ip: opts
                .host
                .as_ref()
                .map_or(opts.bind.unwrap_or(LOOPBACK), |h| h.ip),
            port,
            state_dir,
            peer_log,
            dht_log,
            seq: AtomicU64::new(0),
        };
        let st = peer.wait_status(
            "the libtorrent driver to start",
            Duration::from_secs(20),
            |_| true,
        );
        assert_eq!(
            st.listen_port,
            port,
            "libtorrent could not listen on {}:{port} (listen_port {}); errors: {:?}\n{}",
            peer.ip,
            st.listen_port,
            st.errors,
            peer.guard.log_tail(20)
        );
        peer
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, self.port))
    }

    /// The driver process (log, pid, stop/kill).
    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    /// Mutable access to the process, e.g. to [`ChildGuard::kill`] it mid-transfer.
    pub fn guard_mut(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }

    /// The latest status, or `None` before the first one is written.
    pub fn try_status(&self) -> Option<LtStatus> {
        let text = fs::read_to_string(self.state_dir.join("status.json")).ok()?;
        Some(
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("bad status.json from lt driver: {e}: {text}")),
        )
    }

    /// The latest status. Panics (with the driver's log) if the driver has died.
    pub fn status(&self) -> LtStatus {
        self.guard.assert_running();
        self.try_status().unwrap_or_else(|| {
            panic!(
                "lt driver has not written a status yet:\n{}",
                self.guard.log_tail(20)
            )
        })
    }

    /// Polls the status until `pred` holds; panics with the last status and the log otherwise.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&LtStatus) -> bool,
    ) -> LtStatus {
        wait_for(
            &format!("{}: {what}", self.guard.name()),
            timeout,
            Duration::from_millis(50),
            || {
                self.guard.assert_running();
                match self.try_status() {
                    Some(st) if pred(&st) => Ok(st),
                    Some(st) => Err(st.to_string()),
                    None => Err("no status yet".into()),
                }
            },
        )
        .map(|(st, _)| st)
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n--- {} log:\n{}",
                self.guard.name(),
                self.guard.log_tail(30)
            )
        })
    }

    /// Waits (20 s) until the torrent is seeding.
    pub fn wait_seeding(&self) -> LtStatus {
        self.wait_status("seeding", Duration::from_secs(20), |s| s.seeding)
    }

    /// Waits until the download is complete (libtorrent `is_finished`).
    pub fn wait_finished(&self, timeout: Duration) -> LtStatus {
        self.wait_status("download finished", timeout, |s| {
            s.finished && s.progress >= 1.0
        })
    }

    /// Waits until some connected peer satisfies `pred` and returns it.
    pub fn wait_peer(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&LtPeer) -> bool,
    ) -> LtPeer {
        let st = self.wait_status(what, timeout, |s| s.peers.iter().any(&pred));
        st.peers.into_iter().find(|p| pred(p)).unwrap()
    }

    /// Queues a driver command (see the driver's docs: `connect IP:PORT`, `pause`, `resume`,
    /// `upload_limit N`, `download_limit N`, `reannounce`, `recheck`, `exit`, and with the DHT
    /// `dht_announce`, `dht_node IP:PORT`) and waits until it has been executed.
    pub fn command(&self, line: &str) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let dir = self.state_dir.join("commands");
        let tmp = dir.join(format!(".tmp-{seq:08}"));
        fs::write(&tmp, line).expect("writing a command");
        // Rename, so the driver never reads a half-written command.
        fs::rename(&tmp, dir.join(format!("cmd-{seq:08}"))).expect("queueing a command");
        if line.trim() == "exit" {
            return;
        }
        self.wait_status(
            &format!("command `{line}` to run"),
            Duration::from_secs(10),
            |s| s.cmd_seq >= seq,
        );
    }

    /// Makes libtorrent dial `addr`.
    pub fn connect(&self, addr: SocketAddr) {
        self.command(&format!("connect {addr}"));
    }

    /// The wire log (only with [`LtOptions::peer_log`]): one line per event, `IP:PORT <dir>
    /// <MESSAGE> [details]`, where `<dir>` is `==>` (sent), `<==` (received), `***` (info),
    /// e.g. `127.0.0.1:51234 <== HAVE_ALL [  ]`.
    pub fn peer_log(&self) -> String {
        let path = self
            .peer_log
            .as_ref()
            .expect("peer_log was not enabled in LtOptions");
        fs::read_to_string(path).unwrap_or_default()
    }

    /// The DHT log (only with [`LtOptions::dht`]): every DHT packet (`dht_pkt_alert`, `==>` sent,
    /// `<==` received) and DHT log line, one per line.
    pub fn dht_log(&self) -> String {
        let path = self
            .dht_log
            .as_ref()
            .expect("dht was not enabled in LtOptions");
        fs::read_to_string(path).unwrap_or_default()
    }

    /// Stops the driver (SIGTERM, grace, SIGKILL).
    pub fn stop(&mut self) {
        self.guard.stop();
    }
}

/// A payload, its torrent and a libtorrent seeder of it: what [`seeded`] returns.
pub type Seeded = (
    crate::payload::Payload,
    crate::payload::Torrent,
    LibtorrentPeer,
);

/// The start of most download tests: `payload`'s torrent (pieces of 2^`piece_exp` bytes,
/// written as `<env>/<payload name>.torrent`) announcing to `tracker` and allowed there, and a
/// libtorrent seeder of it (`opts`, named `lt-seed-<payload name>` unless named) that has
/// announced, so a leecher asking the tracker finds it.
pub fn seeded(
    env: &TestEnv,
    tracker: &crate::tracker::Opentracker,
    payload: crate::payload::Payload,
    piece_exp: u32,
    opts: LtOptions,
) -> Seeded {
    let (torrent, seeder) =
        torrent_and_seeder(env, &tracker.announce_url(), &payload, piece_exp, |t| {
            tracker.allow(t.info_hash);
            opts
        });
    tracker.wait_seeder(torrent.info_hash, Duration::from_secs(20));
    (payload, torrent, seeder)
}

/// As [`seeded`], with a [`FakeHttpTracker`](crate::tracker::FakeHttpTracker) that names the
/// seeder to whoever announces; the seeder itself never announces (so it cannot learn a
/// leecher's address and dial it: the leecher must dial).
pub fn seeded_via_fake(
    env: &TestEnv,
    fake: &crate::tracker::FakeHttpTracker,
    payload: crate::payload::Payload,
    piece_exp: u32,
    opts: LtOptions,
) -> Seeded {
    let (torrent, seeder) =
        torrent_and_seeder(env, &fake.announce_url(), &payload, piece_exp, |_| {
            LtOptions {
                no_announce: true,
                ..opts
            }
        });
    fake.set_peers(&[std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        seeder.port(),
    )]);
    (payload, torrent, seeder)
}

/// `payload`'s torrent announcing to `announce`, and a seeder of it with the options `opts`
/// returns once the torrent exists, seeding.
fn torrent_and_seeder(
    env: &TestEnv,
    announce: &str,
    payload: &crate::payload::Payload,
    piece_exp: u32,
    opts: impl FnOnce(&crate::payload::Torrent) -> LtOptions,
) -> (crate::payload::Torrent, LibtorrentPeer) {
    let torrent = payload.make_torrent(
        &env.path().join(format!("{}.torrent", payload.name)),
        piece_exp,
        &[announce],
    );
    let opts = opts(&torrent);
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| format!("lt-seed-{}", payload.name));
    let seeder = LibtorrentPeer::spawn(
        env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            name: Some(name),
            ..opts
        },
    );
    seeder.wait_seeding();
    (torrent, seeder)
}
