//! The torrent actor's links to the swarm's services: it routes incoming peers to itself at the
//! listener, is tracked by the announcer, registered with the DHT and the choker; it finds peers
//! (trackers, DHT, PEX, the user) and dials them as the peer set plans. Repeated on the tick, so
//! a restarted service learns about the torrent again.

use std::time::Instant;

use actix::prelude::*;
use swarm_model::TorrentState;

use crate::services::announcer::{Track, Untrack};
use crate::services::choker::{
    ChokeDecision, CollectPeers, PeersReport, RechokeNow, RegisterTorrent, UnregisterTorrent,
};
use crate::services::listener::Route;
use crate::torrent::actor::Torrent;
use crate::torrent::messages::{IncomingPeer, PeerSource, PeersFound, ServicesRestarted};
use crate::torrent::supervisor;

impl Torrent {
    /// Route incoming peers to us and track us with the announcer. Idempotent, and repeated on
    /// the tick: a restarted Listener or Announcer learns about us again this way.
    pub(super) fn announce_self(&mut self, ctx: &mut Context<Self>) {
        let ih = self.shared.info_hash;
        let listener = self.services.listener.deliver(Route {
            info_hash: ih,
            to: Some(ctx.address().recipient()),
        });
        let announcer = self.services.announcer.deliver(Track {
            info_hash: ih,
            tiers: self.meta.tracker_tiers(),
            to: ctx.address().recipient(),
            left: self.picker.bytes_left(),
            private: self.meta.info.private,
        });
        self.registered = listener.zip(announcer);
    }

    pub(super) fn service_generations(&self) -> Option<(u64, u64)> {
        Some((
            self.services.listener.generation(),
            self.services.announcer.generation(),
        ))
    }

    /// Leave the swarm: stop announcing, drop every peer.
    pub(super) fn go_quiet(&mut self, ctx: &mut Context<Self>) {
        let ih = self.shared.info_hash;
        self.registered = None;
        self.services.listener.do_send(Route {
            info_hash: ih,
            to: None,
        });
        self.services.announcer.do_send(Untrack { info_hash: ih });
        self.services
            .choker
            .do_send(UnregisterTorrent { info_hash: ih });
        if let Some(dht) = self.dht() {
            actix::spawn(async move {
                let _ = dht.unregister(ih).await;
            });
        }
        // The peers did nothing wrong: a resume may dial them again at once.
        self.peers.release_all();
        self.disconnect_all("leaving the swarm", ctx);
    }

    /// The DHT node, unless the torrent is private (BEP 27: private torrents use their trackers
    /// only).
    pub(super) fn dht(&self) -> Option<swarm_dht::DhtHandle> {
        if self.meta.info.private {
            return None;
        }
        self.shared.dht.get()
    }

    /// Asks the DHT for peers (and registers us, so we are announced and re-announced).
    pub(super) fn dht_lookup(&mut self, ctx: &mut Context<Self>) {
        let Some(dht) = self.dht() else { return };
        self.dht_asked = true;
        let (ih, port) = (self.shared.info_hash, self.shared.listen_port);
        let fut = async move {
            let _ = dht.register(ih, Some(port)).await;
            dht.get_peers(ih).await.unwrap_or_default()
        };
        ctx.spawn(fut.into_actor(self).map(|addrs, act, ctx| {
            if !addrs.is_empty() {
                act.add_peers(addrs, PeerSource::Dht, ctx);
            }
        }));
    }

    /// Something changed that the choker should look at soon (peer joined or left, interest
    /// changed). A full mailbox means a round is coming anyway.
    pub(super) fn rechoke(&mut self) {
        if let Some(c) = self.services.choker.get() {
            let _ = c.try_send(RechokeNow);
        }
    }

    /// Joins the choker's rounds (idempotent: re-sent every 10 s, which also refills the
    /// choker's registry after it restarts).
    pub(super) fn register_with_choker(&self, ctx: &mut Context<Self>) {
        self.services.choker.do_send(RegisterTorrent {
            info_hash: self.shared.info_hash,
            seeding: self.state == TorrentState::Seeding,
            to: ctx.address().recipient(),
            collect: ctx.address().recipient(),
        });
    }

