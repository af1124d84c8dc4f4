//! The uTP endpoint (`librqbit-utp`) on the shared UDP port: the crate's `Transport` trait,
//! implemented over our socket, so that the crate never owns a socket. It sends on the shared
//! socket directly; it receives what the port's read loop classified as uTP, from a bounded
//! channel (a full channel drops the datagram, as a full socket buffer would: uTP resends).
//!
//! Why a channel and not the socket: one reader per socket. The DHT and uTP share the port, so
//! one loop (`UdpPort`) reads every datagram and hands it to its protocol.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::task::{Context, Poll};

use librqbit_dualstack_sockets::PollSendToVectored;
use librqbit_utp::{SocketOpts, UtpSocket, UtpSocketUdp, UtpStream};
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

impl UtpEndpoint {
    pub async fn connect(&self, addr: SocketAddr) -> librqbit_utp::Result<UtpStream> {
        self.0.connect(addr).await
    }

    pub async fn accept(&self) -> librqbit_utp::Result<UtpStream> {
        self.0.accept().await
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
