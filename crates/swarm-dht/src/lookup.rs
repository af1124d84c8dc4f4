//! One iterative lookup (Kademlia / BEP 5): walk towards a target id by asking the closest
//! nodes we know for nodes closer still, `alpha` queries at a time, until the `k` closest
//! nodes we have heard of have all answered.
//!
//! Pure: the socket task sends the queries this asks for ([`Lookup::next_queries`]) and feeds
//! back what came of them ([`Lookup::on_response`], [`Lookup::on_failure`]); timeouts are
//! the socket task's business. The same state machine serves `find_node` (bootstrap, bucket
//! refresh) and `get_peers` (which also collects peers and the tokens an announce needs).
//!
//! Bounds: at most `max_queries` queries, at most [`MAX_CANDIDATES`] candidates remembered
//! (the farthest are forgotten), at most [`MAX_PEERS`] peers collected.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::node_id::{NodeId, NodeInfo};

/// Candidates remembered per lookup; only the closest `k` matter for termination.
pub const MAX_CANDIDATES: usize = 128;
/// Peers collected per lookup.
pub const MAX_PEERS: usize = 2000;

#[derive(Clone, Copy, Debug)]
pub struct LookupParams {
    /// Queries in flight at once (BEP 5 / Kademlia: 3).
    pub alpha: usize,
    /// How many closest nodes must answer before the lookup ends (8).
    pub k: usize,
    /// Total queries one lookup may send.
    pub max_queries: usize,
}

impl Default for LookupParams {
    fn default() -> Self {
        LookupParams {
            alpha: 3,
            k: 8,
            max_queries: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Responded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    info: NodeInfo,
    state: State,
    token: Option<Vec<u8>>,
}

/// A node to query: bootstrap routers are asked before their id is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    pub addr: SocketAddr,
    pub id: Option<NodeId>,
}

pub struct Lookup {
    target: NodeId,
    own_id: NodeId,
    params: LookupParams,
    /// Sorted by distance to `target`, closest first.
    candidates: Vec<Candidate>,
    /// Addresses ever seen in this lookup: a node is asked at most once.
    seen_addrs: HashSet<SocketAddr>,
    seen_ids: HashSet<NodeId>,
    /// Bootstrap addresses with no known id: queried first, never candidates themselves.
    anonymous: Vec<(SocketAddr, State)>,
    peers: Vec<SocketAddr>,
    seen_peers: HashSet<SocketAddr>,
    queries_sent: usize,
}

impl Lookup {
    pub fn new(target: NodeId, own_id: NodeId, params: LookupParams) -> Self {
        Lookup {
            target,
            own_id,
            params: LookupParams {
                alpha: params.alpha.max(1),
                k: params.k.max(1),
                max_queries: params.max_queries,
            },
            candidates: Vec::new(),
            seen_addrs: HashSet::new(),
            seen_ids: HashSet::new(),
            anonymous: Vec::new(),
            peers: Vec::new(),
            seen_peers: HashSet::new(),
            queries_sent: 0,
        }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Adds nodes to consider (from our routing table, or learnt from a response).
    pub fn add_nodes(&mut self, nodes: &[NodeInfo]) {
        for n in nodes {
            if n.id == self.own_id
                || self.seen_addrs.contains(&n.addr)
                || !self.seen_ids.insert(n.id)
            {
                continue;
            }
            self.seen_addrs.insert(n.addr);
            let d = n.id.distance(&self.target);
            let pos = self
                .candidates
                .partition_point(|c| c.info.id.distance(&self.target) < d);
            if pos >= MAX_CANDIDATES {
                continue;
            }
            self.candidates.insert(
                pos,
                Candidate {
                    info: *n,
                    state: State::Fresh,
                    token: None,
                },
            );
            self.candidates.truncate(MAX_CANDIDATES);
        }
    }

    /// Adds addresses whose id we do not know (bootstrap routers).
    pub fn add_anonymous(&mut self, addrs: &[SocketAddr]) {
        for a in addrs {
            if self.seen_addrs.insert(*a) {
                self.anonymous.push((*a, State::Fresh));
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.state == State::InFlight)
            .count()
    }

    fn anonymous_in_flight(&self) -> bool {
        self.anonymous.iter().any(|(_, s)| *s == State::InFlight)
    }

    /// Indices of the `k` closest candidates that have not failed.
    fn closest_live(&self) -> impl Iterator<Item = usize> + '_ {
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.state != State::Failed)
            .take(self.params.k)
            .map(|(i, _)| i)
    }

