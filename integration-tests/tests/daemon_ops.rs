//! Running the daemon, as an operator meets it (issue 22, items 4, 5, 7, 8 and 9): the real
//! `swarmd` and `swarmctl` binaries (and `socat`), everything on 127.0.0.1 and inside the test's
//! temp dir.
//!
//! 4. one daemon per state directory: a second one refuses to start and names the first;
//! 5. limits set with `swarmctl limits` survive a restart (the config file untouched), and
//!    `swarmctl shutdown --wait; swarmd` starts the next daemon on the same port and state;
//! 7. `swarmd check-config` refuses what the daemon refuses, with the same message;
//! 8. idle control connections neither lock the owner out nor stay forever; errors are in the
//!    protocol's words; absurd limits are refused;
//! 9. the documented `socat` recipe for `events.subscribe` receives events.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::daemon::{self as testd, rpc, DaemonConfig, DaemonDirs};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::{swarmctl_code, swarmctl_ok};

const RUST_LOG: &str = "info,swarmd=debug";
/// Bound of every wait below; none of them decides pass/fail by how long it took.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

fn config<'a>(written_by: &'a str, name: Option<&'a str>, extra: &'a str) -> DaemonConfig<'a> {
    DaemonConfig {
        name,
        watch_rescan_secs: None,
        extra,
        ..DaemonConfig::new(written_by)
    }
}

fn start(env: &TestEnv, dirs: &DaemonDirs, name: &str) -> SwarmdProcess {
    testd::start(
        env,
        dirs,
        Swarmd::command(&[] as &[&str]).name(name),
        RUST_LOG,
    )
}

/// A small single-file torrent (announcing to `tracker`), its payload left out of any save dir.
fn small_torrent(env: &TestEnv, tracker: &str) -> Torrent {
    let payload = Payload::single(&env.subdir("payload"), "ops.bin", 64 * KIB, 7);
    payload.make_torrent_native(&env.path().join("ops.torrent"), 16 * KIB, &[tracker])
}

fn torrent_count(socket: &Path) -> usize {
    rpc(socket, "torrent.list", None)
        .expect("torrent.list")
        .as_array()
        .map_or(0, Vec::len)
}

// -----------------------------------------------------------------------------------------------
// 4. One daemon per state directory
// -----------------------------------------------------------------------------------------------

#[test]
fn a_second_daemon_on_the_same_state_directory_refuses_to_start() {
    let env = TestEnv::new("ops-state-lock");
    let me = "integration-tests/tests/daemon_ops.rs (state lock)";
    let a = config(me, Some("a"), "").write(&env, free_tcp_port());
    // Its own socket (own home) and port, the first one's state directory.
    let mut b = config(me, Some("b"), "").write(&env, free_tcp_port());
    let text = fs::read_to_string(&b.config).unwrap().replace(
        &b.state.display().to_string(),
        &a.state.display().to_string(),
    );
    fs::write(&b.config, text).unwrap();
    b.state = a.state.clone();

    let first = start(&env, &a, "swarmd-a");
    let torrent = small_torrent(&env, "http://127.0.0.1:1/announce");
    let path = torrent.path.display().to_string();
    let added = rpc(
        &a.socket,
        "torrent.add",
        Some(json!({"path": path, "paused": true})),
    )
    .expect("torrent.add");
    let pid = rpc(&a.socket, "daemon.info", None).unwrap()["pid"].clone();

    let second = Swarmd::command(&[] as &[&str])
        .arg("--config")
        .arg(&b.config)
        .arg("run")
        .home(&b.home)
        .name("swarmd-b")
        .spawn(&env);
    let status = second.wait_exit(WAIT);
    assert!(
        !status.success(),
        "the second daemon ran on a locked state directory"
    );
    let log = second.guard().log_contents();
    let expected = format!("another swarmd (pid {pid}) uses {}", a.state.display());
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
    assert!(!b.socket.exists(), "the second daemon bound its socket");

    // The first daemon is untouched and still has its torrent.
    first.guard().assert_running();
    assert_eq!(torrent_count(&a.socket), 1, "{added}");
}

