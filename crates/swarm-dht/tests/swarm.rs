//! A 30-node DHT on loopback, in one process: bootstrap from one seed, announce, find.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{eventually, init_tracing, start};
use swarm_dht::routing::RoutingTable;
use swarm_dht::{DhtHandle, NodeInfo};
use swarm_wire::InfoHash;

const NODES: usize = 30;

async fn all_bootstrapped(nodes: &[DhtHandle]) -> bool {
    for n in nodes {
        if !n.stats().await.unwrap().bootstrapped {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_nodes_bootstrap_announce_and_find() {
    init_tracing();
    let started = Instant::now();
    let seed = start(&[]).await;
    let mut nodes = vec![seed.clone()];
    for _ in 1..NODES {
        nodes.push(start(&[&seed]).await);
    }
    assert!(
        eventually(Duration::from_secs(10), || all_bootstrapped(&nodes)).await,
        "not every node bootstrapped"
    );
    // What each table would hold with perfect knowledge of the network: the same k-bucket
    // rules fed every other node.
    let mut members = Vec::new();
    for n in &nodes {
        members.push(NodeInfo {
            id: n.node_id(),
            addr: n.local_addr(),
        });
    }
    let ideal: Vec<RoutingTable> = members
        .iter()
        .map(|me| {
            let now = std::time::Instant::now();
            let mut t = RoutingTable::new(me.id, now);
            for other in &members {
                t.record_response(*other, now);
            }
            t
        })
        .collect();

    // Nodes that joined together got near-empty answers at first; thin tables bootstrap
    // again on the next maintenance round (500 ms here), and every lookup that reaches a
    // node teaches it about the querier. Wait until each table is close to its ideal.
    let close_enough = |i: usize, have: usize| have * 10 >= ideal[i].len() * 7;
    let filled = eventually(Duration::from_secs(3), || async {
        for (i, n) in nodes.iter().enumerate() {
            if !close_enough(i, n.stats().await.unwrap().nodes) {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("tables filled: {filled} after {:?}", started.elapsed());

    let mut report = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        // Tables still learn from lookups: take the stats and the snapshot of one moment (the
        // node count unchanged around the snapshot), a few tries at most.
        let (mut stats, mut snap, mut after) = (None, None, None);
        for _ in 0..20 {
            let before = n.stats().await.unwrap();
            let sn = n.routing_table_snapshot().await.unwrap();
            let af = n.stats().await.unwrap();
            let steady = before.nodes == af.nodes;
            (stats, snap, after) = (Some(before), Some(sn), Some(af));
            if steady {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (stats, snap) = (stats.unwrap(), snap.unwrap());
        let in_buckets: usize = snap.buckets.iter().map(|b| b.nodes.len()).sum();
        assert_eq!(
            in_buckets,
            stats.nodes,
            "the snapshot and the stats disagree (after: {})",
            after.unwrap().nodes
        );
        assert!(snap.buckets.iter().all(|b| b.nodes.len() <= 8));
        // Splitting follows the network: never more buckets than perfect knowledge makes.
        assert!(
            stats.buckets <= ideal[i].bucket_count(),
            "{} buckets",
            stats.buckets
        );
        report.push((stats.nodes, ideal[i].len()));
    }
    eprintln!("(table size, ideal) per node: {report:?}");
    for (i, n) in nodes.iter().enumerate() {
        let stats = n.stats().await.unwrap();
        assert!(
            stats.nodes >= 8,
            "node {i} knows only {} others: {report:?}",
            stats.nodes
        );
        assert!(
            close_enough(i, stats.nodes),
            "node {i}: (have, ideal) {report:?}"
        );
    }

    // Node A announces X with port P.
    let x = InfoHash::of(b"swarm-dht loopback test torrent");
    let p = 42_424;
    let outcome = nodes[3].announce(x, Some(p)).await.unwrap();
    assert!(
        outcome.announced_to >= 4,
        "announced to {}",
        outcome.announced_to
    );
    let want = SocketAddr::from(([127, 0, 0, 1], p));

    // Several other nodes find it (a retry tolerates a lost datagram).
    for n in &nodes[10..16] {
        let mut found = false;
        for _ in 0..3 {
            if n.get_peers(x).await.unwrap().contains(&want) {
                found = true;
                break;
            }
        }
        assert!(
            found,
            "node {} did not find the announced peer",
            n.local_addr()
        );
    }

    // The streaming variant sees it too.
    let mut stream = nodes[20].get_peers_stream(x).await.unwrap();
    let mut streamed = Vec::new();
    while let Some(peer) = stream.recv().await {
        streamed.push(peer);
    }
    assert!(streamed.contains(&want));

    // implied_port: the announcer's UDP port is stored.
    let y = InfoHash::of(b"implied port");
    nodes[7].announce(y, None).await.unwrap();
    let implied = nodes[7].local_addr();
    assert!(nodes[25].get_peers(y).await.unwrap().contains(&implied));

    let stats = nodes[3].stats().await.unwrap();
    assert!(stats.queries_out > 0 && stats.responses_in > 0 && stats.queries_in > 0);
    for n in &nodes {
        n.shutdown().await.unwrap();
    }
    eprintln!("swarm test took {:?}", started.elapsed());
}
