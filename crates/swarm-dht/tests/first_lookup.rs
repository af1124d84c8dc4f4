mod common;
use common::{config, eventually, init_tracing, start};
use std::net::SocketAddr;
use std::time::Duration;
use swarm_dht::Dht;
use swarm_wire::InfoHash;

/// A get_peers issued right after start (a magnet link added at start-up) must use the
/// bootstrap nodes, not finish at once with nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_get_peers_right_after_start_uses_bootstrap_nodes() {
    init_tracing();
    let router = start(&[]).await;
    let seeder = start(&[&router]).await;
    let x = InfoHash::of(b"first lookup");
    let peer = SocketAddr::from(([127, 0, 0, 1], 7001));
    seeder.register(x, Some(peer.port())).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            router.stats().await.unwrap().bootstrapped && seeder.stats().await.unwrap().bootstrapped
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..5 {
        let fresh = Dht::start(config(vec![router.local_addr().to_string()]))
            .await
            .unwrap();
        let got = fresh.get_peers(x).await.unwrap();
        assert!(
            got.contains(&peer),
            "attempt {i}: first get_peers found {got:?}"
        );
        fresh.shutdown().await.unwrap();
    }
}