// -----------------------------------------------------------------------------------------------
// 5. Run-time limits kept across restarts; shutdown --wait
// -----------------------------------------------------------------------------------------------

#[test]
fn limits_set_at_run_time_survive_a_restart_and_a_config_edit_replaces_them() {
    let env = TestEnv::new("ops-runtime-limits");
    let dirs = config(
        "integration-tests/tests/daemon_ops.rs (run-time limits)",
        None,
        "[limits]\ndownload_kib_s = 100\n",
    )
    .write(&env, free_tcp_port());
    let config_before = fs::read(&dirs.config).unwrap();
    let limits = |env: &TestEnv| -> Value {
        serde_json::from_str(&swarmctl_ok(env, &["limits", "--json"])).unwrap()
    };

    let daemon = start(&env, &dirs, "swarmd-1");
    assert_eq!(limits(&env), json!({"download": 102400, "upload": null}));
    swarmctl_ok(&env, &["limits", "--down", "3M", "--up", "512K"]);
    let set = json!({"download": 3 << 20, "upload": 512 << 10});
    assert_eq!(limits(&env), set);
    swarmctl_ok(&env, &["shutdown", "--wait"]);
    drop(daemon);

    let daemon = start(&env, &dirs, "swarmd-2");
    assert_eq!(
        limits(&env),
        set,
        "the run-time limits were lost on restart"
    );
    assert_eq!(
        fs::read(&dirs.config).unwrap(),
        config_before,
        "the daemon wrote the user's config file"
    );
    let stats = swarmctl_ok(&env, &["stats"]);
    assert!(
        stats.contains("set at run time") && stats.contains("runtime-settings.json"),
        "stats does not say where the limits come from:\n{stats}"
    );
    assert!(
        daemon
            .guard()
            .log_contents()
            .contains("override [limits] of the config"),
        "the log does not say the run-time limits override the config"
    );

    // Editing [limits] in the file and reloading is the newest change: it wins, also later.
    let edited = String::from_utf8(config_before)
        .unwrap()
        .replace("download_kib_s = 100", "download_kib_s = 200");
    fs::write(&dirs.config, edited).unwrap();
    daemon.guard().signal(libc::SIGHUP);
    wait_until("the reload to apply [limits]", WAIT, POLL, || {
        limits(&env) == json!({"download": 204800, "upload": null})
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.guard().log_tail(30)));
    swarmctl_ok(&env, &["shutdown", "--wait"]);
    drop(daemon);
    let _daemon = start(&env, &dirs, "swarmd-3");
    assert_eq!(limits(&env), json!({"download": 204800, "upload": null}));
}

#[test]
fn shutdown_wait_returns_once_the_next_daemon_can_start() {
    let env = TestEnv::new("ops-shutdown-wait");
    // A tracker that never answers `stopped`: the daemon keeps stopping for
    // [trackers] stopped_timeout_secs (3 s here), long after it answered a plain shutdown.
    let tracker = FakeHttpTracker::start();
    tracker.set_silent_on(Some("stopped"));
    let dirs = config(
        "integration-tests/tests/daemon_ops.rs (shutdown --wait)",
        None,
        "",
    )
    .write(&env, free_tcp_port());
    let first = start(&env, &dirs, "swarmd-1");
    let torrent = small_torrent(&env, &tracker.announce_url());
    swarmctl_ok(&env, &["add", &torrent.path.display().to_string()]);
    tracker.wait_for_announce("started", WAIT, |a| a.event() == Some("started"));

    let out = swarmctl_ok(&env, &["shutdown", "--wait"]);
    assert_eq!(out.trim(), "swarmd is stopped");
    assert!(
        tracker.events().iter().any(|e| e == "stopped"),
        "the daemon did not announce stopped: {:?}",
        tracker.events()
    );
    // Same port, same socket, same state directory, at once: no "Address already in use", no
    // "another swarmd uses STATE_DIR".
    let _second = start(&env, &dirs, "swarmd-2");
    assert_eq!(torrent_count(&dirs.socket), 1);
    let log = first.guard().log_contents();
    assert!(log.contains("swarmd stopped"), "{log}");
}

