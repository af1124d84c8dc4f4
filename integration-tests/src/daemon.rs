//! A `swarmd run` daemon for the daemon-level tests: its config file and directories inside the
//! test's temp dir, start-up until the control socket answers, and JSON-RPC calls on that
//! socket (a fresh connection per call, as scripts make them).
//!
//! ```no_run
//! use swarm_integration_tests::daemon::{self, DaemonConfig};
//! use swarm_integration_tests::swarmd::Swarmd;
//! # use swarm_integration_tests::util::{free_tcp_port, TestEnv};
//! # let env = TestEnv::new("daemon-example");
//! let dirs = DaemonConfig::new("doc example").write(&env, free_tcp_port());
//! let proc = daemon::start(&env, &dirs, Swarmd::command(&[] as &[&str]), "info");
//! let info = daemon::rpc(&dirs.socket, "daemon.info", None).unwrap();
//! # let _ = (proc, info);
//! ```

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::swarmd::{default_home, Swarmd, SwarmdProcess};
use crate::util::{wait_for, wait_until, TestEnv};

/// How long a daemon may take to answer on its control socket after the spawn.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a test daemon keeps things (all inside the test's temp dir).
#[derive(Clone, Debug)]
pub struct DaemonDirs {
    pub port: u16,
    pub home: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
    pub downloads: PathBuf,
    /// The watch directory (only in the config when [`DaemonConfig::watch_rescan_secs`] is set).
    pub watch: PathBuf,
    pub socket: PathBuf,
}

/// A test daemon's config file: 127.0.0.1:`port`, explicit directories, no DHT, a 3 s connect
/// timeout and short tracker timeouts.
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
        let text = format!(
            r#"# written by {by}
[daemon]
state_dir = "{state}"
download_dir = "{downloads}"

[network]
listen = "127.0.0.1:{port}"
connect_timeout_secs = 3

[dht]
enabled = false
bootstrap = []

[watch]
{watch}
{trackers}{extra}
"#,
            by = self.written_by,
            state = dirs.state.display(),
            downloads = dirs.downloads.display(),
            extra = self.extra,
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
