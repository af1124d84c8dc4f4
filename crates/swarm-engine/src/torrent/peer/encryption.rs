//! MSE/PE on a live connection: the async drivers of `swarm_wire::mse`'s handshake state
//! machines, the RC4 layers that the transport puts over a connection's two halves once RC4 is
//! agreed, and the session's encryption policy.
//!
//! The drivers work on any read half and write half (a TCP connection's, a uTP stream's), so
//! encryption is a layer over whatever transport carries the bytes. They only move bytes: the
//! handshake's decisions are the state machines'; the timeout is the caller's.
//!
//! Both layers cost one pass of RC4 over the bytes and little else (MSE's whole cost is RC4's,
//! see docs/benchmarks.md). [`Rc4Read`] decrypts in place what a read put in the caller's
//! buffer (the frame decoder's). [`Rc4Write`] copies a writer's batch (many frames, one
//! `writev` in plaintext) into one buffer of its own, encrypts it there and writes it with one
//! syscall: the frames it is given are shared `Bytes`, e.g. blocks of the read cache, and cannot
//! be encrypted in place. It reports bytes as written once encrypted: the bytes it holds go out
//! before anything else and on flush/shutdown. Over
//! TCP the writer's upload accounting still counts a block only when the peer acknowledged it
//! (RC4 keeps lengths, so stream offsets are the same as in plaintext).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rand::SeedableRng;
use swarm_wire::mse::{self, Cipher, Established, Initiator, Methods, Policy, Responder, Step};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The session's encryption policy, read by every dial and every accepted connection and changed
/// at run time (`session.set_encryption`). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct PolicyCell(Arc<AtomicU8>);

impl PolicyCell {
    pub fn new(policy: Policy) -> PolicyCell {
        let cell = PolicyCell::default();
        cell.set(policy);
        cell
    }

    pub fn get(&self) -> Policy {
        Policy::ALL
            .get(usize::from(self.0.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or_default()
    }

    pub fn set(&self, policy: Policy) {
        let i = Policy::ALL.iter().position(|p| *p == policy).unwrap_or(1);
        self.0.store(i as u8, Ordering::Relaxed);
    }
}

/// A finished MSE handshake on a connection: the agreed stream, the payload bytes the peer sent
/// already (decrypted), and how many bytes we wrote on the connection during it (the writer's
/// stream offset starts there).
#[derive(Debug)]
pub struct MseDone {
    pub stream: mse::Stream,
    pub received: Vec<u8>,
    pub sent: u64,
}

/// Bytes read per receive while the handshake runs: more than a whole step, so a peer's step
/// comes in one read, and what may come after it is returned as `received`.
const READ_CHUNK: usize = 2048;

fn invalid(e: mse::MseError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("MSE handshake: {e}"))
}

async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    match r.read(buf).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the connection during the MSE handshake",
        )),
        n => Ok(n),
    }
}

/// How much a driver reads while its own write waits (a step of the peer's is smaller).
const MAX_EARLY: usize = 2 * READ_CHUNK;

/// Writes `out` while reading what the peer sends meanwhile into `early` (up to `MAX_EARLY`).
/// Both sides write a step of up to ~600 bytes as soon as they can (Ya PadA, Yb PadB); over a
/// stream that buffers less than that (a small pipe, a tight uTP window), two sides that only
/// write until done and read after would each wait for the other to read.
async fn send<R, W>(r: &mut R, w: &mut W, out: &[u8], early: &mut Vec<u8>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut at = 0;
    let mut buf = [0u8; READ_CHUNK];
    while at < out.len() {
        let room = MAX_EARLY.saturating_sub(early.len()).min(READ_CHUNK);
        tokio::select! {
            n = w.write(&out[at..]) => match n? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => at += n,
            },
            n = read_some(r, &mut buf[..room]), if room > 0 => early.extend_from_slice(&buf[..n?]),
        }
    }
    w.flush().await
}

/// The peer's next bytes: those read during our last write, or a read.
async fn next_input<R: AsyncRead + Unpin>(r: &mut R, early: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    if !early.is_empty() {
        return Ok(std::mem::take(early));
    }
    let mut buf = [0u8; READ_CHUNK];
    let n = read_some(r, &mut buf).await?;
    Ok(buf[..n].to_vec())
}

/// Runs the dialling side (A) over `r`/`w` for the torrent `skey`, offering `methods`, with our
/// BitTorrent handshake as the initial payload.
pub async fn initiate<R, W>(
    r: &mut R,
    w: &mut W,
    skey: [u8; 20],
    methods: Methods,
    handshake: [u8; 68],
) -> io::Result<MseDone>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    crate::fault::maybe_panic("mse.initiate");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut a = Initiator::new(skey, methods.allowed, handshake, &mut rng);
    let mut sent = 0u64;
    let mut early = Vec::new();
    loop {
        let out = a.take_output();
        if !out.is_empty() {
            send(r, w, &out, &mut early).await?;
            sent += out.len() as u64;
        }
        let input = next_input(r, &mut early).await?;
        if let Step::Done(done) = a.receive(&input).map_err(invalid)? {
            return Ok(finish(done, sent));
        }
    }
}

