//! `swarm_bench`: loopback benchmarks of swarmd against real BitTorrent clients.
//!
//! ```text
//! cargo run --release -p swarm-integration-tests --example swarm_bench -- [SCENARIO...] [OPTIONS]
//! ```
//!
//! Scenarios (default: `download`):
//! * `download`: one libtorrent seeder (seed mode) → leecher ∈ {swarmd, libtorrent, aria2,
//!   rqbit}, `--runs` alternating runs each;
//! * `encrypted`: as `download`, with MSE/PE (RC4) required by the libtorrent seeder and the
//!   leecher ∈ {swarmd, libtorrent} (compare with `download` for the cost of encryption);
//! * `utp-download`: the same over uTP: a libtorrent seeder that speaks uTP only → leecher ∈
//!   {swarmd (default transports: TCP refused, falls back to uTP), libtorrent (uTP only)};
//! * `upload`: an rqbit leecher (libtorrent when rqbit is missing) fetching from a swarmd seeder
//!   vs from a libtorrent seeder;
//! * `many-sources`: seeders libtorrent + aria2 + rqbit + swarmd → swarmd leecher vs rqbit
//!   leecher (libtorrent when rqbit is missing);
//! * `scale`: 1 000 small seeding torrents in one `swarmd` daemon: time to add, memory, idle
//!   CPU, `swarmctl list --json` latency, restart to READY;
//! * `lab-flash`, `lab-mixed`, `lab-late`, `lab-seed-leaves` (`lab` = all four): swarms of
//!   swarmd and libtorrent on hosts with capped uplinks, each host a network namespace (root);
//!   see `lab.rs`;
//! * `micro`: collects criterion results (`target/criterion`) into a table (run the benches
//!   first: `scripts/bench.sh` does).
//!
//! Every scenario prints a markdown section and, unless `--no-docs`, writes it into
//! `docs/benchmarks.md` between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`.
//! Everything runs on 127.0.0.1; nothing is installed; each client gets its own temp dirs.
//! See `docs/benchmarks.md` for what every number means.

mod clients;
mod idle_peers;
mod lab;
mod micro;
mod procmon;
mod report;
mod scale;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use swarm_integration_tests::libtorrent::require_python_libtorrent;
use swarm_integration_tests::payload::{Payload, Torrent, KIB, MIB};
use swarm_integration_tests::swarmd::{swarmctl_bin, swarmd_bin, workspace_root};
use swarm_integration_tests::tracker::Opentracker;
use swarm_integration_tests::util::{find_tool, TestEnv};

use clients::{rqbit_bin, Kind, Leecher, Poll, Seeder};
use procmon::{Monitor, Usage};
use report::{median, num, ratio};

const USAGE: &str = "\
usage: swarm_bench [SCENARIO...] [OPTIONS]

scenarios: download (default), encrypted, utp-download, upload, many-sources, scale, micro,
           all (= download, upload, many-sources, scale),
           lab-flash, lab-mixed, lab-late, lab-seed-leaves, lab (= the four lab scenarios; root)

