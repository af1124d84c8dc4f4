//! # DhtService — global service
//!
//! Owns: the mainline DHT node (`swarm-dht`, running as tokio tasks; on the peer port it shares
//! the UDP port's socket and reads the KRPC datagrams the port's read loop hands it, otherwise
//! it binds a socket of its own) and the
//! slot through which torrents reach it. Torrents call the node's handle directly for
//! `register` / `get_peers` / `add_node` (those are already asynchronous requests to the node
//! task); this actor exists so that the node has a place in the supervision tree.
//!
//! Takes: `Terminate`. Checks the node every 30 s: if its task died, this actor fails and the
//! root restarts it (the saved routing table makes the restart cheap).
//! Supervised by: the root (permanent). A crash costs in-flight lookups; torrents retry on their
//! own timers, and registered torrents register again when they next go live or look up.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use swarm_dht::{Dht, DhtConfig, DhtHandle};
use swarm_supervisor::{ChildLink, ExitReason, Terminate};

use crate::services::udp_port::UdpSlot;

/// Where torrents find the DHT node (empty while it starts or restarts, or when disabled).
#[derive(Clone, Default)]
pub struct DhtSlot(Arc<RwLock<Option<DhtHandle>>>);

impl DhtSlot {
    pub fn get(&self) -> Option<DhtHandle> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, h: Option<DhtHandle>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = h;
    }

    /// The UDP port of the node, for the handshake bit and the PORT message.
    pub fn port(&self) -> Option<u16> {
        self.get().map(|h| h.local_addr().port())
    }
}

pub struct DhtService {
    config: DhtConfig,
    slot: DhtSlot,
    /// The UDP port whose socket the node shares (it is bound to the peer port), if it does.
    port: Option<UdpSlot>,
    link: ChildLink,
}

impl DhtService {
    pub fn new(config: DhtConfig, slot: DhtSlot, port: Option<UdpSlot>, link: ChildLink) -> Self {
        DhtService {
            config,
            slot,
            port,
            link,
        }
    }
}

impl Actor for DhtService {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let config = self.config.clone();
        let shared = match &self.port {
            Some(port) => match port.share_with_dht() {
                Some(shared) => Some(shared),
                None => {
                    self.link
                        .fail("the UDP port is not up; the DHT node shares its socket");
                    return ctx.stop();
                }
            },
            None => None,
        };
        ctx.wait(
            async move {
                match shared {
                    Some(shared) => Dht::start_shared(config, shared),
                    None => Dht::start(config).await,
                }
            }
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(h) => {
                    tracing::info!(addr = %h.local_addr(), "DHT node started");
                    act.slot.set(Some(h));
                    crate::fault::maybe_panic("dht.started");
                }
                Err(e) => {
                    act.link
                        .fail(format!("DHT node on {}: {e}", act.config.bind));
                    ctx.stop();
                }
            }),
        );
        ctx.run_interval(Duration::from_secs(30), |act, ctx| {
            crate::fault::maybe_panic("dht.check");
            let Some(h) = act.slot.get() else { return };
            ctx.spawn(async move { h.stats().await.is_ok() }.into_actor(act).map(
                |alive, act, ctx| {
                    if !alive {
                        act.link.fail("DHT node task stopped");
                        ctx.stop();
                    }
                },
            ));
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(h) = self.slot.get() {
            self.slot.set(None);
            // Saves the routing table; runs on the node's own task.
            actix::spawn(async move {
                let _ = h.shutdown().await;
            });
        }
    }
}

impl Handler<Terminate> for DhtService {
    type Result = ();

    fn handle(&mut self, _: Terminate, ctx: &mut Context<Self>) {
        self.link.set_reason(ExitReason::Shutdown);
        ctx.stop();
    }
}
