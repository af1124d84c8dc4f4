//! Hostile peers: raw-TCP peers of the test library ([`RawPeer`]) break the wire protocol
//! against a `swarmd download --seed` seeder, one case after another; after each the seeder must
//! run, serve a well-behaved peer a verified piece and keep its RSS bounded.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::wire::{self, Frame, RawPeer};

use super::Rng;

/// What a well-behaved peer learns right after the handshake: the allowed-fast pieces and
/// whether swarmd unchoked it. Collects frames for up to `timeout`, stopping early once it has
/// an allowed-fast piece or an unchoke.
fn collect_permissions(p: &mut RawPeer, timeout: Duration) -> io::Result<(Vec<u32>, bool)> {
    let deadline = Instant::now() + timeout;
    let (mut allowed, mut unchoked) = (Vec::new(), false);
    while Instant::now() < deadline {
        match p.next(Duration::from_millis(200))? {
            Some(Frame::Msg(wire::ALLOWED_FAST, pl)) if pl.len() == 4 => {
                allowed.push(wire::u32_at(&pl, 0))
            }
            Some(Frame::Msg(wire::UNCHOKE, _)) => unchoked = true,
            Some(Frame::Msg(wire::CHOKE, _)) => unchoked = false,
            Some(_) => continue,
            None if !allowed.is_empty() || unchoked => break,
            None => {}
        }
    }
    Ok((allowed, unchoked))
}

/// A well-behaved raw peer: handshake (fast + extensions), interested, one piece requested (the
/// torrent has one block per piece), its SHA-1 checked against the torrent. Returns the piece.
fn fetch_one_piece(addr: SocketAddr, t: &Torrent) -> Result<u32, String> {
    let mut p = RawPeer::connect(addr).map_err(|e| format!("connect: {e}"))?;
    p.handshake(&t.info_hash, true, true)
        .map_err(|e| format!("handshake: {e}"))?;
    p.send(&wire::msg(wire::INTERESTED, &[]))
        .map_err(|e| e.to_string())?;
    let (allowed, unchoked) =
        collect_permissions(&mut p, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let index = match (allowed.first(), unchoked) {
        (Some(&i), _) => i,
        (None, true) => (t.num_pieces() / 2) as u32,
        (None, false) => return Err("neither unchoked nor given allowed-fast pieces".into()),
    };
    let len = t.piece_len(index as usize) as u32;
    p.send(&wire::block_msg(wire::REQUEST, index, 0, len))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match p
            .next(Duration::from_millis(500))
            .map_err(|e| e.to_string())?
        {
            Some(Frame::Msg(wire::PIECE, pl)) if wire::u32_at(&pl, 0) == index => {
                let data = &pl[8..];
                let mut h = sha1_smol::Sha1::new();
                h.update(data);
                if h.digest().bytes() != t.pieces[index as usize] {
                    return Err(format!("piece {index} failed its hash check"));
                }
                return Ok(index);
            }
            Some(Frame::Msg(wire::REJECT, _)) => return Err(format!("piece {index} rejected")),
            _ => {}
        }
    }
    Err(format!("piece {index} never came"))
}

/// A peer that sent `what`, as recorded for the summary.
struct Outcome {
    case: &'static str,
    result: String,
}

/// `swarmd download --seed` under attack.
struct Target<'a> {
    seeder: &'a SwarmdProcess,
    torrent: &'a Torrent,
    max_rss: u64,
    outcomes: Vec<Outcome>,
}

