//! The uTP endpoint (`librqbit-utp`) on the shared UDP port: the crate's `Transport` trait,
//! implemented over our socket, so that the crate never owns a socket. It sends on the shared
//! socket directly; it receives what the port's read loop classified as uTP, from a bounded
//! channel (a full channel drops the datagram, as a full socket buffer would: uTP resends).
//!
//! Why a channel and not the socket: one reader per socket. The DHT and uTP share the port, so
//! one loop (`UdpPort`) reads every datagram and hands it to its protocol.
//!
//! Two things the crate leaves to its user, done here:
//! - **SYN resend.** The crate sends one `ST_SYN` per connect and never resends it: a lost SYN,
//!   or one that reached a client whose UDP socket was not up yet, cost the whole connect
//!   timeout (libtorrent's uTP-only seeder, asked right after it started, lost the first SYN of
//!   every test). [`UtpEndpoint::connect`] connects again (a new SYN) after 1 s, 2 s, 4 s …, as
//!   TCP resends its SYN, while the caller's timeout runs.
//! - **Errors that say the connection is gone.** The crate reports a connection closed under
//!   a reader or writer as `ErrorKind::Other` ("socket closed", "socket died"); a TCP socket
//!   says `ConnectionReset` or `BrokenPipe`. The peer's dialler retries the other way (plaintext
//!   after MSE) only when the peer hung up, so transmission, which closes an MSE handshake over
//!   uTP, was never retried in plaintext. [`halves`] makes the crate's errors read as
//!   `ConnectionReset`.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use librqbit_dualstack_sockets::PollSendToVectored;
use librqbit_utp::{
    SocketOpts, UtpSocket, UtpSocketUdp, UtpStream, UtpStreamReadHalf, UtpStreamWriteHalf,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

/// Datagrams waiting for the uTP endpoint: ~6 MiB of full-sized packets at most.
pub const UTP_INBOX: usize = 4096;

/// Where the port's read loop puts the datagrams of one protocol, with their sources.
pub type Inbox = mpsc::Sender<(Vec<u8>, SocketAddr)>;

/// The crate's default environment (clock, random numbers) is public but not exported: name it
/// through the type of the crate's own UDP socket.
trait EnvOf {
    type Env;
}
impl<T, E> EnvOf for UtpSocket<T, E> {
    type Env = E;
}
type DefaultEnv = <UtpSocketUdp as EnvOf>::Env;

/// The uTP endpoint every connection of this process goes through. Cheap to clone.
#[derive(Clone)]
pub struct UtpEndpoint(Arc<UtpSocket<PortLink, DefaultEnv>>);

/// The first SYN resend, as TCP's initial retransmission timeout (RFC 6298); then doubled.
const SYN_RESEND_FIRST: Duration = Duration::from_secs(1);
const SYN_RESEND_MAX: Duration = Duration::from_secs(8);

impl UtpEndpoint {
    /// Connects, sending a new SYN after 1 s, 2 s, 4 s, 8 s, 8 s … without an answer: never
    /// ends on its own unless the crate fails; the caller bounds it with its connect timeout.
    /// An abandoned attempt is withdrawn from the crate (dropping its future does), so a late
    /// answer to it is dropped as one for no connection.
    pub async fn connect(&self, addr: SocketAddr) -> librqbit_utp::Result<UtpStream> {
        let mut wait = SYN_RESEND_FIRST;
        loop {
            if let Ok(done) = tokio::time::timeout(wait, self.0.connect(addr)).await {
                return done;
            }
            tracing::trace!(peer = %addr, "no answer to a uTP SYN; sending another");
            wait = (wait * 2).min(SYN_RESEND_MAX);
        }
    }

    pub async fn accept(&self) -> librqbit_utp::Result<UtpStream> {
        self.0.accept().await
    }
}

/// A uTP stream's halves, their errors turned into `ConnectionReset` (see the module header).
pub fn halves(
    stream: UtpStream,
) -> (
    GoneOnError<UtpStreamReadHalf>,
    GoneOnError<UtpStreamWriteHalf>,
) {
    let (read, write) = stream.split();
    (GoneOnError(read), GoneOnError(write))
}

/// A uTP half whose errors read as the connection gone. The crate's only errors on a live
/// stream's halves are its end (closed, reset, timed out, dispatcher stopped); writing after
/// our own shutdown, the other one, is not something the peer code does.
pub struct GoneOnError<H>(H);

fn gone(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::Other {
        io::Error::new(io::ErrorKind::ConnectionReset, format!("uTP: {e}"))
    } else {
        e
    }
}

impl<H: AsyncRead + Unpin> AsyncRead for GoneOnError<H> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf).map_err(gone)
    }
}

