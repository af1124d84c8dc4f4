//! [`Dict`]: a bencode dictionary kept as a sorted vector.
//!
//! Why not a `BTreeMap`: a one-entry `BTreeMap` allocates a whole node (~600 bytes), so a
//! hostile list of tiny dictionaries (`d0:0:e`, 6 bytes each) would cost 100× its size in
//! memory. A vector shrunk to fit costs one entry per entry. Lookups are binary searches; the
//! decoder appends keys in increasing order, so building one is linear.

use super::Value;

/// A dictionary with byte-string keys, always sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dict {
    entries: Vec<(Vec<u8>, Value)>,
}

impl Dict {
    pub fn new() -> Self {
        Dict::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: Value) -> Option<Value> {
        let key = key.into();
        match self.entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|slot| std::mem::replace(&mut slot.1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let i = self
            .entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
            .ok()?;
        Some(self.entries.remove(i).1)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().map(|(k, _)| k.as_slice())
    }

    /// Appends an entry whose key is greater than every key so far (the decoder's fast path;
    /// the caller has already checked the order).
    pub(super) fn push_sorted(&mut self, key: Vec<u8>, value: Value) {
        debug_assert!(!matches!(self.entries.last(), Some((k, _)) if *k >= key));
        self.entries.push((key, value));
    }

    pub(super) fn last_key(&self) -> Option<&[u8]> {
        self.entries.last().map(|(k, _)| k.as_slice())
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }
}

impl<K: Into<Vec<u8>>> FromIterator<(K, Value)> for Dict {
    /// Later duplicates replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut d = Dict::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

impl IntoIterator for Dict {
    type Item = (Vec<u8>, Value);
    type IntoIter = std::vec::IntoIter<(Vec<u8>, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}
