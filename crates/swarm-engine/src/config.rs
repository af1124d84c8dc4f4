//! The engine's settings, filled in by the daemon from its configuration file (or by the
//! one-shot `download` command from its flags).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::torrent::peer::transport::TransportKind;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Peer port; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Where torrents are saved unless told otherwise.
    pub download_dir: PathBuf,
    /// Where new downloads are written until complete, then moved to their save directory
    /// (transmission's incomplete-dir); `None`: straight into the save directory.
    pub incomplete_dir: Option<PathBuf>,
    pub max_peers_per_torrent: usize,
    /// Peer connections across all torrents.
    pub max_peers_global: usize,
    /// Connections being dialled or in handshake, per torrent and at the listener.
    pub max_half_open: usize,
    /// Upload slots per torrent (until the global choker takes over).
    pub unchoke_slots: usize,
    pub disk_threads: usize,
    pub max_open_files: usize,
    /// Bytes of whole pieces cached for uploads.
    pub read_cache_bytes: usize,
    /// Complete pieces waiting for the disk, per torrent, before requesting pauses.
    pub max_pending_writes: usize,
    /// Threads (actix arbiters) that torrents and their peers are spread over.
    pub torrent_threads: usize,
    pub max_frame: u32,
    pub max_upload_queue: usize,
    pub max_write_queue_bytes: usize,
    pub connect_timeout: Duration,
    /// How long a peer may take to send its handshake once connected.
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// UDP tracker timeouts (BEP 15 suggests 15 s doubling).
    pub udp_tracker_timeout: Duration,
    pub udp_tracker_retries: u32,
    /// `[trackers]`: one announce's bound, numwant, the shortest announce interval.
    pub announce: crate::services::announcer::AnnounceSettings,
    /// Where resume state lives; `None` (the one-shot `download`) keeps nothing.
    pub state_dir: Option<PathBuf>,
    /// The DHT node's settings; `None` runs without DHT. A node bound to the peer port shares
    /// the UDP port's socket with uTP.
    pub dht: Option<swarm_dht::DhtConfig>,
    /// The transports outgoing connections try, in order of preference (the one that last
    /// worked with a peer goes first); incoming uTP is accepted when "utp" is among them.
    pub transports: Vec<TransportKind>,
    /// Global rate limits at start-up (changeable at run time through the session).
    pub limits: swarm_model::Limits,
    /// The alternative limits and their schedule at start-up (changeable at run time).
    pub alt_speed: swarm_model::AltSpeed,
    /// Upload slots, optimistic unchoke, seeding mode, snubbing.
    pub choker: crate::services::choker::ChokerConfig,
    /// MSE/PE policy at start-up (changeable at run time through the session).
    pub encryption: swarm_wire::mse::Policy,
    /// Torrents that hash their data at once (start-up checks, `verify`); the others wait in
    /// `checking_queued`. Read at start.
    pub max_active_checks: usize,
    /// `[queue]`: how many torrents run at once (changeable at run time).
    pub queue: swarm_model::QueueConfig,
    /// `[seeding]`: the session's seeding limits and what reaching one does.
    pub seeding: swarm_model::SeedingConfig,
    /// `[blocklist]`: where the IP blocklist's rules come from (loaded by `Session::start`).
    pub blocklist: swarm_model::BlocklistSources,
}

impl EngineConfig {
    pub fn utp(&self) -> bool {
        self.transports.contains(&TransportKind::Utp)
    }

    /// Whether the DHT node shares the peer port's UDP socket: it is bound to the same address.
    pub fn dht_shares_port(&self) -> bool {
        self.dht.as_ref().is_some_and(|d| d.bind == self.listen)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            listen: ([0, 0, 0, 0], 6881).into(),
            download_dir: PathBuf::from("."),
            incomplete_dir: None,
            max_peers_per_torrent: 50,
            max_peers_global: 500,
            max_half_open: 16,
            unchoke_slots: 4,
            disk_threads: cores.clamp(2, 4),
            max_open_files: 128,
            read_cache_bytes: 8 << 20,
            max_pending_writes: 8,
            torrent_threads: cores.clamp(1, 4),
            max_frame: 64 * 1024,
            max_upload_queue: 500,
            // Enough to keep a fast socket busy between wake-ups, small enough that a choke does
            // not wait seconds behind queued pieces for a slow peer.
            max_write_queue_bytes: 512 << 10,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(180),
            udp_tracker_timeout: Duration::from_secs(15),
            udp_tracker_retries: 2,
            announce: Default::default(),
            state_dir: None,
            dht: None,
            // TCP first: on the loopback and LAN paths we measured it moves data with less CPU
            // (see docs/benchmarks.md); uTP reaches the peers that TCP does not.
            transports: vec![TransportKind::Tcp, TransportKind::Utp],
            limits: swarm_model::Limits::default(),
            alt_speed: swarm_model::AltSpeed::default(),
            max_active_checks: 1,
            choker: crate::services::choker::ChokerConfig::default(),
            encryption: swarm_wire::mse::Policy::default(),
            queue: swarm_model::QueueConfig::default(),
            seeding: swarm_model::SeedingConfig::default(),
            blocklist: swarm_model::BlocklistSources::default(),
        }
    }
}
