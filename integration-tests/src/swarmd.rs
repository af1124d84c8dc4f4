//! Locating and running the real `swarmd` and `swarmctl` binaries.
//!
//! Binaries: `$SWARMD_BIN` / `$SWARMCTL_BIN` if set, else `<target>/release/{swarmd,swarmctl}`
//! where `<target>` is `$CARGO_TARGET_DIR` or the workspace's `target/`. If a binary is missing,
//! `cargo build --release --bin swarmd --bin swarmctl` runs once per test process. An existing
//! binary is used as is, even if stale (a build on every run would queue behind every other
//! build on the shared target dir): `make test` builds first; when iterating, run
//! `cargo build --release --bin swarmd --bin swarmctl` before the tests, or set
//! `SWARM_IT_REBUILD=1` to have the tests run that build once per process.
//!
//! Every process gets HOME and the XDG directories inside the test env ([`isolate`]) and never
//! sees systemd's directory variables, so swarmd runs in user mode and touches nothing outside
//! the test's temp dir. `swarmd` and `swarmctl` share [`default_home`], so `swarmctl` finds the
//! daemon's control socket.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::swarmd::{swarmctl, Swarmd};
//! # use swarm_integration_tests::util::TestEnv;
//! # let env = TestEnv::new("swarmd-example");
//! # let torrent = std::path::Path::new("t.torrent");
//! let leecher = Swarmd::download(torrent).out(&env.subdir("out")).spawn(&env);
//! // ... leecher.port() is its listen port on 127.0.0.1 ...
//! let status = leecher.wait_exit(Duration::from_secs(60)); // exits 0 once complete
//! assert!(status.success());
//!
//! let daemon = Swarmd::command(&["run"]).name("daemon").spawn(&env);
//! let out = swarmctl(&env, &["--help"]); // same HOME/XDG dirs as the daemon
//! # let _ = (daemon, out);
//! ```

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::netlab::Host;
use crate::util::{free_tcp_port, loopback, ChildGuard, TestEnv, LOOPBACK};

/// The workspace root (`integration-tests/..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests has a parent")
        .to_path_buf()
}

fn release_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace_root().join(t)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release")
}

/// Environment variable: set (not `0`) to run the release build once per process even when the
/// binaries exist.
pub const REBUILD_ENV: &str = "SWARM_IT_REBUILD";

/// Runs the release build once per process if a binary is missing (or `SWARM_IT_REBUILD` is set).
fn ensure_built(path: &Path) {
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    let forced = std::env::var(REBUILD_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    if path.exists() && !forced {
        return;
    }
    let r = BUILD.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        eprintln!(
            "{} missing: building swarmd and swarmctl (release)",
            path.display()
        );
        let out = Command::new(cargo)
            .args(["build", "--release", "--bin", "swarmd", "--bin", "swarmctl"])
            .current_dir(workspace_root())
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    if let Err(e) = r {
        panic!("building swarmd/swarmctl failed:\n{e}");
    }
    assert!(
        path.exists(),
        "{} still missing after cargo build",
        path.display()
    );
}

fn bin(env_var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        assert!(p.exists(), "{env_var}={} does not exist", p.display());
        return p;
    }
    let p = release_dir().join(name);
    ensure_built(&p);
    p
}

/// Path of the `swarmd` binary (see the module docs).
pub fn swarmd_bin() -> PathBuf {
    bin("SWARMD_BIN", "swarmd")
}

/// Path of the `swarmctl` binary (see the module docs).
pub fn swarmctl_bin() -> PathBuf {
    bin("SWARMCTL_BIN", "swarmctl")
}

/// Environment variable: a prebuilt `fault-injection` swarmd to use instead of building one.
pub const FAULT_BIN_ENV: &str = "SWARMD_FAULT_BIN";

