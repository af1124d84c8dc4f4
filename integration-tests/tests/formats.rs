//! `swarmctl create` / `swarmctl inspect` against the real tools: the same info-hash as
//! `mktorrent` for the same piece size, torrents that libtorrent loads with the same info-hash,
//! torrents from `mktorrent` and `transmission-create` read correctly, and every file of the
//! hostile corpus (`crates/swarm-wire/tests/hostile/`) refused with its message and a non-zero
//! exit status.
//!
//! The binary: `$SWARMCTL` (or `$SWARMCTL_BIN`), else `<target>/release/swarmctl`, built once with
//! `cargo build --release -p swarmctl` when missing. A missing external tool FAILS the test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value as Json;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests sits in the workspace")
        .to_path_buf()
}

fn swarmctl() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SWARMCTL").or_else(|| std::env::var_os("SWARMCTL_BIN")) {
            return PathBuf::from(p);
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|t| workspace().join(t)) // `join` keeps an absolute path as it is
            .unwrap_or_else(|| workspace().join("target"));
        let bin = target.join("release/swarmctl");
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            eprintln!(
                "{} missing: cargo build --release -p swarmctl",
                bin.display()
            );
            let out = Command::new(cargo)
                .args(["build", "--release", "-p", "swarmctl"])
                .current_dir(workspace())
                .output()
                .expect("running cargo");
            assert!(
                out.status.success(),
                "building swarmctl failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(bin.exists(), "{} not found after building", bin.display());
        bin
    })
}

/// Fails (never skips) when an external tool is missing.
fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || Path::new(name).is_file();
    assert!(
        found,
        "required tool `{name}` is not installed: run scripts/install-test-deps.sh \
         (packages mktorrent, transmission-cli, python3-libtorrent)"
    );
    Command::new(name)
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn inspect_json(torrent: &Path) -> Json {
    let out = run(Command::new(swarmctl())
        .arg("inspect")
        .arg("--json")
        .arg(torrent));
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

fn our_info_hash(torrent: &Path) -> String {
    inspect_json(torrent)["info_hash"]
        .as_str()
        .expect("info_hash")
        .to_owned()
}

/// The info-hash as libtorrent computes it.
fn libtorrent_info_hash(torrent: &Path) -> String {
    let script = "import sys, libtorrent as lt; print(lt.torrent_info(sys.argv[1]).info_hash())";
    let out = run(tool("/usr/bin/python3").arg("-c").arg(script).arg(torrent));
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(hash.len(), 40, "libtorrent printed {hash:?}");
    hash
}

fn mktorrent(target: &Path, exp: u32, out: &Path, extra: &[&str]) {
    let _ = fs::remove_file(out);
    run(tool("mktorrent")
        .arg("-l")
        .arg(exp.to_string())
        .args(["-a", "http://tracker.invalid/announce", "-d"])
        .args(extra)
        .arg("-o")
        .arg(out)
        .arg(target));
}

fn swarmctl_create(target: &Path, piece_size: u32, out: &Path, extra: &[&str]) {
    run(Command::new(swarmctl())
        .arg("create")
        .arg(target)
        .arg("-o")
        .arg(out)
        .args([
            "-t",
            "http://tracker.invalid/announce",
            "--no-date",
            "--force",
        ])
        .arg("--piece-size")
        .arg(piece_size.to_string())
        .args(extra));
}

/// Deterministic bytes that do not repeat (so a misplaced byte changes a hash).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A nested tree whose sort order is easy to get wrong: `a.txt` before `a/…` (strcmp on the
/// whole path), upper case before lower case, hidden files, an empty file, an empty directory,
/// a non-ASCII name, files that end exactly on a piece boundary.
fn make_tree(root: &Path) {
    let files: &[(&str, usize)] = &[
        ("a.txt", 1234),
        ("a/b/deep.bin", 70_001),
        ("a/z", 200_000),
        ("B-upper", 33_333),
        (".hidden/h", 10),
        ("zero", 0),
        ("with space é.dat", 5000),
        ("sub/sub2/sub3/last", 65_536),
        ("sub/sub2/x", 1),
    ];
    for (i, (rel, len)) in files.iter().enumerate() {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, data(*len, i as u64 + 1)).expect("write");
    }
    fs::create_dir_all(root.join("empty-dir/also-empty")).expect("mkdir");
}

