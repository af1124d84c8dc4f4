//! One source floods a node with 1 000 queries and garbage; the node throttles it and keeps
//! answering everyone else.

mod common;

use std::time::Duration;

use common::{config, init_tracing};
use swarm_dht::krpc::{Body, Message, Method, Query};
use swarm_dht::{Dht, NodeId, RateLimit};
use tokio::net::UdpSocket;

fn ping(tid: u32) -> Vec<u8> {
    Message {
        tid: tid.to_be_bytes().to_vec(),
        body: Body::Query(Query {
            id: NodeId::random(),
            method: Method::Ping,
        }),
        read_only: true,
    }
    .encode()
    .unwrap()
}

/// Counts datagrams arriving on `sock` until it is quiet for `quiet`.
async fn drain(sock: &UdpSocket, quiet: Duration) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while let Ok(Ok(_)) = tokio::time::timeout(quiet, sock.recv_from(&mut buf)).await {
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_is_throttled_and_others_are_served() {
    init_tracing();
    let limit = RateLimit {
        per_second: 10.0,
        burst: 20.0,
    };
    let victim = Dht::start(swarm_dht::DhtConfig {
        rate_limit: limit,
        ..config(vec![])
    })
    .await
    .unwrap();
    let target = victim.local_addr();

    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let started = std::time::Instant::now();
    for i in 0..1000u32 {
        let datagram = match i % 4 {
            0 => b"d1:ad2:id3:xyze1:q4:ping1:t2:aa1:y1:qe".to_vec(), // bad query
            1 => vec![0xff; (i % 300) as usize],                     // garbage
            _ => ping(i),
        };
        flooder.send_to(&datagram, target).await.unwrap();
    }

    // Meanwhile another source is answered promptly. Like any KRPC client it sends a query again
    // after a second without answer: while the flood fills the socket's receive buffer, the
    // kernel may drop a datagram before the node ever sees it.
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..5u32 {
        let mut buf = [0u8; 2048];
        let mut answer = None;
        'tries: for _attempt in 0..3 {
            other.send_to(&ping(i), target).await.unwrap();
            // A late answer to an earlier query (another transaction id) is skipped.
            while let Ok(got) =
                tokio::time::timeout(Duration::from_secs(1), other.recv_from(&mut buf)).await
            {
                let n = got.unwrap().0;
                let reply = Message::decode(&buf[..n]).unwrap();
                if reply.tid == i.to_be_bytes() {
                    answer = Some(reply);
                    break 'tries;
                }
            }
        }
        let reply = answer.expect("the node stopped answering other sources (3 tries)");
        assert_eq!(reply.tid, i.to_be_bytes());
        assert!(matches!(reply.body, Body::Response(_)));
    }

    let answered = drain(&flooder, Duration::from_millis(300)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = (limit.burst + limit.per_second * elapsed).ceil() as usize;
    eprintln!("flooder got {answered} answers in {elapsed:.2}s (budget {allowed})");
    assert!(answered >= 1, "the flooder should get its burst answered");
    assert!(answered <= allowed, "{answered} answers > budget {allowed}");

    let stats = victim.stats().await.unwrap();
    eprintln!("{stats:?}");
    // The kernel may drop part of the burst before the node reads it; of what it read,
    // everything beyond the flooder's budget (and the other source's five) was dropped.
    assert!(
        stats.queries_in >= 100,
        "the flood barely arrived: {}",
        stats.queries_in
    );
    let served = stats.queries_in - stats.throttled;
    assert!(
        served as usize <= allowed + 5,
        "served {served} of {} queries",
        stats.queries_in
    );
    assert!(stats.malformed > 0);
    // Flood pings were read-only (ro=1): none of them got into the table or were pinged back.
    assert_eq!(stats.nodes, 0);
    victim.shutdown().await.unwrap();
}
