//! `swarmd`: the BitTorrent daemon's command line. Parses arguments, loads the config, sets up
//! logging and hands over to the library (`swarmd::serve`); the engine itself is built in
//! `engine_adapter.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use swarm_control::paths::process_env;
use swarmd::paths::{self, Paths};
use swarmd::{config, daemon, logging, Daemon};

mod download;
mod engine_adapter;

#[derive(Parser)]
#[command(name = "swarmd", version, about = "The swarmd BitTorrent daemon")]
struct Cli {
    /// Config file. Default: $XDG_CONFIG_HOME/swarmd/swarmd.toml (user mode) or
    /// /etc/swarmd/swarmd.toml (system mode); built-in defaults apply when it does not exist.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// System mode (/etc/swarmd, /var/lib/swarmd, /run/swarmd), also implied when systemd sets
    /// STATE_DIRECTORY, RUNTIME_DIRECTORY or CONFIGURATION_DIRECTORY.
    #[arg(long, global = true)]
    system: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (what `swarmd` with no subcommand does).
    Run,
    /// Check the config file: exit 0 if it is valid, 1 with the error (file, line, key) if not.
    CheckConfig,
    /// Print the effective configuration (file + built-in defaults + resolved paths) as TOML.
    PrintConfig,
    /// Download one torrent in the foreground, without daemon state; `--seed` keeps seeding.
    Download(download::DownloadArgs),
    /// Read a password on stdin (one line) and print the `[rpc] password_hash` for it.
    RpcPassword,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let mut cli = Cli::parse();
    let result = match cli.command.take().unwrap_or(Command::Run) {
        Command::Run => run(&cli),
        Command::CheckConfig => check_config(&cli),
        Command::PrintConfig => print_config(&cli),
        Command::Download(args) => download::run(args),
        Command::RpcPassword => rpc_password(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarmd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates its own arena (up to 8 per core), each keeping freed
/// memory of its own: with a dozen threads that is idle heap. Two arenas serve a daemon whose
/// hot path allocates little (measured with 1 000 seeding torrents: 13.0 → 12.0 MiB anonymous).
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

struct Loaded {
    config: config::Config,
    used: Option<PathBuf>,
    default_file: PathBuf,
    paths: Paths,
}

fn load(cli: &Cli) -> anyhow::Result<Loaded> {
    let mode = daemon::detect_mode(cli.system);
    let default_file = paths::default_config_file(mode, &process_env);
    let (config, used) = config::load(cli.config.as_deref(), &default_file)?;
    let paths = Paths::resolve(&config, mode, &process_env);
    Ok(Loaded {
        config,
        used,
        default_file,
        paths,
    })
}

fn check_config(cli: &Cli) -> anyhow::Result<()> {
    let loaded = load(cli)?;
    match loaded.used {
        Some(file) => println!("{}: OK", file.display()),
        None => println!(
            "no config file at {}: the built-in defaults apply",
            loaded.default_file.display()
        ),
    }
    Ok(())
}

fn print_config(cli: &Cli) -> anyhow::Result<()> {
    let loaded = load(cli)?;
    let source = match &loaded.used {
        Some(file) => file.display().to_string(),
        None => format!("none ({} does not exist)", loaded.default_file.display()),
    };
    let effective = paths::with_resolved_paths(&loaded.config, &loaded.paths);
    let text = toml::to_string(&effective).context("cannot print the configuration")?;
    println!(
        "# Effective swarmd configuration ({} mode). Config file: {source}\n",
        loaded.paths.mode.as_str()
    );
    print!("{text}");
    Ok(())
}

fn rpc_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "the password read from stdin is empty"
    );
    println!(
        "{}",
        swarmd::http_rpc::password::PasswordHash::new(password)
    );
    Ok(())
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let Loaded {
        config,
        used,
        default_file,
        paths,
    } = load(cli)?;
    let log = logging::init(&config.daemon.log_level)?;
    // Before anything reads the state directory: a second daemon on it stops here.
    let (state_lock, settings) = daemon::claim_state(&paths.state_dir)?;
    match &used {
        Some(file) => {
            tracing::info!(file = %file.display(), mode = paths.mode.as_str(), "configuration read")
        }
        None => tracing::info!(
            mode = paths.mode.as_str(),
            "no config file at {}; using the built-in defaults",
            default_file.display()
        ),
    }
    let daemon = Daemon {
        config,
        explicit_config: cli.config.clone(),
        config_file: std::sync::Arc::new(std::sync::RwLock::new(used)),
        default_config_file: default_file,
        paths,
        log: Some(log),
        state_lock: Some(state_lock),
        settings,
    };
    // The actor system's own runtime runs everything: the engine's actors and the daemon's
    // faces (control socket, watch directory, systemd), so one `block_on` owns the process.
    let system = actix::System::new();
    let result = system.block_on(async move {
        let mut cfg = engine_adapter::engine_config(&daemon.config, &daemon.paths);
        cfg.limits = daemon::start_limits(&daemon.config, &daemon.settings);
        cfg.alt_speed = daemon::start_alt_speed(&daemon.config, &daemon.settings);
        (cfg.queue, cfg.seeding) = daemon::start_queue(&daemon.config, &daemon.settings);
        let session = swarm_engine::Session::start(cfg)?;
        let restored = session.restore(&daemon.paths.state_dir).await;
        tracing::info!(torrents = restored, listen = %session.listen_addr(), "engine started");
        let engine = engine_adapter::SessionEngine::new(session, &daemon.config);
        swarmd::serve(daemon, engine).await?;
        anyhow::Ok(())
    });
    // Everything worth waiting for is done: `stopped` announces (bounded), resume state
    // flushed, socket removed. Dropping the runtime would still wait for every task on its
    // blocking pool, e.g. an HTTP announce to a tracker that does not answer, until that
    // request's own timeout: leave those to the process exit instead.
    std::mem::forget(system);
    result
}
