//! The primitives of MSE: the Diffie-Hellman exchange over the spec's 768-bit prime, the
//! SHA-1 derivations, and the RC4 stream with its first 1 KiB discarded. Pure.

use num_bigint::BigUint;

/// Bytes of a public key (Ya, Yb) and of the shared secret S: the prime's size, big-endian,
/// left-padded with zeros.
pub const KEY_LEN: usize = 96;

/// The spec's prime P (the 768-bit MODP group of RFC 2409, "Oakley group 1"); the generator is 2.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E\
7EC6F44C42E9A63A36210000000000090563";

fn prime() -> BigUint {
    // The constant above parses: checked by `the_prime_is_the_spec_one`.
    BigUint::parse_bytes(PRIME_HEX, 16).unwrap_or_default()
}

/// Our half of the key exchange: a 160-bit private key and the public key it makes.
pub struct KeyPair {
    private: BigUint,
    pub public: [u8; KEY_LEN],
}

impl KeyPair {
    /// From 20 random bytes (the spec's 160-bit private key).
    pub fn new(private: [u8; 20]) -> KeyPair {
        let private = BigUint::from_bytes_be(&private);
        let public = BigUint::from(2u32).modpow(&private, &prime());
        KeyPair {
            public: to_key_bytes(&public),
            private,
        }
    }

    /// S, from the other side's public key. `None` when that key is degenerate (0, 1, P-1 or not
    /// below P): its S would be predictable by anyone watching.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let p = prime();
        let y = BigUint::from_bytes_be(theirs);
        let one = BigUint::from(1u32);
        if y <= one || y >= &p - &one {
            return None;
        }
        Some(to_key_bytes(&y.modpow(&self.private, &p)))
    }
}

fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Every value here is below P, so it fits in KEY_LEN bytes.
    let skip = KEY_LEN.saturating_sub(bytes.len());
    let take = bytes.len().min(KEY_LEN);
    out[skip..].copy_from_slice(&bytes[bytes.len() - take..]);
    out
}

/// SHA-1 of the concatenation of `parts` (the spec's HASH).
pub fn hash(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = sha1_smol::Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.digest().bytes()
}

/// One direction of an RC4 stream, keyed with `HASH('keyA'|'keyB', S, SKEY)`, its first 1024
/// bytes of keystream discarded (they leak key bits).
///
/// RC4 is written here rather than taken from the `rc4` crate (which checks it in the tests):
/// the crate makes its keystream one byte at a time through the `cipher` crate's generic block
/// path, ~450 MB/s on the benchmark machine, and that was nearly all of what MSE cost a
/// download (docs/benchmarks.md). [`Cipher::apply`] makes eight bytes of keystream per round
/// and XORs them into the data as one word, ~750 MB/s on the same machine; RC4's own chain of
/// dependent S-box reads and swaps is what is left.
/// Boxed: the state is 258 bytes, and handshake states move it around.
pub struct Cipher(Box<Rc4State>);

/// The S-box and the two indices of RC4.
struct Rc4State {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4State {
    /// The key schedule (KSA).
    fn new(key: &[u8; 20]) -> Rc4State {
        let mut s = [0u8; 256];
        for (n, x) in s.iter_mut().enumerate() {
            *x = n as u8;
        }
        let mut j = 0u8;
        for n in 0..256 {
            j = j.wrapping_add(s[n]).wrapping_add(key[n % key.len()]);
            s.swap(n, usize::from(j));
        }
        Rc4State { s, i: 0, j: 0 }
    }

    /// The next keystream byte (PRGA). Indexing with a `u8` keeps every access in bounds
    /// without a check.
    #[inline(always)]
    fn next(&mut self) -> u8 {
        self.i = self.i.wrapping_add(1);
        let si = self.s[usize::from(self.i)];
        self.j = self.j.wrapping_add(si);
        let sj = self.s[usize::from(self.j)];
        self.s[usize::from(self.i)] = sj;
        self.s[usize::from(self.j)] = si;
        self.s[usize::from(si.wrapping_add(sj))]
    }

    /// Eight keystream bytes, the first in the lowest byte.
    #[inline(always)]
    fn next_word(&mut self) -> u64 {
        let mut ks = 0u64;
        for k in 0..8 {
            ks |= u64::from(self.next()) << (8 * k);
        }
        ks
    }
}

impl Cipher {
    pub fn new(key: [u8; 20]) -> Cipher {
        let mut rc4 = Rc4State::new(&key);
        for _ in 0..1024 {
            rc4.next();
        }
        Cipher(Box::new(rc4))
    }

    /// The stream key for the initiator's direction (A→B) or the responder's (B→A).
    pub fn for_direction(from_initiator: bool, secret: &[u8; KEY_LEN], skey: &[u8; 20]) -> Cipher {
        let label: &[u8] = if from_initiator { b"keyA" } else { b"keyB" };
        Cipher::new(hash(&[label, secret, skey]))
    }