impl<H: AsyncWrite + Unpin> AsyncWrite for GoneOnError<H> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf).map_err(gone)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(gone)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx).map_err(gone)
    }
}

/// uTP's view of the shared port.
pub struct PortLink {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// Only the endpoint's dispatcher task receives; the lock is never contended.
    inbox: Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
}

/// Starts the endpoint's dispatcher on the current runtime; `cancel` stops it and every uTP
/// connection with it; at most `max_connections` exist at once (handshaking or live). Returns
/// the endpoint and the sender the read loop feeds.
pub fn start_endpoint(
    socket: Arc<UdpSocket>,
    max_connections: usize,
    cancel: CancellationToken,
) -> io::Result<(UtpEndpoint, Inbox)> {
    let local = socket.local_addr()?;
    let (tx, rx) = mpsc::channel(UTP_INBOX);
    let link = PortLink {
        socket,
        local,
        inbox: Mutex::new(rx),
    };
    let opts = SocketOpts {
        // Each connection's receive and send buffers are bounded by these (bytes are allocated
        // as data arrives, not up front), and the number of connections by the next.
        max_live_vsocks: NonZeroUsize::new(max_connections.max(1)),
        cancellation_token: cancel,
        // The peer protocol closes on its own terms; waiting for the FIN's ack only keeps a
        // dead connection's slot.
        dont_wait_for_lastack: true,
        ..SocketOpts::default()
    };
    let endpoint = UtpSocket::new_with_opts(link, DefaultEnv::default(), opts)
        .map_err(|e| io::Error::other(format!("uTP endpoint on {local}: {e}")))?;
    Ok((UtpEndpoint(endpoint), tx))
}

impl PollSendToVectored for PortLink {
    fn poll_send_to_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_send_to_vectored(cx, bufs, target)
    }
}

impl librqbit_utp::Transport for PortLink {
    // The trait asks for a `Send + Sync` future, which an `async fn` cannot promise.
    #[allow(clippy::manual_async_fn)]
    fn recv_from<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send + Sync + 'a {
        async move {
            let mut inbox = self.inbox.lock().await;
            match inbox.recv().await {
                Some((datagram, from)) => {
                    let n = datagram.len().min(buf.len());
                    buf[..n].copy_from_slice(&datagram[..n]);
                    Ok((n, from))
                }
                None => Err(io::Error::other("the UDP port's read loop stopped")),
            }
        }
    }

    fn send_to<'a>(
        &'a self,
        buf: &'a [u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send + Sync + 'a {
        self.socket.send_to(buf, target)
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.socket.poll_send_to(cx, buf, target)
    }

    fn bind_addr(&self) -> SocketAddr {
        self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that ignores our first SYN and answers the second: the connect succeeds, over a
    /// resent SYN (the crate alone sends one and waits for its answer forever).
    #[tokio::test]
    async fn an_unanswered_syn_is_sent_again() {
        let ours = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let (endpoint, inbox) = start_endpoint(ours.clone(), 4, cancel.clone()).unwrap();
        // The port's read loop, reduced to uTP.
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = ours.recv_from(&mut buf).await {
                let _ = inbox.send((buf[..n].to_vec(), from)).await;
            }
        });
        let connect = tokio::spawn(async move { endpoint.connect(peer_addr).await.map(|_| ()) });

        let mut syn = [0u8; 2048];
        peer.recv_from(&mut syn).await.unwrap();
        assert_eq!(
            syn[0], 0x41,
            "the first packet is a SYN (type 4, version 1)"
        );
        let resent = tokio::time::timeout(Duration::from_secs(30), peer.recv_from(&mut syn));
        let (_, from) = resent.await.expect("a second SYN").unwrap();
        assert_eq!(syn[0], 0x41, "the second packet is a SYN");
        // ST_STATE (type 2): acknowledges the SYN's sequence number.
        let mut state = [0u8; 20];
        state[0] = 0x21;
        state[2..4].copy_from_slice(&syn[2..4]);
        state[12..16].copy_from_slice(&(1u32 << 20).to_be_bytes());
        state[16..18].copy_from_slice(&1000u16.to_be_bytes());
        state[18..20].copy_from_slice(&syn[16..18]);
        peer.send_to(&state, from).await.unwrap();
        let connected = tokio::time::timeout(Duration::from_secs(30), connect).await;
        connected.expect("connected").unwrap().unwrap();
        cancel.cancel();
    }
}
