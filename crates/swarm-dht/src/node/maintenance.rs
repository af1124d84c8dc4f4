//! Housekeeping, every `maintenance_interval`: expire stored peers and idle rate-limit
//! entries, ping questionable nodes (BEP 5), refresh stale buckets, bootstrap again while the table is thin,
//! re-announce registered torrents, and save the state file now and then.

use std::time::Instant;

use tracing::warn;

use super::{LookupKind, Node};

/// Questionable nodes pinged per round; the rest wait for the next one.
const PINGS_PER_ROUND: usize = 8;
/// Extra bootstraps while the table is still changing after start.
const WARMUP_ROUNDS: u32 = 10;
/// Stale buckets refreshed per round.
const REFRESHES_PER_ROUND: usize = 4;

impl Node {
    pub(super) fn maintain(&mut self, now: Instant) {
        self.store.expire(now);
        self.limiter.forget_idle(now);
        for n in self
            .table
            .questionable(now)
            .into_iter()
            .take(PINGS_PER_ROUND)
        {
            self.ping(n.addr, Some(n.id), now);
        }
        // Bootstrap again while the table is thin (fewer than k nodes), and during warm-up
        // while it still changes between rounds: when many nodes join at once, the first
        // answers each gets describe a network that is still forming.
        let thin = self.table.len() < self.cfg.lookup.k || !self.bootstrapped;
        let warming =
            self.warmup_rounds < WARMUP_ROUNDS && self.table.len() != self.size_after_bootstrap;
        if thin {
            self.start_bootstrap(now);
        } else if warming && self.start_bootstrap(now) {
            self.warmup_rounds += 1;
        }
        if self.bootstrapped {
            let stale =
                self.table
                    .refresh_targets(self.cfg.bucket_refresh_after, REFRESHES_PER_ROUND, now);
            for target in stale {
                self.start_lookup(target, LookupKind::Refresh, None, now);
            }
            self.announce_due(now);
        }
        let save_due = now.saturating_duration_since(self.last_save) >= self.cfg.autosave_interval;
        if save_due && self.cfg.state_file.is_some() {
            if let Err(e) = self.save(None) {
                warn!(error = %e, "could not save DHT state");
                // Try again next interval rather than every round.
                self.last_save = now;
            }
        }
    }
}
