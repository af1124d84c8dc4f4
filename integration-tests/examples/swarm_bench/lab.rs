//! The swarm lab scenarios: swarms on hosts with capped uplinks, each host a network namespace
//! (`swarm_integration_tests::netlab`; needs root). What decides a download there is the
//! swarm's behaviour — who unchokes whom, which pieces go first — not CPU:
//!
//! * `lab-flash`: one seed (upload `--lab-seed-up`) and `--lab-leechers` leechers (upload
//!   `--lab-leech-up` each) arriving at once; a swarmd-only swarm and a libtorrent-only swarm
//!   in the same topology, alternating runs;
//! * `lab-mixed`: the same crowd, half swarmd and half libtorrent (alternately), a swarmd seed
//!   in one run and a libtorrent seed in the next: does swarmd get at least libtorrent's rate
//!   while uploading its share (neither exploited nor a free rider)?
//! * `lab-late`: leechers arriving one every T_min/N instead of at once;
//! * `lab-seed-leaves`: the seed leaves after uploading 1.5× the payload; does the swarm
//!   still complete (rarest first keeping every piece alive)?
//!
//! For each payload size in `--lab-sizes`. Reported per client: the last completion against
//! the fluid bound T_min (medians of `--runs`), the bytes the initial seed uploaded in payload
//! copies (ideal 1.0), the spread of completions, the share ratio (uploaded / downloaded) of the
//! leechers.

use std::fmt::Write as _;
use std::time::Duration;

use swarm_integration_tests::lab_swarm::{self, Client, SwarmResult, SwarmSpec};
use swarm_integration_tests::libtorrent::require_python_libtorrent;
use swarm_integration_tests::util::{require_tool, TestEnv};

use crate::report::{self, median, num};
use crate::{fmt_size, Opts};

/// Runs the lab scenario `sc` (`lab-flash`, `lab-mixed`, `lab-late`, `lab-seed-leaves`).
pub fn run(opts: &Opts, sc: &str) -> Result<String, String> {
    require_python_libtorrent();
    require_tool("opentracker");
    if unsafe { libc::geteuid() } != 0 {
        return Err("the lab needs root (network namespaces)".into());
    }
    let mut md = String::new();
    report::preamble(
        &mut md,
        &title(opts, sc),
        &opts.command,
        &[report::swarmd_version(), report::libtorrent_version()],
    );
    let _ = writeln!(
        md,
        "- topology: one seed at {} Mbit/s up, {} leechers at {} Mbit/s up each, a tracker; every \
         host a network namespace behind one bridge, its uplink an htb class with a ~100 ms FIFO; \
         piece {}; {} run(s) per row, alternating; times from the release of the first leecher, \
         polled every 0.1 s\n",
        opts.lab_seed_up,
        opts.lab_leechers,
        opts.lab_leech_up,
        fmt_size(opts.piece),
        opts.runs,
    );
    for &size in &opts.lab_sizes {
        let pairs: &[Row] = match sc {
            "lab-mixed" => &[
                ("mixed, swarmd seed", Client::Swarmd, Client::Swarmd, false),
                (
                    "mixed, libtorrent seed",
                    Client::Libtorrent,
                    Client::Swarmd,
                    false,
                ),
            ],
            _ => &[
                ("swarmd", Client::Swarmd, Client::Swarmd, false),
                (
                    "swarmd, super-seeding seed",
                    Client::Swarmd,
                    Client::Swarmd,
                    true,
                ),
                ("libtorrent", Client::Libtorrent, Client::Libtorrent, false),
                (
                    "libtorrent, super-seeding seed",
                    Client::Libtorrent,
                    Client::Libtorrent,
                    true,
                ),
            ],
        };
        let rows = rows_of(opts, size, sc, pairs);
        let bound = rows
            .first()
            .and_then(|(_, r)| r.first())
            .map_or(0.0, |r| r.spec.fluid_bound_secs());
        let _ = writeln!(
            md,
            "#### {} (fluid bound T_min {bound:.1} s)\n",
            fmt_size(size)
        );
        table(&mut md, sc, &rows);
        let _ = writeln!(md, "\n<details><summary>runs</summary>\n");
        for (name, runs) in &rows {
            for r in runs {
                let _ = writeln!(md, "- {name}: `{}`", lab_swarm::describe(r));
            }
        }
        let _ = writeln!(md, "\n</details>\n");
    }
    Ok(md)
}

fn title(opts: &Opts, sc: &str) -> String {
    let what = match sc {
        "lab-flash" => "Swarm lab: flash crowd",
        "lab-mixed" => "Swarm lab: mixed swarm (half swarmd, half libtorrent)",
        "lab-late" => "Swarm lab: late joiners",
        _ => "Swarm lab: the seed leaves after 1.5× the payload",
    };
    match &opts.label {
        Some(l) => format!("{what} ({l})"),
        None => what.to_string(),
    }
}

