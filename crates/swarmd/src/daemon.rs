//! The running daemon around an engine: control socket, watch directory, systemd notifications,
//! signals, reload and the order of shutdown.
//!
//! `main.rs` builds the engine (see `engine_adapter.rs`) and hands it to [`serve`]. Order of
//! start: socket bound (a second daemon fails here) → control server and watch directory running
//! → `READY=1`. Order of stop (SIGTERM, SIGINT or `daemon.shutdown`): `STOPPING=1` → watch
//! directory and control server stopped (no new work arrives) → `Engine::shutdown` (stopped
//! announces, resume state flushed) → socket file removed.
//! The HTTP RPC (`[rpc]`, off by default) starts after the control socket and stops before the
//! engine, like the control server.
//! SIGHUP re-reads the config file and applies what can change at run time: `[limits]` rates,
//! `[watch]`, `daemon.log_level`; other changes are logged as needing a restart.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use swarm_control::paths::Mode;
use swarm_control::SessionStats;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::control::{
    AccessPolicy, ConnectionLimits, ControlOptions, ControlServer, SocketError, StaticInfo,
};
use crate::engine::Engine;
use crate::http_rpc::{RpcServer, RpcServerError, SessionInfo};
use crate::logging::LogHandle;
use crate::paths::Paths;
use crate::systemd::{self, Notifier};
use crate::{users, watch};
use swarm_control::human;

/// Everything [`serve`] needs besides the engine.
pub struct Daemon {
    pub config: Config,
    /// `--config FILE`, re-read on SIGHUP; when `None`, the mode's default file (if it exists).
    pub explicit_config: Option<PathBuf>,
    /// The file the config was read from, if any (for `daemon.info`).
    pub config_file: Option<PathBuf>,
    pub default_config_file: PathBuf,
    pub paths: Paths,
    pub log: Option<LogHandle>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("control.group: no group named {0:?}")]
    UnknownGroup(String),
    #[error("control.allow: no user named {0:?}")]
    UnknownUser(String),
    #[error("cannot create {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("the control server failed: {0}")]
    Control(String),
    #[error(transparent)]
    Rpc(#[from] RpcServerError),
}

/// What the outside world asks of a running daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
}

/// Runs the daemon until SIGTERM/SIGINT or `daemon.shutdown`, then stops the engine.
pub async fn serve<E: Engine>(daemon: Daemon, engine: E) -> Result<(), DaemonError> {
    let signals = forward_signals().map_err(DaemonError::Signals)?;
    run(
        daemon,
        engine,
        signals,
        Notifier::from_env(),
        systemd::watchdog_period_from_env(),
    )
    .await
}

/// [`serve`] with the signals, the notifier and the watchdog period passed in (tests drive these).
pub async fn run<E: Engine>(
    mut daemon: Daemon,
    engine: E,
    mut signals: mpsc::Receiver<Signal>,
    notifier: Notifier,
    watchdog: Option<Duration>,
) -> Result<(), DaemonError> {
    let state_dir = &daemon.paths.state_dir;
    std::fs::create_dir_all(state_dir).map_err(|source| DaemonError::Dir {
        dir: state_dir.clone(),
        source,
    })?;
    let server = bind_control(&daemon, engine.clone())?;
    let everything = CancellationToken::new();
    let stop_requested = CancellationToken::new();
    let mut control = tokio::spawn(server.run(everything.child_token(), stop_requested.clone()));
    let rpc = start_rpc(&daemon, &engine, &stop_requested)?;
    let mut watcher = start_watch(&daemon, &engine, &everything);
    let notifier = std::sync::Arc::new(notifier);
    if let Some(period) = watchdog {
        let (n, e, c) = (notifier.clone(), engine.clone(), everything.child_token());
        tokio::spawn(async move { systemd::run_watchdog(&n, period, e, c).await });
    }
    notifier.ready(&status_line(&engine).await);
    tracing::info!(socket = %daemon.paths.socket.display(), "swarmd ready");

    let mut status_tick = tokio::time::interval(STATUS_PERIOD);
    status_tick.tick().await;
    let outcome = loop {
        tokio::select! {
            signal = signals.recv() => match signal {
                Some(Signal::Reload) => {
                    notifier.reloading();
                    reload(&mut daemon, &engine, &mut watcher, &everything).await;
                    notifier.ready(&status_line(&engine).await);
                }
                Some(Signal::Stop) | None => break Ok(()),
            },
            _ = stop_requested.cancelled() => break Ok(()),
            result = &mut control => break Err(DaemonError::Control(match result {
                Ok(Ok(())) => "stopped on its own".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            })),
            _ = status_tick.tick() => notifier.status(&status_line(&engine).await),
        }
    };

    tracing::info!("swarmd stopping");
    notifier.stopping();
    if let Some((token, task)) = watcher.take() {
        token.cancel();
        let _ = task.await;
    }
    if let Some(rpc) = rpc {
        rpc.stop().await;
    }
    everything.cancel();
    if !control.is_finished() {
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut control).await;
    }
    engine.shutdown().await;
    tracing::info!("swarmd stopped");
    outcome
}