/// The `fault-injection` build of swarmd (`SWARMD_FAULTS=point:p,…` makes its fault points
/// panic): `$SWARMD_FAULT_BIN` if set (`make test` builds it and sets it), else `target/fault/release/swarmd`, built once per test
/// process with
/// `cargo build --release -p swarmd --bin swarmd --features fault-injection --target-dir target/fault`
/// (a no-op when it is up to date; its own target dir, so it never replaces the normal build).
/// Another test binary may run the same build concurrently: cargo's lock serialises them.
/// Panics with cargo's output if the build fails.
pub fn fault_swarmd_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os(FAULT_BIN_ENV) {
            let p = PathBuf::from(p);
            return if p.exists() {
                Ok(p)
            } else {
                Err(format!("{FAULT_BIN_ENV}={} does not exist", p.display()))
            };
        }
        let root = workspace_root();
        let target = root.join("target/fault");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "swarmd",
                "--bin",
                "swarmd",
                "--features",
                "fault-injection",
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(&root)
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let bin = target.join("release/swarmd");
        if bin.exists() {
            Ok(bin)
        } else {
            Err(format!("{} missing after cargo build", bin.display()))
        }
    })
    .clone()
    .unwrap_or_else(|e| panic!("building swarmd with --features fault-injection failed:\n{e}"))
}

/// Environment variables through which systemd puts swarmd into system mode (`/etc/swarmd`,
/// `/var/lib/swarmd`): removed for every child, so a test can never touch system directories.
const SYSTEMD_VARS: &[&str] = &[
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
    "CACHE_DIRECTORY",
    "LOGS_DIRECTORY",
    "NOTIFY_SOCKET",
    "LISTEN_FDS",
    "LISTEN_PID",
];

/// The default per-test home of swarmd and swarmctl: `<env>/home`. Sharing it is what lets
/// `swarmctl` find the daemon's control socket (`$XDG_RUNTIME_DIR/swarmd/...`).
pub fn default_home(env: &TestEnv) -> PathBuf {
    env.subdir("home")
}

/// Points `cmd` at `home` for everything swarmd/swarmctl read or write: `HOME` and the XDG
/// directories (config, data, state, cache, runtime), and drops systemd's directory variables.
pub fn isolate(cmd: &mut Command, home: &Path) {
    for v in SYSTEMD_VARS {
        cmd.env_remove(v);
    }
    let runtime = home.join("run");
    let _ = std::fs::create_dir_all(&runtime);
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", runtime);
}

#[derive(Clone, Debug)]
enum Mode {
    Download {
        torrent: PathBuf,
        out: Option<PathBuf>,
        seed: bool,
    },
    Raw,
}

/// Builder for a guarded `swarmd` process: either the one-shot
/// `swarmd download TORRENT -o DIR --listen 127.0.0.1:PORT [--seed] [args...]`
/// ([`Swarmd::download`]), or any other invocation ([`Swarmd::command`], e.g. the daemon).
/// HOME and the XDG directories point into the test env (see [`isolate`]); `RUST_LOG` defaults
/// to `info`.
#[derive(Clone, Debug)]
pub struct Swarmd {
    mode: Mode,
    port: Option<u16>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    home: Option<PathBuf>,
    name: String,
    bin: Option<PathBuf>,
    host: Option<Host>,
}

impl Swarmd {
    /// Starts building a `swarmd download` of `torrent`.
    pub fn download(torrent: &Path) -> Swarmd {
        Swarmd {
            mode: Mode::Download {
                torrent: torrent.to_path_buf(),
                out: None,
                seed: false,
            },
            port: None,
            args: Vec::new(),
            envs: Vec::new(),
            home: None,
            name: "swarmd".into(),
            bin: None,
            host: None,
        }
    }

    /// Starts building `swarmd ARGS` (no arguments added), e.g. `["--config", "c.toml", "run"]`.
    pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Swarmd {
        Swarmd {
            mode: Mode::Raw,
            port: None,
            args: args.iter().map(|a| a.as_ref().to_owned()).collect(),
            envs: Vec::new(),
            home: None,
            name: "swarmd".into(),
            bin: None,
            host: None,
        }
    }