fn finish(done: Established, sent: u64) -> MseDone {
    MseDone {
        stream: done.stream,
        received: done.received,
        sent,
    }
}

/// Runs the accepting side (B) over `r`/`w`, `first` being what was read already (the bytes
/// that told MSE from plaintext). `find` names the torrent whose `HASH('req2', info-hash)` the
/// peer sent, if there is one here. Returns the handshake and the torrent's info-hash.
pub async fn respond<R, W, F, Fut>(
    r: &mut R,
    w: &mut W,
    first: &[u8],
    methods: Methods,
    mut find: F,
) -> io::Result<(MseDone, [u8; 20])>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnMut([u8; 20]) -> Fut,
    Fut: Future<Output = Option<[u8; 20]>>,
{
    crate::fault::maybe_panic("mse.respond");
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut b = Responder::new(methods, &mut rng);
    let mut sent = 0u64;
    let mut early = Vec::new();
    let mut step = b.receive(first, &mut rng).map_err(invalid)?;
    loop {
        if let Step::FindTorrent(req2) = step {
            let found = find(req2).await;
            step = b.torrent_found(found, &mut rng).map_err(invalid)?;
            continue;
        }
        let out = b.take_output();
        if !out.is_empty() {
            send(r, w, &out, &mut early).await?;
            sent += out.len() as u64;
        }
        if let Step::Done(mut done) = step {
            // Payload the peer sent while step 4 went out follows what the machine had.
            if let mse::Stream::Rc4 { recv, .. } = &mut done.stream {
                recv.apply(&mut early);
            }
            done.received.append(&mut early);
            let skey = done.skey;
            return Ok((finish(done, sent), skey));
        }
        let input = next_input(r, &mut early).await?;
        step = b.receive(&input, &mut rng).map_err(invalid)?;
    }
}

/// A read half whose bytes are RC4-decrypted as they arrive.
pub struct Rc4Read<R> {
    inner: R,
    cipher: Cipher,
}

impl<R> Rc4Read<R> {
    pub fn new(inner: R, cipher: Cipher) -> Self {
        Rc4Read { inner, cipher }
    }

    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Rc4Read<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut me.inner).poll_read(cx, buf))?;
        me.cipher.apply(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
    }
}

/// A write half that RC4-encrypts what it is given (see the module header for its buffer).
pub struct Rc4Write<W> {
    inner: W,
    cipher: Cipher,
    /// Encrypted bytes not yet taken by `inner`, from `at`.
    pending: Vec<u8>,
    at: usize,
}

/// How much one write call encrypts at most: a whole batch of the writer (256 KiB, and the
/// block that takes it over), so that it goes out in one syscall as it does in plaintext, and a
/// bound on the buffer.
const MAX_PENDING: usize = 256 * 1024 + 32 * 1024;
/// A drained buffer larger than this is given back on flush (the writer flushes after each
/// batch): a connection that is not uploading holds no batch-sized buffer, many peers or not.
const KEEP_PENDING: usize = 64 * 1024;

