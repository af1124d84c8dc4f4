//! Driving lookups: starting them with seeds from the table, routing answers and silences to
//! them, sending the queries they ask for, and acting on their result (reply to the caller,
//! announce to the closest nodes, mark the node bootstrapped).

use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::{AnnounceWait, LookupKind, Node, Purpose, Running};
use crate::command::AnnounceOutcome;
use crate::krpc::{Method, Response, Want};
use crate::lookup::Lookup;
use crate::node_id::{NodeId, NodeInfo};

/// Buckets refreshed right after a bootstrap, to learn the far side of the keyspace too.
const REFRESH_AFTER_BOOTSTRAP: usize = 8;

impl Node {
    pub(super) fn start_lookup(
        &mut self,
        target: NodeId,
        kind: LookupKind,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
        now: Instant,
    ) {
        // A few more than k seeds, so that dead ones near the target do not stall it.
        let seeds = self.table.closest(&target, self.cfg.lookup.k * 2, now);
        let thin = seeds.len() < self.cfg.lookup.k;
        // Nobody to ask yet (an empty table, no saved nodes, bootstrap names still resolving):
        // wait for the names rather than finish at once with nothing.
        if self.resolving
            && seeds.is_empty()
            && self.saved_seeds.is_empty()
            && self.bootstrap_addrs.is_empty()
            && !matches!(kind, LookupKind::Bootstrap)
        {
            self.deferred.push((target, kind, permit));
            return;
        }
        let mut lookup = Lookup::new(target, self.table.own_id(), self.cfg.lookup);
        lookup.add_nodes(&seeds);
        // Bootstraps, and any lookup started before the table has filled (a get_peers right
        // after start), also ask the saved nodes and the bootstrap routers.
        if thin || matches!(kind, LookupKind::Bootstrap) {
            lookup.add_nodes(&self.saved_seeds);
            lookup.add_anonymous(&self.bootstrap_addrs);
        }
        let lid = self.next_lookup;
        self.next_lookup += 1;
        self.lookups.insert(
            lid,
            Running {
                lookup,
                kind,
                started: now,
                _permit: permit,
            },
        );
        self.advance(lid, now);
    }

    /// Starts a bootstrap lookup unless one is running; returns whether it started.
    pub(super) fn start_bootstrap(&mut self, now: Instant) -> bool {
        if self
            .lookups
            .values()
            .any(|r| matches!(r.kind, LookupKind::Bootstrap))
        {
            return false;
        }
        let own = self.table.own_id();
        self.start_lookup(own, LookupKind::Bootstrap, None, now);
        true
    }

    /// Feeds an answer to lookup `lid` (if it is still running) and streams new peers.
    pub(super) fn lookup_response(
        &mut self,
        lid: u64,
        from: std::net::SocketAddr,
        id: NodeId,
        r: Response,
    ) {
        let v6 = self.local_addr.is_ipv6();
        let Some(run) = self.lookups.get_mut(&lid) else {
            return;
        };
        // Only nodes we can reach from our socket are worth following.
        let nodes: Vec<NodeInfo> = r
            .nodes
            .iter()
            .chain(r.nodes6.iter())
            .filter(|n| n.addr.is_ipv6() == v6 && !n.addr.ip().is_unspecified())
            .copied()
            .collect();
        let fresh = run.lookup.on_response(from, id, &nodes, &r.values, r.token);
        if let LookupKind::GetPeers {
            stream: Some(tx), ..
        } = &run.kind
        {
            for peer in fresh {
                // A full stream drops peers rather than stall the node for a slow reader.
                let _ = tx.try_send(peer);
            }
        }
    }

    /// Sends whatever lookup `lid` wants sent, and finishes it when it is done.
    pub(super) fn advance(&mut self, lid: u64, now: Instant) {
        loop {
            let Some(run) = self.lookups.get_mut(&lid) else {
                return;
            };
            let queries = run.lookup.next_queries();
            if queries.is_empty() {
                break;
            }
            let method = method_for(&run.kind, run.lookup.target());
            let failed: Vec<_> = queries
                .into_iter()
                .filter(|c| {
                    !self.send_query(c.addr, c.id, method.clone(), Purpose::Lookup(lid), now)
                })
                .collect();
            if failed.is_empty() {
                break;
            }
            // Unsendable (no query slot): count them as failed so the lookup moves on.
            if let Some(run) = self.lookups.get_mut(&lid) {
                for c in failed {
                    run.lookup.on_failure(c.addr);
                }
            }
        }
        let done = self.lookups.get(&lid).is_some_and(|r| {
            r.lookup.is_done()
                || now.saturating_duration_since(r.started) >= self.cfg.lookup_timeout
        });
        if done {
            self.finish(lid, now);
        }
    }

