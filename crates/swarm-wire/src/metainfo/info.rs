//! Validation of the `info` dictionary: names and paths, lengths, piece hashes.
//!
//! A `.torrent` comes from strangers. The paths in it become file names on our disk, so every
//! element is sanitized and checked here, once (`names.rs`), and the rest of swarmd can join them
//! under the download directory without thinking about it.

use std::collections::HashSet;

use super::names::{self, Named};
use super::{opt_int, wrong, FileEntry, Info, MetainfoError};
use crate::bencode::{Dict, Value};

/// The largest piece length accepted. Real torrents stay at or below 16 MiB; past 64 MiB a piece
/// buffer per download becomes a memory problem, and such files are made to hurt.
pub const MAX_PIECE_LENGTH: u32 = 64 << 20;

pub(super) fn parse_info(d: &Dict) -> Result<Info, MetainfoError> {
    let (name, raw_name) = name(d)?;
    let piece_length = piece_length(d)?;
    let pieces = pieces(d)?;
    let private = match opt_int(d, "private")? {
        None | Some(0) => false,
        // BEP 27 says 1; any other non-zero value is read as private too, because treating a
        // tracker-only torrent as public would leak it to the DHT.
        Some(_) => true,
    };
    let (files, single_file) = match (d.get(b"length"), d.get(b"files")) {
        (Some(_), Some(_)) => {
            return Err(MetainfoError::Invalid {
                key: "info",
                reason: "has both `length` (single file) and `files` (multi-file)".into(),
            })
        }
        (None, None) => return Err(MetainfoError::Missing("length` or `files")),
        (Some(len), None) => {
            let length = file_length(len).map_err(|reason| MetainfoError::Invalid {
                key: "length",
                reason,
            })?;
            let file = FileEntry {
                path: vec![name.clone()],
                raw_path: raw_name.clone().map(|r| vec![r]),
                length,
                offset: 0,
                pad: false,
            };
            (vec![file], true)
        }
        (None, Some(list)) => (files(list)?, false),
    };
    let total_length = files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.length))
        .ok_or_else(|| MetainfoError::Invalid {
            key: "files",
            reason: "the total length does not fit in 64 bits".into(),
        })?;
    if total_length == 0 {
        return Err(MetainfoError::Invalid {
            key: if single_file { "length" } else { "files" },
            reason: "the torrent holds no data (total length 0)".into(),
        });
    }
    let needed = total_length.div_ceil(u64::from(piece_length));
    if needed != pieces.len() as u64 {
        return Err(MetainfoError::Invalid {
            key: "pieces",
            reason: format!(
                "holds {} hashes but {} bytes in pieces of {} need {}",
                pieces.len(),
                total_length,
                piece_length,
                needed
            ),
        });
    }
    Ok(Info {
        name,
        raw_name,
        piece_length,
        pieces,
        files,
        total_length,
        private,
        single_file,
    })
}

/// `name` (or `name.utf-8`), sanitized, with the raw bytes of `name` when they differ. Must be one
/// safe path element: it names the file (single-file) or the top directory (multi-file) inside
/// the download directory.
fn name(d: &Dict) -> Result<(String, Option<Vec<u8>>), MetainfoError> {
    let raw = d
        .get(b"name")
        .ok_or(MetainfoError::Missing("name"))?
        .as_bytes()
        .ok_or_else(|| wrong("name", "a string"))?;
    let Named { text, raw } =
        names::sanitize(d, "name", &[raw], false).map_err(|(name, reason)| {
            MetainfoError::Invalid {
                key: "name",
                reason: format!("{name:?} is not a safe file name: {reason}"),
            }
        })?;
    let name = text.into_iter().next().unwrap_or_default();
    Ok((name, raw.and_then(|r| r.into_iter().next())))
}

fn piece_length(d: &Dict) -> Result<u32, MetainfoError> {
    let n = opt_int(d, "piece length")?.ok_or(MetainfoError::Missing("piece length"))?;
    let invalid = |reason: String| MetainfoError::Invalid {
        key: "piece length",
        reason,
    };
    if n <= 0 {
        return Err(invalid(format!("{n} is not positive")));
    }
    u32::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_PIECE_LENGTH)
        .ok_or_else(|| invalid(format!("{n} is larger than the 64 MiB limit")))
}

