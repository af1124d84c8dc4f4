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
mod render;
mod settings;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use swarm_control::methods::names;
use swarm_control::{
    codes, AddParams, Client, ClientError, FilePriority, FilePriorityChange, Limit,
    MoveStorageParams, QueueMove, QueuePositionResult, SeedLimits, SetLimitsParams,
    SetQueuePositionParams, SetSeedLimitsParams, SetTorrentLimitsParams,
};

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

/// Options every daemon command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The daemon's control socket. Default: $SWARMD_SOCKET, else the user daemon's
    /// ($XDG_RUNTIME_DIR/swarmd/swarmd.sock, or /tmp/swarmd-UID/swarmd.sock for a daemon started
    /// without XDG_RUNTIME_DIR), else the system daemon's (/run/swarmd/swarmd.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's answer as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum DaemonCommand {
    /// Add torrents: .torrent files, http(s) URLs of .torrent files, .magnet files or magnet
    /// links.
    Add {
        /// Paths to .torrent/.magnet files, http(s):// URLs of .torrent files, or magnet:?…
        /// links.
        #[arg(required = true, value_name = "TORRENT")]
        sources: Vec<String>,
        /// Save into this directory instead of the daemon's download directory.
        #[arg(short = 'o', long = "save-dir", value_name = "DIR")]
        save_dir: Option<PathBuf>,
        /// Add without starting.
        #[arg(long)]
        paused: bool,
        /// Give the torrent this label (repeat for more). Without -o, the first label with a
        /// `[labels.NAME] save_dir` in the daemon's config chooses where it is saved.
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List the daemon's torrents.
    List {
        /// Only the torrents with this label (repeat: with every one of them).
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Change a torrent's labels (free-form; `list --label` filters by them).
    Label {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        /// add, remove, or set (replace them all; `set` with no label clears them).
        #[arg(value_parser = ["add", "remove", "set"])]
        action: String,
        #[arg(value_name = "LABEL")]
        labels: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Show one torrent in detail.
    Show {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        #[command(flatten)]
        common: Common,
    },
    /// Pause torrents.
    Pause(Targets),
    /// Resume paused (or failed) torrents; they wait in the queue if it is full, unless forced.
    #[command(visible_alias = "start")]
    Resume {
        /// Run whatever the queue says (until paused or started without --force).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        targets: Targets,
    },
    /// Move a torrent in the queue: top, up, down, bottom, or a position (0 is first).
    Queue {
        #[arg(value_name = "WHERE", value_parser = parse_queue_move)]
        to: swarm_control::QueueMove,
        #[arg(required = true, value_name = "TORRENT", help = MANY_TORRENTS)]
        torrents: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set a torrent's seeding limits: each is `global` (the daemon's [seeding]),
    /// `unlimited`, or its own value. The daemon's action (pause or remove) applies.
    SeedLimits {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        /// Ratio (uploaded / downloaded), e.g. 2 or 1.5; or global, unlimited.
        #[arg(long, value_name = "RATIO", value_parser = parse_ratio_limit)]
        ratio: Option<Limit<f64>>,
        /// Minutes of seeding; or global, unlimited.
        #[arg(long, value_name = "MINUTES", value_parser = parse_minutes_limit)]
        seed_time: Option<Limit<u64>>,
        /// Minutes without payload moving while seeding; or global, unlimited.
        #[arg(long, value_name = "MINUTES", value_parser = parse_minutes_limit)]
        idle: Option<Limit<u64>>,
        #[command(flatten)]
        common: Common,
    },
    /// Remove torrents from the daemon.
    Remove {
        #[arg(required = true, value_name = "TORRENT", help = MANY_TORRENTS)]
        torrents: Vec<String>,
        /// Also delete the downloaded files.
        #[arg(long)]
        delete_data: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Move a torrent's data to another directory while it keeps seeding (file by file; across
    /// filesystems each file is copied, synced, then its source deleted). Refused, with nothing
    /// moved, if a file of the torrent exists there already. `show` and `watch` show the
    /// progress; a restart of the daemon finishes a move it interrupted.
    Move {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        /// The new save directory (made if missing).
        dir: PathBuf,
        /// Move nothing: the data is in DIR already; point the torrent there and check it.
        #[arg(long)]
        no_move: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Re-check torrents' data on disk.
    Verify(Targets),
    /// Announce to the trackers now.
    Reannounce(Targets),
    /// Super-seeding (BEP 16) on or off: a seed shows each new peer only a piece or two, the
    /// next once the peer has one, so that its upload goes to pieces the swarm lacks. For the
    /// initial seed of a torrent; it runs while the torrent seeds.
    SuperSeed {
        #[arg(value_parser = ["on", "off"])]
        mode: String,
        #[arg(required = true, value_name = "TORRENT", help = MANY_TORRENTS)]
        torrents: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List a torrent's files; change their priorities with --priority.
    Files {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        /// IDX=PRIORITY with PRIORITY one of skip, low, normal, high; IDX a file index, a range
        /// (2-5) or a list (1,3,7-9). Repeat for more.
        #[arg(long = "priority", value_name = "IDX=PRIORITY")]
        priorities: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List a torrent's connected peers.
    ///
    /// FLAGS, as uTorrent and qBittorrent show them: D we download from the peer; d we want to,
    /// but it chokes us; U we upload to the peer; u it wants to download, but we choke it; I it
    /// connected to us (incoming). SOURCE says how we learnt of the peer: tracker, dht, pex,
    /// incoming, magnet (a peer named in the magnet link) or manual.
    ///
    /// `swarmctl peers add TORRENT ADDR:PORT…` makes the torrent dial these peers (IP
    /// literals; IPv6 as [ADDR]:PORT), as if a tracker had named them.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Peers {
        #[arg(help = ONE_TORRENT, required = true)]
        torrent: Option<String>,
        #[command(subcommand)]
        action: Option<PeersAction>,
        #[command(flatten)]
        common: Common,
    },
    /// List a torrent's trackers and their state.
    ///
    /// TIER numbers the torrent's tracker tiers from 1, as `swarmctl inspect` does (the JSON
    /// `tier` is the 0-based index into the torrent's announce-list).
    Trackers {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show the IP blocklist (rules, files, last load, refusals), or read its files again.
    ///
    /// `reload` reads the files of `[blocklist] paths` again (as SIGHUP does); `update` first
    /// fetches `[blocklist] url`. Either keeps the rules in force if a file cannot be read.
    Blocklist {
        action: Option<BlocklistAction>,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set the encryption (MSE/PE) policy: require, prefer, allow or disable.
    Encryption {
        /// The new policy; without it, the one in force is shown.
        policy: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set the global rate limits, or with a torrent that torrent's own limits.
    ///
    /// A torrent's own rates apply on top of the global ones; 0 puts a limit back to the
    /// session's.
    Limits {
        /// One torrent: its info-hash, a unique prefix of it, or its name. Without it, the
        /// global limits.
        #[arg(value_name = "TORRENT")]
        torrent: Option<String>,
        /// Download limit: 4M, 500K, 1.5MiB, a number of bytes/s, or 0/unlimited.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        down: Option<u64>,
        /// Upload limit, same forms as --down.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        up: Option<u64>,
        /// With a torrent: its connections at once (0: [network] max_peers_per_torrent).
        #[arg(long, value_name = "N", requires = "torrent")]
        peers: Option<u32>,
        /// With a torrent: its peers unchoked at once (0: [limits] upload_slots_per_torrent).
        #[arg(long, value_name = "N", requires = "torrent")]
        slots: Option<u32>,
        /// With a torrent: its share of the global limits, low, normal or high.
        #[arg(long, value_name = "PRIORITY", requires = "torrent", value_parser = parse_bandwidth_priority)]
        priority: Option<swarm_control::BandwidthPriority>,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set the queue (how many torrents run at once) and the session's seeding limits
    /// ([queue] and [seeding]); 0 is no limit. Kept across restarts.
    #[command(name = "queue-settings")]
    QueueSettings {
        /// Torrents downloading at once.
        #[arg(long, value_name = "N")]
        downloads: Option<u32>,
        /// Torrents seeding at once.
        #[arg(long, value_name = "N")]
        seeds: Option<u32>,
        /// Both together.
        #[arg(long, value_name = "N")]
        total: Option<u32>,
        /// Minutes without data after which a download leaves its slot.
        #[arg(long, value_name = "MINUTES")]
        stalled: Option<u32>,
        /// The session's ratio limit (torrents on `global`).
        #[arg(long, value_name = "RATIO", value_parser = parse_plain_ratio)]
        ratio: Option<f64>,
        /// The session's seeding time limit, minutes.
        #[arg(long, value_name = "MINUTES")]
        seed_time: Option<u64>,
        /// The session's idle limit, minutes.
        #[arg(long, value_name = "MINUTES")]
        idle: Option<u64>,
        /// What a torrent reaching a limit does.
        #[arg(long, value_parser = ["pause", "remove", "remove-with-data"])]
        action: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Show or set the alternative speed limits ("turtle mode") and their weekly schedule.
    ///
    /// While on, they replace the global limits (`limits`), which come back when they go off.
    /// The schedule turns them on when its window begins and off when it ends; `on`/`off` by
    /// hand holds until its next edge.
    #[command(name = "alt-speed")]
    AltSpeed {
        /// `on` or `off` now.
        #[arg(value_name = "on|off", value_parser = ["on", "off"])]
        switch: Option<String>,
        /// Download limit while on: 4M, 500K, 1.5MiB, bytes/s, or 0/unlimited.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        down: Option<u64>,
        /// Upload limit while on, same forms as --down.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        up: Option<u64>,
        /// Turn the schedule on or off.
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        schedule: Option<String>,
        /// The schedule's start, HH:MM local time.
        #[arg(long, value_name = "HH:MM", value_parser = swarm_control::alt_speed::parse_clock)]
        begin: Option<u16>,
        /// The schedule's end, HH:MM; before --begin it runs over midnight.
        #[arg(long, value_name = "HH:MM", value_parser = swarm_control::alt_speed::parse_clock)]
        end: Option<u16>,
        /// The schedule's days: mon,tue… , weekdays, weekend or all.
        #[arg(long, value_name = "DAYS", value_parser = |s: &str| swarm_control::alt_speed::parse_days(&[s]))]
        days: Option<u8>,
        #[command(flatten)]
        common: Common,
    },
    /// Show the daemon's totals and where it keeps things.
    Stats {
        #[command(flatten)]
        common: Common,
    },
    /// Follow progress live (progress bars on a terminal, one line per event otherwise).
    Watch {
        #[command(flatten)]
        common: Common,
    },
    /// Stop the daemon gracefully.
    Shutdown {
        /// Return only once the daemon has stopped and its process is gone (peer port, socket
        /// and state directory free for the next `swarmd`).
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (exit 1) after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60, requires = "wait")]
        timeout: u64,
        #[command(flatten)]
        common: Common,
    },
}

/// What `swarmctl blocklist` does besides showing the blocklist.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum BlocklistAction {
    /// Read the files again.
    Reload,
    /// Fetch `[blocklist] url`, then read the files again.
    Update,
}

#[derive(Subcommand, Debug)]
pub enum PeersAction {
    /// Make a torrent dial these peers.
    Add {
        #[arg(help = ONE_TORRENT)]
        torrent: String,
        /// IP:PORT, e.g. 192.0.2.7:6881 or [2001:db8::7]:6881.
        #[arg(required = true, value_name = "ADDR:PORT")]
        addrs: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// Help of a one-torrent argument.
const ONE_TORRENT: &str =
    "The torrent: its info-hash, a unique prefix of it (6+ hex digits), or its name";

/// Help of a many-torrents argument.
const MANY_TORRENTS: &str = "Torrents: info-hashes, unique prefixes of them (6+ hex digits), \
     names, or `all` for every torrent";

/// The selector that names every torrent (a torrent named `all` is reached by its info-hash).
const ALL: &str = "all";

#[derive(Args, Debug)]
pub struct Targets {
    #[arg(required = true, value_name = "TORRENT", help = MANY_TORRENTS)]
    torrents: Vec<String>,
    #[command(flatten)]
    common: Common,
}

fn parse_queue_move(s: &str) -> Result<QueueMove, String> {
    Ok(match s {
        "top" => QueueMove::Top,
        "up" => QueueMove::Up,
        "down" => QueueMove::Down,
        "bottom" => QueueMove::Bottom,
        n => QueueMove::To(n.parse().map_err(|_| {
            format!("{n:?} is not a place in the queue: top, up, down, bottom or a position (0 is first)")
        })?),
    })
}

/// The protocol's name of a relative move.
fn queue_direction(to: QueueMove) -> &'static str {
    match to {
        QueueMove::Top => "top",
        QueueMove::Up => "up",
        QueueMove::Down => "down",
        QueueMove::Bottom | QueueMove::To(_) => "bottom",
    }
}

/// `global`, `unlimited`, or a value `parse` reads.
fn parse_limit<T>(
    s: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Limit<T>, String> {
    match s {
        "global" => Ok(Limit::Global),
        "unlimited" | "none" => Ok(Limit::Unlimited),
        v => parse(v).map(Limit::Own),
    }
}

fn parse_ratio_limit(s: &str) -> Result<Limit<f64>, String> {
    parse_limit(s, |v| match v.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "{v:?} is not a ratio: a number of 0 or more, global or unlimited"
        )),
    })
}

fn parse_minutes_limit(s: &str) -> Result<Limit<u64>, String> {
    parse_limit(s, |v| {
        v.parse::<u64>()
            .map_err(|_| format!("{v:?} is not a number of minutes, global or unlimited"))
    })
}

fn parse_bandwidth_priority(s: &str) -> Result<swarm_control::BandwidthPriority, String> {
    match s {
        "low" => Ok(swarm_control::BandwidthPriority::Low),
        "normal" => Ok(swarm_control::BandwidthPriority::Normal),
        "high" => Ok(swarm_control::BandwidthPriority::High),
        _ => Err(format!("{s:?} is not a priority: low, normal or high")),
    }
}

fn parse_plain_ratio(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a ratio: a number of 0 or more (0: no limit)"
        )),
    }
}

fn parse_rate(s: &str) -> Result<u64, String> {
    let rate = swarm_control::human::parse_rate(s)?;
    swarm_control::check_rate_limit("the", rate)?;
    Ok(rate)
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

impl DaemonCommand {
    fn common(&self) -> &Common {
        match self {
            DaemonCommand::Add { common, .. }
            | DaemonCommand::List { common, .. }
            | DaemonCommand::Label { common, .. }
            | DaemonCommand::Peers {
                action: Some(PeersAction::Add { common, .. }),
                ..
            }
            | DaemonCommand::Show { common, .. }
            | DaemonCommand::Move { common, .. }
            | DaemonCommand::Remove { common, .. }
            | DaemonCommand::SuperSeed { common, .. }
            | DaemonCommand::Files { common, .. }
            | DaemonCommand::Peers { common, .. }
            | DaemonCommand::Trackers { common, .. }
            | DaemonCommand::Limits { common, .. }
            | DaemonCommand::Encryption { common, .. }
            | DaemonCommand::AltSpeed { common, .. }
            | DaemonCommand::QueueSettings { common, .. }
            | DaemonCommand::Blocklist { common, .. }
            | DaemonCommand::Stats { common }
            | DaemonCommand::Watch { common }
            | DaemonCommand::Queue { common, .. }
            | DaemonCommand::SeedLimits { common, .. }
            | DaemonCommand::Shutdown { common, .. } => common,
            DaemonCommand::Resume { targets, .. } => &targets.common,
            DaemonCommand::Pause(t) | DaemonCommand::Verify(t) | DaemonCommand::Reannounce(t) => {
                &t.common
            }
        }
    }
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
            if common.json {
                print_json(&detail);
            } else {
                print!("{}", render::torrent_detail(&detail));
            }
            Ok(exit::OK)
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
        } => {
            let mut client = connect(&common)?;
            let torrents = expand_all(&mut client, &torrents)?;
            each(&torrents, &common, "torrent", |t| {
                let r: QueuePositionResult = match to {
                    QueueMove::To(position) => client.call(
                        names::TORRENT_SET_QUEUE_POSITION,
                        &SetQueuePositionParams {
                            torrent: t.to_owned(),
                            position,
                        },
                    )?,
                    _ => client.call(
                        names::TORRENT_QUEUE_MOVE,
                        &serde_json::json!({"torrent": t, "to": queue_direction(to)}),
                    )?,
                };
                report(&common, t, &format!("queue position {}", r.queue_position));
                Ok(())
            })
        }
        DaemonCommand::SeedLimits {
            torrent,
            ratio,
            seed_time,
            idle,
            common,
        } => {
            let mut client = connect(&common)?;
            let limits: SeedLimits = if ratio.is_none() && seed_time.is_none() && idle.is_none() {
                client.show(&torrent)?.seed_limits
            } else {
                client.call(
                    names::TORRENT_SET_SEED_LIMITS,
                    &SetSeedLimitsParams {
                        torrent: torrent.clone(),
                        ratio,
                        seed_time_minutes: seed_time,
                        idle_minutes: idle,
                    },
                )?
            };
            if common.json {
                print_json(&limits);
            } else {
                print!("{}", render::seed_limits(&limits));
            }
            Ok(exit::OK)
        }
        DaemonCommand::Move {
            torrent,
            dir,
            no_move,
            common,
        } => {
            // A relative DIR is the user's, from here: the daemon's working directory is not.
            let dir = std::path::absolute(&dir)
                .map_err(|e| Failure::usage(format!("{}: {e}", dir.display())))?;
            let mut client = connect(&common)?;
            let _: PathBuf = client.call(
                names::TORRENT_MOVE_STORAGE,
                &MoveStorageParams {
                    torrent: torrent.clone(),
                    dir: dir.clone(),
                    move_data: !no_move,
                },
            )?;
            let what = match no_move {
                false => format!("moving to {}", dir.display()),
                true => format!("looking for its data in {}", dir.display()),
            };
            report(&common, &torrent, &what);
            Ok(exit::OK)
        }
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
        } => {
            let on = mode == "on";
            let mut client = connect(&common)?;
            let torrents = expand_all(&mut client, &torrents)?;
            each(&torrents, &common, "torrent", |t| {
                client.set_super_seed(t, on)?;
                report(
                    &common,
                    t,
                    if on {
                        "super-seeding"
                    } else {
                        "super-seeding off"
                    },
                );
                Ok(())
            })
        }
        DaemonCommand::Remove {
            torrents,
            delete_data,
            common,
        } => {
            let mut client = connect(&common)?;
            let torrents = expand_all(&mut client, &torrents)?;
            each(&torrents, &common, "torrent", |t| {
                client.remove(t, delete_data)?;
                let what = if delete_data {
                    "removed, data deleted"
                } else {
                    "removed"
                };
                report(&common, t, what);
                Ok(())
            })
        }
        DaemonCommand::Files {
            torrent,
            priorities,
            common,
        } => files(&torrent, &priorities, &common),
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
            if common.json {
                print_json(&peers);
            } else {
                print!("{}", render::peer_table(&peers));
            }
            Ok(exit::OK)
        }
        DaemonCommand::Trackers { torrent, common } => {
            let trackers = connect(&common)?.trackers(&torrent)?;
            if common.json {
                print_json(&trackers);
            } else {
                print!("{}", render::tracker_table(&trackers));
            }
            Ok(exit::OK)
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
            if common.json {
                print_json(&limits);
            } else {
                print!("{}", render::limits(&limits));
            }
            Ok(exit::OK)
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
            if common.json {
                print_json(&now);
            } else {
                println!("encryption: {}", now.encryption);
            }
            Ok(exit::OK)
        }
        DaemonCommand::Blocklist { action, common } => {
            let mut client = connect(&common)?;
            let status = match action {
                None => client.blocklist()?,
                Some(BlocklistAction::Reload) => client.reload_blocklist(false)?,
                Some(BlocklistAction::Update) => client.reload_blocklist(true)?,
            };
            if common.json {
                print_json(&status);
            } else {
                print!("{}", render::blocklist(&status));
            }
            Ok(exit::OK)
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

fn files(torrent: &str, priorities: &[String], common: &Common) -> Result<u8, Failure> {
    let changes = priorities
        .iter()
        .map(|p| parse_priority(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut client = connect(common)?;
    let files = if changes.is_empty() {
        client.files(torrent)?
    } else {
        client.set_file_priority(torrent, changes.into_iter().flatten().collect())?
    };
    if common.json {
        print_json(&files);
    } else {
        print!("{}", render::file_table(&files));
    }
    Ok(exit::OK)
}

/// `1,3-5=skip` → changes for files 1, 3, 4 and 5.
fn parse_priority(spec: &str) -> Result<Vec<FilePriorityChange>, Failure> {
    let bad = |why: &str| {
        Failure::usage(format!(
            "--priority {spec:?}: {why} (expected IDX=skip|low|normal|high)"
        ))
    };
    let (indices, prio) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let priority = match prio.trim().to_ascii_lowercase().as_str() {
        "skip" | "off" => FilePriority::Skip,
        "low" => FilePriority::Low,
        "normal" => FilePriority::Normal,
        "high" => FilePriority::High,
        _ => return Err(bad("unknown priority")),
    };
    let mut out = Vec::new();
    for part in indices.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (lo, hi) = match (lo, hi) {
            (Ok(lo), Ok(hi)) if lo <= hi => (lo, hi),
            _ => return Err(bad("bad file index or range")),
        };
        if hi - lo >= 1_000_000 {
            return Err(bad("range too large"));
        }
        out.extend((lo..=hi).map(|index| FilePriorityChange { index, priority }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
