//! The whole daemon (`daemon::run`) around the fake engine: readiness, stop paths, reload,
//! watchdog, and a torrent dropped into the watch directory.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use swarm_control::methods::names;
use swarm_control::paths::Mode;
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

use super::*;
use crate::config::Config;
use crate::daemon::{self, Daemon, DaemonError, Signal};
use crate::paths::Paths;
use crate::systemd::{self, Notifier};

fn daemon_in(dir: &Path, mut config: Config) -> Daemon {
    config.daemon.state_dir = Some(dir.join("state"));
    config.daemon.download_dir = Some(dir.join("downloads"));
    config.control.socket = Some(dir.join("run/swarmd.sock"));
    config.watch.dir = Some(dir.join("watch"));
    let paths = Paths::resolve(&config, Mode::User, &|_| None);
    Daemon {
        config,
        explicit_config: Some(dir.join("swarmd.toml")),
        config_file: Default::default(),
        default_config_file: dir.join("unused.toml"),
        settings: super::settings_in(&paths.state_dir),
        paths,
        log: None,
        state_lock: None,
    }
}

/// A stand-in for systemd's notify socket.
struct NotifySocket {
    sock: UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn new(dir: &Path) -> Self {
        let path = dir.join("notify");
        NotifySocket {
            sock: UnixDatagram::bind(&path).unwrap(),
            path,
        }
    }

    fn notifier(&self) -> Notifier {
        Notifier::for_socket(self.path.as_os_str()).unwrap()
    }

    async fn next(&self) -> String {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.sock.recv(&mut buf))
            .await
            .expect("no notification")
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    /// Skips messages until one starts with `prefix`.
    async fn wait_for(&self, prefix: &str) -> String {
        loop {
            let m = self.next().await;
            if m.starts_with(prefix) {
                return m;
            }
        }
    }
}

async fn wait_for_socket(path: &Path) {
    for _ in 0..200 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("socket {} never appeared", path.display());
}

#[tokio::test]
async fn ready_then_shutdown_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new(dir.path());
    let engine = FakeEngine::new();
    let d = daemon_in(dir.path(), Config::default());
    let socket = d.paths.socket.clone();
    let (_tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(daemon::run(d, engine.clone(), rx, notify.notifier(), None));

    let ready = notify.wait_for("READY=1").await;
    assert!(ready.contains("STATUS=0 torrents"), "{ready}");
    let mut c = Conn::connect(&socket).await;
    let info = c.ok(names::DAEMON_INFO, Value::Null).await;
    assert_eq!(info["mode"], "user");
    assert_eq!(
        info["state_dir"],
        dir.path().join("state").display().to_string()
    );
    assert_eq!(
        info["watch_dir"],
        dir.path().join("watch").display().to_string()
    );
    c.ok(names::DAEMON_SHUTDOWN, Value::Null).await;

    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        notify.wait_for("STOPPING=1").await,
        "STOPPING=1\nSTATUS=stopping"
    );
    assert!(engine.state().shutdown_called);
    assert!(!socket.exists());
    assert!(dir.path().join("state").is_dir());
}

#[tokio::test]
async fn stop_signal_and_a_second_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let d = daemon_in(dir.path(), Config::default());
    let socket = d.paths.socket.clone();
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(daemon::run(
        d,
        engine.clone(),
        rx,
        Notifier::disabled(),
        None,
    ));
    wait_for_socket(&socket).await;

    let (_tx2, rx2) = mpsc::channel(1);
    let second = daemon::run(
        daemon_in(dir.path(), Config::default()),
        engine.clone(),
        rx2,
        Notifier::disabled(),
        None,
    );
    let err = second.await.unwrap_err();
    assert!(matches!(err, DaemonError::Socket(_)), "{err}");
    assert_eq!(
        err.to_string(),
        format!("another swarmd is listening on {}", socket.display())
    );
    assert!(
        !engine.state().shutdown_called,
        "the failed second daemon must not stop the engine"
    );

    tx.send(Signal::Stop).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(engine.state().shutdown_called);
    assert!(!socket.exists());
}

