//! Magnet URIs (BEP 9), with the BEP 53 `so` (select only) extension.
//!
//! Understood parameters: `xt=urn:btih:` (40 hex digits or 32 base32 characters; `xt.1` style
//! too), `dn` (display name), `tr` (trackers, also `tr.1`, `tr.2` …), `x.pe` (peer addresses)
//! and `so` (file indices and ranges). Other parameters (`xl`, `ws`, `kt`, a v2 `urn:btmh:` …)
//! are ignored, as BEP 9 asks of unknown keys.
//!
//! `x.pe` may name a host (`host:port`); swarmd only dials addresses, so such entries are dropped
//! (resolving names would be I/O, and this crate does none). A `so` list is expanded, up to
//! [`MAX_SELECT_ONLY`] indices, so a `so=0-4294967295` costs an error, not 16 GiB.

use std::net::SocketAddr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::metainfo::Metainfo;
use crate::InfoHash;

/// Longest magnet URI accepted.
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// Most file indices a `so` parameter may select once its ranges are expanded.
pub const MAX_SELECT_ONLY: usize = 100_000;

/// RFC 3986 unreserved characters stay as they are; everything else is escaped.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed magnet link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    pub display_name: Option<String>,
    /// Tracker URLs in the order given, without duplicates.
    pub trackers: Vec<String>,
    /// Peers from `x.pe` (addresses only; host names are dropped).
    pub peers: Vec<SocketAddr>,
    /// BEP 53 file indices, sorted, without duplicates. Empty means "all files".
    pub select_only: Vec<u32>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MagnetError {
    #[error("not a magnet URI: it must start with `magnet:?`")]
    NotMagnet,
    #[error("magnet URI is {0} bytes long, more than the limit of {MAX_MAGNET_LEN}")]
    TooLong(usize),
    #[error("no BitTorrent info-hash: the URI needs `xt=urn:btih:<hash>`")]
    NoInfoHash,
    #[error("invalid info-hash {0:?}: expected 40 hex digits or 32 base32 characters")]
    BadInfoHash(String),
    #[error("two different info-hashes: {0} and {1}")]
    ConflictingInfoHashes(InfoHash, InfoHash),
    #[error("invalid percent-encoding or UTF-8 in parameter `{0}`")]
    BadEncoding(String),
    #[error("invalid peer address {0:?} in `x.pe`: expected ipv4:port, [ipv6]:port or host:port")]
    BadPeer(String),
    #[error("invalid `so` (select only) value {value:?}: {reason}")]
    BadSelectOnly { value: String, reason: String },
}

impl Magnet {
    /// A magnet with only an info-hash.
    pub fn new(info_hash: InfoHash) -> Self {
        Magnet {
            info_hash,
            display_name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            select_only: Vec::new(),
        }
    }

    /// What to call the torrent until its metadata arrives: the `dn` given, else the info-hash
    /// in hex.
    pub fn name(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.info_hash.to_hex())
    }

    /// Parses a magnet URI. The scheme is matched without regard to case.
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong(uri.len()));
        }
        let query = uri
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("magnet:?"))
            .and_then(|_| uri.get(8..))
            .ok_or(MagnetError::NotMagnet)?;
        let mut hash: Option<InfoHash> = None;
        let mut m = Magnet::new(InfoHash([0; 20]));
        // `so` ranges of all parameters, expanded once at the end: expanding and sorting after
        // each parameter let a 64 KiB link repeating `&so=0-99999` run for minutes (found by
        // the `magnet` fuzz target; input in fuzz/regressions/magnet/).
        let mut so_ranges: Vec<(u32, u32)> = Vec::new();
        let mut so_last = String::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = param.split_once('=').unwrap_or((param, ""));
            match base_key(key) {
                "xt" => {
                    let value = decode(key, raw, false)?;
                    if let Some(h) = parse_xt(&value)? {
                        match hash {
                            Some(prev) if prev != h => {
                                return Err(MagnetError::ConflictingInfoHashes(prev, h))
                            }
                            _ => hash = Some(h),
                        }
                    }
                }
                "dn" => m.display_name = Some(decode(key, raw, true)?),
                "tr" => {
                    let url = decode(key, raw, false)?;
                    if !url.is_empty() && !m.trackers.contains(&url) {
                        m.trackers.push(url);
                    }
                }
                "x.pe" => {
                    if let Some(peer) = parse_peer(&decode(key, raw, false)?)? {
                        if !m.peers.contains(&peer) {
                            m.peers.push(peer);
                        }
                    }
                }
                "so" => {
                    let value = decode(key, raw, false)?;
                    so_ranges.extend(parse_select_only(&value)?);
                    so_last = value;
                }
                _ => {}
            }
        }
        m.select_only = expand_ranges(so_ranges).ok_or_else(|| too_many(&so_last))?;
        m.info_hash = hash.ok_or(MagnetError::NoInfoHash)?;
        Ok(m)
    }

    /// Writes the magnet back as a URI (hex info-hash, values percent-encoded).
    pub fn to_uri(&self) -> String {
        let mut uri = format!("magnet:?xt=urn:btih:{}", self.info_hash.to_hex());
        if let Some(dn) = &self.display_name {
            uri.push_str("&dn=");
            uri.extend(utf8_percent_encode(dn, ESCAPE));
        }
        for tr in &self.trackers {
            uri.push_str("&tr=");
            uri.extend(utf8_percent_encode(tr, ESCAPE));
        }
        for peer in &self.peers {
            uri.push_str("&x.pe=");
            uri.extend(utf8_percent_encode(&peer.to_string(), ESCAPE));
        }
        if !self.select_only.is_empty() {
            let mut indices = self.select_only.clone();
            indices.sort_unstable();
            indices.dedup();
            uri.push_str("&so=");
            uri.push_str(&format_ranges(&indices));
        }
        uri
    }
}

