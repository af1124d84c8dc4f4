//! # swarm-model
//!
//! One model of a torrent, shared by the engine (which builds it), the daemon (whose faces pass
//! it on) and the control protocol (which carries it to `swarmctl`): the torrent's state and
//! views ([`TorrentSummary`], [`TorrentDetail`], [`FileInfo`], [`PeerInfo`], [`TrackerInfo`]),
//! the session's ([`SessionStats`], [`Limits`]), the [`Event`]s, and the engine's one error
//! ([`EngineError`]). Torrents are named by [`InfoHash`] throughout; it is hex only in JSON.
//!
//! What this crate is not: no actors, no I/O, no protocol framing. It sits under `swarm-engine`
//! and `swarm-control` so that neither depends on the other: the engine does not know the
//! control protocol, and `swarmctl` gets the types without the engine's dependencies (this crate
//! needs only `serde`, `thiserror` and `swarm-wire` for [`InfoHash`]).
//!
//! CONTRACT: these types are what the control protocol carries; add fields freely (with
//! `#[serde(default)]` where a client may see an older daemon), do not rename.

pub mod blocklist;
pub mod error;
pub mod event;
pub mod session;
pub mod torrent;

pub use blocklist::{BlocklistFile, BlocklistProblem, BlocklistSources, BlocklistStatus};
pub use error::{EngineError, EngineResult};
pub use event::Event;
pub use session::{
    AltSchedule, AltSpeed, EngineCounters, Limits, QueueConfig, QueueMove, RestartCounts,
    SeedAction, SeedingConfig, SessionStats, ALL_DAYS, MINUTES_PER_DAY,
};
pub use swarm_wire::InfoHash;
pub use torrent::{
    normalize_labels, BandwidthPriority, FileInfo, FilePriority, Limit, MoveProgress, PeerInfo,
    SeedLimits, TorrentDetail, TorrentLimits, TorrentState, TorrentSummary, TrackerInfo,
    MAX_LABELS, MAX_LABEL_LEN,
};
