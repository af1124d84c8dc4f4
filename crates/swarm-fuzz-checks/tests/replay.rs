//! CI's share of fuzzing, on stable: every committed seed (`fuzz/corpus/<target>/`) and every
//! input that once crashed a target (`fuzz/regressions/<target>/`) goes through that target's
//! check, the same function the libFuzzer target calls. Exploring new inputs is `make fuzz`'s
//! job; this keeps what it found fixed.
//!
//! The replay is only as good as its coverage of the targets, so it also fails when a fuzz target
//! in `fuzz/Cargo.toml` has no check in `swarm_fuzz_checks::TARGETS` (or calls another one), when a
//! target has no committed seeds, and when a directory of inputs names no target (a renamed target
//! would leave its regressions unreplayed).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use swarm_fuzz_checks::{Check, TARGETS};

/// The kinds of committed inputs, as directories under `fuzz/`: seeds, and inputs that crashed.
const SEEDS: &str = "corpus";
const REGRESSIONS: &str = "regressions";

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The `[[bin]]` entries of `fuzz/Cargo.toml`: (target name, source path under `fuzz/`).
fn fuzz_targets() -> Vec<(String, String)> {
    let manifest = fuzz_dir().join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("reading {}: {e}", manifest.display()));
    let table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("parsing {}: {e}", manifest.display()));
    let bins = table
        .get("bin")
        .and_then(toml::Value::as_array)
        .unwrap_or_else(|| panic!("{} has no [[bin]] targets", manifest.display()));
    bins.iter()
        .map(|bin| {
            let field = |key: &str| {
                bin.get(key)
                    .and_then(toml::Value::as_str)
                    .unwrap_or_else(|| panic!("a [[bin]] in fuzz/Cargo.toml without {key}: {bin}"))
                    .to_owned()
            };
            (field("name"), field("path"))
        })
        .collect()
}

fn check_names() -> BTreeSet<&'static str> {
    TARGETS.iter().map(|(name, _)| *name).collect()
}

/// The entries of `fuzz/<kind>/<target>/`, sorted; `None` when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Option<Vec<PathBuf>> {
    let dir = fuzz_dir().join(kind).join(target);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("reading fuzz/{kind}/{target}: {e}"),
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("reading fuzz/{kind}/{target}: {e}"))
                .path()
        })
        .collect();
    paths.sort();
    Some(paths)
}

/// `fuzz/<kind>/<target>/<file>`, as a failure names it.
fn shown(kind: &str, target: &str, path: &Path) -> String {
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    format!("fuzz/{kind}/{target}/{file}")
}

#[test]
fn every_fuzz_target_calls_its_check_from_the_table() {
    let checks = check_names();
    let mut problems = Vec::new();
    let targets = fuzz_targets();
    let bins: BTreeSet<&str> = targets.iter().map(|(name, _)| name.as_str()).collect();
    for (name, path) in &targets {
        if !checks.contains(name.as_str()) {
            problems.push(format!(
                "fuzz target {name} has no check in swarm_fuzz_checks::TARGETS, so CI never \
                 replays its inputs: move its body into crates/swarm-fuzz-checks"
            ));
            continue;
        }
        // The replay is worth something only if the fuzzer runs the same check.
        let source_path = fuzz_dir().join(path);
        let source = fs::read_to_string(&source_path)
            .unwrap_or_else(|e| panic!("reading fuzz/{path} (fuzz target {name}): {e}"));
        let call = format!("swarm_fuzz_checks::{name}(");
        if !source.contains(&call) {
            problems.push(format!(
                "fuzz/{path} (fuzz target {name}) does not call {call}data)"
            ));
        }
    }
    for name in checks.difference(&bins) {
        problems.push(format!(
            "swarm_fuzz_checks::TARGETS has {name}, which is no [[bin]] of fuzz/Cargo.toml"
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_target_has_seeds_and_every_input_directory_a_target() {
    let checks = check_names();
    let mut problems = Vec::new();
    for name in &checks {
        match inputs(SEEDS, name) {
            None => problems.push(format!("fuzz/{SEEDS}/{name} is missing")),
            Some(seeds) if seeds.is_empty() => {
                problems.push(format!("fuzz/{SEEDS}/{name} has no seeds"))
            }
            Some(_) => {}
        }
    }
    for kind in [SEEDS, REGRESSIONS] {
        let dir = fuzz_dir().join(kind);
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading fuzz/{kind}: {e}"));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("reading fuzz/{kind}: {e}"));
            let name = entry.file_name().to_string_lossy().into_owned();
            if !checks.contains(name.as_str()) {
                problems.push(format!(
                    "fuzz/{kind}/{name} names no fuzz target, so nothing replays it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

thread_local! {
    /// Where the panic hook puts the message and location of the panic it sees on this thread
    /// while [`run`] has armed it (`Some`); other threads and other times go to the default hook.
    static CAUGHT: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let caught = CAUGHT.with(|c| {
                c.borrow_mut()
                    .as_mut()
                    .map(|v| v.push(info.to_string()))
                    .is_some()
            });
            if !caught {
                default(info);
            }
        }));
    });
}

/// Runs one input through a check; the panic's message and location if it broke an invariant.
fn run(check: Check, data: &[u8]) -> Result<(), String> {
    install_hook();
    CAUGHT.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(data)));
    let caught = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    outcome.map_err(|_| caught.join("\n"))
}

#[test]
fn every_seed_and_regression_passes_its_check() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for kind in [SEEDS, REGRESSIONS] {
            for path in inputs(kind, name).unwrap_or_default() {
                let shown = shown(kind, name, &path);
                if path.is_dir() {
                    failures.push(format!("{shown}: a directory (libFuzzer reads files only)"));
                    continue;
                }
                let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {shown}: {e}"));
                replayed += 1;
                if let Err(why) = run(*check, &data) {
                    failures.push(format!("{shown} ({} bytes): {why}", data.len()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} committed fuzz inputs break their target's invariants \
         (replay one with `cargo +nightly fuzz run --fuzz-dir fuzz <target> <file>`):\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!("replayed {replayed} committed fuzz inputs through their checks");
}
