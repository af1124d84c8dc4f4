//! The routing table: k-buckets over the XOR keyspace, as BEP 5 describes them.
//!
//! Pure: no I/O, no clock of its own (every call takes `now`). The socket task tells it what
//! happened on the wire (a node answered, queried us, timed out) and carries out what it asks
//! for in return (ping these questionable nodes before one of them can be evicted).
//!
//! Layout: bucket `i` holds the nodes whose id shares exactly `i` leading bits with ours,
//! except the last bucket, which holds everything sharing at least `len - 1` bits and so
//! always covers our own id. Only that last bucket ever splits, which is BEP 5's "split only
//! the bucket our id falls in" stated as an index. At most 160 buckets exist.
//!
//! Admission: only nodes that answered one of our queries enter the table (the socket task
//! pings a stranger that queries us instead of trusting its source address). A full bucket
//! takes a newcomer only in place of a bad node; otherwise the newcomer waits in the bucket's
//! replacement cache and the questionable members are pinged, so that one that fails twice
//! becomes bad and is replaced by the freshest cached node.
//!
//! Several nodes may share an IP address (a whole test swarm lives on 127.0.0.1), so there is
//! deliberately no one-node-per-IP rule; one node per *socket address* is kept instead.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::node_id::{NodeId, NodeInfo, ID_BITS};

/// Bucket size (BEP 5).
pub const K: usize = 8;
/// A node not heard from for this long is questionable (BEP 5).
pub const QUESTIONABLE_AFTER: Duration = Duration::from_secs(15 * 60);
/// Consecutive unanswered queries that make a node bad.
pub const BAD_AFTER_FAILURES: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Good,
    Questionable,
    Bad,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub id: NodeId,
    pub addr: SocketAddr,
    /// Last time it answered one of our queries.
    pub last_response: Instant,
    /// Last time it queried us (it has answered us before, or it would not be here).
    pub last_query: Option<Instant>,
    /// Queries in a row it left unanswered.
    pub failures: u8,
}

impl Node {
    fn new(info: NodeInfo, now: Instant) -> Self {
        Node {
            id: info.id,
            addr: info.addr,
            last_response: now,
            last_query: None,
            failures: 0,
        }
    }

    pub fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id,
            addr: self.addr,
        }
    }

    pub fn status(&self, now: Instant) -> NodeStatus {
        let recent = |t: Instant| now.saturating_duration_since(t) < QUESTIONABLE_AFTER;
        if self.failures >= BAD_AFTER_FAILURES {
            NodeStatus::Bad
        } else if recent(self.last_response) || self.last_query.is_some_and(recent) {
            NodeStatus::Good
        } else {
            NodeStatus::Questionable
        }
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Node>,
    /// Newest at the back; bounded by k.
    replacements: VecDeque<Node>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            nodes: Vec::new(),
            replacements: VecDeque::new(),
            last_changed: now,
        }
    }
}

/// What [`RoutingTable::record_response`] did with a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// New in the table.
    Added,
    /// Already there; now fresh.
    Updated,
    /// Took the place of this bad node.
    ReplacedBad(NodeInfo),
    /// Bucket full of good or questionable nodes: kept in the replacement cache. Ping these
    /// questionable nodes; if they fail, the cached node moves in.
    Cached { ping: Vec<NodeInfo> },
    /// Our own id, or a known id answering from a different address (not trusted).
    Rejected,
}

pub struct RoutingTable {
    own_id: NodeId,
    k: usize,
    buckets: Vec<Bucket>,
}

impl RoutingTable {
    pub fn new(own_id: NodeId, now: Instant) -> Self {
        Self::with_k(own_id, K, now)
    }

    /// A table with a different bucket size (tests use small ones to exercise splitting).
    pub fn with_k(own_id: NodeId, k: usize, now: Instant) -> Self {
        RoutingTable {
            own_id,
            k: k.max(1),
            buckets: vec![Bucket::new(now)],
        }
    }

    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    fn bucket_index(&self, id: &NodeId) -> usize {
        self.own_id
            .common_prefix_len(id)
            .min(self.buckets.len() - 1)
    }

    /// The node answered one of our queries.
    pub fn record_response(&mut self, info: NodeInfo, now: Instant) -> InsertOutcome {
        if info.id == self.own_id {
            return InsertOutcome::Rejected;
        }
        let idx = self.bucket_index(&info.id);
        if let Some(node) = self.buckets[idx].nodes.iter_mut().find(|n| n.id == info.id) {
            if node.addr != info.addr {
                return InsertOutcome::Rejected;
            }
            node.last_response = now;
            node.failures = 0;
            self.buckets[idx].last_changed = now;
            return InsertOutcome::Updated;
        }
        // The address now answers with another id: the old identity is gone (restarted node).
        self.remove_where(|n| n.addr == info.addr && n.id != info.id);
        self.buckets[idx].replacements.retain(|n| n.id != info.id);
        self.insert_new(Node::new(info, now), now)
    }

