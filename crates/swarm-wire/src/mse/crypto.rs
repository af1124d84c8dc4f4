//! The primitives of MSE: the Diffie-Hellman exchange over the spec's 768-bit prime, the
//! SHA-1 derivations, and the RC4 stream with its first 1 KiB discarded. Pure.

use num_bigint::BigUint;
use rc4::consts::U20;
use rc4::{KeyInit, Rc4, StreamCipher};

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
/// Boxed: the RC4 state is 258 bytes, and handshake states move it around.
pub struct Cipher(Box<Rc4<U20>>);

impl Cipher {
    pub fn new(key: [u8; 20]) -> Cipher {
        let mut rc4 = Rc4::new(&key.into());
        let mut discard = [0u8; 1024];
        rc4.apply_keystream(&mut discard);
        Cipher(Box::new(rc4))
    }

    /// The stream key for the initiator's direction (A→B) or the responder's (B→A).
    pub fn for_direction(from_initiator: bool, secret: &[u8; KEY_LEN], skey: &[u8; 20]) -> Cipher {
        let label: &[u8] = if from_initiator { b"keyA" } else { b"keyB" };
        Cipher::new(hash(&[label, secret, skey]))
    }

    /// Encrypts or decrypts `data` in place (the same operation), advancing the stream.
    #[inline]
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
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
}
