//! One torrent: its actor, the actor's children (one peer actor per connection), the pure cores
//! the actor is a shell over, and every message a torrent takes or sends.
//!
//! - [`actor`]: the `Torrent` actor — lifecycle, state machine, the tick; with [`download`] (peer
//!   events, blocks in, pieces out to the disk pool), [`links`] (listener, announcer, DHT,
//!   choker; finding and dialling peers), [`control`] (queries and orders from the root) and
//!   [`disk_phases`] (the hash check and the resume record, carried out) and [`relocate`] (a move
//!   of the data to another directory, driven one file at a time).
//! - [`supervisor`]: the torrent's children and their restart policy, declared.
//! - [`peer`]: `PeerConn`, one actor per connection (with its transport and writer).
//! - [`messages`]: every message to or from a torrent.
//! - Pure cores, time as an argument, tests beside them: [`peer_set`] (slots, address book, bans,
//!   duplicates, interest, requests), [`assembly`] (piece buffers, endgame, hash-fail blame),
//!   [`check`] (hash check of the data on disk), [`resume_state`] (start from the record, what to
//!   save), [`super_seed`] (BEP 16: which piece to show which peer).
//! - [`shared`]: what a torrent shares read-only with its peers; [`ticker`]: the adaptive tick.

pub mod actor;
pub mod assembly;
pub mod check;
pub mod control;
mod disk_phases;
mod download;
mod links;
pub mod messages;
pub mod peer;
pub mod peer_set;
mod relocate;
pub mod resume_state;
pub mod shared;
pub mod super_seed;
pub mod supervisor;
mod ticker;

pub use actor::{Torrent, TorrentConfig};