    fn insert_new(&mut self, node: Node, now: Instant) -> InsertOutcome {
        loop {
            let idx = self.bucket_index(&node.id);
            let can_split = idx == self.buckets.len() - 1 && self.buckets.len() < ID_BITS;
            let k = self.k;
            let bucket = &mut self.buckets[idx];
            if bucket.nodes.len() < k {
                bucket.nodes.push(node);
                bucket.last_changed = now;
                return InsertOutcome::Added;
            }
            if can_split {
                self.split_last(now);
                continue;
            }
            if let Some(pos) = bucket
                .nodes
                .iter()
                .position(|n| n.status(now) == NodeStatus::Bad)
            {
                let evicted = std::mem::replace(&mut bucket.nodes[pos], node).info();
                bucket.last_changed = now;
                return InsertOutcome::ReplacedBad(evicted);
            }
            let ping = bucket
                .nodes
                .iter()
                .filter(|n| n.status(now) == NodeStatus::Questionable)
                .map(Node::info)
                .collect();
            if bucket.replacements.len() >= k {
                bucket.replacements.pop_front();
            }
            bucket.replacements.push_back(node);
            return InsertOutcome::Cached { ping };
        }
    }

    /// Splits the bucket that covers our id into "shares exactly len-1 bits" and the rest.
    fn split_last(&mut self, now: Instant) {
        let old_last = self.buckets.len() - 1;
        self.buckets.push(Bucket::new(now));
        let own = self.own_id;
        let moves = |n: &Node| own.common_prefix_len(&n.id) > old_last;
        let (nodes, replacements) = {
            let b = &mut self.buckets[old_last];
            (
                std::mem::take(&mut b.nodes),
                std::mem::take(&mut b.replacements),
            )
        };
        for n in nodes {
            let to = if moves(&n) { old_last + 1 } else { old_last };
            self.buckets[to].nodes.push(n);
        }
        for n in replacements {
            let to = if moves(&n) { old_last + 1 } else { old_last };
            self.buckets[to].replacements.push_back(n);
        }
        // Halves with room take their cached nodes right away.
        for idx in [old_last, old_last + 1] {
            let k = self.k;
            let b = &mut self.buckets[idx];
            while b.nodes.len() < k {
                match b.replacements.pop_back() {
                    Some(n) => b.nodes.push(n),
                    None => break,
                }
            }
        }
    }

    /// Whether a node with this id, once it answers, could take a slot or a cache place:
    /// pinging strangers who query us is only worth it then.
    pub fn would_admit(&self, id: &NodeId, now: Instant) -> bool {
        if *id == self.own_id {
            return false;
        }
        let idx = self.bucket_index(id);
        let b = &self.buckets[idx];
        let can_split = idx == self.buckets.len() - 1 && self.buckets.len() < ID_BITS;
        b.nodes.len() < self.k
            || can_split
            || b.replacements.len() < self.k
            || b.nodes.iter().any(|n| n.status(now) != NodeStatus::Good)
    }

    /// The node sent us a query. Returns whether it is in the table (if not, the caller may
    /// ping it to verify it before it is admitted).
    pub fn record_query(&mut self, id: &NodeId, addr: SocketAddr, now: Instant) -> bool {
        let idx = self.bucket_index(id);
        match self.buckets[idx].nodes.iter_mut().find(|n| n.id == *id) {
            Some(n) if n.addr == addr => {
                n.last_query = Some(now);
                true
            }
            _ => false,
        }
    }

    /// A query to the node went unanswered. When that makes it bad and a replacement is
    /// cached, the replacement takes its slot and is returned.
    pub fn record_failure(&mut self, id: &NodeId, now: Instant) -> Option<NodeInfo> {
        let idx = self.bucket_index(id);
        let bucket = &mut self.buckets[idx];
        bucket.replacements.retain(|n| n.id != *id);
        let pos = bucket.nodes.iter().position(|n| n.id == *id)?;
        let node = &mut bucket.nodes[pos];
        node.failures = node.failures.saturating_add(1);
        if node.status(now) != NodeStatus::Bad {
            return None;
        }
        let replacement = bucket.replacements.pop_back()?;
        let info = replacement.info();
        bucket.nodes[pos] = replacement;
        bucket.last_changed = now;
        Some(info)
    }

    pub fn remove(&mut self, id: &NodeId) -> bool {
        let idx = self.bucket_index(id);
        let bucket = &mut self.buckets[idx];
        let before = bucket.nodes.len();
        bucket.nodes.retain(|n| n.id != *id);
        before != bucket.nodes.len()
    }

    fn remove_where(&mut self, pred: impl Fn(&Node) -> bool) {
        for b in &mut self.buckets {
            b.nodes.retain(|n| !pred(n));
            b.replacements.retain(|n| !pred(n));
        }
    }