impl Target<'_> {
    fn addr(&self) -> SocketAddr {
        self.seeder.addr()
    }

    fn ih(&self) -> InfoHash {
        self.torrent.info_hash
    }

    /// The number of pieces (257).
    fn n(&self) -> u32 {
        self.torrent.num_pieces() as u32
    }

    /// A connection that has not said anything yet.
    fn connect(&self) -> RawPeer {
        RawPeer::connect(self.addr()).expect("connecting to the seeder")
    }

    /// A connection past the handshake (fast + extensions), swarmd's opening frames drained.
    fn session(&self) -> RawPeer {
        let mut p = self.connect();
        p.handshake(&self.ih(), true, true)
            .expect("handshake with the seeder");
        while let Ok(Some(_)) = p.next(Duration::from_millis(150)) {}
        p
    }

    /// After each case: the seeder runs, serves a well-behaved peer a verified piece (retrying
    /// for a while: slots of hostile connections may still be freeing up), and stays small.
    #[track_caller]
    fn check_healthy(&mut self, after: &str) {
        self.seeder.guard().assert_running();
        wait_for(
            &format!("a well-behaved peer to be served after `{after}`"),
            Duration::from_secs(15),
            Duration::from_millis(300),
            || {
                self.seeder.guard().assert_running();
                fetch_one_piece(self.addr(), self.torrent)
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.seeder.guard().log_tail(30)));
        let rss = rss_bytes(self.seeder.guard().pid());
        self.max_rss = self.max_rss.max(rss);
        assert!(
            rss < 64 * MIB,
            "swarmd's RSS is {} MiB after `{after}`",
            rss / MIB
        );
    }

    fn record(&mut self, case: &'static str, result: impl Into<String>) {
        self.outcomes.push(Outcome {
            case,
            result: result.into(),
        });
    }

    /// `case` must end with swarmd closing the connection within 5 s.
    #[track_caller]
    fn expect_closed(&mut self, case: &'static str, mut p: RawPeer) {
        match p.wait_closed(Duration::from_secs(5)) {
            Ok(t) => self.record(case, format!("closed after {} ms", t.as_millis())),
            Err(e) => panic!(
                "`{case}`: swarmd must drop this peer, but the connection is {e}\n{}",
                self.seeder.guard().log_tail(20)
            ),
        }
        self.check_healthy(case);
    }

    /// `case` is legal or tolerable: whatever swarmd does with the connection is recorded.
    fn tolerated(&mut self, case: &'static str, mut p: RawPeer) {
        let r = match p.wait_closed(Duration::from_secs(2)) {
            Ok(t) => format!("closed after {} ms", t.as_millis()),
            Err(_) => "kept open".to_string(),
        };
        self.record(case, r);
        self.check_healthy(case);
    }

    /// A session whose extension handshake names id 3 for `ut_metadata` (swarmd's own id for it
    /// is 1).
    fn metadata_session(&self) -> RawPeer {
        let mut p = self.session();
        p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai3eee"))
            .unwrap();
        p
    }

    /// A session that sends `bytes` and must be dropped.
    #[track_caller]
    fn send_expect_closed(&mut self, case: &'static str, bytes: &[u8]) {
        let mut p = self.session();
        p.send(bytes).unwrap();
        self.expect_closed(case, p);
    }
}

/// Raw-TCP peers break the wire protocol against a `swarmd download --seed` seeder: after every
/// case the seeder is running, serves a well-behaved peer a verified piece, and its RSS stays
/// under 64 MiB; peers that BEP 3 says must be dropped are disconnected within 5 s; finally a
/// libtorrent leecher downloads the whole torrent from it.
#[test]
fn hostile_peers_cannot_hurt_a_seeder() {
    let env = TestEnv::new("rel-hostile-peers");
    // 16 KiB pieces (one block each, so a block's hash is checkable) and 257 of them: the
    // bitfield has 7 spare bits.
    let payload = Payload::single(&env.subdir("seed"), "target.bin", 4 * MIB + 5_000, 51);
    let torrent = payload.make_torrent_native(&env.path().join("target.torrent"), 16 * 1024, &[]);
    assert_eq!(torrent.num_pieces(), 257);
    let seeder = Swarmd::download(&torrent.path)
        .out(&payload.dir)
        .seed(true)
        .name("swarmd-seed")
        .env("RUST_LOG", "info,swarm_engine=debug")
        .spawn(&env);
    seeder.wait_listening(Duration::from_secs(20));
    let mut t = Target {
        seeder: &seeder,
        torrent: &torrent,
        max_rss: 0,
        outcomes: Vec::new(),
    };
    // The seeder checks its data before it serves.
    t.check_healthy("start-up");
    let idle_rss = t.max_rss;
    let slow = start_slow_handshake(t.addr(), &t.ih());
    let mut rng = Rng::from_env("SWARM_IT_HOSTILE_SEED");

    before_or_instead_of_a_handshake(&mut t, &mut rng);
    broken_framing(&mut t);
    messages_of_the_wrong_size(&mut t);
    bitfield_abuse(&mut t);
    invalid_requests_are_rejected(&mut t);
    request_floods(&mut t);
    cancels_and_unsolicited_pieces(&mut t, &mut rng);
    extension_protocol_abuse(&mut t);
    connection_burst(&mut t);
    slow_handshake_is_cut_off(&mut t, slow);
    libtorrent_downloads_everything(&env, &mut t);

    eprintln!(
        "hostile peers: RSS {} MiB idle, at most {} MiB",
        idle_rss / MIB,
        t.max_rss / MIB
    );
    for o in &t.outcomes {
        eprintln!("  {:<55} {}", o.case, o.result);
    }
}

