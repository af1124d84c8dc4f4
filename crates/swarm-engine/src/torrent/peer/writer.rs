//! The peer connection's write side: frames queued by the peer actor, a writer task that sends
//! them with vectored writes, and the count of uploaded bytes.
//!
//! Frames go through an unbounded channel but are counted (`Writer::queued`), and the actor
//! stops producing (uploads wait) when the count is over its bound: actix's FramedWrite has no
//! such bound (ARCHITECTURE §7). The task is spawned in the actor's context, so it ends with
//! the actor, crash included.
//!
//! **Upload accounting.** A block counts as uploaded when the peer's TCP has acknowledged its
//! last byte (`tcpi_bytes_acked`), not when we queued it, nor when the kernel took it: a
//! leecher that goes away leaves our queues unsent, a crash drops them, and a socket closed
//! with unread input is reset, discarding the kernel's send queue (measured: a slow leecher we
//! left in the middle had ~480 KiB less than what had been written to the kernel). Counting
//! acknowledgements makes the ratio what the peer received, whatever way the connection ends.
//! The count goes straight into the torrent's shared counters (`TorrentShared::transferred`),
//! so nothing is lost between two reports of the actor.
//!
//! **Closing.** When we end a connection, the socket stays open a few seconds after the actor is
//! gone: our FIN follows the data, what is in flight is acknowledged and counted, and the socket
//! is closed only once the peer has closed its side too. Acknowledged is not read: a slow reader
//! (a rate-limited leecher) has our data in its kernel's receive buffer, and closing our socket
//! with the peer's unread requests in ours would send a reset, which throws that buffer away on
//! the peer's side (measured: ~160 KiB counted that a 1 MiB/s leecher never got). A peer reads
//! up to our FIN before it closes, so by then it has everything we counted.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use swarm_wire::peer::{encode_piece_header, Message, PeerCodec};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::codec::Encoder;

use super::transport::WriteHalf;
use crate::torrent::shared::TorrentShared;

/// Handle to the writer task, held by the peer actor.
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Frame>,
    queued: Arc<AtomicUsize>,
    codec: PeerCodec,
    buf: BytesMut,
}

/// One piece of what goes on the wire, and how many block bytes it carries (uploaded payload).
pub(super) struct Frame {
    bytes: Bytes,
    payload: u32,
}

/// What a queued frame costs beyond its bytes (its allocation, its slot in the channel). Counted
/// in `Writer::queued`, so that a queue of tiny frames (a Reject is 17 bytes) is bounded in
/// memory and not only in bytes.
pub(super) const FRAME_OVERHEAD: usize = 64;

/// Frames gathered into one `writev`: at most this many…
const WRITE_BATCH_FRAMES: usize = 64;
/// …or about this many bytes (the last frame may take it over).
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// While blocks wait for their acknowledgement and nothing is written, the count is brought up
/// to date this often (for `show` and the choker; the last of it is counted at the end anyway).
const ACK_POLL: Duration = Duration::from_secs(1);
/// How long a connection we end waits for the peer to acknowledge what is in flight and close
/// its side: a slow reader can have our whole send buffer (MiBs on a fast link) and its own
/// receive buffer to take at its own rate (a 1 MiB/s leecher left in the middle needed ~4 s on
/// loopback). One descriptor and one sleeping task per connection meanwhile.
const LINGER: Duration = Duration::from_secs(15);

impl Writer {
    /// Starts the writer task on `write` (in `ctx`, so it ends with the actor). `handed` is what
    /// was written on the socket before (the handshake). `drained` is told whenever the queue
    /// was written out.
    pub(super) fn start<A>(
        ctx: &mut Context<A>,
        write: WriteHalf,
        handed: u64,
        shared: Arc<TorrentShared>,
        drained: Recipient<Drained>,
        max_frame: u32,
        on_error: impl FnOnce(&mut A, &mut Context<A>, io::Error) + 'static,
    ) -> Writer
    where
        A: Actor<Context = Context<A>>,
    {
        let queued = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let count = UploadCount {
            write: Some(write),
            shared,
            ledger: Ledger {
                handed,
                unacked: VecDeque::new(),
            },
        };
        let task = actix::fut::wrap_future::<_, A>(write_loop(count, rx, queued.clone(), drained));
        ctx.spawn(task.map(move |res, act, ctx| {
            if let Err(e) = res {
                on_error(act, ctx, e);
            }
        }));
        Writer {
            tx,
            queued,
            codec: PeerCodec::new(max_frame),
            buf: BytesMut::new(),
        }
    }