#[test]
fn create_single_file_matches_mktorrent_and_libtorrent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payload.bin");
    fs::write(&file, data(1_000_003, 42)).expect("write");
    for exp in [15, 18] {
        let ours = dir.path().join(format!("ours-{exp}.torrent"));
        let theirs = dir.path().join(format!("mktorrent-{exp}.torrent"));
        swarmctl_create(&file, 1 << exp, &ours, &[]);
        mktorrent(&file, exp, &theirs, &[]);
        let hash = our_info_hash(&ours);
        assert_eq!(hash, our_info_hash(&theirs), "piece size 2^{exp}");
        assert_eq!(
            hash,
            libtorrent_info_hash(&ours),
            "libtorrent on ours, 2^{exp}"
        );
        assert_eq!(
            hash,
            libtorrent_info_hash(&theirs),
            "libtorrent on mktorrent's, 2^{exp}"
        );
        let json = inspect_json(&ours);
        assert_eq!(json["name"], "payload.bin");
        assert_eq!(json["total_size"], 1_000_003);
        assert_eq!(json["piece_size"], 1 << exp);
        assert_eq!(json["single_file"], true);
    }
}

#[test]
fn create_directory_matches_mktorrent_and_libtorrent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    make_tree(&root);
    for (exp, threads) in [(15, "1"), (15, "3"), (16, "2")] {
        let ours = dir.path().join(format!("ours-{exp}-{threads}.torrent"));
        let theirs = dir.path().join(format!("mktorrent-{exp}.torrent"));
        swarmctl_create(&root, 1 << exp, &ours, &["--threads", threads]);
        mktorrent(&root, exp, &theirs, &[]);
        let hash = our_info_hash(&ours);
        assert_eq!(hash, our_info_hash(&theirs), "2^{exp}, {threads} threads");
        assert_eq!(hash, libtorrent_info_hash(&ours), "libtorrent on ours");
        assert_eq!(
            hash,
            libtorrent_info_hash(&theirs),
            "libtorrent on mktorrent's"
        );
    }
    // Same hash with the private flag on both sides (it is inside `info`).
    let ours = dir.path().join("ours-private.torrent");
    let theirs = dir.path().join("mktorrent-private.torrent");
    swarmctl_create(&root, 1 << 15, &ours, &["--private"]);
    mktorrent(&root, 15, &theirs, &["-p"]);
    assert_eq!(our_info_hash(&ours), our_info_hash(&theirs));
    assert_eq!(inspect_json(&ours)["private"], true);
    let json = inspect_json(&ours);
    let paths: Vec<&str> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(
        paths,
        [
            ".hidden/h",
            "B-upper",
            "a.txt",
            "a/b/deep.bin",
            "a/z",
            "sub/sub2/sub3/last",
            "sub/sub2/x",
            "with space é.dat",
            "zero"
        ]
    );
}

#[test]
fn inspect_reads_mktorrent_torrents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    make_tree(&root);
    let t = dir.path().join("mk.torrent");
    run(tool("mktorrent")
        .args(["-l", "16", "-p", "-c", "made by mktorrent"])
        .args([
            "-a",
            "http://t1/ann,http://t1b/ann",
            "-a",
            "udp://t2:80/ann",
        ])
        .args(["-w", "http://seed.invalid/"])
        .arg("-o")
        .arg(&t)
        .arg(&root));
    let json = inspect_json(&t);
    assert_eq!(
        json["info_hash"].as_str(),
        Some(libtorrent_info_hash(&t).as_str())
    );
    assert_eq!(json["name"], "tree");
    assert_eq!(
        json["total_size"],
        1234 + 70_001 + 200_000 + 33_333 + 10 + 5000 + 65_536 + 1
    );
    assert_eq!(json["piece_size"], 65536);
    assert_eq!(json["private"], true);
    assert_eq!(json["comment"], "made by mktorrent");
    assert_eq!(
        json["trackers"],
        serde_json::json!([["http://t1/ann", "http://t1b/ann"], ["udp://t2:80/ann"]])
    );
    assert_eq!(
        json["web_seeds"],
        serde_json::json!(["http://seed.invalid/"])
    );
    assert_eq!(json["files"].as_array().map(Vec::len), Some(9));
    // The text form names the same things.
    let text = run(Command::new(swarmctl()).arg("inspect").arg(&t)).stdout;
    let text = String::from_utf8_lossy(&text);
    for needle in [
        "tree",
        "made by mktorrent",
        "tier 2: udp://t2:80/ann",
        "a/b/deep.bin",
        "Private:     yes",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[test]
fn inspect_reads_transmission_torrents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    make_tree(&root);
    let t = dir.path().join("tr.torrent");
    run(tool("transmission-create")
        .args(["-p", "-c", "made by transmission", "-s", "32"])
        .args(["-t", "http://tr1/announce"])
        .arg("-o")
        .arg(&t)
        .arg(&root));
    let json = inspect_json(&t);
    assert_eq!(
        json["info_hash"].as_str(),
        Some(libtorrent_info_hash(&t).as_str())
    );
    assert_eq!(json["name"], "tree");
    assert_eq!(json["piece_size"], 32768);
    assert_eq!(json["private"], true);
    assert_eq!(json["comment"], "made by transmission");
    let trackers = json["trackers"].to_string();
    assert!(trackers.contains("http://tr1/announce"), "{trackers}");
    let mut files: Vec<(String, u64)> = json["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["pad"] == false)
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["size"].as_u64().expect("size"),
            )
        })
        .collect();
    files.sort();
    assert!(
        files.contains(&("a/b/deep.bin".to_owned(), 70_001)),
        "{files:?}"
    );
    assert!(
        files.contains(&("with space é.dat".to_owned(), 5000)),
        "{files:?}"
    );

    // Single file too.
    let single = dir.path().join("one.bin");
    fs::write(&single, data(123_457, 9)).expect("write");
    let t1 = dir.path().join("one.torrent");
    run(tool("transmission-create")
        .args(["-t", "http://tr1/announce", "-o"])
        .arg(&t1)
        .arg(&single));
    let json = inspect_json(&t1);
    assert_eq!(
        json["info_hash"].as_str(),
        Some(libtorrent_info_hash(&t1).as_str())
    );
    assert_eq!(json["single_file"], true);
    assert_eq!(json["total_size"], 123_457);
}

