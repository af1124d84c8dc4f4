//! Test payloads: deterministic pseudo-random data on disk, `.torrent` files for it, and
//! verification of what a client wrote.
//!
//! * Content is a pure function of `(seed, file path, offset)` (SplitMix64 over 8-byte words), so
//!   every 16 KiB block of every piece is distinct (a block written at the wrong offset fails the
//!   hash check) and any byte can be recomputed ([`Payload::expected_bytes`]).
//! * Multi-file payloads have uneven sizes so that file edges fall inside pieces, and put every
//!   third file in a `sub/` directory to exercise multi-component paths.
//! * Torrents are made by `mktorrent` (an independent implementation; piece size `2^15..=2^28`)
//!   or, for other piece sizes, by [`Payload::make_torrent_native`].
//! * [`Torrent`] is parsed with this crate's own [`crate::bencode`] reader, so verifying
//!   swarmd never trusts swarmd's own parser; [`Torrent::cross_check_swarm_wire`] compares the two.
//!
//! ```no_run
//! use swarm_integration_tests::payload::{verify_dir_against_torrent, Payload, MIB};
//! use swarm_integration_tests::util::TestEnv;
//!
//! let env = TestEnv::new("payload-example");
//! let payload = Payload::multi(&env.subdir("seed"), "album", 3 * MIB, 5, 42);
//! let torrent = payload.make_torrent(&env.path().join("album.torrent"), 15, &["http://127.0.0.1:1/announce"]);
//! // ... a client downloads into env.subdir("leech") ...
//! verify_dir_against_torrent(&torrent.path, &env.path().join("leech")).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use swarm_wire::InfoHash;

use crate::bencode::{self, Value};
use crate::util::require_tool;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a stable hash of a file's relative path (std's hashers are not stable across releases).
fn path_key(rel: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Fills `buf` with the content of the file whose key is `key`, starting at `offset`.
fn fill(key: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = splitmix64(key ^ (pos / 8).wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes();
        let within = (pos % 8) as usize;
        let n = (8 - within).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&word[within..within + n]);
        i += n;
        pos += n as u64;
    }
}

// ---------------------------------------------------------------------------------------------
// Payload
// ---------------------------------------------------------------------------------------------

/// One file of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadFile {
    /// Path relative to the payload root (`dir/name`); for a single-file payload, just `name`.
    pub rel_path: String,
    pub len: u64,
}

/// Generated data on disk: `dir/name` is a file (single-file) or a directory (multi-file).
/// `dir` is what clients are given as their save/download directory.
#[derive(Clone, Debug)]
pub struct Payload {
    pub name: String,
    pub dir: PathBuf,
    pub seed: u64,
    pub single_file: bool,
    /// Sorted by path, the order `mktorrent` (and [`Payload::make_torrent_native`]) lists them.
    pub files: Vec<PayloadFile>,
}

impl Payload {
    /// Writes a single file `dir/name` of `len` bytes.
    pub fn single(dir: &Path, name: &str, len: u64, seed: u64) -> Payload {
        let p = Payload {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            seed,
            single_file: true,
            files: vec![PayloadFile {
                rel_path: name.to_string(),
                len,
            }],
        };
        p.write();
        p
    }

    /// Writes a directory `dir/name` holding `n_files` files of uneven sizes (weights 1..=n)
    /// adding up to `total` bytes. Every third file goes into `sub/`. Sizes are nudged so that no
    /// file edge falls on a 1 KiB boundary, i.e. every edge lies inside a piece and a block.
    pub fn multi(dir: &Path, name: &str, total: u64, n_files: usize, seed: u64) -> Payload {
        assert!(n_files >= 1, "need at least one file");
        assert!(
            total >= 4096 * n_files as u64,
            "payload too small for {n_files} uneven files"
        );
        let weight_sum = (n_files * (n_files + 1) / 2) as u64;
        let mut files: Vec<PayloadFile> = (0..n_files)
            .map(|i| {
                let rel = if i % 3 == 2 {
                    format!("sub/f{i:02}.bin")
                } else {
                    format!("f{i:02}.bin")
                };
                PayloadFile {
                    rel_path: rel,
                    len: total * (i as u64 + 1) / weight_sum,
                }
            })
            .collect();
        let assigned: u64 = files.iter().map(|f| f.len).sum();
        files[n_files - 1].len += total - assigned;
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        // Move a few bytes between neighbours until no edge is 1 KiB-aligned (in torrent order).
        let mut edge = 0u64;
        for i in 0..n_files.saturating_sub(1) {
            edge += files[i].len;
            if edge & 1023 == 0 {
                let d = 333.min(files[i].len / 2);
                files[i].len -= d;
                files[i + 1].len += d;
                edge -= d;
            }
        }
        Self::with_files(
            dir,
            name,
            &files
                .iter()
                .map(|f| (f.rel_path.as_str(), f.len))
                .collect::<Vec<_>>(),
            seed,
        )
    }

