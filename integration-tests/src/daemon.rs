//! A `swarmd run` daemon for the daemon-level tests: its config file and directories inside the
//! test's temp dir ([`DaemonConfig`]), start-up until the control socket answers ([`start`]),
//! JSON-RPC calls on that socket ([`rpc`], a fresh connection per call, as scripts make them),
//! and [`Daemon`], the one harness the test binaries share: a running daemon (the normal build or
//! the fault-injection build) with its directories, its control socket, `swarmctl` pointed at it,
//! its log and its RSS. [`Events`] collects its event stream.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::daemon::{is_complete_seed, Daemon, DaemonConfig};
//! # use swarm_integration_tests::util::{free_tcp_port, TestEnv};
//! # let env = TestEnv::new("daemon-example");
//! # let torrent = std::path::Path::new("t.torrent");
//! let dirs = DaemonConfig::new("doc example").write(&env, free_tcp_port());
//! let d = Daemon::start(&env, &dirs, "daemon");
//! let ih = d.add(torrent, None);
//! d.wait_torrent(&ih, "the download", Duration::from_secs(60), is_complete_seed);
//! let limits = d.ctl_json(&["limits"]); // `swarmctl limits --json` against this daemon
//! # let _ = limits;
//! ```

use std::fs;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

use crate::swarmd::{default_home, fault_swarmd_bin, swarmctl_with_home, Swarmd, SwarmdProcess};
use crate::util::{base64, rss_bytes, wait_for, wait_until, ChildGuard, TestEnv};

/// How long a daemon may take to answer on its control socket after the spawn.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a test daemon keeps things (all inside the test's temp dir).
#[derive(Clone, Debug)]
pub struct DaemonDirs {
    /// The peer listen address: 127.0.0.1 unless [`DaemonConfig::listen_ip`] says otherwise.
    pub ip: Ipv4Addr,
    pub port: u16,
    pub home: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
    pub downloads: PathBuf,
    /// The watch directory (only in the config when [`DaemonConfig::watch_rescan_secs`] is set).
    pub watch: PathBuf,
    pub socket: PathBuf,
}

/// A test daemon's config file: 127.0.0.1:`port`, explicit directories, no DHT (unless `extra`
/// has its own `[dht]`), a 3 s connect timeout and short tracker timeouts.
#[derive(Clone, Debug)]
pub struct DaemonConfig<'a> {
    /// Who wrote it (a comment at the top of the file).
    pub written_by: &'a str,
    /// `Some(name)`: `<name>.toml`, `state-<name>`, `downloads-<name>`, `watch-<name>` and a home
    /// of its own, `home-<name>` (so its own control socket); `None`: `swarmd.toml`, `state`,
    /// `downloads`, `watch` and the test's default home, which plain `swarmctl` calls share.
    pub name: Option<&'a str>,
    /// The watch directory's rescan period; `None`: no watch directory.
    pub watch_rescan_secs: Option<u32>,
    /// `[trackers] stopped_timeout_secs` (with `announce_timeout_secs = 5`). The section is left
    /// out when `extra` has its own `[trackers]`.
    pub stopped_timeout_secs: u32,
    /// Make the download and watch directories now (otherwise the daemon makes them).
    pub make_dirs: bool,
    /// Appended verbatim: whole sections not written above (`[limits]`, `[control]`, …).
    pub extra: &'a str,
    /// The listen address (default 127.0.0.1; a lab host's address for a daemon run in a
    /// network namespace, see [`crate::netlab`]).
    pub listen_ip: Ipv4Addr,
    /// Lines appended to the `[network]` section (e.g. `transports = ["utp"]`).
    pub network: &'a str,
    /// Lines appended to the `[daemon]` section (e.g. `incomplete_dir = "…"`).
    pub daemon: &'a str,
}

impl<'a> DaemonConfig<'a> {
    /// Default home, a watch directory rescanned every 2 s, `stopped` announces bounded to 3 s,
    /// directories left to the daemon, nothing extra.
    pub fn new(written_by: &'a str) -> Self {
        DaemonConfig {
            written_by,
            name: None,
            watch_rescan_secs: Some(2),
            stopped_timeout_secs: 3,
            make_dirs: false,
            extra: "",
            listen_ip: Ipv4Addr::LOCALHOST,
            network: "",
            daemon: "",
        }
    }

