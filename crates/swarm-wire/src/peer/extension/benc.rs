//! The bencode the extension messages need, bounded: reading through `bendy` with a small depth
//! cap, writing by hand (our own dictionaries are flat and their keys are written in sorted
//! order, which the round-trip tests check by decoding with `bendy`, whose decoder rejects
//! unsorted keys).
//!
//! `bendy` never allocates from a length it reads (a string is a slice of the input), so the
//! only allocations are the ones the callers make, each of which is capped there.

use bendy::decoding::{Decoder, DictDecoder, Object};
use bytes::{BufMut, BytesMut};

use crate::peer::WireError;

/// Deepest nesting accepted in an extension message. Ours are two deep (`m` in the handshake);
/// unknown keys from other clients get some room.
pub const MAX_DEPTH: usize = 8;

pub(super) fn error(what: &str, detail: impl std::fmt::Display) -> WireError {
    WireError::BadExtension(format!("{what}: {detail}"))
}

pub(super) fn decoder(payload: &[u8]) -> Decoder<'_> {
    Decoder::new(payload).with_max_depth(MAX_DEPTH)
}

/// The dictionary at the start of the payload.
pub(super) fn top_dict<'obj, 'ser>(
    dec: &'obj mut Decoder<'ser>,
    what: &str,
) -> Result<DictDecoder<'obj, 'ser>, WireError> {
    match dec.next_object().map_err(|e| error(what, e))? {
        Some(Object::Dict(dict)) => Ok(dict),
        Some(_) => Err(error(what, "not a dictionary")),
        None => Err(error(what, "empty")),
    }
}

/// Finishes `dict` (checking the rest of its structure) and returns how many bytes it took.
pub(super) fn dict_len(dict: DictDecoder<'_, '_>, what: &str) -> Result<usize, WireError> {
    dict.into_raw().map(<[u8]>::len).map_err(|e| error(what, e))
}

/// A non-negative integer that fits in a `u64`; `None` for anything else.
pub(super) fn uint(obj: Object<'_, '_>) -> Option<u64> {
    match obj {
        Object::Integer(digits) => digits.parse().ok(),
        _ => None,
    }
}

pub(super) fn bytes<'ser>(obj: Object<'_, 'ser>) -> Option<&'ser [u8]> {
    match obj {
        Object::Bytes(b) => Some(b),
        _ => None,
    }
}

pub(super) fn put_uint(dst: &mut BytesMut, v: u64) {
    dst.put_u8(b'i');
    dst.put_slice(v.to_string().as_bytes());
    dst.put_u8(b'e');
}

pub(super) fn put_bytes(dst: &mut BytesMut, b: &[u8]) {
    dst.put_slice(b.len().to_string().as_bytes());
    dst.put_u8(b':');
    dst.put_slice(b);
}

/// `key` then an integer value.
pub(super) fn put_uint_pair(dst: &mut BytesMut, key: &[u8], v: u64) {
    put_bytes(dst, key);
    put_uint(dst, v);
}

/// `key` then a string value.
pub(super) fn put_bytes_pair(dst: &mut BytesMut, key: &[u8], v: &[u8]) {
    put_bytes(dst, key);
    put_bytes(dst, v);
}