/// A handshake sent one byte a second, in a thread that runs alongside the other cases;
/// `Ok((bytes sent, time))` once swarmd closes the connection, `Err` if it is open after 30 s.
fn start_slow_handshake(
    addr: SocketAddr,
    ih: &InfoHash,
) -> JoinHandle<Result<(usize, Duration), String>> {
    let hs = wire::handshake(ih, false, false);
    std::thread::spawn(move || -> Result<(usize, Duration), String> {
        let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        let start = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(1000)))
            .unwrap();
        for (i, b) in hs.iter().enumerate() {
            if s.write_all(&[*b]).is_err() {
                return Ok((i, start.elapsed()));
            }
            let mut x = [0u8; 1];
            match s.read(&mut x) {
                Ok(0) => return Ok((i + 1, start.elapsed())),
                Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok((i + 1, start.elapsed()))
                }
                _ => {}
            }
            if start.elapsed() > Duration::from_secs(30) {
                break;
            }
        }
        Err(format!("still open after {:?}", start.elapsed()))
    })
}

/// Garbage, a wrong protocol string, an unknown info-hash, half a handshake: all dropped.
fn before_or_instead_of_a_handshake(t: &mut Target, rng: &mut Rng) {
    let ih = t.ih();
    // What is not a plaintext handshake may be an encrypted one (MSE): 68 random bytes could be
    // the start of a public key (96 bytes, then up to 512 of padding before the sync marker),
    // which a daemon that accepts encryption waits for until its handshake timeout. Followed by
    // more than that, they are neither, and swarmd knows it at once.
    let not_mse = rng.bytes(96 + 512 + 100);
    let mut p = t.connect();
    let mut garbage = rng.bytes(68);
    garbage[0] = 0xEE;
    garbage.extend_from_slice(&not_mse);
    p.send(&garbage).unwrap();
    t.expect_closed("garbage handshake", p);

    let mut p = t.connect();
    let mut hs = wire::handshake(&ih, false, false).to_vec();
    hs[1..20].copy_from_slice(b"BitTorrent protocoX");
    hs.extend_from_slice(&not_mse);
    p.send(&hs).unwrap();
    t.expect_closed("wrong protocol string", p);

    let mut p = t.connect();
    p.send(&wire::handshake(&InfoHash([0x5a; 20]), true, true))
        .unwrap();
    t.expect_closed("unknown info-hash", p);

    let mut p = t.connect();
    p.send(&wire::handshake(&ih, false, false)[..30]).unwrap();
    p.shutdown_write().unwrap();
    t.expect_closed("half a handshake, then EOF", p);
}

/// A huge length prefix and a frame over the 64 KiB limit are dropped; unknown message ids are
/// tolerated.
fn broken_framing(t: &mut Target) {
    t.send_expect_closed("length prefix 0xFFFFFFF0", &[0xFF, 0xFF, 0xFF, 0xF0]);

    let mut p = t.session();
    p.send(&(70_000u32).to_be_bytes()).unwrap();
    p.send(&[wire::PIECE]).unwrap();
    t.expect_closed("frame over the 64 KiB limit", p);

    for id in [42u8, 99, 255] {
        let mut p = t.session();
        p.send(&wire::msg(id, b"what is this")).unwrap();
        t.tolerated(
            match id {
                42 => "unknown message id 42",
                99 => "unknown message id 99",
                _ => "unknown message id 255",
            },
            p,
        );
    }
}

