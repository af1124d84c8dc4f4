//! Global services: one actor each, serving every torrent, supervised by the root.

pub mod announcer;
pub mod choker;
pub mod dht;
pub mod listener;
pub mod rate_limiter;
pub mod udp_port;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::prelude::*;

/// A name for a global service, like a registered process name in Erlang: the root supervisor
/// points it at the service's current address, and again after a restart, so torrents never hold
/// the address of a dead service. Read on the rare paths (announce, routing), never per block.
/// Each `set` starts a new generation: a sender that registered with one incarnation can tell
/// cheaply whether it must register again.
pub struct ServiceRef<A: Actor>(Arc<Slot<A>>);

struct Slot<A: Actor> {
    addr: RwLock<Option<Addr<A>>>,
    generation: AtomicU64,
}

impl<A: Actor> Clone for ServiceRef<A> {
    fn clone(&self) -> Self {
        ServiceRef(self.0.clone())
    }
}

impl<A: Actor> Default for ServiceRef<A> {
    fn default() -> Self {
        ServiceRef(Arc::new(Slot {
            addr: RwLock::new(None),
            generation: AtomicU64::new(0),
        }))
    }
}

impl<A: Actor> ServiceRef<A> {
    pub fn set(&self, addr: Option<Addr<A>>) {
        *self.0.addr.write().unwrap_or_else(|e| e.into_inner()) = addr;
        self.0.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self) -> Option<Addr<A>> {
        self.0
            .addr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|a| a.connected())
    }

    /// Changes whenever the name is pointed at another incarnation (or at none).
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// [`Self::do_send`], returning the generation the message went to (`None`: dropped, the
    /// service is down). Read before the address, so a restart in between looks like a change.
    pub fn deliver<M>(&self, msg: M) -> Option<u64>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: actix::dev::ToEnvelope<A, M>,
    {
        let generation = self.generation();
        let addr = self.get()?;
        addr.do_send(msg);
        Some(generation)
    }

    /// Sends a message if the service is up; a message to a restarting service is dropped (the
    /// senders of these messages retry on their own timers).
    pub fn do_send<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        A: Handler<M>,
        A::Context: actix::dev::ToEnvelope<A, M>,
    {
        if let Some(a) = self.get() {
            a.do_send(msg);
        }
    }
}
