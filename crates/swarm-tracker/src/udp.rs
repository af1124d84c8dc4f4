//! UDP trackers (BEP 15), async on tokio.
//!
//! One [`UdpTrackerClient`] owns one socket for every UDP tracker of the process: a tracker sees a
//! stable source port, and we need one file descriptor, not one per tracker. A small demux task
//! reads that socket and hands each reply to the request waiting for its transaction id, provided it
//! comes from the address the request went to; everything else (late replies, strangers, runts) is
//! dropped.
//!
//! Connection ids are cached per tracker address for [`UdpConfig::connection_ttl`] (BEP 15: a
//! client may use one for a minute), so a second announce within that time skips the connect round
//! trip. A tracker that answers with an error forgets its id, in case the error is about the id.
//!
//! Retransmission follows BEP 15 (wait `base · 2ⁿ`, then resend), with the base and the number of
//! retries configurable; see [`UdpConfig`] for the defaults and why. Each retransmission is a new
//! request with a new transaction id, and reconnects first if the connection id has expired in the
//! meantime.
//!
//! Cancellation-safe: dropping an `announce` future unregisters its transaction id.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use swarm_wire::InfoHash;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::compact::Family;
use crate::types::{AnnounceRequest, AnnounceResponse, ReplyProblem, ScrapeResponse, TrackerError};
use crate::udp_packet::{
    self as packet, Reply, ACTION_ANNOUNCE, ACTION_CONNECT, ACTION_SCRAPE, MAX_SCRAPE_HASHES,
};

/// Timing of the UDP exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Wait before the first retransmission; attempt `n` waits `base_timeout · 2ⁿ` (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// Retransmissions after the first try. BEP 15 allows up to 8 (over an hour in total); the
    /// default of 2 gives up after 15 + 30 + 60 s, because the tier list then tries the next
    /// tracker, which helps the user more than waiting an hour on a dead one.
    pub max_retries: u32,
    /// How long a connection id is reused (BEP 15: one minute).
    pub connection_ttl: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            base_timeout: Duration::from_secs(15),
            max_retries: 2,
            connection_ttl: Duration::from_secs(60),
        }
    }
}

/// A reply datagram is at most 64 KiB; this is the largest buffer we ever read into.
const MAX_DATAGRAM: usize = 65_536;

/// BEP 15 stops doubling the wait after n = 8.
const MAX_BACKOFF_EXPONENT: u32 = 8;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every critical section is one call.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Someone waiting for the reply with a given transaction id.
struct Waiter {
    from: SocketAddr,
    reply: oneshot::Sender<Vec<u8>>,
}

/// What the demux task shares with the requests.
struct Shared {
    socket: UdpSocket,
    waiting: Mutex<HashMap<u32, Waiter>>,
}

struct Inner {
    shared: Arc<Shared>,
    config: UdpConfig,
    /// Tracker address → (connection id, when it was received).
    connections: Mutex<HashMap<SocketAddr, (u64, Instant)>>,
    demux: AbortHandle,
    local: SocketAddr,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.demux.abort();
    }
}

/// A BEP 15 client; cheap to clone (clones share the socket). Must be created inside a tokio
/// runtime. The socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct UdpTrackerClient {
    inner: Arc<Inner>,
}

/// Removes a transaction id from the waiting map when the request ends, however it ends.
struct Registration<'a> {
    shared: &'a Shared,
    txid: u32,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.shared.waiting).remove(&self.txid);
    }
}

/// Addresses as the demux compares them: an IPv4 peer seen through a dual-stack IPv6 socket is
/// the IPv4 address it really is.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

fn family_of(addr: SocketAddr) -> Family {
    match addr {
        SocketAddr::V4(_) => Family::V4,
        SocketAddr::V6(_) => Family::V6,
    }
}

