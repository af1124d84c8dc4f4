use proptest::prelude::*;

use super::*;
use crate::bencode::{decode, encode};

/// An info dict for `files` (`(path, length)`; one file with a one-element path and `single`
/// set gives the single-file form), with the right number of (fake) piece hashes.
fn info_dict(files: &[(&[&str], u64)], piece_length: i64, single: bool) -> Dict {
    let total: u64 = files.iter().map(|f| f.1).sum();
    let count = total.div_ceil(piece_length as u64) as usize;
    let mut d = Dict::new();
    if single {
        d.insert("length", Value::Int(files[0].1 as i64));
        d.insert("name", Value::string(files[0].0[0]));
    } else {
        let list = files
            .iter()
            .map(|(path, len)| {
                let mut f = Dict::new();
                f.insert("length", Value::Int(*len as i64));
                f.insert(
                    "path",
                    Value::List(path.iter().map(|e| Value::string(e)).collect()),
                );
                Value::Dict(f)
            })
            .collect();
        d.insert("files", Value::List(list));
        d.insert("name", Value::string("top"));
    }
    d.insert("piece length", Value::Int(piece_length));
    d.insert("pieces", Value::Bytes(vec![7u8; count * 20]));
    d
}

fn torrent(info: Dict) -> Vec<u8> {
    let mut top = Dict::new();
    top.insert("announce", Value::string("http://tracker.example/announce"));
    top.insert("info", Value::Dict(info));
    encode(&Value::Dict(top))
}

fn parse_err(bytes: &[u8]) -> String {
    match Metainfo::from_bytes(bytes) {
        Ok(m) => panic!("accepted: {:?}", m.info),
        Err(e) => e.to_string(),
    }
}

fn with(mut d: Dict, key: &str, v: Value) -> Dict {
    d.insert(key, v);
    d
}

#[test]
fn single_file() {
    let info = info_dict(&[(&["a.bin"], 100_000)], 32768, true);
    let info_bytes = encode(&Value::Dict(info.clone()));
    let bytes = torrent(info);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(m.info_hash, InfoHash::of(&info_bytes));
    assert_eq!(m.info_bytes, info_bytes);
    assert!(m.info.single_file);
    assert_eq!(m.info.name, "a.bin");
    assert_eq!(m.info.total_length, 100_000);
    assert_eq!(m.info.num_pieces(), 4);
    assert_eq!(m.info.piece_len(3), 100_000 - 3 * 32768);
    assert_eq!(m.info.piece_len(4), 0);
    assert_eq!(m.info.files[0].path, vec!["a.bin".to_string()]);
    assert_eq!(
        m.tracker_tiers(),
        vec![vec!["http://tracker.example/announce".to_string()]]
    );
    assert_eq!(m.to_bytes(), bytes);
}

