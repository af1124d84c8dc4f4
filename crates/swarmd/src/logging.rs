//! Logging: tracing-subscriber to stderr, filtered by `RUST_LOG` when set, else by
//! `daemon.log_level` (which SIGHUP can change through the reload handle).
//!
//! The filter is a list of `level` and `target=level` directives (`info,swarm_engine=debug`),
//! tracing-subscriber's `Targets`: the `RUST_LOG` syntax people write, without `EnvFilter`'s
//! span and field matching, which brought a regex engine into the daemon (~250 KB of code, run
//! at every start) for directives nobody gives a BitTorrent daemon.
//!
//! Under systemd, stderr goes to the journal, which stamps every line itself: when
//! `$JOURNAL_STREAM` names our stderr, lines carry no timestamp and no colours.

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, Registry};

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Changes the filter of the installed logger.
pub struct LogHandle {
    reload: reload::Handle<Targets, Registry>,
    /// `RUST_LOG` was set at start: it wins over the config, also after a reload.
    from_env: bool,
}

impl LogHandle {
    /// Applies a new `daemon.log_level`, unless `RUST_LOG` rules.
    pub fn set_level(&self, level: &str) -> Result<(), LoggingError> {
        if self.from_env {
            return Ok(());
        }
        let filter = parse_filter(level)?;
        self.reload
            .reload(filter)
            .map_err(|_| LoggingError::AlreadyInstalled)
    }
}

/// Installs the global logger.
pub fn init(config_level: &str) -> Result<LogHandle, LoggingError> {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let from_env = env.is_some();
    let filter = parse_filter(env.as_deref().unwrap_or(config_level))?;
    let (filter_layer, reload) = reload::Layer::new(filter);
    let journal = stderr_is_journal(std::env::var("JOURNAL_STREAM").ok().as_deref());
    let ansi = !journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(true);
    let registry = tracing_subscriber::registry().with(filter_layer);
    let installed = if journal {
        registry.with(fmt.without_time()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    installed.map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(LogHandle { reload, from_env })
}

/// The same check as the config's `daemon.log_level` (so `check-config` and the start agree),
/// also applied to `RUST_LOG`.
fn parse_filter(filter: &str) -> Result<Targets, LoggingError> {
    crate::config::check_log_filter(filter).map_err(|reason| LoggingError::Filter {
        filter: filter.to_owned(),
        reason,
    })?;
    filter.trim().parse().map_err(|e| LoggingError::Filter {
        filter: filter.to_owned(),
        reason: format!("{e} (expected a level or target=level, comma-separated)"),
    })
}

/// `JOURNAL_STREAM` is `DEV:INODE` of the journal's stream; it only counts if our stderr is still
/// that stream (a child whose stderr was redirected inherits the variable).
fn stderr_is_journal(journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(meta) => meta.dev() == dev && meta.ino() == ino,
        // Without /proc, trust the variable: systemd set it for us.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_detection() {
        assert!(!stderr_is_journal(None));
        assert!(!stderr_is_journal(Some("garbage")));
        assert!(!stderr_is_journal(Some("1:2")));
        let meta = std::fs::metadata("/proc/self/fd/2").unwrap();
        assert!(stderr_is_journal(Some(&format!(
            "{}:{}",
            meta.dev(),
            meta.ino()
        ))));
    }

    #[test]
    fn filters() {
        use tracing::Level;
        let f = parse_filter(" info,swarm_engine=debug,swarm_engine::dht=off ").unwrap();
        assert!(f.would_enable("swarmd", &Level::INFO));
        assert!(!f.would_enable("swarmd", &Level::DEBUG));
        assert!(f.would_enable("swarm_engine::torrent", &Level::DEBUG));
        assert!(!f.would_enable("swarm_engine::dht", &Level::ERROR));
        let f = parse_filter("warn").unwrap();
        assert!(f.would_enable("swarm_engine", &Level::WARN));
        assert!(!f.would_enable("swarm_engine", &Level::INFO));
        assert!(parse_filter("swarmd=notalevel").is_err());
        assert!(parse_filter("info,swarmd[peer]=debug").is_err());
    }
}