    /// Writes a directory `dir/name` with exactly these files (`/`-separated relative paths;
    /// zero-length files allowed).
    pub fn with_files(dir: &Path, name: &str, files: &[(&str, u64)], seed: u64) -> Payload {
        let mut files: Vec<PayloadFile> = files
            .iter()
            .map(|(p, len)| PayloadFile {
                rel_path: p.to_string(),
                len: *len,
            })
            .collect();
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        let p = Payload {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            seed,
            single_file: false,
            files,
        };
        p.write();
        p
    }

    /// `dir/name`: the file or directory holding the data.
    pub fn root(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Absolute path of a file of this payload.
    pub fn file_path(&self, f: &PayloadFile) -> PathBuf {
        if self.single_file {
            self.root()
        } else {
            self.root().join(&f.rel_path)
        }
    }

    /// Sum of the file sizes.
    pub fn total_len(&self) -> u64 {
        self.files.iter().map(|f| f.len).sum()
    }

    fn key(&self, f: &PayloadFile) -> u64 {
        self.seed ^ path_key(&format!("{}/{}", self.name, f.rel_path))
    }

    /// The bytes `rel_path[offset..offset + len]` should hold.
    pub fn expected_bytes(&self, rel_path: &str, offset: u64, len: usize) -> Vec<u8> {
        let f = self
            .files
            .iter()
            .find(|f| f.rel_path == rel_path)
            .unwrap_or_else(|| panic!("no file {rel_path} in payload {}", self.name));
        let mut buf = vec![0u8; len];
        fill(self.key(f), offset, &mut buf);
        buf
    }

    fn write(&self) {
        let mut buf = vec![0u8; MIB as usize];
        for f in &self.files {
            let path = self.file_path(f);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
            }
            let mut out =
                File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
            let key = self.key(f);
            let mut off = 0u64;
            while off < f.len {
                let n = (f.len - off).min(buf.len() as u64) as usize;
                fill(key, off, &mut buf[..n]);
                out.write_all(&buf[..n])
                    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                off += n as u64;
            }
        }
    }

    /// Copies the payload into `dir` (for a second seeder: clients must never share files).
    pub fn copy_to(&self, dir: &Path) -> Payload {
        let mut p = self.clone();
        p.dir = dir.to_path_buf();
        for f in &self.files {
            let (from, to) = (self.file_path(f), p.file_path(f));
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
        }
        p
    }

