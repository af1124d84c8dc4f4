//! `swarmctl create` and `swarmctl inspect`: `.torrent` files and magnet links, no daemon needed.
//!
//! The work is done by `swarm_wire` (creation, parsing, validation); this module turns command
//! line arguments into its options and its results into text or JSON.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use swarm_control::human::{bytes, utc};
use swarm_wire::bencode::Limits;
use swarm_wire::create::{create_metainfo, CreateOptions};
use swarm_wire::metainfo::escape_raw;
use swarm_wire::{Magnet, Metainfo};

#[derive(Subcommand, Debug)]
pub enum TorrentCommand {
    /// Create a .torrent from a file or a directory.
    Create(CreateArgs),
    /// Show what a .torrent file or a magnet link holds.
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The file or directory to share.
    path: PathBuf,
    /// Where to write the .torrent.
    #[arg(short, long, value_name = "OUT.torrent")]
    output: PathBuf,
    /// Tracker announce URL. Each -t starts a new tier (BEP 12); URLs separated by commas
    /// share a tier. The first URL is the `announce` key.
    #[arg(short = 't', long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Piece size: a power of two from 16K to 64M, written as 256K, 1M or 262144.
    /// Default: chosen for 1–2 thousand pieces (16K to 16M).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    piece_size: Option<u32>,
    /// Mark the torrent private (BEP 27): peers only from its trackers, no DHT or PEX.
    #[arg(long)]
    private: bool,
    /// A comment stored in the torrent.
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// A web seed URL (BEP 19); repeat for more.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Leave out the creation date, so the same input always gives the same file.
    #[arg(long)]
    no_date: bool,
    /// The torrent's name. Default: the file or directory name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Hashing threads. Default: one per core.
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    threads: usize,
    /// Overwrite OUT.torrent if it exists.
    #[arg(short, long)]
    force: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A .torrent file or a magnet URI (magnet:?xt=urn:btih:…).
    target: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: TorrentCommand) -> Result<()> {
    match cmd {
        TorrentCommand::Create(args) => create(args),
        TorrentCommand::Inspect(args) => inspect(args),
    }
}

/// `256K`, `1M`, `1MiB`, `262144` → bytes (binary multiples: pieces are powers of two).
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use K, M or plain bytes"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 256K, 1M or 262144"))?;
    n.checked_mul(multiplier)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// A tracker URL `create` accepts: http, https or udp, with a host. Anything else would go into
/// the torrent and fail on every announce, far from the typo that caused it.
fn check_tracker_url(url: &str) -> Result<()> {
    let ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        ["http", "https", "udp"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
            && rest
                .split(['/', '?'])
                .next()
                .is_some_and(|host| !host.is_empty())
            && !url.contains(char::is_whitespace)
    });
    if !ok {
        bail!("-t {url:?} is not a tracker URL (http://, https:// or udp://, then the host)");
    }
    Ok(())
}