    pub(super) fn finish(&mut self, lid: u64, now: Instant) {
        let Some(run) = self.lookups.remove(&lid) else {
            return;
        };
        let target = run.lookup.target();
        debug!(%target, queries = run.lookup.queries_sent(), peers = run.lookup.peers().len(), "DHT lookup finished");
        match run.kind {
            LookupKind::Bootstrap => self.bootstrap_finished(now),
            LookupKind::Refresh => {}
            LookupKind::FindNode(done) => {
                let _ = done.send(run.lookup.closest_responded());
            }
            LookupKind::GetPeers { done, .. } => {
                if let Some(done) = done {
                    let _ = done.send(run.lookup.peers().to_vec());
                }
            }
            LookupKind::Announce { port, done } => {
                let mut outstanding = 0;
                for (node, token) in run.lookup.announce_targets() {
                    let method = Method::AnnouncePeer {
                        info_hash: target.into(),
                        // With implied_port the value is ignored; our DHT port is the best guess
                        // for receivers that insist on a non-zero one.
                        port: port.unwrap_or(self.local_addr.port()),
                        implied_port: port.is_none(),
                        token,
                    };
                    if self.send_query(
                        node.addr,
                        Some(node.id),
                        method,
                        Purpose::Announce(lid),
                        now,
                    ) {
                        outstanding += 1;
                    }
                }
                let wait = AnnounceWait {
                    info_hash: target.into(),
                    outstanding,
                    acknowledged: 0,
                    peers: run.lookup.peers().to_vec(),
                    done,
                    _permit: run._permit,
                };
                self.announces.insert(lid, wait);
                if outstanding == 0 {
                    self.announce_settled_all(lid);
                }
            }
        }
    }

    /// One announce_peer of announce `aid` was answered (`ok`) or failed.
    pub(super) fn announce_settled(&mut self, aid: u64, ok: bool) {
        let Some(wait) = self.announces.get_mut(&aid) else {
            return;
        };
        wait.outstanding = wait.outstanding.saturating_sub(1);
        wait.acknowledged += usize::from(ok);
        if wait.outstanding == 0 {
            self.announce_settled_all(aid);
        }
    }

    fn announce_settled_all(&mut self, aid: u64) {
        let Some(wait) = self.announces.remove(&aid) else {
            return;
        };
        // An announce that reached nobody (an empty or stale table, e.g. right after start-up)
        // is retried soon rather than after the full re-announce interval.
        if wait.acknowledged == 0 {
            if let Some(r) = self.registered.get_mut(&wait.info_hash) {
                let retry = Instant::now() + ANNOUNCE_RETRY.min(self.cfg.reannounce_interval);
                r.next_announce = r.next_announce.min(retry);
            }
        }
        if let Some(done) = wait.done {
            let _ = done.send(AnnounceOutcome {
                peers: wait.peers,
                announced_to: wait.acknowledged,
            });
        }
    }

    fn bootstrap_finished(&mut self, now: Instant) {
        if self.table.is_empty() {
            debug!("DHT bootstrap found no nodes; will retry");
            return;
        }
        if !self.bootstrapped {
            info!(
                nodes = self.table.len(),
                buckets = self.table.bucket_count(),
                "DHT bootstrapped"
            );
        }
        self.bootstrapped = true;
        self.size_after_bootstrap = self.table.len();
        // The own-id lookup filled the buckets near us; look into the farther ones too (with a
        // single bucket, that is a lookup for a random id).
        let far = self
            .table
            .bucket_count()
            .saturating_sub(1)
            .clamp(1, REFRESH_AFTER_BOOTSTRAP);
        for target in self.table.refresh_targets(Duration::ZERO, far, now) {
            self.start_lookup(target, LookupKind::Refresh, None, now);
        }
        self.announce_due(now);
    }

    /// Starts announce lookups for registered torrents whose time has come, a few at a time
    /// so thousands of torrents do not all re-announce in the same second.
    pub(super) fn announce_due(&mut self, now: Instant) {
        const MAX_PER_ROUND: usize = 16;
        let due: Vec<_> = self
            .registered
            .iter()
            .filter(|(_, r)| r.next_announce <= now)
            .map(|(ih, r)| (*ih, r.port))
            .take(MAX_PER_ROUND)
            .collect();
        for (info_hash, port) in due {
            if let Some(r) = self.registered.get_mut(&info_hash) {
                r.next_announce = now + self.cfg.reannounce_interval;
            }
            let kind = LookupKind::Announce { port, done: None };
            self.start_lookup(info_hash.into(), kind, None, now);
        }
    }
}

/// Wait before re-announcing a torrent whose last announce reached no node.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(20);

/// find_node for routing-table work, get_peers when peers are wanted.
fn method_for(kind: &LookupKind, target: NodeId) -> Method {
    let want = Want::default();
    match kind {
        LookupKind::GetPeers { .. } | LookupKind::Announce { .. } => Method::GetPeers {
            info_hash: target.into(),
            want,
        },
        _ => Method::FindNode { target, want },
    }
}
