//! # swarm-wire
//!
//! The BitTorrent formats swarmd speaks, as pure code: no sockets, no files opened on its own
//! (torrent creation reads the files it is pointed at, nothing else), no actors.
//!
//! - [`bencode`]: decoding with limits (nesting depth, total size) on top of `bendy`.
//! - [`metainfo`]: v1 `.torrent` files, single- and multi-file, validated; the info-hash is the
//!   SHA-1 of the raw `info` bytes as they appear in the file. Piece↔file layout math.
//! - [`magnet`]: magnet URIs (BEP 9, BEP 53).
//! - [`create`]: building a `.torrent` from a file or a directory.
//! - [`peer`]: the peer wire protocol (BEP 3, 6, 10, 9, 11) as a `tokio_util::codec` codec over
//!   `bytes::Bytes`, so piece payloads are never copied.
//!
//! Every decoder here takes untrusted bytes: it returns an error, never panics, and never
//! allocates from a length it has not checked against the input.

pub mod bencode;
pub mod create;
pub mod infohash;
pub mod magnet;
pub mod metainfo;
pub mod peer;

pub use infohash::InfoHash;
pub use magnet::Magnet;
pub use metainfo::{FileEntry, Info, Metainfo, MetainfoError};

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
