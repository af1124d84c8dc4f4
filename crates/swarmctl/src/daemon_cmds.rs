//! The subcommands that talk to a running swarmd over its control socket: add, list, show,
//! pause, resume, remove, verify, reannounce, files, peers (and `peers add`), trackers, limits
//! (global, or one torrent's), label, stats, watch, shutdown.
//!
//! Each one is a call or two through [`swarm_control::Client`]; output is a readable table by
//! default and the daemon's JSON with `--json`. These commands exit with their own status codes
//! (documented in `docs/operations.md` and in `swarmctl --help`), so scripts can tell "the
//! daemon is not running" from "no such torrent":
//!
//! | code | meaning                                        |
//! |------|------------------------------------------------|
//! | 0    | success                                        |
//! | 1    | the daemon answered with another error         |
//! | 2    | usage error (bad arguments)                    |
//! | 3    | swarmd is not running (no socket / refused)    |
//! | 4    | no such torrent (or an ambiguous prefix)       |
//! | 5    | permission denied                              |
//! | 6    | the torrent is already in the daemon (`add`)   |
//!
//! With `--json`, errors are JSON too: one `{"error": MESSAGE, "exit": CODE}` line on stdout per
//! failure (with the `torrent` or `source` it is about), besides the message on stderr.
//!
//! A torrent is named by a *selector*: its info-hash, a unique prefix of it, or its name. The
//! daemon resolves selectors (one place for every client); `all` is swarmctl's, which expands it
//! to every info-hash of `torrent.list`.

mod add;
mod cli;
mod render;
mod settings;
mod torrents;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use swarm_control::methods::names;
use swarm_control::{
    codes, AddParams, Client, ClientError, SetLimitsParams, SetTorrentLimitsParams,
};

use cli::ALL;
pub use cli::{BlocklistAction, Common, DaemonCommand, PeersAction};

/// Exit statuses of the daemon commands.
pub mod exit {
    pub const OK: u8 = 0;
    pub const DAEMON_ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_RUNNING: u8 = 3;
    pub const NOT_FOUND: u8 = 4;
    pub const PERMISSION: u8 = 5;
    pub const EXISTS: u8 = 6;
}

/// Runs one daemon command; prints its output and errors, and returns its exit status.
pub fn run(command: DaemonCommand) -> ExitCode {
    let json = command.common().json;
    let code = match execute(command) {
        Ok(code) => code,
        Err(e) => {
            e.report(json, None);
            e.code
        }
    };
    ExitCode::from(code)
}

/// An error with the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }

    fn message(&self) -> &str {
        &self.message
    }

    /// The message on stderr; with `--json` also a JSON line on stdout (scripts read only that),
    /// naming the `(key, value)` the failure is about (`("torrent", "abc123")`).
    fn report(&self, json: bool, about: Option<(&str, &str)>) {
        eprintln!("swarmctl: error: {}", self.message());
        if json {
            let mut line = serde_json::json!({"error": self.message, "exit": self.code});
            if let Some((key, value)) = about {
                line[key] = value.into();
            }
            println!("{line}");
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            _ if e.is_not_running() => exit::NOT_RUNNING,
            ClientError::SocketPermission { .. } => exit::PERMISSION,
            ClientError::Rpc(r) => match r.code {
                codes::TORRENT_NOT_FOUND | codes::AMBIGUOUS_TORRENT => exit::NOT_FOUND,
                codes::PERMISSION_DENIED => exit::PERMISSION,
                codes::TORRENT_EXISTS => exit::EXISTS,
                codes::INVALID_PARAMS | codes::INVALID_TORRENT => exit::USAGE,
                _ => exit::DAEMON_ERROR,
            },
            _ => exit::DAEMON_ERROR,
        };
        let message = match &e {
            // The daemon's message is meant for people; its code is for scripts (exit status).
            ClientError::Rpc(r) => r.message.clone(),
            _ => e.to_string(),
        };
        Failure { code, message }
    }
}

/// `shutdown --wait`: a timeout names the process that is still stopping.
fn shutdown_and_wait(client: &mut Client, timeout: Duration) -> Result<(), Failure> {
    let pid = client.daemon_info()?.pid;
    match client.shutdown_and_wait(timeout) {
        Err(ClientError::Timeout { .. }) => Err(Failure {
            code: exit::DAEMON_ERROR,
            message: format!(
                "swarmd (pid {pid}) did not stop within {} s; it may still be stopping (see its log)",
                timeout.as_secs()
            ),
        }),
        other => other.map_err(Failure::from),
    }
}

fn connect(common: &Common) -> Result<Client, Failure> {
    Ok(match &common.socket {
        Some(path) => Client::connect(path)?,
        None => Client::connect_default()?,
    })
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("swarmctl: error: cannot print JSON: {e}"),
    }
}

/// Prints `value` as JSON with `--json`, else as `render` writes it; the command's success.
fn show<T: Serialize>(common: &Common, value: &T, render: impl FnOnce(&T) -> String) -> u8 {
    if common.json {
        print_json(value);
    } else {
        print!("{}", render(value));
    }
    exit::OK
}

