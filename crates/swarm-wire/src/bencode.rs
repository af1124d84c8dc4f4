//! Bencode: a small owned [`Value`] model, a strict bounded decoder and an encoder on `bendy`.
//!
//! Why our own decoder: `bendy` decodes lazily and can hand back the raw bytes of a whole
//! dictionary, but its errors do not say *what* is wrong where (a duplicate key and an unsorted
//! key are the same error, a truncated string is "EOF"), it does not report trailing bytes, and it
//! has no total-size or item budget. Validation messages are a requirement here (a user is told
//! why a `.torrent` is refused), so decoding is a ~250-line recursive-descent parser with hard
//! limits, and `bendy` does the encoding ([`encode`]); the property tests also use `bendy`'s
//! decoder as an independent oracle for what is valid bencode.
//!
//! What "strict" means here, and why each rule exists:
//! - integers: no leading zeros, no `-0`, no empty `ie`, must fit in an `i64`. A non-canonical
//!   form would let two different byte strings carry the same value, which breaks hashing.
//! - string lengths: same digit rules; a declared length larger than what is left of the input is
//!   an error *before* anything is allocated, so a `4294967295:` prefix costs nothing.
//! - dictionaries: keys are byte strings, strictly increasing (sorted and unique). Real-world
//!   `.torrent` files are sorted; accepting unsorted keys would make re-encoding change bytes.
//! - the whole input is one value: trailing bytes are an error.
//!
//! Bounds: input size, nesting depth (the parser recurses once per container, so this bounds the
//! stack) and the number of values (bounds the memory of the tree: every value costs at least two
//! input bytes and at most a few dozen bytes of memory, so the tree is linear in the input).

use std::ops::Range;

mod dict;
mod parse;

pub use dict::Dict;

/// The depth no caller can raise: each level is one stack frame of the recursive parser.
pub const HARD_MAX_DEPTH: usize = 256;

/// Resource limits for one decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of nested lists/dicts (clamped to [`HARD_MAX_DEPTH`]).
    pub max_depth: usize,
    /// Maximum input size in bytes.
    pub max_size: usize,
    /// Maximum number of values (integers, strings, lists, dicts; keys not counted).
    pub max_items: usize,
}

impl Limits {
    /// For `.torrent` files. A real torrent nests 5 levels deep (root, info, files, file, path);
    /// 64 MiB holds the `pieces` of a multi-terabyte torrent; 3 million values matches what
    /// libtorrent accepts by default and allows well over 300 000 files.
    pub const TORRENT: Limits = Limits {
        max_depth: 32,
        max_size: 64 << 20,
        max_items: 3_000_000,
    };

    /// For small protocol messages (extension handshakes, KRPC, tracker replies).
    pub const MESSAGE: Limits = Limits {
        max_depth: 16,
        max_size: 1 << 20,
        max_items: 100_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::TORRENT
    }
}

/// A decoded bencode value. Owned, so it can outlive the input buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}

impl Value {
    /// A byte-string value from text.
    pub fn string(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    /// The name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Bytes(_) => "string",
            Value::List(_) => "list",
            Value::Dict(_) => "dictionary",
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The string, when it is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Shorthand for `self.as_dict()?.get(key)`.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key))
    }

    /// Nesting depth: 0 for a scalar, 1 for a flat list or dict.
    pub fn depth(&self) -> usize {
        match self {
            Value::Int(_) | Value::Bytes(_) => 0,
            Value::List(l) => 1 + l.iter().map(Value::depth).max().unwrap_or(0),
            Value::Dict(d) => 1 + d.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
        }
    }
}