    /// The preset of tests that restart, crash and stop daemons often: a watch directory rescanned
    /// every second, `stopped` announces bounded to 1 s (a shutdown never waits long for a
    /// tracker), the download and watch directories made up front.
    pub fn fast(written_by: &'a str) -> Self {
        DaemonConfig {
            watch_rescan_secs: Some(1),
            stopped_timeout_secs: 1,
            make_dirs: true,
            ..DaemonConfig::new(written_by)
        }
    }

    /// Writes the file; returns where everything is.
    pub fn write(&self, env: &TestEnv, port: u16) -> DaemonDirs {
        let at = |what: &str| match self.name {
            Some(n) => env.path().join(format!("{what}-{n}")),
            None => env.path().join(what),
        };
        let home = match self.name {
            Some(_) => at("home"),
            None => default_home(env),
        };
        let dirs = DaemonDirs {
            ip: self.listen_ip,
            port,
            config: env
                .path()
                .join(format!("{}.toml", self.name.unwrap_or("swarmd"))),
            state: at("state"),
            downloads: at("downloads"),
            watch: at("watch"),
            // The user-mode default: $XDG_RUNTIME_DIR/swarmd/swarmd.sock under the home.
            socket: home.join("run/swarmd/swarmd.sock"),
            home,
        };
        let mut make = vec![&dirs.home];
        if self.make_dirs {
            make.extend([&dirs.downloads, &dirs.watch]);
        }
        for d in make {
            fs::create_dir_all(d).expect("making the daemon's directories");
        }
        let watch = match self.watch_rescan_secs {
            Some(secs) => format!("dir = \"{}\"\nrescan_secs = {secs}", dirs.watch.display()),
            None => "enabled = false".to_owned(),
        };
        let trackers = if self.extra.contains("[trackers]") {
            String::new()
        } else {
            format!(
                "\n[trackers]\nstopped_timeout_secs = {}\nannounce_timeout_secs = 5\n",
                self.stopped_timeout_secs
            )
        };
        let dht = if self.extra.contains("[dht]") {
            ""
        } else {
            "[dht]\nenabled = false\nbootstrap = []\n"
        };
        let text = format!(
            r#"# written by {by}
[daemon]
state_dir = "{state}"
download_dir = "{downloads}"
{daemon}

[network]
listen = "{listen_ip}:{port}"
connect_timeout_secs = 3
{network}

{dht}
[watch]
{watch}
{trackers}{extra}
"#,
            by = self.written_by,
            state = dirs.state.display(),
            downloads = dirs.downloads.display(),
            extra = self.extra,
            listen_ip = self.listen_ip,
            network = self.network,
            daemon = self.daemon,
        );
        fs::write(&dirs.config, text).expect("writing the daemon's config");
        dirs
    }
}