    /// Writes `out` with `mktorrent -l piece_exp` (piece length `2^piece_exp`, 15..=28), no
    /// creation date, and `announce` as trackers: the first URL is `announce`, and with more than
    /// one, each URL becomes its own `announce-list` tier.
    pub fn make_torrent(&self, out: &Path, piece_exp: u32, announce: &[&str]) -> Torrent {
        assert!(
            (15..=28).contains(&piece_exp),
            "mktorrent takes piece exponents 15..=28 (got {piece_exp}); use make_torrent_native for others"
        );
        let mktorrent = require_tool("mktorrent");
        let _ = fs::remove_file(out); // mktorrent refuses to overwrite
        let mut cmd = Command::new(mktorrent);
        cmd.arg("-d")
            .arg("-l")
            .arg(piece_exp.to_string())
            .arg("-o")
            .arg(out);
        for url in announce {
            cmd.arg("-a").arg(url);
        }
        cmd.arg(self.root());
        let output = cmd
            .output()
            .unwrap_or_else(|e| panic!("running mktorrent: {e}"));
        assert!(
            output.status.success(),
            "mktorrent failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let t = Torrent::load(out);
        assert_eq!(
            t.total_len,
            self.total_len(),
            "mktorrent saw a different payload size"
        );
        t
    }

    /// Writes `out` with this crate's own encoder: any `piece_length` (e.g. 16 KiB, one block per
    /// piece, which mktorrent cannot make), `announce` as in [`Payload::make_torrent`].
    pub fn make_torrent_native(&self, out: &Path, piece_length: u64, announce: &[&str]) -> Torrent {
        assert!(piece_length > 0);
        let mut pieces = Vec::new();
        let mut hasher = sha1_smol::Sha1::new();
        let mut in_piece = 0u64;
        let mut buf = vec![0u8; 64 * KIB as usize];
        for f in &self.files {
            let path = self.file_path(f);
            let mut file =
                File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            let mut left = f.len;
            while left > 0 {
                let n = left.min(buf.len() as u64).min(piece_length - in_piece) as usize;
                file.read_exact(&mut buf[..n])
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                hasher.update(&buf[..n]);
                in_piece += n as u64;
                left -= n as u64;
                if in_piece == piece_length {
                    pieces.extend_from_slice(&hasher.digest().bytes());
                    hasher.reset();
                    in_piece = 0;
                }
            }
        }
        if in_piece > 0 {
            pieces.extend_from_slice(&hasher.digest().bytes());
        }
        let mut info = BTreeMap::new();
        info.insert(b"name".to_vec(), bencode::bytes(self.name.as_bytes()));
        info.insert(b"piece length".to_vec(), Value::Int(piece_length as i64));
        info.insert(b"pieces".to_vec(), Value::Bytes(pieces));
        if self.single_file {
            info.insert(b"length".to_vec(), Value::Int(self.total_len() as i64));
        } else {
            let files = self
                .files
                .iter()
                .map(|f| {
                    let mut d = BTreeMap::new();
                    d.insert(b"length".to_vec(), Value::Int(f.len as i64));
                    let path = f
                        .rel_path
                        .split('/')
                        .map(|c| bencode::bytes(c.as_bytes()))
                        .collect();
                    d.insert(b"path".to_vec(), Value::List(path));
                    Value::Dict(d)
                })
                .collect();
            info.insert(b"files".to_vec(), Value::List(files));
        }
        let tiers: Vec<Vec<String>> = if announce.len() > 1 {
            announce.iter().map(|u| vec![u.to_string()]).collect()
        } else {
            Vec::new()
        };
        write_torrent_file(
            out,
            announce.first().copied(),
            &tiers,
            &Value::Dict(info).encode(),
        );
        Torrent::load(out)
    }
}

/// Writes a `.torrent` from raw info bytes (kept byte for byte, so the info-hash is preserved).
pub fn write_torrent_file(
    out: &Path,
    announce: Option<&str>,
    tiers: &[Vec<String>],
    info_bytes: &[u8],
) {
    // Keys in sorted order, as bencode requires: announce < announce-list < info.
    let mut buf = b"d".to_vec();
    if let Some(a) = announce {
        buf.extend_from_slice(&Value::Bytes(b"announce".to_vec()).encode());
        buf.extend_from_slice(&bencode::bytes(a.as_bytes()).encode());
    }
    if !tiers.is_empty() {
        let list = Value::List(
            tiers
                .iter()
                .map(|t| Value::List(t.iter().map(|u| bencode::bytes(u.as_bytes())).collect()))
                .collect(),
        );
        buf.extend_from_slice(&Value::Bytes(b"announce-list".to_vec()).encode());
        buf.extend_from_slice(&list.encode());
    }
    buf.extend_from_slice(b"4:info");
    buf.extend_from_slice(info_bytes);
    buf.push(b'e');
    fs::write(out, buf).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

// ---------------------------------------------------------------------------------------------
// Torrent
// ---------------------------------------------------------------------------------------------

/// One file as listed in a torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentFile {
    /// Path components below the torrent's directory (`[name]` for single-file torrents).
    pub path: Vec<String>,
    pub len: u64,
    /// Offset of the file's first byte in the concatenated payload.
    pub offset: u64,
    /// BEP 47 padding file: not on disk, reads as zeros.
    pub pad: bool,
}

/// A parsed `.torrent` (v1), read with this crate's own bencode reader.
#[derive(Clone, Debug)]
pub struct Torrent {
    pub path: PathBuf,
    pub info_hash: InfoHash,
    /// The raw bencoded info dictionary as it appears in the file.
    pub info_bytes: Vec<u8>,
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    pub files: Vec<TorrentFile>,
    pub single_file: bool,
    pub total_len: u64,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
}

impl Torrent {
    /// Reads and parses `path`; panics with the reason if it is not a valid v1 torrent.
    pub fn load(path: &Path) -> Torrent {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut t =
            Torrent::parse(&bytes).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        t.path = path.to_path_buf();
        t
    }

