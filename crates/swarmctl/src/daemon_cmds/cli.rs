//! The command line of the daemon commands: every subcommand with its arguments and help, and
//! the parsers of argument values (queue places, limits, rates, priorities). Executing them is
//! the parent module's (`daemon_cmds.rs`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use swarm_control::{Limit, QueueMove};

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
pub(super) const ALL: &str = "all";

#[derive(Args, Debug)]
pub struct Targets {
    #[arg(required = true, value_name = "TORRENT", help = MANY_TORRENTS)]
    pub(super) torrents: Vec<String>,
    #[command(flatten)]
    pub(super) common: Common,
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

impl DaemonCommand {
    pub(super) fn common(&self) -> &Common {
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
