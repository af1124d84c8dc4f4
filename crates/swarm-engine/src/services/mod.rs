//! Global services: one actor each, serving every torrent, supervised by the root.

pub mod announcer;
pub mod choker;
pub mod dht;
pub mod listener;
pub mod rate_limiter;

use std::sync::{Arc, RwLock};

use actix::prelude::*;

/// A name for a global service, like a registered process name in Erlang: the root supervisor
/// points it at the service's current address, and again after a restart, so torrents never hold
/// the address of a dead service. Read on the rare paths (announce, routing), never per block.
pub struct ServiceRef<A: Actor>(Arc<RwLock<Option<Addr<A>>>>);

impl<A: Actor> Clone for ServiceRef<A> {
    fn clone(&self) -> Self {
        ServiceRef(self.0.clone())
    }
}

impl<A: Actor> Default for ServiceRef<A> {
    fn default() -> Self {
        ServiceRef(Arc::new(RwLock::new(None)))
    }
}

impl<A: Actor> ServiceRef<A> {
    pub fn set(&self, addr: Option<Addr<A>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = addr;
    }

    pub fn get(&self) -> Option<Addr<A>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|a| a.connected())
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
