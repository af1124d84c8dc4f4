//! v1 metainfo (`.torrent`) files. CONTRACT FILE: the public types and signatures below are used by
//! the engine; implement the bodies, keep the names.
//!
//! Parsing is strict where a mistake would be dangerous or silently wrong (paths that escape the
//! download directory, piece hashes that do not cover the payload, lengths that overflow) and
//! every refusal says which key is wrong and why. Informational keys (`comment`, `created by`)
//! are decoded lossily: a bad comment is no reason to refuse a torrent.
//!
//! The info-hash is the SHA-1 of the `info` value's bytes *as they appear in the file*; the
//! dictionary is never re-encoded before hashing (a re-encoding that differs by one byte would
//! put us in a different swarm).

mod info;
mod names;
#[cfg(test)]
mod tests;

use crate::bencode::{self, Dict, Limits, Value};
use crate::InfoHash;

pub use info::MAX_PIECE_LENGTH;
pub use names::{check_path_element, escape_raw, sanitize_element};

/// A parsed and validated `.torrent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metainfo {
    pub info_hash: InfoHash,
    /// The raw bencoded `info` dictionary exactly as it appeared in the file (served over ut_metadata).
    pub info_bytes: Vec<u8>,
    pub info: Info,
    pub announce: Option<String>,
    /// BEP 12 tiers as found in the file (empty when absent).
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 web seeds (kept for later; not used by the engine yet).
    pub url_list: Vec<String>,
    pub creation_date: Option<i64>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
}

/// The validated `info` dictionary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    /// The name swarmd shows and saves under: `name` (or `name.utf-8`), sanitized (see
    /// `metainfo/names.rs`: invalid UTF-8 bytes as `%XX`, `\\` as `_`).
    pub name: String,
    /// The bytes of the torrent's `name` when they differ from [`Info::name`] (not UTF-8, held a
    /// `\\`, or `name.utf-8` was used instead).
    pub raw_name: Option<Vec<u8>>,
    pub piece_length: u32,
    pub pieces: Vec<[u8; 20]>,
    /// For a single-file torrent: one entry whose `path` is `[name]`. For multi-file: the files in
    /// the order of the info dict, `path` relative to the torrent's directory `name`. Padding files
    /// (BEP 47) are included with `pad = true` so that offsets stay right.
    pub files: Vec<FileEntry>,
    pub total_length: u64,
    pub private: bool,
    /// True for the single-file form (payload is `<save dir>/<name>`), false for the directory form
    /// (payload is `<save dir>/<name>/<path...>`).
    pub single_file: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components, each sanitized and validated (no `..`, `.`, empty, `/`, `\\`, `\0`).
    pub path: Vec<String>,
    /// The torrent's own `path` elements when they differ from [`FileEntry::path`] (see
    /// [`Info::raw_name`]); for a single-file torrent, the raw `name`.
    pub raw_path: Option<Vec<Vec<u8>>>,
    pub length: u64,
    /// Offset of the file's first byte in the torrent's concatenated payload.
    pub offset: u64,
    /// BEP 47 padding file (attr contains `p`): never written to disk, reads as zeros.
    pub pad: bool,
}

