//! # Blocklist — the IP blocklist every peer address passes
//!
//! [`Blocklist`] is one shared handle (an `Arc`), cloned into the listener and the UDP port
//! (incoming TCP and uTP connections, refused before their handshake is read), every torrent
//! (addresses from trackers, PEX, DHT and `torrent.add_peers`, and its dials) and every magnet
//! fetch. Reading it is a read lock on an `Arc<RangeSet>` and a binary search (`ranges.rs`); a
//! load builds the new set aside (`load.rs`, on a blocking thread) and swaps the `Arc` in, so a
//! lookup never waits for a file. A load that cannot read a file changes nothing: the rules in
//! force stay.
//!
//! Owned by the session (built from `EngineConfig::blocklist`, loaded at start, reloaded on
//! SIGHUP and `blocklist.reload`); it is not an actor, so no crash of one loses it.

mod load;
pub mod parse;
pub mod ranges;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use swarm_model::{BlocklistFile, BlocklistProblem, BlocklistSources, BlocklistStatus};

pub use load::{load, LoadError, Loaded};
pub use ranges::{RangeSet, RangeSetBuilder};

/// The largest list `blocklist.update` downloads (a full eMule list is ~10 MiB uncompressed).
const MAX_DOWNLOAD: u64 = 64 << 20;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The shared handle. `Default` is an empty, disabled list.
#[derive(Clone, Default)]
pub struct Blocklist(Arc<Inner>);

#[derive(Default)]
struct Inner {
    set: RwLock<Arc<RangeSet>>,
    blocked: AtomicU64,
    /// The sources and what the last load found; held through a load, so loads take turns.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sources: BlocklistSources,
    files: Vec<BlocklistFile>,
    malformed: u64,
    problems: Vec<BlocklistProblem>,
    loaded_at: Option<i64>,
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (v4, v6) = self.set().counts();
        write!(f, "Blocklist({v4} IPv4 + {v6} IPv6 ranges)")
    }
}

