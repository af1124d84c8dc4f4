//! What a new user meets in `swarmctl`, `swarmd download`, the config and `make install` (the
//! rough edges of issue 22), against the real release binaries:
//!
//! 1. a socket closed to the caller is "permission denied" (exit 5, naming the group), not "not
//!    running";
//! 2. selectors: names, `all`, ambiguous names listing their matches; one spelling of states;
//!    tracker tiers numbered alike in `inspect` and `trackers`; help that explains arguments
//!    and peer flags;
//! 3. `add`: http URLs of `.torrent` files (a tiny HTTP server on 127.0.0.1), errors naming their
//!    source, JSON errors with `--json`, a directory pointing at `create`; `create` refusing a
//!    tracker that is no URL and saying each cause once;
//! 4. `swarmctl watch` in a small terminal (a pty from `script`): frames that fit;
//! 5. `~` in config paths; `swarmd download` next to a daemon holding port 6881;
//! 6. `make install` without compiling, into `$(PREFIX)/lib`.
//!
//! Each daemon has its own HOME inside the test's temp dir, DHT off, 127.0.0.1 only; its
//! torrents are added paused and have no reachable tracker, so nothing leaves the machine.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{self, DaemonConfig, DaemonDirs};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{
    default_home, isolate, swarmctl_code, swarmctl_ok, workspace_root,
};

/// `swarmctl ARGS` must exit with `expected`; returns (stdout, stderr).
#[track_caller]
fn ctl_exits(env: &TestEnv, args: &[&str], expected: i32) -> (String, String) {
    let (code, out, err) = swarmctl_code(env, args);
    assert_eq!(
        code, expected,
        "swarmctl {args:?}: expected exit {expected}, got {code}\nstdout: {out}\nstderr: {err}"
    );
    (out, err)
}

/// A daemon in the test's default home (plain `swarmctl` calls find it).
fn start_daemon(env: &TestEnv) -> (SwarmdProcess, DaemonDirs) {
    let dirs =
        DaemonConfig::new("integration-tests/tests/swarmctl_ux.rs").write(env, free_tcp_port());
    let proc = daemon::start(env, &dirs, Swarmd::command(&[] as &[&str]), "info");
    (proc, dirs)
}