/// One contiguous run of a piece inside one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    pub file_index: usize,
    /// Offset inside the file.
    pub file_offset: u64,
    pub len: u64,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MetainfoError {
    #[error("not valid bencode: {0}")]
    Bencode(String),
    #[error("missing key `{0}`")]
    Missing(&'static str),
    #[error("key `{key}` has the wrong type: expected {expected}")]
    WrongType {
        key: &'static str,
        expected: &'static str,
    },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("unsafe file path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// An entry of `info.files` is malformed (index counts from 0).
    #[error("file #{index} in `files`: {reason}")]
    InvalidFile { index: usize, reason: String },
    #[error("duplicate file path {path:?}")]
    DuplicatePath { path: String },
    #[error("file path {file:?} is also used as a directory (by {other:?})")]
    PathConflict { file: String, other: String },
}

impl From<bencode::BencodeError> for MetainfoError {
    fn from(e: bencode::BencodeError) -> Self {
        MetainfoError::Bencode(e.to_string())
    }
}

impl Metainfo {
    /// Parses and validates a whole `.torrent` file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        let top = bencode::decode_dict_with_spans(bytes, Limits::TORRENT)?;
        let info_value = top
            .dict
            .get(b"info")
            .ok_or(MetainfoError::Missing("info"))?;
        let info_dict = info_value.as_dict().ok_or(MetainfoError::WrongType {
            key: "info",
            expected: "a dictionary",
        })?;
        let info_bytes = top
            .raw(bytes, b"info")
            .ok_or(MetainfoError::Missing("info"))?;
        let info = info::parse_info(info_dict)?;
        let d = &top.dict;
        Ok(Metainfo {
            info_hash: InfoHash::of(info_bytes),
            info_bytes: info_bytes.to_vec(),
            info,
            announce: opt_url(d, "announce")?,
            announce_list: announce_list(d)?,
            url_list: url_list(d)?,
            creation_date: opt_int(d, "creation date")?,
            comment: opt_text(d, "comment")?,
            created_by: opt_text(d, "created by")?,
        })
    }

    /// Builds a metainfo from a bare info dictionary (after a ut_metadata fetch), with trackers.
    pub fn from_info_bytes(
        info: &[u8],
        trackers: Vec<Vec<String>>,
    ) -> Result<Metainfo, MetainfoError> {
        let value = bencode::decode(info, Limits::TORRENT)?;
        let dict = value.as_dict().ok_or(MetainfoError::WrongType {
            key: "info",
            expected: "a dictionary",
        })?;
        let parsed = info::parse_info(dict)?;
        let announce_list: Vec<Vec<String>> = trackers
            .into_iter()
            .map(|tier| {
                tier.into_iter()
                    .filter(|u| !u.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|tier| !tier.is_empty())
            .collect();
        Ok(Metainfo {
            info_hash: InfoHash::of(info),
            info_bytes: info.to_vec(),
            info: parsed,
            announce: announce_list.first().and_then(|t| t.first()).cloned(),
            announce_list,
            url_list: Vec::new(),
            creation_date: None,
            comment: None,
            created_by: None,
        })
    }

    /// The tracker tiers to use: `announce-list` when present, else `[[announce]]`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            return self.announce_list.clone();
        }
        self.announce.iter().map(|a| vec![a.clone()]).collect()
    }

    /// Serialises back to a `.torrent` (the info dict is written byte for byte from `info_bytes`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut top = Dict::new();
        if let Some(a) = &self.announce {
            top.insert("announce", Value::string(a));
        }
        // Like mktorrent: `announce-list` only when it says more than `announce` alone.
        let only_announce = match (&self.announce, self.announce_list.as_slice()) {
            (Some(a), [tier]) => tier.len() == 1 && tier.first() == Some(a),
            _ => false,
        };
        if !self.announce_list.is_empty() && !only_announce {
            let tiers = self
                .announce_list
                .iter()
                .map(|tier| Value::List(tier.iter().map(|u| Value::string(u)).collect()))
                .collect();
            top.insert("announce-list", Value::List(tiers));
        }
        if let Some(c) = &self.comment {
            top.insert("comment", Value::string(c));
        }
        if let Some(c) = &self.created_by {
            top.insert("created by", Value::string(c));
        }
        if let Some(t) = self.creation_date {
            top.insert("creation date", Value::Int(t));
        }
        if !self.url_list.is_empty() {
            let urls = self.url_list.iter().map(|u| Value::string(u)).collect();
            top.insert("url-list", Value::List(urls));
        }
        // Splice the raw info bytes in at their sorted place; everything else goes through the
        // encoder. Keys are emitted by the encoder too, so the framing stays canonical.
        let mut out = Vec::with_capacity(self.info_bytes.len() + 512);
        out.push(b'd');
        let mut info_written = false;
        for (key, value) in top.iter() {
            if !info_written && key > &b"info"[..] {
                write_info(&mut out, &self.info_bytes);
                info_written = true;
            }
            out.extend_from_slice(&bencode::encode(&Value::Bytes(key.to_vec())));
            out.extend_from_slice(&bencode::encode(value));
        }
        if !info_written {
            write_info(&mut out, &self.info_bytes);
        }
        out.push(b'e');
        out
    }
}

fn write_info(out: &mut Vec<u8>, info_bytes: &[u8]) {
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(info_bytes);
}

impl Info {
    pub fn num_pieces(&self) -> u32 {
        self.pieces.len() as u32
    }

    /// Length of piece `index` (the last one may be short).
    pub fn piece_len(&self, index: u32) -> u32 {
        let start = index as u64 * self.piece_length as u64;
        (self.total_length.saturating_sub(start)).min(self.piece_length as u64) as u32
    }

