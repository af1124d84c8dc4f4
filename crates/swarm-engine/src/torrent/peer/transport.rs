//! The peer connection's transport: the byte stream under the BitTorrent frames, as a read half
//! (decoded by `PeerCodec` in the peer actor) and a write half (the `writer` task's).
//!
//! The peer logic sees only [`ReadHalf`] and [`WriteHalf`]. TCP is a variant of its own: its halves are tokio's owned halves (no lock between them, no dynamic
//! dispatch), and its write half lends the socket to the writer's upload accounting
//! (`TCP_INFO`'s acknowledged bytes, see `writer.rs`). Any other stream (a uTP stream) is handed over with [`Transport::boxed`]: split once, one dynamic call
//! per read or write syscall, and blocks count as uploaded once written (there is no socket to
//! ask about acknowledgements).
//!
//! Encryption (MSE, `encryption.rs`) is a layer over the halves, whatever they are: the
//! handshake runs over the plain halves, then [`Transport::encrypt`] puts RC4 over them. Over
//! TCP the encrypted halves are variants of their own too ([`ReadHalf::TcpRc4`]), so an
//! encrypted TCP connection keeps the exact upload accounting; over any other stream the layer
//! is boxed around the boxed half.
//!
//! Connection establishment makes the transport: [`dial`] tries the kinds of [`dial_order`] in
//! turn (TCP, or uTP through the UDP port's endpoint, see `services/udp_port.rs`), and
//! [`Accepted`] is what the listener or the UDP port accepted. The BitTorrent handshake then
//! runs over it, whatever it is.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures::{Stream, StreamExt};
use librqbit_utp::UtpStream;
use swarm_wire::peer::{Message, PeerCodec, WireError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, FramedRead};

use super::encryption::{Rc4Read, Rc4Write};
use swarm_wire::mse;

use crate::services::udp_port::utp_link::UtpEndpoint;

/// The kinds of connection a peer can be reached over (`transports` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    Tcp,
    /// BEP 29, over the UDP port shared with the DHT.
    Utp,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Utp => "utp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(TransportKind::Tcp),
            "utp" => Some(TransportKind::Utp),
            _ => None,
        }
    }
}

/// The order in which to try the kinds for one peer: the one that last worked with it first,
/// then the configured order (libtorrent's policy: remember per peer what connected).
pub fn dial_order(
    configured: &[TransportKind],
    worked: Option<TransportKind>,
) -> Vec<TransportKind> {
    let mut order: Vec<TransportKind> = worked
        .filter(|k| configured.contains(k))
        .into_iter()
        .collect();
    order.extend(configured.iter().copied().filter(|k| Some(*k) != worked));
    order
}

/// How long an attempt may take when another kind is left to try: a peer that does not answer
/// a uTP SYN (it speaks TCP only) or a TCP SYN (NAT) should not cost the full connect timeout
/// twice. libtorrent gives uTP 3 s.
const FALLBACK_AFTER: Duration = Duration::from_secs(5);

/// A connection the listener or the UDP port accepted (its handshake already read).
pub enum Accepted {
    /// A std socket: it is registered with the reactor of the arbiter the peer runs on.
    Tcp(std::net::TcpStream),
    Utp(UtpStream),
}

impl Accepted {
    pub fn into_transport(self) -> io::Result<(Transport, TransportKind)> {
        match self {
            Accepted::Tcp(s) => Ok((Transport::tcp(TcpStream::from_std(s)?)?, TransportKind::Tcp)),
            Accepted::Utp(s) => Ok((Transport::utp(s), TransportKind::Utp)),
        }
    }
}

/// A connection's two halves.
pub struct Transport {
    pub read: ReadHalf,
    pub write: WriteHalf,
    /// RC4 is on (an MSE handshake that agreed on plaintext leaves this false).
    pub encrypted: bool,
}

pub enum ReadHalf {
    Tcp(OwnedReadHalf),
    TcpRc4(Rc4Read<OwnedReadHalf>),
    Boxed(Box<dyn AsyncRead + Send + Unpin>),
}

pub enum WriteHalf {
    Tcp(OwnedWriteHalf),
    TcpRc4(Rc4Write<OwnedWriteHalf>),
    Boxed(Box<dyn AsyncWrite + Send + Unpin>),
}

impl Transport {
    /// A TCP connection (no Nagle: requests and small frames must not wait).
    pub fn tcp(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        Ok(Transport {
            read: ReadHalf::Tcp(read),
            write: WriteHalf::Tcp(write),
            encrypted: false,
        })
    }

