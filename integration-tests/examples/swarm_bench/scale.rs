//! `scale`: many small seeding torrents in one `swarmd` daemon.
//!
//! 1. `N` payloads of `--scale-size` bytes (16 KiB pieces), every `.torrent` announcing to
//!    `http://127.0.0.1:1/announce` (nothing listens there: connection refused, retried with the
//!    daemon's back-off) and the data already in the daemon's download directory.
//! 2. The daemon starts (`NOTIFY_SOCKET` set, so `READY=1` is timed) with DHT, the watch
//!    directory and everything else not needed off, peers on 127.0.0.1.
//! 3. One `swarmctl add -o DATA t0000.torrent … tNNNN.torrent`; then `swarmctl stats --json`
//!    every 250 ms until every torrent seeds, confirmed with `swarmctl list --json`.
//! 4. After 5 s of rest: RSS and anonymous memory; then CPU over `--idle-secs` of idling,
//!    scaled to a minute; then 20 × `swarmctl list --json` (wall time of the whole command).
//! 5. SIGTERM (time to exit), start again: time to `READY=1`, then to every torrent seeding.
//! 6. [`IDLE_PEERS`] idle peers connect to one torrent (handshake, then only keep-alives); once
//!    the daemon counts them all and after 5 s of rest, CPU over `--idle-secs` again.
//!
//! With `--scale-transmission`, transmission-daemon gets the same torrents over its RPC
//! (`torrent-add`, one call each) for the add time, memory and idle CPU (no restart).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use swarm_integration_tests::payload::{Payload, KIB};
use swarm_integration_tests::swarmd::{default_home, isolate, swarmctl_bin, Swarmd, SwarmdProcess};
use swarm_integration_tests::transmission::TransmissionDaemon;
use swarm_integration_tests::util::{find_tool, free_tcp_port, TestEnv};

use crate::idle_peers::IdlePeers;
use crate::procmon::{cpu_secs, read_mem_kib};
use crate::report::{self, median, num};
use crate::{fmt_size, Opts};

const UNREACHABLE_TRACKER: &str = "http://127.0.0.1:1/announce";
/// Connected idle peers on one torrent, for the last measurement.
const IDLE_PEERS: usize = 200;

