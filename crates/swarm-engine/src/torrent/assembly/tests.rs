use std::time::{Duration, Instant};

use super::*;
use crate::bitfield::Bitfield;
use crate::torrent::messages::ToPeer;
use crate::torrent::peer_set::tests::{live_peer, picker, Probe, PIECES};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 2], port))
}

/// A torrent's cores as the torrent actor drives them, at `now`.
struct World {
    now: Instant,
    set: PeerSet<Probe>,
    picker: Picker,
    asm: Assembly,
}

fn world(max_pending_writes: usize) -> World {
    World {
        now: Instant::now(),
        set: PeerSet::new(*b"-SW0100-000000000000", 6881, PIECES),
        picker: picker(),
        asm: Assembly::new(max_pending_writes),
    }
}

impl World {
    /// A peer with every piece, unchoking us, that we are interested in.
    fn seed(&mut self, port: u16) -> (PeerKey, Probe) {
        let mut id = *b"-qB4650-000000000000";
        id[19] = port as u8;
        let (key, probe, _) = live_peer(&mut self.set, addr(port), true, id, self.now);
        let full = Bitfield::full(PIECES);
        self.set.on_bitfield(key, full, &mut self.picker);
        self.set.on_unchoked(key, self.now);
        self.set.update_interest(key, &self.picker, true, self.now);
        (key, probe)
    }

    fn fill(&mut self, key: PeerKey) {
        self.asm
            .fill_requests(&mut self.set, &mut self.picker, key, true);
    }

    /// A block from `key`, handed over as the actor does: to the peer set, then the assembly.
    fn deliver(&mut self, key: PeerKey, block: &BlockRef) -> Stored {
        let data = vec![7u8; block.length as usize];
        let len = data.len() as u64;
        let sender = self.set.on_block(key, block, len, self.now).unwrap();
        self.asm
            .on_block(&mut self.set, &mut self.picker, key, block, &data, sender)
    }
}

fn requests(probe: &Probe) -> Vec<BlockRef> {
    probe
        .orders()
        .into_iter()
        .flat_map(|o| match o {
            ToPeer::Request(blocks) => blocks,
            _ => Vec::new(),
        })
        .collect()
}

fn cancels(probe: &Probe) -> Vec<BlockRef> {
    probe
        .orders()
        .into_iter()
        .filter_map(|o| match o {
            ToPeer::Cancel(b) => Some(b),
            _ => None,
        })
        .collect()
}

fn disconnected(probe: &Probe) -> bool {
    probe
        .orders()
        .iter()
        .any(|o| matches!(o, ToPeer::Disconnect(_)))
}

/// In the endgame a block is asked of several peers; when it arrives, the others are told to
/// cancel it (and it leaves their pipelines). Before the endgame, nothing is cancelled.
#[test]
fn endgame_cancels_duplicate_requests() {
    let mut w = world(8);
    let (a, pa) = w.seed(7001);
    w.fill(a);
    let asked = requests(&pa);
    assert_eq!(asked.len(), 16, "all blocks of the torrent");
    let (b, pb) = w.seed(7002);
    w.fill(b);
    assert!(
        !requests(&pb).is_empty(),
        "the endgame shares requested blocks"
    );
    assert!(!w.asm.in_endgame());
    // The first peer sends a piece, wants more, and there is nothing new: our endgame begins.
    for block in &asked[..4] {
        w.deliver(a, block);
    }
    assert!(cancels(&pb).is_empty(), "not in the endgame yet");
    w.fill(a);
    assert!(w.asm.in_endgame());

    let block = asked[4];
    assert!(requests(&pb).contains(&block));
    assert!(matches!(w.deliver(a, &block), Stored::Kept));
    assert_eq!(cancels(&pb), vec![block]);
    assert!(cancels(&pa).is_empty());
    assert!(!w.set.live_mut(b).unwrap().in_flight.contains(&block));
}

/// A complete piece leaves for the disk; while `max_pending_writes` wait, no peer gets new
/// requests; the buffer that comes back is kept for the next piece.
#[test]
fn pending_writes_bound_requests_and_buffers_are_reused() {
    let mut w = world(1);
    let (a, pa) = w.seed(7001);
    w.fill(a);
    let asked = requests(&pa);
    let first = asked[0].index;
    let mut complete = None;
    for block in asked.iter().filter(|b| b.index == first) {
        if let Stored::Complete(i, buf) = w.deliver(a, block) {
            complete = Some((i, buf));
        }
    }
    let (index, buf) = complete.expect("the piece completes");
    assert_eq!(index, first);
    assert_eq!(buf.senders, vec![addr(7001)]);
    assert!(buf.data.iter().all(|&b| b == 7));
    assert_eq!(w.asm.pending_writes(), 1);
    let before = pa.orders().len();
    w.fill(a);
    assert_eq!(pa.orders().len(), before, "no requests while the disk lags");
    w.asm.written(Some(buf.data));
    assert_eq!((w.asm.pending_writes(), w.asm.spare.len()), (0, 1));
}

/// A failed piece with one sender is a strike against it, and the second a ban; with several
/// senders nobody is blamed.
#[test]
fn hash_fail_attribution() {
    let mut w = world(8);
    let (_, pa) = w.seed(7001);
    let (b, pb) = w.seed(7002);
    let now = w.now;

    let both = [addr(7001), addr(7002)];
    for _ in 0..2 {
        assert_eq!(w.asm.hash_failed(&mut w.set, &both, now), Strike::Nobody);
    }
    assert_eq!(w.set.get(b).unwrap().hash_failures, 0);

    let only = [addr(7002)];
    assert_eq!(
        w.asm.hash_failed(&mut w.set, &only, now),
        Strike::Counted(1)
    );
    assert!(!disconnected(&pb));
    assert_eq!(w.asm.hash_failed(&mut w.set, &only, now), Strike::Banned(2));
    let told = ToPeer::Disconnect("sent corrupt data".into());
    assert!(pb.orders().contains(&told));
    assert!(w.set.is_banned(addr(7002), now));
    assert!(!w.set.is_banned(addr(7001), now));
    assert!(!disconnected(&pa));
    // A sender that is gone cannot be blamed.
    let gone = [addr(9)];
    assert_eq!(w.asm.hash_failed(&mut w.set, &gone, now), Strike::Nobody);
}

/// Requests unanswered for the timeout go back to the picker and are cancelled; the peer is
/// snubbed (no new requests).
#[test]
fn request_timeouts_snub_the_peer() {
    let mut w = world(8);
    let (a, pa) = w.seed(7001);
    w.fill(a);
    let asked = requests(&pa);
    let at = |s| w.now + Duration::from_secs(s);
    let (t20, t21) = (at(20), at(21));
    w.set.expire_requests(&mut w.picker, t20);
    assert!(cancels(&pa).is_empty(), "not yet");
    w.set.expire_requests(&mut w.picker, t21);
    assert_eq!(cancels(&pa), asked);
    assert!(w.set.get(a).unwrap().snubbed);
    let before = pa.orders().len();
    w.fill(a);
    assert_eq!(pa.orders().len(), before, "a snubbed peer gets no requests");
    // Another peer gets the released blocks.
    let (b, pb) = w.seed(7002);
    w.fill(b);
    assert_eq!(requests(&pb).len(), asked.len());
}
