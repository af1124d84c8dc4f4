//! Which protocol a datagram on the shared UDP port belongs to. Pure: looks at the first bytes
//! only, and never allocates.
//!
//! KRPC (the DHT) is a bencoded dictionary, so its first byte is `d` (0x64). A uTP packet
//! (BEP 29) has its version, 1, in the low nibble of the first byte and its type (0 to 4) in the
//! high nibble: 0x01, 0x11, 0x21, 0x31, 0x41; its header is 20 bytes. The two never collide
//! (0x64 has type 6). Anything else is dropped by the caller.

/// The protocol of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Datagram {
    Krpc,
    /// `syn`: a connection request (`ST_SYN`), the only packet that makes the uTP endpoint
    /// keep state for a stranger, hence rate-limited per source before it gets there.
    Utp {
        syn: bool,
    },
    Unknown,
}

/// uTP's header length; a shorter packet cannot be uTP.
const UTP_HEADER: usize = 20;
const UTP_VERSION: u8 = 1;
const ST_SYN: u8 = 4;

pub fn classify(datagram: &[u8]) -> Datagram {
    match datagram.first() {
        Some(b'd') => Datagram::Krpc,
        Some(&b) if b & 0x0f == UTP_VERSION && b >> 4 <= ST_SYN && datagram.len() >= UTP_HEADER => {
            Datagram::Utp {
                syn: b >> 4 == ST_SYN,
            }
        }
        _ => Datagram::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utp(kind: u8) -> Vec<u8> {
        let mut p = vec![0u8; UTP_HEADER];
        p[0] = (kind << 4) | 1;
        p
    }

    #[test]
    fn krpc_is_a_dictionary() {
        assert_eq!(classify(b"d1:ad2:id20:"), Datagram::Krpc);
    }

    #[test]
    fn utp_types_are_told_apart_and_syn_is_marked() {
        for kind in 0..4 {
            assert_eq!(classify(&utp(kind)), Datagram::Utp { syn: false });
        }
        assert_eq!(classify(&utp(4)), Datagram::Utp { syn: true });
    }

    #[test]
    fn garbage_short_or_other_versions_are_unknown() {
        assert_eq!(classify(&[]), Datagram::Unknown);
        assert_eq!(classify(&utp(4)[..UTP_HEADER - 1]), Datagram::Unknown);
        assert_eq!(classify(&utp(5)), Datagram::Unknown);
        let mut v2 = utp(4);
        v2[0] = 0x42;
        assert_eq!(classify(&v2), Datagram::Unknown);
        assert_eq!(classify(b"l4:spame"), Datagram::Unknown);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_krpc_only_on_d(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let c = classify(&bytes);
            proptest::prop_assert_eq!(c == Datagram::Krpc, bytes.first() == Some(&b'd'));
        }
    }
}
