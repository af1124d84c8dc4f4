//! BEP 10 extension handshake, BEP 9 ut_metadata, BEP 11 ut_pex. CONTRACT: keep the names.
//!
//! These are the payloads of `Message::Extended { id, payload }`. Ids are per direction: we
//! send a message with the id the *peer* announced in its `m`, and receive ours
//! ([`LOCAL_UT_METADATA`], [`LOCAL_UT_PEX`]) as announced in [`ExtendedHandshake::ours`].
//!
//! Decoding is bounded: nesting depth ([`MAX_DEPTH`]), the number of extensions in `m`
//! ([`MAX_EXTENSIONS`]), the client name ([`MAX_CLIENT_NAME`]), metadata sizes
//! ([`METADATA_MAX_SIZE`], [`METADATA_PIECE_SIZE`]) and pex lists ([`MAX_PEX_ENTRIES`]).
//! Dictionaries must be valid bencode with sorted keys, as BEP 3 requires; unknown keys are
//! ignored; bytes after a dictionary are an error, except the data of a ut_metadata piece.

mod benc;
mod metadata;
mod pex;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bendy::decoding::Object;
use bytes::{BufMut, Bytes, BytesMut};

pub use benc::MAX_DEPTH;
pub use metadata::{MetadataMsg, METADATA_MAX_SIZE, METADATA_PIECE_SIZE};
pub use pex::{PexFlags, PexMessage, MAX_PEX_ENTRIES};

use super::WireError;

/// Extended message id of the extension handshake.
pub const HANDSHAKE_ID: u8 = 0;
pub const UT_METADATA: &str = "ut_metadata";
pub const UT_PEX: &str = "ut_pex";
/// The ids we announce, i.e. the ids peers use when they send these messages to us.
pub const LOCAL_UT_METADATA: u8 = 1;
pub const LOCAL_UT_PEX: u8 = 2;

/// Most entries accepted in `m`; real clients announce a handful.
pub const MAX_EXTENSIONS: usize = 64;
/// Longest client name (`v`) kept; longer names are cut, bytes that are not UTF-8 replaced.
pub const MAX_CLIENT_NAME: usize = 128;

/// The BEP 10 handshake (extended id 0). Every field is optional on the wire.
///
/// `m` keeps entries whose id is 0: BEP 10 lets a peer re-send its handshake with id 0 to turn an
/// extension off, so the engine must see them to update what it knows. Use
/// [`ExtendedHandshake::id_of`] to ask whether an extension is usable.
///
/// `metadata_size` is `None` when it is absent, 0, or above [`METADATA_MAX_SIZE`]: the engine
/// may size a buffer from it. Other out-of-range values (a port of 0, a negative `reqq`, an
/// address of the wrong length) are also dropped to `None` rather than failing the handshake.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtendedHandshake {
    pub m: BTreeMap<String, u8>,
    /// Client name and version.
    pub v: Option<String>,
    /// The peer's listening TCP port.
    pub p: Option<u16>,
    /// How many outstanding requests the peer accepts.
    pub reqq: Option<u32>,
    /// Size of the info dictionary in bytes (BEP 9).
    pub metadata_size: Option<u32>,
    /// Our address as the peer sees it.
    pub yourip: Option<IpAddr>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl ExtendedHandshake {
    /// The handshake swarmd sends: ut_metadata and ut_pex under our local ids.
    pub fn ours() -> Self {
        let mut m = BTreeMap::new();
        m.insert(UT_METADATA.to_owned(), LOCAL_UT_METADATA);
        m.insert(UT_PEX.to_owned(), LOCAL_UT_PEX);
        ExtendedHandshake {
            m,
            ..Default::default()
        }
    }

    /// The id to use when sending extension `name` to this peer; `None` if the peer does not
    /// support it or has disabled it (id 0).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    /// The bencoded dictionary (the payload after the extended id byte).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        // Keys in sorted order: ipv4 ipv6 m metadata_size p reqq v yourip.
        out.put_u8(b'd');
        if let Some(ip) = self.ipv4 {
            benc::put_bytes_pair(&mut out, b"ipv4", &ip.octets());
        }
        if let Some(ip) = self.ipv6 {
            benc::put_bytes_pair(&mut out, b"ipv6", &ip.octets());
        }
        benc::put_bytes(&mut out, b"m");
        out.put_u8(b'd');
        for (name, id) in &self.m {
            benc::put_uint_pair(&mut out, name.as_bytes(), u64::from(*id));
        }
        out.put_u8(b'e');
        if let Some(size) = self.metadata_size {
            benc::put_uint_pair(&mut out, b"metadata_size", u64::from(size));
        }
        if let Some(port) = self.p {
            benc::put_uint_pair(&mut out, b"p", u64::from(port));
        }
        if let Some(reqq) = self.reqq {
            benc::put_uint_pair(&mut out, b"reqq", u64::from(reqq));
        }
        if let Some(v) = &self.v {
            benc::put_bytes_pair(&mut out, b"v", v.as_bytes());
        }
        match self.yourip {
            Some(IpAddr::V4(ip)) => benc::put_bytes_pair(&mut out, b"yourip", &ip.octets()),
            Some(IpAddr::V6(ip)) => benc::put_bytes_pair(&mut out, b"yourip", &ip.octets()),
            None => {}
        }
        out.put_u8(b'e');
        out.freeze()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "extension handshake";
        let mut dec = benc::decoder(payload);
        let mut dict = benc::top_dict(&mut dec, WHAT)?;
        let mut hs = ExtendedHandshake::default();
        while let Some((key, value)) = dict.next_pair().map_err(|e| benc::error(WHAT, e))? {
            match key {
                b"m" => hs.m = decode_m(value)?,
                b"v" => hs.v = benc::bytes(value).map(client_name),
                b"p" => {
                    hs.p = benc::uint(value)
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|&p| p != 0)
                }
                b"reqq" => hs.reqq = benc::uint(value).and_then(|n| u32::try_from(n).ok()),
                b"metadata_size" => {
                    hs.metadata_size = benc::uint(value)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|&n| n != 0 && n <= METADATA_MAX_SIZE)
                }
                b"yourip" => hs.yourip = benc::bytes(value).and_then(ip_from_bytes),
                b"ipv4" => {
                    hs.ipv4 = benc::bytes(value)
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(Ipv4Addr::from)
                }
                b"ipv6" => {
                    hs.ipv6 = benc::bytes(value)
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Ipv6Addr::from)
                }
                // Unknown keys are skipped; dropping `value` consumes it.
                _ => {}
            }
        }
        if benc::dict_len(dict, WHAT)? != payload.len() {
            return Err(benc::error(WHAT, "bytes after the dictionary"));
        }
        Ok(hs)
    }
}

