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

mod daemon_cmds;
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
    #[command(flatten)]
    Daemon(daemon_cmds::DaemonCommand),
}

fn main() -> ExitCode {
    // `swarmctl list | head` must end quietly when the reader goes, as other command-line tools
    // do: the default action of SIGPIPE, which Rust's runtime sets to "ignore" (and then every
    // print would panic on the broken pipe).
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Usage errors exit with status 2 (clap's default); each family picks its other codes.
    match Cli::parse().command {
        Command::Torrent(cmd) => report(torrent_cmds::run(cmd)),
        Command::Daemon(cmd) => daemon_cmds::run(cmd),
    }
}

/// create/inspect: 0 on success, 1 with the error chain on stderr otherwise.
fn report(result: anyhow::Result<()>) -> ExitCode {
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