// -----------------------------------------------------------------------------------------------
// 7. check-config and the daemon agree
// -----------------------------------------------------------------------------------------------

#[test]
fn check_config_refuses_what_the_daemon_refuses() {
    let env = TestEnv::new("ops-check-config");
    let cases = [
        (
            "[control]\ngroup = \"no-such-group-swarmd-ops\"\n",
            "control.group",
        ),
        (
            "[control]\nallow = [\"no-such-user-swarmd-ops\"]\n",
            "control.allow",
        ),
        (
            "[limits]\nupload_slots_per_torrent = 0\n",
            "limits.upload_slots_per_torrent",
        ),
        (
            "[limits]\nupload_slots_global = 0\n",
            "limits.upload_slots_global",
        ),
        (
            "[daemon]\nlog_level = \"info,swarmd[peer]=debug\"\n",
            "daemon.log_level",
        ),
    ];
    for (i, (text, key)) in cases.into_iter().enumerate() {
        let file = env.path().join(format!("bad-{i}.toml"));
        let socket = env.path().join(format!("bad-{i}.sock"));
        let state = env.path().join(format!("state-{i}"));
        let full = format!(
            "# written by integration-tests/tests/daemon_ops.rs\n{text}\n[network]\n\
             listen = \"127.0.0.1:{}\"\n",
            free_tcp_port()
        );
        fs::write(&file, add_keys(&full, &socket, &state)).unwrap();

        let check = Command::new(swarmd_bin())
            .arg("--config")
            .arg(&file)
            .arg("check-config")
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr).into_owned();
        assert_eq!(
            check.status.code(),
            Some(1),
            "check-config accepted {text:?}: {}{check_err}",
            String::from_utf8_lossy(&check.stdout)
        );
        assert!(check_err.contains(key), "{check_err}");

        let run = Swarmd::command(&[] as &[&str])
            .arg("--config")
            .arg(&file)
            .arg("run")
            .name(&format!("swarmd-bad-{i}"))
            .spawn(&env);
        assert!(
            !run.wait_exit(WAIT).success(),
            "the daemon ran with {text:?}"
        );
        let log = run.guard().log_contents();
        let message = check_err.trim().trim_start_matches("swarmd: ");
        assert!(
            log.contains(message),
            "the daemon refused {text:?} differently from check-config ({message:?}):\n{log}"
        );
    }
}

/// `text` with the test's socket and state directory added (to an existing `[control]` /
/// `[daemon]` section, or as new sections).
fn add_keys(text: &str, socket: &Path, state: &Path) -> String {
    let mut out = text.to_owned();
    for (section, line) in [
        ("[control]", format!("socket = \"{}\"", socket.display())),
        ("[daemon]", format!("state_dir = \"{}\"", state.display())),
    ] {
        out = match out.find(section) {
            Some(at) => {
                let end = at + section.len();
                format!("{}\n{line}{}", &out[..end], &out[end..])
            }
            None => format!("{out}\n{section}\n{line}\n"),
        };
    }
    format!("{out}\n[dht]\nenabled = false\n[watch]\nenabled = false\n")
}

// -----------------------------------------------------------------------------------------------
// 8. The control socket cannot be locked up; errors for people
// -----------------------------------------------------------------------------------------------

/// The owner-or-root reserve of `[control] max_clients` (`swarmd::control::OWNER_RESERVE`).
const OWNER_RESERVE: usize = 4;

