//! ut_pex (BEP 11): peers tell each other which peers they connected to and dropped since the
//! last message.
//!
//! Addresses are compact: 4-byte IPv4 + port (6 bytes) in `added`/`dropped`, 16-byte IPv6 + port
//! (18 bytes) in `added6`/`dropped6`, one flag byte per added peer in `added.f`/`added6.f`. A
//! flags string shorter than its list leaves the rest at 0 and a longer one is cut: flags are
//! hints, and some clients omit them. A list whose length is not a whole number of entries, or
//! holding more than [`MAX_PEX_ENTRIES`], makes the message an error.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{BufMut, Bytes, BytesMut};

use super::benc;
use crate::peer::WireError;

/// Most entries accepted per list (`added`, `added6`, `dropped`, `dropped6`). BEP 11 asks
/// senders for at most 50 added and 50 dropped per message; this leaves room for generous
/// clients while bounding what one message can make us store.
pub const MAX_PEX_ENTRIES: usize = 200;

const WHAT: &str = "ut_pex";

/// The flag byte BEP 11 attaches to each added peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// The peer prefers encrypted connections.
    pub const ENCRYPTION: u8 = 0x01;
    /// The peer is a seed (or upload-only).
    pub const SEED: u8 = 0x02;
    pub const UTP: u8 = 0x04;
    pub const HOLEPUNCH: u8 = 0x08;
    /// The sender connected out to this peer, so the peer accepts incoming connections.
    pub const OUTGOING: u8 = 0x10;

    pub fn prefers_encryption(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }

    pub fn is_seed(self) -> bool {
        self.0 & Self::SEED != 0
    }

    pub fn supports_utp(self) -> bool {
        self.0 & Self::UTP != 0
    }

    pub fn supports_holepunch(self) -> bool {
        self.0 & Self::HOLEPUNCH != 0
    }

    pub fn is_reachable(self) -> bool {
        self.0 & Self::OUTGOING != 0
    }
}

/// One ut_pex message. Keep each list within [`MAX_PEX_ENTRIES`] when encoding: peers
/// (including swarmd) reject longer ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PexMessage {
    pub added: Vec<(SocketAddr, PexFlags)>,
    pub dropped: Vec<SocketAddr>,
}

const V4_LEN: usize = 6;
const V6_LEN: usize = 18;