/// Runs swarmctl with the test home; stdout/stderr through files (a big `list --json` must not
/// fill a pipe we are not reading). Kills it after `timeout`.
fn ctl(env: &TestEnv, args: &[&str], timeout: Duration) -> Result<(Output, Duration), String> {
    let out_path = env.path().join("ctl.stdout");
    let err_path = env.path().join("ctl.stderr");
    let mut cmd = Command::new(swarmctl_bin());
    cmd.args(args).current_dir(env.path());
    isolate(&mut cmd, &default_home(env));
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).map_err(|e| e.to_string())?)
        .stderr(fs::File::create(&err_path).map_err(|e| e.to_string())?)
        .process_group(0);
    let t = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("swarmctl: {e}"))?;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if t.elapsed() > timeout {
            // SAFETY: the child is unreaped, so its pgid still names its own group.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
            return Err(format!("swarmctl {args:?} took longer than {timeout:?}"));
        }
        // Fine-grained: the list timing is a few milliseconds.
        std::thread::sleep(Duration::from_micros(200));
    };
    let took = t.elapsed();
    let out = Output {
        status,
        stdout: fs::read(&out_path).unwrap_or_default(),
        stderr: fs::read(&err_path).unwrap_or_default(),
    };
    if !out.status.success() {
        return Err(format!(
            "swarmctl {:?} failed ({}): {}",
            args.iter().take(4).collect::<Vec<_>>(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    Ok((out, took))
}

fn ctl_json(env: &TestEnv, args: &[&str]) -> Result<Value, String> {
    let (out, _) = ctl(env, args, Duration::from_secs(60))?;
    serde_json::from_slice(&out.stdout).map_err(|e| format!("swarmctl {args:?}: {e}"))
}

/// Number of seeding torrents per `swarmctl stats --json`.
fn seeding(env: &TestEnv) -> Result<u64, String> {
    let v = ctl_json(env, &["stats", "--json"])?;
    v["session"]["seeding"]
        .as_u64()
        .ok_or_else(|| format!("no session.seeding in {v}"))
}

/// Polls until `n` torrents seed; the time from `t0`.
fn wait_all_seeding(
    env: &TestEnv,
    daemon: &SwarmdProcess,
    n: u64,
    t0: Instant,
    timeout: Duration,
) -> Result<f64, String> {
    let mut last = 0;
    loop {
        if let Some(st) = daemon.guard().exit_status() {
            return Err(format!(
                "swarmd exited with {st}:\n{}",
                daemon.guard().log_tail(20)
            ));
        }
        match seeding(env) {
            Ok(s) if s >= n => return Ok(t0.elapsed().as_secs_f64()),
            Ok(s) => last = s,
            Err(_) if t0.elapsed() < Duration::from_secs(5) => {}
            Err(e) => return Err(e),
        }
        if t0.elapsed() > timeout {
            return Err(format!(
                "only {last} of {n} torrents seeding after {} s",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every torrent in `list --json` seeds.
fn confirm_list(env: &TestEnv, n: usize) -> Result<(), String> {
    let v = ctl_json(env, &["list", "--json"])?;
    let list = v.as_array().ok_or("list --json is not an array")?;
    let seeding = list.iter().filter(|t| t["state"] == "seeding").count();
    if list.len() == n && seeding == n {
        Ok(())
    } else {
        Err(format!(
            "list --json: {} torrents, {seeding} seeding (expected {n})",
            list.len()
        ))
    }
}

/// Spawns the daemon with `NOTIFY_SOCKET` and waits for `READY=1`; returns it, the instant
/// just before the spawn, and the seconds to `READY=1`.
fn start_daemon(
    env: &TestEnv,
    config: &Path,
    port: u16,
    name: &str,
    timeout: Duration,
) -> Result<(SwarmdProcess, Instant, f64), String> {
    let sock_path = env.path().join(format!("notify-{name}.sock"));
    let _ = fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).map_err(|e| format!("notify socket: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let daemon = Swarmd::command(&[] as &[&str])
        .arg("--config")
        .arg(config)
        .arg("run")
        .port(port)
        .name(name)
        .env("RUST_LOG", "warn")
        .env("NOTIFY_SOCKET", &sock_path)
        .spawn(env);
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]);
            if msg.lines().any(|l| l == "READY=1") {
                return Ok((daemon, t0, t0.elapsed().as_secs_f64()));
            }
        }
        if let Some(st) = daemon.guard().exit_status() {
            return Err(format!(
                "swarmd exited with {st} before READY=1:\n{}",
                daemon.guard().log_tail(20)
            ));
        }
        if t0.elapsed() > timeout {
            return Err(format!("no READY=1 within {} s", timeout.as_secs()));
        }
    }
}

/// Connects [`IDLE_PEERS`] idle peers to the first torrent of the list, waits until the daemon
/// counts them, rests 5 s and returns the daemon's CPU seconds per minute over `--idle-secs`
/// (checking that the peers stayed connected).
fn idle_peers_cpu(
    env: &TestEnv,
    daemon: &SwarmdProcess,
    port: u16,
    opts: &Opts,
) -> Result<f64, String> {
    let list = ctl_json(env, &["list", "--json"])?;
    let hex = list[0]["info_hash"]
        .as_str()
        .ok_or("list --json: no info_hash")?
        .to_owned();
    let ih = swarm_wire::InfoHash::from_hex(&hex).ok_or("list --json: bad info_hash")?;
    eprintln!("swarm_bench: {IDLE_PEERS} idle peers on torrent {hex}");
    let peers = IdlePeers::connect(([127, 0, 0, 1], port).into(), ih.0, IDLE_PEERS)?;
    let connected = || -> Result<u64, String> {
        let v = ctl_json(env, &["show", &hex, "--json"])?;
        v["peers"]
            .as_u64()
            .ok_or_else(|| format!("show --json: no peers in {v}"))
    };
    let t0 = Instant::now();
    loop {
        let n = connected()?;
        if n >= IDLE_PEERS as u64 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "only {n} of {IDLE_PEERS} idle peers connected after 30 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(5));
    eprintln!(
        "swarm_bench: measuring CPU with {IDLE_PEERS} idle peers over {} s",
        opts.idle_secs
    );
    let (_, per_min) = idle_cpu(daemon.guard().pid(), opts.idle_secs);
    let n = connected()?;
    if n < IDLE_PEERS as u64 {
        return Err(format!(
            "{n} of {IDLE_PEERS} idle peers still connected after the measurement"
        ));
    }
    drop(peers);
    Ok(per_min)
}

/// `(RssAnon, VmRSS)` in MiB.
fn mem_mib(pid: u32) -> (f64, f64) {
    let (a, r) = read_mem_kib(pid);
    (a as f64 / 1024.0, r as f64 / 1024.0)
}

fn threads(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// CPU seconds over `secs` of idling, and the same scaled to one minute.
fn idle_cpu(pid: u32, secs: u64) -> (f64, f64) {
    let a = cpu_secs(pid);
    std::thread::sleep(Duration::from_secs(secs));
    let used = cpu_secs(pid) - a;
    (used, used * 60.0 / secs as f64)
}

struct Numbers {
    setup_s: f64,
    ready_empty_s: f64,
    add_cmd_s: f64,
    all_seeding_s: f64,
    anon_mib: f64,
    rss_mib: f64,
    threads: usize,
    idle_cpu_s: f64,
    idle_cpu_per_min: f64,
    list_ms: Vec<f64>,
    list_bytes: usize,
    anon_after_mib: f64,
    rss_after_mib: f64,
    stop_s: f64,
    restart_ready_s: f64,
    restart_seeding_s: f64,
    restart_anon_mib: f64,
    restart_rss_mib: f64,
    /// CPU s per minute with [`IDLE_PEERS`] idle peers on one torrent (and every torrent seeding).
    peers_cpu_per_min: f64,
}

struct TrNumbers {
    add_s: f64,
    all_seeding_s: f64,
    anon_mib: f64,
    rss_mib: f64,
    idle_cpu_per_min: f64,
    get_ms: Vec<f64>,
}

pub fn run(opts: &Opts) -> Result<String, String> {
    let n = opts.scale_torrents;
    let env = TestEnv::new("bench-scale");
    let timeout = opts.timeout;

    // 1. Payloads and torrents.
    let t = Instant::now();
    let data = env.subdir("data");
    let tdir = env.subdir("torrents");
    let piece = (16 * KIB).min(opts.scale_size.next_power_of_two());
    let mut torrents: Vec<PathBuf> = Vec::with_capacity(n);
    for i in 0..n {
        let p = Payload::single(
            &data,
            &format!("t{i:04}.bin"),
            opts.scale_size,
            1000 + i as u64,
        );
        let path = tdir.join(format!("t{i:04}.torrent"));
        p.make_torrent_native(&path, piece, &[UNREACHABLE_TRACKER]);
        torrents.push(path);
    }
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!(
        "swarm_bench: {n} torrents of {} written in {setup_s:.1} s",
        fmt_size(opts.scale_size)
    );

    // 2. The daemon.
    let port = free_tcp_port();
    let config = env.path().join("swarmd.toml");
    fs::write(
        &config,
        format!(
            r#"# written by swarm_bench (scale)
[daemon]
state_dir = "{state}"
download_dir = "{data}"
log_level = "warn"

[network]
listen = "127.0.0.1:{port}"
max_peers_per_torrent = 250
max_peers_global = 2000

[dht]
enabled = false
bootstrap = []

[watch]
enabled = false
"#,
            state = env.path().join("state").display(),
            data = data.display(),
        ),
    )
    .map_err(|e| e.to_string())?;
    let (daemon, _, ready_empty_s) = start_daemon(&env, &config, port, "swarmd", timeout)?;
    let pid = daemon.guard().pid();

    // 3. Add everything.
    let t0 = Instant::now();
    let mut args: Vec<String> = vec!["add".into(), "-o".into(), data.display().to_string()];
    args.extend(torrents.iter().map(|p| p.display().to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    ctl(&env, &argv, timeout)?;
    let add_cmd_s = t0.elapsed().as_secs_f64();
    let all_seeding_s = wait_all_seeding(&env, &daemon, n as u64, t0, timeout)?;
    confirm_list(&env, n)?;
    eprintln!("swarm_bench: added in {add_cmd_s:.2} s, all seeding after {all_seeding_s:.2} s");

    // 4. Rest, memory, idle CPU, list latency.
    std::thread::sleep(Duration::from_secs(5));
    let (anon_mib, rss_mib) = mem_mib(pid);
    let threads = threads(pid);
    eprintln!("swarm_bench: measuring idle CPU over {} s", opts.idle_secs);
    let (idle_cpu_s, idle_cpu_per_min) = idle_cpu(pid, opts.idle_secs);
    let mut list_ms = Vec::new();
    let mut list_bytes = 0;
    for _ in 0..20 {
        let (out, took) = ctl(&env, &["list", "--json"], Duration::from_secs(60))?;
        list_bytes = out.stdout.len();
        list_ms.push(took.as_secs_f64() * 1000.0);
    }
    let (anon_after_mib, rss_after_mib) = mem_mib(pid);

    // 5. Restart.
    let mut daemon = daemon;
    let t = Instant::now();
    daemon.guard().signal_leader(libc::SIGTERM);
    daemon
        .guard()
        .wait_exit(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let stop_s = t.elapsed().as_secs_f64();
    daemon.guard_mut().stop();
    let (daemon2, t0, restart_ready_s) =
        start_daemon(&env, &config, port, "swarmd-restart", timeout)?;
    let restart_seeding_s = wait_all_seeding(&env, &daemon2, n as u64, t0, timeout)?;
    confirm_list(&env, n)?;
    std::thread::sleep(Duration::from_secs(2));
    let (restart_anon_mib, restart_rss_mib) = mem_mib(daemon2.guard().pid());

    // 6. Idle peers on one torrent.
    let peers_cpu_per_min = idle_peers_cpu(&env, &daemon2, port, opts)?;
    drop(daemon2);

    let nums = Numbers {
        setup_s,
        ready_empty_s,
        add_cmd_s,
        all_seeding_s,
        anon_mib,
        rss_mib,
        threads,
        idle_cpu_s,
        idle_cpu_per_min,
        list_ms,
        list_bytes,
        anon_after_mib,
        rss_after_mib,
        stop_s,
        restart_ready_s,
        restart_seeding_s,
        restart_anon_mib,
        restart_rss_mib,
        peers_cpu_per_min,
    };

    let tr = if opts.scale_transmission {
        if find_tool("transmission-daemon").is_none() {
            None
        } else {
            Some(transmission(opts, &env, &torrents, &data)?)
        }
    } else {
        None
    };
    Ok(render(opts, &nums, tr.as_ref()))
}

fn transmission(
    opts: &Opts,
    env: &TestEnv,
    torrents: &[PathBuf],
    data: &Path,
) -> Result<TrNumbers, String> {
    eprintln!("swarm_bench: transmission-daemon with the same torrents");
    let tr = TransmissionDaemon::start(env);
    let pid = tr.guard().pid();
    let n = torrents.len();
    let t0 = Instant::now();
    for t in torrents {
        tr.add_torrent(t, data);
    }
    let add_s = t0.elapsed().as_secs_f64();
    let all_seeding_s = loop {
        let v = tr.rpc("torrent-get", json!({"fields": ["id", "status"]}))?;
        let seeding = v["torrents"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|t| t["status"] == 6).count());
        if seeding >= n {
            break t0.elapsed().as_secs_f64();
        }
        if t0.elapsed() > opts.timeout {
            return Err(format!("transmission: only {seeding} of {n} seeding"));
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    std::thread::sleep(Duration::from_secs(5));
    let (anon_mib, rss_mib) = mem_mib(pid);
    let (_, idle_cpu_per_min) = idle_cpu(pid, opts.idle_secs);
    let fields = json!({"fields": ["id", "hashString", "name", "status", "percentDone", "totalSize",
        "haveValid", "rateDownload", "rateUpload", "downloadedEver", "uploadedEver",
        "peersConnected", "downloadDir", "errorString"]});
    let mut get_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        tr.rpc("torrent-get", fields.clone())?;
        get_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(TrNumbers {
        add_s,
        all_seeding_s,
        anon_mib,
        rss_mib,
        idle_cpu_per_min,
        get_ms,
    })
}

fn render(opts: &Opts, x: &Numbers, tr: Option<&TrNumbers>) -> String {
    let mut md = String::new();
    let mut title = format!(
        "scale: {} seeding torrents of {} in one daemon, unreachable tracker",
        opts.scale_torrents,
        fmt_size(opts.scale_size)
    );
    if let Some(l) = &opts.label {
        let _ = write!(title, " — {l}");
    }
    let mut versions = vec![report::swarmd_version()];
    if tr.is_some() {
        versions.push(report::transmission_version());
    }
    report::preamble(&mut md, &title, &opts.command, &versions);
    let idle_how = if opts.idle_secs == 60 {
        "measured over 60 s".to_string()
    } else {
        format!("measured over {} s and scaled to 60 s", opts.idle_secs)
    };
    let lmin = x.list_ms.iter().copied().fold(f64::INFINITY, f64::min);
    let lmax = x.list_ms.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        md,
        "\n| what | swarmd |{}",
        if tr.is_some() {
            " transmission-daemon |"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "|---|---|{}", if tr.is_some() { "---|" } else { "" });
    let row = |md: &mut String, what: &str, ours: String, theirs: Option<String>| {
        let _ = match theirs {
            Some(t) => writeln!(md, "| {what} | {ours} | {t} |"),
            None if tr.is_some() => writeln!(md, "| {what} | {ours} | - |"),
            None => writeln!(md, "| {what} | {ours} |"),
        };
    };
    row(
        &mut md,
        "start (empty) → READY=1, s",
        format!("{:.3}", x.ready_empty_s),
        None,
    );
    row(
        &mut md,
        "`swarmctl add` of all torrents (one command), s",
        format!("{:.2}", x.add_cmd_s),
        tr.map(|t| format!("{:.2} (one `torrent-add` RPC each)", t.add_s)),
    );
    row(
        &mut md,
        "add → all seeding (checked), s",
        format!("{:.2}", x.all_seeding_s),
        tr.map(|t| format!("{:.2}", t.all_seeding_s)),
    );
    row(
        &mut md,
        "RssAnon after 5 s rest, MiB",
        format!("{:.1}", x.anon_mib),
        tr.map(|t| format!("{:.1}", t.anon_mib)),
    );
    row(
        &mut md,
        "VmRSS after 5 s rest, MiB",
        format!("{:.1}", x.rss_mib),
        tr.map(|t| format!("{:.1}", t.rss_mib)),
    );
    row(&mut md, "threads", x.threads.to_string(), None);
    row(
        &mut md,
        &format!("idle CPU s per minute ({idle_how})"),
        format!(
            "{:.3} ({:.3} s in {} s)",
            x.idle_cpu_per_min, x.idle_cpu_s, opts.idle_secs
        ),
        tr.map(|t| format!("{:.3}", t.idle_cpu_per_min)),
    );
    row(
        &mut md,
        "`swarmctl list --json`, ms (median of 20; min–max)",
        format!(
            "{} ({:.1}–{:.1}; {} KiB of JSON)",
            num(median(&x.list_ms), 1),
            lmin,
            lmax,
            x.list_bytes / 1024
        ),
        tr.map(|t| {
            format!(
                "{} (`torrent-get` RPC, 14 fields)",
                num(median(&t.get_ms), 1)
            )
        }),
    );
    row(
        &mut md,
        "RssAnon / VmRSS after the idle window and the 20 lists, MiB",
        format!("{:.1} / {:.1}", x.anon_after_mib, x.rss_after_mib),
        None,
    );
    row(
        &mut md,
        "SIGTERM → exit, s",
        format!("{:.2}", x.stop_s),
        None,
    );
    row(
        &mut md,
        "restart: spawn → READY=1, s",
        format!("{:.3}", x.restart_ready_s),
        None,
    );
    row(
        &mut md,
        "restart: spawn → all seeding, s",
        format!("{:.2}", x.restart_seeding_s),
        None,
    );
    row(
        &mut md,
        "restart: RssAnon / VmRSS, MiB",
        format!("{:.1} / {:.1}", x.restart_anon_mib, x.restart_rss_mib),
        None,
    );
    row(
        &mut md,
        &format!(
            "idle CPU s per minute with {IDLE_PEERS} connected idle peers on one torrent (all torrents seeding; {idle_how})"
        ),
        format!("{:.3}", x.peers_cpu_per_min),
        None,
    );
    let _ = writeln!(
        md,
        "\nRaw `swarmctl list --json` times, ms: {}",
        x.list_ms
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        md,
        "\n(Writing the {} payloads and torrents took {:.1} s and is not part of any number.)",
        opts.scale_torrents, x.setup_s
    );
    md
}
