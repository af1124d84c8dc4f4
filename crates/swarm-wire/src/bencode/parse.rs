//! The bounded recursive-descent decoder behind [`super::decode`].
//!
//! Every read goes through `peek`/`slice`, which return `None` past the end instead of
//! panicking; nothing is allocated before the bytes it will hold have been seen in the input.

use super::{printable, BencodeError, Dict, Limits, SpannedDict, Value, HARD_MAX_DEPTH};

pub(super) struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    max_items: usize,
    max_depth: usize,
}

type Result<T> = std::result::Result<T, BencodeError>;

impl<'a> Parser<'a> {
    pub(super) fn new(input: &'a [u8], limits: Limits) -> Result<Self> {
        if input.len() > limits.max_size {
            return Err(BencodeError::TooLarge {
                size: input.len(),
                limit: limits.max_size,
            });
        }
        if input.is_empty() {
            return Err(BencodeError::Empty);
        }
        Ok(Parser {
            input,
            pos: 0,
            items: 0,
            max_items: limits.max_items,
            max_depth: limits.max_depth.min(HARD_MAX_DEPTH),
        })
    }

    pub(super) fn whole_value(mut self) -> Result<Value> {
        let value = self.value(0)?;
        self.finish()?;
        Ok(value)
    }

    pub(super) fn whole_dict_with_spans(mut self) -> Result<SpannedDict> {
        let found = match self.peek() {
            Some(b'd') => None,
            Some(b'i') => Some("integer"),
            Some(b'l') => Some("list"),
            Some(b'0'..=b'9') => Some("string"),
            Some(other) => {
                return Err(BencodeError::Unexpected {
                    offset: 0,
                    found: other as char,
                    expected: "a dictionary ('d')",
                })
            }
            None => return Err(BencodeError::Empty),
        };
        if let Some(found) = found {
            return Err(BencodeError::NotADict { found });
        }
        let mut spans = Vec::new();
        let dict = self.dict(0, |key, range| spans.push((key.to_vec(), range)))?;
        self.finish()?;
        Ok(SpannedDict { dict, spans })
    }

    fn finish(&self) -> Result<()> {
        let rest = self.input.len().saturating_sub(self.pos);
        if rest > 0 {
            return Err(BencodeError::TrailingBytes {
                offset: self.pos,
                count: rest,
            });
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn count_item(&mut self, offset: usize) -> Result<()> {
        self.items += 1;
        if self.items > self.max_items {
            return Err(BencodeError::TooManyItems {
                offset,
                limit: self.max_items,
            });
        }
        Ok(())
    }

    /// `depth` = the number of containers around this value.
    fn value(&mut self, depth: usize) -> Result<Value> {
        let offset = self.pos;
        let Some(first) = self.peek() else {
            return Err(BencodeError::Truncated {
                offset,
                what: "a value",
            });
        };
        match first {
            b'i' => {
                self.count_item(offset)?;
                self.int().map(Value::Int)
            }
            b'0'..=b'9' => {
                self.count_item(offset)?;
                self.bytes().map(|b| Value::Bytes(b.to_vec()))
            }
            b'l' => self.list(depth).map(Value::List),
            b'd' => self.dict(depth, |_, _| {}).map(Value::Dict),
            other => Err(BencodeError::Unexpected {
                offset,
                found: other as char,
                expected: "a value ('i', 'l', 'd' or a digit)",
            }),
        }
    }

    fn enter(&mut self, depth: usize) -> Result<()> {
        let offset = self.pos;
        if depth >= self.max_depth {
            return Err(BencodeError::TooDeep {
                offset,
                limit: self.max_depth,
            });
        }
        self.count_item(offset)?;
        self.pos += 1; // the 'l' or 'd'
        Ok(())
    }

    fn list(&mut self, depth: usize) -> Result<Vec<Value>> {
        self.enter(depth)?;
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(BencodeError::Truncated {
                        offset: self.pos,
                        what: "a list",
                    })
                }
                Some(b'e') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
        // Growth doubled the capacity; give back the slack so memory stays proportional.
        items.shrink_to_fit();
        Ok(items)
    }

    /// Parses a dictionary; `on_span` sees each key with the byte range of its value.
    fn dict(
        &mut self,
        depth: usize,
        mut on_span: impl FnMut(&[u8], std::ops::Range<usize>),
    ) -> Result<Dict> {
        self.enter(depth)?;
        let mut dict = Dict::new();
        loop {
            let key_offset = self.pos;
            match self.peek() {
                None => {
                    return Err(BencodeError::Truncated {
                        offset: key_offset,
                        what: "a dictionary",
                    })
                }
                Some(b'e') => {
                    self.pos += 1;
                    break;
                }
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(BencodeError::KeyNotString { offset: key_offset }),
            }
            let key = self.bytes()?;
            if let Some(previous) = dict.last_key() {
                if key == previous {
                    return Err(BencodeError::DuplicateKey {
                        offset: key_offset,
                        key: printable(key),
                    });
                }
                if key < previous {
                    return Err(BencodeError::UnsortedKey {
                        offset: key_offset,
                        key: printable(key),
                        previous: printable(previous),
                    });
                }
            }
            let value_start = self.pos;
            if self.peek() == Some(b'e') {
                return Err(BencodeError::Unexpected {
                    offset: value_start,
                    found: 'e',
                    expected: "a value after the dictionary key",
                });
            }
            let value = self.value(depth + 1)?;
            on_span(key, value_start..self.pos);
            dict.push_sorted(key.to_vec(), value);
        }
        dict.shrink_to_fit();
        Ok(dict)
    }

    /// Reads a run of ASCII digits and returns them.
    fn digits(&mut self) -> &'a [u8] {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.input.get(start..self.pos).unwrap_or_default()
    }

