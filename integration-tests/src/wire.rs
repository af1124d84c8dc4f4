//! A raw BitTorrent peer of the tests' own, for what no real client does on purpose: break the
//! wire protocol, flood a daemon, never read, or look at the exact frames swarmd sends.
//!
//! The handshake is swarm-wire's [`Handshake`] (the encoding the daemon itself uses, so a
//! well-formed handshake is written in one place), with a peer id of its own per call: swarmd
//! drops a second connection from a peer id it already has. Everything after the handshake is
//! raw bytes ([`msg`], [`block_msg`] or any `Vec<u8>`), so a hostile test can send any length
//! prefix, id or payload, and even a broken handshake (patch the bytes of [`handshake`]).
//! Reads are bounded by deadlines; a frame over 1 MiB from swarmd is an error, never an
//! allocation.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::wire::{self, Frame, RawPeer};
//! # fn demo(addr: std::net::SocketAddr, ih: swarm_wire::InfoHash) -> std::io::Result<()> {
//! let mut p = RawPeer::connect(addr)?;
//! p.handshake(&ih, true, true)?; // ours (fast + extensions), then swarmd's
//! p.send(&wire::msg(wire::INTERESTED, &[]))?;
//! while let Some(frame) = p.next(Duration::from_millis(200))? {
//!     if let Frame::Msg(wire::UNCHOKE, _) = frame { break }
//! }
//! # Ok(()) }
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use swarm_wire::peer::Handshake;
use swarm_wire::InfoHash;

/// The message ids (`wire::CHOKE`, `wire::REQUEST`, …), as swarm-wire names them.
pub use swarm_wire::peer::id::*;

/// How long a write may block (a daemon that stops reading fails the write instead of hanging
/// the test).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest frame read back from swarmd (its own limit for what it sends is far lower).
const MAX_READ_FRAME: usize = 1 << 20;

/// `-XX0001-` and a number never used before in this process.
pub fn next_peer_id() -> [u8; 20] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 20];
    id.copy_from_slice(format!("-XX0001-{n:012}").as_bytes());
    id
}

/// A BitTorrent handshake with a fresh peer id; `fast` sets the BEP 6 bit, `ext` the BEP 10 bit.
pub fn handshake(info_hash: &InfoHash, fast: bool, ext: bool) -> [u8; Handshake::LEN] {
    let mut h = Handshake::new(*info_hash, next_peer_id());
    if fast {
        h = h.with_fast();
    }
    if ext {
        h = h.with_extensions();
    }
    h.encode()
}

/// A framed message: length, id, payload.
pub fn msg(id: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = ((payload.len() + 1) as u32).to_be_bytes().to_vec();
    m.push(id);
    m.extend_from_slice(payload);
    m
}

/// A `Request`, `Cancel` or `Reject` frame (`id`) for `len` bytes at `begin` of piece `index`.
pub fn block_msg(id: u8, index: u32, begin: u32, len: u32) -> Vec<u8> {
    let mut p = index.to_be_bytes().to_vec();
    p.extend_from_slice(&begin.to_be_bytes());
    p.extend_from_slice(&len.to_be_bytes());
    msg(id, &p)
}

/// The big-endian `u32` at `at` of a payload. Panics if the payload is too short: a test reads
/// only frames whose length it checked.
pub fn u32_at(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(p[at..at + 4].try_into().unwrap())
}

/// One message as read off the socket.
#[derive(Debug)]
pub enum Frame {
    KeepAlive,
    Msg(u8, Vec<u8>),
}

