use proptest::prelude::*;

use super::*;

const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

fn err(uri: &str) -> String {
    match Magnet::parse(uri) {
        Ok(m) => panic!("{uri} parsed to {m:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_a_full_magnet() {
    let uri = format!(
        "magnet:?xt=urn:btih:{}&dn=Some+File%20Name&tr=http%3A%2F%2Ft1%2Fann&tr.1=udp://t2:80\
         &tr=http%3A%2F%2Ft1%2Fann&x.pe=10.0.0.1:6881&x.pe=[::1]:51413&x.pe=peer.example:7000\
         &so=0,2,4-6&xl=123&ws=http://ignored",
        HEX.to_uppercase()
    );
    let m = Magnet::parse(&uri).unwrap();
    assert_eq!(m.info_hash.to_hex(), HEX);
    assert_eq!(m.display_name.as_deref(), Some("Some File Name"));
    assert_eq!(m.name(), "Some File Name");
    assert_eq!(m.trackers, vec!["http://t1/ann", "udp://t2:80"]);
    assert_eq!(
        m.peers,
        vec![
            "10.0.0.1:6881".parse::<SocketAddr>().unwrap(),
            "[::1]:51413".parse().unwrap()
        ]
    );
    assert_eq!(m.select_only, vec![0, 2, 4, 5, 6]);
    let again = Magnet::parse(&m.to_uri()).unwrap();
    assert_eq!(again, m);
    assert!(m.to_uri().contains("&so=0,2,4-6"));
}

#[test]
fn base32_hashes_and_case() {
    let hash = InfoHash::from_hex(HEX).unwrap();
    let b32 = data_encoding::BASE32.encode(hash.as_bytes());
    assert_eq!(b32.len(), 32);
    let m = Magnet::parse(&format!("MAGNET:?xt=urn:btih:{}", b32.to_lowercase())).unwrap();
    assert_eq!(m.info_hash, hash);
    assert_eq!(m.display_name, None);
    assert_eq!(
        m.name(),
        HEX,
        "without a dn, a magnet is called by its info-hash"
    );
    assert!(m.trackers.is_empty());
    // The same hash twice is fine; `xt.1` style too; other URNs are ignored.
    let uri = format!("magnet:?xt.1=urn:btih:{HEX}&xt.2=urn:btih:{b32}&xt=urn:btmh:1220abcd");
    assert_eq!(Magnet::parse(&uri).unwrap().info_hash, hash);
}

#[test]
fn refusals_say_why() {
    assert!(err("http://example.com").contains("must start with `magnet:?`"));
    assert!(err("magnet:?dn=x").contains("no BitTorrent info-hash"));
    assert!(err("magnet:?xt=urn:btih:1234").contains("invalid info-hash \"1234\""));
    let bad_hex = "z".repeat(40);
    assert!(err(&format!("magnet:?xt=urn:btih:{bad_hex}")).contains("invalid info-hash"));
    let other = "0".repeat(40);
    assert!(
        err(&format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}"))
            .contains("two different info-hashes")
    );
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&dn=%zz")).contains("parameter `dn`"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&dn=%ff")).contains("parameter `dn`"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=1.2.3.4")).contains("`x.pe`"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=[::1]:99999")).contains("`x.pe`"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&so=5-2")).contains("ends before it starts"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&so=a")).contains("expected file indices"));
    assert!(err(&format!("magnet:?xt=urn:btih:{HEX}&so=0-4294967295"))
        .contains("more than 100000 files"));
    let long = format!(
        "magnet:?xt=urn:btih:{HEX}&dn={}",
        "a".repeat(MAX_MAGNET_LEN)
    );
    assert!(err(&long).contains("limit"));
}

#[test]
fn select_only_ranges_are_capped_across_parameters() {
    let uri = format!("magnet:?xt=urn:btih:{HEX}&so=0-59999&so=60000-100000");
    assert!(Magnet::parse(&uri).is_err());
    let ok = format!("magnet:?xt=urn:btih:{HEX}&so=0-59999&so=0-99999");
    assert_eq!(Magnet::parse(&ok).unwrap().select_only.len(), 100_000);
}

proptest! {
    #![proptest_config(crate::proptest_config())]

    #[test]
    fn proptest_magnet_round_trip(
        hash in any::<[u8; 20]>(),
        dn in proptest::option::of("\\PC{0,30}"),
        trackers in proptest::collection::vec("[a-z]{1,8}://[a-z0-9.]{1,12}(:[0-9]{1,5})?/[ -~]{0,10}", 0..4),
        peers in proptest::collection::vec(any::<SocketAddr>(), 0..4),
        so in proptest::collection::btree_set(0u32..5000, 0..20),
    ) {
        let mut trackers = trackers;
        trackers.dedup();
        let mut unique_trackers = Vec::new();
        for t in trackers {
            if !unique_trackers.contains(&t) {
                unique_trackers.push(t);
            }
        }
        let mut unique_peers = Vec::new();
        for p in peers {
            // A scoped IPv6 address does not survive text form; neither do flow labels.
            let p = match p {
                SocketAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0)),
                v4 => v4,
            };
            if !unique_peers.contains(&p) {
                unique_peers.push(p);
            }
        }
        let m = Magnet {
            info_hash: InfoHash(hash),
            display_name: dn,
            trackers: unique_trackers,
            peers: unique_peers,
            select_only: so.into_iter().collect(),
        };
        prop_assert_eq!(Magnet::parse(&m.to_uri()), Ok(m));
    }

    #[test]
    fn proptest_arbitrary_strings_never_panic(s in "\\PC{0,200}", tail in "[a-z.=&%0-9:\\[\\]-]{0,80}") {
        let _ = Magnet::parse(&s);
        let _ = Magnet::parse(&format!("magnet:?{s}"));
        let _ = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&{tail}"));
    }
}

/// `so` ranges of many parameters are merged before they are expanded (they were expanded and
/// sorted after each parameter, which let a 64 KiB link run for minutes: the `magnet` fuzz
/// target's input in fuzz/regressions/magnet/ replays it under libFuzzer's timeout).
#[test]
fn select_only_ranges_of_many_parameters_merge() {
    let mut uri = format!("magnet:?xt=urn:btih:{HEX}");
    for _ in 0..1000 {
        uri.push_str("&so=0-99999");
    }
    assert_eq!(Magnet::parse(&uri).unwrap().select_only.len(), 100_000);
    let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=5,1&so=1,0-2,7-6")).unwrap_err();
    assert!(matches!(m, MagnetError::BadSelectOnly { .. }));
    let m = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{HEX}&so=5,1&so=1,0-2,4294967295"
    ))
    .unwrap();
    assert_eq!(m.select_only, vec![0, 1, 2, 5, 4294967295]);
}
