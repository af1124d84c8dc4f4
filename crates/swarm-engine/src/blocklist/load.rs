//! Reading blocklist files into a [`RangeSet`]: plain or gzip-compressed (told by the first
//! two bytes, whatever the name), a directory meaning every file in it (as transmission's
//! `blocklists/`), the format told per line (`parse.rs`). A malformed line is counted and the
//! first few are kept with their file and line number for the status and the log; only a file
//! that cannot be read (missing, unreadable, a corrupt gzip stream) fails the load, and then the
//! running set stays as it was (the caller's choice: see `Blocklist::load`).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use swarm_model::{BlocklistFile, BlocklistProblem};

use super::parse::{parse_line, Line};
use super::ranges::{RangeSet, RangeSetBuilder};

/// How many malformed lines are kept by file and line number (all are counted).
pub const PROBLEMS_KEPT: usize = 5;

/// The outcome of a load that read every file.
#[derive(Debug, Default)]
pub struct Loaded {
    pub set: RangeSet,
    pub files: Vec<BlocklistFile>,
    pub malformed: u64,
    pub problems: Vec<BlocklistProblem>,
}

/// A file (or directory) that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("blocklist {}: {reason}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub reason: String,
}

impl LoadError {
    fn new(path: &Path, e: impl std::fmt::Display) -> Self {
        LoadError {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// Reads every file of `paths` (a directory stands for its files, in name order; hidden files
/// and subdirectories in it are skipped).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
    let mut builder = RangeSetBuilder::default();
    let mut out = Loaded::default();
    for path in expand(paths)? {
        let before = builder.len();
        let malformed = read_file(&path, &mut builder, &mut out)?;
        out.files.push(BlocklistFile {
            path: path.clone(),
            rules: (builder.len() - before) as u64,
            malformed,
        });
    }
    out.set = builder.build();
    Ok(out)
}

fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| LoadError::new(path, e))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| LoadError::new(path, e))? {
            let entry = entry.map_err(|e| LoadError::new(path, e))?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.file_type().is_ok_and(|t| !t.is_dir()) {
                inside.push(entry.path());
            }
        }
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

/// Adds the rules of one file; returns how many of its lines were malformed.
fn read_file(
    path: &Path,
    builder: &mut RangeSetBuilder,
    out: &mut Loaded,
) -> Result<u64, LoadError> {
    let mut reader = BufReader::new(File::open(path).map_err(|e| LoadError::new(path, e))?);
    let gzip = reader
        .fill_buf()
        .map_err(|e| LoadError::new(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let mut malformed = 0;
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let n = lines
            .read_until(b'\n', &mut buf)
            .map_err(|e| LoadError::new(path, e))?;
        if n == 0 {
            break;
        }
        // Descriptions are not always UTF-8; the addresses always are ASCII.
        match parse_line(&String::from_utf8_lossy(&buf)) {
            Ok(Line::Nothing) => {}
            Ok(Line::Block(start, end)) => add(builder, start, end),
            Err(e) => {
                malformed += 1;
                out.malformed += 1;
                if out.problems.len() < PROBLEMS_KEPT {
                    out.problems.push(BlocklistProblem {
                        path: path.to_owned(),
                        line: number,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(malformed)
}

fn add(builder: &mut RangeSetBuilder, start: std::net::IpAddr, end: std::net::IpAddr) {
    use std::net::IpAddr::{V4, V6};
    match (start, end) {
        (V4(a), V4(b)) => builder.add_v4(a, b),
        (V6(a), V6(b)) => builder.add_v6(a, b),
        // The parser refuses mixed ranges.
        _ => {}
    }
}

/// Reads `r` to its end, at most `limit` bytes: a downloaded list (see `fetch`) must not fill
/// the disk.
pub(super) fn read_bounded(r: impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    r.take(limit + 1).read_to_end(&mut body)?;
    if body.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            limit >> 20
        )));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn mixed_formats_gzip_and_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let lists = dir.path().join("blocklists");
        std::fs::create_dir(&lists).unwrap();
        std::fs::write(
            lists.join("a.txt"),
            "# comment\nOrg:10.0.0.0-10.0.0.255\n001.002.003.000 - 001.002.003.255 , 0 , dat\n\
             bogus line\n192.168.0.0/16\n",
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"2001:db8::/32\n8.8.8.8\n1.1.1.1-1.1.1.0\n")
            .unwrap();
        std::fs::write(lists.join("b.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(lists.join(".hidden"), "7.7.7.7\n").unwrap();

        let loaded = load(std::slice::from_ref(&lists)).unwrap();
        assert_eq!(loaded.set.counts(), (4, 1));
        assert_eq!(loaded.malformed, 2);
        assert_eq!(loaded.files.len(), 2);
        assert_eq!((loaded.files[0].rules, loaded.files[0].malformed), (3, 1));
        assert_eq!((loaded.files[1].rules, loaded.files[1].malformed), (2, 1));
        let first = &loaded.problems[0];
        assert_eq!((first.path.clone(), first.line), (lists.join("a.txt"), 4));
        assert!(loaded.set.contains("8.8.8.8".parse().unwrap()));
        assert!(
            !loaded.set.contains("7.7.7.7".parse().unwrap()),
            "hidden file"
        );
    }

    #[test]
    fn an_unreadable_file_fails_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.p2p");
        let e = load(std::slice::from_ref(&missing)).unwrap_err();
        assert_eq!(e.path, missing);
        let corrupt = dir.path().join("bad.gz");
        std::fs::write(&corrupt, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        assert_eq!(
            load(std::slice::from_ref(&corrupt)).unwrap_err().path,
            corrupt
        );
    }

    #[test]
    fn only_the_first_few_problems_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junk.txt");
        std::fs::write(&f, "x\n".repeat(50)).unwrap();
        let loaded = load(&[f]).unwrap();
        assert_eq!(loaded.malformed, 50);
        assert_eq!(loaded.problems.len(), PROBLEMS_KEPT);
    }
}
