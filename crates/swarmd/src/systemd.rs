//! systemd integration: `sd_notify` written by hand (one datagram per message to
//! `$NOTIFY_SOCKET`, a path or an abstract `@name`) and the watchdog.
//!
//! Written by hand rather than through a crate because the protocol is a single `sendto` and the
//! watchdog has to be tied to the engine's heartbeat anyway. Without `$NOTIFY_SOCKET` (not started
//! by systemd, or `Type=` other than notify) every call is a no-op.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`. A malformed value is logged and ignored: better a daemon that runs
    /// (and that systemd may time out) than one that refuses to start.
    pub fn from_env() -> Notifier {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => Notifier::for_socket(&s).unwrap_or_else(|e| {
                tracing::warn!(error = %e, socket = ?s, "cannot use NOTIFY_SOCKET");
                Notifier::disabled()
            }),
            _ => Notifier::disabled(),
        }
    }

    pub fn disabled() -> Notifier {
        Notifier { target: None }
    }

    /// `socket` as systemd writes it: an absolute path, or `@name` for the abstract namespace.
    pub fn for_socket(socket: &OsStr) -> io::Result<Notifier> {
        let bytes = socket.as_encoded_bytes();
        let addr = match bytes.first() {
            Some(b'@') => abstract_addr(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(socket)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither a path nor @abstract",
                ))
            }
        };
        Ok(Notifier {
            target: Some((UnixDatagram::unbound()?, addr)),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one message (`KEY=VALUE` lines). Errors are returned for tests; callers in the
    /// daemon log them and carry on.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.target {
            Some((sock, addr)) => sock.send_to_addr(state.as_bytes(), addr).map(drop),
            None => Ok(()),
        }
    }

    fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(error = %e, state, "sd_notify failed");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// Before a SIGHUP reload; `ready` afterwards. `MONOTONIC_USEC` lets systemd tell this
    /// reload from an earlier one (required by `Type=notify-reload`, harmless otherwise).
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}

/// A status must stay on one line: a newline would start a new `KEY=` assignment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The watchdog period systemd expects pings within, from `WATCHDOG_USEC` (and `WATCHDOG_PID`,
/// which, when set, must name this process: the variables may be inherited by a child).
pub fn watchdog_period(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

pub fn watchdog_period_from_env() -> Option<Duration> {
    let var = |k| std::env::var(k).ok();
    watchdog_period(
        var("WATCHDOG_USEC").as_deref(),
        var("WATCHDOG_PID").as_deref(),
    )
}

/// Pings the watchdog every `period / 2`, but only when the engine's heartbeat answers within a
/// quarter period: a wedged actor system then stops the pings and systemd restarts the daemon.
pub async fn run_watchdog<E: Engine>(
    notifier: &Notifier,
    period: Duration,
    engine: E,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match tokio::time::timeout(period / 4, engine.heartbeat()).await {
            Ok(()) => notifier.watchdog(),
            Err(_) => tracing::error!(
                deadline_ms = (period / 4).as_millis() as u64,
                "engine heartbeat missed its deadline; not feeding the systemd watchdog"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::for_socket(path.as_os_str()).unwrap();
        assert!(n.is_enabled());
        n.ready("3 torrents\nsecond line");
        assert_eq!(recv(&server), "READY=1\nSTATUS=3 torrents second line");
        n.watchdog();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping();
        assert_eq!(recv(&server), "STOPPING=1\nSTATUS=stopping");
        n.reloading();
        assert!(recv(&server).starts_with("RELOADING=1\nMONOTONIC_USEC="));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "swarmd-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::for_socket(&OsString::from(format!("@{name}"))).unwrap();
        n.status("hello");
        assert_eq!(recv(&server), "STATUS=hello");
    }

    #[test]
    fn disabled_and_bad_sockets() {
        assert!(Notifier::disabled().notify("READY=1").is_ok());
        assert!(Notifier::for_socket(OsStr::new("relative")).is_err());
        let n = Notifier::for_socket(OsStr::new("/nonexistent/notify")).unwrap();
        assert!(n.notify("READY=1").is_err());
    }

    #[test]
    fn watchdog_env() {
        let me = std::process::id().to_string();
        assert_eq!(
            watchdog_period(Some("30000000"), None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            watchdog_period(Some("30000000"), Some(&me)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(watchdog_period(Some("30000000"), Some("1")), None);
        assert_eq!(watchdog_period(Some("0"), None), None);
        assert_eq!(watchdog_period(Some("x"), None), None);
        assert_eq!(watchdog_period(None, None), None);
    }
}
