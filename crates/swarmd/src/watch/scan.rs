//! One pass over the watch directory, and what happens to each file that is ready.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::kept::{Kept, Stamp};
use super::WatchOptions;
use crate::config::OnAdded;
use crate::engine::{AddTorrent, Engine, EngineError};
use crate::intake;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Torrent,
    Magnet,
}

/// `.torrent` / `.magnet`, in any case; hidden files (editors' and downloaders' temporaries) never.
fn kind_of(name: &str) -> Option<Kind> {
    if name.starts_with('.') {
        return None;
    }
    let (_, ext) = name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "torrent" => Some(Kind::Torrent),
        "magnet" => Some(Kind::Magnet),
        _ => None,
    }
}

/// A file seen but not yet ready: it must look the same for `settle`.
struct Pending {
    stamp: Stamp,
    since: Instant,
}

pub(super) struct Scanner<E> {
    options: WatchOptions,
    engine: E,
    pending: HashMap<PathBuf, Pending>,
    /// Files we could not rename or delete, so they are not processed over and over (until they
    /// change).
    stuck: HashMap<PathBuf, Stamp>,
    /// `.torrent` files that end too early (still being written?): since when, at this stamp.
    incomplete: HashMap<PathBuf, (Stamp, Instant)>,
    kept: Option<Kept>,
    dir_error_logged: bool,
}