    /// The file runs covering `len` bytes at `offset` inside piece `index`, in order.
    /// Zero-length files are skipped; padding files are included (callers skip `pad` files).
    /// A range reaching past the end of the piece is cut at the piece's end.
    pub fn spans(&self, index: u32, offset: u32, len: u32) -> Vec<FileSpan> {
        let piece_start = u64::from(index) * u64::from(self.piece_length);
        let piece_end = piece_start + u64::from(self.piece_len(index));
        let mut pos = piece_start + u64::from(offset);
        let end = (pos + u64::from(len)).min(piece_end);
        let mut spans = Vec::new();
        // Offsets only grow along the list, so the first file ending after `pos` is found by
        // bisection; zero-length files end where they start and are passed over.
        let mut i = self
            .files
            .partition_point(|f| f.offset.saturating_add(f.length) <= pos);
        while pos < end {
            let Some(file) = self.files.get(i) else { break };
            // Checked: the fields are public, so an `Info` built by hand may be inconsistent.
            let Some(file_offset) = pos.checked_sub(file.offset) else {
                break;
            };
            let run = file.length.saturating_sub(file_offset).min(end - pos);
            if run > 0 {
                spans.push(FileSpan {
                    file_index: i,
                    file_offset,
                    len: run,
                });
            }
            pos += run;
            i += 1;
        }
        spans
    }

    /// The expected SHA-1 of piece `index`.
    pub fn piece_hash(&self, index: u32) -> Option<&[u8; 20]> {
        self.pieces.get(index as usize)
    }
}

fn wrong(key: &'static str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType { key, expected }
}

pub(crate) fn opt_int(d: &Dict, key: &'static str) -> Result<Option<i64>, MetainfoError> {
    d.get(key.as_bytes())
        .map(|v| v.as_int().ok_or_else(|| wrong(key, "an integer")))
        .transpose()
}

/// Free text: lossy UTF-8, because a comment in a legacy code page is no reason to refuse.
fn opt_text(d: &Dict, key: &'static str) -> Result<Option<String>, MetainfoError> {
    d.get(key.as_bytes())
        .map(|v| {
            v.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .ok_or_else(|| wrong(key, "a string"))
        })
        .transpose()
}

fn url(v: &Value, key: &'static str) -> Result<String, MetainfoError> {
    let bytes = v.as_bytes().ok_or_else(|| wrong(key, "a string"))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| MetainfoError::Invalid {
        key,
        reason: format!("URL {:?} is not valid UTF-8", bencode::printable(bytes)),
    })
}

fn opt_url(d: &Dict, key: &'static str) -> Result<Option<String>, MetainfoError> {
    match d.get(key.as_bytes()) {
        None => Ok(None),
        Some(v) => url(v, key).map(|u| Some(u).filter(|u| !u.is_empty())),
    }
}

/// BEP 12 tiers; empty tiers and empty URLs are dropped (some creators write them).
fn announce_list(d: &Dict) -> Result<Vec<Vec<String>>, MetainfoError> {
    const KEY: &str = "announce-list";
    const EXPECTED: &str = "a list of lists of URLs";
    let Some(v) = d.get(KEY.as_bytes()) else {
        return Ok(Vec::new());
    };
    let mut tiers = Vec::new();
    for tier in v.as_list().ok_or_else(|| wrong(KEY, EXPECTED))? {
        let mut urls = Vec::new();
        for u in tier.as_list().ok_or_else(|| wrong(KEY, EXPECTED))? {
            let u = url(u, KEY)?;
            if !u.is_empty() {
                urls.push(u);
            }
        }
        if !urls.is_empty() {
            tiers.push(urls);
        }
    }
    Ok(tiers)
}

/// BEP 19 web seeds: a single URL string or a list of them.
fn url_list(d: &Dict) -> Result<Vec<String>, MetainfoError> {
    const KEY: &str = "url-list";
    let urls = match d.get(KEY.as_bytes()) {
        None => return Ok(Vec::new()),
        Some(v @ Value::Bytes(_)) => vec![url(v, KEY)?],
        Some(Value::List(items)) => items
            .iter()
            .map(|u| url(u, KEY))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(wrong(KEY, "a URL or a list of URLs")),
    };
    Ok(urls.into_iter().filter(|u| !u.is_empty()).collect())
}
