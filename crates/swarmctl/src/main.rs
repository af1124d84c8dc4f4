//! `swarmctl`: the command-line client of swarmd.
//!
//! Two families of subcommands share one `clap` parser:
//! - [`torrent_cmds`]: `create` and `inspect` work on `.torrent` files and magnet links directly
//!   and need no daemon;
//! - daemon commands (add, list, show, pause, resume, remove, verify, files, peers, trackers,
//!   limits, stats, watch, shutdown) talk to swarmd over its control socket; they live in
//!   `daemon_cmds.rs` and plug in as one more flattened variant of [`Command`].
//!
//! This file only wires: parse the command line, run the subcommand, turn an error into a
//! message on stderr and a non-zero exit status.

mod torrent_cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "swarmctl",
    version,
    about = "Control swarmd; create and inspect .torrent files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    #[command(flatten)]
    Torrent(torrent_cmds::TorrentCommand),
    // Daemon commands go here, as `#[command(flatten)] Daemon(daemon_cmds::DaemonCommand)`.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Torrent(cmd) => torrent_cmds::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain: "bad.torrent: unsafe file path …".
            eprintln!("swarmctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