impl From<&Metainfo> for Magnet {
    fn from(meta: &Metainfo) -> Self {
        Magnet {
            display_name: Some(meta.info.name.clone()),
            trackers: meta.tracker_tiers().into_iter().flatten().collect(),
            ..Magnet::new(meta.info_hash)
        }
    }
}

/// `tr.1` → `tr`, `xt.2` → `xt`: numbered variants of a key mean the same thing.
fn base_key(key: &str) -> &str {
    match key.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => key,
    }
}

/// Percent-decodes a value. `plus_is_space` for display names, where `+` is how many sites
/// write a space; in URLs a `+` is kept.
fn decode(key: &str, raw: &str, plus_is_space: bool) -> Result<String, MagnetError> {
    let bad = || MagnetError::BadEncoding(key.to_owned());
    let spaced;
    let raw = if plus_is_space {
        spaced = raw.replace('+', " ");
        spaced.as_str()
    } else {
        raw
    };
    // `%` must start a valid escape: a stray `%` means the URI was mangled somewhere.
    let bytes = raw.as_bytes();
    for (i, _) in raw.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad())
}

/// `Ok(None)` for a URN that is not a v1 BitTorrent info-hash.
fn parse_xt(value: &str) -> Result<Option<InfoHash>, MagnetError> {
    const PREFIX: &str = "urn:btih:";
    let Some(hash) = value
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| value.get(PREFIX.len()..))
    else {
        return Ok(None);
    };
    let bad = || MagnetError::BadInfoHash(hash.to_owned());
    match hash.len() {
        40 => InfoHash::from_hex(hash).map(Some).ok_or_else(bad),
        32 => {
            let decoded = data_encoding::BASE32
                .decode(hash.to_ascii_uppercase().as_bytes())
                .map_err(|_| bad())?;
            let bytes: [u8; 20] = decoded.try_into().map_err(|_| bad())?;
            Ok(Some(InfoHash(bytes)))
        }
        _ => Err(bad()),
    }
}

/// `Ok(None)` for a `host:port` entry (dropped, see the module docs).
fn parse_peer(value: &str) -> Result<Option<SocketAddr>, MagnetError> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    let bad = || MagnetError::BadPeer(value.to_owned());
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    match port.parse::<u16>() {
        Ok(p) if p != 0 && host_ok => Ok(None),
        _ => Err(bad()),
    }
}

fn too_many(value: &str) -> MagnetError {
    MagnetError::BadSelectOnly {
        value: value.to_owned(),
        reason: format!("selects more than {MAX_SELECT_ONLY} files"),
    }
}

/// `0,2,4-6` → `[(0, 0), (2, 2), (4, 6)]`.
fn parse_select_only(value: &str) -> Result<Vec<(u32, u32)>, MagnetError> {
    let bad = |reason: &str| MagnetError::BadSelectOnly {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let index = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| bad("expected file indices (0, 1, …) or ranges (2-5) separated by commas"))
    };
    let mut out = Vec::new();
    for item in value.split(',').filter(|s| !s.is_empty()) {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (index(a)?, index(b)?),
            None => {
                let i = index(item)?;
                (i, i)
            }
        };
        if first > last {
            return Err(bad("a range ends before it starts"));
        }
        out.push((first, last));
    }
    Ok(out)
}

/// The sorted, unique indices the ranges cover; `None` if more than [`MAX_SELECT_ONLY`]. The
/// ranges are merged and counted before anything is expanded, so a huge range is refused
/// without being walked, and overlaps across parameters count once.
fn expand_ranges(mut ranges: Vec<(u32, u32)>) -> Option<Vec<u32>> {
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (first, last) in ranges {
        match merged.last_mut() {
            Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
            _ => merged.push((first, last)),
        }
    }
    let count: usize = merged.iter().map(|(a, b)| (b - a) as usize + 1).sum();
    if count > MAX_SELECT_ONLY {
        return None;
    }
    Some(merged.into_iter().flat_map(|(a, b)| a..=b).collect())
}

/// Sorted indices → `0,2,4-6`.
fn format_ranges(indices: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = indices.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == end.checked_add(1).as_ref() {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests;