fn execute(command: DaemonCommand) -> Result<u8, Failure> {
    match command {
        DaemonCommand::Add {
            sources,
            save_dir,
            paused,
            labels,
            common,
        } => add(&sources, save_dir, paused, labels, &common),
        DaemonCommand::List { labels, common } if !labels.is_empty() => {
            let list = settings::with_labels(connect(&common)?.list()?, &labels);
            Ok(show(&common, &list, |l| render::torrent_table(l)))
        }
        DaemonCommand::Label {
            torrent,
            action,
            labels,
            common,
        } => settings::label(&torrent, &action, &labels, &common),
        DaemonCommand::List { common, .. } => {
            let mut client = connect(&common)?;
            if common.json {
                // The daemon's answer as it came, on one line: scripts poll this with
                // thousands of torrents, and parsing and re-printing would double its cost.
                let raw = client.call_raw(swarm_control::methods::names::TORRENT_LIST, None)?;
                println!("{}", raw.get());
            } else {
                print!("{}", render::torrent_table(&client.list()?));
            }
            Ok(exit::OK)
        }
        DaemonCommand::Show { torrent, common } => {
            let detail = connect(&common)?.show(&torrent)?;
            Ok(show(&common, &detail, render::torrent_detail))
        }
        DaemonCommand::Pause(t) => for_each(&t.torrents, &t.common, names::TORRENT_PAUSE, "paused"),
        DaemonCommand::Resume {
            force: false,
            targets: t,
        } => for_each(&t.torrents, &t.common, names::TORRENT_RESUME, "resumed"),
        DaemonCommand::Resume {
            force: true,
            targets: t,
        } => for_each(
            &t.torrents,
            &t.common,
            names::TORRENT_FORCE_START,
            "force-started",
        ),
        DaemonCommand::Queue {
            to,
            torrents,
            common,
        } => torrents::queue(to, &torrents, &common),
        DaemonCommand::SeedLimits {
            torrent,
            ratio,
            seed_time,
            idle,
            common,
        } => torrents::seed_limits(torrent, ratio, seed_time, idle, &common),
        DaemonCommand::Move {
            torrent,
            dir,
            no_move,
            common,
        } => torrents::move_storage(&torrent, &dir, no_move, &common),
        DaemonCommand::Verify(t) => {
            for_each(&t.torrents, &t.common, names::TORRENT_VERIFY, "verifying")
        }
        DaemonCommand::Reannounce(t) => for_each(
            &t.torrents,
            &t.common,
            names::TORRENT_REANNOUNCE,
            "announcing",
        ),
        DaemonCommand::SuperSeed {
            mode,
            torrents,
            common,
        } => torrents::super_seed(mode == "on", &torrents, &common),
        DaemonCommand::Remove {
            torrents,
            delete_data,
            common,
        } => torrents::remove(&torrents, delete_data, &common),
        DaemonCommand::Files {
            torrent,
            priorities,
            common,
        } => torrents::files(&torrent, &priorities, &common),
        DaemonCommand::Peers {
            action:
                Some(PeersAction::Add {
                    torrent,
                    addrs,
                    common,
                }),
            ..
        } => settings::add_peers(&torrent, &addrs, &common),
        DaemonCommand::Peers {
            torrent, common, ..
        } => {
            let torrent = torrent.unwrap_or_default();
            let peers = connect(&common)?.peers(&torrent)?;
            Ok(show(&common, &peers, |p| render::peer_table(p)))
        }
        DaemonCommand::Trackers { torrent, common } => {
            let trackers = connect(&common)?.trackers(&torrent)?;
            Ok(show(&common, &trackers, |t| render::tracker_table(t)))
        }
        DaemonCommand::Limits {
            torrent: Some(torrent),
            down,
            up,
            peers,
            slots,
            priority,
            common,
        } => settings::torrent_limits(
            SetTorrentLimitsParams {
                torrent,
                download: down,
                upload: up,
                max_peers: peers,
                upload_slots: slots,
                priority,
            },
            &common,
        ),
        DaemonCommand::Limits {
            down, up, common, ..
        } => {
            let mut client = connect(&common)?;
            let limits = if down.is_none() && up.is_none() {
                client.limits()?
            } else {
                client.set_limits(SetLimitsParams {
                    download: down,
                    upload: up,
                })?
            };
            Ok(show(&common, &limits, render::limits))
        }
        DaemonCommand::QueueSettings {
            downloads,
            seeds,
            total,
            stalled,
            ratio,
            seed_time,
            idle,
            action,
            common,
        } => settings::queue_settings(
            settings::QueueChange {
                downloads,
                seeds,
                total,
                stalled,
                ratio,
                seed_time,
                idle,
                action,
            },
            &common,
        ),
        DaemonCommand::AltSpeed {
            switch,
            down,
            up,
            schedule,
            begin,
            end,
            days,
            common,
        } => settings::alt_speed(
            swarm_control::SetAltSpeedParams {
                enabled: switch.map(|s| s == "on"),
                download: down,
                upload: up,
                schedule: schedule.map(|s| s == "on"),
                days,
                begin_minute: begin,
                end_minute: end,
            },
            &common,
        ),
        DaemonCommand::Encryption { policy, common } => {
            let mut client = connect(&common)?;
            let now = match policy {
                None => client.encryption()?,
                Some(p) => client.set_encryption(&p)?,
            };
            Ok(show(&common, &now, |n| {
                format!("encryption: {}\n", n.encryption)
            }))
        }
        DaemonCommand::Blocklist { action, common } => {
            let mut client = connect(&common)?;
            let status = match action {
                None => client.blocklist()?,
                Some(BlocklistAction::Reload) => client.reload_blocklist(false)?,
                Some(BlocklistAction::Update) => client.reload_blocklist(true)?,
            };
            Ok(show(&common, &status, render::blocklist))
        }
        DaemonCommand::Stats { common } => {
            let mut client = connect(&common)?;
            let info = client.daemon_info()?;
            let stats = client.stats()?;
            if common.json {
                print_json(&serde_json::json!({"daemon": info, "session": stats}));
            } else {
                print!("{}", render::stats(&info, &stats));
            }
            Ok(exit::OK)
        }
        DaemonCommand::Watch { common } => {
            watch::run(connect(&common)?, common.json).map_err(Failure::from)
        }
        DaemonCommand::Shutdown {
            wait,
            timeout,
            common,
        } => {
            let mut client = connect(&common)?;
            let result = if wait {
                shutdown_and_wait(&mut client, Duration::from_secs(timeout))?;
                "stopped"
            } else {
                client.shutdown()?;
                "shutting down"
            };
            if common.json {
                // Like the other actions' `{"torrent", "result"}`: scripts always get JSON.
                println!("{}", serde_json::json!({ "result": result }));
            } else {
                println!("swarmd is {result}");
            }
            Ok(exit::OK)
        }
    }
}

