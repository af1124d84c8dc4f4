use super::*;
use proptest::prelude::*;

fn dec(input: &[u8]) -> Result<Value, BencodeError> {
    decode(input, Limits::TORRENT)
}

fn err(input: &[u8]) -> String {
    match dec(input) {
        Ok(v) => panic!("{:?} decoded to {v:?}", String::from_utf8_lossy(input)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn decodes_the_basics() {
    assert_eq!(dec(b"i42e"), Ok(Value::Int(42)));
    assert_eq!(dec(b"i-7e"), Ok(Value::Int(-7)));
    assert_eq!(dec(b"i0e"), Ok(Value::Int(0)));
    assert_eq!(dec(b"i-9223372036854775808e"), Ok(Value::Int(i64::MIN)));
    assert_eq!(dec(b"i9223372036854775807e"), Ok(Value::Int(i64::MAX)));
    assert_eq!(dec(b"4:spam"), Ok(Value::string("spam")));
    assert_eq!(dec(b"0:"), Ok(Value::Bytes(vec![])));
    assert_eq!(
        dec(b"l4:spami3ee"),
        Ok(Value::List(vec![Value::string("spam"), Value::Int(3)]))
    );
    let d = dec(b"d3:bar4:spam3:fooi42ee").unwrap();
    assert_eq!(d.get(b"foo"), Some(&Value::Int(42)));
    assert_eq!(d.get(b"bar").and_then(Value::as_str), Some("spam"));
    assert_eq!(d.get(b"baz"), None);
}

#[test]
fn rejects_non_canonical_and_broken_input_with_clear_messages() {
    assert!(err(b"i03e").contains("leading zero"));
    assert!(err(b"i-0e").contains("negative zero"));
    assert!(err(b"ie").contains("no digits"));
    assert!(err(b"i-e").contains("no digits"));
    assert!(err(b"i9223372036854775808e").contains("64 bits"));
    assert!(err(b"i1x").contains("expected a digit or 'e'"));
    assert!(err(b"i12").contains("in the middle of an integer"));
    assert!(err(b"03:abc").contains("leading zero"));
    assert!(err(b"5:abc").contains("truncated string"));
    assert!(err(b"5:abc").contains("says 5 bytes but only 3 remain"));
    assert!(err(b"99999999999999999999999:a").contains("64 bits"));
    assert!(err(b"18446744073709551615:a").contains("truncated string"));
    assert!(err(b"d3:fooi1e3:fooi2ee").contains("duplicate dictionary key \"foo\""));
    assert!(err(b"d3:fooi1e3:bari2ee").contains("out of order"));
    assert!(err(b"di1ei2ee").contains("not a string"));
    assert!(err(b"d3:fooe").contains("a value after the dictionary key"));
    assert!(err(b"l").contains("in the middle of a list"));
    assert!(err(b"d3:foo").contains("in the middle of a value"));
    assert!(err(b"i1ei2e").contains("trailing garbage: 3 bytes"));
    assert!(err(b"le ").contains("trailing garbage"));
    assert!(err(b"x").contains("unexpected byte 'x'"));
    assert!(err(b"").contains("empty"));
}

#[test]
fn limits_are_enforced() {
    let deep = [vec![b'l'; 100], vec![b'e'; 100]].concat();
    let e = decode(&deep, Limits::TORRENT).unwrap_err();
    assert!(matches!(e, BencodeError::TooDeep { limit: 32, .. }), "{e}");
    // Deep beyond the hard cap: still an error, not a stack overflow.
    let very_deep = vec![b'l'; 1_000_000];
    let lim = Limits {
        max_depth: usize::MAX,
        ..Limits::TORRENT
    };
    assert!(matches!(
        decode(&very_deep, lim),
        Err(BencodeError::TooDeep {
            limit: HARD_MAX_DEPTH,
            ..
        })
    ));
    let exactly = [vec![b'l'; 32], vec![b'e'; 32]].concat();
    assert!(decode(&exactly, Limits::TORRENT).is_ok());

    let small = Limits {
        max_size: 4,
        ..Limits::TORRENT
    };
    assert!(matches!(
        decode(b"4:spam", small),
        Err(BencodeError::TooLarge { size: 6, limit: 4 })
    ));
    let few = Limits {
        max_items: 3,
        ..Limits::TORRENT
    };
    assert!(decode(b"li1ei2ee", few).is_ok());
    assert!(matches!(
        decode(b"li1ei2ei3ee", few),
        Err(BencodeError::TooManyItems { limit: 3, .. })
    ));
}

#[test]
fn spans_point_at_the_raw_value() {
    let input = b"d8:announce3:url4:infod4:name1:ae5:otheri1ee";
    let top = decode_dict_with_spans(input, Limits::TORRENT).unwrap();
    assert_eq!(top.raw(input, b"info"), Some(&b"d4:name1:ae"[..]));
    assert_eq!(top.raw(input, b"announce"), Some(&b"3:url"[..]));
    assert_eq!(top.raw(input, b"other"), Some(&b"i1e"[..]));
    assert_eq!(top.raw(input, b"missing"), None);
    assert_eq!(top.dict.len(), 3);
    assert!(matches!(
        decode_dict_with_spans(b"li1ee", Limits::TORRENT),
        Err(BencodeError::NotADict { found: "list" })
    ));
    assert!(matches!(
        decode_dict_with_spans(b"de1:x", Limits::TORRENT),
        Err(BencodeError::TrailingBytes {
            offset: 2,
            count: 3
        })
    ));
}

#[test]
fn encode_is_canonical() {
    let mut d = Dict::new();
    d.insert("zeta", Value::Int(-1));
    d.insert(
        "alpha",
        Value::List(vec![Value::string("x"), Value::Int(0)]),
    );
    let bytes = encode(&Value::Dict(d));
    assert_eq!(bytes, b"d5:alphal1:xi0ee4:zetai-1ee");
    // Depth well past the decoder limits still encodes (values built in code).
    let mut v = Value::Int(1);
    for _ in 0..200 {
        v = Value::List(vec![v]);
    }
    assert_eq!(encode(&v).len(), 200 * 2 + 3);
    // A decoded value at the hard depth limit, dicts and lists mixed, re-encodes exactly.
    let mut deep = b"i7e".to_vec();
    for level in 0..HARD_MAX_DEPTH {
        deep = if level % 2 == 0 {
            [&b"d1:k"[..], &deep, b"e"].concat()
        } else {
            [&b"l"[..], &deep, b"e"].concat()
        };
    }
    let lim = Limits {
        max_depth: HARD_MAX_DEPTH,
        ..Limits::TORRENT
    };
    assert_eq!(encode(&decode(&deep, lim).unwrap()), deep);
}

/// bendy's decoder as an independent opinion on what is valid bencode. Returns `None` when
/// bendy refuses the input (or it holds more than one value).
fn bendy_decode(input: &[u8]) -> Option<Value> {
    use bendy::decoding::{Decoder, Object};
    fn convert(obj: Object) -> Option<Value> {
        Some(match obj {
            Object::Integer(s) => Value::Int(s.parse().ok()?),
            Object::Bytes(b) => Value::Bytes(b.to_vec()),
            Object::List(mut l) => {
                let mut out = Vec::new();
                while let Some(item) = l.next_object().ok()? {
                    out.push(convert(item)?);
                }
                Value::List(out)
            }
            Object::Dict(mut d) => {
                let mut out = Dict::new();
                while let Some((k, v)) = d.next_pair().ok()? {
                    out.insert(k, convert(v)?);
                }
                Value::Dict(out)
            }
        })
    }
    let mut decoder = Decoder::new(input).with_max_depth(HARD_MAX_DEPTH);
    let value = convert(decoder.next_object().ok()??)?;
    let rest = decoder.next_object();
    let at_end = matches!(rest, Ok(None));
    drop(rest);
    Some(value).filter(|_| at_end)
}

pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..12),
                inner,
                0..8
            )
            .prop_map(|m| Value::Dict(m.into_iter().collect())),
        ]
    })
}