/// Host and port of a `udp://host:port[/path]` URL. The path (BEP 41 URL data) is not sent.
fn host_port(url: &str) -> Result<(&str, u16), TrackerError> {
    let bad = |why: &str| TrackerError::unsupported(url, why);
    let rest = match url.get(..6) {
        Some(scheme) if scheme.eq_ignore_ascii_case("udp://") => &url[6..],
        _ => return Err(bad("not a udp:// URL")),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed `[` in host"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = port.ok_or_else(|| bad("no port"))?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| bad("bad port"))?;
    if host.is_empty() || host.contains('@') {
        return Err(bad("bad host"));
    }
    Ok((host, port))
}

async fn demux(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match shared.socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let datagram = buf.get(..n).unwrap_or(&[]);
                let Some(txid) = packet::transaction_id(datagram) else {
                    continue;
                };
                let from = canonical(from);
                let waiter = {
                    let mut waiting = lock(&shared.waiting);
                    match waiting.get(&txid) {
                        Some(w) if w.from == from => waiting.remove(&txid),
                        _ => None,
                    }
                };
                if let Some(w) = waiter {
                    // The requester may have given up meanwhile; nothing to do then.
                    let _ = w.reply.send(datagram.to_vec());
                }
            }
            Err(e) => {
                // Errors here are transient (ENOBUFS, a stray ICMP report); pausing keeps a
                // persistent one from spinning a core.
                tracing::debug!("udp tracker socket: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl UdpTrackerClient {
    /// Binds the shared socket (e.g. `0.0.0.0:0`, or `[::]:0` for IPv4 and IPv6 trackers alike)
    /// with the default [`UdpConfig`].
    pub async fn new(bind: SocketAddr) -> io::Result<Self> {
        Self::with_config(bind, UdpConfig::default()).await
    }

    pub async fn with_config(bind: SocketAddr, config: UdpConfig) -> io::Result<Self> {
        let socket = UdpSocket::bind(bind).await?;
        let local = socket.local_addr()?;
        let shared = Arc::new(Shared {
            socket,
            waiting: Mutex::new(HashMap::new()),
        });
        let demux = tokio::spawn(demux(Arc::clone(&shared))).abort_handle();
        Ok(UdpTrackerClient {
            inner: Arc::new(Inner {
                shared,
                config,
                connections: Mutex::new(HashMap::new()),
                demux,
                local,
            }),
        })
    }

    /// The address the shared socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn config(&self) -> UdpConfig {
        self.inner.config
    }

    /// Announces to a `udp://host:port` tracker.
    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let tracker = self.resolve(url).await?;
        let reply = self
            .request(url, tracker, ACTION_ANNOUNCE, |conn, txid| {
                packet::announce_request(conn, txid, req)
            })
            .await?;
        match reply {
            Reply::Announce(a) => Ok(a),
            other => Err(TrackerError::bad(url, format!("unexpected {other:?}"))),
        }
    }

    /// Scrapes a `udp://` tracker; more than [`MAX_SCRAPE_HASHES`] hashes take several requests.
    pub async fn scrape(
        &self,
        url: &str,
        hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        let tracker = self.resolve(url).await?;
        let mut files = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(MAX_SCRAPE_HASHES) {
            let reply = self
                .request(url, tracker, ACTION_SCRAPE, |conn, txid| {
                    packet::scrape_request(conn, txid, chunk)
                })
                .await?;
            let Reply::Scrape(stats) = reply else {
                return Err(TrackerError::bad(url, "unexpected reply to a scrape"));
            };
            if stats.len() < chunk.len() {
                return Err(TrackerError::bad(
                    url,
                    format!(
                        "scrape reply has {} entries for {}",
                        stats.len(),
                        chunk.len()
                    ),
                ));
            }
            files.extend(chunk.iter().copied().zip(stats));
        }
        Ok(ScrapeResponse { files })
    }

    /// The tracker's address, in the form the socket can reach: IPv4-mapped on an IPv6 socket.
    async fn resolve(&self, url: &str) -> Result<SocketAddr, TrackerError> {
        let (host, port) = host_port(url)?;
        let v6_socket = self.inner.local.is_ipv6();
        let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                let lookup = tokio::net::lookup_host((host, port));
                match tokio::time::timeout(self.inner.config.base_timeout, lookup).await {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(e)) => return Err(TrackerError::io(url, e)),
                    Err(_) => {
                        return Err(TrackerError::Timeout {
                            url: url.to_owned(),
                            after: self.inner.config.base_timeout,
                        })
                    }
                }
            }
        };
        candidates
            .into_iter()
            .map(canonical)
            .find(|a| v6_socket || a.is_ipv4())
            .ok_or_else(|| {
                TrackerError::io(
                    url,
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} has no address reachable from {}", self.inner.local),
                    ),
                )
            })
    }

    fn cached_connection(&self, tracker: SocketAddr) -> Option<u64> {
        let connections = lock(&self.inner.connections);
        let &(id, at) = connections.get(&tracker)?;
        (at.elapsed() < self.inner.config.connection_ttl).then_some(id)
    }

    fn remember_connection(&self, tracker: SocketAddr, id: u64) {
        let ttl = self.inner.config.connection_ttl;
        let mut connections = lock(&self.inner.connections);
        connections.retain(|_, (_, at)| at.elapsed() < ttl);
        connections.insert(tracker, (id, Instant::now()));
    }

    fn forget_connection(&self, tracker: SocketAddr) {
        lock(&self.inner.connections).remove(&tracker);
    }

    /// Sends one datagram built by `build(txid)` and waits up to `timeout` for its reply.
    /// `Ok(None)` is a timeout.
    async fn exchange(
        &self,
        url: &str,
        tracker: SocketAddr,
        timeout: Duration,
        build: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<Option<(u32, Vec<u8>)>, TrackerError> {
        let shared = &self.inner.shared;
        let (tx, rx) = oneshot::channel();
        let txid = {
            let mut waiting = lock(&shared.waiting);
            let mut txid = rand::random::<u32>();
            while waiting.contains_key(&txid) {
                txid = rand::random::<u32>();
            }
            waiting.insert(
                txid,
                Waiter {
                    from: tracker,
                    reply: tx,
                },
            );
            txid
        };
        let _registration = Registration { shared, txid };
        let to = match tracker {
            SocketAddr::V4(v4) if self.inner.local.is_ipv6() => {
                SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
            }
            other => other,
        };
        shared
            .socket
            .send_to(&build(txid), to)
            .await
            .map_err(|e| TrackerError::io(url, e))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(Some((txid, reply))),
            // Sender dropped: only when the demux task is gone, i.e. the client is shutting down.
            Ok(Err(_)) => Err(TrackerError::io(
                url,
                io::Error::new(io::ErrorKind::BrokenPipe, "udp tracker client closed"),
            )),
            Err(_) => Ok(None),
        }
    }

    /// Runs one request of kind `action` (connecting first when needed), retransmitting per BEP 15.
    async fn request(
        &self,
        url: &str,
        tracker: SocketAddr,
        action: u32,
        build: impl Fn(u64, u32) -> Vec<u8>,
    ) -> Result<Reply, TrackerError> {
        let family = family_of(tracker);
        let config = self.inner.config;
        let mut waited = Duration::ZERO;
        for attempt in 0..=config.max_retries {
            let timeout = config
                .base_timeout
                .saturating_mul(1 << attempt.min(MAX_BACKOFF_EXPONENT));
            let conn = match self.cached_connection(tracker) {
                Some(id) => id,
                None => {
                    let sent = self
                        .exchange(url, tracker, timeout, |txid| {
                            packet::connect_request(txid).to_vec()
                        })
                        .await?;
                    let Some((txid, buf)) = sent else {
                        waited += timeout;
                        continue;
                    };
                    match packet::parse_reply(&buf, ACTION_CONNECT, txid, family) {
                        Ok(Reply::Connect(id)) => {
                            self.remember_connection(tracker, id);
                            id
                        }
                        Ok(_) => return Err(TrackerError::bad(url, "unexpected reply to connect")),
                        Err(p) => return Err(p.into_error(url)),
                    }
                }
            };
            let sent = self
                .exchange(url, tracker, timeout, |txid| build(conn, txid))
                .await?;
            let Some((txid, buf)) = sent else {
                waited += timeout;
                continue;
            };
            return packet::parse_reply(&buf, action, txid, family).map_err(|p| {
                if matches!(p, ReplyProblem::Refused(_)) {
                    self.forget_connection(tracker);
                }
                p.into_error(url)
            });
        }
        Err(TrackerError::Timeout {
            url: url.to_owned(),
            after: waited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn udp_urls() {
        assert_eq!(
            host_port("udp://tracker.example:6969/announce").unwrap(),
            ("tracker.example", 6969)
        );
        assert_eq!(host_port("UDP://1.2.3.4:80").unwrap(), ("1.2.3.4", 80));
        assert_eq!(host_port("udp://[::1]:6969/a?b").unwrap(), ("::1", 6969));
        for bad in [
            "http://t:1/announce",
            "udp://t/announce",
            "udp://t:0",
            "udp://t:99999",
            "udp://:5",
            "udp://[::1/announce",
            "udp://u@t:5",
            "udp:",
        ] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let mapped = SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1])),
            5,
        );
        assert_eq!(canonical(mapped), "127.0.0.1:5".parse().unwrap());
        let v6: SocketAddr = "[::1]:5".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