#[test]
fn idle_connections_neither_lock_the_owner_out_nor_stay() {
    let env = TestEnv::new("ops-idle");
    let dirs = config(
        "integration-tests/tests/daemon_ops.rs (idle connections)",
        None,
        "[control]\nmax_clients = 3\nidle_timeout_secs = 2\n",
    )
    .write(&env, free_tcp_port());
    let _daemon = start(&env, &dirs, "swarmd");
    // A subscriber is never idle.
    let mut subscriber = Line::connect(&dirs.socket);
    subscriber.send(r#"{"jsonrpc":"2.0","id":1,"method":"events.subscribe"}"#);
    assert!(subscriber.next().contains("\"subscribed\":true"));

    // Connections that say nothing, as anyone in the socket's group could open them; the
    // subscriber above holds one of the three shared slots.
    let idle: Vec<UnixStream> = (0..2)
        .map(|_| UnixStream::connect(&dirs.socket).unwrap())
        .collect();
    // The shared slots are full; the daemon's owner (this test's uid) still gets in.
    let (code, out, err) = swarmctl_code(&env, &["list"]);
    assert_eq!(code, 0, "the owner was locked out: {out}{err}");
    let reserve: Vec<UnixStream> = (0..OWNER_RESERVE)
        .map(|_| UnixStream::connect(&dirs.socket).unwrap())
        .collect();
    // Turned away unasked (a request written now could meet a closed socket).
    let busy = Line::connect(&dirs.socket).next();
    assert!(busy.contains("-32008"), "not turned away when full: {busy}");

    // Every idle connection is told why and closed; then there is room again.
    for mut c in idle.into_iter().chain(reserve) {
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut c, &mut text)
            .expect("an idle connection was not closed");
        assert!(text.contains("idle_timeout_secs"), "{text:?}");
    }
    assert!(rpc(&dirs.socket, "daemon.info", None).is_ok());

    // The subscriber outlived the idle timeout and still gets events.
    let torrent = small_torrent(&env, "http://127.0.0.1:1/announce");
    swarmctl_ok(
        &env,
        &["add", "--paused", &torrent.path.display().to_string()],
    );
    let event = subscriber.next();
    assert!(event.contains("\"event\":\"added\""), "{event}");
}

