//! Transmission's torrent ids: small integers, stable for the daemon's lifetime, never reused,
//! and what `recently-active` and `removed` need to remember between requests.
//!
//! Pure, with time as an argument. The RPC server holds one behind a mutex and feeds it every
//! torrent list it fetches: a hash seen for the first time gets the next id, a known hash missing
//! from a list has been removed (by whatever face removed it: RPC, control socket, watch
//! directory).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use swarm_model::InfoHash;

/// How long a torrent counts as `recently-active` after it was added or last moved bytes, and
/// how long a removal is reported in `removed` (transmission's window, 60 s).
pub const RECENT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Ids {
    by_hash: HashMap<InfoHash, u32>,
    by_id: BTreeMap<u32, InfoHash>,
    last: u32,
    /// When each known torrent was last seen active (or added).
    active_at: HashMap<u32, Instant>,
    removed_at: Vec<(u32, Instant)>,
}

impl Ids {
    /// Takes the current list of (hash, active now) and returns each hash's id, in the order given.
    pub fn observe(
        &mut self,
        torrents: impl IntoIterator<Item = (InfoHash, bool)>,
        now: Instant,
    ) -> Vec<u32> {
        let mut seen = Vec::new();
        for (hash, active) in torrents {
            let id = self.id_of(hash, now);
            if active {
                self.active_at.insert(id, now);
            }
            seen.push(id);
        }
        let gone: Vec<u32> = self
            .by_id
            .keys()
            .copied()
            .filter(|id| !seen.contains(id))
            .collect();
        for id in gone {
            self.forget(id, now);
        }
        self.removed_at
            .retain(|(_, at)| now.duration_since(*at) < RECENT);
        seen
    }

    /// The id of `hash`, giving it the next one if it has none yet (a torrent just added).
    pub fn id_of(&mut self, hash: InfoHash, now: Instant) -> u32 {
        if let Some(id) = self.by_hash.get(&hash) {
            return *id;
        }
        self.last += 1;
        let id = self.last;
        self.by_hash.insert(hash, id);
        self.by_id.insert(id, hash);
        self.active_at.insert(id, now);
        id
    }

    #[cfg(test)]
    pub fn hash(&self, id: u32) -> Option<InfoHash> {
        self.by_id.get(&id).copied()
    }

    /// Removed by this RPC: reported in `removed` at once, before any list shows it gone.
    pub fn forget_hash(&mut self, hash: InfoHash, now: Instant) {
        if let Some(id) = self.by_hash.get(&hash).copied() {
            self.forget(id, now);
        }
    }

    fn forget(&mut self, id: u32, now: Instant) {
        if let Some(hash) = self.by_id.remove(&id) {
            self.by_hash.remove(&hash);
        }
        self.active_at.remove(&id);
        self.removed_at.push((id, now));
    }

    pub fn recently_active(&self, id: u32, now: Instant) -> bool {
        self.active_at
            .get(&id)
            .is_some_and(|at| now.duration_since(*at) < RECENT)
    }

    pub fn recently_removed(&self, now: Instant) -> Vec<u32> {
        self.removed_at
            .iter()
            .filter(|(_, at)| now.duration_since(*at) < RECENT)
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: InfoHash = InfoHash([0xa; 20]);
    const B: InfoHash = InfoHash([0xb; 20]);

    #[test]
    fn ids_are_stable_and_never_reused() {
        let t0 = Instant::now();
        let mut ids = Ids::default();
        assert_eq!(ids.observe([(A, false), (B, false)], t0), [1, 2]);
        assert_eq!(ids.observe([(B, false), (A, false)], t0), [2, 1]);
        assert_eq!(ids.observe([(B, false)], t0), [2]);
        assert_eq!(ids.recently_removed(t0), [1]);
        assert_eq!(ids.hash(1), None);
        assert_eq!(
            ids.observe([(A, false), (B, false)], t0),
            [3, 2],
            "a is new again"
        );
        assert_eq!(ids.hash(3), Some(A));
    }

    #[test]
    fn recent_window() {
        let t0 = Instant::now();
        let later = t0 + RECENT + Duration::from_secs(1);
        let mut ids = Ids::default();
        ids.observe([(A, false), (B, false)], t0);
        assert!(ids.recently_active(1, t0), "just added");
        ids.observe([(A, true), (B, false)], later);
        assert!(ids.recently_active(1, later));
        assert!(!ids.recently_active(2, later));
        ids.forget_hash(B, later);
        assert_eq!(ids.recently_removed(later), [2]);
        ids.observe([(A, false)], later + RECENT);
        assert!(ids.recently_removed(later + RECENT).is_empty());
    }
}