/// Small edits that keep the input looking like bencode, so the decoder is pushed past the
/// first byte: flips, inserted structural bytes, deletions, truncations.
pub(crate) fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"ilde0123456789:-";
    for &(at, kind, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        let pick = INTERESTING
            .get(usize::from(byte) % INTERESTING.len())
            .copied()
            .unwrap_or(byte);
        match kind % 5 {
            0 => bytes[at] = byte,
            1 => bytes[at] = pick,
            2 => bytes.insert(at, pick),
            3 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
    bytes
}

proptest! {
    #![proptest_config(crate::proptest_config())]

    #[test]
    fn proptest_round_trip(v in arb_value()) {
        let bytes = encode(&v);
        prop_assert_eq!(dec(&bytes), Ok(v.clone()));
        prop_assert_eq!(bendy_decode(&bytes), Some(v));
    }

    #[test]
    fn proptest_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(v) = dec(&bytes) {
            // Only canonical input is accepted, so re-encoding gives back the same bytes.
            prop_assert_eq!(encode(&v), bytes);
        }
    }

    #[test]
    fn proptest_mutations_agree_with_bendy(
        v in arb_value(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let bytes = mutate(encode(&v), &edits);
        match dec(&bytes) {
            Ok(ours) => {
                prop_assert_eq!(&encode(&ours), &bytes);
                prop_assert_eq!(bendy_decode(&bytes), Some(ours));
            }
            Err(BencodeError::BadInteger { reason: "does not fit in 64 bits", .. }) => {}
            Err(_) => prop_assert_eq!(bendy_decode(&bytes), None),
        }
        let _ = decode_dict_with_spans(&bytes, Limits::MESSAGE);
    }
}