    /// Download mode: output (save) directory; default: a fresh `swarmd-out` subdirectory.
    pub fn out(mut self, dir: &Path) -> Self {
        if let Mode::Download { out, .. } = &mut self.mode {
            *out = Some(dir.to_path_buf());
        }
        self
    }

    /// Download mode: the listen port on 127.0.0.1 (default: a free one). Command mode: only
    /// records the port for [`SwarmdProcess::port`] (put it in the config yourself).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Download mode: pass `--seed` (keep seeding after completion).
    pub fn seed(mut self, yes: bool) -> Self {
        if let Mode::Download { seed, .. } = &mut self.mode {
            *seed = yes;
        }
        self
    }

    /// An extra argument, appended after the standard ones.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// An environment variable for the daemon (e.g. `RUST_LOG`).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// HOME for the process (default [`default_home`]).
    pub fn home(mut self, dir: &Path) -> Self {
        self.home = Some(dir.to_path_buf());
        self
    }

    /// Name of the log file / guard (default `swarmd`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Run this binary instead of [`swarmd_bin`] (e.g. a `fault-injection` build).
    pub fn bin(mut self, path: &Path) -> Self {
        self.bin = Some(path.to_path_buf());
        self
    }

    /// Run inside a lab host's network namespace ([`crate::netlab`]). Download mode then
    /// listens on the host's address; command mode leaves the listen address to the config.
    pub fn on_host(mut self, host: &Host) -> Self {
        self.host = Some(host.clone());
        self
    }

    /// Spawns the process as a guarded child. Does not wait for anything.
    pub fn spawn(self, env: &TestEnv) -> SwarmdProcess {
        let mut cmd = Command::new(self.bin.clone().unwrap_or_else(swarmd_bin));
        let mut port = self.port;
        let mut out_dir = None;
        if let Mode::Download { torrent, out, seed } = &self.mode {
            let out = out
                .clone()
                .unwrap_or_else(|| env.unique_subdir("swarmd-out"));
            let p = *port.get_or_insert_with(free_tcp_port);
            cmd.arg("download")
                .arg(torrent)
                .arg("-o")
                .arg(&out)
                .arg("--listen")
                .arg(format!(
                    "{}:{p}",
                    self.host.as_ref().map_or(LOOPBACK, |h| h.ip)
                ));
            if *seed {
                cmd.arg("--seed");
            }
            out_dir = Some(out);
        }
        cmd.args(&self.args);
        let home = self.home.clone().unwrap_or_else(|| default_home(env));
        isolate(&mut cmd, &home);
        cmd.current_dir(env.path());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        if let Some(h) = &self.host {
            cmd = h.wrap(&cmd);
        }
        let guard = ChildGuard::spawn(env, &self.name, cmd);
        SwarmdProcess {
            guard,
            port,
            out: out_dir,
            home,
        }
    }
}

/// A running swarmd. Killed (SIGTERM, then SIGKILL) on drop.
pub struct SwarmdProcess {
    guard: ChildGuard,
    port: Option<u16>,
    out: Option<PathBuf>,
    home: PathBuf,
}

impl SwarmdProcess {
    /// The peer listen port on 127.0.0.1. Panics if unknown (command mode without `.port()`).
    pub fn port(&self) -> u16 {
        self.port
            .expect("swarmd's listen port is unknown: set it with Swarmd::port")
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port())
    }

    /// The output directory (download mode).
    pub fn out_dir(&self) -> &Path {
        self.out
            .as_deref()
            .expect("not a `swarmd download` process")
    }

    /// The HOME the process runs with (pass it to [`swarmctl_with_home`]).
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    pub fn guard_mut(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }

    /// Waits until the process accepts TCP connections on its listen port.
    pub fn wait_listening(&self, timeout: Duration) {
        crate::util::wait_until(
            &format!("swarmd to listen on {}", self.addr()),
            timeout,
            Duration::from_millis(50),
            || {
                self.guard.assert_running();
                std::net::TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200))
                    .is_ok()
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)));
    }

    /// Waits for the process to exit by itself (e.g. `swarmd download` without `--seed` once the
    /// download is complete) and returns its status; panics with the log on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        self.guard
            .wait_exit(timeout)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.guard.log_tail(30)))
    }

    /// Waits for a one-shot download to exit by itself and checks that it exited 0 (complete).
    pub fn expect_complete(&self, timeout: Duration) {
        let st = self.wait_exit(timeout);
        assert!(
            st.success(),
            "{} exited with {st} instead of completing:\n{}",
            self.guard.name(),
            self.guard.log_tail(40)
        );
    }
}