fn put_v4(out: &mut Vec<u8>, addr: &SocketAddrV4) {
    out.extend_from_slice(&addr.ip().octets());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn put_v6(out: &mut Vec<u8>, addr: &SocketAddrV6) {
    out.extend_from_slice(&addr.ip().octets());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn v4_from(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = entry.split_first_chunk::<4>()?;
    let port = <[u8; 2]>::try_from(port).ok()?;
    Some(SocketAddr::from((
        Ipv4Addr::from(*ip),
        u16::from_be_bytes(port),
    )))
}

fn v6_from(entry: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = entry.split_first_chunk::<16>()?;
    let port = <[u8; 2]>::try_from(port).ok()?;
    Some(SocketAddr::from((
        Ipv6Addr::from(*ip),
        u16::from_be_bytes(port),
    )))
}

/// Splits a compact list into addresses, after checking its size (before allocating for it).
fn addrs(
    raw: &[u8],
    entry_len: usize,
    parse: fn(&[u8]) -> Option<SocketAddr>,
    key: &str,
) -> Result<Vec<SocketAddr>, WireError> {
    let entries = raw.chunks_exact(entry_len);
    if !entries.remainder().is_empty() {
        return Err(benc::error(
            WHAT,
            format_args!(
                "{key} is {} bytes, not a multiple of {entry_len}",
                raw.len()
            ),
        ));
    }
    if entries.len() > MAX_PEX_ENTRIES {
        return Err(benc::error(
            WHAT,
            format_args!("{key} has more than {MAX_PEX_ENTRIES} peers"),
        ));
    }
    Ok(entries.filter_map(parse).collect())
}

fn with_flags(
    peers: Vec<SocketAddr>,
    flags: &[u8],
) -> impl Iterator<Item = (SocketAddr, PexFlags)> + '_ {
    let flags = flags
        .iter()
        .copied()
        .map(PexFlags)
        .chain(std::iter::repeat(PexFlags(0)));
    peers.into_iter().zip(flags)
}

impl PexMessage {
    /// The extended payload (after the extended id byte). IPv6 keys are only written when
    /// there are IPv6 peers.
    pub fn encode(&self) -> Bytes {
        let (mut added, mut added_f, mut added6, mut added6_f) = (vec![], vec![], vec![], vec![]);
        for (addr, flags) in &self.added {
            match addr {
                SocketAddr::V4(a) => {
                    put_v4(&mut added, a);
                    added_f.push(flags.0);
                }
                SocketAddr::V6(a) => {
                    put_v6(&mut added6, a);
                    added6_f.push(flags.0);
                }
            }
        }
        let (mut dropped, mut dropped6) = (vec![], vec![]);
        for addr in &self.dropped {
            match addr {
                SocketAddr::V4(a) => put_v4(&mut dropped, a),
                SocketAddr::V6(a) => put_v6(&mut dropped6, a),
            }
        }
        let size = added.len() + added_f.len() + added6.len() + added6_f.len();
        let mut out = BytesMut::with_capacity(64 + size + dropped.len() + dropped6.len());
        // Keys in sorted order: added added.f added6 added6.f dropped dropped6.
        out.put_u8(b'd');
        benc::put_bytes_pair(&mut out, b"added", &added);
        benc::put_bytes_pair(&mut out, b"added.f", &added_f);
        if !added6.is_empty() {
            benc::put_bytes_pair(&mut out, b"added6", &added6);
            benc::put_bytes_pair(&mut out, b"added6.f", &added6_f);
        }
        benc::put_bytes_pair(&mut out, b"dropped", &dropped);
        if !dropped6.is_empty() {
            benc::put_bytes_pair(&mut out, b"dropped6", &dropped6);
        }
        out.put_u8(b'e');
        out.freeze()
    }

    /// Decodes a payload; `added` lists the IPv4 peers first, then the IPv6 ones.
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let mut dec = benc::decoder(payload);
        let mut dict = benc::top_dict(&mut dec, WHAT)?;
        let mut added4: &[u8] = &[];
        let mut added4_f: &[u8] = &[];
        let mut added6: &[u8] = &[];
        let mut added6_f: &[u8] = &[];
        let mut dropped4: &[u8] = &[];
        let mut dropped6: &[u8] = &[];
        while let Some((key, value)) = dict.next_pair().map_err(|e| benc::error(WHAT, e))? {
            let slot = match key {
                b"added" => &mut added4,
                b"added.f" => &mut added4_f,
                b"added6" => &mut added6,
                b"added6.f" => &mut added6_f,
                b"dropped" => &mut dropped4,
                b"dropped6" => &mut dropped6,
                _ => continue,
            };
            *slot = benc::bytes(value).ok_or_else(|| {
                benc::error(
                    WHAT,
                    format_args!("{} is not a string", String::from_utf8_lossy(key)),
                )
            })?;
        }
        if benc::dict_len(dict, WHAT)? != payload.len() {
            return Err(benc::error(WHAT, "bytes after the dictionary"));
        }
        let v4 = addrs(added4, V4_LEN, v4_from, "added")?;
        let v6 = addrs(added6, V6_LEN, v6_from, "added6")?;
        let mut added = Vec::with_capacity(v4.len() + v6.len());
        added.extend(with_flags(v4, added4_f));
        added.extend(with_flags(v6, added6_f));
        let mut dropped = addrs(dropped4, V4_LEN, v4_from, "dropped")?;
        dropped.extend(addrs(dropped6, V6_LEN, v6_from, "dropped6")?);
        Ok(PexMessage { added, dropped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_compact_lists_with_flags() {
        let mut raw = b"d5:added12:".to_vec();
        raw.extend_from_slice(&[10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 80]);
        raw.extend_from_slice(b"7:added.f1:\x12");
        raw.extend_from_slice(b"7:dropped6:\x7f\x00\x00\x01\x00\x01");
        raw.extend_from_slice(b"8:dropped618:");
        raw.extend_from_slice(&[0; 15]);
        raw.extend_from_slice(&[1, 0, 2]);
        raw.extend_from_slice(b"e");
        let msg = PexMessage::decode(&raw).expect("decodes");
        assert_eq!(
            msg.added,
            vec![
                ("10.0.0.1:6881".parse().expect("addr"), PexFlags(0x12)),
                ("10.0.0.2:80".parse().expect("addr"), PexFlags(0)),
            ]
        );
        assert!(msg.added[0].1.is_seed() && msg.added[0].1.is_reachable());
        assert!(!msg.added[0].1.prefers_encryption());
        assert_eq!(
            msg.dropped,
            vec![
                "127.0.0.1:1".parse().expect("addr"),
                "[::1]:2".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn bad_messages() {
        let mut too_many = b"d5:added1206:".to_vec();
        too_many.extend_from_slice(&[1; 1206]);
        too_many.push(b'e');
        for raw in [
            &b"d5:added5:12345e"[..],
            b"d6:added617:12345678901234567e",
            b"d7:dropped7:1234567e",
            b"d5:addedi1ee",
            b"d7:dropped0:5:added0:e",
            b"d5:added0:ee",
            &too_many,
        ] {
            assert!(
                PexMessage::decode(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // Exactly the cap is fine.
        let mut at_cap = b"d5:added1200:".to_vec();
        at_cap.extend_from_slice(&[1; 1200]);
        at_cap.push(b'e');
        assert_eq!(
            PexMessage::decode(&at_cap).expect("decodes").added.len(),
            MAX_PEX_ENTRIES
        );
    }

    fn arb_pex() -> impl Strategy<Value = PexMessage> {
        let v4 = any::<SocketAddrV4>().prop_map(SocketAddr::V4);
        let v6 = (any::<Ipv6Addr>(), any::<u16>()).prop_map(SocketAddr::from);
        let flags = any::<u8>().prop_map(PexFlags);
        (
            proptest::collection::vec((v4.clone(), flags.clone()), 0..20),
            proptest::collection::vec((v6.clone(), flags), 0..20),
            proptest::collection::vec(v4, 0..20),
            proptest::collection::vec(v6, 0..20),
        )
            .prop_map(|(mut added, added6, mut dropped, dropped6)| {
                added.extend(added6);
                dropped.extend(dropped6);
                PexMessage { added, dropped }
            })
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_round_trip(msg in arb_pex()) {
            prop_assert_eq!(PexMessage::decode(&msg.encode())?, msg);
        }

        #[test]
        fn proptest_random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PexMessage::decode(&input);
        }

        #[test]
        fn proptest_mutated_messages_never_panic(
            msg in arb_pex(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut raw = msg.encode().to_vec();
            for (at, byte) in flips {
                let i = at.index(raw.len());
                if let Some(b) = raw.get_mut(i) {
                    *b ^= byte;
                }
            }
            if let Ok(decoded) = PexMessage::decode(&raw) {
                prop_assert!(decoded.added.len() <= 2 * MAX_PEX_ENTRIES);
                prop_assert!(decoded.dropped.len() <= 2 * MAX_PEX_ENTRIES);
            }
        }
    }
}
