//! # The peer set of a torrent — pure core
//!
//! Owns: the slots (one per connection, [`PeerSlot`]: connecting or live), the address book
//! (dialling candidates, backoff, bans by endpoint and by peer id), the keys of banned peers, and
//! the next [`PeerKey`]. Decides: whom to dial, which of two connections to one peer survives,
//! whom to refuse (bans), our interest in each peer, a free upload slot for a newly interested
//! peer, what each peer's request pipeline gets from the picker, and which requests time out.
//!
//! Takes: the torrent actor's calls, with time as an argument. Sends: [`ToPeer`] orders through
//! each live peer's handle ([`PeerHandle`]: the peer actor's `Recipient<ToPeer>` in the daemon, a
//! recorder in the tests). It never starts or stops actors: the torrent dials the addresses
//! [`PeerSet::dial_plan`] names and reports exits back. The request pipelines (filled from the
//! picker, blocks in, endgame cancels, timeouts) are in `peer_set/requests.rs`. Unit tests:
//! `peer_set/tests.rs`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use swarm_wire::peer::extension::{ExtendedHandshake, PexFlags, PexMessage, UT_PEX};
use swarm_wire::peer::BlockRef;

use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::torrent::messages::{PeerKey, PeerSource, ToPeer};
use crate::torrent::peer::transport::TransportKind;
use crate::torrent::shared::PeerToken;

mod book;
mod requests;
mod slot;
#[cfg(test)]
pub(crate) mod tests;

pub use book::AddressBook;
pub use slot::{Conn, Live, PeerSlot};

/// Where a live peer takes its orders.
pub trait PeerHandle {
    fn send(&self, order: ToPeer);
}

impl PeerHandle for actix::Recipient<ToPeer> {
    fn send(&self, order: ToPeer) {
        self.do_send(order);
    }
}

/// Hash failures (as the only sender of a piece) before an endpoint is banned.
const STRIKES_TO_BAN: u32 = 2;
const BAN_FOR: Duration = Duration::from_secs(3600);
/// A peer that owes us blocks and sends nothing for this long loses its requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What a hash failure did to its only sender.
#[derive(Debug, PartialEq, Eq)]
pub enum Strike {
    /// Not connected any more: nobody to blame.
    Nobody,
    /// Counted; the peer stays.
    Counted(u32),
    /// Banned (endpoint and peer id) and told to leave.
    Banned(u32),
}

pub struct PeerSet<H> {
    slots: HashMap<PeerKey, PeerSlot<H>>,
    /// Peer addresses, bans: made with the first address (most idle torrents never get one).
    book: Option<Box<AddressBook>>,
    /// Peers banned while connected: their last events are ignored until they are gone.
    banned_keys: HashSet<PeerKey>,
    next_key: PeerKey,
    our_id: [u8; 20],
    listen_port: u16,
    /// The torrent's piece count (the size of a peer's bitfield).
    pieces: u32,
}

impl<H: PeerHandle> PeerSet<H> {
    pub fn new(our_id: [u8; 20], listen_port: u16, pieces: u32) -> Self {
        PeerSet {
            slots: HashMap::new(),
            book: None,
            banned_keys: HashSet::new(),
            next_key: 1,
            our_id,
            listen_port,
            pieces,
        }
    }