/// Runs `swarmctl ARGS` with the test's default home (shared with [`Swarmd`], so it finds the
/// daemon's socket). See [`swarmctl_with_home`].
pub fn swarmctl(env: &TestEnv, args: &[&str]) -> Output {
    swarmctl_with_home(env, &default_home(env), args)
}

/// `swarmctl ARGS` with the test's default home: (exit code, stdout, stderr).
pub fn swarmctl_code(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = swarmctl(env, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `swarmctl ARGS` must exit 0; returns its stdout.
#[track_caller]
pub fn swarmctl_ok(env: &TestEnv, args: &[&str]) -> String {
    let (code, out, err) = swarmctl_code(env, args);
    assert_eq!(
        code, 0,
        "swarmctl {args:?} exited {code}\nstdout: {out}\nstderr: {err}"
    );
    out
}

/// Runs `swarmctl ARGS` to completion with HOME/XDG dirs in `home`, at most 30 s (then it is
/// killed and the test panics), and returns its output. Output is also kept in
/// `logs/swarmctl*.log`.
pub fn swarmctl_with_home(env: &TestEnv, home: &Path, args: &[&str]) -> Output {
    let log = env.new_log_path("swarmctl");
    let stdout_path = log.with_extension("stdout");
    let stderr_path = log.with_extension("stderr");
    let mut cmd = Command::new(swarmctl_bin());
    cmd.args(args).current_dir(env.path());
    isolate(&mut cmd, home);
    // Files rather than pipes: nothing to drain while we poll with a deadline.
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running swarmctl {args:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for swarmctl") {
            break st;
        }
        if Instant::now() > deadline {
            // SAFETY: the child is unreaped, so its pgid still names its own group.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
            panic!("swarmctl {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read(&stderr_path).unwrap_or_default(),
    };
    let _ = std::fs::write(
        &log,
        format!(
            "$ swarmctl {args:?}\n{status}\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    );
    let _ = std::fs::remove_file(stdout_path);
    let _ = std::fs::remove_file(stderr_path);
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The spawning plumbing, with a stand-in script for swarmd: arguments, isolation, guard.
    #[test]
    fn download_command_line_and_isolation() {
        let env = TestEnv::new("swarmd-spawn");
        let fake = env.path().join("fake-swarmd");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"ARGS $*\"\necho \"HOME $HOME RUNTIME $XDG_RUNTIME_DIR\"\nexec sleep 60\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let torrent = env.path().join("x.torrent");
        let p = Swarmd::download(&torrent)
            .seed(true)
            .arg("--timeout")
            .arg("5")
            .bin(&fake)
            .spawn(&env);
        crate::util::wait_until(
            "the stand-in to print",
            Duration::from_secs(5),
            Duration::from_millis(10),
            || p.guard().log_contents().contains("\nHOME "),
        )
        .unwrap();
        let log = p.guard().log_contents();
        let expected = format!(
            "ARGS download {} -o {} --listen 127.0.0.1:{} --seed --timeout 5",
            torrent.display(),
            p.out_dir().display(),
            p.port()
        );
        assert!(log.contains(&expected), "{log}");
        assert!(
            log.contains(&format!("HOME {}", default_home(&env).display())),
            "{log}"
        );
        assert!(p.guard().is_running());
    }
}