    pub fn get(&self, id: &NodeId) -> Option<&Node> {
        self.buckets[self.bucket_index(id)]
            .nodes
            .iter()
            .find(|n| n.id == *id)
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.get(id).is_some()
    }

    /// Up to `count` non-bad nodes, closest to `target` first.
    pub fn closest(&self, target: &NodeId, count: usize, now: Instant) -> Vec<NodeInfo> {
        self.closest_where(target, count, now, |_| true)
    }

    /// [`Self::closest`] among the nodes `keep` accepts (e.g. one address family).
    pub fn closest_where(
        &self,
        target: &NodeId,
        count: usize,
        now: Instant,
        keep: impl Fn(&NodeInfo) -> bool,
    ) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self
            .nodes()
            .filter(|n| n.status(now) != NodeStatus::Bad)
            .map(Node::info)
            .filter(|n| keep(n))
            .collect();
        all.sort_by_key(|n| n.id.distance(target));
        all.truncate(count);
        all
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    pub fn replacement_count(&self) -> usize {
        self.buckets.iter().map(|b| b.replacements.len()).sum()
    }

    pub fn count_status(&self, status: NodeStatus, now: Instant) -> usize {
        self.nodes().filter(|n| n.status(now) == status).count()
    }

    /// Nodes to ping so that their status is known again.
    pub fn questionable(&self, now: Instant) -> Vec<NodeInfo> {
        self.nodes()
            .filter(|n| n.status(now) == NodeStatus::Questionable)
            .map(Node::info)
            .collect()
    }

    /// For up to `max` buckets untouched for `after`, a random id inside each: a `find_node`
    /// for that id refreshes the bucket (BEP 5). Marks those buckets as refreshed.
    pub fn refresh_targets(&mut self, after: Duration, max: usize, now: Instant) -> Vec<NodeId> {
        let own = self.own_id;
        self.buckets
            .iter_mut()
            .enumerate()
            .filter(|(_, b)| now.saturating_duration_since(b.last_changed) >= after)
            .take(max)
            .map(|(i, b)| {
                b.last_changed = now;
                own.random_with_common_prefix(i)
            })
            .collect()
    }

    pub fn snapshot(&self, now: Instant) -> RoutingSnapshot {
        let secs = |t: Instant| now.saturating_duration_since(t).as_secs();
        RoutingSnapshot {
            own_id: self.own_id.to_hex(),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(index, b)| BucketSnapshot {
                    index,
                    nodes: b
                        .nodes
                        .iter()
                        .map(|n| NodeSnapshot {
                            id: n.id.to_hex(),
                            addr: n.addr,
                            status: n.status(now),
                            last_response_secs: secs(n.last_response),
                            failures: n.failures,
                        })
                        .collect(),
                    replacements: b.replacements.len(),
                    last_changed_secs: secs(b.last_changed),
                })
                .collect(),
        }
    }

    /// Checks the structural invariants; used by tests, cheap enough for debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen_ids = std::collections::HashSet::new();
        let mut seen_addrs = std::collections::HashSet::new();
        if self.buckets.is_empty() || self.buckets.len() > ID_BITS {
            return Err(format!("{} buckets", self.buckets.len()));
        }
        for (i, b) in self.buckets.iter().enumerate() {
            if b.nodes.len() > self.k || b.replacements.len() > self.k {
                return Err(format!("bucket {i} over k"));
            }
            for n in b.nodes.iter().chain(b.replacements.iter()) {
                if n.id == self.own_id {
                    return Err("own id stored".into());
                }
                if self.bucket_index(&n.id) != i {
                    return Err(format!("{:?} in bucket {i}", n.id));
                }
            }
            for n in &b.nodes {
                if !seen_ids.insert(n.id) || !seen_addrs.insert(n.addr) {
                    return Err(format!("duplicate {:?} / {}", n.id, n.addr));
                }
            }
            if b.replacements
                .iter()
                .any(|r| b.nodes.iter().any(|n| n.id == r.id))
            {
                return Err(format!("bucket {i}: a node is also cached"));
            }
        }
        Ok(())
    }
}

/// A copy of the table for display and debugging (ids in hex).
#[derive(Clone, Debug, Serialize)]
pub struct RoutingSnapshot {
    pub own_id: String,
    pub buckets: Vec<BucketSnapshot>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BucketSnapshot {
    /// Leading bits its nodes share with our id (the last bucket: at least this many).
    pub index: usize,
    pub nodes: Vec<NodeSnapshot>,
    pub replacements: usize,
    pub last_changed_secs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeSnapshot {
    pub id: String,
    pub addr: SocketAddr,
    pub status: NodeStatus,
    pub last_response_secs: u64,
    pub failures: u8,
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
