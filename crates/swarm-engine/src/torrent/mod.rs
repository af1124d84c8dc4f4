//! One torrent: its actor (which also supervises the torrent's peer actors), the peer actor, and
//! the messages between them.
//!
//! - [`actor`]: the `Torrent` actor — lifecycle, state machine, control queries.
//! - [`download`]: the download path inside the torrent — blocks in, pieces out to the disk pool.
//! - [`swarm`]: the peer set — address book, dialling, bans, the choking seam.
//! - [`peer`]: `PeerConn`, one actor per connection.

pub mod actor;
pub mod control;
mod download;
pub mod messages;
pub mod peer;
pub mod shared;
pub mod swarm;
mod ticker;

pub use actor::{Torrent, TorrentConfig};