options:
  --size SIZE          payload size, K/M/G suffixes (powers of 1024) [1G]
  --piece SIZE         piece length [256K]
  --runs N             runs per client, alternating between clients [5]
  --warmup N           unmeasured transfers before the measured runs of a scenario [1]
  --clients LIST       download leechers, comma-separated [swarmd,libtorrent,aria2,rqbit]
  --timeout SECS       per run, from the leecher's spawn to completion [600]
  --scale-torrents N   torrents in the scale scenario [1000]
  --scale-size SIZE    size of each of them [64K]
  --idle-secs N        idle CPU is measured over N seconds and scaled to a minute [60]
  --scale-transmission also run the scale scenario's add/memory/idle part on transmission-daemon
  --lab-sizes LIST     lab payload sizes, comma-separated [16M,64M]
  --lab-leechers N     leechers in a lab swarm [8]
  --lab-seed-up MBIT   the lab seed's uplink, Mbit/s [16]
  --lab-leech-up MBIT  each lab leecher's uplink, Mbit/s [8]
  --label TEXT         appended to every section title (e.g. \"single run\")
  --docs PATH          markdown file to update [docs/benchmarks.md]
  --no-docs            print only
  --criterion-dir DIR  criterion output for `micro` [target/criterion]
  --command TEXT       the command line to record (default: this program's arguments)
";

/// Command-line options.
#[derive(Clone, Debug)]
pub struct Opts {
    pub scenarios: Vec<String>,
    pub size: u64,
    pub piece: u64,
    pub runs: usize,
    /// Transfers run and thrown away before the measured ones (see `transfer_scenario`).
    pub warmup: usize,
    pub clients: Vec<Kind>,
    pub timeout: Duration,
    pub scale_torrents: usize,
    pub scale_size: u64,
    pub idle_secs: u64,
    pub scale_transmission: bool,
    pub lab_sizes: Vec<u64>,
    pub lab_leechers: usize,
    pub lab_seed_up: f64,
    pub lab_leech_up: f64,
    pub label: Option<String>,
    pub docs: Option<PathBuf>,
    pub criterion_dir: PathBuf,
    pub command: String,
}

/// `a` as a POSIX shell word (single-quoted when it holds anything but safe characters).
fn shell_quote(a: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./,=:+@%".contains(c);
    if !a.is_empty() && a.chars().all(safe) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// `1G`, `256M`, `64K`, `1000` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], KIB),
        Some('M' | 'm') => (&s[..s.len() - 1], MIB),
        Some('G' | 'g') => (&s[..s.len() - 1], 1024 * MIB),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("bad size `{s}`"))
}

/// `1.00 GiB`, `256 MiB`, `64 KiB`.
pub fn fmt_size(n: u64) -> String {
    if n >= 1024 * MIB && n.is_multiple_of(1024 * MIB) {
        format!("{} GiB", n / (1024 * MIB))
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} B")
    }
}

