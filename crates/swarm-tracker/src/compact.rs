//! Compact peer lists (BEP 23 for IPv4, BEP 7 for IPv6): 4 or 16 address bytes followed by a big-endian
//! port, repeated. HTTP trackers send them inside bencode, UDP trackers as the tail of the packet;
//! both decode through here.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes per IPv4 entry.
pub(crate) const V4_ENTRY: usize = 6;
/// Bytes per IPv6 entry.
pub(crate) const V6_ENTRY: usize = 18;

/// Which address family a compact list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn entry_len(self) -> usize {
        match self {
            Family::V4 => V4_ENTRY,
            Family::V6 => V6_ENTRY,
        }
    }
}

/// Appends the peers in `bytes` to `out`. A length that is not a whole number of entries means the
/// list was cut short or is not what we think it is: we refuse it rather than guess.
/// Entries with port 0 cannot be dialled and are dropped.
pub(crate) fn decode_into(
    bytes: &[u8],
    family: Family,
    out: &mut Vec<SocketAddr>,
) -> Result<(), String> {
    let size = family.entry_len();
    if !bytes.len().is_multiple_of(size) {
        return Err(format!(
            "compact {:?} peer list is {} bytes, not a multiple of {size}",
            family,
            bytes.len()
        ));
    }
    out.reserve(bytes.len() / size);
    for entry in bytes.chunks_exact(size) {
        let (ip, port) = entry.split_at(size - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        if port == 0 {
            continue;
        }
        let addr = match family {
            Family::V4 => {
                let mut octets = [0u8; 4];
                octets.copy_from_slice(ip);
                SocketAddr::from((Ipv4Addr::from(octets), port))
            }
            Family::V6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(ip);
                SocketAddr::from((Ipv6Addr::from(octets), port))
            }
        };
        out.push(addr);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_v4_and_v6() {
        let mut out = Vec::new();
        decode_into(
            &[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80],
            Family::V4,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap()
            ]
        );
        let mut v6 = vec![0u8; 18];
        v6[15] = 1;
        v6[16] = 0x1a;
        v6[17] = 0xe1;
        out.clear();
        decode_into(&v6, Family::V6, &mut out).unwrap();
        assert_eq!(out, vec!["[::1]:6881".parse().unwrap()]);
    }

    #[test]
    fn rejects_partial_entries_and_drops_port_zero() {
        let mut out = Vec::new();
        assert!(decode_into(&[1, 2, 3, 4, 5], Family::V4, &mut out).is_err());
        assert!(decode_into(&[0; 6], Family::V6, &mut out).is_err());
        decode_into(&[1, 2, 3, 4, 0, 0], Family::V4, &mut out).unwrap();
        assert!(out.is_empty());
    }
}
