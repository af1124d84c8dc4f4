//! # swarm-wire
//!
//! The BitTorrent formats swarmd speaks, as pure code: no sockets, no actors, no async. The one
//! exception is [`create`], which reads the files it is pointed at to hash them.
//!
//! - [`bencode`]: an owned [`bencode::Value`], a strict decoder with limits (size, nesting depth,
//!   number of values) that can report where each value of a dictionary sits in the input, and
//!   a canonical encoder built on `bendy`.
//! - [`metainfo`]: v1 `.torrent` files, single- and multi-file, validated (paths, lengths, piece
//!   hashes); the info-hash is the SHA-1 of the raw `info` bytes as they appear in the file.
//!   Piece↔file layout math ([`Info::spans`]).
//! - [`magnet`]: magnet URIs (BEP 9, BEP 53 `so`).
//! - [`create`]: building a `.torrent` from a file or a directory, with the same info-hash as
//!   mktorrent for the same piece length.
//! - [`peer`]: the peer wire protocol (BEP 3, 6, 10, 9, 11) as a `tokio_util::codec` codec over
//!   `bytes::Bytes`, so piece payloads are never copied.
//!
//! What this crate is not: it does not talk to trackers or the DHT (`swarm-tracker`,
//! `swarm-dht`), store or verify downloaded data (`swarm-engine`), or decide anything; it turns
//! bytes into checked values and back.
//!
//! Every decoder here takes untrusted bytes: it returns an error that says what is wrong, never
//! panics, and never allocates from a length it has not checked against the input
//! (`tests/alloc_bounds.rs` measures this; `tests/hostile/` holds refused `.torrent` files).

pub mod bencode;
pub mod create;
pub mod infohash;
pub mod magnet;
pub mod metainfo;
pub mod mse;
pub mod peer;

pub use create::{create_torrent, CreateError, CreateOptions};
pub use infohash::{InfoHash, InfoHashError};
pub use magnet::{Magnet, MagnetError};
pub use metainfo::{FileEntry, FileSpan, Info, Metainfo, MetainfoError};

/// Property-test settings shared by the modules: few cases by default so `cargo test` stays
/// fast, more with `PROPTEST_CASES` (the `make fuzz` target sets 100 000).
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}