/// Known messages with a payload of the wrong size (or a piece index out of range): dropped.
fn messages_of_the_wrong_size(t: &mut Target) {
    for (case, bytes) in [
        ("3-byte Have", wire::msg(wire::HAVE, &[0, 0, 1])),
        ("Have with 5 bytes", wire::msg(wire::HAVE, &[0, 0, 0, 1, 0])),
        ("11-byte Request", wire::msg(wire::REQUEST, &[0; 11])),
        (
            "Piece shorter than its header",
            wire::msg(wire::PIECE, &[0; 5]),
        ),
        ("Cancel with 13 bytes", wire::msg(wire::CANCEL, &[0; 13])),
        ("Choke with a payload", wire::msg(wire::CHOKE, &[1])),
        ("Port with 3 bytes", wire::msg(wire::PORT, &[0, 1, 2])),
        (
            "Have for piece 4294967295",
            wire::msg(wire::HAVE, &[0xFF; 4]),
        ),
    ] {
        t.send_expect_closed(case, &bytes);
    }
}

/// BEP 3: a bitfield of the wrong size or with spare bits set is dropped; a second or a late
/// bitfield, and a full one (seed meets seed), are tolerated.
fn bitfield_abuse(t: &mut Target) {
    let bf_len = t.n().div_ceil(8) as usize;
    t.send_expect_closed(
        "bitfield one byte too long",
        &wire::msg(wire::BITFIELD, &vec![0u8; bf_len + 1]),
    );
    t.send_expect_closed(
        "bitfield one byte too short",
        &wire::msg(wire::BITFIELD, &vec![0u8; bf_len - 1]),
    );

    let mut bf = vec![0u8; bf_len];
    bf[bf_len - 1] = 0x01; // a spare bit
    t.send_expect_closed(
        "bitfield with a spare bit set",
        &wire::msg(wire::BITFIELD, &bf),
    );

    let mut p = t.session();
    let mut bf = vec![0u8; bf_len];
    bf[0] = 0x80;
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    t.tolerated("bitfield sent twice", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::HAVE, &3u32.to_be_bytes())).unwrap();
    p.send(&wire::msg(wire::BITFIELD, &bf)).unwrap();
    t.tolerated("bitfield sent late, after a Have", p);

    // A full bitfield: the seeder and this "seed" have nothing to say to each other.
    let mut p = t.session();
    let mut full = vec![0xFFu8; bf_len];
    full[bf_len - 1] = 0x80; // 257 = 32 * 8 + 1
    p.send(&wire::msg(wire::BITFIELD, &full)).unwrap();
    t.tolerated("a full bitfield (seed meets seed)", p);
}

/// BEP 6: a fast peer gets a Reject for each request not served, and never a piece for an
/// invalid request.
fn invalid_requests_are_rejected(t: &mut Target) {
    let n = t.n();
    let mut p = t.session();
    let bad: Vec<(u32, u32, u32)> = vec![
        (n, 0, 16 * 1024),             // piece out of range
        (u32::MAX, 0, 16 * 1024),      // far out of range
        (0, 16 * 1024, 16 * 1024),     // past the end of the piece
        (0, u32::MAX - 10, 16 * 1024), // begin + length overflows
        (0, 0, 64 * 1024),             // oversize (> 32 KiB)
        (0, 0, 33 * 1024),             // oversize by 1 KiB
        (0, 0, 0),                     // zero length
        (n - 1, 0, 16 * 1024),         // the last piece is shorter (5000 bytes)
    ];
    for &(i, b, l) in &bad {
        p.send(&wire::block_msg(wire::REQUEST, i, b, l)).unwrap();
    }
    let mut rejects = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejects < bad.len() && Instant::now() < deadline {
        match p.next(Duration::from_millis(300)) {
            Ok(Some(Frame::Msg(wire::REJECT, _))) => rejects += 1,
            Ok(Some(Frame::Msg(wire::PIECE, pl))) => panic!(
                "swarmd served an invalid request: piece {} begin {} ({} bytes)",
                wire::u32_at(&pl, 0),
                wire::u32_at(&pl, 4),
                pl.len() - 8
            ),
            Ok(_) => {}
            Err(e) => panic!("swarmd dropped a peer for invalid requests: {e}"),
        }
    }
    assert_eq!(
        rejects,
        bad.len(),
        "every invalid request of a fast peer must be rejected"
    );
    t.tolerated("requests out of range, oversize, zero length", p);
}

