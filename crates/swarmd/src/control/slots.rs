//! Connection slots of the control socket: `max_clients` for anyone who can open the socket,
//! plus a few that only the daemon's own uid and root may take.
//!
//! Anyone in the socket's group can open connections and leave them idle. The idle timeout
//! (`connection.rs`) frees those slots again, but until then the reserve keeps the daemon's
//! owner (and root) able to look and to stop it.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots kept for the daemon's own uid and root, on top of `max_clients`.
pub const OWNER_RESERVE: usize = 4;

pub struct Slots {
    shared: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
}

impl Slots {
    pub fn new(max_clients: usize, reserve: usize) -> Slots {
        Slots {
            shared: Arc::new(Semaphore::new(max_clients)),
            reserved: Arc::new(Semaphore::new(reserve)),
        }
    }

    /// A slot for a new connection, held until the permit is dropped; `privileged` callers (the
    /// daemon's uid, root) fall back on the reserve. `None`: turn the connection away.
    pub fn admit(&self, privileged: bool) -> Option<OwnedSemaphorePermit> {
        self.shared.clone().try_acquire_owned().ok().or_else(|| {
            privileged
                .then(|| self.reserved.clone().try_acquire_owned().ok())
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_for_the_owner_only() {
        let slots = Slots::new(2, 1);
        let a = slots.admit(false).unwrap();
        let _b = slots.admit(false).unwrap();
        assert!(
            slots.admit(false).is_none(),
            "others are turned away when full"
        );
        let owner = slots.admit(true).expect("the owner gets the reserve");
        assert!(slots.admit(true).is_none(), "the reserve is bounded too");
        drop(owner);
        drop(a);
        assert!(slots.admit(false).is_some());
    }
}
