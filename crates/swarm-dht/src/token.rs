//! announce_peer tokens (BEP 5): proof that an announcer recently asked us `get_peers` from
//! the same IP address, so nobody can store peers on behalf of someone else's address.
//!
//! Pure apart from drawing random secrets. A token is a truncated SHA-1 of (secret, querier IP).
//! The secret rotates every five minutes and the previous one is still accepted, so a token
//! stays valid for five to ten minutes and we store nothing per querier.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;

/// How often the secret changes (BEP 5 suggests five minutes).
pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);
const TOKEN_LEN: usize = 8;

pub struct TokenSecrets {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
    rotate_every: Duration,
}

impl TokenSecrets {
    pub fn new(now: Instant) -> Self {
        Self::with_interval(ROTATE_EVERY, now)
    }

    pub fn with_interval(rotate_every: Duration, now: Instant) -> Self {
        let mut rng = rand::thread_rng();
        TokenSecrets {
            current: rng.gen(),
            previous: rng.gen(),
            rotated_at: now,
            rotate_every: rotate_every.max(Duration::from_millis(1)),
        }
    }

    fn rotate_if_due(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.rotated_at);
        if elapsed < self.rotate_every {
            return;
        }
        let mut rng = rand::thread_rng();
        // Two periods or more without traffic: both old secrets have expired.
        self.previous = if elapsed >= self.rotate_every * 2 {
            rng.gen()
        } else {
            self.current
        };
        self.current = rng.gen();
        self.rotated_at = now;
    }

    /// The token to hand to `ip` in a get_peers response.
    pub fn issue(&mut self, ip: IpAddr, now: Instant) -> Vec<u8> {
        self.rotate_if_due(now);
        make(&self.current, ip).to_vec()
    }

    /// Whether `token` was issued to `ip` under the current or the previous secret.
    pub fn validate(&mut self, token: &[u8], ip: IpAddr, now: Instant) -> bool {
        self.rotate_if_due(now);
        token == make(&self.current, ip) || token == make(&self.previous, ip)
    }
}

fn make(secret: &[u8; 16], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut h = sha1_smol::Sha1::new();
    h.update(secret);
    match ip {
        IpAddr::V4(v4) => h.update(&v4.octets()),
        IpAddr::V6(v6) => h.update(&v6.octets()),
    }
    let digest = h.digest().bytes();
    let mut out = [0u8; TOKEN_LEN];
    out.copy_from_slice(&digest[..TOKEN_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn bound_to_the_ip() {
        let now = Instant::now();
        let mut s = TokenSecrets::new(now);
        let t = s.issue(A, now);
        assert!(s.validate(&t, A, now));
        assert!(!s.validate(&t, B, now));
        assert!(!s.validate(b"forged", A, now));
        assert!(!s.validate(&[], A, now));
    }

    #[test]
    fn valid_across_one_rotation_not_two() {
        let now = Instant::now();
        let mut s = TokenSecrets::new(now);
        let t = s.issue(A, now);
        assert!(s.validate(&t, A, now + 4 * MIN));
        // The rotation at 5 min keeps the old secret as "previous".
        assert!(s.validate(&t, A, now + 6 * MIN));
        assert!(s.validate(&t, A, now + 9 * MIN));
        // The rotation at 10 min retires it.
        assert!(!s.validate(&t, A, now + 11 * MIN));
    }

    #[test]
    fn a_long_silence_expires_everything() {
        let now = Instant::now();
        let mut s = TokenSecrets::new(now);
        let t = s.issue(A, now);
        assert!(!s.validate(&t, A, now + 12 * MIN));
        let fresh = s.issue(A, now + 12 * MIN);
        assert!(s.validate(&fresh, A, now + 13 * MIN));
    }
}