/// A raw TCP peer connection with a read buffer.
pub struct RawPeer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawPeer {
    /// Connects (5 s at most), with Nagle off and writes bounded by [`WRITE_TIMEOUT`].
    pub fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(RawPeer {
            stream,
            buf: Vec::new(),
        })
    }

    /// As [`RawPeer::connect`], from `from` (another loopback address, `127.0.0.x`: a peer
    /// swarmd may ban without banning every other peer of the test, which all come from
    /// 127.0.0.1).
    pub fn connect_from(from: std::net::Ipv4Addr, addr: SocketAddr) -> io::Result<RawPeer> {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        sock.bind(&SocketAddr::from((from, 0)).into())?;
        sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
        let stream: TcpStream = sock.into();
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        Ok(RawPeer {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Half-closes the connection: swarmd reads EOF, and may still write.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Our end's address, as swarmd lists the peer.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream
            .local_addr()
            .expect("a connected socket has a local address")
    }

    /// Reads more bytes into the buffer; `Ok(false)` on timeout, `Err` on EOF/reset.
    fn fill(&mut self, deadline: Instant) -> io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::new(ErrorKind::UnexpectedEof, "closed by swarmd")),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends our handshake ([`handshake`]) and reads swarmd's.
    pub fn handshake(&mut self, ih: &InfoHash, fast: bool, ext: bool) -> io::Result<Handshake> {
        self.send(&handshake(ih, fast, ext))?;
        self.read_handshake(ih, Duration::from_secs(5))
    }

    /// Reads swarmd's handshake (after ours was sent), which must name `ih`.
    pub fn read_handshake(&mut self, ih: &InfoHash, timeout: Duration) -> io::Result<Handshake> {
        let deadline = Instant::now() + timeout;
        while self.buf.len() < Handshake::LEN {
            if !self.fill(deadline)? {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "no handshake from swarmd",
                ));
            }
        }
        let theirs: Vec<u8> = self.buf.drain(..Handshake::LEN).collect();
        let theirs = Handshake::decode(&theirs)
            .map_err(|e| io::Error::other(format!("swarmd's handshake: {e}")))?;
        if theirs.info_hash != *ih {
            return Err(io::Error::other("swarmd answered with another info-hash"));
        }
        Ok(theirs)
    }

    /// The next frame, `Ok(None)` if none arrived within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> io::Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 4 {
                let len = u32_at(&self.buf, 0) as usize;
                if len > MAX_READ_FRAME {
                    return Err(io::Error::other(format!("swarmd sent a {len}-byte frame")));
                }
                if self.buf.len() >= 4 + len {
                    let frame: Vec<u8> = self.buf.drain(..4 + len).collect();
                    return Ok(Some(if len == 0 {
                        Frame::KeepAlive
                    } else {
                        Frame::Msg(frame[4], frame[5..].to_vec())
                    }));
                }
            }
            if !self.fill(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads (and drops) whatever comes until swarmd closes the connection. `Ok(elapsed)` when
    /// it did within `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<Duration, String> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            self.buf.clear();
            match self.fill(deadline) {
                Err(_) => return Ok(start.elapsed()),
                Ok(_) if Instant::now() >= deadline => {
                    return Err(format!("still open after {timeout:?}"))
                }
                Ok(_) => {}
            }
        }
    }

    /// True while swarmd keeps the connection open for `for_` (whatever it sends meanwhile).
    pub fn stays_open(&mut self, for_: Duration) -> bool {
        self.wait_closed(for_).is_err()
    }

    /// Reads like a rate-limited client until swarmd's FIN: at most `chunk` bytes every `every`,
    /// with a keep-alive written before each read (a client still talking, as a leecher's
    /// requests and haves do). Returns the block bytes of the `Piece` frames read (those already
    /// in the buffer included), or the error that ended it early — a reset while data was still
    /// unread, say — with what had been read by then. `timeout` bounds the whole read.
    pub fn read_slowly_to_end(
        &mut self,
        chunk: usize,
        every: Duration,
        timeout: Duration,
    ) -> Result<u64, (u64, io::Error)> {
        let deadline = Instant::now() + timeout;
        let mut raw = std::mem::take(&mut self.buf);
        let mut piece = vec![0u8; chunk];
        let result = loop {
            if Instant::now() >= deadline {
                break Err(io::Error::new(ErrorKind::TimedOut, "no FIN from swarmd"));
            }
            if let Err(e) = self.send(&[0, 0, 0, 0]) {
                break Err(e);
            }
            if let Err(e) = self.stream.set_read_timeout(Some(every)) {
                break Err(e);
            }
            match self.stream.read(&mut piece) {
                Ok(0) => break Ok(()),
                Ok(n) => raw.extend_from_slice(&piece[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => break Err(e),
            }
            std::thread::sleep(every);
        };
        let payload = piece_payload(&raw);
        result.map(|()| payload).map_err(|e| (payload, e))
    }
}

/// The block bytes of the whole `Piece` frames in `raw` (a stream of frames after the
/// handshake; a cut-off last frame does not count).
fn piece_payload(raw: &[u8]) -> u64 {
    let mut at = 0;
    let mut payload = 0;
    while raw.len() >= at + 4 {
        let len = u32_at(raw, at) as usize;
        if raw.len() < at + 4 + len {
            break;
        }
        if len > 9 && raw[at + 4] == PIECE {
            payload += (len - 9) as u64;
        }
        at += 4 + len;
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_have_their_own_peer_ids_and_bits() {
        let ih = InfoHash([7; 20]);
        let (a, b) = (handshake(&ih, true, false), handshake(&ih, false, true));
        let (a, b) = (
            Handshake::decode(&a).unwrap(),
            Handshake::decode(&b).unwrap(),
        );
        assert_ne!(a.peer_id, b.peer_id);
        assert!(a.supports_fast() && !a.supports_extensions());
        assert!(!b.supports_fast() && b.supports_extensions());
        assert_eq!(a.info_hash, ih);
    }

    #[test]
    fn frames() {
        assert_eq!(msg(INTERESTED, &[]), [0, 0, 0, 1, 2]);
        let r = block_msg(REQUEST, 1, 2, 3);
        assert_eq!(r.len(), 17);
        assert_eq!((r[4], u32_at(&r, 5), u32_at(&r, 13)), (REQUEST, 1, 3));
    }
}