/// A row of a lab table: its name, the seed's client, the leechers' client (in `lab-mixed` the
/// leechers alternate swarmd/libtorrent whatever it says), whether the seed super-seeds.
type Row = (&'static str, Client, Client, bool);

/// Runs each row's swarm `opts.runs` times, rows alternating.
fn rows_of(opts: &Opts, size: u64, sc: &str, rows: &[Row]) -> Vec<(String, Vec<SwarmResult>)> {
    let mut out: Vec<(String, Vec<SwarmResult>)> =
        rows.iter().map(|r| (r.0.to_string(), Vec::new())).collect();
    for run in 0..opts.runs {
        for (i, &(name, seed, leech, super_seed)) in rows.iter().enumerate() {
            let mut spec = spec_for(opts, size, sc, seed, leech);
            spec.super_seed = super_seed;
            eprintln!(
                "swarm_bench: {sc} {} {name} run {}/{} (T_min {:.1} s)",
                fmt_size(size),
                run + 1,
                opts.runs,
                spec.fluid_bound_secs()
            );
            let env = TestEnv::new(&format!("bench-{sc}"));
            let r = lab_swarm::run(&env, &spec);
            eprintln!("swarm_bench:   {}", lab_swarm::describe(&r));
            out[i].1.push(r);
        }
    }
    out
}

fn spec_for(opts: &Opts, size: u64, sc: &str, seed: Client, leech: Client) -> SwarmSpec {
    let n = opts.lab_leechers;
    let leechers = if sc == "lab-mixed" {
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    Client::Swarmd
                } else {
                    Client::Libtorrent
                }
            })
            .collect()
    } else {
        vec![leech; n]
    };
    let mut spec = SwarmSpec {
        payload: size,
        piece_exp: opts.piece.trailing_zeros(),
        seed,
        seed_up_mbit: opts.lab_seed_up,
        super_seed: false,
        leechers,
        leech_up_mbit: opts.lab_leech_up,
        leech_down_mbit: None,
        arrival_gap: Duration::ZERO,
        seed_leaves_after: None,
        timeout: opts.timeout,
    };
    match sc {
        "lab-late" => {
            spec.arrival_gap = Duration::from_secs_f64(spec.fluid_bound_secs() / n as f64)
        }
        "lab-seed-leaves" => spec.seed_leaves_after = Some(1.5),
        _ => {}
    }
    spec
}

/// One line per row: completions, the fluid bound ratio, the seed's copies, share ratios.
fn table(md: &mut String, sc: &str, rows: &[(String, Vec<SwarmResult>)]) {
    let _ = writeln!(
        md,
        "| swarm | complete | last done (s) | × T_min | mean done (s) | seed uploaded (× F) | share ratio min–max |{}",
        if sc == "lab-mixed" { " swarmd / libtorrent mean rate | swarmd / libtorrent up:down |" } else { "" }
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|{}",
        if sc == "lab-mixed" { "---|---|" } else { "" }
    );
    for (name, runs) in rows {
        let total: usize = runs.iter().map(|r| r.leechers.len()).sum();
        let complete: usize = runs
            .iter()
            .map(|r| {
                r.leechers
                    .iter()
                    .filter(|l| l.done.is_some() && l.verified.is_ok())
                    .count()
            })
            .sum();
        let last: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.last_done())
            .map(|d| d.as_secs_f64())
            .collect();
        let ratio: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r.last_done()?.as_secs_f64() / r.spec.fluid_bound_secs()))
            .collect();
        let mean: Vec<f64> = runs
            .iter()
            .filter_map(|r| {
                let d: Vec<f64> = r
                    .leechers
                    .iter()
                    .map(|l| Some((l.done? - l.arrived).as_secs_f64()))
                    .collect::<Option<_>>()?;
                Some(d.iter().sum::<f64>() / d.len() as f64)
            })
            .collect();
        let copies: Vec<f64> = runs.iter().map(SwarmResult::seed_copies).collect();
        let shares: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.leechers.iter())
            .filter(|l| l.downloaded > 0)
            .map(|l| l.uploaded as f64 / l.downloaded as f64)
            .collect();
        let lo = shares.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = shares.iter().copied().fold(0.0, f64::max);
        let _ = write!(
            md,
            "| {name} | {complete}/{total} | {} | {} | {} | {} | {}–{} |",
            num(median(&last), 1),
            num(median(&ratio), 2),
            num(median(&mean), 1),
            num(median(&copies), 2),
            num(lo.is_finite().then_some(lo), 2),
            num(Some(hi), 2),
        );
        if sc == "lab-mixed" {
            let (rate, share) = mixed(runs);
            let _ = write!(md, " {} | {} |", num(rate, 2), num(share, 2));
        }
        let _ = writeln!(md);
    }
}

/// In a mixed swarm: swarmd's mean download rate over libtorrent's, and swarmd's
/// upload/download ratio over libtorrent's (medians over runs).
fn mixed(runs: &[SwarmResult]) -> (Option<f64>, Option<f64>) {
    let mut rates = Vec::new();
    let mut shares = Vec::new();
    for r in runs {
        let of = |c: Client| {
            let ls: Vec<_> = r.leechers.iter().filter(|l| l.client == c).collect();
            let rate = ls
                .iter()
                .map(|l| Some(r.spec.payload as f64 / (l.done? - l.arrived).as_secs_f64()))
                .sum::<Option<f64>>()?
                / ls.len() as f64;
            let up: u64 = ls.iter().map(|l| l.uploaded).sum();
            let down: u64 = ls.iter().map(|l| l.downloaded).sum();
            Some((rate, up as f64 / down.max(1) as f64))
        };
        if let (Some((rs, ss)), Some((rl, sl))) = (of(Client::Swarmd), of(Client::Libtorrent)) {
            rates.push(rs / rl);
            shares.push(ss / sl);
        }
    }
    (median(&rates), median(&shares))
}
