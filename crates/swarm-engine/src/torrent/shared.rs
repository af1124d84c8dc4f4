//! What a torrent shares read-only with its peer actors (behind an `Arc`): identities, the storage
//! handle for uploads, the disk pool, and the per-peer bounds from the configuration.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use swarm_model::{TorrentState, TorrentSummary};
use swarm_wire::InfoHash;

use crate::disk::DiskPool;
use crate::services::dht::DhtSlot;
use crate::services::udp_port::UdpSlot;
use crate::storage::Storage;
use crate::torrent::peer::transport::TransportKind;

pub struct TorrentShared {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub storage: Arc<Storage>,
    pub disk: DiskPool,
    pub listen_port: u16,
    /// Largest frame accepted from a peer (a piece message of a 16 KiB block is ~16 KiB).
    pub max_frame: u32,
    /// Requests a peer may queue with us (advertised as `reqq`); more is a disconnect.
    pub max_upload_queue: usize,
    /// Bytes waiting on the socket before we stop serving uploads to that peer for a moment.
    pub max_write_queue_bytes: usize,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// The DHT node, if any (never for private torrents: see `Torrent::dht`).
    pub dht: DhtSlot,
    /// The UDP port, for its uTP endpoint.
    pub udp: UdpSlot,
    /// The transports outgoing connections try, in order of preference.
    pub transports: Arc<[TransportKind]>,
    /// The raw info dictionary, served over `ut_metadata`.
    pub info_bytes: bytes::Bytes,
    /// Whether a rate limit applies to this torrent (one atomic load per check).
    pub gate: crate::services::rate_limiter::QuotaGate,
    pub limiter: crate::services::ServiceRef<crate::services::rate_limiter::RateLimiter>,
    /// Connections across all torrents.
    pub peer_budget: PeerBudget,
    /// What `list` and `stats` show of the torrent.
    pub status: StatusCell,
    /// Payload bytes moved with peers, all time.
    pub transferred: Transferred,
    /// The session's encryption policy (shared by all torrents and the listener).
    pub encryption: crate::torrent::peer::encryption::PolicyCell,
    /// The session's IP blocklist: addresses learnt and dials are checked against it.
    pub blocklist: crate::blocklist::Blocklist,
    /// The root's queue holds the torrent (`queued_download` / `queued_seed`): written by the
    /// root, read by every incarnation of the torrent when it would go live, so that one
    /// restarted after a crash waits as the one before it did.
    pub held: std::sync::atomic::AtomicBool,
    /// Turns to hash data (`[queue] max_active_checks`), shared by all torrents: a torrent holds
    /// one while it checks, and waits in `checking_queued` for one.
    pub checks: Arc<tokio::sync::Semaphore>,
}

/// A torrent's payload counters (what `show`, `stats`, the resume record and the trackers'
/// `uploaded=`/`downloaded=` report), counted where the bytes cross a socket: a received block
/// when its frame is decoded, a sent block when the peer acknowledged it (see the peer's
/// `writer` module). Not the torrent's
/// own fields fed by peer reports, because a peer that ends between two reports (a fast leecher
/// that closes, a crash) would take its last bytes with it; these atomics outlive every peer, and
/// the torrent actor too (a restarted torrent goes on from them). The first incarnation of the
/// torrent starts them at its resume record's counts.
#[derive(Debug, Default)]
pub struct Transferred {
    uploaded: std::sync::atomic::AtomicU64,
    downloaded: std::sync::atomic::AtomicU64,
    /// Seconds spent seeding (the seed-time limit), counted by the torrent's tick.
    seeding_secs: std::sync::atomic::AtomicU64,
}

