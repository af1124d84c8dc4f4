//! Where the node's datagrams come from and go to: a UDP socket of its own, or a socket shared
//! with other protocols on the same port (swarmd's uTP), whose owner reads every datagram,
//! keeps the KRPC ones (bencoded dictionaries: the first byte is `d`) and hands them over on a
//! bounded channel. The node sends on the shared socket directly (sending needs no owner).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A socket the node shares with the protocols it is demultiplexed from.
pub struct SharedUdp {
    /// For sending, and for the local address.
    pub socket: Arc<UdpSocket>,
    /// The KRPC datagrams the socket's owner received for us, with their sources.
    pub inbox: mpsc::Receiver<(Vec<u8>, SocketAddr)>,
}

pub(crate) enum NodeSocket {
    Own(UdpSocket),
    Shared(SharedUdp),
}

impl NodeSocket {
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            NodeSocket::Own(s) => s.local_addr(),
            NodeSocket::Shared(s) => s.socket.local_addr(),
        }
    }

    /// The next datagram, copied into `buf` (truncated to its length, like `recv_from`).
    pub(crate) async fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            NodeSocket::Own(s) => s.recv_from(buf).await,
            NodeSocket::Shared(s) => match s.inbox.recv().await {
                Some((datagram, from)) => {
                    let n = datagram.len().min(buf.len());
                    buf[..n].copy_from_slice(&datagram[..n]);
                    Ok((n, from))
                }
                // The owner is gone (it restarts with a new inbox, and restarts us with it).
                None => std::future::pending().await,
            },
        }
    }

    pub(crate) async fn send_to(&self, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            NodeSocket::Own(s) => s.send_to(bytes, to).await,
            NodeSocket::Shared(s) => s.socket.send_to(bytes, to).await,
        }
    }
}