    /// Parses torrent bytes (`path` is left empty).
    pub fn parse(bytes: &[u8]) -> Result<Torrent, String> {
        let (root, spans) = bencode::decode_dict_with_spans(bytes)?;
        let span = spans
            .get(b"info".as_slice())
            .ok_or("no `info` dictionary")?
            .clone();
        let info_bytes = bytes[span].to_vec();
        let info = root
            .get("info")
            .filter(|v| v.as_dict().is_some())
            .ok_or("`info` is not a dictionary")?;
        let name = info
            .get("name")
            .and_then(Value::as_str)
            .ok_or("missing `name`")?
            .to_string();
        let piece_length = info
            .get("piece length")
            .and_then(Value::as_int)
            .filter(|&n| n > 0)
            .ok_or("missing or bad `piece length`")? as u64;
        let raw_pieces = info
            .get("pieces")
            .and_then(Value::as_bytes)
            .ok_or("missing `pieces`")?;
        if raw_pieces.len() % 20 != 0 {
            return Err("`pieces` length is not a multiple of 20".into());
        }
        let pieces: Vec<[u8; 20]> = raw_pieces
            .chunks(20)
            .map(|c| c.try_into().unwrap())
            .collect();
        let (single_file, mut files) = if let Some(len) = info.get("length").and_then(Value::as_int)
        {
            let file = TorrentFile {
                path: vec![name.clone()],
                len: u64::try_from(len).map_err(|_| "negative `length`")?,
                offset: 0,
                pad: false,
            };
            (true, vec![file])
        } else {
            let list = info
                .get("files")
                .and_then(Value::as_list)
                .ok_or("neither `length` nor `files`")?;
            let mut files = Vec::new();
            for f in list {
                let len = f
                    .get("length")
                    .and_then(Value::as_int)
                    .ok_or("file without `length`")?;
                let path = f
                    .get("path")
                    .and_then(Value::as_list)
                    .ok_or("file without `path`")?
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_string)
                            .ok_or("non-UTF-8 path component")
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if path.is_empty()
                    || path
                        .iter()
                        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('/'))
                {
                    return Err(format!("unsafe path {path:?}"));
                }
                let pad = f
                    .get("attr")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains('p'));
                files.push(TorrentFile {
                    path,
                    len: u64::try_from(len).map_err(|_| "negative file `length`")?,
                    offset: 0,
                    pad,
                });
            }
            (false, files)
        };
        let mut offset = 0;
        for f in &mut files {
            f.offset = offset;
            offset += f.len;
        }
        let total_len = offset;
        let expected_pieces = total_len.div_ceil(piece_length);
        if expected_pieces != pieces.len() as u64 {
            return Err(format!(
                "{} piece hashes for {expected_pieces} pieces",
                pieces.len()
            ));
        }
        let announce = root
            .get("announce")
            .and_then(Value::as_str)
            .map(str::to_string);
        let announce_list = root
            .get("announce-list")
            .and_then(Value::as_list)
            .map(|tiers| {
                tiers
                    .iter()
                    .map(|t| {
                        t.as_list()
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|u| u.as_str().map(str::to_string))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Torrent {
            path: PathBuf::new(),
            info_hash: InfoHash::of(&info_bytes),
            info_bytes,
            name,
            piece_length,
            pieces,
            files,
            single_file,
            total_len,
            announce,
            announce_list,
        })
    }

    pub fn num_pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `i` (the last one may be short).
    pub fn piece_len(&self, i: usize) -> u64 {
        (self.total_len - i as u64 * self.piece_length).min(self.piece_length)
    }

    /// Where file `f` lives below a client's save directory `save_dir`.
    pub fn file_path(&self, save_dir: &Path, f: &TorrentFile) -> PathBuf {
        if self.single_file {
            save_dir.join(&self.name)
        } else {
            f.path
                .iter()
                .fold(save_dir.join(&self.name), |p, c| p.join(c))
        }
    }

    /// Writes a copy of this torrent to `out` with other trackers (the info dictionary, and so the
    /// info-hash, stays byte for byte the same). `tiers` becomes `announce-list` if non-empty.
    pub fn with_trackers(
        &self,
        out: &Path,
        announce: Option<&str>,
        tiers: &[Vec<String>],
    ) -> Torrent {
        write_torrent_file(out, announce, tiers, &self.info_bytes);
        let t = Torrent::load(out);
        assert_eq!(t.info_hash, self.info_hash);
        t
    }

    /// A magnet URI for this torrent: `xt`, `dn`, and a `tr` per tracker given.
    pub fn magnet(&self, trackers: &[&str]) -> String {
        let mut m = format!(
            "magnet:?xt=urn:btih:{}&dn={}",
            self.info_hash.to_hex(),
            crate::http::percent_encode(self.name.as_bytes())
        );
        for tr in trackers {
            m.push_str("&tr=");
            m.push_str(&crate::http::percent_encode(tr.as_bytes()));
        }
        m
    }

    /// Hash-checks every piece of the data below `save_dir`: `true` where the piece is intact.
    /// Missing or short files make the pieces they touch fail (no panic).
    pub fn check_pieces(&self, save_dir: &Path) -> Vec<bool> {
        let n = self.num_pieces();
        let mut ok = vec![true; n];
        let mut mark_bad = |from: u64, to: u64| {
            if to > from {
                let first = (from / self.piece_length) as usize;
                let last = ((to - 1) / self.piece_length) as usize;
                for p in ok.iter_mut().take(last.min(n - 1) + 1).skip(first) {
                    *p = false;
                }
            }
        };
        let mut hasher = sha1_smol::Sha1::new();
        let mut in_piece = 0u64;
        let mut piece = 0usize;
        let mut hashes = Vec::with_capacity(n);
        let mut buf = vec![0u8; 256 * KIB as usize];
        for f in &self.files {
            let mut file = if f.pad {
                None
            } else {
                match File::open(self.file_path(save_dir, f)) {
                    Ok(file) => Some(file),
                    Err(_) => {
                        mark_bad(f.offset, f.offset + f.len);
                        None
                    }
                }
            };
            let mut done = 0u64;
            while done < f.len {
                let want = (f.len - done)
                    .min(buf.len() as u64)
                    .min(self.piece_length - in_piece) as usize;
                let chunk = &mut buf[..want];
                chunk.fill(0);
                if let Some(file) = file.as_mut() {
                    let mut got = 0;
                    while got < want {
                        match file.read(&mut chunk[got..]) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => got += k,
                        }
                    }
                    if got < want {
                        mark_bad(f.offset + done + got as u64, f.offset + f.len);
                        // Keep hashing zeros so later files still line up.
                    }
                }
                hasher.update(chunk);
                in_piece += want as u64;
                done += want as u64;
                if in_piece == self.piece_length {
                    hashes.push(hasher.digest().bytes());
                    hasher.reset();
                    in_piece = 0;
                    piece += 1;
                }
            }
        }
        if in_piece > 0 {
            hashes.push(hasher.digest().bytes());
            piece += 1;
        }
        debug_assert_eq!(piece, n);
        for (i, h) in hashes.iter().enumerate() {
            if *h != self.pieces[i] {
                ok[i] = false;
            }
        }
        ok
    }

    /// Checks file sizes and every piece's SHA-1 of the data below `save_dir`. The error lists
    /// what is wrong (missing files, sizes, bad pieces).
    pub fn verify_dir(&self, save_dir: &Path) -> Result<(), String> {
        let mut problems = Vec::new();
        for f in self.files.iter().filter(|f| !f.pad) {
            let p = self.file_path(save_dir, f);
            match fs::metadata(&p) {
                Ok(m) if m.len() == f.len => {}
                Ok(m) => problems.push(format!(
                    "{}: {} bytes, expected {}",
                    p.display(),
                    m.len(),
                    f.len
                )),
                Err(e) => problems.push(format!("{}: {e}", p.display())),
            }
        }
        let bad: Vec<usize> = self
            .check_pieces(save_dir)
            .iter()
            .enumerate()
            .filter(|(_, ok)| !**ok)
            .map(|(i, _)| i)
            .collect();
        if !bad.is_empty() {
            problems.push(format!(
                "{} of {} pieces fail their SHA-1 (first: {:?})",
                bad.len(),
                self.num_pieces(),
                &bad[..bad.len().min(16)]
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "data in {} does not match {} ({}):\n  {}",
                save_dir.display(),
                self.path.display(),
                self.info_hash,
                problems.join("\n  ")
            ))
        }
    }

    /// Parses the same file with `swarm_wire::Metainfo::from_bytes` and compares everything both
    /// parsers know (info-hash, name, piece length and hashes, files, trackers).
    pub fn cross_check_swarm_wire(&self) -> Result<(), String> {
        let bytes =
            fs::read(&self.path).map_err(|e| format!("reading {}: {e}", self.path.display()))?;
        let m = swarm_wire::Metainfo::from_bytes(&bytes)
            .map_err(|e| format!("swarm-wire rejects it: {e}"))?;
        let mut diffs = Vec::new();
        let mut check = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                diffs.push(format!("{what}: ours {ours}, swarm-wire {theirs}"));
            }
        };
        check("info_hash", self.info_hash.to_hex(), m.info_hash.to_hex());
        check(
            "info_bytes",
            format!("{} bytes", self.info_bytes.len()),
            format!("{} bytes", m.info_bytes.len()),
        );
        check("name", self.name.clone(), m.info.name.clone());
        check(
            "piece_length",
            self.piece_length.to_string(),
            m.info.piece_length.to_string(),
        );
        check(
            "pieces",
            format!("{:?}", self.pieces),
            format!("{:?}", m.info.pieces),
        );
        check(
            "total_len",
            self.total_len.to_string(),
            m.info.total_length.to_string(),
        );
        check(
            "single_file",
            self.single_file.to_string(),
            m.info.single_file.to_string(),
        );
        let ours: Vec<_> = self
            .files
            .iter()
            .map(|f| (f.path.clone(), f.len, f.offset, f.pad))
            .collect();
        let theirs: Vec<_> = m
            .info
            .files
            .iter()
            .map(|f| (f.path.clone(), f.length, f.offset, f.pad))
            .collect();
        check("files", format!("{ours:?}"), format!("{theirs:?}"));
        check(
            "announce",
            format!("{:?}", self.announce),
            format!("{:?}", m.announce),
        );
        check(
            "announce_list",
            format!("{:?}", self.announce_list),
            format!("{:?}", m.announce_list),
        );
        if self.info_bytes != m.info_bytes {
            diffs.push("raw info bytes differ".into());
        }
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(diffs.join("\n"))
        }
    }
}

