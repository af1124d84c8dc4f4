//! The IP blocklist with a real client (issue #19), on the loopback, where all of 127/8 is ours:
//!
//! 1. **a blocklisted seeder is never connected**: two libtorrent seeders of one torrent, one on
//!    127.0.0.1 and one on 127.0.0.2, which `[blocklist]` blocks (a PeerGuardian line). swarmd
//!    is handed both (`peers add`, the path of every address it learns) and the blocked one also
//!    dials swarmd; the download completes from the other, and the blocked seeder's libtorrent
//!    sent nothing at all (not even a handshake) while swarmd counts its refusals.
//! 2. **reload**: a list added to the blocklist directory (gzip, with a malformed line) is read
//!    on SIGHUP, an edited file on `swarmctl blocklist reload`, the `[blocklist] url` (a local
//!    HTTP server) on the HTTP RPC's `blocklist-update`, which `session-get` then shows; a
//!    corrupt file fails the reload, named, and the rules in force stay.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::is_complete_seed;
use swarm_integration_tests::libtorrent::{LibtorrentPeer, LtOptions};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::{http, http_rpc};

const BLOCKED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn start(env: &TestEnv, lists: &Path, more: &str) -> Daemon {
    let extra = format!(
        "[blocklist]\nenabled = true\npaths = [\"{}\"]\n{more}",
        lists.display()
    );
    let dirs = DaemonConfig {
        name: Some("swarmd"),
        watch_rescan_secs: None,
        extra: &extra,
        ..DaemonConfig::fast("integration-tests/tests/blocklist.rs")
    }
    .write(env, free_tcp_port());
    Daemon::start(env, &dirs, "swarmd")
}

fn status(d: &Daemon) -> Value {
    d.ctl_json(&["blocklist"])
}

/// Polls `swarmctl blocklist --json` until `done` holds (bounded).
fn wait_status(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let waited = wait_for(
        what,
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            let s = status(d);
            if done(&s) {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    match waited {
        Ok((s, _)) => s,
        Err(e) => panic!("{e:?}\n{}", d.log_tail()),
    }
}

#[test]
fn a_blocklisted_seeder_is_never_connected() {
    let env = TestEnv::new("blocklist-seeders");
    let payload = Payload::single(&env.subdir("seed"), "blocked.bin", 2 * MIB + 123, 1919);
    let torrent = payload.make_torrent(&env.path().join("blocked.torrent"), 16, &[]);
    let lists = env.subdir("blocklists");
    std::fs::write(
        lists.join("lab.p2p"),
        format!("# the lab's bad peer\nlab seeder:{BLOCKED}-{BLOCKED}\n"),
    )
    .unwrap();
    let d = start(&env, &lists, "");
    // The good seeder is slowed down: without the blocklist the unlimited blocked one would
    // serve most of the download.
    let good = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            upload_limit: Some(2 * MIB),
            name: Some("lt-good".into()),
            ..LtOptions::seed()
        },
    );
    let blocked = LibtorrentPeer::spawn(
        &env,
        &torrent.path,
        &payload.dir,
        LtOptions {
            no_announce: true,
            bind: Some(BLOCKED),
            connect: vec![d.addr()],
            name: Some("lt-blocked".into()),
            ..LtOptions::seed()
        },
    );
    let out = env.subdir("out");
    let ih = d.add(&torrent.path, Some(&out));
    let bad = blocked.addr().to_string();
    d.ctl_ok(&["peers", "add", &ih, &bad, &good.addr().to_string()]);

    d.wait_torrent(
        &ih,
        "the download from the seeder not blocked",
        Duration::from_secs(60),
        is_complete_seed,
    );
    verify_download(&torrent, &payload, &out);
    // Refused twice at least: the address handed to the torrent, and the blocked seeder's dial.
    let s = wait_status(&d, "refusals counted", |s| s["blocked"].as_u64() >= Some(2));
    assert_eq!(s["rules"], 1, "{s}");
    // swarmd never answers it: not a byte of ours reached it. (It may itself have written its
    // 68-byte handshake into a connection swarmd accepted and closed unread.)
    let st = blocked.status();
    assert_eq!(
        (st.total_download, st.total_payload_upload),
        (0, 0),
        "the blocked seeder talked with swarmd: {st:?}"
    );
    assert!(
        d.peers(&ih)
            .iter()
            .all(|p| !p["addr"].as_str().unwrap_or("").starts_with("127.0.0.2")),
        "{:?}",
        d.peers(&ih)
    );
    let shown = d.ctl_ok(&["blocklist"]);
    assert!(shown.contains("addresses refused"), "{shown}");
}