/// 10 000 requests at once from a choked peer, then 10 000 valid ones (on an allowed-fast
/// piece, more than the advertised queue) from a peer that never reads.
fn request_floods(t: &mut Target) {
    let n = t.n();
    let mut p = t.session();
    let mut burst = Vec::with_capacity(10_000 * 17);
    for k in 0..10_000u32 {
        burst.extend_from_slice(&wire::block_msg(wire::REQUEST, k % n, 0, 16 * 1024));
    }
    p.send(&burst).unwrap();
    t.tolerated("10 000 requests at once (choked)", p);

    let mut p = t.connect();
    p.handshake(&t.ih(), true, true).unwrap();
    p.send(&wire::msg(wire::INTERESTED, &[])).unwrap();
    let (allowed, _) = collect_permissions(&mut p, Duration::from_secs(5)).unwrap();
    let piece = *allowed.first().expect("no allowed-fast piece");
    let mut burst = Vec::with_capacity(10_000 * 17);
    for _ in 0..10_000u32 {
        burst.extend_from_slice(&wire::block_msg(wire::REQUEST, piece, 0, 16 * 1024));
    }
    // Do not read: swarmd must bound what it queues for a peer that does not read.
    let _ = p.send(&burst);
    std::thread::sleep(Duration::from_secs(1));
    t.check_healthy("10 000 valid requests from a peer that does not read");
    t.tolerated("10 000 valid requests, never read", p);
}

/// 1000 cancels of requests swarmd never made (legal: the connection stays), then blocks we
/// never asked for, in range and out of it.
fn cancels_and_unsolicited_pieces(t: &mut Target, rng: &mut Rng) {
    let n = t.n();
    let mut p = t.session();
    let mut cancels = Vec::new();
    for _ in 0..1000 {
        let r = rng.next();
        cancels.extend_from_slice(&wire::block_msg(
            wire::CANCEL,
            (r % 300) as u32,
            ((r >> 16) % 4) as u32 * 16384,
            16384,
        ));
    }
    p.send(&cancels).unwrap();
    assert!(
        p.stays_open(Duration::from_secs(1)),
        "swarmd dropped a peer for cancels of requests it never made (legal)"
    );
    t.tolerated("1000 cancels for nothing", p);

    let mut p = t.session();
    for (i, b, len) in [
        (0u32, 0u32, 16 * 1024usize),
        (5, 8192, 16 * 1024),
        (n, 0, 1024),
        (u32::MAX, u32::MAX, 100),
        (1, 3, 7),
    ] {
        let mut pl = i.to_be_bytes().to_vec();
        pl.extend_from_slice(&b.to_be_bytes());
        pl.extend_from_slice(&rng.bytes(len));
        if p.send(&wire::msg(wire::PIECE, &pl)).is_err() {
            break;
        }
    }
    t.tolerated("unsolicited pieces", p);
}

/// The extension protocol (BEP 10) and ut_metadata (BEP 9), malformed and abused; a request
/// for a metadata piece that does not exist is rejected.
fn extension_protocol_abuse(t: &mut Target) {
    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00this is not bencode"))
        .unwrap();
    t.tolerated("malformed extension handshake", p);

    let mut p = t.session();
    p.send(&wire::msg(wire::EXTENDED, b"\x00d1:md11:ut_metadatai-5eee"))
        .unwrap();
    t.tolerated("extension handshake with a negative id", p);

    let mut p = t.session();
    let mut deep = b"\x00".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 5000));
    p.send(&wire::msg(wire::EXTENDED, &deep)).unwrap();
    t.tolerated("extension handshake nested 5000 deep", p);

    let mut p = t.metadata_session();
    p.send(&wire::msg(
        wire::EXTENDED,
        b"\x01d8:msg_typei0e5:piecei99999ee",
    ))
    .unwrap();
    t.tolerated("ut_metadata request for piece 99999", p);

    metadata_request_beyond_the_metadata_is_rejected(t);

    let mut p = t.metadata_session();
    p.send(&wire::msg(
        wire::EXTENDED,
        b"\x01d8:msg_typei1e5:piecei0e10:total_sizei99999999999eee",
    ))
    .unwrap();
    t.tolerated("unsolicited ut_metadata data with a huge total_size", p);
}

