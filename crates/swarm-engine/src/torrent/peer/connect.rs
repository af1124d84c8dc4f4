//! Making a peer connection: the transport (dialled in the configured order when outgoing,
//! taken from the listener when incoming), the encryption handshake the policy asks for, and
//! the BitTorrent handshakes. Async functions with no actor state: [`establish`] hands the
//! peer actor a connection ready for frames, or the error of the last attempt.
//!
//! Dialling follows libtorrent's policy: a transport that fails to connect, or that the peer
//! closes before its handshake, is followed by the next; over each, the encryption policy's
//! first choice, then the other way once if the peer hung up on it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use swarm_wire::mse::Policy;
use swarm_wire::peer::Handshake;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::encryption;
use super::transport::{self, Transport, TransportKind};
use crate::torrent::messages::Dial;

/// How an outgoing connection is made: the transports in the configured order, the uTP
/// endpoint (if the UDP port runs one), the encryption policy and the two timeouts. A magnet's
/// metadata connections (`magnet.rs`) dial the same way.
pub(crate) struct Dialer {
    pub(crate) order: Arc<[TransportKind]>,
    pub(crate) utp: Option<crate::services::udp_port::utp_link::UtpEndpoint>,
    pub(crate) policy: Policy,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
}

/// A connection whose handshakes are done.
pub(crate) struct Established {
    pub(crate) transport: Transport,
    pub(crate) kind: TransportKind,
    pub(crate) theirs: Handshake,
    /// Bytes read after the peer's handshake (decrypted).
    pub(crate) leftover: BytesMut,
    /// Bytes we wrote on the connection so far (the writer's stream offset starts there).
    pub(super) sent: u64,
}

/// Whether a failed attempt looks like the peer refusing our way of talking (it closed or reset
/// the connection), rather than the peer being unreachable or slow.
fn peer_hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// Makes the transport (connects, when outgoing), exchanges handshakes over it, and returns
/// it ready for frames, with the bytes of the peer's stream read past its handshake and the
/// count of bytes we wrote (the writer's stream offset starts there). Whatever the
/// transport, the handshake and everything after it are the same.
pub(crate) async fn establish(
    addr: SocketAddr,
    dial: Dial,
    ours: Handshake,
    way: Dialer,
) -> io::Result<Established> {
    match dial {
        Dial::Outgoing { worked } => {
            // libtorrent's policy: a kind that fails to connect, or that the peer closes
            // before its handshake (a client that listens but refuses TCP), is followed by
            // the next. Over each kind, the encryption policy's first choice, then the other
            // way once if the peer hung up on it (a peer that does not speak MSE, or one that
            // requires it).
            let order = transport::dial_order(&way.order, worked);
            let mse_order = way.policy.dial_order();
            let mut last = io::Error::other("no transport to dial with");
            for (i, kind) in order.iter().enumerate() {
                let limit = transport::attempt_timeout(i, order.len(), way.connect_timeout);
                for (j, &mse) in mse_order.iter().enumerate() {
                    match handshake_out(addr, *kind, mse, &ours, &way, limit).await {
                        Ok(est) => return Ok(est),
                        Err(e) => {
                            tracing::trace!(peer = %addr, transport = kind.as_str(), mse, "dial failed: {e}");
                            let retry = j + 1 < mse_order.len() && peer_hung_up(&e);
                            last = e;
                            if !retry {
                                break;
                            }
                        }
                    }
                }
            }
            Err(last)
        }
        Dial::Incoming {
            stream,
            handshake,
            leftover,
            mse,
        } => {
            let (mut t, kind) = stream.into_transport()?;
            let mut sent = 0;
            if let Some(done) = mse {
                t = t.encrypt(done.stream);
                sent = done.sent;
            }
            t.write.write_all(&ours.encode()).await?;
            t.write.flush().await?;
            Ok(Established {
                transport: t,
                kind,
                theirs: handshake,
                leftover,
                sent: sent + Handshake::LEN as u64,
            })
        }
    }
}

/// Connects over `kind` and exchanges handshakes (ours first), with MSE (`mse`) or in
/// plaintext.
async fn handshake_out(
    addr: SocketAddr,
    kind: TransportKind,
    mse: bool,
    ours: &Handshake,
    way: &Dialer,
    limit: Duration,
) -> io::Result<Established> {
    let mut t = transport::connect_via(kind, addr, way.utp.as_ref(), limit).await?;
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "handshake timed out");
    let mut received = BytesMut::new();
    let sent;
    if mse {
        let methods = encryption::dial_methods(way.policy);
        let exchange = encryption::initiate(
            &mut t.read,
            &mut t.write,
            ours.info_hash.0,
            methods,
            ours.encode(),
        );
        let done = tokio::time::timeout(way.handshake_timeout, exchange)
            .await
            .map_err(|_| timed_out())??;
        t = t.encrypt(done.stream);
        received.extend_from_slice(&done.received);
        sent = done.sent;
    } else {
        t.write.write_all(&ours.encode()).await?;
        sent = Handshake::LEN as u64;
    }
    if received.len() < Handshake::LEN {
        let mut rest = vec![0u8; Handshake::LEN - received.len()];
        tokio::time::timeout(way.handshake_timeout, t.read.read_exact(&mut rest))
            .await
            .map_err(|_| timed_out())??;
        received.extend_from_slice(&rest);
    }
    let leftover = received.split_off(Handshake::LEN);
    let theirs =
        Handshake::decode(&received).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if theirs.info_hash != ours.info_hash {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "peer answered with another info-hash",
        ));
    }
    Ok(Established {
        transport: t,
        kind,
        theirs,
        leftover,
        sent,
    })
}
