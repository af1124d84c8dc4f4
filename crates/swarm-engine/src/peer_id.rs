//! Our peer id (Azureus style: `-SW0100-` and 12 random bytes) and a readable name for others'.

pub fn generate() -> [u8; 20] {
    let mut id = [0u8; 20];
    let prefix = format!(
        "-SW{:02}{:02}-",
        env!("CARGO_PKG_VERSION_MAJOR").parse::<u8>().unwrap_or(0),
        env!("CARGO_PKG_VERSION_MINOR").parse::<u8>().unwrap_or(0)
    );
    id[..8].copy_from_slice(&prefix.as_bytes()[..8]);
    for b in &mut id[8..] {
        // Printable, so logs and trackers show it cleanly.
        *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random::<usize>() % 36];
    }
    id
}

/// "-LT2080-…" → "LT 2080"; anything else → hex of the first bytes.
pub fn client_name(id: &[u8; 20]) -> String {
    if id[0] == b'-' && id[7] == b'-' && id[1..7].iter().all(|b| b.is_ascii_alphanumeric()) {
        let s = String::from_utf8_lossy(&id[1..7]);
        return format!("{} {}", &s[..2], &s[2..]);
    }
    id[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        let id = super::generate();
        assert!(id.starts_with(b"-SW"));
        assert_eq!(&super::client_name(b"-LT2080-abcdefghijkl")[..], "LT 2080");
    }
}
