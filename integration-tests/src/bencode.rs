//! A tiny, self-contained bencode reader and writer.
//!
//! Deliberately independent of `swarm-wire`: the tests verify swarmd's output with code that does
//! not share swarmd's parser, so a bug there cannot hide itself. It is strict enough for trusted
//! input (torrents we made, tracker replies) and keeps the raw byte span of every top-level
//! dictionary value, which is what the info-hash is computed over.

use std::collections::BTreeMap;
use std::ops::Range;

/// A decoded value. Dictionary keys are raw bytes, kept sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

impl Value {
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

    /// The byte string as UTF-8, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// `self[key]` for a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.get(key.as_bytes())
    }

    /// Encodes this value (canonical: dictionary keys sorted).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(self, &mut out);
        out
    }
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
        Value::Bytes(b) => {
            out.extend_from_slice(format!("{}:", b.len()).as_bytes());
            out.extend_from_slice(b);
        }
        Value::List(l) => {
            out.push(b'l');
            for x in l {
                encode_into(x, out);
            }
            out.push(b'e');
        }
        Value::Dict(d) => {
            out.push(b'd');
            for (k, x) in d {
                encode_into(&Value::Bytes(k.clone()), out);
                encode_into(x, out);
            }
            out.push(b'e');
        }
    }
}

/// Shorthand for a byte-string value.
pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
    Value::Bytes(b.into())
}

const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("bencode: {what} at byte {}", self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn int_until(&mut self, end: u8) -> Result<i64, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != end) {
            self.pos += 1;
        }
        if self.peek() != Some(end) {
            return self.err("unterminated integer");
        }
        let txt = std::str::from_utf8(&self.buf[start..self.pos])
            .map_err(|_| "bencode: non-ASCII integer")?;
        self.pos += 1;
        if txt.is_empty()
            || txt == "-0"
            || (txt.len() > 1 && (txt.starts_with('0') || txt.starts_with("-0")))
        {
            return Err(format!("bencode: non-canonical integer {txt:?}"));
        }
        txt.parse::<i64>()
            .map_err(|_| format!("bencode: bad integer {txt:?}"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        match self.peek() {
            Some(b'i') => {
                self.pos += 1;
                Ok(Value::Int(self.int_until(b'e')?))
            }
            Some(b'l') => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek() != Some(b'e') {
                    if self.peek().is_none() {
                        return self.err("unterminated list");
                    }
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            Some(b'd') => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek() != Some(b'e') {
                    if self.peek().is_none() {
                        return self.err("unterminated dictionary");
                    }
                    let key = self.string()?;
                    let v = self.value(depth + 1)?;
                    map.insert(key, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            Some(b'0'..=b'9') => Ok(Value::Bytes(self.string()?)),
            Some(_) => self.err("unexpected byte"),
            None => self.err("unexpected end"),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return self.err("expected a byte string");
        }
        let len = self.int_until(b':')?;
        let len = usize::try_from(len).map_err(|_| "bencode: negative length".to_string())?;
        if self.buf.len() - self.pos < len {
            return self.err("byte string runs past the end");
        }
        let s = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(s)
    }
}

/// Decodes exactly one value spanning all of `buf`.
pub fn decode(buf: &[u8]) -> Result<Value, String> {
    let mut p = Parser { buf, pos: 0 };
    let v = p.value(0)?;
    if p.pos != buf.len() {
        return p.err("trailing bytes");
    }
    Ok(v)
}

/// Byte ranges of a dictionary's raw values, by key.
pub type Spans = BTreeMap<Vec<u8>, Range<usize>>;

/// Decodes a top-level dictionary and also returns, for each key, the byte range of its raw
/// value inside `buf` (e.g. `info`, whose raw bytes are what the info-hash covers).
pub fn decode_dict_with_spans(buf: &[u8]) -> Result<(Value, Spans), String> {
    let mut p = Parser { buf, pos: 0 };
    if p.peek() != Some(b'd') {
        return p.err("expected a dictionary");
    }
    p.pos += 1;
    let mut map = BTreeMap::new();
    let mut spans = BTreeMap::new();
    while p.peek() != Some(b'e') {
        if p.peek().is_none() {
            return p.err("unterminated dictionary");
        }
        let key = p.string()?;
        let start = p.pos;
        let v = p.value(1)?;
        spans.insert(key.clone(), start..p.pos);
        map.insert(key, v);
    }
    p.pos += 1;
    if p.pos != buf.len() {
        return p.err("trailing bytes");
    }
    Ok((Value::Dict(map), spans))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_spans() {
        let raw = b"d8:announce3:url4:infod6:lengthi5e4:name1:ae1:xli-3e0:ee";
        let (v, spans) = decode_dict_with_spans(raw).unwrap();
        assert_eq!(
            &raw[spans[&b"info".to_vec()].clone()],
            b"d6:lengthi5e4:name1:ae"
        );
        assert_eq!(v.get("announce").unwrap().as_str(), Some("url"));
        assert_eq!(
            v.get("info").unwrap().get("length").unwrap().as_int(),
            Some(5)
        );
        assert_eq!(v.encode(), raw);
        assert_eq!(decode(raw).unwrap(), v);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            &b"i01e"[..],
            b"i-0e",
            b"ie",
            b"5:abc",
            b"l",
            b"d1:a",
            b"x",
            b"i1ei2e",
            b"d1:ai1e",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