/// How often the one-line `STATUS=` shown by `systemctl status` is refreshed.
const STATUS_PERIOD: Duration = Duration::from_secs(10);

type Watcher = Option<(CancellationToken, JoinHandle<()>)>;

fn bind_control<E: Engine>(d: &Daemon, engine: E) -> Result<ControlServer<E>, DaemonError> {
    let c = &d.config.control;
    let socket_gid = match &c.group {
        Some(g) => {
            Some(users::resolve_group(g).ok_or_else(|| DaemonError::UnknownGroup(g.clone()))?)
        }
        None => None,
    };
    let extra_uids = c
        .allow
        .iter()
        .map(|u| users::resolve_user(u).ok_or_else(|| DaemonError::UnknownUser(u.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ControlOptions {
        socket_mode: c.mode.0,
        socket_gid,
        max_clients: c.max_clients as usize,
        limits: ConnectionLimits {
            max_request_bytes: c.max_request_bytes,
            write_timeout: ControlOptions::WRITE_TIMEOUT,
        },
        access: AccessPolicy {
            owner_uid: swarm_control::paths::current_uid(),
            extra_uids,
        },
    };
    let info = StaticInfo {
        mode: d.paths.mode.as_str().to_owned(),
        config_file: d.config_file.clone(),
        state_dir: d.paths.state_dir.clone(),
        download_dir: d.paths.download_dir.clone(),
        watch_dir: d.config.watch.enabled.then(|| d.paths.watch_dir.clone()),
        socket: d.paths.socket.clone(),
        started_at: SystemTime::now(),
        started: Instant::now(),
    };
    Ok(ControlServer::bind(&d.paths.socket, options, engine, info)?)
}

fn start_rpc<E: Engine>(
    d: &Daemon,
    engine: &E,
    stop: &CancellationToken,
) -> Result<Option<RpcServer>, DaemonError> {
    let c = &d.config;
    if !c.rpc.enabled {
        return Ok(None);
    }
    let info = SessionInfo {
        download_dir: d.paths.download_dir.clone(),
        config_dir: d.paths.state_dir.clone(),
        peer_limit: c.network.max_peers_per_torrent,
        peer_limit_global: c.network.max_peers_global,
        dht_enabled: c.dht.enabled,
    };
    Ok(Some(RpcServer::start(
        &c.rpc,
        info,
        engine.clone(),
        stop.clone(),
    )?))
}

pub fn watch_options(config: &Config, paths: &Paths) -> watch::WatchOptions {
    watch::WatchOptions {
        dir: paths.watch_dir.clone(),
        on_added: config.watch.on_added,
        rescan: Duration::from_secs(config.watch.rescan_secs.get()),
        settle: watch::WatchOptions::SETTLE,
        incomplete_grace: watch::WatchOptions::INCOMPLETE_GRACE,
        paused: config.watch.paused,
        kept_file: paths.state_dir.join("watch-kept.json"),
    }
}

fn start_watch<E: Engine>(d: &Daemon, engine: &E, parent: &CancellationToken) -> Watcher {
    if !d.config.watch.enabled {
        return None;
    }
    let token = parent.child_token();
    let task = tokio::spawn(watch::run(
        watch_options(&d.config, &d.paths),
        engine.clone(),
        token.clone(),
    ));
    Some((token, task))
}

async fn reload<E: Engine>(
    d: &mut Daemon,
    engine: &E,
    watcher: &mut Watcher,
    parent: &CancellationToken,
) {
    let new = match config::load(d.explicit_config.as_deref(), &d.default_config_file) {
        Ok((c, _)) => c,
        Err(e) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            return;
        }
    };
    let new_paths = Paths::resolve(&new, d.paths.mode, &swarm_control::paths::process_env);
    let old = std::mem::replace(&mut d.config, new);
    let new = &d.config;
    if new.daemon.log_level != old.daemon.log_level {
        match d.log.as_ref().map(|l| l.set_level(&new.daemon.log_level)) {
            Some(Err(e)) => tracing::error!("reload: {e}"),
            _ => tracing::info!(level = %new.daemon.log_level, "log level changed"),
        }
    }
    if new.limits.rate_limits() != old.limits.rate_limits() {
        match engine.set_limits(new.limits.rate_limits()).await {
            Ok(l) => {
                tracing::info!(download = ?l.download, upload = ?l.upload, "rate limits changed")
            }
            Err(e) => tracing::error!("reload: cannot apply [limits]: {e}"),
        }
    }
    let watch_changed = new.watch != old.watch || new_paths.watch_dir != d.paths.watch_dir;
    d.paths.watch_dir = new_paths.watch_dir.clone();
    if watch_changed {
        if let Some((token, task)) = watcher.take() {
            token.cancel();
            let _ = task.await;
        }
        *watcher = start_watch(d, engine, parent);
        tracing::info!(enabled = new.watch.enabled, dir = %d.paths.watch_dir.display(), "watch directory reconfigured");
    }
    let needs_restart = restart_only_changes(&old, new, &new_paths, &d.paths);
    if !needs_restart.is_empty() {
        tracing::warn!(changed = ?needs_restart, "these changes take effect after a restart");
    }
}

/// Parts of the config that only a restart applies.
fn restart_only_changes(
    old: &Config,
    new: &Config,
    new_paths: &Paths,
    paths: &Paths,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    if new.network != old.network {
        out.push("[network]");
    }
    if (
        new.limits.upload_slots_global,
        new.limits.upload_slots_per_torrent,
    ) != (
        old.limits.upload_slots_global,
        old.limits.upload_slots_per_torrent,
    ) {
        out.push("[limits] upload slots");
    }
    if new.control != old.control {
        out.push("[control]");
    }
    if new.dht != old.dht {
        out.push("[dht]");
    }
    if new.rpc != old.rpc {
        out.push("[rpc]");
    }
    if new.trackers != old.trackers {
        out.push("[trackers]");
    }
    if (&new_paths.state_dir, &new_paths.download_dir) != (&paths.state_dir, &paths.download_dir) {
        out.push("[daemon] directories");
    }
    out
}

/// One line for `systemctl status`.
async fn status_line<E: Engine>(engine: &E) -> String {
    match tokio::time::timeout(Duration::from_secs(2), engine.stats()).await {
        Ok(Ok(s)) => summarize(&s),
        _ => "running".to_owned(),
    }
}

pub fn summarize(s: &SessionStats) -> String {
    format!(
        "{} torrents ({} downloading, {} seeding), {} peers, down {}, up {}",
        s.torrents,
        s.downloading,
        s.seeding,
        s.peers,
        human::rate(s.download_rate),
        human::rate(s.upload_rate)
    )
}

/// SIGTERM and SIGINT stop, SIGHUP reloads.
fn forward_signals() -> std::io::Result<mpsc::Receiver<Signal>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let s = tokio::select! {
                _ = term.recv() => Signal::Stop,
                _ = int.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
            };
            if tx.send(s).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The mode from `--system` and the environment.
pub fn detect_mode(force_system: bool) -> Mode {
    swarm_control::paths::detect_mode(force_system, &swarm_control::paths::process_env)
}
