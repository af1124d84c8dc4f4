//! A fixed-size bitfield in BitTorrent's bit order (piece 0 is the high bit of byte 0).

use bytes::Bytes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    ones: u32,
}

impl Bitfield {
    pub fn new(len: u32) -> Self {
        Bitfield {
            bits: vec![0; len.div_ceil(8) as usize],
            len,
            ones: 0,
        }
    }

    pub fn full(len: u32) -> Self {
        let mut b = Bitfield::new(len);
        for i in 0..len {
            b.set(i);
        }
        b
    }

    /// Parses a peer's bitfield message. The byte length must match and the spare bits at the end
    /// must be zero (BEP 3); anything else is a protocol violation.
    pub fn from_wire(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != len.div_ceil(8) as usize {
            return None;
        }
        let spare = (8 - len % 8) % 8;
        if spare > 0 {
            let mask = (1u8 << spare) - 1;
            if bytes.last().is_some_and(|b| b & mask != 0) {
                return None;
            }
        }
        let ones = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Bitfield {
            bits: bytes.to_vec(),
            len,
            ones,
        })
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn count(&self) -> u32 {
        self.ones
    }

    pub fn is_complete(&self) -> bool {
        self.ones == self.len
    }

    pub fn get(&self, i: u32) -> bool {
        i < self.len && self.bits[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Sets bit `i`; returns true when it was not set before. Out of range is ignored.
    pub fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bits[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    pub fn clear(&mut self, i: u32) -> bool {
        if !self.get(i) {
            return false;
        }
        self.bits[(i / 8) as usize] &= !(0x80 >> (i % 8));
        self.ones -= 1;
        true
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(&self.bits)
    }

    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        // Spare bits past `len` are never set (`set` ignores them, `from_wire` refuses them).
        self.bits
            .iter()
            .enumerate()
            .flat_map(|(byte, &bits)| ones_in_byte(byte, bits))
    }
}

/// The indices of the bits set in `bits`, taken as byte `byte` of a bitfield in BitTorrent's
/// order, lowest index first: for walking the result of byte-wise operations on bitfields.
pub fn ones_in_byte(byte: usize, mut bits: u8) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let bit = bits.leading_zeros();
            bits &= !(0x80 >> bit);
            byte as u32 * 8 + bit
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ones_in_order_across_bytes() {
        let mut b = Bitfield::new(20);
        for i in [0, 7, 8, 13, 19] {
            b.set(i);
        }
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), [0, 7, 8, 13, 19]);
        assert_eq!(
            ones_in_byte(2, 0b1010_0001).collect::<Vec<_>>(),
            [16, 18, 23]
        );
        assert_eq!(ones_in_byte(5, 0).count(), 0);
    }

    #[test]
    fn set_get_count() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.count(), 2);
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert!(b.clear(0));
        assert_eq!(b.count(), 1);
    }

    #[test]
    fn wire_checks_length_and_spare_bits() {
        assert!(Bitfield::from_wire(&[0xff, 0xc0], 10).is_some());
        assert!(Bitfield::from_wire(&[0xff, 0xe0], 10).is_none());
        assert!(Bitfield::from_wire(&[0xff], 10).is_none());
        assert_eq!(Bitfield::from_wire(&[0xff, 0xc0], 10).unwrap().count(), 10);
    }
}