#[test]
fn sighup_and_reload_read_the_lists_again() {
    let env = TestEnv::new("blocklist-reload");
    let lists = env.subdir("blocklists");
    let first = lists.join("a.p2p");
    std::fs::write(&first, format!("lab:{BLOCKED}-{BLOCKED}\n")).unwrap();
    // `[blocklist] url`, served from another directory by a plain HTTP server.
    let served = env.subdir("served");
    std::fs::write(
        served.join("list.p2p"),
        "doc net:203.0.113.0-203.0.113.255\n",
    )
    .unwrap();
    let web_port = free_tcp_port();
    let mut web = Command::new("python3");
    web.args([
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        &web_port.to_string(),
    ])
    .arg("--directory")
    .arg(&served);
    let _web = ChildGuard::spawn(&env, "http-server", web);
    let list_url = format!("http://127.0.0.1:{web_port}/list.p2p");
    let rpc_port = free_tcp_port();
    let more = format!(
        "url = \"{list_url}\"\n\n{}",
        http_rpc::rpc_section(rpc_port, "")
    );
    let d = start(&env, &lists, &more);
    let s = status(&d);
    assert_eq!(
        (s["enabled"].as_bool(), s["rules"].as_u64()),
        (Some(true), Some(1)),
        "{s}"
    );

    // A gzip list with a malformed second line, read on SIGHUP.
    let second = lists.join("b.txt");
    std::fs::write(&second, "10.0.0.0/8\nnot an address\n").unwrap();
    let gz = Command::new("gzip").arg(&second).status().expect("gzip");
    assert!(gz.success());
    d.guard().signal(libc::SIGHUP);
    let s = wait_status(&d, "SIGHUP read b.txt.gz", |s| s["rules"] == 2);
    assert_eq!(s["malformed"], 1, "{s}");
    let problem = &s["problems"][0];
    assert!(
        problem["path"].as_str().unwrap().ends_with("b.txt.gz") && problem["line"] == 2,
        "{s}"
    );

    // An edited file, read on `swarmctl blocklist reload`.
    std::fs::write(&first, format!("lab:{BLOCKED}-{BLOCKED}\n192.168.0.0/16\n")).unwrap();
    let shown = d.ctl_ok(&["blocklist", "reload"]);
    assert!(shown.contains("rules:    3 "), "{shown}");

    // The HTTP RPC's blocklist-update fetches the url (once the server answers), and
    // session-get shows the blocklist.
    wait_until(
        "the HTTP server",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || http::get(&list_url, Duration::from_secs(2)).is_ok_and(|r| r.status == 200),
    )
    .expect("the HTTP server to answer");
    let sid = http_rpc::session_id(rpc_port);
    let answer = http_rpc::call(rpc_port, &sid, "blocklist-update", json!({}));
    assert_eq!(answer["result"], "success", "{answer}");
    assert_eq!(answer["arguments"]["blocklist-size"], 4, "{answer}");
    let fields = json!({"fields": ["blocklist-enabled", "blocklist-size", "blocklist-url"]});
    let got = http_rpc::call(rpc_port, &sid, "session-get", fields);
    assert_eq!(
        got["arguments"],
        json!({"blocklist-enabled": true, "blocklist-size": 4, "blocklist-url": list_url}),
        "{got}"
    );

    // A corrupt file fails the reload, named; the rules in force stay.
    let corrupt = lists.join("c.gz");
    std::fs::write(&corrupt, [0x1f, 0x8b, 8, 0, 9, 9, 9]).unwrap();
    let (code, _, err) = d.ctl(&["blocklist", "reload"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("c.gz"), "{err}");
    let answer = http_rpc::call(rpc_port, &sid, "blocklist-update", json!({}));
    assert!(
        answer["result"].as_str().unwrap().contains("c.gz"),
        "{answer}"
    );
    assert_eq!(status(&d)["rules"], 4);
    d.assert_alive("a failed blocklist reload");
}