#[test]
fn inspect_refuses_every_hostile_torrent() {
    let corpus = workspace().join("crates/swarm-wire/tests/hostile");
    let listing = fs::read_to_string(corpus.join("EXPECTED")).expect("hostile/EXPECTED");
    let mut checked = 0;
    for line in listing
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, expected) = line.split_once('\t').expect("file<TAB>message");
        let path = corpus.join(name);
        let out = Command::new(swarmctl())
            .arg("inspect")
            .arg(&path)
            .output()
            .expect("run swarmctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: swarmctl inspect exited 0");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: a crash is not a refusal: {stderr}"
        );
        assert!(
            stderr.contains(name),
            "{name}: the error does not name the file: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{name}: {stderr:?} lacks {expected:?}"
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} hostile files");
    let missing = Command::new(swarmctl())
        .args(["inspect", "/nonexistent/x.torrent"])
        .output()
        .expect("run swarmctl");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.torrent"));
}

#[test]
fn inspect_magnets() {
    let uri = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Some+Name\
               &tr=http%3A%2F%2Ft%2Fa&x.pe=127.0.0.1:6881&so=0,2-3";
    let out = run(Command::new(swarmctl()).args(["inspect", "--json", uri]));
    let json: Json = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        json["info_hash"],
        "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
    );
    assert_eq!(json["name"], "Some Name");
    assert_eq!(json["trackers"], serde_json::json!(["http://t/a"]));
    assert_eq!(json["peers"], serde_json::json!(["127.0.0.1:6881"]));
    assert_eq!(json["select_only"], serde_json::json!([0, 2, 3]));
    let bad = Command::new(swarmctl())
        .args(["inspect", "magnet:?xt=urn:btih:123"])
        .output()
        .expect("run swarmctl");
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid info-hash"));
}

#[test]
fn create_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    fs::write(&file, b"data").expect("write");
    let out = dir.path().join("f.torrent");
    for (args, expected) in [
        (vec!["--piece-size", "1000"], "piece length 1000 is invalid"),
        (vec!["--piece-size", "12Q"], "unknown unit"),
    ] {
        let res = Command::new(swarmctl())
            .arg("create")
            .arg(&file)
            .arg("-o")
            .arg(&out)
            .args(&args)
            .output()
            .expect("run swarmctl");
        assert!(!res.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    swarmctl_create(&file, 16384, &out, &[]);
    let again = Command::new(swarmctl())
        .arg("create")
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run swarmctl");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// `swarmctl inspect x.torrent | head -1`: when the reader is gone, swarmctl ends like other
/// command-line tools (killed by SIGPIPE, nothing on stderr), not with a panic message.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("tree");
    make_tree(&root);
    let t = dir.path().join("tree.torrent");
    swarmctl_create(&root, 16384, &t, &[]);
    for args in [&["inspect"][..], &["inspect", "--json"][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(swarmctl())
            .args(args)
            .arg(&t)
            .stdout(writer)
            .output()
            .expect("running swarmctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: stderr: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {}",
            out.status
        );
    }
}