    pub(super) fn send(&mut self, msg: Message) {
        if self.codec.encode(msg, &mut self.buf).is_ok() {
            let frame = self.buf.split().freeze();
            self.queue(frame, 0);
        }
    }

    /// A `Piece` frame as two parts, its 13-byte header and the block itself, so the block goes
    /// from the read cache to the socket without being copied (the write loop sends both in one
    /// `writev`).
    pub(super) fn send_piece(&mut self, index: u32, begin: u32, data: Bytes) {
        let Ok(len) = u32::try_from(data.len()) else {
            return;
        };
        self.buf
            .extend_from_slice(&encode_piece_header(index, begin, len));
        let header = self.buf.split().freeze();
        self.queue(header, 0);
        self.queue(data, len);
    }

    fn queue(&mut self, bytes: Bytes, payload: u32) {
        self.queued
            .fetch_add(bytes.len() + FRAME_OVERHEAD, Ordering::Relaxed);
        let _ = self.tx.send(Frame { bytes, payload });
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// The writer task told the actor that the socket took what was queued: time to upload more.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct Drained;

async fn write_loop(
    mut count: UploadCount,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    queued: Arc<AtomicUsize>,
    drained: Recipient<Drained>,
) -> io::Result<()> {
    let mut batch: VecDeque<Frame> = VecDeque::with_capacity(WRITE_BATCH_FRAMES);
    loop {
        let frame = if count.ledger.unacked.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(ACK_POLL, rx.recv()).await {
                Ok(frame) => frame,
                Err(_) => {
                    count.sync();
                    continue;
                }
            }
        };
        let Some(frame) = frame else { break };
        // Take what is already queued too: one syscall for many small frames, and a block goes
        // out with its header without being copied next to it.
        let mut bytes = frame.bytes.len();
        batch.push_back(frame);
        while batch.len() < WRITE_BATCH_FRAMES && bytes < WRITE_BATCH_BYTES {
            let Ok(frame) = rx.try_recv() else { break };
            bytes += frame.bytes.len();
            batch.push_back(frame);
        }
        let n = bytes + batch.len() * FRAME_OVERHEAD;
        let Some(write) = count.write.as_mut() else {
            break;
        };
        let shared = &count.shared;
        // A peer that does not read blocks the write; what it acknowledged meanwhile counts.
        let stalled = |w: &WriteHalf, ledger: &mut Ledger| {
            count_acknowledged(w.tcp().and_then(tcp_state), ledger, shared);
        };
        write_all_frames(write, &mut batch, &mut count.ledger, stalled).await?;
        count.sync();
        queued.fetch_sub(n, Ordering::Relaxed);
        drained.do_send(Drained);
    }
    Ok(())
}

/// What was written on a connection: its stream offset, and the blocks not yet acknowledged as
/// (offset of the block's last byte + 1, length).
#[derive(Debug, Default)]
pub(super) struct Ledger {
    handed: u64,
    unacked: VecDeque<(u64, u32)>,
}

impl Ledger {
    /// Takes the blocks acknowledged up to stream offset `acked`; returns their bytes.
    fn acknowledged(&mut self, acked: u64) -> u64 {
        let mut n = 0;
        while let Some(&(end, len)) = self.unacked.front() {
            if end > acked {
                break;
            }
            n += u64::from(len);
            self.unacked.pop_front();
        }
        n
    }
}

/// The socket's write half and its ledger; counts acknowledged blocks into the torrent's
/// counters, and on drop lingers for the rest (see the module header).
struct UploadCount {
    write: Option<WriteHalf>,
    shared: Arc<TorrentShared>,
    ledger: Ledger,
}

impl UploadCount {
    /// Counts the blocks acknowledged so far. Where the kernel does not say (a transport that is
    /// not TCP, an old kernel), a block counts once written.
    fn sync(&mut self) -> Option<TcpState> {
        let state = self
            .write
            .as_ref()
            .and_then(|w| w.tcp())
            .and_then(tcp_state);
        count_acknowledged(state, &mut self.ledger, &self.shared);
        state
    }

