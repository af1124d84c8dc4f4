//! Node behaviour on small loopback networks: persistence, read-only mode, add_node,
//! registration with re-announce and peer expiry, and KRPC errors on the wire.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{config, eventually, init_tracing, start};
use swarm_dht::krpc::{Body, Message, Method, Query, ERR_METHOD_UNKNOWN, ERR_PROTOCOL};
use swarm_dht::{Dht, DhtConfig, DhtHandle, NodeId, PeerStoreLimits};
use swarm_wire::InfoHash;
use tokio::net::UdpSocket;

async fn network(n: usize) -> Vec<DhtHandle> {
    let seed = start(&[]).await;
    let mut nodes = vec![seed.clone()];
    for _ in 1..n {
        nodes.push(start(&[&seed]).await);
    }
    let ready = eventually(Duration::from_secs(5), || async {
        for node in &nodes {
            if !node.stats().await.unwrap().bootstrapped {
                return false;
            }
        }
        true
    })
    .await;
    assert!(ready, "network did not bootstrap");
    nodes
}

async fn shutdown(nodes: &[DhtHandle]) {
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}

/// Sends one raw query and waits briefly for the answer.
async fn ask(to: SocketAddr, method: Method) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let msg = Message {
        tid: b"t1".to_vec(),
        body: Body::Query(Query {
            id: NodeId::random(),
            method,
        }),
        read_only: true,
    };
    sock.send_to(&msg.encode().unwrap(), to).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::decode(&buf[..n]).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    init_tracing();
    let nodes = network(8).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("dht.json");
    let cfg = DhtConfig {
        state_file: Some(state.clone()),
        ..config(vec![nodes[0].local_addr().to_string()])
    };
    let a = Dht::start(cfg.clone()).await.unwrap();
    let id = a.node_id();
    assert!(
        eventually(Duration::from_secs(5), || async {
            a.stats().await.unwrap().nodes >= 4
        })
        .await
    );
    a.shutdown().await.unwrap();
    assert!(state.exists());

    // No bootstrap list this time: the saved table is enough.
    let again = Dht::start(DhtConfig {
        bootstrap: vec![],
        ..cfg
    })
    .await
    .unwrap();
    assert_eq!(again.node_id(), id);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let s = again.stats().await.unwrap();
            s.bootstrapped && s.nodes >= 4
        })
        .await
    );
    // An explicit save elsewhere works too; without a path or state file it is an error.
    let other = dir.path().join("copy.json");
    again.save(Some(other.clone())).await.unwrap();
    assert!(
        swarm_dht::persist::load(&other)
            .unwrap()
            .unwrap()
            .nodes
            .len()
            >= 4
    );
    assert!(nodes[1].save(None).await.is_err());
    again.shutdown().await.unwrap();
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_node_looks_up_but_is_never_stored() {
    init_tracing();
    let nodes = network(8).await;
    let ro = Dht::start(DhtConfig {
        read_only: true,
        ..config(vec![nodes[0].local_addr().to_string()])
    })
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            ro.stats().await.unwrap().bootstrapped
        })
        .await
    );

    let x = InfoHash::of(b"read-only test");
    let peer = SocketAddr::from(([127, 0, 0, 1], 5555));
    nodes[2].announce(x, Some(peer.port())).await.unwrap();
    assert!(ro.get_peers(x).await.unwrap().contains(&peer));

    // It answers nothing (BEP 43) ...
    assert!(ask(ro.local_addr(), Method::Ping).await.is_none());
    // ... and no table holds it.
    for n in &nodes {
        let snap = n.routing_table_snapshot().await.unwrap();
        let holds = snap
            .buckets
            .iter()
            .flat_map(|b| &b.nodes)
            .any(|e| e.addr == ro.local_addr());
        assert!(!holds, "{} stored the read-only node", n.local_addr());
    }
    ro.shutdown().await.unwrap();
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_node_then_bootstrap() {
    init_tracing();
    let nodes = network(6).await;
    let lonely = Dht::start(config(vec![])).await.unwrap();
    assert_eq!(lonely.stats().await.unwrap().nodes, 0);
    lonely.add_node(nodes[0].local_addr()).unwrap();
    assert!(
        eventually(Duration::from_secs(3), || async {
            lonely.stats().await.unwrap().nodes >= 1
        })
        .await
    );
    lonely.bootstrap().await.unwrap();
    assert!(
        eventually(Duration::from_secs(3), || async {
            lonely.stats().await.unwrap().nodes >= 4
        })
        .await
    );
    let found = lonely.find_node(nodes[3].node_id()).await.unwrap();
    assert_eq!(found.first().map(|n| n.id), Some(nodes[3].node_id()));
    lonely.shutdown().await.unwrap();
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_torrents_are_reannounced_before_they_expire() {
    init_tracing();
    // Peers expire after 1.5 s here; registration re-announces every 0.5 s.
    let seed = Dht::start(DhtConfig {
        peer_store: PeerStoreLimits {
            ttl: Duration::from_millis(1500),
            ..Default::default()
        },
        ..config(vec![])
    })
    .await
    .unwrap();
    let mut nodes = vec![seed.clone()];
    for _ in 0..5 {
        let cfg = DhtConfig {
            peer_store: PeerStoreLimits {
                ttl: Duration::from_millis(1500),
                ..Default::default()
            },
            reannounce_interval: Duration::from_millis(500),
            ..config(vec![seed.local_addr().to_string()])
        };
        nodes.push(Dht::start(cfg).await.unwrap());
    }
    let x = InfoHash::of(b"registered");
    let peer = SocketAddr::from(([127, 0, 0, 1], 7777));
    nodes[1].register(x, Some(peer.port())).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            nodes[4].get_peers(x).await.unwrap().contains(&peer)
        })
        .await
    );
    // Well past the TTL, re-announces keep it findable.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(nodes[5].get_peers(x).await.unwrap().contains(&peer));
    assert_eq!(nodes[1].stats().await.unwrap().registered, 1);

    // Unregistered, it expires everywhere.
    nodes[1].unregister(x).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(!nodes[3].get_peers(x).await.unwrap().contains(&peer));
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_errors_and_bounds() {
    init_tracing();
    let nodes = network(12).await;
    let to = nodes[0].local_addr();
    // Unknown method: 204.
    let reply = ask(to, Method::Unknown("vote".into())).await.unwrap();
    assert!(matches!(reply.body, Body::Error(e) if e.code == ERR_METHOD_UNKNOWN));
    // Announce with a forged token: 203.
    let forged = Method::AnnouncePeer {
        info_hash: InfoHash([1; 20]),
        port: 1,
        implied_port: false,
        token: b"forged".to_vec(),
    };
    let reply = ask(to, forged).await.unwrap();
    assert!(matches!(reply.body, Body::Error(e) if e.code == ERR_PROTOCOL));
    // find_node never returns more than k nodes.
    let reply = ask(
        to,
        Method::FindNode {
            target: NodeId::random(),
            want: Default::default(),
        },
    )
    .await
    .unwrap();
    let Body::Response(r) = reply.body else {
        panic!("not a response")
    };
    assert!(!r.nodes.is_empty() && r.nodes.len() <= 8);
    // A query with bad arguments but a transaction id: 203, echoing the id.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(b"d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe", to)
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let reply = Message::decode(&buf[..n]).unwrap();
    assert_eq!(reply.tid, b"zz");
    assert!(matches!(reply.body, Body::Error(e) if e.code == ERR_PROTOCOL));
    shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_nodes_use_nodes6() {
    init_tracing();
    let v6 = |bootstrap: Vec<String>| DhtConfig {
        bind: "[::1]:0".parse().unwrap(),
        ..config(bootstrap)
    };
    let Ok(seed) = Dht::start(v6(vec![])).await else {
        eprintln!("no IPv6 loopback here; skipping");
        return;
    };
    let mut nodes = vec![seed.clone()];
    for _ in 0..7 {
        nodes.push(
            Dht::start(v6(vec![seed.local_addr().to_string()]))
                .await
                .unwrap(),
        );
    }
    let ready = eventually(Duration::from_secs(5), || async {
        for n in &nodes {
            if n.stats().await.unwrap().nodes < 3 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(ready, "IPv6 network did not form");
    let x = InfoHash::of(b"over ipv6");
    let peer: SocketAddr = "[::1]:6000".parse().unwrap();
    nodes[2].announce(x, Some(peer.port())).await.unwrap();
    assert!(nodes[6].get_peers(x).await.unwrap().contains(&peer));
    shutdown(&nodes).await;
}