    /// The address book (made on first use).
    fn book(&mut self) -> &mut AddressBook {
        self.book.get_or_insert_with(Box::default)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn live_count(&self) -> usize {
        self.slots.values().filter(|p| p.is_live()).count()
    }

    pub fn get(&self, key: PeerKey) -> Option<&PeerSlot<H>> {
        self.slots.get(&key)
    }

    pub fn keys(&self) -> Vec<PeerKey> {
        self.slots.keys().copied().collect()
    }

    /// The live peers.
    pub fn live(&self) -> impl Iterator<Item = (PeerKey, &PeerSlot<H>, &Live<H>)> {
        self.slots
            .iter()
            .filter_map(|(k, p)| p.live().map(|l| (*k, p, l)))
    }

    /// Events of a peer banned while connected are dropped.
    pub fn is_banned_key(&self, key: PeerKey) -> bool {
        self.banned_keys.contains(&key)
    }

    pub fn is_banned(&self, addr: SocketAddr, now: Instant) -> bool {
        self.book.as_ref().is_some_and(|b| b.is_banned(addr, now))
    }

    // ---- addresses and dialling ---------------------------------------------------------------

    /// Remembers new addresses; returns how many were new.
    pub fn add_addresses(
        &mut self,
        addrs: Vec<SocketAddr>,
        source: PeerSource,
        now: Instant,
    ) -> usize {
        let mut fresh = 0;
        for a in addrs {
            // Trackers list us too; a self-connection would only be caught after the handshake.
            let ourselves =
                a.port() == self.listen_port && (a.ip().is_loopback() || a.ip().is_unspecified());
            if !ourselves && self.book().add(a, source, now) {
                fresh += 1;
            }
        }
        fresh
    }

    /// Drops an address from the book (it is blocked now); a fresh report may bring it back.
    pub fn forget_address(&mut self, addr: SocketAddr) {
        if let Some(book) = self.book.as_mut() {
            book.known.remove(&addr);
        }
    }

    /// Addresses to dial now: as many as there is room for under `max_peers` and `max_half_open`.
    pub fn dial_plan(
        &self,
        max_peers: usize,
        max_half_open: usize,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let connecting = self.slots.values().filter(|p| !p.is_live()).count();
        let room = max_peers.saturating_sub(self.slots.len());
        let half_open = max_half_open.saturating_sub(connecting);
        self.book
            .as_ref()
            .map_or_else(Vec::new, |b| b.candidates(room.min(half_open), now))
    }

    /// A slot for a dial to `sock` (from [`PeerSet::dial_plan`]).
    pub fn open_outgoing(&mut self, sock: SocketAddr, place: Option<PeerToken>) -> PeerKey {
        let book = self.book();
        let source = match book.known.get_mut(&sock) {
            Some(k) => {
                k.connected = true;
                k.source
            }
            None => PeerSource::Tracker,
        };
        self.open(PeerSlot::new(sock, true, source, place))
    }

    /// Whether a connection from `addr` is taken: not banned, and room under `max_peers`.
    pub fn admits_incoming(&self, addr: SocketAddr, max_peers: usize, now: Instant) -> bool {
        self.slots.len() < max_peers && !self.is_banned(addr, now)
    }

    pub fn open_incoming(&mut self, addr: SocketAddr, place: Option<PeerToken>) -> PeerKey {
        self.open(PeerSlot::new(addr, false, PeerSource::Incoming, place))
    }

    fn open(&mut self, slot: PeerSlot<H>) -> PeerKey {
        let key = self.next_key;
        self.next_key += 1;
        self.slots.insert(key, slot);
        key
    }

    /// The peer actor for `key` could not be started.
    pub fn forget(&mut self, key: PeerKey) {
        self.slots.remove(&key);
    }

    // ---- connection and exit --------------------------------------------------------------------

    /// The handshakes of `key` are done. Refuses a banned peer id (a banned peer dialling in from
    /// a new port) and the losing side of a duplicate connection; true when the peer is live.
    pub fn connected(
        &mut self,
        key: PeerKey,
        handle: H,
        peer_id: [u8; 20],
        fast: bool,
        extensions: Option<ExtendedHandshake>,
        now: Instant,
    ) -> bool {
        let Some(new_outgoing) = self.slots.get(&key).map(|p| p.outgoing) else {
            return false;
        };
        if self
            .book
            .as_ref()
            .is_some_and(|b| b.banned_ids.contains(&peer_id))
        {
            handle.send(ToPeer::Disconnect("banned".into()));
            return false;
        }
        // Both sides dialled (e.g. after PEX named the other's listen address). Both swarmd ends
        // must keep the same one, or both would close: the connection dialled by the peer with
        // the greater id survives. Other clients resolve duplicates by their own rule, so with
        // them we leave it to them.
        if peer_id.starts_with(b"-SW") {
            let other = self
                .live()
                .find(|(k, _, l)| *k != key && l.peer_id == peer_id)
                .map(|(_, _, l)| l);
            if let Some(old) = other {
                let we_win = self.our_id > peer_id;
                if new_outgoing == we_win {
                    old.handle
                        .send(ToPeer::Disconnect("duplicate connection".into()));
                } else {
                    handle.send(ToPeer::Disconnect("duplicate connection".into()));
                    return false;
                }
            }
        }
        let Some(slot) = self.slots.get_mut(&key) else {
            return false;
        };
        let mut live = Live::new(handle, peer_id, fast, self.pieces, now);
        if let Some(q) = extensions.and_then(|e| e.reqq) {
            live.reqq = q as usize;
        }
        slot.conn = Conn::Live(Box::new(live));
        let sock = slot.sock;
        if let Some(k) = self.book().known.get_mut(&sock) {
            k.failures = 0;
        }
        true
    }

    /// The connection of `key` is RC4-encrypted (or not).
    pub fn set_encrypted(&mut self, key: PeerKey, encrypted: bool) {
        if let Some(l) = self.slots.get_mut(&key).and_then(|p| p.live_mut()) {
            l.encrypted = encrypted;
        }
    }

    /// The live connection `key` runs over `transport`: shown in `peers`, and remembered for the
    /// next dial of its address (when it is one we dial).
    pub fn note_transport(&mut self, key: PeerKey, transport: TransportKind) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let sock = slot.sock;
        if let Some(live) = slot.live_mut() {
            live.transport = transport;
        }
        if let Some(k) = self.book().known.get_mut(&sock) {
            k.worked = Some(transport);
        }
    }