/// Why `blocklist.update` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no blocklist url is configured ([blocklist] url)")]
    NoUrl,
    #[error("cannot fetch the blocklist from {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("cannot save the fetched blocklist to {}: {reason}", path.display())]
    Save { path: PathBuf, reason: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl Blocklist {
    fn set(&self) -> Arc<RangeSet> {
        self.0
            .set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `ip` is blocked; a refusal is counted and logged (at debug) with `what` the
    /// address was for.
    pub fn refuses(&self, ip: IpAddr, what: &str) -> bool {
        let guard = self.0.set.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_empty() || !guard.contains(ip) {
            return false;
        }
        drop(guard);
        self.0.blocked.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(peer = %ip, "blocklisted: {what} refused");
        true
    }

    /// Drops the blocked addresses of `addrs` (counted, as [`Blocklist::refuses`]).
    pub fn retain_allowed(&self, addrs: &mut Vec<SocketAddr>, what: &str) {
        addrs.retain(|a| !self.refuses(a.ip(), what));
    }

    /// Peer addresses refused so far.
    pub fn blocked(&self) -> u64 {
        self.0.blocked.load(Ordering::Relaxed)
    }

    /// Ranges in force.
    pub fn rules(&self) -> usize {
        self.set().len()
    }

    pub fn status(&self) -> BlocklistStatus {
        let set = self.set();
        let (v4, v6) = set.counts();
        let s = self.state();
        BlocklistStatus {
            enabled: s.sources.enabled,
            rules: set.len() as u64,
            rules_v4: v4 as u64,
            rules_v6: v6 as u64,
            memory_bytes: set.heap_bytes() as u64,
            files: s.files.clone(),
            url: s.sources.url.clone(),
            loaded_at: s.loaded_at,
            malformed: s.malformed,
            problems: s.problems.clone(),
            blocked: self.blocked(),
        }
    }

    /// Reads the rules again, from `sources` if given (they replace the ones in use), and puts
    /// them in force. Blocking: file I/O. On an error nothing changes.
    pub fn load(&self, sources: Option<BlocklistSources>) -> Result<BlocklistStatus, LoadError> {
        let mut state = self.state();
        let sources = sources.unwrap_or_else(|| state.sources.clone());
        let loaded = if sources.enabled {
            let mut paths = sources.paths.clone();
            paths.extend(sources.url_file.iter().filter(|f| f.exists()).cloned());
            load(&paths)?
        } else {
            Loaded::default()
        };
        for p in &loaded.problems {
            tracing::warn!(file = %p.path.display(), line = p.line, "blocklist: {}", p.reason);
        }
        if loaded.malformed > loaded.problems.len() as u64 {
            tracing::warn!(
                "blocklist: {} malformed lines in all (the first {} shown)",
                loaded.malformed,
                loaded.problems.len()
            );
        }
        let (v4, v6) = loaded.set.counts();
        if sources.enabled {
            tracing::info!(
                ipv4 = v4,
                ipv6 = v6,
                files = loaded.files.len(),
                "blocklist loaded"
            );
        }
        *state = State {
            sources,
            files: loaded.files,
            malformed: loaded.malformed,
            problems: loaded.problems,
            loaded_at: Some(crate::now_unix()),
        };
        *self.0.set.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded.set);
        drop(state);
        Ok(self.status())
    }

    /// Fetches the configured url into its file, then loads everything (blocking). A fetch
    /// that fails leaves the file and the rules as they were.
    pub fn update(&self) -> Result<BlocklistStatus, UpdateError> {
        let (url, file) = {
            let s = self.state();
            match (&s.sources.url, &s.sources.url_file) {
                (Some(u), Some(f)) => (u.clone(), f.clone()),
                _ => return Err(UpdateError::NoUrl),
            }
        };
        let body = fetch(&url).map_err(|reason| UpdateError::Fetch {
            url: url.clone(),
            reason,
        })?;
        save(&file, &body).map_err(|e| UpdateError::Save {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        tracing::info!(%url, bytes = body.len(), "blocklist fetched");
        Ok(self.load(None)?)
    }
}

fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let agent = ureq::AgentBuilder::new().timeout(DOWNLOAD_TIMEOUT).build();
    let resp = agent.get(url).call().map_err(|e| e.to_string())?;
    load::read_bounded(resp.into_reader(), MAX_DOWNLOAD).map_err(|e| e.to_string())
}

/// Written beside and renamed over, so a reload never reads half a file.
fn save(file: &Path, body: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("part");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_swaps_the_rules_and_a_failed_one_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("list.p2p");
        std::fs::write(&file, "lab:127.0.0.2-127.0.0.2\n").unwrap();
        let list = Blocklist::default();
        let peer: SocketAddr = "127.0.0.2:6881".parse().unwrap();
        assert!(!list.refuses(peer.ip(), "test"), "empty before a load");
        let sources = BlocklistSources {
            enabled: true,
            paths: vec![file.clone()],
            ..Default::default()
        };
        let status = list.load(Some(sources)).unwrap();
        assert_eq!((status.rules, status.enabled), (1, true));
        let mut addrs = vec![peer, "127.0.0.3:6881".parse().unwrap()];
        list.retain_allowed(&mut addrs, "test");
        assert_eq!(addrs.len(), 1);
        assert_eq!(list.blocked(), 1);

        std::fs::write(&file, "lab:127.0.0.2-127.0.0.2\n10.0.0.0/8\n").unwrap();
        assert_eq!(list.load(None).unwrap().rules, 2);
        std::fs::remove_file(&file).unwrap();
        assert!(list.load(None).is_err());
        assert_eq!(list.rules(), 2, "a failed load keeps the rules in force");

        let off = BlocklistSources::default();
        assert_eq!(list.load(Some(off)).unwrap().rules, 0);
        assert!(!list.refuses(peer.ip(), "test"));
    }

    #[test]
    fn update_without_a_url_says_so() {
        assert!(matches!(
            Blocklist::default().update(),
            Err(UpdateError::NoUrl)
        ));
    }
}