/// A web seed URL (BEP 19) `create` accepts: http or https, with a host.
fn check_web_seed_url(url: &str) -> Result<()> {
    let ok = url.split_once("://").is_some_and(|(scheme, rest)| {
        ["http", "https"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
            && rest.split('/').next().is_some_and(|host| !host.is_empty())
    });
    if !ok {
        bail!("--web-seed {url:?} is not an http:// or https:// URL");
    }
    Ok(())
}

fn create(args: CreateArgs) -> Result<()> {
    let trackers: Vec<Vec<String>> = args
        .trackers
        .iter()
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect();
    for url in trackers.iter().flatten() {
        check_tracker_url(url)?;
    }
    for url in &args.web_seeds {
        check_web_seed_url(url)?;
    }
    let creation_date = if args.no_date {
        None
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some(i64::try_from(now.as_secs()).unwrap_or(i64::MAX))
    };
    let opts = CreateOptions {
        piece_length: args.piece_size,
        trackers,
        private: args.private,
        comment: args.comment,
        web_seeds: args.web_seeds,
        creation_date,
        created_by: None,
        threads: args.threads,
        name: args.name,
    };
    let meta = create_metainfo(&args.path, &opts).map_err(|e| {
        // The error names the path it is about (the one given, or a file inside it) with the
        // reason; say once what failed, without the path twice.
        let text = e.to_string();
        let given = args.path.display().to_string();
        if text.starts_with(&given) {
            anyhow::anyhow!("cannot create a torrent from {text}")
        } else {
            anyhow::anyhow!("cannot create a torrent from {given}: {text}")
        }
    })?;
    write_output(&args.output, &meta.to_bytes(), args.force)?;
    let info = &meta.info;
    println!(
        "created {}: {} ({} in {} pieces of {}), info-hash {}",
        args.output.display(),
        info.name,
        bytes(info.total_length),
        info.num_pieces(),
        bytes(u64::from(info.piece_length)),
        meta.info_hash
    );
    Ok(())
}

fn write_output(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut open = OpenOptions::new();
    open.write(true);
    if force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    let mut file = open.open(path).with_context(|| {
        if !force && path.exists() {
            format!(
                "{} already exists (use --force to overwrite)",
                path.display()
            )
        } else {
            format!("cannot write {}", path.display())
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn inspect(args: InspectArgs) -> Result<()> {
    let is_magnet = args
        .target
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"));
    if is_magnet {
        let magnet = Magnet::parse(&args.target).context("invalid magnet URI")?;
        print_magnet(&magnet, args.json);
        return Ok(());
    }
    let path = Path::new(&args.target);
    let meta = read_torrent(path).with_context(|| path.display().to_string())?;
    if args.json {
        println!("{:#}", torrent_json(&meta));
    } else {
        print!("{}", torrent_text(&meta));
    }
    Ok(())
}

fn read_torrent(path: &Path) -> Result<Metainfo> {
    let limit = Limits::TORRENT.max_size;
    let mut data = Vec::new();
    // Read at most one byte past the limit: a huge file is refused without being loaded.
    File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut data)?;
    if data.len() > limit {
        bail!(
            "larger than the {} limit for a .torrent",
            bytes(limit as u64)
        );
    }
    Ok(Metainfo::from_bytes(&data)?)
}

fn torrent_json(m: &Metainfo) -> serde_json::Value {
    let files: Vec<_> = m
        .info
        .files
        .iter()
        .map(|f| {
            let mut file = json!({ "path": f.path.join("/"), "size": f.length, "pad": f.pad });
            if let Some(raw) = &f.raw_path {
                file["raw_path"] = json!(raw_path(raw));
            }
            file
        })
        .collect();
    json!({
        "type": "torrent",
        "name": m.info.name,
        "raw_name": m.info.raw_name.as_deref().map(escape_raw),
        "info_hash": m.info_hash.to_hex(),
        "total_size": m.info.total_length,
        "piece_size": m.info.piece_length,
        "piece_count": m.info.num_pieces(),
        "private": m.info.private,
        "single_file": m.info.single_file,
        "comment": m.comment,
        "created_by": m.created_by,
        "creation_date": m.creation_date,
        "trackers": m.tracker_tiers(),
        "web_seeds": m.url_list,
        "files": files,
        "magnet": Magnet::from(m).to_uri(),
    })
}

fn torrent_text(m: &Metainfo) -> String {
    let i = &m.info;
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<12} {value}\n"));
    line("Name:", i.name.clone());
    if let Some(raw) = &i.raw_name {
        line(
            "Raw name:",
            format!("{} (sanitized: {})", escape_raw(raw), why(raw)),
        );
    }
    line("Info-hash:", m.info_hash.to_hex());
    line(
        "Total size:",
        format!("{} ({} bytes)", bytes(i.total_length), i.total_length),
    );
    line(
        "Pieces:",
        format!(
            "{} × {} ({} bytes)",
            i.num_pieces(),
            bytes(u64::from(i.piece_length)),
            i.piece_length
        ),
    );
    line("Private:", if i.private { "yes" } else { "no" }.to_owned());
    if let Some(c) = &m.comment {
        line("Comment:", c.clone());
    }
    if let Some(c) = &m.created_by {
        line("Created by:", c.clone());
    }
    if let Some(t) = m.creation_date {
        line("Created on:", format!("{} ({t})", utc(t)));
    }
    let tiers = m.tracker_tiers();
    if tiers.is_empty() {
        line("Trackers:", "none".to_owned());
    } else {
        out.push_str("Trackers:\n");
        for (n, tier) in tiers.iter().enumerate() {
            out.push_str(&format!("  tier {}: {}\n", n + 1, tier.join(", ")));
        }
    }
    for seed in &m.url_list {
        out.push_str(&format!("{:<12} {seed}\n", "Web seed:"));
    }
    let pads = i.files.iter().filter(|f| f.pad).count();
    let real: Vec<_> = i.files.iter().filter(|f| !f.pad).collect();
    out.push_str(&format!("Files ({}", real.len()));
    if pads > 0 {
        out.push_str(&format!(", plus {pads} padding"));
    }
    out.push_str("):\n");
    for f in real {
        out.push_str(&format!(
            "  {:>12}  {}\n",
            bytes(f.length),
            f.path.join("/")
        ));
        if let Some(raw) = &f.raw_path {
            out.push_str(&format!("  {:>12}  raw: {}\n", "", raw_path(raw)));
        }
    }
    out
}

/// A file's raw path, each element escaped as [`escape_raw`] does, joined by `/`.
fn raw_path(elements: &[Vec<u8>]) -> String {
    let shown: Vec<String> = elements.iter().map(|e| escape_raw(e)).collect();
    shown.join("/")
}

/// Why a name was changed: the swarm-wire rules (`metainfo/names.rs`) in a few words.
fn why(raw: &[u8]) -> &'static str {
    if std::str::from_utf8(raw).is_err() {
        "not UTF-8; invalid bytes shown as %XX, or `name.utf-8` used"
    } else if raw.contains(&b'\\') {
        "`\\` replaced by `_`, or `name.utf-8` used"
    } else {
        "`name.utf-8` used"
    }
}

fn print_magnet(m: &Magnet, as_json: bool) {
    if as_json {
        let peers: Vec<String> = m.peers.iter().map(ToString::to_string).collect();
        let doc = json!({
            "type": "magnet",
            "info_hash": m.info_hash.to_hex(),
            "name": m.display_name,
            "trackers": m.trackers,
            "peers": peers,
            "select_only": m.select_only,
        });
        println!("{doc:#}");
        return;
    }
    println!(
        "{:<12} {}",
        "Name:",
        m.display_name.as_deref().unwrap_or("(none)")
    );
    println!("{:<12} {}", "Info-hash:", m.info_hash);
    for t in &m.trackers {
        println!("{:<12} {t}", "Tracker:");
    }
    for p in &m.peers {
        println!("{:<12} {p}", "Peer:");
    }
    if !m.select_only.is_empty() {
        let list: Vec<String> = m.select_only.iter().map(ToString::to_string).collect();
        println!("{:<12} {}", "Select only:", list.join(","));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_and_web_seed_urls() {
        for good in [
            "http://t.example/announce",
            "HTTPS://t.example:443/a?k=1",
            "udp://127.0.0.1:6969",
        ] {
            assert!(check_tracker_url(good).is_ok(), "{good}");
        }
        for bad in ["notaurl", "ftp://x/a", "http://", "udp:///x", "http://a b/"] {
            let e = check_tracker_url(bad).unwrap_err().to_string();
            assert!(e.contains("is not a tracker URL"), "{bad}: {e}");
        }
        assert!(check_web_seed_url("https://seed.example/files/").is_ok());
        assert!(check_web_seed_url("udp://x/").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("256K"), Ok(262_144));
        assert_eq!(parse_size("256k"), Ok(262_144));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert!(parse_size("8G").unwrap_err().contains("too large"));
        assert!(parse_size("1X").unwrap_err().contains("unknown unit"));
        assert!(parse_size("K").is_err());
        assert!(parse_size("").is_err());
    }
}
