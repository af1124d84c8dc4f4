//! Plumbing every test needs: loopback ports, a per-test scratch directory whose logs are printed
//! when the test fails, bounded polling, guarded child processes, tool checks, base64 and a
//! process's RSS.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::util::{wait_until, ChildGuard, TestEnv};
//!
//! let env = TestEnv::new("example");
//! let mut cmd = std::process::Command::new("sleep");
//! cmd.arg("30");
//! let child = ChildGuard::spawn(&env, "sleeper", cmd);
//! wait_until("sleeper is running", Duration::from_secs(1), Duration::from_millis(10), || {
//!     child.is_running()
//! })
//! .unwrap();
//! // Dropping `child` sends SIGTERM to its process group, then SIGKILL after a grace period.
//! ```

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The only address the tests use.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((LOOPBACK, port))
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// Ports handed out by this process, never handed out twice: two drivers started in parallel
/// must not be told to listen on the same port.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Picks candidates below the kernel's ephemeral range. Ports from `bind(0)` come from the
/// ephemeral range, and so do the source ports of every outgoing connection the clients make: a
/// port we reserve there can be taken by some client's `connect()` before the server we hand it
/// to has bound it. Below the range only explicit binds compete with us.
fn candidate_range() -> (u16, u16) {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if low > 12000 {
        (10000, low - 1)
    } else {
        // Odd sysctl; fall back to a high range and accept the small race.
        (61000, 65000)
    }
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn pick_port(udp_too: bool, tcp: bool) -> u16 {
    let (lo, hi) = candidate_range();
    let span = u64::from(hi - lo) + 1;
    for _ in 0..2000 {
        let port = lo + (random_u64() % span) as u16;
        let mut taken = handed_out().lock().unwrap();
        if taken.contains(&port) {
            continue;
        }
        let tcp_ok = !tcp || TcpListener::bind((LOOPBACK, port)).is_ok();
        let udp_ok = !udp_too || UdpSocket::bind((LOOPBACK, port)).is_ok();
        if tcp_ok && udp_ok {
            taken.insert(port);
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 after 2000 tries in {lo}..={hi}");
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before.
pub fn free_tcp_port() -> u16 {
    pick_port(false, true)
}

/// A UDP port on 127.0.0.1, as [`free_tcp_port`].
pub fn free_udp_port() -> u16 {
    pick_port(true, false)
}

/// A port number free for both TCP and UDP on 127.0.0.1 (trackers serve both on one number).
pub fn free_tcp_udp_port() -> u16 {
    pick_port(true, true)
}

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// Full path of `name` found in `PATH`, if any.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Panics unless the external tool `name` is installed. Tests call this (drivers do it for them)
/// so that a missing dependency FAILS the test with an actionable message instead of producing a
/// confusing spawn error, and never silently skips it.
#[track_caller]
pub fn require_tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!(
            "required tool `{name}` is not installed (not found in PATH). \
             Install the integration-test dependencies with `scripts/install-test-deps.sh` \
             (Debian packages: opentracker python3-libtorrent transmission-daemon \
             transmission-cli aria2 mktorrent socat chromium chromium-driver prometheus)."
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Small encodings and process facts
// ---------------------------------------------------------------------------------------------

/// Standard base64 with padding: how `.torrent` bytes travel in swarmd's `torrent.add` and
/// transmission's `torrent-add`.
pub fn base64(bytes: &[u8]) -> String {
    data_encoding::BASE64.encode(bytes)
}

/// Resident set size of process `pid` in bytes (`VmRSS` in /proc/PID/status).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"))
}

// ---------------------------------------------------------------------------------------------
// Per-test scratch directory
// ---------------------------------------------------------------------------------------------

/// Environment variable: when set (to anything but `0`), test directories are kept.
pub const KEEP_ENV: &str = "SWARM_IT_KEEP";

/// A test's scratch directory. Cheap to clone (shared); drivers keep a clone so the directory
/// outlives every process writing into it.
///
/// Layout: `logs/` holds one `<name>.log` per child process (stdout and stderr); everything else
/// is up to the test (`subdir`). When the last clone is dropped while the thread is panicking
/// (a failed assertion), the tail of every log is printed to stderr, which the test harness shows
/// with the failure. Set `SWARM_IT_KEEP=1` to keep the directory (its path is printed).
#[derive(Clone)]
pub struct TestEnv {
    inner: Arc<EnvInner>,
}

struct EnvInner {
    name: String,
    dir: Mutex<Option<tempfile::TempDir>>,
    path: PathBuf,
    log_names: Mutex<HashSet<String>>,
}

impl TestEnv {
    /// Creates `$TMPDIR/swarm-it-<name>-XXXXXX/` with a `logs/` subdirectory.
    pub fn new(name: &str) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix(&format!("swarm-it-{name}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("creating the temp dir for test {name}: {e}"));
        let path = dir.path().to_path_buf();
        fs::create_dir_all(path.join("logs")).expect("creating logs/");
        TestEnv {
            inner: Arc::new(EnvInner {
                name: name.to_string(),
                dir: Mutex::new(Some(dir)),
                path,
                log_names: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The test's name as given to [`TestEnv::new`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `path()/rel`, created (with parents) if missing.
    pub fn subdir(&self, rel: &str) -> PathBuf {
        let p = self.inner.path.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        p
    }

    /// A fresh, unused directory `path()/<prefix>`, `<prefix>-2`, ... (created).
    pub fn unique_subdir(&self, prefix: &str) -> PathBuf {
        for i in 1.. {
            let rel = if i == 1 {
                prefix.to_string()
            } else {
                format!("{prefix}-{i}")
            };
            let p = self.inner.path.join(&rel);
            if fs::create_dir(&p).is_ok() {
                return p;
            }
            if i > 10_000 {
                break;
            }
        }
        panic!("no free subdirectory name for {prefix}");
    }

    /// The directory holding the child logs.
    pub fn log_dir(&self) -> PathBuf {
        self.inner.path.join("logs")
    }

    /// Reserves a log file path `logs/<name>.log` (or `<name>-2.log`, ... if taken).
    pub fn new_log_path(&self, name: &str) -> PathBuf {
        let mut names = self.inner.log_names.lock().unwrap();
        let mut candidate = name.to_string();
        let mut i = 1;
        while names.contains(&candidate) {
            i += 1;
            candidate = format!("{name}-{i}");
        }
        names.insert(candidate.clone());
        self.log_dir().join(format!("{candidate}.log"))
    }

    /// Prints the last `lines` lines of every log in `logs/` to stderr.
    pub fn dump_logs(&self, lines: usize) {
        eprintln!("{}", self.log_report(lines));
    }

    /// The tails of every log as one string (what [`TestEnv::dump_logs`] prints).
    pub fn log_report(&self, lines: usize) -> String {
        log_report(&self.inner.name, &self.inner.path, lines)
    }

    /// Keeps the directory after the test (it is normally deleted).
    pub fn keep(&self) {
        if let Some(dir) = self.inner.dir.lock().unwrap().take() {
            let _ = dir.keep();
        }
    }
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestEnv({})", self.path().display())
    }
}

fn log_report(name: &str, dir: &Path, lines: usize) -> String {
    let mut out = format!("===== logs of test `{name}` ({}) =====\n", dir.display());
    let mut entries: Vec<_> = fs::read_dir(dir.join("logs"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        out.push_str(&format!(
            "----- {} (last {lines} lines) -----\n",
            p.display()
        ));
        out.push_str(&tail_file(&p, lines));
    }
    out.push_str("===== end of logs =====");
    out
}

fn keep_requested() -> bool {
    std::env::var(KEEP_ENV)
        .map(|v| v != "0" && !v.is_empty())
        .unwrap_or(false)
}

impl Drop for EnvInner {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            eprintln!("{}", log_report(&self.name, &self.path, 40));
        }
        if keep_requested() {
            if let Some(dir) = self.dir.lock().unwrap().take() {
                let _ = dir.keep();
            }
            eprintln!("{KEEP_ENV}: kept {}", self.path.display());
        } else if panicking {
            eprintln!("(set {KEEP_ENV}=1 to keep {})", self.path.display());
        }
    }
}

/// The last `lines` lines of a file (reads at most the last 256 KiB), or a note why not.
pub fn tail_file(path: &Path, lines: usize) -> String {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("<cannot open {}: {e}>\n", path.display()),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(256 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    let mut out = all[from..].join("\n");
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------
// Bounded polling
// ---------------------------------------------------------------------------------------------

/// A wait that ran out of time. Its `Display` says what was awaited, for how long, and the last
/// observed state, so `.unwrap()`/`.expect()` failures are self-explanatory.
#[derive(Debug, Clone)]
pub struct WaitTimeout {
    pub what: String,
    pub waited: Duration,
    pub polls: u32,
    /// The last "not yet" explanation from the condition, if it gave one.
    pub last: Option<String>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:.1}s ({} polls) waiting for {}",
            self.waited.as_secs_f64(),
            self.polls,
            self.what
        )?;
        if let Some(last) = &self.last {
            write!(f, "; last state: {last}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

/// Polls `cond` every `poll` until it returns true or `timeout` has passed. Returns the time it
/// took. The condition is always evaluated at least once, and once more right at the deadline.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, WaitTimeout> {
    wait_for(what, timeout, poll, || {
        if cond() {
            Ok(())
        } else {
            Err(String::new())
        }
    })
    .map(|((), d)| d)
}

/// Polls `check` every `poll` until it returns `Ok(value)` or `timeout` has passed. `Err(text)`
/// means "not yet"; the last non-empty text is reported on timeout (e.g. the last status seen).
/// A condition that detects a fatal state (a crashed process) should panic instead.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<(T, Duration), WaitTimeout> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut polls = 0u32;
    let mut last = None;
    loop {
        polls += 1;
        match check() {
            Ok(v) => return Ok((v, start.elapsed())),
            Err(s) if !s.is_empty() => last = Some(s),
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                what: what.to_string(),
                waited: now - start,
                polls,
                last,
            });
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

// ---------------------------------------------------------------------------------------------
// Guarded child processes
// ---------------------------------------------------------------------------------------------

/// Grace period between SIGTERM and SIGKILL when a [`ChildGuard`] is dropped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// A child process that lives in its own process group and is killed, with its whole group, when
/// the guard is dropped -- also when the test panics.
///
/// * stdout and stderr go to `logs/<name>.log` in the [`TestEnv`], which starts with the command
///   line.
/// * Drop: SIGTERM to the group, up to [`DEFAULT_GRACE`] (see [`ChildGuard::set_grace`]) for the
///   leader to exit, then SIGKILL to the group, then reap. The leader is never reaped before the
///   group is killed, so its pid (= the group id) cannot be recycled and we can never signal an
///   unrelated process.
/// * The child also gets `PR_SET_PDEATHSIG(SIGKILL)`: if the test process dies without running
///   destructors (SIGKILL from a test-runner timeout), the kernel kills the child. Note this
///   fires when the *thread* that spawned the child exits, so spawn long-lived children from the
///   test's own thread. (It is cleared for daemons that change their uid, e.g. opentracker.)
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
    grace: Duration,
    exit: Mutex<Option<ExitStatus>>,
    _env: TestEnv,
}

impl ChildGuard {
    /// Spawns `cmd` as a guarded child. Panics (with the command) if it cannot be spawned.
    pub fn spawn(env: &TestEnv, name: &str, mut cmd: Command) -> ChildGuard {
        let log = env.new_log_path(name);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("creating log {}: {e}", log.display()));
        let cmdline = format!("{cmd:?}");
        let _ = writeln!(file, "$ {cmdline}");
        let out = file.try_clone().expect("dup log fd");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(file))
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only makes two
        // async-signal-safe syscalls (prctl, getppid) and a raise.
        unsafe {
            let parent = libc::getpid();
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl.
                if libc::getppid() != parent {
                    libc::raise(libc::SIGKILL);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {cmdline}: {e}"));
        ChildGuard {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            log,
            grace: DEFAULT_GRACE,
            exit: Mutex::new(None),
            _env: env.clone(),
        }
    }

    /// The name given at spawn (also the log's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The leader's pid (= its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The log file holding the child's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the child's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_file(&self.log, lines)
    }

    /// The whole log (lossy UTF-8).
    pub fn log_contents(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Sets the SIGTERM→SIGKILL grace period used on drop and by [`ChildGuard::stop`].
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The leader's exit status if it has exited, without reaping it (see the type docs).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut cached = self.exit.lock().unwrap();
        if cached.is_some() {
            return *cached;
        }
        // SAFETY: plain waitid on our own child; WNOWAIT leaves it waitable.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: waitid filled `info` (si_pid is 0 when the child has not exited yet).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return None;
        }
        // Re-encode as a wait(2) status word so std's ExitStatus can describe it.
        let raw = match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            _ => status & 0x7f,
        };
        *cached = Some(ExitStatus::from_raw(raw));
        *cached
    }

    /// True while the leader has not exited.
    pub fn is_running(&self) -> bool {
        self.exit_status().is_none()
    }

    /// Panics with the log tail if the child has exited. Drivers call this while polling so that
    /// a crashed client fails the test at once, with its output.
    pub fn assert_running(&self) {
        if let Some(st) = self.exit_status() {
            panic!(
                "{} (pid {}) exited unexpectedly with {st}; last log lines ({}):\n{}",
                self.name,
                self.pid,
                self.log.display(),
                self.log_tail(40)
            );
        }
    }

    /// Waits up to `timeout` for the leader to exit on its own.
    pub fn wait_exit(&self, timeout: Duration) -> Result<ExitStatus, WaitTimeout> {
        wait_for(
            &format!("{} (pid {}) to exit", self.name, self.pid),
            timeout,
            Duration::from_millis(20),
            || self.exit_status().ok_or_else(String::new),
        )
        .map(|(st, _)| st)
    }

    /// Sends `sig` to the whole process group (no-op once the group has been reaped).
    pub fn signal(&self, sig: libc::c_int) {
        if self.child.is_some() {
            // SAFETY: the group leader is unreaped, so the pgid still names our group.
            unsafe {
                libc::kill(-(self.pid as libc::pid_t), sig);
            }
        }
    }

    /// Sends `sig` to the leader only.
    pub fn signal_leader(&self, sig: libc::c_int) {
        if self.child.is_some() {
            // SAFETY: the leader is unreaped, so its pid cannot have been recycled.
            unsafe {
                libc::kill(self.pid as libc::pid_t, sig);
            }
        }
    }

    /// Stops the child now (SIGTERM, grace, SIGKILL, reap) and returns the leader's status.
    /// Afterwards the guard is inert.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if self.exit_status().is_none() {
            // SAFETY: as in `signal`.
            unsafe {
                libc::kill(-(self.pid as libc::pid_t), libc::SIGTERM);
            }
            let deadline = Instant::now() + self.grace;
            while self.exit_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever is left of the group goes, including helpers the leader may have forked.
        // SAFETY: the leader is still unreaped here.
        unsafe {
            libc::kill(-(self.pid as libc::pid_t), libc::SIGKILL);
        }
        let status = child.wait().ok();
        let mut cached = self.exit.lock().unwrap();
        if cached.is_none() {
            *cached = status;
        }
        *cached
    }

    /// Kills the group with SIGKILL at once (a crash, as far as the child can tell), and reaps.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        self.grace = Duration::ZERO;
        if self.child.is_some() && self.exit_status().is_none() {
            self.signal(libc::SIGKILL);
        }
        self.stop()
    }
}

impl fmt::Debug for ChildGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildGuard({} pid {})", self.name, self.pid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A finished program's stdout then stderr, as one text (for a failure message).
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let a = free_tcp_port();
        let b = free_tcp_port();
        let c = free_tcp_udp_port();
        assert!(a != b && b != c && a != c);
        TcpListener::bind((LOOPBACK, c)).unwrap();
        UdpSocket::bind((LOOPBACK, c)).unwrap();
    }

    #[test]
    fn wait_for_reports_last_state() {
        let mut n = 0;
        let err = wait_for(
            "n to reach 1000",
            Duration::from_millis(50),
            Duration::from_millis(5),
            || {
                n += 1;
                Err::<(), _>(format!("n={n}"))
            },
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("n to reach 1000") && msg.contains("last state: n="),
            "{msg}"
        );
        assert!(wait_until("true", Duration::ZERO, Duration::ZERO, || true).is_ok());
    }

    #[test]
    fn child_guard_kills_the_whole_group_and_logs() {
        let env = TestEnv::new("guard");
        let mut cmd = Command::new("sh");
        // The shell forks a grandchild in the same group; it must die too.
        cmd.args([
            "-c",
            "echo hello; sleep 60 & echo $! > grandchild.pid; wait",
        ])
        .current_dir(env.path());
        let mut g = ChildGuard::spawn(&env, "sh", cmd);
        let pidfile = env.path().join("grandchild.pid");
        wait_until(
            "pid file",
            Duration::from_secs(5),
            Duration::from_millis(10),
            || {
                fs::read_to_string(&pidfile)
                    .map(|s| s.ends_with('\n'))
                    .unwrap_or(false)
            },
        )
        .unwrap();
        let grandchild: i32 = fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(g.is_running());
        g.set_grace(Duration::from_millis(500));
        let st = g.stop().unwrap();
        assert!(!st.success());
        // Dead means gone or a zombie waiting for its new parent (init) to reap it.
        let dead = || match fs::read_to_string(format!("/proc/{grandchild}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
        };
        wait_until(
            "the grandchild to die",
            Duration::from_secs(2),
            Duration::from_millis(10),
            dead,
        )
        .unwrap_or_else(|e| panic!("{e}: grandchild {grandchild} survived"));
        assert!(g.log_contents().contains("hello"));
    }

    #[test]
    fn exit_status_is_peeked_without_reaping() {
        let env = TestEnv::new("exit");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        let g = ChildGuard::spawn(&env, "exit3", cmd);
        let st = g.wait_exit(Duration::from_secs(5)).unwrap();
        assert_eq!(st.code(), Some(3));
        assert_eq!(g.exit_status().unwrap().code(), Some(3));
        // Still unreaped: the pid exists as a zombie, so the group can still be signalled safely.
        // SAFETY: signal 0 only probes.
        assert_eq!(unsafe { libc::kill(g.pid() as i32, 0) }, 0);
    }

    #[test]
    fn base64_known_answers() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn rss_of_this_process_is_some_mebibytes() {
        let rss = rss_bytes(std::process::id());
        assert!(rss > 1024 * 1024, "{rss}");
    }

    #[test]
    fn require_tool_finds_sh() {
        assert!(require_tool("sh").is_absolute());
    }

    #[test]
    #[should_panic(expected = "required tool `definitely-not-a-tool-xyz` is not installed")]
    fn require_tool_panics_when_missing() {
        require_tool("definitely-not-a-tool-xyz");
    }
}