#[tokio::test]
async fn reload_applies_limits_and_survives_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new(dir.path());
    let engine = FakeEngine::new();
    let d = daemon_in(dir.path(), Config::default());
    let config_file = d.explicit_config.clone().unwrap();
    let state_dir = d.paths.state_dir.display().to_string();
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(daemon::run(d, engine.clone(), rx, notify.notifier(), None));
    notify.wait_for("READY=1").await;

    // The file keeps the directories the test daemon started with, and changes the limits.
    let base = format!(
        "[daemon]\nstate_dir = \"{state_dir}\"\ndownload_dir = \"{}\"\n[control]\nsocket = \"{}\"\n[watch]\ndir = \"{}\"\n",
        dir.path().join("downloads").display(),
        dir.path().join("run/swarmd.sock").display(),
        dir.path().join("watch").display()
    );
    std::fs::write(
        &config_file,
        format!("{base}[limits]\ndownload_kib_s = 100\n"),
    )
    .unwrap();
    tx.send(Signal::Reload).await.unwrap();
    notify.wait_for("RELOADING=1").await;
    notify.wait_for("READY=1").await;
    assert_eq!(engine.state().limits.download, Some(100 * 1024));

    // A broken file is reported and ignored: the daemon keeps running with what it had.
    std::fs::write(
        &config_file,
        format!("{base}[limits]\ndownload_kib_s = \"lots\"\n"),
    )
    .unwrap();
    tx.send(Signal::Reload).await.unwrap();
    notify.wait_for("READY=1").await;
    assert_eq!(engine.state().limits.download, Some(100 * 1024));

    // Unchanged limits in the file do not override a change made at run time.
    engine.state().limits.download = Some(7);
    std::fs::write(
        &config_file,
        format!("{base}[limits]\ndownload_kib_s = 100\n"),
    )
    .unwrap();
    tx.send(Signal::Reload).await.unwrap();
    notify.wait_for("READY=1").await;
    assert_eq!(engine.state().limits.download, Some(7));

    tx.send(Signal::Stop).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn watchdog_follows_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::new(dir.path());
    let engine = FakeEngine::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (n, e, c) = (notify.notifier(), engine.clone(), cancel.clone());
    let task =
        tokio::spawn(
            async move { systemd::run_watchdog(&n, Duration::from_millis(200), e, c).await },
        );
    assert_eq!(notify.next().await, "WATCHDOG=1");
    assert_eq!(notify.next().await, "WATCHDOG=1");

    engine.state().heartbeat_hangs = true;
    // Drain a ping that may have been sent before the switch, then expect silence.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut buf = [0u8; 64];
    while notify.sock.try_recv(&mut buf).is_ok() {}
    let silent = tokio::time::timeout(Duration::from_millis(600), notify.sock.recv(&mut buf)).await;
    assert!(silent.is_err(), "watchdog fed while the engine hangs");

    engine.state().heartbeat_hangs = false;
    assert_eq!(notify.next().await, "WATCHDOG=1");
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_dropped_torrent_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let d = daemon_in(dir.path(), Config::default());
    let watch_dir = d.paths.watch_dir.clone();
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(daemon::run(
        d,
        engine.clone(),
        rx,
        Notifier::disabled(),
        None,
    ));
    for _ in 0..200 {
        if watch_dir.is_dir() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bytes = torrent_bytes("dropped.iso", 5000);
    std::fs::write(watch_dir.join("dropped.torrent"), &bytes).unwrap();
    let added = watch_dir.join("dropped.torrent.added");
    for _ in 0..500 {
        if added.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(added.exists(), "not picked up");
    assert!(engine
        .state()
        .torrents
        .contains_key(&ih(&info_hash_of(&bytes))));
    tx.send(Signal::Stop).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