fn pieces(d: &Dict) -> Result<Vec<[u8; 20]>, MetainfoError> {
    let raw = d
        .get(b"pieces")
        .ok_or(MetainfoError::Missing("pieces"))?
        .as_bytes()
        .ok_or_else(|| wrong("pieces", "a string of 20-byte SHA-1 hashes"))?;
    if raw.len() % 20 != 0 {
        return Err(MetainfoError::Invalid {
            key: "pieces",
            reason: format!("its length {} is not a multiple of 20", raw.len()),
        });
    }
    Ok(raw
        .chunks_exact(20)
        .map(|c| {
            let mut h = [0u8; 20];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// A file length: an integer, not negative. `Err` holds the reason.
fn file_length(v: &Value) -> Result<u64, String> {
    let n = v
        .as_int()
        .ok_or_else(|| format!("`length` must be an integer, found {}", v.type_name()))?;
    u64::try_from(n).map_err(|_| format!("`length` is negative ({n})"))
}

fn files(list: &Value) -> Result<Vec<FileEntry>, MetainfoError> {
    let list = list
        .as_list()
        .ok_or_else(|| wrong("files", "a list of dictionaries"))?;
    if list.is_empty() {
        return Err(MetainfoError::Invalid {
            key: "files",
            reason: "the file list is empty".into(),
        });
    }
    let mut out = Vec::with_capacity(list.len());
    let mut offset = 0u64;
    for (index, v) in list.iter().enumerate() {
        let bad = |reason: String| MetainfoError::InvalidFile { index, reason };
        let d = v
            .as_dict()
            .ok_or_else(|| bad(format!("expected a dictionary, found {}", v.type_name())))?;
        let length = file_length(
            d.get(b"length")
                .ok_or_else(|| bad("missing `length`".into()))?,
        )
        .map_err(bad)?;
        let Named {
            text: path,
            raw: raw_path,
        } = file_path(d).map_err(|e| match e {
            PathError::Unsafe { path, reason } => MetainfoError::UnsafePath { path, reason },
            PathError::Malformed(reason) => bad(reason),
        })?;
        // BEP 47: the attribute string holds one letter per flag; `p` marks padding.
        let pad = d
            .get(b"attr")
            .and_then(Value::as_bytes)
            .is_some_and(|a| a.contains(&b'p'));
        out.push(FileEntry {
            path,
            raw_path,
            length,
            offset,
            pad,
        });
        offset = offset
            .checked_add(length)
            .ok_or_else(|| MetainfoError::Invalid {
                key: "files",
                reason: "the total length does not fit in 64 bits".into(),
            })?;
    }
    check_unique_paths(&out)?;
    Ok(out)
}

enum PathError {
    Unsafe { path: String, reason: &'static str },
    Malformed(String),
}

/// `path` (or `path.utf-8`): a non-empty list of elements, each sanitized to a safe one.
fn file_path(d: &Dict) -> Result<Named, PathError> {
    let raw = d
        .get(b"path")
        .ok_or_else(|| PathError::Malformed("missing `path`".into()))?;
    let list = raw.as_list().ok_or_else(|| {
        PathError::Malformed(format!("`path` must be a list, found {}", raw.type_name()))
    })?;
    let elements = list
        .iter()
        .map(|e| {
            e.as_bytes().ok_or_else(|| {
                PathError::Malformed(format!(
                    "a `path` element must be a string, found {}",
                    e.type_name()
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if elements.is_empty() {
        return Err(PathError::Malformed("`path` is an empty list".into()));
    }
    names::sanitize(d, "path", &elements, true)
        .map_err(|(path, reason)| PathError::Unsafe { path, reason })
}

/// No two files may have the same path, and no file may sit where another file needs a
/// directory (`a` and `a/b`): either would make two files write to one place on disk.
/// Padding files are left out: BEP 47 names them by size, so several can share a name, and they
/// are never written.
fn check_unique_paths(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut seen: HashSet<&[String]> = HashSet::new();
    let mut dirs: HashSet<&[String]> = HashSet::new();
    for f in files.iter().filter(|f| !f.pad) {
        if !seen.insert(&f.path) {
            return Err(MetainfoError::DuplicatePath {
                path: f.path.join("/"),
            });
        }
        for k in 1..f.path.len() {
            if let Some(prefix) = f.path.get(..k) {
                dirs.insert(prefix);
            }
        }
    }
    for f in files.iter().filter(|f| !f.pad) {
        if dirs.contains(f.path.as_slice()) {
            let other = files
                .iter()
                .find(|o| !o.pad && o.path.len() > f.path.len() && o.path.starts_with(&f.path))
                .map(|o| o.path.join("/"))
                .unwrap_or_default();
            return Err(MetainfoError::PathConflict {
                file: f.path.join("/"),
                other,
            });
        }
    }
    Ok(())
}
