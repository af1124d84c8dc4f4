//! # swarm-fuzz-checks
//!
//! The invariants of every fuzz target in `fuzz/`, one `pub fn <target>(data: &[u8])` each, that
//! panics (saying which invariant broke) on an input that breaks one. Each module's header says
//! what its target feeds the parser and why each invariant matters to the rest of the daemon.
//!
//! Two callers, one body: the libFuzzer targets in `fuzz/fuzz_targets/` are one line each that
//! call these (`make fuzz` explores new inputs with them, on nightly), and `tests/replay.rs` runs
//! every committed seed (`fuzz/corpus/<target>/`) and every input that once crashed
//! (`fuzz/regressions/<target>/`) through them on stable, in `make test`. So CI keeps the
//! regression guarantee without the nightly toolchain, cargo-fuzz or a sanitizer build.
//!
//! What this crate is not: no fuzzing engine, no input generation, no I/O. A new fuzz target adds
//! its check here and a row to [`TARGETS`]; the replay test fails until it does.

pub mod bencode;
pub mod control_request;
pub mod krpc;
pub mod magnet;
pub mod metainfo;
pub mod peer_codec;
pub mod peer_extension;
pub mod tracker_http;
pub mod tracker_udp;

pub use bencode::bencode;
pub use control_request::control_request;
pub use krpc::krpc;
pub use magnet::magnet;
pub use metainfo::metainfo;
pub use peer_codec::peer_codec;
pub use peer_extension::peer_extension;
pub use tracker_http::tracker_http;
pub use tracker_udp::tracker_udp;

/// One target's check: returns when the input keeps every invariant, panics naming the one it
/// breaks.
pub type Check = fn(&[u8]);

/// Every check by the name of its fuzz target (the `[[bin]]` name in `fuzz/Cargo.toml`, and the
/// directory name under `fuzz/corpus/` and `fuzz/regressions/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("bencode", bencode),
    ("control_request", control_request),
    ("krpc", krpc),
    ("magnet", magnet),
    ("metainfo", metainfo),
    ("peer_codec", peer_codec),
    ("peer_extension", peer_extension),
    ("tracker_http", tracker_http),
    ("tracker_udp", tracker_udp),
];
