//! Bencode: the strict decoder under limits, and the canonical encoder.
//!
//! Invariants: a decode that succeeds obeys its limits (depth, item count); the decoder accepts
//! only canonical bencode, so encoding what it returned gives back the input byte for byte and
//! decoding that gives the same value; the spans `decode_dict_with_spans` reports cut out exactly
//! the bytes that decode to each value.

use swarm_wire::bencode::{self, Limits, Value};

/// A tight limit, so that inputs the fuzzer can reach hit the depth and item caps.
const SMALL: Limits = Limits {
    max_depth: 4,
    max_size: 1 << 16,
    max_items: 64,
};

fn items(v: &Value) -> usize {
    1 + match v {
        Value::List(l) => l.iter().map(items).sum(),
        Value::Dict(d) => d.iter().map(|(_, v)| items(v)).sum(),
        _ => 0,
    }
}

fn check(data: &[u8], limits: Limits) {
    let Ok(value) = bencode::decode(data, limits) else {
        return;
    };
    assert!(value.depth() <= limits.max_depth, "depth over the limit");
    assert!(items(&value) <= limits.max_items, "items over the limit");
    let encoded = bencode::encode(&value);
    assert_eq!(encoded, data, "decode accepted a non-canonical encoding");
    assert_eq!(bencode::decode(&encoded, limits).as_ref(), Ok(&value));
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn bencode(data: &[u8]) {
    check(data, Limits::MESSAGE);
    check(data, SMALL);
    if let Ok(spanned) = bencode::decode_dict_with_spans(data, Limits::MESSAGE) {
        for (key, value) in spanned.dict.iter() {
            let raw = spanned.raw(data, key).expect("every key has a span");
            assert_eq!(bencode::decode(raw, Limits::MESSAGE).as_ref(), Ok(value));
        }
        assert_eq!(spanned.spans.len(), spanned.dict.len());
    }
}
