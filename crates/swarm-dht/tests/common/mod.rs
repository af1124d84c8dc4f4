//! Helpers for the loopback DHT tests: nodes on 127.0.0.1:0 with short timers, never the
//! public bootstrap routers.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use swarm_dht::{Dht, DhtConfig, DhtHandle};

pub fn init_tracing() {
    use tracing_subscriber::prelude::*;
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse().ok())
        .unwrap_or_default();
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .with(filter)
        .try_init();
}

pub fn config(bootstrap: Vec<String>) -> DhtConfig {
    DhtConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        bootstrap,
        query_timeout: Duration::from_millis(500),
        lookup_timeout: Duration::from_secs(5),
        maintenance_interval: Duration::from_millis(500),
        ..DhtConfig::default()
    }
}

pub async fn start(bootstrap: &[&DhtHandle]) -> DhtHandle {
    let list = bootstrap
        .iter()
        .map(|h| h.local_addr().to_string())
        .collect();
    Dht::start(config(list)).await.expect("bind 127.0.0.1:0")
}

/// Polls `check` until it holds or `within` has passed; returns whether it held.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
