//! `micro`: a table of the criterion results found under `--criterion-dir`
//! (`<group>/<bench>[/<param>]/new/{benchmark,estimates}.json`), optionally only those written
//! since `--since` (Unix seconds; `scripts/bench.sh` passes the time it started the benches).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::Value;

use crate::report;
use crate::{rel, Opts};

fn find(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") {
                if p.join("benchmark.json").is_file() && p.join("estimates.json").is_file() {
                    out.push(p);
                }
            } else if p.file_name().is_none_or(|n| n != "base" && n != "report") {
                find(&p, out);
            }
        }
    }
}

/// `1.23 µs`, `4.56 ms`.
fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn throughput(tp: &Value, ns: f64) -> String {
    if let Some(b) = tp.get("Bytes").and_then(Value::as_f64) {
        let mib_s = b / (ns / 1e9) / (1024.0 * 1024.0);
        if mib_s >= 1024.0 {
            format!("{:.2} GiB/s", mib_s / 1024.0)
        } else {
            format!("{mib_s:.1} MiB/s")
        }
    } else if let Some(e) = tp.get("Elements").and_then(Value::as_f64) {
        let per_s = e / (ns / 1e9);
        if per_s >= 1e9 {
            format!("{:.2} G elem/s", per_s / 1e9)
        } else if per_s >= 1e6 {
            format!("{:.2} M elem/s", per_s / 1e6)
        } else {
            format!("{:.1} K elem/s", per_s / 1e3)
        }
    } else {
        "-".into()
    }
}

pub fn run(opts: &Opts) -> Result<String, String> {
    let since: Option<u64> = std::env::var("SWARM_BENCH_SINCE")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let mut dirs = Vec::new();
    find(&opts.criterion_dir, &mut dirs);
    let mut rows = Vec::new();
    for d in dirs {
        let est = d.join("estimates.json");
        let mtime = fs::metadata(&est)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        if since.is_some_and(|s| mtime < s) {
            continue;
        }
        let read =
            |p: PathBuf| -> Option<Value> { serde_json::from_slice(&fs::read(p).ok()?).ok() };
        let (Some(b), Some(e)) = (read(d.join("benchmark.json")), read(est)) else {
            continue;
        };
        let id = b["full_id"].as_str().unwrap_or("?").to_string();
        let median = e["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
        let lo = e["median"]["confidence_interval"]["lower_bound"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let hi = e["median"]["confidence_interval"]["upper_bound"]
            .as_f64()
            .unwrap_or(f64::NAN);
        rows.push((id, median, lo, hi, throughput(&b["throughput"], median)));
    }
    if rows.is_empty() {
        return Err(format!(
            "no criterion results in {}{} (run the benches first, e.g. scripts/bench.sh)",
            opts.criterion_dir.display(),
            if since.is_some() {
                " since SWARM_BENCH_SINCE"
            } else {
                ""
            }
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut md = String::new();
    let mut title = "micro: criterion benchmarks".to_string();
    if let Some(l) = &opts.label {
        let _ = write!(title, " — {l}");
    }
    report::preamble(&mut md, &title, &opts.command, &[report::swarmd_version()]);
    let _ = writeln!(
        md,
        "- results: `{}` (criterion's median per iteration, 95% confidence interval)\n",
        rel(&opts.criterion_dir)
    );
    let _ = writeln!(md, "| benchmark | median | 95% CI | throughput |");
    let _ = writeln!(md, "|---|---|---|---|");
    for (id, m, lo, hi, tp) in rows {
        let _ = writeln!(
            md,
            "| `{id}` | {} | {} – {} | {tp} |",
            fmt_ns(m),
            fmt_ns(lo),
            fmt_ns(hi)
        );
    }
    Ok(md)
}