    /// The queries to send now. Call after every event.
    pub fn next_queries(&mut self) -> Vec<Contact> {
        let mut out = Vec::new();
        let budget = |sent: usize, params: &LookupParams| sent < params.max_queries;
        // Bootstrap addresses go out at once and do not count against alpha: they are few, and
        // nothing else can happen until one of them answers.
        for (addr, state) in &mut self.anonymous {
            if *state == State::Fresh && budget(self.queries_sent, &self.params) {
                *state = State::InFlight;
                self.queries_sent += 1;
                out.push(Contact {
                    addr: *addr,
                    id: None,
                });
            }
        }
        let room = self.params.alpha.saturating_sub(self.in_flight());
        let picks: Vec<usize> = self
            .closest_live()
            .filter(|&i| self.candidates[i].state == State::Fresh)
            .take(room)
            .collect();
        for i in picks {
            if !budget(self.queries_sent, &self.params) {
                break;
            }
            let c = &mut self.candidates[i];
            c.state = State::InFlight;
            self.queries_sent += 1;
            out.push(Contact {
                addr: c.info.addr,
                id: Some(c.info.id),
            });
        }
        out
    }

    /// A queried node answered. `id` is the id it answered with; `nodes` and `values` are
    /// what it returned. Returns the peers not seen before in this lookup.
    pub fn on_response(
        &mut self,
        addr: SocketAddr,
        id: NodeId,
        nodes: &[NodeInfo],
        values: &[SocketAddr],
        token: Option<Vec<u8>>,
    ) -> Vec<SocketAddr> {
        let answered = if let Some((_, state)) = self.anonymous.iter_mut().find(|(a, _)| *a == addr)
        {
            // Now that it has an id, a bootstrap contact competes like any other node (it
            // may well be among the closest).
            *state = State::Responded;
            Some(Candidate {
                info: NodeInfo { id, addr },
                state: State::Responded,
                token,
            })
        } else if let Some(pos) = self.candidates.iter().position(|c| c.info.addr == addr) {
            let mut c = self.candidates.remove(pos);
            c.state = State::Responded;
            c.token = token;
            // It may have been listed under a stale id; sort it by the one it answered with.
            c.info.id = id;
            Some(c)
        } else {
            None
        };
        if let Some(c) = answered.filter(|c| c.info.id != self.own_id) {
            self.seen_ids.insert(c.info.id);
            let d = c.info.id.distance(&self.target);
            let at = self
                .candidates
                .partition_point(|o| o.info.id.distance(&self.target) < d);
            if at < MAX_CANDIDATES {
                self.candidates.insert(at, c);
                self.candidates.truncate(MAX_CANDIDATES);
            }
        }
        self.add_nodes(nodes);
        let mut fresh = Vec::new();
        for v in values {
            if self.peers.len() < MAX_PEERS && self.seen_peers.insert(*v) {
                self.peers.push(*v);
                fresh.push(*v);
            }
        }
        fresh
    }

    /// A query timed out or was answered with an error.
    pub fn on_failure(&mut self, addr: SocketAddr) {
        if let Some((_, state)) = self.anonymous.iter_mut().find(|(a, _)| *a == addr) {
            *state = State::Failed;
        } else if let Some(c) = self.candidates.iter_mut().find(|c| c.info.addr == addr) {
            c.state = State::Failed;
        }
    }

    /// Done when the `k` closest live candidates have all answered, or when nothing is in
    /// flight and there is nothing (or no budget) left to ask.
    pub fn is_done(&self) -> bool {
        if self.anonymous_in_flight() {
            return false;
        }
        let mut top = self.closest_live().peekable();
        if top.peek().is_some() && top.all(|i| self.candidates[i].state == State::Responded) {
            return true;
        }
        if self.in_flight() > 0 {
            return false;
        }
        self.queries_sent >= self.params.max_queries
            || !self
                .closest_live()
                .any(|i| self.candidates[i].state == State::Fresh)
    }

    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    pub fn queries_sent(&self) -> usize {
        self.queries_sent
    }

    /// The closest nodes that answered, nearest first (at most `k`).
    pub fn closest_responded(&self) -> Vec<NodeInfo> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Responded)
            .take(self.params.k)
            .map(|c| c.info)
            .collect()
    }

    /// Where to announce: the closest nodes that answered with a token (at most `k`).
    pub fn announce_targets(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .iter()
            .filter(|c| c.state == State::Responded)
            .filter_map(|c| c.token.clone().map(|t| (c.info, t)))
            .take(self.params.k)
            .collect()
    }
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