    /// The transport that last worked with `sock`, if any.
    pub fn worked_transport(&self, sock: SocketAddr) -> Option<TransportKind> {
        self.book.as_ref()?.known.get(&sock)?.worked
    }

    /// The peer actor of `key` exited; `restart`: it is re-dialled into the same slot, otherwise
    /// the slot goes and the address book learns whether it `failed`.
    pub fn exited(
        &mut self,
        key: PeerKey,
        picker: &mut Picker,
        restart: bool,
        failed: bool,
        now: Instant,
    ) {
        self.release_requests(key, picker);
        if let Some(p) = self.slots.get_mut(&key) {
            if let Conn::Live(l) = &p.conn {
                picker.remove_peer_bitfield(&l.bitfield);
            }
            p.conn = Conn::Connecting;
        }
        picker.on_peer_gone(key);
        if restart {
            return;
        }
        if let Some(p) = self.slots.remove(&key) {
            if p.outgoing && p.released {
                self.book().released(p.sock, now);
            } else if p.outgoing {
                self.book().disconnected(p.sock, failed, now);
            }
        }
        self.banned_keys.remove(&key);
    }

    /// We close every connection for reasons of our own (pause, error): the peers did nothing
    /// wrong, and may be dialled again at once.
    pub fn release_all(&mut self) {
        for p in self.slots.values_mut() {
            p.released = true;
        }
    }

    /// A seed wants data again: see [`AddressBook::wanted_again`].
    pub fn wanted_again(&mut self, now: Instant) {
        if let Some(b) = self.book.as_mut() {
            b.wanted_again(now);
        }
    }

    pub fn disconnect(&self, key: PeerKey, reason: &str) {
        if let Some(l) = self.slots.get(&key).and_then(|p| p.live()) {
            l.handle.send(ToPeer::Disconnect(reason.to_string()));
        }
    }

    /// Sends `order` to every live peer.
    pub fn broadcast(&self, order: &ToPeer) {
        for (_, _, l) in self.live() {
            l.handle.send(order.clone());
        }
    }

    // ---- what a live peer tells us --------------------------------------------------------------

    pub fn live_mut(&mut self, key: PeerKey) -> Option<&mut Live<H>> {
        self.slots.get_mut(&key).and_then(|p| p.live_mut())
    }

