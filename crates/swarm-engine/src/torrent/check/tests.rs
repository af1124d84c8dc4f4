use swarm_wire::metainfo::FileEntry;

use super::*;

/// Pieces of 4 bytes over files `a` (6 bytes) and `b` (5 bytes): piece 0 is in `a`, piece 1
/// across both, piece 2 in `b`. `b_pad`: `b` is a BEP 47 padding file.
fn info(b_pad: bool) -> Info {
    let file = |name: &str, length, offset, pad| FileEntry {
        path: vec![name.to_string()],
        raw_path: None,
        length,
        offset,
        pad,
    };
    Info {
        name: "t".into(),
        raw_name: None,
        piece_length: 4,
        pieces: vec![[0; 20]; 3],
        files: vec![file("a", 6, 0, false), file("b", 5, 6, b_pad)],
        total_length: 11,
        private: false,
        single_file: false,
    }
}

/// Pieces beyond the end of their files on disk are missing without being read.
#[test]
fn pieces_not_on_disk_are_not_hashed() {
    let info = info(false);
    let mut c = Checking::new(3, vec![6, 0]);
    assert_eq!(c.step(&info, 4), CheckStep::Hash(0));
    assert_eq!(c.step(&info, 4), CheckStep::Wait);
    assert!((c.progress() - 2.0 / 3.0).abs() < 1e-9);
    c.hashed(0, true);
    assert_eq!(c.step(&info, 4), CheckStep::Done);
    let have = c.into_have();
    assert_eq!(have.iter_ones().collect::<Vec<_>>(), vec![0]);
}

/// At most `limit` hashes in flight; a bad piece is not had.
#[test]
fn hashes_in_flight_are_bounded() {
    let info = info(false);
    let mut c = Checking::new(3, vec![6, 5]);
    assert_eq!(c.step(&info, 2), CheckStep::Hash(0));
    assert_eq!(c.step(&info, 2), CheckStep::Hash(1));
    assert_eq!(c.step(&info, 2), CheckStep::Wait);
    c.hashed(1, false);
    assert_eq!(c.step(&info, 2), CheckStep::Hash(2));
    c.hashed(0, true);
    c.hashed(2, true);
    assert_eq!(c.step(&info, 2), CheckStep::Done);
    assert_eq!(c.into_have().iter_ones().collect::<Vec<_>>(), vec![0, 2]);
}

/// Padding files are never on disk, and never make a piece missing.
#[test]
fn padding_files_count_as_present() {
    let info = info(true);
    let mut c = Checking::new(3, vec![6, 0]);
    assert_eq!(c.step(&info, 4), CheckStep::Hash(0));
    assert_eq!(c.step(&info, 4), CheckStep::Hash(1));
    assert_eq!(c.step(&info, 4), CheckStep::Hash(2));
}
