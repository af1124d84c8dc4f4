//! # swarm-integration-tests
//!
//! Support library for the end-to-end tests in `integration-tests/tests/`: they run the real
//! `swarmd`/`swarmctl` binaries against real BitTorrent clients, all on 127.0.0.1.
//!
//! | module | what |
//! |---|---|
//! | [`util`] | [`TestEnv`](util::TestEnv) scratch dir + logs, free ports, [`wait_until`](util::wait_until), [`ChildGuard`](util::ChildGuard), [`require_tool`](util::require_tool) |
//! | [`payload`] | deterministic payloads, `.torrent` creation (mktorrent), piece verification |
//! | [`bencode`] | a tiny independent bencode reader/writer |
//! | [`http`] | a tiny std-only HTTP/1.0 client |
//! | [`http_rpc`] | swarmd's `[rpc]` section, the session-id handshake, legacy calls, the test venv's Python |
//! | [`tracker`] | [`Opentracker`](tracker::Opentracker) and an in-process [`FakeHttpTracker`](tracker::FakeHttpTracker) |
//! | [`libtorrent`] | [`LibtorrentPeer`](libtorrent::LibtorrentPeer): a Python libtorrent seeder/leecher with status and commands |
//! | [`transmission`] | [`TransmissionDaemon`](transmission::TransmissionDaemon) over its RPC |
//! | [`aria2`] | [`Aria2`](aria2::Aria2) seeder/leecher with JSON-RPC status |
//! | [`swarmd`] | locating (building) and spawning `swarmd` / running `swarmctl` |
//! | [`daemon`] | [`Daemon`](daemon::Daemon): a `swarmd run` with its config, control socket, `swarmctl`, log; the fault-injection build; [`Events`](daemon::Events) |
//! | [`netlab`] | [`Lab`](netlab::Lab): hosts in network namespaces (198.18.0.0/15) behind a bridge, uplinks capped by htb |
//! | [`lab_swarm`] | a swarm (tracker, seed, leechers of swarmd/libtorrent) on a [`netlab`] lab with capped uplinks: completion times, seed upload, fluid bound |
//! | [`wire`] | [`RawPeer`](wire::RawPeer): a raw BitTorrent peer (swarm-wire's handshake, then any bytes) |
//!
//! Conventions, which every driver follows:
//! * Everything listens and dials on 127.0.0.1 only (or, in a [`netlab`] lab, on addresses of
//!   198.18.0.0/15 that exist only inside the lab's namespaces); DHT, LSD, PEX (where it is a setting), UPnP
//!   and NAT-PMP are off, and TCP is the only transport. A test may turn libtorrent's DHT on
//!   ([`LtOptions::dht`](libtorrent::LtOptions::dht)); it then joins only the loopback nodes the
//!   test names.
//! * Every child process is a [`ChildGuard`](util::ChildGuard): its own process group, killed on
//!   drop (also when the test panics), output in `logs/<name>.log` of the test's
//!   [`TestEnv`](util::TestEnv), whose log tails are printed when a test fails.
//! * Every wait is bounded and its failure message says what was awaited and the last state seen.
//! * A missing external tool is a test FAILURE with an install hint, never a skip.
//!
//! ```no_run
//! use std::time::Duration;
//! use swarm_integration_tests::prelude::*;
//!
//! let env = TestEnv::new("readme");
//! let tracker = Opentracker::start(&env, &[]);
//! let payload = Payload::multi(&env.subdir("seed"), "data", 4 * MIB, 5, 1);
//! let torrent = payload.make_torrent(&env.path().join("t.torrent"), 15, &[&tracker.announce_url()]);
//! tracker.allow(torrent.info_hash);
//! let seeder = LibtorrentPeer::seed(&env, &torrent.path, &payload.dir);
//! let leecher = LibtorrentPeer::leech(&env, &torrent.path, &env.subdir("leech"));
//! leecher.wait_finished(Duration::from_secs(30));
//! torrent.verify_dir(&env.path().join("leech")).unwrap();
//! # drop(seeder);
//! ```

pub mod aria2;
pub mod bencode;
pub mod daemon;
pub mod http;
pub mod http_rpc;
pub mod lab_swarm;
pub mod libtorrent;
pub mod netlab;
pub mod payload;
pub mod swarmd;
pub mod tracker;
pub mod transmission;
pub mod util;
pub mod wire;

/// Everything a test usually needs, for `use swarm_integration_tests::prelude::*;`.
pub mod prelude {
    pub use crate::aria2::Aria2;
    pub use crate::daemon::{Daemon, DaemonConfig, DaemonDirs, Events};
    pub use crate::libtorrent::{LibtorrentPeer, LtOptions, LtStatus};
    pub use crate::payload::{
        compare_paths, files_equal, verify_dir_against_torrent, verify_download, Payload, Torrent,
        KIB, MIB,
    };
    pub use crate::swarmd::{
        swarmctl, swarmctl_bin, swarmctl_with_home, swarmd_bin, Swarmd, SwarmdProcess,
    };
    pub use crate::tracker::{FakeHttpTracker, Opentracker};
    pub use crate::transmission::TransmissionDaemon;
    pub use crate::util::{
        free_tcp_port, free_tcp_udp_port, free_udp_port, loopback, output_text, require_tool,
        rss_bytes, wait_for, wait_until, ChildGuard, TestEnv,
    };
    pub use swarm_wire::InfoHash;
}
