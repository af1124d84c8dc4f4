//! Markdown output: the machine, client versions, medians and ratios, raw runs, and the
//! marker-delimited sections of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use swarm_integration_tests::libtorrent::PYTHON;
use swarm_integration_tests::swarmd::{swarmd_bin, workspace_root};
use swarm_integration_tests::util::find_tool;

use crate::clients::rqbit_bin;

/// Median of the values (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn first_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

fn run_version(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    let line = first_line(&out.stdout);
    if line.is_empty() {
        let err = first_line(&out.stderr);
        (!err.is_empty()).then_some(err)
    } else {
        Some(line)
    }
}

/// `nproc`, CPU model, kernel, memory.
pub fn machine() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, v)| v.trim())
        .to_string();
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let sha = if cpuinfo.contains(" sha_ni") {
        ", SHA extensions"
    } else {
        ""
    };
    format!("{nproc} CPUs ({model}{sha}), {mem_gib:.1} GiB RAM, Linux {kernel}")
}

/// The swarmd binary's version plus the git commit it was built from (if a checkout).
pub fn swarmd_version() -> String {
    let v = run_version(Command::new(swarmd_bin()).arg("--version"))
        .unwrap_or_else(|| "swarmd ?".into());
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| first_line(&o.stdout));
    match commit {
        Some(c) if !c.is_empty() => format!("{v} (git {c})"),
        _ => v,
    }
}

pub fn libtorrent_version() -> String {
    run_version(Command::new(PYTHON).args([
        "-c",
        "import libtorrent as lt; print('libtorrent ' + lt.__version__)",
    ]))
    .filter(|v| v.starts_with("libtorrent "))
    .unwrap_or_else(|| "libtorrent: not installed (python3-libtorrent)".into())
}

pub fn aria2_version() -> String {
    match find_tool("aria2c") {
        Some(p) => run_version(Command::new(p).arg("--version")).unwrap_or_default(),
        None => "aria2: not installed".into(),
    }
}

pub fn rqbit_version() -> String {
    match rqbit_bin() {
        Some(p) => run_version(Command::new(p).arg("--version")).unwrap_or_default(),
        None => "rqbit: not installed".into(),
    }
}

pub fn transmission_version() -> String {
    match find_tool("transmission-daemon") {
        Some(p) => run_version(Command::new(p).arg("--version"))
            .unwrap_or_else(|| "transmission-daemon ?".into()),
        None => "transmission-daemon: not installed".into(),
    }
}

/// The header every section starts with.
pub fn preamble(out: &mut String, title: &str, command: &str, versions: &[String]) {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| first_line(&o.stdout))
        .unwrap_or_default();
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(out, "- date: {date}");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- clients: {}", versions.join("; "));
    let _ = writeln!(out, "- command: `{command}`");
}

/// Byte offset of the first line of `text` that is exactly `line` (surrounding blanks
/// ignored), searching from byte `from`; markers mentioned inside prose never match.
fn find_line(text: &str, line: &str, from: usize) -> Option<(usize, usize)> {
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        let start = pos;
        pos += l.len();
        if start >= from && l.trim() == line {
            return Some((start, start + l.trim_end_matches('\n').len()));
        }
    }
    None
}

/// Replaces the text between the lines `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in
/// `doc` with `body` (markers kept). Appends a new marked section when the markers are missing.
pub fn update_doc(doc: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let text = fs::read_to_string(doc).unwrap_or_default();
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    let block = format!("{open}\n{}\n{close}", body.trim_end());
    let found = find_line(&text, &open, 0)
        .and_then(|(a, a_end)| find_line(&text, &close, a_end).map(|(_, b_end)| (a, b_end)));
    let new = match found {
        Some((a, b_end)) => format!("{}{block}{}", &text[..a], &text[b_end..]),
        None => {
            let sep = if text.is_empty() || text.ends_with("\n\n") {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{text}{sep}{block}\n")
        }
    };
    fs::write(doc, new)
}

/// `x` with `digits` decimals, or `-`.
pub fn num(x: Option<f64>, digits: usize) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".into(),
    }
}

/// `ratio` as `×1.23`, or `-`.
pub fn ratio(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("×{v:.2}"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn doc_sections_are_replaced_between_marker_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("b.md");
        fs::write(
            &doc,
            "intro `<!-- bench:x -->` in prose\n\n<!-- bench:x -->\nold\n<!-- /bench:x -->\ntail\n",
        )
        .unwrap();
        update_doc(&doc, "x", "new\n").unwrap();
        assert_eq!(
            fs::read_to_string(&doc).unwrap(),
            "intro `<!-- bench:x -->` in prose\n\n<!-- bench:x -->\nnew\n<!-- /bench:x -->\ntail\n"
        );
        update_doc(&doc, "y", "more").unwrap();
        assert!(fs::read_to_string(&doc)
            .unwrap()
            .ends_with("tail\n\n<!-- bench:y -->\nmore\n<!-- /bench:y -->\n"));
    }
}