fn parse_args() -> Result<Opts, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts {
        scenarios: Vec::new(),
        size: 1024 * MIB,
        piece: 256 * KIB,
        runs: 5,
        warmup: 1,
        clients: Kind::ALL.to_vec(),
        timeout: Duration::from_secs(600),
        scale_torrents: 1000,
        scale_size: 64 * KIB,
        idle_secs: 60,
        scale_transmission: false,
        lab_sizes: vec![16 * MIB, 64 * MIB],
        lab_leechers: 8,
        lab_seed_up: 16.0,
        lab_leech_up: 8.0,
        label: None,
        docs: Some(workspace_root().join("docs/benchmarks.md")),
        criterion_dir: workspace_root().join("target/criterion"),
        command: format!(
            "cargo run --release -p swarm-integration-tests --example swarm_bench -- {}",
            args.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .trim_end()
        .to_string(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--size" => o.size = parse_size(&val("--size")?)?,
            "--piece" => o.piece = parse_size(&val("--piece")?)?,
            "--runs" => o.runs = val("--runs")?.parse().map_err(|_| "bad --runs")?,
            "--warmup" => o.warmup = val("--warmup")?.parse().map_err(|_| "bad --warmup")?,
            "--clients" => {
                o.clients = val("--clients")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(Kind::parse)
                    .collect::<Result<_, _>>()?
            }
            "--timeout" => {
                o.timeout =
                    Duration::from_secs(val("--timeout")?.parse().map_err(|_| "bad --timeout")?)
            }
            "--scale-torrents" => {
                o.scale_torrents = val("--scale-torrents")?
                    .parse()
                    .map_err(|_| "bad --scale-torrents")?
            }
            "--scale-size" => o.scale_size = parse_size(&val("--scale-size")?)?,
            "--idle-secs" => {
                o.idle_secs = val("--idle-secs")?.parse().map_err(|_| "bad --idle-secs")?
            }
            "--scale-transmission" => o.scale_transmission = true,
            "--lab-sizes" => {
                o.lab_sizes = val("--lab-sizes")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(parse_size)
                    .collect::<Result<_, _>>()?
            }
            "--lab-leechers" => {
                o.lab_leechers = val("--lab-leechers")?
                    .parse()
                    .map_err(|_| "bad --lab-leechers")?
            }
            "--lab-seed-up" => {
                o.lab_seed_up = val("--lab-seed-up")?
                    .parse()
                    .map_err(|_| "bad --lab-seed-up")?
            }
            "--lab-leech-up" => {
                o.lab_leech_up = val("--lab-leech-up")?
                    .parse()
                    .map_err(|_| "bad --lab-leech-up")?
            }
            "--label" => o.label = Some(val("--label")?),
            "--docs" => o.docs = Some(PathBuf::from(val("--docs")?)),
            "--no-docs" => o.docs = None,
            "--criterion-dir" => o.criterion_dir = PathBuf::from(val("--criterion-dir")?),
            "--command" => o.command = val("--command")?,
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n\n{USAGE}")),
            s => match s {
                "download" | "encrypted" | "utp-download" | "upload" | "many-sources" | "scale"
                | "micro" | "lab-flash" | "lab-mixed" | "lab-late" | "lab-seed-leaves" => {
                    o.scenarios.push(s.to_string())
                }
                "lab" => o.scenarios.extend(
                    ["lab-flash", "lab-mixed", "lab-late", "lab-seed-leaves"].map(String::from),
                ),
                "all" => o
                    .scenarios
                    .extend(["download", "upload", "many-sources", "scale"].map(String::from)),
                _ => return Err(format!("unknown scenario `{s}`\n\n{USAGE}")),
            },
        }
    }
    if o.scenarios.is_empty() {
        o.scenarios.push("download".into());
    }
    if o.runs == 0 || o.size == 0 || o.piece < 16 * KIB {
        return Err("--runs and --size must be > 0 and --piece at least 16K".into());
    }
    Ok(o)
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| {
        eprintln!("swarm_bench: {e}");
        std::process::exit(2);
    });
    // Binaries first: a missing one is built once here (see swarm_integration_tests::swarmd).
    eprintln!(
        "swarm_bench: swarmd {}, swarmctl {}",
        swarmd_bin().display(),
        swarmctl_bin().display()
    );
    let mut failed = false;
    let mut shared: Option<Shared> = None;
    for sc in opts.scenarios.clone() {
        let started = Instant::now();
        eprintln!("swarm_bench: === {sc} ===");
        let section = match sc.as_str() {
            "download" | "encrypted" | "utp-download" | "upload" | "many-sources" => {
                let sh = shared.get_or_insert_with(|| Shared::new(&opts));
                transfer_scenario(&opts, sh, &sc)
            }
            "scale" => scale::run(&opts),
            "micro" => micro::run(&opts),
            s if s.starts_with("lab-") => lab::run(&opts, s),
            _ => unreachable!(),
        };
        match section {
            Ok(md) => {
                println!("{md}");
                if let Some(doc) = &opts.docs {
                    match report::update_doc(doc, &sc, &md) {
                        Ok(()) => eprintln!("swarm_bench: updated {} ({sc})", doc.display()),
                        Err(e) => {
                            eprintln!("swarm_bench: writing {}: {e}", doc.display());
                            failed = true;
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("swarm_bench: {sc}: {e}");
                failed = true;
            }
        }
        eprintln!(
            "swarm_bench: {sc} took {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    if failed {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Transfer scenarios
// ---------------------------------------------------------------------------------------------

/// The payload, its torrent, and per-client copies of the data, shared by every run.
pub struct Shared {
    env: TestEnv,
    payload: Payload,
    torrent: Torrent,
    copies: HashMap<Kind, PathBuf>,
    rqbit: Option<PathBuf>,
}

impl Shared {
    fn new(opts: &Opts) -> Shared {
        let env = TestEnv::new("bench-payload");
        let t = Instant::now();
        let payload = Payload::single(&env.subdir("master"), "payload.bin", opts.size, 1);
        let placeholder = ["http://127.0.0.1:1/announce"];
        let out = env.path().join("payload.torrent");
        let pow2 = opts.piece.is_power_of_two();
        let exp = opts.piece.trailing_zeros();
        let torrent = if pow2 && (15..=28).contains(&exp) && find_tool("mktorrent").is_some() {
            payload.make_torrent(&out, exp, &placeholder)
        } else {
            payload.make_torrent_native(&out, opts.piece, &placeholder)
        };
        eprintln!(
            "swarm_bench: payload {} ({} pieces of {}) ready in {:.1} s at {}",
            fmt_size(opts.size),
            torrent.num_pieces(),
            fmt_size(opts.piece),
            t.elapsed().as_secs_f64(),
            env.path().display()
        );
        Shared {
            env,
            payload,
            torrent,
            copies: HashMap::new(),
            rqbit: rqbit_bin(),
        }
    }

    /// The directory a seeder of `kind` seeds from. libtorrent uses the master copy (it never
    /// writes); the others get one private copy each, made once and reused by every run.
    fn data_for(&mut self, kind: Kind) -> PathBuf {
        if kind == Kind::Libtorrent {
            return self.payload.dir.clone();
        }
        if let Some(p) = self.copies.get(&kind) {
            return p.clone();
        }
        let dir = self.env.subdir(&format!("copy-{kind}"));
        self.payload.copy_to(&dir);
        self.copies.insert(kind, dir.clone());
        dir
    }

    fn installed(&self, kind: Kind) -> bool {
        match kind {
            Kind::Swarmd => true,
            Kind::Libtorrent => true, // checked up front: every transfer scenario needs it
            Kind::Aria2 => find_tool("aria2c").is_some(),
            Kind::Rqbit => self.rqbit.is_some(),
        }
    }
}

/// One run: who seeds, who leeches, whose resources are the subject.
struct RunSpec {
    seeders: Vec<Kind>,
    leecher: Kind,
    /// `Some(i)`: the subject is seeder `i` (its CPU and memory over the transfer); `None`: the
    /// leecher.
    subject_seeder: Option<usize>,
    /// libtorrent seeders hash-check before seeding instead of seed mode.
    lt_recheck: bool,
    /// Seeder and leecher require MSE/PE with RC4.
    encrypted: bool,
    /// libtorrent seeders and leechers speak uTP only.
    utp: bool,
}

impl RunSpec {
    fn subject(&self) -> Kind {
        self.subject_seeder
            .map_or(self.leecher, |i| self.seeders[i])
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
struct RunResult {
    subject: String,
    run: usize,
    ok: bool,
    error: String,
    /// Leecher spawn → completion detected (or the client's own completion time).
    wall_s: f64,
    mb_s: f64,
    /// The subject's CPU and memory (leecher, or the seeder in `upload`).
    usage: Usage,
    /// The leecher's CPU when the subject is a seeder.
    leecher_cpu_s: Option<f64>,
    detect: String,
    /// swarmd / rqbit leechers: spawn → process exit (after completion: shutdown, announces).
    exit_s: Option<f64>,
    verify_s: f64,
    seed_ready_s: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn run_once(opts: &Opts, sh: &mut Shared, spec: &RunSpec, run: usize) -> RunResult {
    let mut res = RunResult {
        subject: spec.subject().to_string(),
        run,
        ..RunResult::default()
    };
    let data: Vec<PathBuf> = spec.seeders.iter().map(|k| sh.data_for(*k)).collect();
    // Every run starts with nothing left to write back: the seeders' copies (3 GiB, made before
    // the first many-sources run) or the last run's leftovers would otherwise be flushed during
    // the first measured transfers and slow whichever client runs then.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let rqbit = sh.rqbit.clone();
    let torrent0 = sh.torrent.clone();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let env = TestEnv::new(&format!("bench-{}", spec.subject()));
        let ih = torrent0.info_hash;
        let tracker = Opentracker::start(&env, &[ih]);
        let torrent = torrent0.with_trackers(
            &env.path().join("run.torrent"),
            Some(&tracker.announce_url()),
            &[],
        );
        let t_seed = Instant::now();
        let seeders: Vec<Seeder> = spec
            .seeders
            .iter()
            .zip(&data)
            .map(|(k, d)| {
                Seeder::spawn(
                    *k,
                    &env,
                    &torrent.path,
                    d,
                    rqbit.as_deref(),
                    (spec.lt_recheck, spec.encrypted, spec.utp),
                )
            })
            .collect();
        let n = seeders.len() as u64;
        tracker.wait_scrape(
            ih,
            "the tracker to count every seeder as complete",
            Duration::from_secs(300),
            |c, _, _| c >= n,
        );
        res.seed_ready_s = t_seed.elapsed().as_secs_f64();
        let seeder_mons: Vec<Monitor> = seeders
            .iter()
            .map(|s| Monitor::start(s.guard().pid(), Duration::from_millis(200), false))
            .collect();

        let out = env.subdir("leech");
        let t0 = Instant::now();
        let t0_unix = unix_now();
        let leecher = Leecher::spawn(
            spec.leecher,
            &env,
            &torrent.path,
            &out,
            rqbit.as_deref(),
            spec.encrypted,
            spec.utp,
        );
        let mon = Monitor::start(leecher.pid(), Duration::from_millis(100), true);
        let deadline = t0 + opts.timeout;
        let mut i = 0u32;
        let (detect, at_unix) = loop {
            match leecher.poll(i.is_multiple_of(2)) {
                Poll::Running if Instant::now() > deadline => {
                    return Err(format!(
                        "timeout after {} s; {} log:\n{}",
                        opts.timeout.as_secs(),
                        leecher.kind,
                        leecher.guard().log_tail(15)
                    ))
                }
                Poll::Running => {}
                Poll::Done { detect, at_unix } => break (detect, at_unix),
                Poll::Failed(e) => return Err(e),
            }
            std::thread::sleep(Duration::from_millis(50));
            i += 1;
        };
        let detected = t0.elapsed().as_secs_f64();
        let usage = mon.finish();
        let seeder_usage: Vec<Usage> = seeder_mons.into_iter().map(Monitor::finish).collect();
        res.wall_s = match at_unix {
            Some(t) if t > t0_unix && t - t0_unix <= detected => t - t0_unix,
            _ => detected,
        };
        res.mb_s = opts.size as f64 / 1e6 / res.wall_s;
        res.detect = detect.to_string();
        match spec.subject_seeder {
            Some(i) => {
                res.usage = seeder_usage[i];
                res.leecher_cpu_s = Some(usage.cpu_s);
            }
            None => res.usage = usage,
        }
        let tv = Instant::now();
        torrent
            .verify_dir(&out)
            .map_err(|e| format!("verification failed: {e}"))?;
        res.verify_s = tv.elapsed().as_secs_f64();
        if let Some(ok) = leecher.wait_exit(Duration::from_secs(20)) {
            if ok {
                res.exit_s = Some(t0.elapsed().as_secs_f64().min(
                    // Exited before we looked: the detection time is the best bound we have.
                    if detect == "exit" { detected } else { f64::MAX },
                ));
            }
        }
        drop(leecher);
        drop(seeders);
        Ok(())
    }));
    match outcome {
        Ok(Ok(())) => res.ok = true,
        Ok(Err(e)) => res.error = e,
        Err(p) => {
            res.error = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into())
        }
    }
    if res.ok {
        eprintln!(
            "swarm_bench:   run {} {:<10} wall {:6.2} s {:7.1} MB/s cpu {:6.2} s anon {:6.1} MiB ({})",
            run + 1,
            res.subject,
            res.wall_s,
            res.mb_s,
            res.usage.cpu_s,
            res.usage.peak_anon_mib,
            res.detect
        );
    } else {
        let first = res.error.lines().next().unwrap_or("");
        eprintln!(
            "swarm_bench:   run {} {:<10} FAILED: {first}",
            run + 1,
            res.subject
        );
    }
    res
}

/// True (and a note about it) when `k` is not installed.
fn missing(k: Kind, sh: &Shared, notes: &mut Vec<String>) -> bool {
    if sh.installed(k) {
        return false;
    }
    let why = match k {
        Kind::Rqbit => "rqbit: not installed (`cargo install --locked rqbit`, or set RQBIT_BIN)",
        Kind::Aria2 => "aria2: not installed (Debian package aria2)",
        _ => "not installed",
    };
    if !notes.iter().any(|n| n == why) {
        notes.push(why.to_string());
    }
    true
}

fn transfer_scenario(opts: &Opts, sh: &mut Shared, name: &str) -> Result<String, String> {
    catch_unwind(require_python_libtorrent).map_err(|_| {
        "python3-libtorrent is required (the seeder); see scripts/install-test-deps.sh".to_string()
    })?;
    if find_tool("opentracker").is_none() {
        return Err("opentracker is required; see scripts/install-test-deps.sh".into());
    }
    let mut notes: Vec<String> = Vec::new();
    let (subjects, title, subject_label): (Vec<Kind>, String, &str) = match name {
        "download" => {
            let subjects: Vec<Kind> = opts
                .clients
                .iter()
                .copied()
                .filter(|k| !missing(*k, sh, &mut notes))
                .collect();
            (
                subjects,
                format!(
                    "download: {} single file, {} pieces, one libtorrent seeder (seed mode), {} run(s) per leecher",
                    fmt_size(opts.size),
                    fmt_size(opts.piece),
                    opts.runs
                ),
                "leecher",
            )
        }
        "upload" => (
            vec![Kind::Swarmd, Kind::Libtorrent],
            String::new(),
            "seeder",
        ),
        "encrypted" => (
            vec![Kind::Swarmd, Kind::Libtorrent],
            format!(
                "encrypted: {} single file, {} pieces, one libtorrent seeder (seed mode), MSE/PE with RC4 required on both ends, {} run(s) per leecher",
                fmt_size(opts.size),
                fmt_size(opts.piece),
                opts.runs
            ),
            "leecher",
        ),
        "utp-download" => (
            vec![Kind::Swarmd, Kind::Libtorrent],
            format!(
                "utp-download: {} single file, {} pieces, one libtorrent seeder speaking uTP only (seed mode), {} run(s) per leecher",
                fmt_size(opts.size),
                fmt_size(opts.piece),
                opts.runs
            ),
            "leecher",
        ),
        "many-sources" => {
            let mut leechers = vec![Kind::Swarmd];
            if missing(Kind::Rqbit, sh, &mut notes) {
                notes.push("leecher rqbit replaced by libtorrent".into());
                leechers.push(Kind::Libtorrent);
            } else {
                leechers.push(Kind::Rqbit);
            }
            (leechers, String::new(), "leecher")
        }
        _ => unreachable!(),
    };
    let upload_leecher = if missing(Kind::Rqbit, sh, &mut notes) {
        Kind::Libtorrent
    } else {
        Kind::Rqbit
    };
    let sources: Vec<Kind> = [Kind::Libtorrent, Kind::Aria2, Kind::Rqbit, Kind::Swarmd]
        .into_iter()
        .filter(|k| !missing(*k, sh, &mut notes))
        .collect();
    let title = match name {
        "upload" => format!(
            "upload: {} single file, {} pieces, {upload_leecher} leecher from one seeder (swarmd vs libtorrent, both hash-checked first), {} run(s) each",
            fmt_size(opts.size),
            fmt_size(opts.piece),
            opts.runs
        ),
        "many-sources" => format!(
            "many-sources: {} single file, {} pieces, seeders {}, {} run(s) per leecher",
            fmt_size(opts.size),
            fmt_size(opts.piece),
            sources.iter().map(|k| k.name()).collect::<Vec<_>>().join(" + "),
            opts.runs
        ),
        _ => title,
    };
    if subjects.is_empty() {
        return Err("no client to run".into());
    }
    let spec_for = |k: Kind| -> RunSpec {
        match name {
            "download" | "encrypted" | "utp-download" => RunSpec {
                seeders: vec![Kind::Libtorrent],
                leecher: k,
                subject_seeder: None,
                lt_recheck: false,
                encrypted: name == "encrypted",
                utp: name == "utp-download",
            },
            "upload" => RunSpec {
                seeders: vec![k],
                leecher: upload_leecher,
                subject_seeder: Some(0),
                // libtorrent's seed mode would hash every piece during the measured transfer;
                // swarmd hashes at start-up. Both check first, so neither hashes while serving.
                lt_recheck: true,
                encrypted: false,
                utp: false,
            },
            _ => RunSpec {
                seeders: sources.clone(),
                leecher: k,
                subject_seeder: None,
                lt_recheck: false,
                encrypted: false,
                utp: false,
            },
        }
    };
    // The first transfer after the payload and the seeders' copies were made is slower for
    // whichever client runs it (1.5-2x in many-sources: its page cache comes from memory the
    // machine has not used yet); it is run and thrown away.
    if opts.warmup > 0 {
        notes.push(format!(
            "{} unmeasured warm-up transfer(s) with {} as the leecher/seeder first",
            opts.warmup, subjects[0]
        ));
    }
    for w in 0..opts.warmup {
        eprintln!("swarm_bench:   warm-up {} (not counted)", w + 1);
        let _ = run_once(opts, sh, &spec_for(subjects[0]), w);
    }
    let mut results = Vec::new();
    for run in 0..opts.runs {
        // Alternate, and rotate who goes first so no client always runs on a cooler machine.
        for j in 0..subjects.len() {
            let k = subjects[(run + j) % subjects.len()];
            results.push(run_once(opts, sh, &spec_for(k), run));
        }
    }
    Ok(render_transfer(
        opts,
        name,
        &title,
        subject_label,
        &subjects,
        &results,
        &notes,
    ))
}

fn render_transfer(
    opts: &Opts,
    name: &str,
    title: &str,
    subject_label: &str,
    subjects: &[Kind],
    results: &[RunResult],
    notes: &[String],
) -> String {
    let mut md = String::new();
    let title = match &opts.label {
        Some(l) => format!("{title} — {l}"),
        None => title.to_string(),
    };
    let mut versions = vec![report::swarmd_version(), report::libtorrent_version()];
    if name != "upload" || subjects.contains(&Kind::Aria2) {
        versions.push(report::aria2_version());
    }
    versions.push(report::rqbit_version());
    report::preamble(&mut md, &title, &opts.command, &versions);
    for n in notes {
        let _ = writeln!(md, "- note: {n}");
    }
    let upload = name == "upload";
    let cpu_label = if upload { "seeder CPU s" } else { "CPU s" };
    let anon_label = if upload {
        "seeder peak anon MiB"
    } else {
        "peak anon MiB"
    };
    // Medians per subject.
    struct Med {
        k: Kind,
        ok: usize,
        n: usize,
        wall: Option<f64>,
        mbs: Option<f64>,
        cpu: Option<f64>,
        anon: Option<f64>,
    }
    let meds: Vec<Med> = subjects
        .iter()
        .map(|&k| {
            let rs: Vec<&RunResult> = results.iter().filter(|r| r.subject == k.name()).collect();
            let ok: Vec<&&RunResult> = rs.iter().filter(|r| r.ok).collect();
            let pick = |f: &dyn Fn(&RunResult) -> f64| {
                median(&ok.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            Med {
                k,
                ok: ok.len(),
                n: rs.len(),
                wall: pick(&|r| r.wall_s),
                mbs: pick(&|r| r.mb_s),
                cpu: pick(&|r| r.usage.cpu_s),
                anon: pick(&|r| r.usage.peak_anon_mib),
            }
        })
        .collect();
    // Best (lowest) value among the *other* subjects, and this one's ratio to it.
    let vs_best = |k: Kind, f: &dyn Fn(&Med) -> Option<f64>| -> (Option<f64>, String) {
        let mine = meds.iter().find(|m| m.k == k).and_then(f);
        let best = meds
            .iter()
            .filter(|m| m.k != k)
            .filter_map(|m| f(m).map(|v| (v, m.k)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match (mine, best) {
            (Some(a), Some((b, who))) if b > 0.0 => (Some(a / b), format!(" ({who})")),
            _ => (None, String::new()),
        }
    };
    let _ = writeln!(
        md,
        "\nMedians (ratios: this client's median ÷ the best median among the other {subject_label}s; below 1 is better):\n"
    );
    let _ = writeln!(
        md,
        "| {subject_label} | ok runs | wall s | MB/s | {cpu_label} | {anon_label} | wall vs best other | CPU vs best other | anon vs best other |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for m in &meds {
        let (rw, ww) = vs_best(m.k, &|m| m.wall);
        let (rc, wc) = vs_best(m.k, &|m| m.cpu);
        let (ra, wa) = vs_best(m.k, &|m| m.anon);
        let _ = writeln!(
            md,
            "| {} | {}/{} | {} | {} | {} | {} | {}{ww} | {}{wc} | {}{wa} |",
            m.k,
            m.ok,
            m.n,
            num(m.wall, 2),
            num(m.mbs, 1),
            num(m.cpu, 2),
            num(m.anon, 1),
            ratio(rw),
            ratio(rc),
            ratio(ra)
        );
    }
    let _ = writeln!(md, "\nRaw runs (in the order they ran):\n");
    let leecher_cpu_col = if upload { " leecher CPU s |" } else { "" };
    let _ = writeln!(
        md,
        "| run | {subject_label} | wall s | MB/s | {cpu_label} | {anon_label} | peak RSS MiB |{leecher_cpu_col} detect | exit s | verify s | seed ready s |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|{}---|---|---|---|",
        if upload { "---|" } else { "" }
    );
    for r in results {
        if r.ok {
            let lc = match r.leecher_cpu_s {
                Some(c) if upload => format!(" {c:.2} |"),
                _ if upload => " - |".into(),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} |{lc} {} | {} | {:.1} | {:.1} |",
                r.run + 1,
                r.subject,
                r.wall_s,
                r.mb_s,
                r.usage.cpu_s,
                r.usage.peak_anon_mib,
                r.usage.peak_rss_mib,
                r.detect,
                num(r.exit_s, 2),
                r.verify_s,
                r.seed_ready_s
            );
        } else {
            let first = r.error.lines().next().unwrap_or("").replace('|', "/");
            let _ = writeln!(md, "| {} | {} | FAILED: {first} |", r.run + 1, r.subject);
        }
    }
    md
}

/// `path` relative to the workspace when inside it (for the report).
pub fn rel(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
