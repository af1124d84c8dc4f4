//! The 20-byte v1 info-hash (SHA-1 of the bencoded `info` dictionary).
//!
//! Inside swarmd an info-hash is always this type; it is hex only where it is text: JSON (the
//! control protocol, the HTTP RPC, events) and file names. Serde writes it as 40 lowercase hex
//! digits and reads it with [`InfoHash::from_str`], so a bad one is refused once, at the edge,
//! with an error that shows it.

use std::fmt;
use std::str::FromStr;

/// A v1 info-hash. Displayed as 40 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// SHA-1 of `bytes` (the raw bencoded info dictionary).
    pub fn of(bytes: &[u8]) -> Self {
        InfoHash(sha1_smol::Sha1::from(bytes).digest().bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 0xf)] as char);
        }
        s
    }

    /// Parses 40 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, chunk) in bytes.chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16)?;
            let lo = (chunk[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(InfoHash(out))
    }
}

/// Text that is not an info-hash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an info-hash: expected 40 hex digits")]
pub struct InfoHashError(pub String);

impl FromStr for InfoHash {
    type Err = InfoHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InfoHash::from_hex(s).ok_or_else(|| {
            // Bounded: the text may be anything a client sent.
            let shown: String = s.chars().take(64).collect();
            InfoHashError(shown)
        })
    }
}

impl serde::Serialize for InfoHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for InfoHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash::of(b"d4:name1:ae");
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }

    #[test]
    fn json_is_lowercase_hex_and_a_bad_one_is_named() {
        let h = InfoHash::of(b"d4:name1:ae");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(serde_json::from_str::<InfoHash>(&json).unwrap(), h);
        let upper = format!("\"{}\"", h.to_hex().to_uppercase());
        assert_eq!(serde_json::from_str::<InfoHash>(&upper).unwrap(), h);
        let err = serde_json::from_str::<InfoHash>("\"abc\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"abc\" is not an info-hash: expected 40 hex digits"),
            "{err}"
        );
    }
}