/// A request for a piece the metadata does not have (it fits in piece 0) is rejected; then a
/// malformed ut_metadata message on the same connection is tolerated.
fn metadata_request_beyond_the_metadata_is_rejected(t: &mut Target) {
    let mut p = t.metadata_session();
    p.send(&wire::msg(wire::EXTENDED, b"\x01d8:msg_typei0e5:piecei7ee"))
        .unwrap();
    let mut rejected = false;
    let deadline = Instant::now() + Duration::from_secs(3);
    while !rejected && Instant::now() < deadline {
        match p.next(Duration::from_millis(300)) {
            Ok(Some(Frame::Msg(wire::EXTENDED, pl))) => {
                rejected = pl.first() == Some(&3) && pl.windows(10).any(|w| w == b"msg_typei2")
            }
            Ok(_) => {}
            Err(e) => panic!("swarmd dropped a peer for a legal ut_metadata request: {e}"),
        }
    }
    assert!(
        rejected,
        "no ut_metadata reject for a piece beyond the metadata"
    );
    p.send(&wire::msg(wire::EXTENDED, b"\x01not bencode at all"))
        .unwrap();
    t.tolerated("malformed ut_metadata message", p);
}

/// A burst of 300 connections, half of them handshaking: recorded, and the seeder is healthy
/// once they go.
fn connection_burst(t: &mut Target) {
    let ih = t.ih();
    let mut burst = Vec::new();
    for k in 0..300 {
        if let Ok(mut p) = RawPeer::connect(t.addr()) {
            if k % 2 == 0 {
                let _ = p.send(&wire::handshake(&ih, true, true));
            }
            burst.push(p);
        }
    }
    let opened = burst.len();
    std::thread::sleep(Duration::from_secs(1));
    t.seeder.guard().assert_running();
    let rss_during = rss_bytes(t.seeder.guard().pid());
    let mut still_open = 0;
    for p in &mut burst {
        if p.stays_open(Duration::from_millis(5)) {
            still_open += 1;
        }
    }
    drop(burst);
    t.record(
        "300 connections at once",
        format!(
            "{opened} opened, {still_open} still open after 1 s; RSS {} MiB meanwhile",
            rss_during / MIB
        ),
    );
    t.check_healthy("300 connections at once");
}

/// The 1 byte/s handshake started first was cut off within 15 s (a handshake timeout).
fn slow_handshake_is_cut_off(t: &mut Target, slow: JoinHandle<Result<(usize, Duration), String>>) {
    let (bytes, took) = slow
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("a 1 byte/s handshake was {e}: no handshake timeout"));
    t.record(
        "handshake at 1 byte/s",
        format!("closed after {bytes} bytes, {:.1} s", took.as_secs_f64()),
    );
    assert!(
        took < Duration::from_secs(15),
        "a 1 byte/s handshake was allowed {took:?}"
    );
}

/// Finally a real client downloads the whole torrent from the seeder.
fn libtorrent_downloads_everything(env: &TestEnv, t: &mut Target) {
    let leech = LibtorrentPeer::spawn(
        env,
        &t.torrent.path,
        &env.subdir("leech"),
        LtOptions {
            connect: vec![t.addr()],
            no_announce: true,
            ..LtOptions::leech()
        },
    );
    leech.wait_finished(Duration::from_secs(60));
    t.torrent.verify_dir(&env.path().join("leech")).unwrap();
    t.check_healthy("the libtorrent leecher");
}