    pub fn on_extensions(&mut self, key: PeerKey, ext: ExtendedHandshake, private: bool) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let sock = slot.sock;
        let Some(l) = slot.live_mut() else { return };
        if let (Some(id), false) = (ext.id_of(UT_PEX), private) {
            let mut state = crate::pex::PexState::new(sock);
            if let Some(p) = ext.p {
                state.set_listen_port(p);
            }
            l.pex_out = Some((id, state));
        }
        if let Some(p) = ext.p {
            l.listen_port = Some(p);
        }
        if let Some(q) = ext.reqq {
            l.reqq = (q as usize).max(1);
        }
        if let Some(v) = ext.v {
            l.client = v;
        }
    }

    /// The peer's whole bitfield; true when the peer is a seed.
    pub fn on_bitfield(&mut self, key: PeerKey, bf: Bitfield, picker: &mut Picker) -> bool {
        let Some(l) = self.live_mut(key) else {
            return false;
        };
        picker.remove_peer_bitfield(&l.bitfield);
        picker.add_peer_bitfield(&bf);
        l.bitfield = bf;
        l.bitfield.is_complete()
    }

    /// A piece the peer has now; true when it may make the peer interesting.
    pub fn on_have(&mut self, key: PeerKey, i: u32, picker: &mut Picker) -> bool {
        let Some(l) = self.live_mut(key) else {
            return false;
        };
        if !l.bitfield.set(i) {
            return false;
        }
        picker.add_have(i);
        !l.am_interested && picker.wants(i)
    }

    pub fn on_choked(&mut self, key: PeerKey, picker: &mut Picker) {
        let Some(l) = self.live_mut(key) else { return };
        l.peer_choking = true;
        l.unchoked_us_at = None;
        if !l.fast {
            // Without the fast extension a choke discards every pending request.
            self.release_requests(key, picker);
        }
    }

    pub fn on_unchoked(&mut self, key: PeerKey, now: Instant) {
        if let Some(l) = self.live_mut(key) {
            l.peer_choking = false;
            l.unchoked_us_at = Some(now);
        }
    }

    /// The peer's interest changed. A free upload slot (fewer than `unchoke_slots` unchoked) is
    /// given at once rather than at the choker's next round (a second away at best); the round
    /// that follows ranks everyone as usual. `trading`: the torrent downloads or seeds.
    pub fn on_interested(&mut self, key: PeerKey, on: bool, trading: bool, unchoke_slots: usize) {
        let unchoked = self.live().filter(|(_, _, l)| !l.am_choking).count();
        let Some(l) = self.live_mut(key) else { return };
        l.peer_interested = on;
        if on && trading && l.am_choking && unchoked < unchoke_slots {
            l.am_choking = false;
            l.unchoked_since_snapshot = true;
            l.handle.send(ToPeer::Choke(false));
        }
    }

    pub fn on_rejected(&mut self, key: PeerKey, r: &BlockRef, picker: &mut Picker) {
        if let Some(l) = self.live_mut(key) {
            if l.take_request(r) {
                picker.on_request_dropped(r);
            }
        }
    }

    pub fn on_uploaded(&mut self, key: PeerKey, n: u64) {
        if let Some(p) = self.slots.get_mut(&key) {
            p.uploaded += n;
            p.up.add(n);
        }
    }

    /// A `ut_pex` message: the addresses it adds that are worth remembering, if any.
    pub fn on_pex(
        &mut self,
        key: PeerKey,
        msg: &PexMessage,
        now: Instant,
    ) -> Option<Vec<SocketAddr>> {
        let slot = self.slots.get_mut(&key)?;
        let sock = slot.sock;
        let l = slot.live_mut()?;
        let inbox = l
            .pex_in
            .get_or_insert_with(|| crate::pex::PexInbox::new(sock));
        let addrs = inbox.accept(msg, now)?;
        Some(addrs.into_iter().map(|(a, _)| a).collect())
    }

    /// BEP 6: true when the allowance lets us request more from a peer that chokes us.
    pub fn on_allowed_fast(&mut self, key: PeerKey, i: u32) -> bool {
        let pieces = self.pieces;
        self.live_mut(key)
            .is_some_and(|l| l.allowed_fast.on_allowed_fast(i, pieces) && l.peer_choking)
    }

    // ---- interest and requests ------------------------------------------------------------------

    /// Our interest in `key` (`downloading`: the torrent wants pieces), told to the peer when it
    /// changes; returns it.
    pub fn update_interest(
        &mut self,
        key: PeerKey,
        picker: &Picker,
        downloading: bool,
        now: Instant,
    ) -> bool {
        let Some(l) = self.live_mut(key) else {
            return false;
        };
        let interesting = downloading && picker.is_interesting(&l.bitfield);
        if interesting != l.am_interested {
            l.am_interested = interesting;
            l.interested_at = interesting.then_some(now);
            l.handle.send(ToPeer::Interested(interesting));
        }
        interesting
    }

    /// A piece whose only sender was `culprit` failed its hash: a strike, and a ban (endpoint and
    /// peer id) at [`STRIKES_TO_BAN`].
    pub fn strike(&mut self, culprit: SocketAddr, now: Instant) -> Strike {
        let Some((key, slot)) = self.slots.iter_mut().find(|(_, p)| p.sock == culprit) else {
            return Strike::Nobody;
        };
        slot.hash_failures += 1;
        let n = slot.hash_failures;
        if n < STRIKES_TO_BAN {
            return Strike::Counted(n);
        }
        let key = *key;
        let peer_id = slot.live().map(|l| {
            l.handle
                .send(ToPeer::Disconnect("sent corrupt data".into()));
            l.peer_id
        });
        self.book().ban(culprit, peer_id, BAN_FOR, now);
        self.banned_keys.insert(key);
        Strike::Banned(n)
    }

    // ---- rounds -----------------------------------------------------------------------------------

    /// Once a tick: per-peer rates and pipeline depths.
    pub fn tick(&mut self) {
        for p in self.slots.values_mut() {
            p.down.tick();
            p.up.tick();
            let rate = p.down.per_second();
            if let Some(l) = p.live_mut() {
                l.adapt_depth(rate);
            }
        }
    }

    /// The download is complete: no more interest, and two seeds have nothing to say to each other.
    pub fn on_complete(&mut self) {
        for p in self.slots.values_mut() {
            let Some(l) = p.live_mut() else { continue };
            if l.am_interested {
                l.am_interested = false;
                l.handle.send(ToPeer::Interested(false));
            }
            if l.bitfield.is_complete() {
                l.handle.send(ToPeer::Disconnect("both seeding".into()));
            }
        }
    }

    /// What the choker needs to know of every live peer.
    pub fn snapshots(&mut self, now: Instant) -> Vec<crate::choke::PeerSnapshot> {
        self.slots
            .iter_mut()
            .filter_map(|(k, p)| p.snapshot(*k, now))
            .collect()
    }

    /// `(key, am_choking)` of every live peer.
    pub fn choking(&self) -> Vec<(PeerKey, bool)> {
        self.live().map(|(k, _, l)| (k, l.am_choking)).collect()
    }

    /// Carries out a choke round: the orders, then who holds the optimistic unchoke and who is
    /// snubbed (sorted), as the choker sees it. A peer given a free slot since the round's
    /// snapshot keeps it: the round did not know it (the next one does).
    pub fn apply_choke(
        &mut self,
        orders: Vec<(PeerKey, bool)>,
        optimistic: Option<PeerKey>,
        snubbed: &[PeerKey],
    ) {
        for (k, choke) in orders {
            if let Some(l) = self.live_mut(k) {
                if choke && l.unchoked_since_snapshot {
                    continue;
                }
                l.am_choking = choke;
                l.handle.send(ToPeer::Choke(choke));
            }
        }
        for (k, p) in self.slots.iter_mut() {
            p.optimistic = optimistic == Some(*k);
            p.snubbed_by_choker = snubbed.binary_search(k).is_ok();
        }
    }

    /// BEP 11: tells each peer that speaks ut_pex who we are connected to (at most once a minute
    /// per peer, which `PexState` enforces).
    pub fn pex_round(&mut self, now: Instant) {
        let connected: Vec<(SocketAddr, PexFlags)> = self
            .live()
            .filter_map(|(_, p, l)| {
                // Incoming peers are only worth telling about once we know their listen port.
                let addr = if p.outgoing {
                    p.sock
                } else {
                    SocketAddr::new(p.sock.ip(), l.listen_port?)
                };
                let mut flags = PexFlags::default();
                if p.outgoing {
                    flags.0 |= PexFlags::OUTGOING;
                }
                if l.bitfield.is_complete() {
                    flags.0 |= PexFlags::SEED;
                }
                if l.encrypted {
                    flags.0 |= PexFlags::ENCRYPTION;
                }
                // We speak uTP with it: it is uTP-capable.
                if l.transport == TransportKind::Utp {
                    flags.0 |= PexFlags::UTP;
                }
                Some((addr, flags))
            })
            .collect();
        for p in self.slots.values_mut() {
            let Some(l) = p.live_mut() else { continue };
            let Some((id, state)) = &mut l.pex_out else {
                continue;
            };
            if let Some(msg) = state.next_message(&connected, now) {
                l.handle.send(ToPeer::Extended {
                    id: *id,
                    payload: msg.encode(),
                });
            }
        }
    }

    /// Availability of every live peer's pieces, for a new picker (after a check).
    pub fn add_bitfields_to(&self, picker: &mut Picker) {
        for (_, _, l) in self.live() {
            picker.add_peer_bitfield(&l.bitfield);
        }
    }
}
