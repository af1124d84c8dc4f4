use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use swarm_wire::peer::BLOCK_SIZE;

/// A peer's handle that records the orders it is given.
#[derive(Clone, Default)]
pub(crate) struct Probe(Rc<RefCell<Vec<ToPeer>>>);

impl PeerHandle for Probe {
    fn send(&self, order: ToPeer) {
        self.0.borrow_mut().push(order);
    }
}

impl Probe {
    pub(crate) fn orders(&self) -> Vec<ToPeer> {
        self.0.borrow().clone()
    }

    fn disconnected(&self) -> bool {
        self.orders()
            .iter()
            .any(|o| matches!(o, ToPeer::Disconnect(_)))
    }
}

fn id(tag: u8) -> [u8; 20] {
    let mut id = *b"-SW0100-000000000000";
    id[19] = tag;
    id
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

pub(crate) const PIECES: u32 = 4;

pub(crate) fn picker() -> Picker {
    let pl = 4 * BLOCK_SIZE;
    Picker::new(pl, PIECES as u64 * pl as u64, Bitfield::new(PIECES))
}

/// A live peer at `sock` with `peer_id`, dialled by us when `outgoing`.
pub(crate) fn live_peer(
    set: &mut PeerSet<Probe>,
    sock: SocketAddr,
    outgoing: bool,
    peer_id: [u8; 20],
    now: Instant,
) -> (PeerKey, Probe, bool) {
    let key = if outgoing {
        set.add_addresses(vec![sock], PeerSource::Tracker, now);
        set.open_outgoing(sock, None)
    } else {
        set.open_incoming(sock, None)
    };
    let probe = Probe::default();
    let live = set.connected(key, probe.clone(), peer_id, true, None, now);
    (key, probe, live)
}

/// Both swarmd ends dialled each other. Each sees the two connections in its own order, and
/// both keep the one dialled by the greater id, so exactly one connection survives.
#[test]
fn both_swarmd_ends_keep_the_same_duplicate_connection() {
    let now = Instant::now();
    let (low, high) = (id(1), id(2));
    // X is dialled by `low`, Y by `high`: Y must survive on both sides.
    let mut at_low = PeerSet::<Probe>::new(low, 6881, PIECES);
    let (_, x_low, x_live) = live_peer(&mut at_low, addr(7000), true, high, now);
    let (_, y_low, y_live) = live_peer(&mut at_low, addr(50_001), false, high, now);
    assert!(x_live && y_live);
    assert!(x_low.disconnected(), "the low end closes X, the older one");
    assert!(!y_low.disconnected());

    let mut at_high = PeerSet::<Probe>::new(high, 7000, PIECES);
    let (_, y_high, y_live) = live_peer(&mut at_high, addr(6881), true, low, now);
    let (_, x_high, x_live) = live_peer(&mut at_high, addr(50_002), false, low, now);
    assert!(y_live && !x_live, "the high end refuses X, the newer one");
    assert!(x_high.disconnected());
    assert!(!y_high.disconnected());
}

/// Other clients resolve duplicates by their own rule: we keep both.
#[test]
fn duplicates_of_other_clients_are_left_to_them() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let other = *b"-qB4650-000000000000";
    let (_, a, a_live) = live_peer(&mut set, addr(7000), true, other, now);
    let (_, b, b_live) = live_peer(&mut set, addr(50_000), false, other, now);
    assert!(a_live && b_live);
    assert!(!a.disconnected() && !b.disconnected());
}