/// Why some bytes are not acceptable bencode. Offsets are byte offsets into the input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BencodeError {
    #[error("input is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("nesting deeper than {limit} levels at offset {offset}")]
    TooDeep { offset: usize, limit: usize },
    #[error("more than {limit} values (at offset {offset})")]
    TooManyItems { offset: usize, limit: usize },
    #[error("input ends at offset {offset} in the middle of {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error(
        "truncated string at offset {offset}: its length prefix says {declared} bytes \
         but only {available} remain"
    )]
    TruncatedString {
        offset: usize,
        declared: u64,
        available: usize,
    },
    #[error("invalid integer at offset {offset}: {reason}")]
    BadInteger { offset: usize, reason: &'static str },
    #[error("invalid string length at offset {offset}: {reason}")]
    BadLength { offset: usize, reason: &'static str },
    #[error("unexpected byte {found:?} at offset {offset}: expected {expected}")]
    Unexpected {
        offset: usize,
        found: char,
        expected: &'static str,
    },
    #[error("dictionary key at offset {offset} is not a string")]
    KeyNotString { offset: usize },
    #[error("duplicate dictionary key {key:?} at offset {offset}")]
    DuplicateKey { offset: usize, key: String },
    #[error("dictionary keys out of order at offset {offset}: {key:?} comes after {previous:?}")]
    UnsortedKey {
        offset: usize,
        key: String,
        previous: String,
    },
    #[error("trailing garbage: {count} bytes after the end of the value, at offset {offset}")]
    TrailingBytes { offset: usize, count: usize },
    #[error("empty input")]
    Empty,
    #[error("expected a dictionary at the top level, found a {found}")]
    NotADict { found: &'static str },
}

/// A top-level dictionary with, for each key, where its value sits in the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpannedDict {
    pub dict: Dict,
    /// `(key, byte range of the value)`, in key order.
    pub spans: Vec<(Vec<u8>, Range<usize>)>,
}

impl SpannedDict {
    /// The byte range of the value under `key`, exactly as it appears in the input.
    pub fn span(&self, key: &[u8]) -> Option<Range<usize>> {
        self.spans
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .and_then(|i| self.spans.get(i))
            .map(|(_, r)| r.clone())
    }

    /// The raw bytes of the value under `key` in `input` (the same input that was decoded).
    pub fn raw<'a>(&self, input: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        self.span(key).and_then(|r| input.get(r))
    }
}

/// Decodes exactly one value from `input` (trailing bytes are an error).
pub fn decode(input: &[u8], limits: Limits) -> Result<Value, BencodeError> {
    parse::Parser::new(input, limits)?.whole_value()
}

/// Decodes a top-level dictionary and records the byte span of every value, so that a caller
/// can hash a nested value (`info`) exactly as it appeared.
pub fn decode_dict_with_spans(input: &[u8], limits: Limits) -> Result<SpannedDict, BencodeError> {
    parse::Parser::new(input, limits)?.whole_dict_with_spans()
}

/// Encodes a value in canonical form (sorted keys, shortest integers), through `bendy`.
///
/// For any `bytes` that [`decode`] accepts, `encode(&decode(bytes)?) == bytes`: the decoder only
/// accepts the canonical form, so there is exactly one encoding per value.
pub fn encode(value: &Value) -> Vec<u8> {
    use bendy::encoding::Encoder;
    // The depth bound is the value's own depth: a tree built in code (or decoded under limits)
    // is finite, so the encoder's depth check can never fire. Dict keys are sorted and unique
    // by construction (`Dict` keeps that invariant), so the sorted-dict check cannot fire either.
    let mut encoder = Encoder::new().with_max_depth(value.depth() + 2);
    let result = encoder.emit(value).and_then(|()| encoder.get_output());
    match result {
        Ok(bytes) => bytes,
        // Unreachable by the invariants above; a panic here would be a bug in `Dict` or bendy.
        Err(e) => panic!("bendy refused a well-formed value: {e}"),
    }
}

impl bendy::encoding::ToBencode for Value {
    // Only used by bendy's `to_bencode()` convenience; `encode` sets the real bound per value.
    const MAX_DEPTH: usize = HARD_MAX_DEPTH;

    fn encode(
        &self,
        encoder: bendy::encoding::SingleItemEncoder,
    ) -> Result<(), bendy::encoding::Error> {
        match self {
            Value::Int(i) => encoder.emit_int(*i),
            Value::Bytes(b) => encoder.emit_bytes(b),
            Value::List(items) => encoder.emit_list(|e| {
                for item in items {
                    e.emit(item)?;
                }
                Ok(())
            }),
            Value::Dict(dict) => encoder.emit_dict(|mut e| {
                for (k, v) in dict.iter() {
                    e.emit_pair(k, v)?;
                }
                Ok(())
            }),
        }
    }
}

/// A short printable form of a key for error messages (lossy, cut at 64 bytes).
pub(crate) fn printable(bytes: &[u8]) -> String {
    let cut = bytes.get(..64).unwrap_or(bytes);
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < bytes.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
pub(crate) mod tests;