/// The data in `save_dir` (which holds `<payload name>`) is `payload`, checked twice: every
/// piece's SHA-1 against `torrent`, every file byte for byte against the seeder's copy. Panics
/// with the first difference.
#[track_caller]
pub fn verify_download(torrent: &Torrent, payload: &Payload, save_dir: &Path) {
    torrent
        .verify_dir(save_dir)
        .unwrap_or_else(|e| panic!("piece check: {e}"));
    compare_paths(&payload.root(), &save_dir.join(&payload.name))
        .unwrap_or_else(|e| panic!("byte comparison with the seeder's copy: {e}"));
}

/// Checks that the data below `dir` (a client's save directory, holding `<name>`) matches the
/// torrent at `torrent`: every file's size and every piece's SHA-1.
pub fn verify_dir_against_torrent(torrent: &Path, dir: &Path) -> Result<(), String> {
    Torrent::load(torrent).verify_dir(dir)
}

/// Byte-for-byte comparison of two files, or of two directory trees (same relative paths, same
/// contents). See [`compare_paths`] for the reason when they differ.
pub fn files_equal(a: &Path, b: &Path) -> bool {
    compare_paths(a, b).is_ok()
}

/// Like [`files_equal`], but says where the first difference is.
pub fn compare_paths(a: &Path, b: &Path) -> Result<(), String> {
    let (ma, mb) = (
        fs::metadata(a).map_err(|e| format!("{}: {e}", a.display()))?,
        fs::metadata(b).map_err(|e| format!("{}: {e}", b.display()))?,
    );
    if ma.is_dir() != mb.is_dir() {
        return Err(format!(
            "{} and {} are not both directories",
            a.display(),
            b.display()
        ));
    }
    if ma.is_dir() {
        let names = |d: &Path| -> Result<Vec<_>, String> {
            let mut v: Vec<_> = fs::read_dir(d)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            v.sort();
            Ok(v)
        };
        let (na, nb) = (names(a)?, names(b)?);
        if na != nb {
            return Err(format!(
                "{} has {na:?}, {} has {nb:?}",
                a.display(),
                b.display()
            ));
        }
        for n in na {
            compare_paths(&a.join(&n), &b.join(&n))?;
        }
        return Ok(());
    }
    if ma.len() != mb.len() {
        return Err(format!(
            "{} has {} bytes, {} has {}",
            a.display(),
            ma.len(),
            b.display(),
            mb.len()
        ));
    }
    let (mut fa, mut fb) = (
        File::open(a).map_err(|e| e.to_string())?,
        File::open(b).map_err(|e| e.to_string())?,
    );
    let (mut ba, mut bb) = (vec![0u8; 256 * 1024], vec![0u8; 256 * 1024]);
    let mut off = 0u64;
    loop {
        let n = fa.read(&mut ba).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        fb.read_exact(&mut bb[..n])
            .map_err(|e| format!("{}: {e}", b.display()))?;
        if ba[..n] != bb[..n] {
            let i = ba[..n]
                .iter()
                .zip(&bb[..n])
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            return Err(format!(
                "{} and {} differ at byte {}",
                a.display(),
                b.display(),
                off + i as u64
            ));
        }
        off += n as u64;
    }
}