    /// Encrypts or decrypts `data` in place (the same operation), advancing the stream.
    pub fn apply(&mut self, data: &mut [u8]) {
        let rc4 = &mut *self.0;
        let mut words = data.chunks_exact_mut(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            let x = u64::from_le_bytes(w) ^ rc4.next_word();
            word.copy_from_slice(&x.to_le_bytes());
        }
        for b in words.into_remainder() {
            *b ^= rc4.next();
        }
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(rc4)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rc4::consts::U20;
    use rc4::{KeyInit, StreamCipher};

    #[test]
    fn the_prime_is_the_spec_one() {
        let p = prime();
        assert_eq!(p.bits(), 768);
        assert_eq!(to_key_bytes(&p)[..8], [0xFF; 8]);
        assert_eq!(to_key_bytes(&p)[KEY_LEN - 4..], [0x00, 0x09, 0x05, 0x63]);
    }

    #[test]
    fn both_sides_compute_the_same_secret() {
        let a = KeyPair::new([0x11; 20]);
        let b = KeyPair::new([0x7f; 20]);
        let s1 = a.shared_secret(&b.public).unwrap();
        let s2 = b.shared_secret(&a.public).unwrap();
        assert_eq!(s1, s2);
        assert_ne!(a.public, b.public);
    }

    /// A private key of 1 makes the public key the generator itself, 2, left-padded.
    #[test]
    fn public_keys_are_left_padded_to_96_bytes() {
        let mut one = [0u8; 20];
        one[19] = 1;
        let k = KeyPair::new(one);
        let mut expected = [0u8; KEY_LEN];
        expected[KEY_LEN - 1] = 2;
        assert_eq!(k.public, expected);
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let k = KeyPair::new([3; 20]);
        assert!(k.shared_secret(&[0; KEY_LEN]).is_none());
        let mut one = [0; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        assert!(k.shared_secret(&one).is_none());
        assert!(k.shared_secret(&[0xFF; KEY_LEN]).is_none());
        let p_minus_1 = to_key_bytes(&(prime() - 1u32));
        assert!(k.shared_secret(&p_minus_1).is_none());
    }

    /// RC4 itself, on the classic vector (key "Key", plaintext "Plaintext"), through the crate.
    #[test]
    fn rc4_matches_the_classic_vector() {
        let mut rc4 = rc4::Rc4::<rc4::consts::U3>::new(b"Key".into());
        let mut data = *b"Plaintext";
        rc4.apply_keystream(&mut data);
        assert_eq!(data, [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
    }

    /// The discard: the stream starts at keystream byte 1024 of the key.
    #[test]
    fn the_first_kib_of_keystream_is_discarded() {
        let key = [9u8; 20];
        let mut raw = rc4::Rc4::<U20>::new(&key.into());
        let mut ks = vec![0u8; 1024 + 16];
        raw.apply_keystream(&mut ks);
        let mut ours = [0u8; 16];
        Cipher::new(key).apply(&mut ours);
        assert_eq!(ours[..], ks[1024..]);
    }

    /// The `rc4` crate's stream for `key`, past the discard: the reference.
    fn reference(key: [u8; 20], len: usize) -> Vec<u8> {
        let mut raw = rc4::Rc4::<U20>::new(&key.into());
        let mut ks = vec![0u8; 1024 + len];
        raw.apply_keystream(&mut ks);
        ks.split_off(1024)
    }

    /// The word-at-a-time loop gives the crate's keystream whatever the calls' sizes: every
    /// length from 0 to 40 (whole words, remainders, calls that start inside a word of the
    /// previous one), then large ones.
    #[test]
    fn the_stream_is_the_crates_however_it_is_cut() {
        let key = *b"0123456789abcdefghij";
        let sizes: Vec<usize> = (0..=40).chain([1000, 4096, 65_537, 3]).collect();
        let total: usize = sizes.iter().sum();
        let data: Vec<u8> = (0..total).map(|i| (i * 31 % 256) as u8).collect();
        let want: Vec<u8> = reference(key, total)
            .iter()
            .zip(&data)
            .map(|(k, d)| k ^ d)
            .collect();
        let mut cipher = Cipher::new(key);
        let mut got = data.clone();
        let mut at = 0;
        for n in sizes {
            cipher.apply(&mut got[at..at + n]);
            at += n;
        }
        assert!(got == want, "the stream differs from the rc4 crate's");
    }

    /// Applying the stream twice from the same key gives the data back.
    #[test]
    fn encrypting_then_decrypting_gives_the_data_back() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let mut x = data.clone();
        Cipher::new([1; 20]).apply(&mut x);
        assert_ne!(x, data);
        Cipher::new([1; 20]).apply(&mut x);
        assert_eq!(x, data);
    }
}
