//! `.torrent` files (v1): `Metainfo::from_bytes`, and `from_info_bytes` as a ut_metadata fetch
//! ends with.
//!
//! Invariants: a metainfo that parses has an info-hash equal to the SHA-1 of its raw info bytes,
//! and those bytes are a slice of the input; parsing the info bytes alone gives the same info and
//! hash; writing it back and parsing again keeps the hash and the fields; the piece/file layout
//! adds up (file lengths sum to the total, pieces cover it, every piece's spans cover the piece).

use swarm_wire::Metainfo;

fn sha1(bytes: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(bytes).digest().bytes()
}

fn check_layout(m: &Metainfo) {
    let info = &m.info;
    let sum: u64 = info.files.iter().map(|f| f.length).sum();
    assert_eq!(sum, info.total_length, "file lengths do not add up");
    assert_eq!(info.num_pieces() as usize, info.pieces.len());
    let piece_len = u64::from(info.piece_length);
    let covered = piece_len * info.pieces.len() as u64;
    assert!(covered >= info.total_length && covered < info.total_length + piece_len.max(1));
    // The first and last pieces are where offset bugs show; the rest are alike.
    let n = info.num_pieces();
    for index in [0, n / 2, n.saturating_sub(1)] {
        if index >= n {
            continue;
        }
        let len = info.piece_len(index);
        let spans = info.spans(index, 0, len);
        let spanned: u64 = spans.iter().map(|s| s.len).sum();
        assert_eq!(
            spanned,
            u64::from(len),
            "spans of piece {index} do not cover it"
        );
        assert!(info.piece_hash(index).is_some());
    }
    assert!(info.piece_hash(n).is_none());
}

/// Checks one input; panics, saying which invariant broke, when it breaks one.
pub fn metainfo(data: &[u8]) {
    if let Ok(m) = Metainfo::from_bytes(data) {
        assert_eq!(
            m.info_hash.0,
            sha1(&m.info_bytes),
            "info-hash is not SHA-1(info)"
        );
        assert!(
            data.windows(m.info_bytes.len()).any(|w| w == m.info_bytes),
            "info bytes are not from the input"
        );
        check_layout(&m);
        let alone = Metainfo::from_info_bytes(&m.info_bytes, m.tracker_tiers())
            .expect("the info of a valid torrent parses alone");
        assert_eq!((alone.info_hash, &alone.info), (m.info_hash, &m.info));
        let again = Metainfo::from_bytes(&m.to_bytes()).expect("what we write parses");
        assert_eq!(again.info_hash, m.info_hash);
        assert_eq!(again.info, m.info);
        assert_eq!(again.tracker_tiers(), m.tracker_tiers());
        assert_eq!(
            (&again.comment, &again.created_by),
            (&m.comment, &m.created_by)
        );
    }
    // A ut_metadata fetch hands over bare info bytes.
    if let Ok(m) = Metainfo::from_info_bytes(data, Vec::new()) {
        assert_eq!(m.info_hash.0, sha1(data));
        check_layout(&m);
    }
}