impl<W> Rc4Write<W> {
    pub fn new(inner: W, cipher: Cipher) -> Self {
        Rc4Write {
            inner,
            cipher,
            pending: Vec::new(),
            at: 0,
        }
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: AsyncWrite + Unpin> Rc4Write<W> {
    /// Writes out what is pending; ready when nothing is.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.at < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.pending.clear();
        self.at = 0;
        Poll::Ready(Ok(()))
    }

    /// Writes out what is pending, then lets a large buffer go (see `KEEP_PENDING`).
    fn poll_drain_and_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        if self.pending.capacity() > KEEP_PENDING {
            self.pending = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Takes up to `MAX_PENDING` bytes of `bufs`, encrypted, and starts writing them.
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        // Copied (the frames are shared), then encrypted in place in the one buffer.
        self.pending
            .reserve(bufs.iter().map(|b| b.len()).sum::<usize>().min(MAX_PENDING));
        for b in bufs {
            let room = MAX_PENDING - self.pending.len();
            if room == 0 {
                break;
            }
            self.pending.extend_from_slice(&b[..b.len().min(room)]);
        }
        let taken = self.pending.len();
        self.cipher.apply(&mut self.pending);
        // Taken whatever the socket says now: what it does not take goes first next time.
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Rc4Write<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_take(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_take(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain_and_release(cx))?;
        Pin::new(&mut me.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_drain_and_release(cx))?;
        Pin::new(&mut me.inner).poll_shutdown(cx)
    }
}

/// The encryption policy's handshakes, for a connection dialled with MSE.
pub fn dial_methods(policy: Policy) -> Methods {
    // A dial with MSE under `Disable` never happens (`dial_order`); offering both is harmless.
    policy.methods().unwrap_or(Methods {
        allowed: mse::CRYPTO_RC4 | mse::CRYPTO_PLAINTEXT,
        preferred: mse::CRYPTO_PLAINTEXT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both drivers over an in-memory pipe, then RC4 layers on each side's halves: the
    /// handshake ends with the initial payload delivered and frames flowing both ways, however
    /// small the pipe's writes.
    #[tokio::test]
    async fn the_drivers_agree_and_the_layers_carry_bytes_both_ways() {
        let skey = [5u8; 20];
        let (a, b) = tokio::io::duplex(100);
        let (mut ar, mut aw) = tokio::io::split(a);
        let (mut br, mut bw) = tokio::io::split(b);
        let methods = Policy::Require.methods().unwrap();
        let hs = [19u8; 68];
        let dial = tokio::spawn(async move {
            let done = initiate(&mut ar, &mut aw, skey, methods, hs).await.unwrap();
            (done, ar, aw)
        });
        let (done_b, found) = respond(&mut br, &mut bw, &[], methods, |h| async move {
            (h == mse::req2(&skey)).then_some(skey)
        })
        .await
        .unwrap();
        let (done_a, ar, aw) = dial.await.unwrap();
        assert_eq!(found, skey);
        assert_eq!(done_b.received, hs);
        assert!(done_a.sent >= 96 + 40 + 14 + 68);
        let (mse::Stream::Rc4 { send: sa, recv: ra }, mse::Stream::Rc4 { send: sb, recv: rb }) =
            (done_a.stream, done_b.stream)
        else {
            panic!("RC4 expected");
        };
        let (mut ar, mut aw) = (Rc4Read::new(ar, ra), Rc4Write::new(aw, sa));
        let (mut br, mut bw) = (Rc4Read::new(br, rb), Rc4Write::new(bw, sb));
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let expect = big.clone();
        let writer = tokio::spawn(async move {
            let parts = [
                io::IoSlice::new(&big[..1000]),
                io::IoSlice::new(&big[1000..]),
            ];
            let mut n = aw.write_vectored(&parts).await.unwrap();
            aw.write_all(&big[n..]).await.unwrap();
            n = big.len();
            aw.flush().await.unwrap();
            n
        });
        let mut got = vec![0u8; expect.len()];
        br.read_exact(&mut got).await.unwrap();
        assert_eq!(writer.await.unwrap(), expect.len());
        assert!(got == expect, "the bytes arrive decrypted and in order");
        bw.write_all(b"bitfield").await.unwrap();
        bw.flush().await.unwrap();
        let mut small = [0u8; 8];
        ar.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"bitfield");
    }

    /// Both sides write a step at once (Ya PadA against Yb PadB, up to ~600 bytes each) through
    /// a pipe that holds 64 bytes: neither may wait for the other to read first. The pads are
    /// random, so many handshakes; before the drivers read while writing, most hung.
    #[tokio::test]
    async fn handshakes_through_a_small_pipe_do_not_wait_on_each_other() {
        let skey = [9u8; 20];
        let methods = Policy::Require.methods().unwrap();
        for _ in 0..32 {
            let (a, b) = tokio::io::duplex(64);
            let (mut ar, mut aw) = tokio::io::split(a);
            let (mut br, mut bw) = tokio::io::split(b);
            let dial = initiate(&mut ar, &mut aw, skey, methods, [7; 68]);
            let accept = respond(&mut br, &mut bw, &[], methods, |h| async move {
                (h == mse::req2(&skey)).then_some(skey)
            });
            let both = async { tokio::join!(dial, accept) };
            let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(30), both)
                .await
                .expect("the two sides waited on each other");
            a.unwrap();
            assert_eq!(b.unwrap().0.received, [7; 68]);
        }
    }

    #[tokio::test]
    async fn a_peer_that_closes_mid_handshake_is_an_eof() {
        let (a, b) = tokio::io::duplex(4096);
        drop(b);
        let (mut ar, mut aw) = tokio::io::split(a);
        let methods = Policy::Prefer.methods().unwrap();
        let e = initiate(&mut ar, &mut aw, [1; 20], methods, [0; 68])
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
    }

    #[test]
    fn the_policy_cell_keeps_what_is_set() {
        let cell = PolicyCell::new(Policy::Require);
        let other = cell.clone();
        assert_eq!(other.get(), Policy::Require);
        for p in Policy::ALL {
            cell.set(p);
            assert_eq!(other.get(), p);
        }
    }
}