/// Flips all bits of the byte at `offset` in `path` (to make a piece fail its hash).
pub fn flip_byte(path: &Path, offset: u64) {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b)
        .unwrap_or_else(|e| panic!("reading {} at {offset}: {e}", path.display()));
    b[0] ^= 0xff;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::TestEnv;

    #[test]
    fn content_is_deterministic_and_offset_addressable() {
        let mut a = vec![0u8; 1000];
        fill(7, 0, &mut a);
        let mut b = vec![0u8; 13];
        fill(7, 501, &mut b);
        assert_eq!(&a[501..514], &b[..]);
        let mut c = vec![0u8; 1000];
        fill(8, 0, &mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn multi_file_layout_has_unaligned_edges_and_a_subdir() {
        let env = TestEnv::new("payload-layout");
        let p = Payload::multi(env.path(), "m", 600 * KIB + 17, 5, 1);
        assert_eq!(p.total_len(), 600 * KIB + 17);
        assert!(p.files.iter().any(|f| f.rel_path.starts_with("sub/")));
        let mut edge = 0;
        for f in &p.files[..p.files.len() - 1] {
            edge += f.len;
            assert_ne!(edge & 1023, 0, "{:?}", p.files);
        }
        for f in &p.files {
            assert_eq!(fs::metadata(p.file_path(f)).unwrap().len(), f.len);
        }
        let f = &p.files[1];
        let on_disk = fs::read(p.file_path(f)).unwrap();
        assert_eq!(p.expected_bytes(&f.rel_path, 100, 50), &on_disk[100..150]);
    }

    #[test]
    fn mktorrent_and_native_agree_and_verify_catches_damage() {
        let env = TestEnv::new("payload-torrent");
        let p = Payload::multi(&env.subdir("data"), "m", 300 * KIB + 5, 4, 3);
        let t1 = p.make_torrent(
            &env.path().join("a.torrent"),
            15,
            &["http://127.0.0.1:1/announce"],
        );
        let t2 = p.make_torrent_native(
            &env.path().join("b.torrent"),
            32 * KIB,
            &["http://127.0.0.1:1/announce"],
        );
        assert_eq!(
            t1.info_hash, t2.info_hash,
            "our encoder must match mktorrent byte for byte"
        );
        assert_eq!(t1.announce.as_deref(), Some("http://127.0.0.1:1/announce"));
        assert!(!t1.single_file);
        assert_eq!(t1.files.len(), 4);
        t1.verify_dir(&p.dir).unwrap();

        // A copy compares equal; one flipped byte breaks exactly one piece.
        let copy = p.copy_to(&env.subdir("copy"));
        assert!(files_equal(&p.root(), &copy.root()));
        let f = &copy.files[1];
        flip_byte(&copy.file_path(f), 10);
        assert!(!files_equal(&p.root(), &copy.root()));
        let bad = t1.check_pieces(&copy.dir).iter().filter(|ok| !**ok).count();
        assert_eq!(bad, 1);
        let err = verify_dir_against_torrent(&t1.path, &copy.dir).unwrap_err();
        assert!(err.contains("1 of"), "{err}");

        // A missing file is reported, not a panic.
        fs::remove_file(copy.file_path(&copy.files[0])).unwrap();
        assert!(t1
            .verify_dir(&copy.dir)
            .unwrap_err()
            .contains("No such file"));

        // Rewriting trackers keeps the info-hash; 16 KiB pieces via the native writer.
        let t3 = t1.with_trackers(
            &env.path().join("c.torrent"),
            Some("udp://127.0.0.1:2/announce"),
            &[],
        );
        assert_eq!(t3.info_hash, t1.info_hash);
        let t4 = p.make_torrent_native(&env.path().join("d.torrent"), 16 * KIB, &[]);
        assert_eq!(t4.num_pieces() as u64, p.total_len().div_ceil(16 * KIB));
        t4.verify_dir(&p.dir).unwrap();
        assert!(t4.magnet(&[]).starts_with("magnet:?xt=urn:btih:"));
    }

    #[test]
    fn single_file_torrent() {
        let env = TestEnv::new("payload-single");
        let p = Payload::single(env.path(), "one.bin", 100_000, 9);
        let t = p.make_torrent(&env.path().join("one.torrent"), 15, &[]);
        assert!(t.single_file);
        assert_eq!(t.piece_len(t.num_pieces() - 1), 100_000 - 3 * 32768);
        t.verify_dir(env.path()).unwrap();
        assert!(t.announce.is_none());
    }

    /// Cross-checks swarm-wire's metainfo parser against ours, field by field; a parser that
    /// refuses or panics fails it.
    #[test]
    fn swarm_wire_agrees_with_our_parser() {
        let env = TestEnv::new("payload-crosscheck");
        let single = Payload::single(&env.subdir("s"), "one.bin", 70_000, 1);
        let multi = Payload::multi(&env.subdir("m"), "many", 200 * KIB + 3, 4, 2);
        let torrents = [
            single.make_torrent(
                &env.path().join("s.torrent"),
                15,
                &["http://127.0.0.1:1/announce"],
            ),
            multi.make_torrent(
                &env.path().join("m.torrent"),
                15,
                &["http://127.0.0.1:1/announce", "udp://127.0.0.1:2/announce"],
            ),
        ];
        // A panic in the parser fails the test like any disagreement.
        for t in torrents {
            t.cross_check_swarm_wire()
                .unwrap_or_else(|e| panic!("{}: {e}", t.path.display()));
        }
    }
}
