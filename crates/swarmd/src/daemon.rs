//! The running daemon around an engine: control socket, watch directory, systemd notifications,
//! signals, reload and the order of shutdown.
//!
//! Order of start: [`claim_state`] locks the state directory (a second daemon on it fails here)
//! and reads the settings changed at run time → `main.rs` builds the engine (see
//! `engine_adapter.rs`) with those and hands it to [`serve`] → socket bound (a second daemon on
//! the socket fails here) → control server and watch directory running → `READY=1`.
//! Order of stop (SIGTERM, SIGINT or `daemon.shutdown`): `STOPPING=1` → watch directory and
//! control server stopped (no new work arrives), socket file removed → `Engine::shutdown`
//! (stopped announces, resume state flushed, peer port closed) → state directory released →
//! clients of `daemon.shutdown {"wait": true}` answered.
//! The HTTP RPC (`[rpc]`, off by default) starts after the control socket and stops before the
//! engine, like the control server.
//! SIGHUP re-reads the config file and applies what can change at run time: `[limits]` rates,
//! `[watch]`, `daemon.log_level`, `[blocklist]` (whose files are read again); other changes are logged as needing a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use swarm_control::paths::Mode;
use swarm_control::{Limits, SessionStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::control::{
    AccessPolicy, ConnectionLimits, ControlOptions, ControlServer, SocketError, StaticInfo,
    StopRequest,
};
use crate::engine::Engine;
use crate::http_rpc::{RpcServer, RpcServerError, SessionInfo};
use crate::logging::LogHandle;
use crate::paths::Paths;
use crate::runtime_settings::SettingsFile;
use crate::state_lock::{LockError, StateLock};
use crate::systemd::{self, Notifier};
use crate::{users, watch};
use swarm_control::human;

/// Everything [`serve`] needs besides the engine.
pub struct Daemon {
    pub config: Config,
    /// `--config FILE`, re-read on SIGHUP; when `None`, the mode's default file (if it exists).
    pub explicit_config: Option<PathBuf>,
    /// The file the config was read from, if any (for `daemon.info`).
    pub config_file: crate::control::dispatch::ConfigFileCell,
    pub default_config_file: PathBuf,
    pub paths: Paths,
    pub log: Option<LogHandle>,
    /// The state directory's lock ([`claim_state`]), released once the engine has stopped.
    pub state_lock: Option<StateLock>,
    /// Settings changed at run time, kept in the state directory ([`claim_state`]).
    pub settings: Arc<SettingsFile>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    StateLock(#[from] LockError),
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
    /// The engine cannot go on (a global service used up its restart budget): exit code 1.
    #[error("the engine failed: {0}")]
    EngineFailed(String),
}

/// What the outside world asks of a running daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
}

/// The first step of a start, before the engine loads any torrent: the lock on the state
/// directory, and the settings changed at run time before the last stop.
pub fn claim_state(state_dir: &Path) -> Result<(StateLock, Arc<SettingsFile>), DaemonError> {
    let lock = StateLock::acquire(state_dir)?;
    let (settings, problem) = SettingsFile::open(state_dir);
    if let Some(problem) = problem {
        tracing::warn!("{problem}; the config's values apply");
    }
    Ok((lock, Arc::new(settings)))
}

/// The rate limits to start with: those set at run time (`swarmctl limits`) win over the
/// config's `[limits]`, and the log says so.
pub fn start_limits(config: &Config, settings: &SettingsFile) -> Limits {
    let from_config = config.limits.rate_limits();
    match settings.limits() {
        Some(l) => {
            tracing::info!(
                "rate limits set at run time (download {}, upload {}, kept in {}) override \
                 [limits] of the config (download {}, upload {})",
                human::limit(l.download),
                human::limit(l.upload),
                settings.path().display(),
                human::limit(from_config.download),
                human::limit(from_config.upload),
            );
            l
        }
        None => from_config,
    }
}

/// The alternative speed settings to start with: those set at run time win over the config's
/// `[alt_speed]`, as the rate limits do.
pub fn start_alt_speed(config: &Config, settings: &SettingsFile) -> swarm_control::AltSpeed {
    match settings.alt_speed() {
        Some(a) => {
            tracing::info!(
                "alternative speed settings set at run time (kept in {}) override [alt_speed] \
                 of the config",
                settings.path().display()
            );
            a
        }
        None => config.alt_speed.alt_speed(),
    }
}

/// The queue and seeding settings to start with: those set at run time win over the config's
/// `[queue]` and `[seeding]`.
pub fn start_queue(
    config: &Config,
    settings: &SettingsFile,
) -> (swarm_control::QueueConfig, swarm_control::SeedingConfig) {
    match settings.queue() {
        Some(q) => {
            tracing::info!(
                "queue and seeding limits set at run time (kept in {}) override [queue] and \
                 [seeding] of the config",
                settings.path().display()
            );
            q
        }
        None => (config.queue.queue_config(), config.seeding.seeding_config()),
    }
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
    let stop_requested = StopRequest::new();
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
            () = stop_requested.requested() => break Ok(()),
            why = engine.failed() => break Err(DaemonError::EngineFailed(why)),
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
    drop(daemon.state_lock.take());
    tracing::info!("swarmd stopped");
    stop_requested.answer_waiting().await;
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
            idle_timeout: Duration::from_secs(c.idle_timeout_secs.get()),
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
    Ok(ControlServer::bind(
        &d.paths.socket,
        options,
        engine,
        info,
        d.settings.clone(),
    )?)
}

fn start_rpc<E: Engine>(
    d: &Daemon,
    engine: &E,
    stop: &StopRequest,
) -> Result<Option<RpcServer>, DaemonError> {
    let c = &d.config;
    if !c.rpc.enabled {
        return Ok(None);
    }
    let info = SessionInfo {
        download_dir: d.paths.download_dir.clone(),
        incomplete_dir: c.daemon.incomplete_dir.clone(),
        config_dir: d.paths.state_dir.clone(),
        peer_limit: c.network.max_peers_per_torrent,
        peer_limit_global: c.network.max_peers_global,
        dht_enabled: c.dht.enabled,
        tcp_enabled: c
            .network
            .transports
            .contains(&crate::config::TransportName::Tcp),
        utp_enabled: c
            .network
            .transports
            .contains(&crate::config::TransportName::Utp),
        settings: Some(d.settings.clone()),
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
    let (new, file) = match config::load(d.explicit_config.as_deref(), &d.default_config_file) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("reload failed, keeping the running configuration: {e}");
            return;
        }
    };
    let running_file = d
        .config_file
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let (Some(gone), None) = (&running_file, &file) {
        // The default file was deleted: "no file" would mean the built-in defaults, which is
        // not what anyone deleting a file during a reload asks for.
        tracing::error!(
            file = %gone.display(),
            "reload: the config file is gone; keeping the running configuration"
        );
        return;
    }
    if file != running_file {
        if let Some(f) = &file {
            tracing::info!(file = %f.display(), "reload: now configured by this file");
        }
        *d.config_file.write().unwrap_or_else(|e| e.into_inner()) = file;
    }
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
        // Editing the file is the newest explicit change: it replaces `swarmctl limits`.
        match engine.set_limits(new.limits.rate_limits()).await {
            Ok(l) => {
                tracing::info!(download = ?l.download, upload = ?l.upload, "rate limits changed");
                if d.settings.limits().is_some() {
                    match d.settings.set_limits(None) {
                        Ok(()) => tracing::info!(
                            "[limits] changed in the config file: its rates replace those set at run time"
                        ),
                        Err(e) => tracing::error!("reload: {e}"),
                    }
                }
            }
            Err(e) => tracing::error!("reload: cannot apply [limits]: {e}"),
        }
    }
    if new.queue != old.queue || new.seeding != old.seeding {
        let (q, s) = (new.queue.queue_config(), new.seeding.seeding_config());
        match engine.set_queue_config(q, s).await {
            Ok(_) => {
                tracing::info!(queue = ?q, seeding = ?s, "queue and seeding limits changed");
                if let Err(e) = d.settings.set_queue(None) {
                    tracing::error!("reload: {e}");
                }
            }
            Err(e) => tracing::error!("reload: cannot apply [queue] and [seeding]: {e}"),
        }
    }
    if new.alt_speed != old.alt_speed {
        // As with [limits]: the file's newest edit replaces what was set at run time.
        match engine.set_alt_speed(new.alt_speed.alt_speed()).await {
            Ok(a) => {
                tracing::info!(on = a.enabled, "alternative speed settings changed");
                if let Err(e) = d.settings.set_alt_speed(None) {
                    tracing::error!("reload: {e}");
                }
            }
            Err(e) => tracing::error!("reload: cannot apply [alt_speed]: {e}"),
        }
    }
    if new.network.encryption != old.network.encryption {
        match engine.set_encryption(new.network.encryption).await {
            Ok(p) => tracing::info!(policy = %p, "encryption policy changed"),
            Err(e) => tracing::error!("reload: cannot apply [network] encryption: {e}"),
        }
    }
    if new.blocklist.enabled || new.blocklist != old.blocklist {
        // Always re-read: a SIGHUP is how a cron job that rewrote the files says so.
        match engine
            .reload_blocklist(Some(new.blocklist.sources(&d.paths.state_dir)))
            .await
        {
            Ok(s) => tracing::info!(rules = s.rules, enabled = s.enabled, "blocklist reloaded"),
            Err(e) => tracing::error!("reload: blocklist kept as it was: {e}"),
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
    if (&new_paths.state_dir, &new_paths.download_dir) != (&paths.state_dir, &paths.download_dir)
        || new.daemon.incomplete_dir != old.daemon.incomplete_dir
    {
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