/// Two strikes ban the endpoint and the peer id: the peer is told to leave, its address is not
/// taken again, and the same peer id is refused when it comes back in from a new port.
#[test]
fn strikes_ban_by_endpoint_and_peer_id() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let mut picker = picker();
    let bad = id(9);
    let (key, probe, _) = live_peer(&mut set, addr(7000), true, bad, now);
    assert_eq!(set.strike(addr(7000), now), Strike::Counted(1));
    assert!(!probe.disconnected());
    assert_eq!(set.strike(addr(7000), now), Strike::Banned(2));
    assert!(probe.disconnected());
    assert!(set.is_banned_key(key));
    set.exited(key, &mut picker, false, false, now);
    assert!(
        !set.is_banned_key(key),
        "the key is forgotten with its slot"
    );

    assert!(set.is_banned(addr(7000), now));
    assert!(!set.admits_incoming(addr(7000), 50, now));
    assert_eq!(set.add_addresses(vec![addr(7000)], PeerSource::Pex, now), 0);
    assert!(set.dial_plan(50, 50, now).is_empty());
    // Incoming from a new port: admitted at the door, refused at the handshake.
    assert!(set.admits_incoming(addr(7001), 50, now));
    let (_, probe, live) = live_peer(&mut set, addr(7001), false, bad, now);
    assert!(!live);
    assert_eq!(probe.orders(), vec![ToPeer::Disconnect("banned".into())]);
    // The endpoint ban ends; the peer id ban lasts as long as the torrent.
    let later = now + BAN_FOR + Duration::from_secs(1);
    assert!(!set.is_banned(addr(7000), later));
}

/// A failed address is dialled again after an exponential backoff; a normal end after a
/// minute; a connection we released (pause) at once.
#[test]
fn dial_backoff() {
    let t0 = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let mut picker = picker();
    let a = addr(7000);
    assert_eq!(set.add_addresses(vec![a, a], PeerSource::Tracker, t0), 1);
    // Ourselves (a tracker lists us too) is never dialled.
    let us = SocketAddr::from(([127, 0, 0, 1], 6881));
    assert_eq!(set.add_addresses(vec![us], PeerSource::Tracker, t0), 0);
    assert_eq!(set.dial_plan(50, 8, t0), vec![a]);
    let k = set.open_outgoing(a, None);
    assert!(set.dial_plan(50, 8, t0).is_empty(), "connected");

    set.exited(k, &mut picker, false, true, t0);
    let s = Duration::from_secs;
    assert!(set.dial_plan(50, 8, t0 + s(9)).is_empty());
    assert_eq!(set.dial_plan(50, 8, t0 + s(10)), vec![a]);
    let t1 = t0 + s(10);
    let k = set.open_outgoing(a, None);
    set.exited(k, &mut picker, false, true, t1);
    assert!(set.dial_plan(50, 8, t1 + s(19)).is_empty());
    assert_eq!(set.dial_plan(50, 8, t1 + s(20)), vec![a]);

    let k = set.open_outgoing(a, None);
    set.exited(k, &mut picker, false, false, t1);
    assert!(set.dial_plan(50, 8, t1 + s(59)).is_empty());
    assert_eq!(set.dial_plan(50, 8, t1 + s(60)), vec![a]);

    let k = set.open_outgoing(a, None);
    set.release_all();
    set.exited(k, &mut picker, false, true, t1);
    assert_eq!(set.dial_plan(50, 8, t1), vec![a], "released: no backoff");
}

/// A seed that wants data again (a file un-skipped) dials at once the peers it left because both
/// were seeding, but not those that failed.
#[test]
fn wanting_data_again_ends_the_both_seeding_wait() {
    let t0 = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let mut picker = picker();
    let (seed, dead) = (addr(7000), addr(7001));
    set.add_addresses(vec![seed, dead], PeerSource::Tracker, t0);
    let k = set.open_outgoing(seed, None);
    set.exited(k, &mut picker, false, false, t0);
    let k = set.open_outgoing(dead, None);
    set.exited(k, &mut picker, false, true, t0);
    assert!(set.dial_plan(50, 8, t0).is_empty());
    set.wanted_again(t0);
    assert_eq!(set.dial_plan(50, 8, t0), vec![seed]);
}

/// At most `max_half_open` dials at once, and no more than `max_peers` slots.
#[test]
fn dial_plan_respects_half_open_and_room() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    set.add_addresses((7000..7010).map(addr).collect(), PeerSource::Dht, now);
    assert_eq!(set.dial_plan(50, 3, now).len(), 3);
    assert_eq!(set.dial_plan(2, 3, now).len(), 2);
    for a in set.dial_plan(50, 3, now) {
        set.open_outgoing(a, None);
    }
    assert!(set.dial_plan(50, 3, now).is_empty(), "three half-open");
}

