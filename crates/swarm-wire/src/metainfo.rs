//! v1 metainfo (`.torrent`) files. CONTRACT FILE: the public types and signatures below are used by
//! the engine; implement the bodies, keep the names.

use crate::InfoHash;

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
    pub name: String,
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
    /// Path components, each validated (no `..`, `.`, empty, `/`, `\0`).
    pub path: Vec<String>,
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
    WrongType { key: &'static str, expected: &'static str },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("unsafe file path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
}

impl Metainfo {
    /// Parses and validates a whole `.torrent` file.
    pub fn from_bytes(_bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
        todo!()
    }

    /// Builds a metainfo from a bare info dictionary (after a ut_metadata fetch), with trackers.
    pub fn from_info_bytes(_info: &[u8], _trackers: Vec<Vec<String>>) -> Result<Metainfo, MetainfoError> {
        todo!()
    }

    /// The tracker tiers to use: `announce-list` when present, else `[[announce]]`.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        todo!()
    }

    /// Serialises back to a `.torrent` (the info dict is written byte for byte from `info_bytes`).
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }
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
    pub fn spans(&self, _index: u32, _offset: u32, _len: u32) -> Vec<FileSpan> {
        todo!()
    }
}
