//! The RPC password as the config stores it: `sha256:<salt hex>:<digest hex>`, the digest being
//! SHA-256 over the salt's bytes followed by the password's. Pure: `swarmd rpc-password` makes a
//! hash, the RPC gate checks one.
//!
//! Salted so that two daemons with the same password do not show the same line, and the file
//! does not hold the password itself; a config file is not a place for a slow KDF's cost
//! parameters, and whoever can read the file can usually read the daemon's state anyway.

use sha2::{Digest, Sha256};

const SCHEME: &str = "sha256";
const SALT_BYTES: usize = 16;

/// A parsed `password_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl PasswordHash {
    /// A hash of `password` with a fresh random salt.
    pub fn new(password: &str) -> Self {
        let salt: [u8; SALT_BYTES] = rand::random();
        Self::with_salt(password, salt.to_vec())
    }

    fn with_salt(password: &str, salt: Vec<u8>) -> Self {
        let digest = digest(&salt, password);
        PasswordHash { salt, digest }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let hex = data_encoding::HEXLOWER_PERMISSIVE;
        let bad = || {
            format!(
                "{text:?} is not a password hash of `swarmd rpc-password` (sha256:<salt>:<digest>)"
            )
        };
        let mut parts = text.trim().split(':');
        let (Some(SCHEME), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let salt = hex.decode(salt.as_bytes()).map_err(|_| bad())?;
        let digest = hex.decode(digest.as_bytes()).map_err(|_| bad())?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| bad())?;
        if salt.is_empty() {
            return Err(bad());
        }
        Ok(PasswordHash { salt, digest })
    }

    /// Whether `password` is the one hashed; compares in constant time.
    pub fn matches(&self, password: &str) -> bool {
        let other = digest(&self.salt, password);
        other
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl std::fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = data_encoding::HEXLOWER;
        write!(
            f,
            "{SCHEME}:{}:{}",
            hex.encode(&self.salt),
            hex.encode(&self.digest)
        )
    }
}

fn digest(salt: &[u8], password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = PasswordHash::new("secret");
        let parsed = PasswordHash::parse(&h.to_string()).unwrap();
        assert_eq!(parsed, h);
        assert!(parsed.matches("secret"));
        assert!(!parsed.matches("Secret"));
        assert!(!parsed.matches(""));
        assert_ne!(PasswordHash::new("secret"), h, "salts differ");
    }

    #[test]
    fn known_value() {
        // printf 'saltpw' | sha256sum
        let h = PasswordHash::with_salt("pw", b"salt".to_vec());
        assert_eq!(
            h.to_string(),
            "sha256:73616c74:21baed949b716c49cbf7d8fe79412f1dc104745650a32081ae0be0b967aeb7f3"
        );
    }

    #[test]
    fn bad_hashes() {
        for bad in [
            "",
            "secret",
            "sha1:00:00",
            "sha256:zz:00",
            "sha256::00",
            "sha256:00:0011",
        ] {
            let e = PasswordHash::parse(bad).unwrap_err();
            assert!(e.contains("swarmd rpc-password"), "{e}");
        }
    }
}