/// `swarmctl create` of a file `name` holding `content` (in a directory of its own, so that two
/// torrents may share a name), with `trackers` as one `-t` each; returns the `.torrent`'s path
/// and info-hash.
fn make_torrent(env: &TestEnv, name: &str, content: &[u8], trackers: &[&str]) -> (PathBuf, String) {
    let dir = env.unique_subdir("data");
    let file = dir.join(name);
    fs::write(&file, content).unwrap();
    let out = dir.join(format!("{name}.torrent"));
    let mut args = vec![
        "create",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-date",
    ];
    for t in trackers {
        args.extend(["-t", t]);
    }
    swarmctl_ok(env, &args);
    let inspected: Value = serde_json::from_str(&swarmctl_ok(
        env,
        &["inspect", out.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    (out, inspected["info_hash"].as_str().unwrap().to_owned())
}

/// The list from the daemon's socket, as (info-hash → state).
fn states(dirs: &DaemonDirs) -> Vec<(String, String)> {
    let list = daemon::rpc(&dirs.socket, "torrent.list", None).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["info_hash"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Makes `path` and every directory above it searchable by anyone (the temp dir is 0700), so
/// another user can reach what lies below.
fn open_path_for_others(path: &Path) {
    let tmp = std::env::temp_dir();
    for dir in path
        .ancestors()
        .filter(|d| d.starts_with(&tmp) && *d != tmp)
    {
        let mode = fs::metadata(dir).unwrap().permissions().mode();
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o011)).unwrap();
    }
}

// -----------------------------------------------------------------------------------------------
// 1. The socket
// -----------------------------------------------------------------------------------------------

/// A daemon whose runtime directory (0700, the daemon's) is closed to the caller: `swarmctl`
/// used to find "no socket" there and say "swarmd is not running" (exit 3).
#[test]
fn a_closed_socket_is_permission_denied_not_not_running() {
    let env = TestEnv::new("ux-socket-permission");
    let (_daemon, dirs) = start_daemon(&env);
    let home = default_home(&env);
    // `nobody` may walk down to home/run, and no further: home/run/swarmd is the daemon's 0700.
    open_path_for_others(&home.join("run"));
    let mode = fs::metadata(dirs.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the daemon's runtime directory");
    // The binary must be runnable by nobody too: a copy inside the (now searchable) temp dir.
    let ctl = env.path().join("swarmctl");
    fs::copy(swarmctl_bin(), &ctl).unwrap();
    fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();

    for (name, args) in [
        ("list-as-nobody", vec!["list"]),
        ("json-as-nobody", vec!["stats", "--json"]),
    ] {
        let mut cmd = Command::new(&ctl);
        cmd.args(&args);
        isolate(&mut cmd, &home);
        cmd.uid(65534).gid(65534);
        let g = ChildGuard::spawn(&env, name, cmd);
        let status = g.wait_exit(Duration::from_secs(30)).unwrap();
        let out = g.log_contents();
        assert_eq!(status.code(), Some(5), "{out}");
        assert!(
            out.contains(&format!(
                "permission denied on {} — are you in group root?",
                dirs.socket.display()
            )),
            "{out}"
        );
        assert!(!out.contains("not running"), "{out}");
    }
    // The daemon's owner still gets in.
    swarmctl_ok(&env, &["list"]);
}

// -----------------------------------------------------------------------------------------------
// 2. Selectors, states, tiers, help
// -----------------------------------------------------------------------------------------------

#[test]
fn torrents_by_name_all_and_ambiguous_names() {
    let env = TestEnv::new("ux-selectors");
    let (_daemon, dirs) = start_daemon(&env);
    let dead = format!("http://127.0.0.1:{}/announce", free_tcp_port());
    let (big, big_ih) = make_torrent(
        &env,
        "big.bin",
        &[7; 50_000],
        &[&dead, "udp://127.0.0.1:9/x"],
    );
    let (twin1, twin1_ih) = make_torrent(&env, "twin.bin", b"one", &[]);
    let (twin2, twin2_ih) = make_torrent(&env, "twin.bin", b"two", &[]);
    // The twins save into directories of their own: same name, different data.
    for (t, dir) in [(&big, "dl-big"), (&twin1, "dl-twin1"), (&twin2, "dl-twin2")] {
        let dir = env.subdir(dir);
        swarmctl_ok(
            &env,
            &[
                "add",
                t.to_str().unwrap(),
                "--paused",
                "-o",
                dir.to_str().unwrap(),
            ],
        );
    }

    // A name is a selector.
    let shown: Value =
        serde_json::from_str(&swarmctl_ok(&env, &["show", "big.bin", "--json"])).unwrap();
    assert_eq!(shown["info_hash"], big_ih);
    let text = swarmctl_ok(&env, &["show", "big.bin"]);
    assert!(
        text.contains(&big_ih) && text.contains("State:        paused"),
        "{text}"
    );

    // A name two torrents share: exit 4, both listed.
    let (_, err) = ctl_exits(&env, &["show", "twin.bin"], 4);
    assert!(err.contains("twin.bin matches 2 torrents"), "{err}");
    for ih in [&twin1_ih, &twin2_ih] {
        assert!(err.contains(&ih[..12]), "{err}");
    }
    let (_, err) = ctl_exits(&env, &["pause", "no-such-name"], 4);
    assert!(err.contains("no torrent matches no-such-name"), "{err}");

    // `all`: every torrent, each reported by info-hash.
    let out = swarmctl_ok(&env, &["resume", "all"]);
    for ih in [&big_ih, &twin1_ih, &twin2_ih] {
        assert!(out.contains(&format!("{ih}: resumed")), "{out}");
    }
    let out = swarmctl_ok(&env, &["pause", "all", "--json"]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines.iter().all(|l| l["result"] == "paused"), "{out}");
    for (ih, state) in states(&dirs) {
        assert_eq!(state, "paused", "{ih}");
    }

    // One spelling of states: a magnet nobody can serve stays fetching its metadata, and the
    // text list says so as the JSON does.
    let magnet_ih = "5a3c9e0000000000000000000000000000000001";
    swarmctl_ok(
        &env,
        &["add", &format!("magnet:?xt=urn:btih:{magnet_ih}&dn=lonely")],
    );
    let list = swarmctl_ok(&env, &["list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with(&magnet_ih[..8]))
        .unwrap();
    assert!(line.contains("fetching_metadata"), "{list}");

    // Tiers numbered from 1 in both `inspect` and `trackers`.
    let inspected = swarmctl_ok(&env, &["inspect", big.to_str().unwrap()]);
    assert!(
        inspected.contains(&format!("tier 1: {dead}")),
        "{inspected}"
    );
    assert!(
        inspected.contains("tier 2: udp://127.0.0.1:9/x"),
        "{inspected}"
    );
    let trackers = swarmctl_ok(&env, &["trackers", "big.bin"]);
    let tier_of = |url: &str| {
        let row = trackers
            .lines()
            .find(|l| l.contains(url))
            .unwrap_or_else(|| panic!("{trackers}"));
        row.split_whitespace().next().unwrap().to_owned()
    };
    assert_eq!(
        (
            tier_of(&dead).as_str(),
            tier_of("udp://127.0.0.1:9/x").as_str()
        ),
        ("1", "2"),
        "{trackers}"
    );

    // Help that says what an argument is, and what the peer flags mean.
    let help = swarmctl_ok(&env, &["show", "--help"]);
    assert!(
        help.contains("its info-hash, a unique prefix of it (6+ hex digits), or its name"),
        "{help}"
    );
    let help = swarmctl_ok(&env, &["peers", "--help"]);
    assert!(
        help.contains("D we download from the peer") && help.contains("I it connected to us"),
        "{help}"
    );
    let help = swarmctl_ok(&env, &["pause", "--help"]);
    assert!(help.contains("`all` for every torrent"), "{help}");
}

// -----------------------------------------------------------------------------------------------
// 3. add and create
// -----------------------------------------------------------------------------------------------

/// A tiny HTTP/1.0 server on 127.0.0.1: `/t.torrent` is `torrent`, anything else 404; serves
/// `requests` requests, then its thread ends.
fn serve_torrent(torrent: Vec<u8>, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let found = String::from_utf8_lossy(&head).starts_with("GET /t.torrent ");
            let (status, body) = if found {
                ("200 OK", &torrent[..])
            } else {
                ("404 Not Found", &b"no"[..])
            };
            let _ = write!(
                s,
                "HTTP/1.0 {status}\r\nContent-Type: application/x-bittorrent\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    (base, thread)
}

#[test]
fn add_by_url_and_errors_that_name_their_source() {
    let env = TestEnv::new("ux-add");
    let (_daemon, dirs) = start_daemon(&env);
    let (by_url, by_url_ih) = make_torrent(&env, "from-the-web.bin", &[1; 40_000], &[]);
    let (local, local_ih) = make_torrent(&env, "local.bin", &[2; 40_000], &[]);
    let (base, server) = serve_torrent(fs::read(&by_url).unwrap(), 2);

    // A URL is fetched and its .torrent added.
    let url = format!("{base}/t.torrent");
    let out = swarmctl_ok(&env, &["add", &url, "--paused"]);
    assert_eq!(out.trim(), format!("added {by_url_ih} from-the-web.bin"));

    // Several sources, some bad: each error names its source, the good one is added, the first
    // failure decides the status; --json prints the errors as JSON too.
    let missing_url = format!("{base}/missing.torrent");
    let nope = env.path().join("nope.torrent");
    let data_dir = env.subdir("a-directory");
    let (out, err) = ctl_exits(
        &env,
        &[
            "add",
            &missing_url,
            local.to_str().unwrap(),
            nope.to_str().unwrap(),
            data_dir.to_str().unwrap(),
            "--paused",
            "--json",
        ],
        2,
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{out}")))
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0]["source"], missing_url);
    assert_eq!(lines[0]["exit"], 2);
    assert!(
        lines[0]["error"].as_str().unwrap().contains("HTTP 404"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        json!({"info_hash": local_ih, "name": "local.bin"})
    );
    assert_eq!(lines[2]["source"], nope.to_str().unwrap());
    assert_eq!(lines[3]["source"], data_dir.to_str().unwrap());
    assert!(
        err.contains(&format!("{missing_url}: the server answered HTTP 404")),
        "{err}"
    );
    let nope_line = err
        .lines()
        .find(|l| l.contains("nope.torrent"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        nope_line.matches("os error 2").count(),
        1,
        "said once: {nope_line}"
    );
    assert!(
        err.contains(&format!(
            "{}: is a directory; to share it, make a .torrent of it first: swarmctl create",
            data_dir.display()
        )),
        "{err}"
    );
    server.join().unwrap();
    let have: Vec<String> = states(&dirs).into_iter().map(|(ih, _)| ih).collect();
    assert!(
        have.contains(&by_url_ih) && have.contains(&local_ih),
        "{have:?}"
    );

    // A URL nobody answers: a clear error, exit 2, also as JSON.
    let dead = format!("http://127.0.0.1:{}/t.torrent", free_tcp_port());
    let (out, err) = ctl_exits(&env, &["add", &dead, "--json"], 2);
    assert!(err.contains(&format!("{dead}: cannot fetch")), "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["source"], dead);

    // Errors before any daemon call are JSON too with --json.
    let (out, _) = ctl_exits(&env, &["show", "no-such-torrent", "--json"], 4);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["exit"], 4);
    assert!(
        v["error"].as_str().unwrap().contains("no torrent matches"),
        "{v}"
    );

    // create: a tracker that is no URL is refused (and nothing written); a missing input says
    // its cause once.
    let out_t = env.path().join("x.torrent");
    let (_, err) = ctl_exits(
        &env,
        &[
            "create",
            local.to_str().unwrap(),
            "-o",
            out_t.to_str().unwrap(),
            "-t",
            "notaurl",
        ],
        1,
    );
    assert!(err.contains("\"notaurl\" is not a tracker URL"), "{err}");
    assert!(!out_t.exists());
    let (_, err) = ctl_exits(
        &env,
        &[
            "create",
            nope.to_str().unwrap(),
            "-o",
            out_t.to_str().unwrap(),
        ],
        1,
    );
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    assert_eq!(err.matches("nope.torrent").count(), 1, "{err}");
}

// -----------------------------------------------------------------------------------------------
// 4. watch in a small terminal
// -----------------------------------------------------------------------------------------------

/// The frames `swarmctl watch` drew, from the raw bytes of its terminal: split at the
/// cursor movements that start a frame, escape sequences and `\r` removed.
fn frames(raw: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            let mut seq = String::new();
            for c in chars.by_ref() {
                seq.push(c);
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
            // `ESC[nF` (back to the frame's start) and `ESC[H` (home) begin a new frame.
            if seq.ends_with('F') || seq == "H" {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c != '\r' {
            current.push(c);
        }
    }
    out.push(current);
    out.into_iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| f.lines().map(str::to_owned).collect())
        .collect()
}

#[test]
fn watch_fits_a_small_terminal() {
    let env = TestEnv::new("ux-watch");
    let script = require_tool("script");
    let (_daemon, dirs) = start_daemon(&env);
    let mut hashes = Vec::new();
    for i in 0..8 {
        let (t, ih) = make_torrent(
            &env,
            &format!("a torrent with a long name, number {i}.bin"),
            &[i; 1000],
            &[],
        );
        swarmctl_ok(&env, &["add", t.to_str().unwrap(), "--paused"]);
        hashes.push(ih);
    }
    // A 6×50 terminal: at most 5 lines of fewer than 50 columns per frame.
    let mut cmd = Command::new(script);
    cmd.args(["-qfec"])
        .arg(format!(
            "stty rows 6 cols 50; exec {} watch",
            swarmctl_bin().display()
        ))
        .arg("/dev/null");
    isolate(&mut cmd, &default_home(&env));
    let watch = ChildGuard::spawn(&env, "watch-in-a-pty", cmd);
    let drawn = |g: &ChildGuard| {
        frames(
            &g.log_contents()
                .split_once('\n')
                .map(|(_, r)| r.to_owned())
                .unwrap_or_default(),
        )
    };
    wait_until(
        "watch to draw its first frame",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            watch.assert_running();
            drawn(&watch)
                .iter()
                .any(|f| f.iter().any(|l| l.contains("paused")))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", watch.log_contents()));
    // State changes make more frames.
    let first: Vec<&str> = hashes[..3].iter().map(String::as_str).collect();
    swarmctl_ok(&env, &[&["resume"], &first[..]].concat());
    swarmctl_ok(&env, &[&["pause"], &first[..]].concat());
    wait_until(
        "every torrent paused again",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || states(&dirs).iter().all(|(_, s)| s == "paused"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let all = drawn(&watch);
    assert!(!all.is_empty(), "{}", watch.log_contents());
    for f in &all {
        assert!(
            f.len() <= 5,
            "a frame of {} lines in 6 rows: {f:#?}",
            f.len()
        );
        for l in f {
            assert!(
                l.chars().count() < 50,
                "a line of {} columns in 50: {l:?}",
                l.chars().count()
            );
        }
    }
    let last = all.last().unwrap();
    assert!(last.last().unwrap().starts_with("… and "), "{last:#?}");
}

// -----------------------------------------------------------------------------------------------
// 5. Config paths and swarmd download
// -----------------------------------------------------------------------------------------------

#[test]
fn tilde_in_config_paths_is_the_home() {
    let env = TestEnv::new("ux-tilde");
    let home = default_home(&env);
    let config = env.path().join("tilde.toml");
    fs::write(
        &config,
        "[daemon]\ndownload_dir = \"~/dl\"\nstate_dir = \"~/st\"\n",
    )
    .unwrap();
    let p = Swarmd::command(&["--config", config.to_str().unwrap(), "print-config"])
        .name("print-config")
        .spawn(&env);
    let status = p.wait_exit(Duration::from_secs(20));
    let out = p.guard().log_contents();
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!("download_dir = \"{}\"", home.join("dl").display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("state_dir = \"{}\"", home.join("st").display())),
        "{out}"
    );
}

/// `swarmd download` without `--listen` while 6881 is taken (as by a running daemon): it used to
/// fail with "Address already in use".
#[test]
fn download_takes_a_free_port_when_6881_is_taken() {
    let env = TestEnv::new("ux-download-port");
    // Hold the port (or find it held already: either way it is taken).
    let _holder = TcpListener::bind("127.0.0.1:6881").ok();
    let (torrent, _) = make_torrent(&env, "done.bin", &[3; 100_000], &[]);
    // The data is complete in the output directory already: the download checks it and exits.
    let out_dir = env.subdir("out");
    fs::copy(torrent.with_file_name("done.bin"), out_dir.join("done.bin")).unwrap();
    let p = Swarmd::command(&[
        "download",
        torrent.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ])
    .name("download")
    .spawn(&env);
    let status = p.wait_exit(Duration::from_secs(60));
    let log = p.guard().log_contents();
    assert!(status.success(), "{log}");
    assert!(log.contains("port 6881 is not available"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("100.0% of 100000 bytes"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(" B/s,") && !line.contains("MB/s"), "{line}");
    assert!(line.contains(", seeding,"), "{line}");
}

// -----------------------------------------------------------------------------------------------
// 6. make install
// -----------------------------------------------------------------------------------------------

/// `make install` with `CARGO=false`: any compilation fails it. It installs what is in `RELEASE`
/// and refuses (naming the missing binary) when there is nothing built.
#[test]
fn make_install_installs_what_was_built_and_compiles_nothing() {
    let env = TestEnv::new("ux-make-install");
    let make = require_tool("make");
    let built = env.subdir("built");
    for b in ["swarmd", "swarmctl"] {
        fs::write(built.join(b), "#!/bin/sh\n").unwrap();
        fs::set_permissions(built.join(b), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run = |release: &Path, dest: &Path, prefix: &str| {
        Command::new(&make)
            .arg("-C")
            .arg(workspace_root())
            .arg("install")
            .arg("CARGO=false")
            .arg(format!("RELEASE={}", release.display()))
            .arg(format!("DESTDIR={}", dest.display()))
            .arg(format!("PREFIX={prefix}"))
            .output()
            .unwrap()
    };
    for prefix in ["/usr/local", "/usr"] {
        let dest = env.unique_subdir("dest");
        let out = run(&built, &dest, prefix);
        let text = output_text(&out);
        assert!(out.status.success(), "{text}");
        let root = dest.join(prefix.trim_start_matches('/'));
        for f in [
            "bin/swarmd",
            "bin/swarmctl",
            "lib/systemd/system/swarmd.service",
            "lib/sysusers.d/swarmd.conf",
        ] {
            assert!(root.join(f).exists(), "{prefix}: {f} missing\n{text}");
        }
        let unit = fs::read_to_string(root.join("lib/systemd/system/swarmd.service")).unwrap();
        assert!(
            unit.contains(&format!("ExecStart={prefix}/bin/swarmd --system run")),
            "{unit}"
        );
        assert!(dest.join("etc/swarmd/swarmd.toml").exists());
    }
    // Nothing built: refused, nothing installed.
    let dest = env.unique_subdir("dest");
    let out = run(&env.subdir("empty"), &dest, "/usr/local");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("swarmd is missing: run 'make build' first"),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&dest).unwrap().count(),
        0,
        "installed something"
    );
}