    /// Whether the socket can be closed without losing anything the peer was counted for:
    /// everything acknowledged and the peer done reading (it closed its side), or nothing more
    /// to hope for (reset, or a transport whose kernel does not say).
    fn settled(&self, state: Option<TcpState>) -> bool {
        match state {
            None => true,
            Some(s) => s.closed || (self.ledger.unacked.is_empty() && s.peer_closed),
        }
    }
}

/// Counts into the torrent's counters the blocks of `ledger` that `state` says are acknowledged
/// (all of them when the kernel does not say).
fn count_acknowledged(state: Option<TcpState>, ledger: &mut Ledger, shared: &TorrentShared) {
    let n = ledger.acknowledged(state.map_or(u64::MAX, |s| s.bytes_acked));
    if n > 0 {
        shared.transferred.add_uploaded(n);
    }
}

impl Drop for UploadCount {
    fn drop(&mut self) {
        let state = self.sync();
        if self.settled(state) {
            return;
        }
        // Blocks in flight, or a peer still reading: let it acknowledge and read them, a few
        // seconds at most, off the actor (this drop may be a crash's unwinding). Without a
        // runtime (the process is ending) they are not counted.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut rest = UploadCount {
            write: self.write.take(),
            shared: self.shared.clone(),
            ledger: std::mem::take(&mut self.ledger),
        };
        rt.spawn(async move {
            let deadline = tokio::time::Instant::now() + LINGER;
            if let Some(w) = rest.write.as_mut() {
                // Bounded too: an encrypted stream flushes its buffer first, into a peer that
                // may not read.
                let _ = tokio::time::timeout_at(deadline, w.shutdown()).await;
            }
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let state = rest.sync();
                if rest.settled(state) {
                    break;
                }
            }
            // What is still unacknowledged now is not counted, and the socket closes now: a
            // peer that never closes its side (gone behind a NAT, or hung) would otherwise keep
            // it, since the drop of an unsettled count lingers again — for ever (found by the
            // churn soak: one descriptor per such peer, and a task waking ten times a second).
            rest.ledger.unacked.clear();
            drop(rest.write.take());
        });
    }
}

#[derive(Clone, Copy, Debug)]
struct TcpState {
    bytes_acked: u64,
    /// Reset or fully closed: nothing more will be acknowledged.
    closed: bool,
    /// The peer's FIN has come: it read up to ours, or it is gone.
    peer_closed: bool,
}

/// The socket's acknowledged byte count and whether it is closed, from `TCP_INFO`.
fn tcp_state(sock: &tokio::net::TcpStream) -> Option<TcpState> {
    // SAFETY: `tcp_info` is plain old data (all integers), valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the fd is this connection's open socket (borrowed for the call), and the kernel
    // writes at most `len` bytes to `info`.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    // Kernels before 4.2 have no `tcpi_bytes_acked`: too short an answer means "don't know".
    let needed = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    if rc != 0 || (len as usize) < needed {
        return None;
    }
    // include/net/tcp_states.h
    const TCP_TIME_WAIT: u8 = 6;
    const TCP_CLOSE: u8 = 7;
    const TCP_CLOSE_WAIT: u8 = 8;
    const TCP_LAST_ACK: u8 = 9;
    const TCP_CLOSING: u8 = 11;
    let state = info.tcpi_state;
    Some(TcpState {
        bytes_acked: info.tcpi_bytes_acked,
        closed: state == TCP_CLOSE,
        peer_closed: matches!(
            state,
            TCP_TIME_WAIT | TCP_CLOSE | TCP_CLOSE_WAIT | TCP_LAST_ACK | TCP_CLOSING
        ),
    })
}

