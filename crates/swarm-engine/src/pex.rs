//! # PEX — BEP 11 `ut_pex` bookkeeping per peer connection (pure: no I/O, no actix)
//!
//! Two halves, one of each per connection that negotiated `ut_pex`:
//! - [`PexState`], what we told this peer: each message is the difference between the peers we
//!   are connected to now and what the peer already heard from us, sent at most once per
//!   [`PEX_INTERVAL`] (BEP 11: no more often than once a minute), with at most
//!   [`MAX_ADDED_PER_MESSAGE`] added and [`MAX_DROPPED_PER_MESSAGE`] dropped. What does not fit
//!   goes out a minute later, so a large swarm reaches the peer in instalments, not one burst.
//! - [`PexInbox`], what we take from this peer: a peer is one voice among our sources, so it is
//!   rate-limited ([`MIN_INBOUND_INTERVAL`]) and capped ([`MAX_TAKEN_PER_MESSAGE`]) and its
//!   addresses are checked ([`is_valid_pex_addr`]) before they reach the address book.
//!
//! **Private torrents: off.** BEP 27 forbids PEX for them. This module does not know whether a
//! torrent is private: the Torrent actor decides, and for a private torrent it creates neither
//! half, leaves `ut_pex` out of its extension handshake and drops incoming `ut_pex` messages.
//!
//! Time is passed in; the caller's clock is the only clock.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use swarm_wire::peer::extension::{PexFlags, PexMessage};

/// Shortest time between two messages we send to one peer (BEP 11).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// BEP 11's per-message limits on what we send.
pub const MAX_ADDED_PER_MESSAGE: usize = 50;
pub const MAX_DROPPED_PER_MESSAGE: usize = 50;
/// Messages from one peer closer together than this are ignored. Below [`PEX_INTERVAL`], so a
/// sender whose timer jitters is not penalised; far above what a flood would need.
pub const MIN_INBOUND_INTERVAL: Duration = Duration::from_secs(45);
/// Most addresses taken from one message, whatever the message holds (the wire allows 200
/// per list).
pub const MAX_TAKEN_PER_MESSAGE: usize = 50;

/// An address worth dialling or advertising: a port, an IP that names one host (not
/// unspecified, multicast or the IPv4 broadcast address).
pub fn is_valid_pex_addr(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

/// What we told one peer, and when.
#[derive(Debug)]
pub struct PexState {
    /// The connection's address, and the peer's listening address once its handshake names a
    /// port: either could appear in our connected list, and neither is news to the peer.
    remote: SocketAddr,
    listen: Option<SocketAddr>,
    /// Addresses the peer has heard from us as added and not since as dropped.
    told: HashMap<SocketAddr, PexFlags>,
    last_sent: Option<Instant>,
}

impl PexState {
    pub fn new(remote: SocketAddr) -> Self {
        PexState {
            remote,
            listen: None,
            told: HashMap::new(),
            last_sent: None,
        }
    }

    /// The `p` of the peer's extension handshake: its listening address is itself too.
    pub fn set_listen_port(&mut self, port: u16) {
        self.listen = (port != 0).then(|| SocketAddr::new(self.remote.ip(), port));
    }

    fn is_self(&self, addr: &SocketAddr) -> bool {
        *addr == self.remote || Some(*addr) == self.listen
    }

    /// How many addresses the peer currently holds from us.
    pub fn told_count(&self) -> usize {
        self.told.len()
    }

    /// The next message for this peer, if one is due and there is news. `connected`: the
    /// torrent's live peers by their *listening* address (an incoming peer's ephemeral port is
    /// useless to others: leave it out until its handshake gives `p`), with the flags to
    /// advertise. Reachable peers (flag `OUTGOING`) are sent first when there are too many.
    pub fn next_message(
        &mut self,
        connected: &[(SocketAddr, PexFlags)],
        now: Instant,
    ) -> Option<PexMessage> {
        if self
            .last_sent
            .is_some_and(|last| now.saturating_duration_since(last) < PEX_INTERVAL)
        {
            return None;
        }
        let mut current = HashSet::with_capacity(connected.len());
        let mut added = Vec::new();
        for &(addr, flags) in connected {
            if !is_valid_pex_addr(&addr) || self.is_self(&addr) || !current.insert(addr) {
                continue;
            }
            if !self.told.contains_key(&addr) {
                added.push((addr, flags));
            }
        }
        // Stable: the caller's order is kept within each group.
        added.sort_by_key(|(_, flags)| !flags.is_reachable());
        added.truncate(MAX_ADDED_PER_MESSAGE);
        let mut dropped: Vec<SocketAddr> = (self.told.keys())
            .filter(|addr| !current.contains(*addr))
            .copied()
            .collect();
        // Sorted so that which ones wait for the next message does not depend on hashing.
        dropped.sort_unstable();
        dropped.truncate(MAX_DROPPED_PER_MESSAGE);
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        for addr in &dropped {
            self.told.remove(addr);
        }
        self.told.extend(added.iter().copied());
        self.last_sent = Some(now);
        Some(PexMessage { added, dropped })
    }
}

/// What we accept from one peer's `ut_pex` messages.
#[derive(Debug)]
pub struct PexInbox {
    sender: SocketAddr,
    last_accepted: Option<Instant>,
    ignored: u32,
}

impl PexInbox {
    pub fn new(sender: SocketAddr) -> Self {
        PexInbox {
            sender,
            last_accepted: None,
            ignored: 0,
        }
    }

    /// Messages dropped for coming too soon; the torrent may disconnect a peer that keeps at it.
    pub fn ignored(&self) -> u32 {
        self.ignored
    }

    /// The added peers worth handing to the address book, or `None` if the message came less
    /// than [`MIN_INBOUND_INTERVAL`] after the last one taken. Kept: valid addresses
    /// ([`is_valid_pex_addr`]), not the sender itself, once each, at most
    /// [`MAX_TAKEN_PER_MESSAGE`]. Loopback addresses only from a loopback sender: from anyone
    /// else they would point us at services on our own host. `dropped` is not used: a peer
    /// losing a connection says nothing about whether we could make one.
    pub fn accept(
        &mut self,
        msg: &PexMessage,
        now: Instant,
    ) -> Option<Vec<(SocketAddr, PexFlags)>> {
        if self
            .last_accepted
            .is_some_and(|last| now.saturating_duration_since(last) < MIN_INBOUND_INTERVAL)
        {
            self.ignored = self.ignored.saturating_add(1);
            return None;
        }
        self.last_accepted = Some(now);
        let loopback_ok = self.sender.ip().is_loopback();
        let mut seen = HashSet::new();
        let taken = (msg.added.iter())
            .filter(|(addr, _)| {
                is_valid_pex_addr(addr)
                    && *addr != self.sender
                    && (loopback_ok || !addr.ip().is_loopback())
                    && seen.insert(*addr)
            })
            .take(MAX_TAKEN_PER_MESSAGE)
            .copied()
            .collect();
        Some(taken)
    }
}

#[cfg(test)]
mod tests;