    /// Remembers new peer addresses and dials them if there is room.
    pub(super) fn add_peers(
        &mut self,
        mut addrs: Vec<std::net::SocketAddr>,
        source: crate::torrent::messages::PeerSource,
        ctx: &mut Context<Self>,
    ) {
        self.shared
            .blocklist
            .retain_allowed(&mut addrs, source.as_str());
        let fresh = self.peers.add_addresses(addrs, source, Instant::now());
        if fresh > 0 {
            tracing::debug!(torrent = %self.name(), fresh, source = source.as_str(), "new peer addresses");
            self.connect_more(ctx);
        }
    }

    /// Dials known addresses while there is room.
    pub(super) fn connect_more(&mut self, ctx: &mut Context<Self>) {
        if !self.trading() {
            return;
        }
        let plan =
            self.peers
                .dial_plan(self.cfg.peer_cap(), self.cfg.max_half_open, Instant::now());
        for sock in plan {
            // Learnt before a reload that blocked it.
            if self.shared.blocklist.refuses(sock.ip(), "dial") {
                self.peers.forget_address(sock);
                continue;
            }
            let Some(place) = self.shared.peer_budget.take() else {
                tracing::debug!(torrent = %self.name(), "global connection limit reached");
                break;
            };
            let key = self.peers.open_outgoing(sock, Some(place));
            let worked = self.peers.worked_transport(sock);
            let (shared, inbox) = (self.shared.clone(), Self::inbox(ctx));
            if let Err(e) =
                supervisor::dial(self.peer_children(), ctx, key, sock, worked, shared, inbox)
            {
                tracing::warn!(peer = %sock, "could not start peer: {e}");
                self.peers.forget(key);
            }
        }
        if !self.peers.is_empty() {
            self.wake_tick(ctx);
        }
    }
}

impl Handler<IncomingPeer> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: IncomingPeer, ctx: &mut Context<Self>) {
        let admitted = self.trading()
            && self
                .peers
                .admits_incoming(msg.addr, self.cfg.peer_cap(), Instant::now());
        if !admitted {
            return; // dropping the socket closes it
        }
        let Some(place) = self.shared.peer_budget.take() else {
            return; // the global connection limit
        };
        let key = self.peers.open_incoming(msg.addr, Some(place));
        let (shared, inbox, addr) = (self.shared.clone(), Self::inbox(ctx), msg.addr);
        if let Err(e) = supervisor::accept(
            self.peer_children(),
            ctx,
            key,
            addr,
            msg.dial,
            shared,
            inbox,
        ) {
            tracing::warn!(peer = %addr, "could not start incoming peer: {e}");
            self.peers.forget(key);
        }
        self.wake_tick(ctx);
    }
}

impl Handler<PeersFound> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: PeersFound, ctx: &mut Context<Self>) {
        self.add_peers(msg.addrs, msg.source, ctx);
    }
}

impl Handler<CollectPeers> for Torrent {
    type Result = MessageResult<CollectPeers>;

    fn handle(&mut self, _: CollectPeers, _: &mut Context<Self>) -> MessageResult<CollectPeers> {
        MessageResult(PeersReport {
            seeding: self.state == TorrentState::Seeding,
            slots: self.cfg.limits.upload_slots.map(|n| n as usize),
            peers: self.peers.snapshots(Instant::now()),
        })
    }
}

impl Handler<ChokeDecision> for Torrent {
    type Result = ();

    fn handle(&mut self, msg: ChokeDecision, _: &mut Context<Self>) {
        if !self.trading() {
            return;
        }
        let orders = msg.changes(self.peers.choking());
        self.peers.apply_choke(orders, msg.optimistic, &msg.snubbed);
    }
}

impl Handler<ServicesRestarted> for Torrent {
    type Result = ();

    fn handle(&mut self, _: ServicesRestarted, ctx: &mut Context<Self>) {
        if self.trading() && self.registered != self.service_generations() {
            self.announce_self(ctx);
        }
    }
}
