//! Locating and running the real `swarmd` and `swarmctl` binaries.
//!
//! Binaries: `$SWARMD_BIN` / `$SWARMCTL_BIN` if set, else `<target>/release/{swarmd,swarmctl}`
//! where `<target>` is `$CARGO_TARGET_DIR` or the workspace's `target/`. If a binary is missing,
//! `cargo build --release --bin swarmd --bin swarmctl` runs once per test process. An existing
//! binary is used as is, even if stale: `make test` builds first; when iterating run
//! `cargo build --release --bin swarmd --bin swarmctl` before the tests.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::swarmd::{swarmctl, Swarmd};
//! # use swarm_integration_tests::util::TestEnv;
//! # let env = TestEnv::new("swarmd-example");
//! # let torrent = std::path::Path::new("t.torrent");
//! let leecher = Swarmd::download(torrent).out(&env.subdir("out")).spawn(&env);
//! // ... leecher.port() is its listen port on 127.0.0.1 ...
//! let out = swarmctl(&env, &["--help"]);
//! # let _ = (leecher, out);
//! ```

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{free_tcp_port, loopback, ChildGuard, TestEnv};

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

/// Runs the release build once per process, only if a binary is missing.
fn ensure_built(path: &Path) {
    static BUILD: OnceLock<Result<(), String>> = OnceLock::new();
    if path.exists() {
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

/// Builder for `swarmd download TORRENT -o DIR --listen 127.0.0.1:PORT [--seed] [args...]`.
#[derive(Clone, Debug)]
pub struct Swarmd {
    torrent: PathBuf,
    out: Option<PathBuf>,
    port: Option<u16>,
    seed: bool,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    name: String,
}

impl Swarmd {
    /// Starts building a `swarmd download` of `torrent`.
    pub fn download(torrent: &Path) -> Swarmd {
        Swarmd {
            torrent: torrent.to_path_buf(),
            out: None,
            port: None,
            seed: false,
            args: Vec::new(),
            envs: Vec::new(),
            name: "swarmd".into(),
        }
    }

    /// Output (save) directory; default: a fresh `swarmd-out` subdirectory of the test env.
    pub fn out(mut self, dir: &Path) -> Self {
        self.out = Some(dir.to_path_buf());
        self
    }

    /// Listen port on 127.0.0.1; default: a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Pass `--seed`.
    pub fn seed(mut self, seed: bool) -> Self {
        self.seed = seed;
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

    /// Name of the log file / guard (default `swarmd`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Spawns the daemon as a guarded child. Does not wait for anything.
    pub fn spawn(self, env: &TestEnv) -> SwarmdProcess {
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| env.unique_subdir("swarmd-out"));
        let port = self.port.unwrap_or_else(free_tcp_port);
        let mut cmd = Command::new(swarmd_bin());
        cmd.arg("download")
            .arg(&self.torrent)
            .arg("-o")
            .arg(&out)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"));
        if self.seed {
            cmd.arg("--seed");
        }
        cmd.args(&self.args);
        // Keep the daemon's config/state out of the real home directory.
        let home = env.unique_subdir(&format!("{}-home", self.name));
        cmd.env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_RUNTIME_DIR", &home)
            .current_dir(env.path());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let guard = ChildGuard::spawn(env, &self.name, cmd);
        SwarmdProcess { guard, port, out }
    }
}

/// A running swarmd. Killed (SIGTERM, then SIGKILL) on drop.
pub struct SwarmdProcess {
    guard: ChildGuard,
    port: u16,
    out: PathBuf,
}

impl SwarmdProcess {
    /// The listen port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The output directory.
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    pub fn guard(&self) -> &ChildGuard {
        &self.guard
    }

    pub fn guard_mut(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }

    /// Waits until the daemon accepts TCP connections on its listen port.
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
}

/// Runs `swarmctl ARGS` to completion (30 s limit, with HOME inside the test env) and returns
/// its output. Panics if it cannot be run or does not finish in time.
pub fn swarmctl(env: &TestEnv, args: &[&str]) -> Output {
    let home = env.subdir("swarmctl-home");
    let log = env.new_log_path("swarmctl");
    let mut cmd = Command::new(swarmctl_bin());
    cmd.args(args)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &home)
        .current_dir(env.path());
    // Run as a guarded child so a hung swarmctl cannot hang the test: stdout/stderr are captured
    // through files rather than pipes (the guard owns the process).
    let stdout_path = log.with_extension("stdout");
    let stderr_path = log.with_extension("stderr");
    cmd.stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .process_group(0);
    use std::os::unix::process::CommandExt as _;
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running swarmctl {args:?}: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for swarmctl") {
            break st;
        }
        if std::time::Instant::now() > deadline {
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