/// Runs `f` for each item, going on after failures (each reported, about `key`: `torrent` or
/// `source`); the exit status is the first failure's.
fn each(
    items: &[String],
    common: &Common,
    key: &str,
    mut f: impl FnMut(&str) -> Result<(), Failure>,
) -> Result<u8, Failure> {
    let mut status = exit::OK;
    for item in items {
        if let Err(e) = f(item) {
            e.report(common.json, Some((key, item)));
            if status == exit::OK {
                status = e.code;
            }
        }
    }
    Ok(status)
}

/// The selectors with `all` replaced by every torrent's info-hash (each torrent once).
fn expand_all(client: &mut Client, selectors: &[String]) -> Result<Vec<String>, Failure> {
    if !selectors.iter().any(|s| s == ALL) {
        return Ok(selectors.to_vec());
    }
    let every: Vec<String> = client
        .list()?
        .into_iter()
        .map(|t| t.info_hash.to_hex())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for s in selectors {
        let expanded = if s == ALL {
            every.clone()
        } else {
            vec![s.clone()]
        };
        for e in expanded {
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    if out.is_empty() {
        eprintln!("swarmctl: no torrents");
    }
    Ok(out)
}

fn for_each(
    selectors: &[String],
    common: &Common,
    method: &str,
    done: &str,
) -> Result<u8, Failure> {
    let mut client = connect(common)?;
    let torrents = expand_all(&mut client, selectors)?;
    each(&torrents, common, "torrent", |t| {
        client.torrent_action(method, t)?;
        report(common, t, done);
        Ok(())
    })
}

fn report(common: &Common, torrent: &str, what: &str) {
    if common.json {
        println!(
            "{}",
            serde_json::json!({"torrent": torrent, "result": what})
        );
    } else {
        println!("{torrent}: {what}");
    }
}

fn add(
    sources: &[String],
    save_dir: Option<PathBuf>,
    paused: bool,
    labels: Vec<String>,
    common: &Common,
) -> Result<u8, Failure> {
    let labels = swarm_control::normalize_labels(&labels).map_err(Failure::usage)?;
    let save_dir = match save_dir {
        // The daemon resolves nothing against our working directory.
        Some(dir) => Some(absolute(&dir)?.display().to_string()),
        None => None,
    };
    let mut client = connect(common)?;
    each(sources, common, "source", |s| {
        // Every failure names its source, once: with several, the user sees which one failed.
        let named = |mut e: Failure| {
            if !e.message.starts_with(s) {
                e.message = format!("{s}: {}", e.message);
            }
            e
        };
        let params = AddParams {
            source: add::source_of(s).map_err(Failure::usage).map_err(named)?,
            save_dir: save_dir.clone(),
            paused,
            labels: labels.clone(),
        };
        let added = client.add(&params).map_err(|e| named(e.into()))?;
        if common.json {
            println!("{}", serde_json::to_string(&added).unwrap_or_default());
        } else {
            println!("added {} {}", added.info_hash, added.name);
        }
        Ok(())
    })
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