/// Writes every frame of `frames`, in order, with vectored writes; empties it. The ledger's
/// offset follows every byte written, and each block is entered as its last byte is written.
/// While a write waits (the peer does not read), `stalled` is called every `ACK_POLL`.
async fn write_all_frames<W: tokio::io::AsyncWrite + Unpin>(
    out: &mut W,
    frames: &mut VecDeque<Frame>,
    ledger: &mut Ledger,
    mut stalled: impl FnMut(&W, &mut Ledger),
) -> io::Result<()> {
    use bytes::Buf;
    loop {
        // Empty frames leave the queue.
        while frames.front().is_some_and(|f| f.bytes.is_empty()) {
            frames.pop_front();
        }
        if frames.is_empty() {
            // A layer that buffers (RC4 encrypts into a buffer of its own) sends the rest now; on
            // plain TCP this is free.
            return out.flush().await;
        }
        let mut slices = [io::IoSlice::new(&[]); WRITE_BATCH_FRAMES];
        let mut used = 0;
        for (slot, frame) in slices.iter_mut().zip(frames.iter()) {
            *slot = io::IoSlice::new(&frame.bytes);
            used += 1;
        }
        // A write that has not started is dropped and begun again: nothing was taken.
        let mut n = loop {
            match tokio::time::timeout(ACK_POLL, out.write_vectored(&slices[..used])).await {
                Ok(written) => break written?,
                Err(_) => stalled(out, ledger),
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(front) = frames.front_mut() else {
                break;
            };
            let step = n.min(front.bytes.len());
            front.bytes.advance(step);
            ledger.handed += step as u64;
            n -= step;
            if front.bytes.is_empty() {
                if front.payload > 0 {
                    ledger.unacked.push_back((ledger.handed, front.payload));
                }
                frames.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_wire::peer::{BLOCK_SIZE, PIECE_HEADER_LEN};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::Decoder;

    /// Frames of every size, written through a pipe that takes at most 1 000 bytes at a time (so
    /// most writes are partial and stop inside a frame), arrive whole and in order; every block
    /// is in the ledger at the offset of its end.
    #[tokio::test]
    async fn vectored_writes_deliver_every_frame_in_order() {
        let frames: Vec<Bytes> = (0..500u32)
            .map(|i| {
                let len = [0, 1, 13, 999, 1000, 1001, 16 * 1024, 40_000][(i % 8) as usize];
                Bytes::from((0..len).map(|b| (b as u32 ^ i) as u8).collect::<Vec<u8>>())
            })
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let (mut tx, mut rx) = tokio::io::duplex(1000);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).await.map(|_| got)
        });
        let mut queue = VecDeque::new();
        let mut ledger = Ledger::default();
        for chunk in frames.chunks(WRITE_BATCH_FRAMES + 3) {
            queue.extend(chunk.iter().map(|f| Frame {
                bytes: f.clone(),
                payload: f.len() as u32,
            }));
            write_all_frames(&mut tx, &mut queue, &mut ledger, |_, _| {})
                .await
                .unwrap();
            assert!(queue.is_empty());
        }
        drop(tx);
        let got = reader.await.unwrap().unwrap();
        assert!(
            got == expected,
            "{} bytes received, {} sent",
            got.len(),
            expected.len()
        );
        assert_eq!(ledger.handed, expected.len() as u64);
        assert_eq!(ledger.unacked.back().map(|b| b.0), Some(ledger.handed));
        assert_eq!(ledger.acknowledged(u64::MAX), expected.len() as u64);
    }

    /// The same through the RC4 layers, frames of every size from 0 to 40 bytes and blocks
    /// among them: a batch is encrypted into the layer's buffer and goes out in pieces (the pipe
    /// takes 1 000 bytes at a time), the reader decrypts in place whatever its reads return,
    /// and the bytes arrive as sent. The ledger's offsets are the plaintext ones (RC4 keeps
    /// lengths): each block's entry is the offset of its last byte on the wire.
    #[tokio::test]
    async fn frames_of_every_size_cross_the_rc4_layers_with_the_ledger_right() {
        use super::super::encryption::{Rc4Read, Rc4Write};
        use swarm_wire::mse::Cipher;
        let sizes = (0..=40).chain([16 * 1024, 13, 16 * 1024 + 1, 300 * 1024, 7]);
        let frames: Vec<Bytes> = sizes
            .enumerate()
            .map(|(i, len)| Bytes::from((0..len).map(|b| (b + i) as u8).collect::<Vec<u8>>()))
            .collect();
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let (tx, rx) = tokio::io::duplex(1000);
        let mut tx = Rc4Write::new(tx, Cipher::new([3; 20]));
        let mut rx = Rc4Read::new(rx, Cipher::new([3; 20]));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 777];
            loop {
                match rx.read(&mut buf).await? {
                    0 => return io::Result::Ok(got),
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let mut queue = VecDeque::new();
        let mut ledger = Ledger {
            handed: 68,
            unacked: VecDeque::new(),
        };
        let mut ends = Vec::new();
        let mut at = 68u64;
        for chunk in frames.chunks(7) {
            for f in chunk {
                at += f.len() as u64;
                if f.len() > 1000 {
                    ends.push(at);
                }
                queue.push_back(Frame {
                    bytes: f.clone(),
                    payload: if f.len() > 1000 { f.len() as u32 } else { 0 },
                });
            }
            write_all_frames(&mut tx, &mut queue, &mut ledger, |_, _| {})
                .await
                .unwrap();
        }
        tx.shutdown().await.unwrap();
        let got = reader.await.unwrap().unwrap();
        assert!(
            got == expected,
            "{} bytes received, {} sent",
            got.len(),
            expected.len()
        );
        assert_eq!(ledger.handed, 68 + expected.len() as u64);
        let entered: Vec<u64> = ledger.unacked.iter().map(|b| b.0).collect();
        assert_eq!(entered, ends);
    }

    /// Blocks count only once the offset of their last byte is acknowledged: a peer that got
    /// half a block did not get the block.
    #[test]
    fn blocks_count_when_their_last_byte_is_acknowledged() {
        let mut ledger = Ledger {
            handed: 68 + 3 * 16_397,
            unacked: [1, 2, 3]
                .into_iter()
                .map(|i| (68 + i * 16_397, 16_384))
                .collect(),
        };
        assert_eq!(ledger.acknowledged(68), 0);
        assert_eq!(ledger.acknowledged(68 + 16_397 + 10_000), 16_384);
        assert_eq!(ledger.acknowledged(68 + 2 * 16_397), 16_384);
        assert_eq!(ledger.acknowledged(68 + 3 * 16_397 - 1), 0);
        assert_eq!(ledger.unacked.len(), 1);
    }

    /// A piece goes out as its header and the block itself, the block not copied.
    #[test]
    fn a_piece_is_queued_as_header_and_the_block_itself() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut w = Writer {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            codec: PeerCodec::default(),
            buf: BytesMut::new(),
        };
        let block = Bytes::from(vec![7u8; BLOCK_SIZE as usize]);
        w.send_piece(3, BLOCK_SIZE, block.clone());
        let header = rx.try_recv().unwrap();
        let data = rx.try_recv().unwrap();
        assert_eq!((header.payload, data.payload), (0, BLOCK_SIZE));
        let (header, data) = (header.bytes, data.bytes);
        assert_eq!(header.len(), PIECE_HEADER_LEN);
        assert_eq!(
            data.as_ptr(),
            block.as_ptr(),
            "the block must not be copied"
        );
        let mut wire = BytesMut::from(&header[..]);
        wire.extend_from_slice(&data);
        let msg = PeerCodec::default().decode(&mut wire).unwrap();
        assert_eq!(
            msg,
            Some(Message::Piece {
                index: 3,
                begin: BLOCK_SIZE,
                data: block,
            })
        );
        assert_eq!(
            w.queued(),
            PIECE_HEADER_LEN + BLOCK_SIZE as usize + 2 * FRAME_OVERHEAD
        );
    }
}