    fn int(&mut self) -> Result<i64> {
        let offset = self.pos;
        self.pos += 1; // the 'i'
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits = self.digits();
        match self.peek() {
            Some(b'e') => self.pos += 1,
            None => {
                return Err(BencodeError::Truncated {
                    offset: self.pos,
                    what: "an integer",
                })
            }
            Some(other) => {
                return Err(BencodeError::Unexpected {
                    offset: self.pos,
                    found: other as char,
                    expected: "a digit or 'e' in an integer",
                })
            }
        }
        let bad = |reason| BencodeError::BadInteger { offset, reason };
        match digits {
            [] => return Err(bad("no digits")),
            [b'0'] if negative => return Err(bad("negative zero (-0)")),
            [b'0', _, ..] => return Err(bad("leading zero")),
            _ => {}
        }
        // Accumulate downwards so that i64::MIN, whose magnitude has no positive i64, parses.
        let mut acc: i64 = 0;
        for &d in digits {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_sub(i64::from(d - b'0')))
                .ok_or_else(|| bad("does not fit in 64 bits"))?;
        }
        if negative {
            Ok(acc)
        } else {
            acc.checked_neg()
                .ok_or_else(|| bad("does not fit in 64 bits"))
        }
    }

    /// A byte string: `<length>:<bytes>`. Returns a slice of the input; copies nothing.
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let offset = self.pos;
        let digits = self.digits();
        match self.peek() {
            Some(b':') => self.pos += 1,
            None => {
                return Err(BencodeError::Truncated {
                    offset: self.pos,
                    what: "a string length",
                })
            }
            Some(other) => {
                return Err(BencodeError::Unexpected {
                    offset: self.pos,
                    found: other as char,
                    expected: "a digit or ':' in a string length",
                })
            }
        }
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(BencodeError::BadLength {
                offset,
                reason: "leading zero",
            });
        }
        let mut declared: u64 = 0;
        for &d in digits {
            declared = declared
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(BencodeError::BadLength {
                    offset,
                    reason: "does not fit in 64 bits",
                })?;
        }
        let available = self.input.len().saturating_sub(self.pos);
        // Checked against what is really there before anything is sliced or allocated.
        let len = usize::try_from(declared)
            .ok()
            .filter(|&n| n <= available)
            .ok_or(BencodeError::TruncatedString {
                offset,
                declared,
                available,
            })?;
        let end = self.pos + len;
        let out = self
            .input
            .get(self.pos..end)
            .ok_or(BencodeError::TruncatedString {
                offset,
                declared,
                available,
            })?;
        self.pos = end;
        Ok(out)
    }
}