impl Transferred {
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn add_uploaded(&self, n: u64) {
        self.uploaded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn add_downloaded(&self, n: u64) {
        self.downloaded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn seeding_secs(&self) -> u64 {
        self.seeding_secs.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn add_seeding_secs(&self, n: u64) {
        self.seeding_secs
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The counts of a resume record, before any peer is connected.
    pub fn restore(&self, uploaded: u64, downloaded: u64) {
        use std::sync::atomic::Ordering;
        self.uploaded.store(uploaded, Ordering::Relaxed);
        self.downloaded.store(downloaded, Ordering::Relaxed);
    }
}

/// A torrent's summary as of its last publish, read by `list` and `stats` without a message
/// round trip: one round trip per torrent costs ~5 µs, 5 ms for a thousand torrents. The
/// torrent publishes on every tick (every second while it has peers or checks) and on every
/// change of state, so states are exact and counters and rates at most a tick old.
///
/// The summary is kept as the JSON `list` sends, written by the torrent's own thread when it
/// changes: a list of a thousand torrents is then a concatenation (cloning and serializing the
/// summaries at list time was ~1.8 ms of the daemon's CPU per list).
#[derive(Debug)]
pub struct StatusCell(Mutex<Published>);

#[derive(Clone, Debug)]
pub struct Published {
    /// The [`TorrentSummary`] as JSON: one object.
    pub json: Arc<str>,
    /// What `stats` adds up.
    pub totals: Totals,
}

/// The numbers of a summary that `stats` adds over all torrents.
#[derive(Clone, Copy, Debug)]
pub struct Totals {
    pub state: TorrentState,
    pub peers: u32,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub downloaded: u64,
    pub uploaded: u64,
    pub peer_restarts: u64,
    /// Of `peers`, those that dialled us (the metrics' peers by direction).
    pub peers_incoming: u32,
    /// Of `peers`, those over uTP, and of those the ones that dialled us.
    pub peers_utp: u32,
    pub peers_utp_incoming: u32,
    /// The size when done (the ratio's base of a torrent that downloaded nothing).
    pub wanted_bytes: u64,
    /// Of `wanted_bytes`, what is not verified yet: 0 for a torrent that will seed.
    pub left_bytes: u64,
}

/// What a torrent publishes beside its summary: its own counts that no summary carries.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub peer_restarts: u64,
    pub peers_incoming: u32,
    pub peers_utp: u32,
    pub peers_utp_incoming: u32,
}

impl Totals {
    fn of(summary: &TorrentSummary, counts: Counts) -> Self {
        Totals {
            state: summary.state,
            peers: summary.peers,
            download_rate: summary.download_rate,
            upload_rate: summary.upload_rate,
            downloaded: summary.downloaded,
            uploaded: summary.uploaded,
            peer_restarts: counts.peer_restarts,
            peers_incoming: counts.peers_incoming,
            peers_utp: counts.peers_utp,
            peers_utp_incoming: counts.peers_utp_incoming,
            wanted_bytes: summary.wanted_bytes,
            left_bytes: summary.left_bytes,
        }
    }
}

impl Published {
    pub fn new(summary: &TorrentSummary, counts: Counts) -> Self {
        Published {
            json: summary_json(summary).into(),
            totals: Totals::of(summary, counts),
        }
    }

    /// The summary back from its JSON.
    pub fn summary(&self) -> TorrentSummary {
        serde_json::from_str(&self.json).expect("published summaries are our own JSON")
    }
}

fn summary_json(summary: &TorrentSummary) -> String {
    serde_json::to_string(summary).expect("a summary always serializes")
}

impl StatusCell {
    pub fn new(first: Published) -> Self {
        StatusCell(Mutex::new(first))
    }

    /// Replaces the published summary. The shared JSON is replaced only when it changed, so an
    /// idle torrent's ticks leave the cell's allocation as it was.
    /// Returns whether the state changed since the previous publish.
    pub fn publish(&self, summary: &TorrentSummary, counts: Counts) -> bool {
        let json = summary_json(summary);
        let mut cell = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *cell.json != *json {
            cell.json = json.into();
        }
        let changed = cell.totals.state != summary.state;
        cell.totals = Totals::of(summary, counts);
        changed
    }

    /// `f` on the published summary, under the lock (keep it short: the torrent waits).
    pub fn with<R>(&self, f: impl FnOnce(&Published) -> R) -> R {
        f(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The global cap on peer connections, across all torrents. A shared counter rather than an
/// actor: admission is decided on every dial and every accept, and a message round trip there
/// would cost more than the decision. Each admitted connection holds a [`PeerToken`]; dropping
/// it (peer gone, torrent stopped or crashed) gives the place back.
#[derive(Clone, Debug)]
pub struct PeerBudget {
    used: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    max: usize,
}

#[derive(Debug)]
pub struct PeerToken(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for PeerToken {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl PeerBudget {
    pub fn new(max: usize) -> Self {
        PeerBudget {
            used: Default::default(),
            max,
        }
    }

    /// A place for one more connection, if the global cap allows.
    pub fn take(&self) -> Option<PeerToken> {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| PeerToken(self.used.clone()))
    }

    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::PeerBudget;

    #[test]
    fn budget_caps_and_returns_places() {
        let b = PeerBudget::new(2);
        let t1 = b.take().unwrap();
        let _t2 = b.take().unwrap();
        assert!(b.take().is_none());
        drop(t1);
        assert_eq!(b.used(), 1);
        assert!(b.take().is_some());
    }
}