/// We are interested in a peer with a piece we want, say so once, and stop when it has nothing
/// more for us (or we stop downloading).
#[test]
fn interest_follows_what_the_peer_has() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let mut picker = picker();
    let (key, probe, _) = live_peer(&mut set, addr(7000), true, id(2), now);
    assert!(!set.update_interest(key, &picker, true, now));
    assert!(
        probe.orders().is_empty(),
        "not interested is where we start"
    );
    assert!(
        set.on_have(key, 2, &mut picker),
        "a wanted piece may make it interesting"
    );
    assert!(set.update_interest(key, &picker, true, now));
    assert!(set.update_interest(key, &picker, true, now));
    assert_eq!(probe.orders(), vec![ToPeer::Interested(true)]);
    assert!(
        !set.on_have(key, 2, &mut picker),
        "a repeated have changes nothing"
    );
    assert!(!set.update_interest(key, &picker, false, now));
    assert_eq!(
        probe.orders(),
        vec![ToPeer::Interested(true), ToPeer::Interested(false)]
    );
}

/// A newly interested peer gets a free upload slot at once; not when the slots are taken.
#[test]
fn free_upload_slot_is_given_at_once() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let (a, pa, _) = live_peer(&mut set, addr(7000), true, id(2), now);
    let (b, pb, _) = live_peer(&mut set, addr(7001), true, id(3), now);
    set.on_interested(a, true, true, 1);
    set.on_interested(b, true, true, 1);
    assert_eq!(pa.orders(), vec![ToPeer::Choke(false)]);
    assert!(pb.orders().is_empty(), "the only slot is taken");
    // Not trading (paused, checking): no slot.
    let (c, pc, _) = live_peer(&mut set, addr(7002), true, id(4), now);
    set.on_interested(c, true, false, 5);
    assert!(pc.orders().is_empty());
}

/// A choke round decided on a snapshot taken before a peer got a free slot does not choke it
/// back (a lone leecher was unchoked, choked and unchoked again, its requests dropped); the
/// round after, which saw it, decides as usual.
#[test]
fn a_round_that_did_not_see_a_free_slot_given_leaves_it() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let (a, pa, _) = live_peer(&mut set, addr(7000), true, id(2), now);
    let before = set.snapshots(now);
    assert!(!before[0].interested);
    set.on_interested(a, true, true, 4);
    assert_eq!(pa.orders(), vec![ToPeer::Choke(false)]);
    // The round's decision, made on `before`: nobody to unchoke.
    let stale = crate::choke::changes(&[], set.choking());
    assert_eq!(stale, vec![(a, true)]);
    set.apply_choke(stale, None, &[]);
    assert_eq!(pa.orders(), vec![ToPeer::Choke(false)], "choked back");
    // The next round saw it; its decision is carried out.
    assert!(set.snapshots(now)[0].interested);
    set.apply_choke(crate::choke::changes(&[], set.choking()), None, &[]);
    assert_eq!(pa.orders(), vec![ToPeer::Choke(false), ToPeer::Choke(true)]);
}

/// A crashed outgoing peer is re-dialled into the same slot: it is connecting again, its
/// availability leaves the picker, and what we learned of it (hash failures) stays.
#[test]
fn a_restarted_peer_keeps_its_slot_but_not_its_connection() {
    let now = Instant::now();
    let mut set = PeerSet::<Probe>::new(id(1), 6881, PIECES);
    let mut picker = picker();
    let (key, _, _) = live_peer(&mut set, addr(7000), true, id(2), now);
    set.on_bitfield(key, Bitfield::full(PIECES), &mut picker);
    assert_eq!(set.strike(addr(7000), now), Strike::Counted(1));
    set.exited(key, &mut picker, true, true, now);
    let slot = set.get(key).expect("kept for the re-dial");
    assert!(!slot.is_live());
    assert_eq!(slot.hash_failures, 1);
    assert!(!picker.is_interesting(&Bitfield::new(PIECES)));
    let probe = Probe::default();
    assert!(set.connected(key, probe, id(2), true, None, now));
    assert_eq!(set.strike(addr(7000), now), Strike::Banned(2));
}