#[test]
fn info_hash_is_over_the_raw_bytes() {
    // An unknown key inside `info` must be hashed too, exactly as it is.
    let info = with(
        info_dict(&[(&["a"], 10)], 16384, true),
        "x-custom",
        Value::string("kept"),
    );
    let raw = encode(&Value::Dict(info.clone()));
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert_eq!(m.info_hash, InfoHash::of(&raw));
    let again = Metainfo::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn multi_file_with_padding_and_optional_keys() {
    let mut info = info_dict(
        &[
            (&["dir", "one"], 10),
            (&[".pad", "16374"], 16374),
            (&["two"], 20000),
            (&[".pad", "16374"], 16374),
            (&["empty"], 0),
        ],
        16384,
        false,
    );
    // Mark the two `.pad` entries with BEP 47's attr.
    if let Some(Value::List(files)) = info.remove(b"files") {
        let files = files
            .into_iter()
            .map(|f| match f {
                Value::Dict(mut d) => {
                    let is_pad = d
                        .get(b"path")
                        .and_then(|p| p.as_list())
                        .map(|p| p[0].as_str())
                        == Some(Some(".pad"));
                    if is_pad {
                        d.insert("attr", Value::string("p"));
                    }
                    Value::Dict(d)
                }
                other => other,
            })
            .collect();
        info.insert("files", Value::List(files));
    }
    info.insert("private", Value::Int(1));
    let mut top = Dict::new();
    top.insert("announce", Value::string("http://a/ann"));
    top.insert(
        "announce-list",
        Value::List(vec![
            Value::List(vec![Value::string("http://a/ann"), Value::string("")]),
            Value::List(vec![]),
            Value::List(vec![Value::string("udp://b:80")]),
        ]),
    );
    top.insert("comment", Value::Bytes(b"caf\xe9".to_vec()));
    top.insert("created by", Value::string("test"));
    top.insert("creation date", Value::Int(1_700_000_000));
    top.insert("info", Value::Dict(info));
    top.insert("url-list", Value::string("http://seed/"));
    let m = Metainfo::from_bytes(&encode(&Value::Dict(top))).unwrap();
    assert!(!m.info.single_file);
    assert!(m.info.private);
    assert_eq!(m.info.files.len(), 5);
    assert_eq!(m.info.files[1].offset, 10);
    assert!(m.info.files[1].pad && m.info.files[3].pad && !m.info.files[2].pad);
    assert_eq!(m.info.files[2].offset, 16384);
    assert_eq!(m.info.total_length, 10 + 16374 + 20000 + 16374);
    assert_eq!(
        m.tracker_tiers(),
        vec![
            vec!["http://a/ann".to_string()],
            vec!["udp://b:80".to_string()]
        ]
    );
    assert_eq!(m.url_list, vec!["http://seed/".to_string()]);
    assert_eq!(m.comment.as_deref(), Some("caf\u{fffd}"));
    assert_eq!(m.creation_date, Some(1_700_000_000));
    let again = Metainfo::from_bytes(&m.to_bytes()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn from_info_bytes_takes_the_trackers() {
    let raw = encode(&Value::Dict(info_dict(&[(&["x"], 5)], 16384, true)));
    let tiers = vec![vec!["http://t1".to_string(), String::new()], vec![]];
    let m = Metainfo::from_info_bytes(&raw, tiers).unwrap();
    assert_eq!(m.info_hash, InfoHash::of(&raw));
    assert_eq!(m.announce.as_deref(), Some("http://t1"));
    assert_eq!(m.tracker_tiers(), vec![vec!["http://t1".to_string()]]);
    let bytes = m.to_bytes();
    // A lone tracker goes in `announce` only, as mktorrent writes it.
    assert!(!bytes.windows(13).any(|w| w == b"announce-list"));
    assert_eq!(Metainfo::from_bytes(&bytes).unwrap().info_hash, m.info_hash);
    assert!(Metainfo::from_info_bytes(b"d4:name1:xe ", vec![]).is_err());
}

#[test]
fn refuses_unsafe_paths() {
    for (path, reason) in [
        (&["..", "etc", "passwd"][..], "`..`"),
        (&["a", ".", "b"][..], "`.`"),
        (&["", "etc", "passwd"][..], "empty path element"),
        (&["/etc/passwd"][..], "`/` inside"),
        (&["a\0b"][..], "NUL"),
    ] {
        let msg = parse_err(&torrent(info_dict(&[(path, 1)], 16384, false)));
        assert!(msg.starts_with("unsafe file path"), "{msg}");
        assert!(msg.contains(reason), "{msg} should mention {reason}");
    }
    let empty_path = info_dict(&[(&[], 1)], 16384, false);
    assert!(parse_err(&torrent(empty_path)).contains("`path` is an empty list"));
    for name in ["..", ".", "", "a/b"] {
        let info = with(
            info_dict(&[(&["a"], 1)], 16384, true),
            "name",
            Value::string(name),
        );
        let msg = parse_err(&torrent(info));
        assert!(msg.contains("invalid value for `name`"), "{msg}");
        assert!(msg.contains("not a safe file name"), "{msg}");
    }
}

/// `info_dict` with raw byte names: `name` and one `path` per file.
fn raw_info(name: &[u8], paths: &[&[&[u8]]]) -> Dict {
    let files = paths
        .iter()
        .map(|p| {
            let mut f = Dict::new();
            f.insert("length", Value::Int(1));
            let elements = p.iter().map(|e| Value::Bytes(e.to_vec())).collect();
            f.insert("path", Value::List(elements));
            Value::Dict(f)
        })
        .collect();
    let mut d = info_dict(&[(&["x"], paths.len() as u64)], 16384, false);
    d.insert("files", Value::List(files));
    d.insert("name", Value::Bytes(name.to_vec()));
    d
}

#[test]
fn legacy_encodings_and_backslashes_are_sanitized_and_the_raw_bytes_kept() {
    let info = raw_info(
        b"Caf\xe9 M\xfcller",
        &[&[b"d\xe9j\xe0", b"a\\b.txt"], &[b"plain.txt"]],
    );
    let info_bytes = encode(&Value::Dict(info.clone()));
    let bytes = torrent(info);
    let m = Metainfo::from_bytes(&bytes).unwrap();
    // The swarm is the same: the hash is over the bytes as they came, and they are kept.
    assert_eq!(m.info_hash, InfoHash::of(&info_bytes));
    assert_eq!(m.info_bytes, info_bytes);
    assert_eq!(m.info.name, "Caf%E9 M%FCller");
    assert_eq!(m.info.raw_name.as_deref(), Some(&b"Caf\xe9 M\xfcller"[..]));
    let f = &m.info.files[0];
    assert_eq!(f.path, ["d%E9j%E0", "a_b.txt"]);
    assert_eq!(
        f.raw_path,
        Some(vec![b"d\xe9j\xe0".to_vec(), b"a\\b.txt".to_vec()])
    );
    assert_eq!(m.info.files[1].raw_path, None, "a clean name keeps no copy");
    // From the info bytes alone (a ut_metadata fetch), and written back: the same.
    let alone = Metainfo::from_info_bytes(&m.info_bytes, vec![]).unwrap();
    assert_eq!((alone.info_hash, &alone.info), (m.info_hash, &m.info));
    assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap().info, m.info);
}

#[test]
fn single_file_names_are_sanitized_too() {
    let info = with(
        info_dict(&[(&["x"], 5)], 16384, true),
        "name",
        Value::Bytes(b"r\xe9sum\xe9\\v2.pdf".to_vec()),
    );
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert_eq!(m.info.name, "r%E9sum%E9_v2.pdf");
    assert_eq!(m.info.files[0].path, ["r%E9sum%E9_v2.pdf"]);
    assert_eq!(
        m.info.files[0].raw_path,
        Some(vec![b"r\xe9sum\xe9\\v2.pdf".to_vec()])
    );
}

#[test]
fn utf8_twins_are_preferred() {
    let mut info = raw_info(b"caf\xe9", &[&[b"\xe9t\xe9.txt"]]);
    info.insert("name.utf-8", Value::string("café"));
    let mut file = Dict::new();
    file.insert("length", Value::Int(1));
    file.insert(
        "path",
        Value::List(vec![Value::Bytes(b"\xe9t\xe9.txt".to_vec())]),
    );
    file.insert("path.utf-8", Value::List(vec![Value::string("été.txt")]));
    info.insert("files", Value::List(vec![Value::Dict(file)]));
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert_eq!(m.info.name, "café");
    assert_eq!(m.info.raw_name.as_deref(), Some(&b"caf\xe9"[..]));
    assert_eq!(m.info.files[0].path, ["été.txt"]);
    // Both keys valid UTF-8: the twin still wins (libtorrent's and transmission's order).
    let mut info = info_dict(&[(&["x"], 1)], 16384, true);
    info.insert("name.utf-8", Value::string("y"));
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert_eq!(
        (m.info.name.as_str(), m.info.raw_name.as_deref()),
        ("y", Some(&b"x"[..]))
    );
}

#[test]
fn names_that_collide_once_sanitized_are_refused_by_name() {
    let info = raw_info(b"top", &[&[b"a\\b"], &[b"a_b"]]);
    assert_eq!(parse_err(&torrent(info)), "duplicate file path \"a_b\"");
    // A traversal hidden behind bad bytes is still a traversal.
    let info = raw_info(b"top", &[&[b"\xff", b".."]]);
    let msg = parse_err(&torrent(info));
    assert!(msg.contains("unsafe file path \"\\\\xff/..\""), "{msg}");
}

#[test]
fn refuses_duplicate_and_conflicting_paths() {
    let dup = info_dict(&[(&["a", "b"], 1), (&["a", "b"], 2)], 16384, false);
    assert_eq!(parse_err(&torrent(dup)), "duplicate file path \"a/b\"");
    let conflict = info_dict(&[(&["a"], 1), (&["a", "b"], 2)], 16384, false);
    let msg = parse_err(&torrent(conflict));
    assert!(msg.contains("\"a\" is also used as a directory"), "{msg}");
}

#[test]
fn refuses_bad_lengths_and_pieces() {
    let base = || info_dict(&[(&["a"], 40000)], 16384, true);
    let cases: Vec<(Dict, &str)> = vec![
        (
            with(base(), "piece length", Value::Int(0)),
            "`piece length`: 0 is not positive",
        ),
        (
            with(base(), "piece length", Value::Int(-16384)),
            "-16384 is not positive",
        ),
        (
            with(base(), "piece length", Value::Int(1 << 27)),
            "larger than the 64 MiB limit",
        ),
        (
            with(base(), "piece length", Value::string("big")),
            "`piece length` has the wrong type",
        ),
        (
            with(base(), "length", Value::Int(-1)),
            "`length` is negative (-1)",
        ),
        (with(base(), "length", Value::Int(0)), "holds no data"),
        (
            with(base(), "pieces", Value::Bytes(vec![0; 41])),
            "41 is not a multiple of 20",
        ),
        (
            with(base(), "pieces", Value::Bytes(vec![0; 40])),
            "holds 2 hashes but 40000 bytes in pieces of 16384 need 3",
        ),
        (with(base(), "files", Value::List(vec![])), "both `length`"),
        (
            with(
                info_dict(&[(&["a"], 1)], 16384, false),
                "files",
                Value::List(vec![]),
            ),
            "the file list is empty",
        ),
        (
            with(
                info_dict(&[(&["a"], 1)], 16384, false),
                "files",
                Value::List(vec![Value::Int(3)]),
            ),
            "file #0 in `files`: expected a dictionary, found integer",
        ),
    ];
    for (info, expected) in cases {
        let msg = parse_err(&torrent(info));
        assert!(
            msg.contains(expected),
            "{msg:?} should contain {expected:?}"
        );
    }
    let mut no_len = base();
    no_len.remove(b"length");
    assert_eq!(
        parse_err(&torrent(no_len)),
        "missing key `length` or `files`"
    );
    // Lengths whose sum overflows.
    let huge = info_dict(&[(&["a"], 1), (&["b"], 1)], 16384, false);
    let files = Value::List(vec![
        Value::Dict(
            [
                ("length", Value::Int(i64::MAX)),
                ("path", Value::List(vec![Value::string("a")])),
            ]
            .into_iter()
            .collect(),
        ),
        Value::Dict(
            [
                ("length", Value::Int(i64::MAX)),
                ("path", Value::List(vec![Value::string("b")])),
            ]
            .into_iter()
            .collect(),
        ),
        Value::Dict(
            [
                ("length", Value::Int(i64::MAX)),
                ("path", Value::List(vec![Value::string("c")])),
            ]
            .into_iter()
            .collect(),
        ),
    ]);
    let msg = parse_err(&torrent(with(huge, "files", files)));
    assert!(msg.contains("does not fit in 64 bits"), "{msg}");
}

#[test]
fn refuses_bad_top_level() {
    assert_eq!(parse_err(b"de"), "missing key `info`");
    assert!(parse_err(b"d4:infoi1ee").contains("`info` has the wrong type"));
    assert!(parse_err(b"li1ee").contains("expected a dictionary at the top level"));
    let good = torrent(info_dict(&[(&["a"], 1)], 16384, true));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(parse_err(&trailing).contains("trailing garbage"));
    assert!(parse_err(&good[..good.len() - 1]).starts_with("not valid bencode"));
    let mut top = decode(&good, crate::bencode::Limits::TORRENT).unwrap();
    if let Value::Dict(d) = &mut top {
        d.insert("announce-list", Value::Int(1));
    }
    assert!(parse_err(&encode(&top)).contains("`announce-list` has the wrong type"));
}

#[test]
fn spans_cross_files() {
    let info = info_dict(
        &[(&["a"], 10), (&["z0"], 0), (&["b"], 30), (&["c"], 5)],
        16,
        false,
    );
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    let i = &m.info;
    let span = |file_index, file_offset, len| FileSpan {
        file_index,
        file_offset,
        len,
    };
    // Piece 0: 10 bytes of a, skip the empty z0, 6 bytes of b.
    assert_eq!(i.spans(0, 0, 16), vec![span(0, 0, 10), span(2, 0, 6)]);
    assert_eq!(i.spans(0, 10, 16), vec![span(2, 0, 6)]);
    assert_eq!(i.spans(1, 0, 16), vec![span(2, 6, 16)]);
    // The last piece is 13 bytes; a longer request is cut there.
    assert_eq!(i.piece_len(2), 13);
    assert_eq!(i.spans(2, 0, 16), vec![span(2, 22, 8), span(3, 0, 5)]);
    assert_eq!(i.spans(2, 12, 1), vec![span(3, 4, 1)]);
    assert!(i.spans(2, 13, 1).is_empty());
    assert!(i.spans(3, 0, 16).is_empty());
    assert!(i.spans(u32::MAX, u32::MAX, u32::MAX).is_empty());
}

prop_compose! {
    fn arb_info()(
        files in proptest::collection::vec((0u64..70_000, any::<bool>()), 1..8),
        piece_shift in 14u32..17,
        single in any::<bool>(),
        private in any::<bool>(),
    ) -> Dict {
        let names: Vec<String> = (0..files.len()).map(|i| format!("f{i}")).collect();
        let mut files: Vec<(Vec<&str>, u64)> = files
            .iter()
            .zip(&names)
            .map(|((len, nested), name)| {
                let path = if *nested { vec!["d", name.as_str()] } else { vec![name.as_str()] };
                (path, *len)
            })
            .collect();
        if files.iter().all(|f| f.1 == 0) {
            files[0].1 = 1;
        }
        let single = single && files.len() == 1;
        let refs: Vec<(&[&str], u64)> = files.iter().map(|(p, l)| (p.as_slice(), *l)).collect();
        let mut d = info_dict(&refs, 1 << piece_shift, single);
        if private {
            d.insert("private", Value::Int(1));
        }
        d
    }
}

proptest! {
    #![proptest_config(crate::proptest_config())]

    #[test]
    fn proptest_metainfo_round_trip(info in arb_info(), comment in proptest::option::of(".{0,20}")) {
        let mut top = Dict::new();
        top.insert("announce", Value::string("http://t/a"));
        if let Some(c) = &comment {
            top.insert("comment", Value::string(c));
        }
        top.insert("info", Value::Dict(info));
        let bytes = encode(&Value::Dict(top));
        let m = Metainfo::from_bytes(&bytes).unwrap();
        prop_assert_eq!(m.to_bytes(), bytes);
        prop_assert_eq!(Metainfo::from_bytes(&m.to_bytes()).unwrap(), m.clone());

        // Every piece is covered exactly by its spans, in payload order.
        let i = &m.info;
        let mut expect_pos = 0u64;
        for p in 0..i.num_pieces() {
            let spans = i.spans(p, 0, i.piece_length);
            let sum: u64 = spans.iter().map(|s| s.len).sum();
            prop_assert_eq!(sum, u64::from(i.piece_len(p)));
            for s in spans {
                let f = &i.files[s.file_index];
                prop_assert!(s.len > 0 && s.file_offset + s.len <= f.length);
                prop_assert_eq!(f.offset + s.file_offset, expect_pos);
                expect_pos += s.len;
            }
        }
        prop_assert_eq!(expect_pos, i.total_length);
    }

    #[test]
    fn proptest_mutated_torrents_never_panic(
        info in arb_info(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let bytes = crate::bencode::tests::mutate(torrent(info), &edits);
        if let Ok(m) = Metainfo::from_bytes(&bytes) {
            // Whatever got through is consistent.
            prop_assert_eq!(m.info_hash, InfoHash::of(&m.info_bytes));
            prop_assert!(decode(&m.info_bytes, crate::bencode::Limits::TORRENT).is_ok());
            prop_assert_eq!(
                m.info.total_length.div_ceil(u64::from(m.info.piece_length)),
                u64::from(m.info.num_pieces())
            );
        }
        let _ = Metainfo::from_info_bytes(&bytes, vec![]);
    }

    #[test]
    fn proptest_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::from_bytes(&bytes);
        let _ = Metainfo::from_info_bytes(&bytes, vec![]);
    }
}