#[test]
fn control_errors_are_in_words_and_absurd_limits_are_refused() {
    let env = TestEnv::new("ops-words");
    let dirs = config("integration-tests/tests/daemon_ops.rs (words)", None, "")
        .write(&env, free_tcp_port());
    let _daemon = start(&env, &dirs, "swarmd");
    let leaks = |message: &str| {
        for rust in ["enum", "flattened", "untagged", "u64", "field"] {
            assert!(!message.contains(rust), "{rust:?} in {message:?}");
        }
    };
    let add = rpc(&dirs.socket, "torrent.add", Some(json!({"paused": true}))).unwrap_err();
    assert!(add.contains("\\\"magnet\\\""), "{add}");
    leaks(&add);
    let bad_id = raw_line(
        &dirs.socket,
        r#"{"jsonrpc":"2.0","id":{"x":1},"method":"torrent.list"}"#,
    );
    assert!(
        bad_id.contains("must be a whole number or a string"),
        "{bad_id}"
    );
    leaks(&bad_id);
    let negative = rpc(
        &dirs.socket,
        "session.set_limits",
        Some(json!({"download": -5})),
    )
    .unwrap_err();
    leaks(&negative);

    for (params, words) in [
        (json!({"download": 1}), "below the smallest limit"),
        (json!({"upload": u64::MAX}), "above the largest limit"),
    ] {
        let e = rpc(&dirs.socket, "session.set_limits", Some(params)).unwrap_err();
        assert!(e.contains(words) && e.contains("0 means unlimited"), "{e}");
    }
    let (code, _, err) = swarmctl_code(&env, &["limits", "--down", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("below the smallest limit"), "{err}");
    assert_eq!(
        rpc(&dirs.socket, "session.get_limits", None).unwrap(),
        json!({"download": null, "upload": null}),
        "a refused limit was applied"
    );
}

/// Sends one raw line on a new connection and returns the answer line.
fn raw_line(socket: &Path, line: &str) -> String {
    let mut c = Line::connect(socket);
    c.send(line);
    c.next()
}

/// A raw line-level connection to the control socket; reads wait at most [`WAIT`].
struct Line {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Line {
    fn connect(socket: &Path) -> Line {
        let s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Line {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// The next line; panics when the daemon says nothing for [`WAIT`] or closes.
    fn next(&mut self) -> String {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .expect("no line from swarmd");
        assert!(n > 0, "swarmd closed the connection");
        line
    }
}

// -----------------------------------------------------------------------------------------------
// 9. Events over socat, as docs/control-protocol.md shows them
// -----------------------------------------------------------------------------------------------

#[test]
fn the_documented_socat_recipe_receives_events() {
    let env = TestEnv::new("ops-socat");
    let socat = require_tool("socat");
    let dirs = config("integration-tests/tests/daemon_ops.rs (socat)", None, "")
        .write(&env, free_tcp_port());
    let daemon = start(&env, &dirs, "swarmd");
    let sockets_before = open_sockets(daemon.guard().pid());

    // docs/control-protocol.md, "Follow events until Ctrl-C".
    let recipe = format!(
        "echo '{{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"events.subscribe\"}}' \
         | {} -t 1000000 - UNIX-CONNECT:{}",
        socat.display(),
        dirs.socket.display()
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&recipe);
    let follower = ChildGuard::spawn(&env, "socat-events", cmd);
    wait_until("socat to be subscribed", WAIT, POLL, || {
        follower.log_contents().contains("\"subscribed\":true")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", follower.log_tail(10)));

    let torrent = small_torrent(&env, "http://127.0.0.1:1/announce");
    swarmctl_ok(
        &env,
        &["add", "--paused", &torrent.path.display().to_string()],
    );
    wait_until("socat to print the added event", WAIT, POLL, || {
        follower.log_contents().contains("\"event\":\"added\"")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", follower.log_tail(10)));
    follower.assert_running();

    // Ctrl-C: once socat is gone for good, the daemon lets go of the connection.
    drop(follower);
    wait_until(
        "the daemon to close the subscriber's socket",
        WAIT,
        POLL,
        || open_sockets(daemon.guard().pid()) <= sockets_before,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.guard().log_tail(10)));
}

/// How many sockets process `pid` has open.
fn open_sockets(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// A daemon configured by its default file (no `--config`): deleting the file and reloading keeps
/// the running values (an error in the log), instead of going back to the built-in defaults.
#[test]
fn a_reload_after_the_default_config_file_was_deleted_keeps_the_running_values() {
    let env = TestEnv::new("ops-reload-deleted");
    let dirs = config(
        "integration-tests/tests/daemon_ops.rs (reload without the file)",
        None,
        "[limits]\ndownload_kib_s = 100\n",
    )
    .write(&env, free_tcp_port());
    let default_file = dirs.home.join(".config/swarmd/swarmd.toml");
    fs::create_dir_all(default_file.parent().unwrap()).unwrap();
    fs::rename(&dirs.config, &default_file).unwrap();
    let daemon = Swarmd::command(&["run"])
        .name("swarmd")
        .port(dirs.port)
        .home(&dirs.home)
        .env("RUST_LOG", RUST_LOG)
        .spawn(&env);
    wait_until("the control socket", WAIT, POLL, || {
        daemon.guard().assert_running();
        rpc(&dirs.socket, "daemon.info", None).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.guard().log_tail(30)));
    let info = rpc(&dirs.socket, "daemon.info", None).unwrap();
    assert_eq!(info["config_file"], default_file.display().to_string());
    let limits = || rpc(&dirs.socket, "session.get_limits", None).unwrap();
    assert_eq!(limits()["download"], 102400);

    fs::remove_file(&default_file).unwrap();
    daemon.guard().signal(libc::SIGHUP);
    wait_until("the reload to be refused", WAIT, POLL, || {
        daemon
            .guard()
            .log_contents()
            .contains("the config file is gone; keeping the running configuration")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.guard().log_tail(30)));
    assert_eq!(
        limits()["download"],
        102400,
        "the reload fell back to defaults"
    );
    let info = rpc(&dirs.socket, "daemon.info", None).unwrap();
    assert_eq!(info["config_file"], default_file.display().to_string());
}