    /// Any other byte stream.
    pub fn boxed<S>(stream: S) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Transport {
            read: ReadHalf::Boxed(Box::new(read)),
            write: WriteHalf::Boxed(Box::new(write)),
            encrypted: false,
        }
    }

    /// The payload stream an MSE handshake agreed on, over this transport's halves.
    pub fn encrypt(self, stream: mse::Stream) -> Transport {
        let mse::Stream::Rc4 { send, recv } = stream else {
            return self;
        };
        let read = match self.read {
            ReadHalf::Tcp(r) => ReadHalf::TcpRc4(Rc4Read::new(r, recv)),
            other => ReadHalf::Boxed(Box::new(Rc4Read::new(other, recv))),
        };
        let write = match self.write {
            WriteHalf::Tcp(w) => WriteHalf::TcpRc4(Rc4Write::new(w, send)),
            other => WriteHalf::Boxed(Box::new(Rc4Write::new(other, send))),
        };
        Transport {
            read,
            write,
            encrypted: true,
        }
    }

    /// A uTP connection: its own halves, no lock between them, errors that say the
    /// connection is gone as TCP's do (`utp_link::halves`).
    pub fn utp(stream: UtpStream) -> Self {
        let (read, write) = crate::services::udp_port::utp_link::halves(stream);
        Transport {
            read: ReadHalf::Boxed(Box::new(read)),
            write: WriteHalf::Boxed(Box::new(write)),
            encrypted: false,
        }
    }
}

/// The peer's frames: first the complete ones among the bytes already read past its handshake
/// (`leftover`), then the connection's.
///
/// They are decoded here rather than left in the read buffer because `FramedRead` decodes what
/// it holds only after a read from the connection returned something. An MSE peer's answer
/// (step 4, its handshake and its first frames: extension handshake, bitfield) often comes in
/// one read; left in the buffer, those frames waited for a byte the peer would not send before
/// our `Interested`, which we would not send before its bitfield: both ends stalled, live and
/// silent. A partial frame stays in the buffer: its end has to come from the connection.
pub fn frames<R: AsyncRead>(
    read: R,
    mut leftover: BytesMut,
    mut codec: PeerCodec,
) -> impl Stream<Item = Result<Message, WireError>> {
    let mut first = Vec::new();
    loop {
        match codec.decode(&mut leftover) {
            Ok(Some(msg)) => first.push(Ok(msg)),
            Ok(None) => break,
            Err(e) => {
                // The peer is dropped on it; what follows is never read.
                first.push(Err(e));
                leftover.clear();
                break;
            }
        }
    }
    let mut framed = FramedRead::new(read, codec);
    framed.read_buffer_mut().extend_from_slice(&leftover);
    futures::stream::iter(first).chain(framed)
}

/// Dials `addr` over TCP within `timeout`.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Transport> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    Transport::tcp(stream)
}

/// How long attempt `i` of `n` may take: a short one when another kind is left to try.
pub fn attempt_timeout(i: usize, n: usize, timeout: Duration) -> Duration {
    if i + 1 < n {
        timeout.min(FALLBACK_AFTER)
    } else {
        timeout
    }
}

/// Dials `addr` over `kind` within `limit`. uTP needs the endpoint (`None` while the UDP port
/// restarts, or when uTP is off).
pub async fn connect_via(
    kind: TransportKind,
    addr: SocketAddr,
    utp: Option<&UtpEndpoint>,
    limit: Duration,
) -> io::Result<Transport> {
    match (kind, utp) {
        (TransportKind::Tcp, _) => connect(addr, limit).await,
        (TransportKind::Utp, Some(endpoint)) => connect_utp(endpoint, addr, limit).await,
        (TransportKind::Utp, None) => {
            Err(io::Error::other("no uTP endpoint (the UDP port is down)"))
        }
    }
}

async fn connect_utp(
    endpoint: &UtpEndpoint,
    addr: SocketAddr,
    limit: Duration,
) -> io::Result<Transport> {
    crate::fault::maybe_fail("peer.utp_connect")?;
    let stream = tokio::time::timeout(limit, endpoint.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "uTP connect timed out"))?
        .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, format!("uTP: {e}")))?;
    Ok(Transport::utp(stream))
}

