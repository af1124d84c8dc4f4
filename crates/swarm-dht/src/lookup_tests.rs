use super::*;
use std::collections::HashMap;

/// A simulated network where every node knows its `know` closest neighbours to any target.
struct Net {
    nodes: Vec<NodeInfo>,
    dead: HashSet<SocketAddr>,
    know: usize,
}

impl Net {
    fn new(n: usize) -> Self {
        let nodes = (0..n)
            .map(|i| NodeInfo {
                id: NodeId::random(),
                addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000)),
            })
            .collect();
        Net {
            nodes,
            dead: HashSet::new(),
            know: 8,
        }
    }

    fn closest(&self, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut v = self.nodes.clone();
        v.sort_by_key(|x| x.id.distance(target));
        v.truncate(n);
        v
    }

    fn by_addr(&self, a: SocketAddr) -> NodeInfo {
        *self.nodes.iter().find(|n| n.addr == a).unwrap()
    }

    /// Runs the lookup to completion, answering queries in FIFO order.
    fn run(&self, l: &mut Lookup, values: &HashMap<SocketAddr, Vec<SocketAddr>>) -> usize {
        let mut queue = std::collections::VecDeque::new();
        let mut rounds = 0;
        loop {
            queue.extend(l.next_queries());
            if l.is_done() {
                return rounds;
            }
            let Some(c) = queue.pop_front() else {
                panic!("stalled: not done, nothing queued")
            };
            rounds += 1;
            if self.dead.contains(&c.addr) {
                l.on_failure(c.addr);
                continue;
            }
            let me = self.by_addr(c.addr);
            let nodes = self.closest(&l.target(), self.know);
            let vals = values.get(&c.addr).cloned().unwrap_or_default();
            l.on_response(c.addr, me.id, &nodes, &vals, Some(vec![1]));
        }
    }
}

#[test]
fn finds_the_true_closest_nodes() {
    let net = Net::new(500);
    let target = NodeId::random();
    let mut l = Lookup::new(target, NodeId::random(), LookupParams::default());
    // Start from a few arbitrary nodes, as a sparse routing table would.
    l.add_nodes(&net.nodes[..3]);
    net.run(&mut l, &HashMap::new());
    assert_eq!(l.closest_responded(), net.closest(&target, 8));
    assert!(l.queries_sent() < 100);
}

#[test]
fn never_more_than_alpha_in_flight() {
    let net = Net::new(100);
    let mut l = Lookup::new(NodeId::random(), NodeId::random(), LookupParams::default());
    l.add_nodes(&net.nodes);
    assert_eq!(l.next_queries().len(), 3);
    assert!(l.next_queries().is_empty());
}

#[test]
fn dead_nodes_are_skipped() {
    let mut net = Net::new(300);
    // Nodes must know past the dead ones for the live 4th..11th closest to be reachable.
    net.know = 12;
    let target = NodeId::random();
    let truth = net.closest(&target, 12);
    // The three closest never answer.
    for n in &truth[..3] {
        net.dead.insert(n.addr);
    }
    let mut l = Lookup::new(target, NodeId::random(), LookupParams::default());
    l.add_nodes(&net.nodes[..5]);
    net.run(&mut l, &HashMap::new());
    assert_eq!(l.closest_responded(), truth[3..11].to_vec());
}

#[test]
fn collects_peers_and_tokens() {
    let net = Net::new(200);
    let target = NodeId::random();
    let holder = net.closest(&target, 1)[0];
    let peer = SocketAddr::from(([1, 2, 3, 4], 6881));
    let values = HashMap::from([(holder.addr, vec![peer, peer])]);
    let mut l = Lookup::new(target, NodeId::random(), LookupParams::default());
    l.add_nodes(&net.nodes[..3]);
    net.run(&mut l, &values);
    assert_eq!(l.peers(), &[peer]);
    let targets = l.announce_targets();
    assert_eq!(targets.len(), 8);
    assert_eq!(targets[0].0, holder);
}

#[test]
fn query_budget_is_respected() {
    let net = Net::new(400);
    let params = LookupParams {
        alpha: 3,
        k: 8,
        max_queries: 5,
    };
    let mut l = Lookup::new(NodeId::random(), NodeId::random(), params);
    l.add_nodes(&net.nodes[..50]);
    net.run(&mut l, &HashMap::new());
    assert_eq!(l.queries_sent(), 5);
}

#[test]
fn bootstraps_from_anonymous_addresses() {
    let net = Net::new(200);
    let own = NodeId::random();
    let mut l = Lookup::new(own, own, LookupParams::default());
    l.add_anonymous(&[net.nodes[0].addr, net.nodes[0].addr]);
    let first = l.next_queries();
    assert_eq!(
        first,
        vec![Contact {
            addr: net.nodes[0].addr,
            id: None
        }]
    );
    l.on_response(first[0].addr, net.nodes[0].id, &net.nodes[1..4], &[], None);
    net.run(&mut l, &HashMap::new());
    assert_eq!(l.closest_responded(), net.closest(&own, 8));
}

#[test]
fn an_anonymous_contact_that_is_among_the_closest_counts() {
    let net = Net::new(50);
    let target = NodeId::random();
    let truth = net.closest(&target, 8);
    let mut l = Lookup::new(target, NodeId::random(), LookupParams::default());
    // The bootstrap contact is the closest node of all.
    l.add_anonymous(&[truth[0].addr]);
    let first = l.next_queries();
    l.on_response(
        first[0].addr,
        truth[0].id,
        &net.nodes[..5],
        &[],
        Some(vec![9]),
    );
    net.run(&mut l, &HashMap::new());
    assert_eq!(l.closest_responded(), truth);
    assert_eq!(l.announce_targets()[0], (truth[0], vec![9]));
}

#[test]
fn empty_lookup_is_done_and_own_id_is_ignored() {
    let own = NodeId::random();
    let mut l = Lookup::new(NodeId::random(), own, LookupParams::default());
    assert!(l.is_done());
    l.add_nodes(&[NodeInfo {
        id: own,
        addr: SocketAddr::from(([1, 1, 1, 1], 1)),
    }]);
    assert!(l.next_queries().is_empty());
    assert!(l.is_done());
}

#[test]
fn all_failures_terminate() {
    let mut net = Net::new(50);
    net.dead = net.nodes.iter().map(|n| n.addr).collect();
    let mut l = Lookup::new(NodeId::random(), NodeId::random(), LookupParams::default());
    l.add_nodes(&net.nodes[..20]);
    net.run(&mut l, &HashMap::new());
    assert!(l.closest_responded().is_empty());
    assert_eq!(l.queries_sent(), 20);
}
