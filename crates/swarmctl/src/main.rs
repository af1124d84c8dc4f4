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
    about = "Control swarmd; create and inspect .torrent files",
    after_help = "A torrent is named by its info-hash, a unique prefix of it (6+ hex digits) or its \
name; `all` names every torrent where a command takes several.\n\
Exit status of the daemon commands: 0 success, 1 the daemon answered with another error, 2 usage \
error, 3 swarmd is not running, 4 no such torrent (or several match), 5 permission denied, \
6 the torrent is already in the daemon. See docs/operations.md."
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
            eprintln!("swarmctl: error: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated ("bad.torrent: unsafe file path …"). A cause whose
/// text the message holds already is left out: many errors put their source into their own text
/// ("x: No such file or directory (os error 2)") and name it as their source too.
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn error_chains_say_each_thing_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("/x: {source}")]
        struct Wrapped {
            source: std::io::Error,
        }
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(Wrapped { source: io() }).context("cannot create a torrent");
        assert_eq!(chain(&e), format!("cannot create a torrent: /x: {}", io()));
    }
}