impl<E: Engine> Scanner<E> {
    pub fn new(options: WatchOptions, engine: E) -> Self {
        let kept = (options.on_added == OnAdded::Keep).then(|| Kept::load(&options.kept_file));
        Scanner {
            options,
            engine,
            pending: HashMap::new(),
            stuck: HashMap::new(),
            incomplete: HashMap::new(),
            kept,
            dir_error_logged: false,
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Looks at every file once; adds those that are ready. Breaks when the engine shuts down.
    pub async fn scan(&mut self, cancel: &CancellationToken) -> ControlFlow<()> {
        let entries = match std::fs::read_dir(&self.options.dir) {
            Ok(entries) => {
                self.dir_error_logged = false;
                entries
            }
            Err(e) => {
                if !std::mem::replace(&mut self.dir_error_logged, true) {
                    tracing::warn!(dir = %self.options.dir.display(), error = %e, "cannot read the watch directory");
                }
                return ControlFlow::Continue(());
            }
        };
        let mut present_paths = HashSet::new();
        let mut present_names = HashSet::new();
        let mut ready = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(kind) = kind_of(&name) else { continue };
            let path = entry.path();
            // Follows symlinks: a link to a .torrent elsewhere is fine.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let stamp = Stamp::of(&meta);
            present_paths.insert(path.clone());
            present_names.insert(name.clone());
            if self.stuck.get(&path) == Some(&stamp)
                || self.kept.as_ref().is_some_and(|k| k.contains(&name, stamp))
            {
                continue;
            }
            match self.pending.get(&path) {
                Some(p) if p.stamp == stamp && p.since.elapsed() >= self.options.settle => {
                    self.pending.remove(&path);
                    ready.push((path, name, kind, stamp));
                }
                Some(p) if p.stamp == stamp => {}
                _ => {
                    self.pending.insert(
                        path,
                        Pending {
                            stamp,
                            since: Instant::now(),
                        },
                    );
                }
            }
        }
        self.pending.retain(|p, _| present_paths.contains(p));
        self.stuck.retain(|p, _| present_paths.contains(p));
        self.incomplete.retain(|p, _| present_paths.contains(p));
        if let Some(k) = &mut self.kept {
            k.retain_names(&present_names);
        }
        for (path, name, kind, stamp) in ready {
            if cancel.is_cancelled() {
                break;
            }
            self.process(&path, &name, kind, stamp).await?;
        }
        ControlFlow::Continue(())
    }

    async fn process(
        &mut self,
        path: &Path,
        name: &str,
        kind: Kind,
        stamp: Stamp,
    ) -> ControlFlow<()> {
        let bytes = match intake::read_capped(path).await {
            Ok(b) => b,
            Err(_) if !path.exists() => return ControlFlow::Continue(()),
            Err(reason) => {
                self.mark_invalid(path, stamp, &reason);
                return ControlFlow::Continue(());
            }
        };
        let parsed = match kind {
            Kind::Torrent => intake::parse_metainfo(&bytes),
            Kind::Magnet => intake::parse_magnet_file(&bytes),
        };
        let since_incomplete = self.incomplete.remove(path);
        let torrent = match parsed {
            Ok(t) => t,
            Err(reason) if kind == Kind::Torrent && intake::looks_truncated(&bytes) => {
                // Maybe its writer paused for longer than `settle`: wait for the rest, up to
                // `incomplete_grace` without a change.
                let since = match since_incomplete {
                    Some((s, since)) if s == stamp => since,
                    _ => Instant::now(),
                };
                if since.elapsed() < self.options.incomplete_grace {
                    tracing::debug!(file = %path.display(), reason, "incomplete .torrent; waiting for the rest");
                    self.incomplete.insert(path.to_path_buf(), (stamp, since));
                    self.pending.insert(
                        path.to_path_buf(),
                        Pending {
                            stamp,
                            since: Instant::now(),
                        },
                    );
                } else {
                    let reason = format!(
                        "{reason} (the file stayed incomplete for {} s)",
                        self.options.incomplete_grace.as_secs()
                    );
                    self.mark_invalid(path, stamp, &reason);
                }
                return ControlFlow::Continue(());
            }
            Err(reason) => {
                self.mark_invalid(path, stamp, &reason);
                return ControlFlow::Continue(());
            }
        };
        let info_hash = torrent.info_hash();
        let add = AddTorrent {
            torrent,
            save_dir: None,
            paused: self.options.paused,
            labels: Vec::new(),
        };
        match self.engine.add(add).await {
            Ok(added) => {
                tracing::info!(file = %path.display(), info_hash = %added.info_hash, name = %added.name, "added from the watch directory");
                self.dispose(path, name, stamp);
            }
            Err(EngineError::Duplicate(_)) => {
                tracing::info!(file = %path.display(), %info_hash, "torrent already present; not adding it twice");
                self.dispose(path, name, stamp);
            }
            Err(e) if e.is_refusal() => self.mark_invalid(path, stamp, &e.to_string()),
            Err(EngineError::ShuttingDown) => return ControlFlow::Break(()),
            Err(e) => {
                // Not the file's fault: try again on a later scan.
                tracing::warn!(file = %path.display(), error = %e, "adding failed; will retry");
                self.pending.insert(
                    path.to_path_buf(),
                    Pending {
                        stamp,
                        since: Instant::now() + RETRY_DELAY,
                    },
                );
            }
        }
        ControlFlow::Continue(())
    }

    fn dispose(&mut self, path: &Path, name: &str, stamp: Stamp) {
        let result = match self.options.on_added {
            OnAdded::Rename => std::fs::rename(path, with_suffix(path, ".added")),
            OnAdded::Delete => std::fs::remove_file(path),
            OnAdded::Keep => {
                if let Some(k) = &mut self.kept {
                    k.insert(name, stamp);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(file = %path.display(), error = %e, action = ?self.options.on_added, "cannot dispose of an added watch file");
            self.stuck.insert(path.to_path_buf(), stamp);
        }
    }

    fn mark_invalid(&mut self, path: &Path, stamp: Stamp, reason: &str) {
        tracing::warn!(file = %path.display(), reason, "invalid file in the watch directory");
        let note = format!("swarmd could not add {}:\n{reason}\n", path.display());
        let result = std::fs::rename(path, with_suffix(path, ".invalid"))
            .and_then(|()| std::fs::write(with_suffix(path, ".invalid.txt"), note));
        if let Err(e) = result {
            tracing::error!(file = %path.display(), error = %e, "cannot rename an invalid watch file");
            self.stuck.insert(path.to_path_buf(), stamp);
        }
    }
}

/// After a failed add, wait a while longer than `settle` (the pending entry's `since` is set in
/// the future so the usual "unchanged for settle" rule applies from then on).
const RETRY_DELAY: Duration = Duration::from_secs(5);

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("a.torrent"), Some(Kind::Torrent));
        assert_eq!(kind_of("A.TORRENT"), Some(Kind::Torrent));
        assert_eq!(kind_of("x.magnet"), Some(Kind::Magnet));
        assert_eq!(kind_of("a.torrent.added"), None);
        assert_eq!(kind_of("a.torrent.invalid"), None);
        assert_eq!(kind_of(".a.torrent"), None);
        assert_eq!(kind_of("torrent"), None);
        assert_eq!(
            with_suffix(Path::new("/w/a.torrent"), ".added"),
            PathBuf::from("/w/a.torrent.added")
        );
    }
}
