//! One daemon per state directory: an exclusive `flock` on `STATE_DIR/swarmd.lock`, taken before
//! the engine loads any torrent and held until the process ends.
//!
//! Two daemons on one state directory (say, with different sockets) would load the same torrents,
//! both react to a file dropped into the watch directory, and whichever stopped last would write
//! its resume state over the other's (a removed torrent comes back). The control socket cannot
//! catch this (its path is per config), the state directory can.
//!
//! `flock` rather than a pid file: the kernel drops the lock when the process dies, however it
//! dies, so there is no stale lock to clean up. The holder's pid is written into the file for the
//! error message only. The file is never removed: unlinking a lock file while another process
//! waits on it would let two processes hold "the" lock at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another swarmd {} uses {}", holder(*pid), dir.display())]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock the state directory ({}): {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("(pid {pid})"),
        None => "(pid unknown)".to_owned(),
    }
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub const FILE_NAME: &'static str = "swarmd.lock";

    /// Locks `state_dir` (created if missing) for this process, or says which process has it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(Self::FILE_NAME);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        // Not truncated on open: the holder's pid must survive a second daemon's attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    dir: state_dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        let text = std::fs::read_to_string(state.join(StateLock::FILE_NAME)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock locks belong to the open file: a second open in this process conflicts too.
        let err = StateLock::acquire(&state).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "another swarmd (pid {}) uses {}",
                std::process::id(),
                state.display()
            )
        );
        drop(first);
        let _again = StateLock::acquire(&state).unwrap();
    }
}