impl WriteHalf {
    /// The TCP socket under this half, for the kernel's view of what the peer acknowledged.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            WriteHalf::Tcp(w) => Some(w.as_ref()),
            WriteHalf::TcpRc4(w) => Some(w.get_ref().as_ref()),
            WriteHalf::Boxed(_) => None,
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::TcpRc4(r) => Pin::new(r).poll_read(cx, buf),
            ReadHalf::Boxed(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::TcpRc4(w) => Pin::new(w).poll_write(cx, buf),
            WriteHalf::Boxed(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            WriteHalf::TcpRc4(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            WriteHalf::Boxed(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Tcp(w) => w.is_write_vectored(),
            WriteHalf::TcpRc4(w) => w.is_write_vectored(),
            WriteHalf::Boxed(w) => w.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::TcpRc4(w) => Pin::new(w).poll_flush(cx),
            WriteHalf::Boxed(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::TcpRc4(w) => Pin::new(w).poll_shutdown(cx),
            WriteHalf::Boxed(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stream that is not TCP carries bytes both ways, and has no socket to ask about
    /// acknowledgements (the writer then counts blocks once written).
    #[tokio::test]
    async fn a_boxed_stream_carries_bytes_both_ways() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let Transport {
            mut read,
            mut write,
            ..
        } = Transport::boxed(ours);
        assert!(write.tcp().is_none());
        write.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        theirs.write_all(b"world").await.unwrap();
        read.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"world");
    }

    /// The first frames of a peer, cut at every position between the bytes read with its
    /// handshake and those the connection still holds, all come out, in order, without a wait:
    /// in particular when the whole of them came with the handshake and the peer then waits
    /// for our answer (the connection stays open and silent), the swarmd↔swarmd stall under
    /// `encryption = "require"`.
    #[test]
    fn frames_read_with_the_handshake_come_out_without_another_read() {
        use futures::FutureExt;
        use tokio_util::codec::Encoder;
        let sent = vec![
            Message::Extended {
                id: 0,
                payload: bytes::Bytes::from_static(b"d1:md6:ut_pexi2eee"),
            },
            Message::HaveAll,
            Message::AllowedFast(59),
            Message::AllowedFast(7),
            Message::Unchoke,
        ];
        let mut wire = BytesMut::new();
        for m in &sent {
            PeerCodec::new(1 << 20)
                .encode(m.clone(), &mut wire)
                .unwrap();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for cut in 0..=wire.len() {
            rt.block_on(async {
                let (ours, mut theirs) = tokio::io::duplex(4096);
                theirs.write_all(&wire[cut..]).await.unwrap();
                let leftover = BytesMut::from(&wire[..cut]);
                let mut stream = Box::pin(frames(ours, leftover, PeerCodec::new(1 << 20)));
                for (i, want) in sent.iter().enumerate() {
                    let got = stream.next().now_or_never();
                    assert_eq!(
                        got,
                        Some(Some(Ok(want.clone()))),
                        "frame {i} with the first {cut} bytes read with the handshake"
                    );
                }
                drop(theirs);
            });
        }
    }

    /// A bad frame among the bytes read with the handshake is an error, the peer's last item.
    #[test]
    fn a_bad_frame_read_with_the_handshake_is_an_error() {
        use futures::FutureExt;
        let (ours, _theirs) = tokio::io::duplex(64);
        let leftover = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 7][..]);
        let mut stream = Box::pin(frames(ours, leftover, PeerCodec::new(1 << 20)));
        assert!(matches!(stream.next().now_or_never(), Some(Some(Err(_)))));
    }

    #[test]
    fn the_transport_that_worked_goes_first_then_the_configured_order() {
        use TransportKind::{Tcp, Utp};
        assert_eq!(dial_order(&[Tcp, Utp], None), vec![Tcp, Utp]);
        assert_eq!(dial_order(&[Tcp, Utp], Some(Utp)), vec![Utp, Tcp]);
        assert_eq!(dial_order(&[Utp, Tcp], Some(Utp)), vec![Utp, Tcp]);
        // A transport no longer configured is not tried, even if it worked before.
        assert_eq!(dial_order(&[Tcp], Some(Utp)), vec![Tcp]);
    }

    #[test]
    fn only_the_last_attempt_gets_the_whole_timeout() {
        let t = Duration::from_secs(10);
        assert_eq!(attempt_timeout(0, 2, t), FALLBACK_AFTER);
        assert_eq!(attempt_timeout(1, 2, t), t);
        assert_eq!(attempt_timeout(0, 1, t), t);
    }

    #[tokio::test]
    async fn tcp_lends_its_socket_to_the_upload_count() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let t = connect(at, Duration::from_secs(5)).await.unwrap();
        let _peer = accept.await.unwrap().unwrap();
        assert!(t.write.tcp().is_some());
    }
}