/// Spawns `builder --config <config> run` (listening on `dirs.port`, HOME `dirs.home`,
/// `RUST_LOG=rust_log`) and waits until its control socket answers; panics with the log's tail
/// after [`START_TIMEOUT`] or if the daemon exits.
pub fn start(env: &TestEnv, dirs: &DaemonDirs, builder: Swarmd, rust_log: &str) -> SwarmdProcess {
    let proc = builder
        .arg("--config")
        .arg(&dirs.config)
        .arg("run")
        .port(dirs.port)
        .home(&dirs.home)
        .env("RUST_LOG", rust_log)
        .spawn(env);
    wait_until(
        "swarmd's control socket to answer",
        START_TIMEOUT,
        Duration::from_millis(20),
        || {
            proc.guard().assert_running();
            rpc(&dirs.socket, "daemon.info", None).is_ok()
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", proc.guard().log_tail(40)));
    proc
}

/// One JSON-RPC call on a fresh connection; `Ok(result)` or `Err(the error object, or what went
/// wrong on the socket)`. Reads for at most 10 s.
pub fn rpc(socket: &Path, method: &str, params: Option<Value>) -> Result<Value, String> {
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut req = json!({"jsonrpc": "2.0", "id": 1, "method": method});
    if let Some(p) = params {
        req["params"] = p;
    }
    let mut line = req.to_string();
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let v: Value = serde_json::from_str(&answer).map_err(|e| format!("{e}: {answer:?}"))?;
    match v.get("error") {
        Some(e) => Err(e.to_string()),
        None => Ok(v["result"].clone()),
    }
}

/// A one-line summary of a `torrent.show` result, for "still waiting" messages.
pub fn brief(v: &Value) -> String {
    format!(
        "state={} have={}/{} downloaded={} rate={} peers={} error={}",
        v["state"],
        v["have_bytes"],
        v["total_bytes"],
        v["downloaded"],
        v["download_rate"],
        v["peers"],
        v["error"]
    )
}

/// A `torrent.show` (or list entry) of a torrent seeding with every byte.
pub fn is_complete_seed(v: &Value) -> bool {
    v["state"] == "seeding" && v["have_bytes"] == v["total_bytes"]
}

/// Polls `torrent.show` of `ih` every 100 ms until `pred` holds and returns that answer; panics
/// after `timeout` (or if the daemon exits) with the last state and the tail of the daemon's log.
pub fn wait_torrent(
    proc: &SwarmdProcess,
    socket: &Path,
    ih: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, timeout, Duration::from_millis(100), || {
        proc.guard().assert_running();
        let v = rpc(socket, "torrent.show", Some(json!({ "torrent": ih })))?;
        if pred(&v) {
            Ok(v)
        } else {
            Err(brief(&v))
        }
    })
    .map(|(v, _)| v)
    .unwrap_or_else(|e| {
        let g = proc.guard();
        panic!("{e}\n--- {} log:\n{}", g.name(), g.log_tail(60))
    })
}

/// `RUST_LOG` of a [`Daemon`]: the daemon's and the engine's debug lines are what a failure
/// report needs (peer connections, restarts, announces).
pub const DAEMON_LOG: &str = "info,swarmd=debug,swarm_engine=debug";

/// A running `swarmd --config … run` and where it keeps things. Killed (SIGTERM, then SIGKILL)
/// on drop. `swarmctl` calls through it use the daemon's own home, so they reach its socket.
pub struct Daemon {
    pub proc: SwarmdProcess,
    pub dirs: DaemonDirs,
    env: TestEnv,
}

impl Daemon {
    /// The normal build, its log named `name`; returns once the control socket answers.
    pub fn start(env: &TestEnv, dirs: &DaemonDirs, name: &str) -> Daemon {
        Self::start_with(env, dirs, Swarmd::command(&[] as &[&str]).name(name))
    }

    /// The fault-injection build ([`fault_swarmd_bin`]) with `SWARMD_FAULTS=faults`
    /// (`point:probability,…`).
    pub fn start_faulty(env: &TestEnv, dirs: &DaemonDirs, name: &str, faults: &str) -> Daemon {
        Self::start_with(env, dirs, Self::fault_build(name, faults))
    }

    /// The builder [`Daemon::start_faulty`] uses, for a test that adds its own environment
    /// (e.g. `NOTIFY_SOCKET`). Backtraces are off: an injected panic is expected, and its one
    /// line (`injected fault at POINT`) is what the tests count.
    pub fn fault_build(name: &str, faults: &str) -> Swarmd {
        Swarmd::command(&[] as &[&str])
            .name(name)
            .bin(&fault_swarmd_bin())
            .env("SWARMD_FAULTS", faults)
            .env("RUST_BACKTRACE", "0")
    }

    /// Spawns `builder --config … run` with [`DAEMON_LOG`] and waits for the control socket.
    pub fn start_with(env: &TestEnv, dirs: &DaemonDirs, builder: Swarmd) -> Daemon {
        Daemon {
            proc: start(env, dirs, builder, DAEMON_LOG),
            dirs: dirs.clone(),
            env: env.clone(),
        }
    }

    pub fn guard(&self) -> &ChildGuard {
        self.proc.guard()
    }

    /// The peer listen port.
    pub fn port(&self) -> u16 {
        self.dirs.port
    }

    /// `ip:port` (127.0.0.1 unless the daemon runs on a lab host), for peers that dial it.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.dirs.ip, self.dirs.port))
    }

    pub fn pid(&self) -> u32 {
        self.guard().pid()
    }

    /// One JSON-RPC call on the control socket (see [`rpc`]).
    pub fn rpc(&self, method: &str, params: Option<Value>) -> Result<Value, String> {
        rpc(&self.dirs.socket, method, params)
    }

    /// `torrent.show` of `ih`.
    pub fn show(&self, ih: &str) -> Result<Value, String> {
        self.rpc("torrent.show", Some(json!({ "torrent": ih })))
    }

    /// `torrent.peers` of `ih`; panics with the log if the call fails.
    pub fn peers(&self, ih: &str) -> Vec<Value> {
        match self.rpc("torrent.peers", Some(json!({ "torrent": ih }))) {
            Ok(Value::Array(a)) => a,
            other => panic!("torrent.peers: {other:?}\n{}", self.log_tail()),
        }
    }

    /// Adds a `.torrent` through the control socket (as `swarmctl add` does, by content), into
    /// `save_dir` or the default download directory; returns the info-hash (hex).
    pub fn add(&self, torrent: &Path, save_dir: Option<&Path>) -> String {
        let bytes = fs::read(torrent).unwrap_or_else(|e| panic!("{}: {e}", torrent.display()));
        let mut params = json!({ "metainfo": base64(&bytes) });
        if let Some(d) = save_dir {
            params["save_dir"] = json!(d.display().to_string());
        }
        let v = self
            .rpc("torrent.add", Some(params))
            .unwrap_or_else(|e| panic!("torrent.add {}: {e}", torrent.display()));
        v["info_hash"]
            .as_str()
            .unwrap_or_else(|| panic!("no info_hash in torrent.add's answer: {v}"))
            .to_string()
    }

    /// Panics with the log unless the daemon runs and answers on its control socket.
    #[track_caller]
    pub fn assert_alive(&self, after: &str) {
        self.guard().assert_running();
        if let Err(e) = self.rpc("daemon.info", None) {
            panic!(
                "swarmd no longer answers after {after}: {e}\n{}",
                self.guard().log_tail(40)
            );
        }
    }

    /// Polls `torrent.show` until `pred` holds (see [`wait_torrent`]).
    pub fn wait_torrent(
        &self,
        ih: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_torrent(&self.proc, &self.dirs.socket, ih, what, timeout, pred)
    }

    /// Waits until `path` exists while the daemon keeps running; panics with the log.
    pub fn wait_file(&self, path: &Path, what: &str, timeout: Duration) {
        wait_until(what, timeout, Duration::from_millis(100), || {
            self.guard().assert_running();
            path.exists()
        })
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", path.display(), self.log_tail()));
    }

    /// `swarmctl ARGS` against this daemon: (exit code, stdout, stderr).
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = swarmctl_with_home(&self.env, &self.dirs.home, args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `swarmctl ARGS` must exit 0; returns stdout.
    #[track_caller]
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        self.ctl_expect(args, 0).0
    }

    /// `swarmctl ARGS` must exit with `code`; returns stderr (where the reason is).
    #[track_caller]
    pub fn ctl_exit(&self, args: &[&str], code: i32) -> String {
        self.ctl_expect(args, code).1
    }

    /// `swarmctl ARGS --json` must exit 0 and print one JSON value, which it returns.
    #[track_caller]
    pub fn ctl_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ctl_ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("swarmctl {args:?} printed no JSON ({e}):\n{out}"))
    }

    #[track_caller]
    fn ctl_expect(&self, args: &[&str], code: i32) -> (String, String) {
        let (got, out, err) = self.ctl(args);
        assert_eq!(
            got,
            code,
            "swarmctl {args:?}: expected exit {code}, got {got}\nstdout: {out}\nstderr: {err}\n{}",
            self.log_tail()
        );
        (out, err)
    }

    /// The last 40 lines of the daemon's log, under a header naming it.
    pub fn log_tail(&self) -> String {
        let g = self.guard();
        format!("--- {} log:\n{}", g.name(), g.log_tail(40))
    }

    /// Lines of the daemon's log containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.guard()
            .log_contents()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// The daemon's resident set size in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.guard().assert_running();
        rss_bytes(self.pid())
    }

    /// Waits for the daemon to exit by itself (after `shutdown` or SIGTERM); panics with the log
    /// on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        self.proc.wait_exit(timeout)
    }

    /// `kill -9` of the daemon's process group (a crash, as far as it can tell), and reaped.
    pub fn kill(&mut self) {
        self.proc.guard_mut().kill();
    }
}

/// The daemon's event stream (`events.subscribe`), collected by a thread until dropped.
pub struct Events {
    seen: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Events {
    /// Subscribes on a connection of its own to `socket`.
    pub fn subscribe(socket: &Path) -> Events {
        let mut stream = UnixStream::connect(socket).expect("connecting for events");
        stream
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\"}\n")
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || collect_events(stream, &seen, &stop))
        };
        Events {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Every event so far (the `params` of each notification).
    pub fn all(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }

    /// Events of kind `kind` ("error", "completed", …) for `ih`.
    pub fn of(&self, kind: &str, ih: &str) -> Vec<Value> {
        self.all()
            .into_iter()
            .filter(|e| e["event"] == kind && e["info_hash"] == ih)
            .collect()
    }
}

/// Reads event notifications, one JSON line each, until `stop` or the daemon hangs up.
fn collect_events(mut stream: UnixStream, seen: &Mutex<Vec<Value>>, stop: &AtomicBool) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
        while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                if v["method"] == "event" {
                    seen.lock().unwrap().push(v["params"].clone());
                }
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