fn decode_m(value: Object<'_, '_>) -> Result<BTreeMap<String, u8>, WireError> {
    const WHAT: &str = "extension handshake m";
    let Object::Dict(mut dict) = value else {
        return Err(benc::error(WHAT, "not a dictionary"));
    };
    let mut m = BTreeMap::new();
    let mut seen = 0usize;
    while let Some((name, id)) = dict.next_pair().map_err(|e| benc::error(WHAT, e))? {
        seen += 1;
        if seen > MAX_EXTENSIONS {
            return Err(benc::error(WHAT, "too many extensions"));
        }
        // An entry we cannot use (a name that is not UTF-8, an id that is not a byte) is
        // skipped: the peer simply does not get that extension from us.
        let id = benc::uint(id).and_then(|id| u8::try_from(id).ok());
        if let (Ok(name), Some(id)) = (std::str::from_utf8(name), id) {
            m.insert(name.to_owned(), id);
        }
    }
    Ok(m)
}

fn client_name(raw: &[u8]) -> String {
    let mut cut = raw.get(..MAX_CLIENT_NAME).unwrap_or(raw);
    // Cutting may split a UTF-8 sequence; drop the partial character rather than show U+FFFD.
    if let Err(e) = std::str::from_utf8(cut) {
        if e.error_len().is_none() {
            cut = cut.get(..e.valid_up_to()).unwrap_or(cut);
        }
    }
    // Each byte that is not UTF-8 becomes U+FFFD (three bytes): cut again after the conversion,
    // or the name grows to three times MAX_CLIENT_NAME and no longer decodes to itself.
    let mut name = String::from_utf8_lossy(cut).into_owned();
    let mut end = name.len().min(MAX_CLIENT_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(b).ok().map(IpAddr::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_typical_handshake() {
        let raw = b"d1:ei0e4:ipv44:\x7f\x00\x00\x011:md11:lt_donthavei7e11:ut_metadatai3e6:ut_pexi0ee13:metadata_sizei31235e1:pi6881e4:reqqi500e1:v13:qBittorrent/46:yourip4:\x0a\x00\x00\x01e";
        let hs = ExtendedHandshake::decode(raw).expect("decodes");
        assert_eq!(hs.id_of(UT_METADATA), Some(3));
        assert_eq!(hs.id_of(UT_PEX), None, "id 0 means disabled");
        assert_eq!(hs.m.get(UT_PEX), Some(&0), "but the entry is kept");
        assert_eq!(hs.metadata_size, Some(31235));
        assert_eq!(hs.p, Some(6881));
        assert_eq!(hs.reqq, Some(500));
        assert_eq!(hs.v.as_deref(), Some("qBittorrent/4"));
        assert_eq!(hs.yourip, Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(hs.ipv4, Some(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn out_of_range_values_are_dropped_not_fatal() {
        let raw = b"d1:md1:ai300e1:bi-1e1:ci2ee13:metadata_sizei999999999e1:pi70000e6:yourip3:abce";
        let hs = ExtendedHandshake::decode(raw).expect("decodes");
        assert_eq!(hs.m.len(), 1);
        assert_eq!(hs.id_of("c"), Some(2));
        assert_eq!((hs.metadata_size, hs.p, hs.yourip), (None, None, None));
    }

    #[test]
    fn malformed_handshakes_are_errors() {
        for raw in [
            &b""[..],
            b"le",
            b"d1:mi1ee",
            b"d1:md",
            b"d1:pi1e1:mdee", // unsorted keys
            b"d1:mdeexyz",    // trailing bytes
        ] {
            assert!(ExtendedHandshake::decode(raw).is_err(), "{raw:?}");
        }
        let nested = |depth: usize| {
            let mut raw = b"d1:x".to_vec();
            raw.resize(raw.len() + depth, b'l');
            raw.resize(raw.len() + depth + 1, b'e');
            raw
        };
        assert!(ExtendedHandshake::decode(&nested(MAX_DEPTH - 2)).is_ok());
        assert!(ExtendedHandshake::decode(&nested(MAX_DEPTH)).is_err());
        let mut many = b"d1:md".to_vec();
        for i in 0..=MAX_EXTENSIONS {
            many.extend_from_slice(format!("3:{i:03}i1e").as_bytes());
        }
        many.extend_from_slice(b"ee");
        assert!(ExtendedHandshake::decode(&many).is_err());
    }

    #[test]
    fn long_client_names_are_cut_on_a_character_boundary() {
        // 1 + 2k bytes: the cut at MAX_CLIENT_NAME falls inside an "é".
        let name = format!("a{}", "é".repeat(MAX_CLIENT_NAME));
        let hs = ExtendedHandshake {
            v: Some(name),
            ..Default::default()
        };
        let v = ExtendedHandshake::decode(&hs.encode()).expect("decodes").v;
        assert_eq!(v, Some(format!("a{}", "é".repeat(MAX_CLIENT_NAME / 2 - 1))));
    }

    /// A name of bytes that are not UTF-8 grew threefold in the lossy conversion, past
    /// MAX_CLIENT_NAME, and decoded to something else once encoded (the invariant the
    /// `peer_extension` fuzz target checks; input in fuzz/regressions/peer_extension/).
    #[test]
    fn client_names_that_are_not_utf8_stay_within_the_cap() {
        let mut raw = b"d1:v100:".to_vec();
        raw.extend([0xff; 100]);
        raw.push(b'e');
        let hs = ExtendedHandshake::decode(&raw).expect("decodes");
        let v = hs.v.clone().expect("a name");
        assert!(
            v.len() <= MAX_CLIENT_NAME && v.starts_with('\u{fffd}'),
            "{} bytes",
            v.len()
        );
        assert_eq!(ExtendedHandshake::decode(&hs.encode()), Ok(hs));
    }

    fn arb_handshake() -> impl Strategy<Value = ExtendedHandshake> {
        (
            proptest::collection::btree_map("[a-z_]{1,16}", any::<u8>(), 0..6),
            proptest::option::of("[ -~]{0,40}"),
            proptest::option::of(1u16..),
            proptest::option::of(any::<u32>()),
            proptest::option::of(1..=METADATA_MAX_SIZE),
            proptest::option::of(any::<IpAddr>()),
            proptest::option::of(any::<Ipv4Addr>()),
            proptest::option::of(any::<Ipv6Addr>()),
        )
            .prop_map(|(m, v, p, reqq, metadata_size, yourip, ipv4, ipv6)| {
                ExtendedHandshake {
                    m,
                    v,
                    p,
                    reqq,
                    metadata_size,
                    yourip,
                    ipv4,
                    ipv6,
                }
            })
    }

    proptest! {
        #![proptest_config(crate::proptest_config())]

        #[test]
        fn proptest_round_trip(hs in arb_handshake()) {
            prop_assert_eq!(ExtendedHandshake::decode(&hs.encode())?, hs);
        }

        #[test]
        fn proptest_random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ExtendedHandshake::decode(&input);
        }

        #[test]
        fn proptest_mutated_handshakes_never_panic(
            hs in arb_handshake(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut raw = hs.encode().to_vec();
            for (at, byte) in flips {
                let i = at.index(raw.len());
                if let Some(b) = raw.get_mut(i) {
                    *b ^= byte;
                }
            }
            if let Ok(decoded) = ExtendedHandshake::decode(&raw) {
                prop_assert!(decoded.m.len() <= MAX_EXTENSIONS);
                prop_assert!(decoded.v.map_or(0, |v| v.chars().count()) <= MAX_CLIENT_NAME);
            }
        }
    }
}
