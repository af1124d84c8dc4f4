use std::fs;

use super::*;

/// Deterministic, non-repeating bytes (a repeating pattern could hide an offset bug).
fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn opts(piece_length: u32) -> CreateOptions {
    CreateOptions {
        piece_length: Some(piece_length),
        trackers: vec![vec!["http://t/announce".into()]],
        ..CreateOptions::default()
    }
}

#[test]
fn auto_piece_length_aims_at_one_to_two_thousand_pieces() {
    assert_eq!(auto_piece_length(1), 16 << 10);
    assert_eq!(auto_piece_length(32 << 20), 16 << 10);
    assert_eq!(auto_piece_length((32 << 20) + 1), 32 << 10);
    assert_eq!(auto_piece_length(4 << 30), 2 << 20);
    assert_eq!(auto_piece_length(1 << 50), 16 << 20);
    for total in [100u64 << 20, 700 << 20, 3 << 30, 20 << 30] {
        let p = auto_piece_length(total);
        let n = total.div_ceil(u64::from(p));
        assert!(
            p.is_power_of_two() && (1024..=2048).contains(&n),
            "{total}: {p} → {n}"
        );
    }
}

#[test]
fn single_file_pieces_are_the_sha1_of_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.bin");
    let content = data(100_000, 1);
    fs::write(&path, &content).unwrap();
    let bytes = create_torrent(&path, &opts(32768)).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(m.info.single_file);
    assert_eq!(m.info.name, "payload.bin");
    assert_eq!(m.info.total_length, 100_000);
    let expected: Vec<[u8; 20]> = content.chunks(32768).map(|c| InfoHash::of(c).0).collect();
    assert_eq!(m.info.pieces, expected);
    assert_eq!(m.announce.as_deref(), Some("http://t/announce"));
    assert_eq!(
        m.created_by,
        Some(format!("swarmd/{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(m.creation_date, None);
    assert!(!m.info.private);
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("top");
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::create_dir_all(root.join(".hidden")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("a/b/deep.bin"), data(50_000, 2)).unwrap();
    fs::write(root.join("a.txt"), data(1234, 3)).unwrap();
    fs::write(root.join("a/z"), data(70_001, 4)).unwrap();
    fs::write(root.join(".hidden/h"), data(10, 5)).unwrap();
    fs::write(root.join("zero"), b"").unwrap();
    dir
}

#[test]
fn directory_files_sorted_by_path_bytes_hidden_included() {
    let dir = tree();
    let root = dir.path().join("top");
    let m = create_metainfo(&root, &opts(16384)).unwrap();
    let paths: Vec<String> = m.info.files.iter().map(|f| f.path.join("/")).collect();
    // `a.txt` < `a/…` because '.' (0x2e) < '/' (0x2f): strcmp order on the whole path.
    assert_eq!(
        paths,
        vec![".hidden/h", "a.txt", "a/b/deep.bin", "a/z", "zero"]
    );
    assert_eq!(m.info.name, "top");
    assert!(!m.info.single_file);
    let mut payload = Vec::new();
    for p in &paths {
        payload.extend(fs::read(root.join(p)).unwrap());
    }
    let expected: Vec<[u8; 20]> = payload.chunks(16384).map(|c| InfoHash::of(c).0).collect();
    assert_eq!(m.info.pieces, expected);
}

#[test]
fn thread_count_does_not_change_the_result() {
    let dir = tree();
    let root = dir.path().join("top");
    let one = create_torrent(
        &root,
        &CreateOptions {
            threads: 1,
            ..opts(16384)
        },
    )
    .unwrap();
    for threads in [2, 3, 7, 64] {
        let many = create_torrent(
            &root,
            &CreateOptions {
                threads,
                ..opts(16384)
            },
        )
        .unwrap();
        assert_eq!(one, many, "{threads} threads");
    }
}

#[test]
fn options_end_up_in_the_torrent() {
    let dir = tree();
    let o = CreateOptions {
        piece_length: None,
        trackers: vec![
            vec!["http://a/ann".into(), "http://b/ann".into()],
            vec!["udp://c:80".into()],
        ],
        private: true,
        comment: Some("hello".into()),
        web_seeds: vec!["http://seed/".into()],
        creation_date: Some(1_700_000_000),
        created_by: Some("me".into()),
        threads: 2,
        name: Some("renamed".into()),
    };
    let m = Metainfo::from_bytes(&create_torrent(&dir.path().join("top"), &o).unwrap()).unwrap();
    assert_eq!(m.info.name, "renamed");
    assert!(m.info.private);
    assert_eq!(m.info.piece_length, 16384);
    assert_eq!(m.announce.as_deref(), Some("http://a/ann"));
    assert_eq!(m.tracker_tiers(), o.trackers);
    assert_eq!(m.comment.as_deref(), Some("hello"));
    assert_eq!(m.url_list, o.web_seeds);
    assert_eq!(m.creation_date, Some(1_700_000_000));
    assert_eq!(m.created_by.as_deref(), Some("me"));
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_and_loops_refused() {
    use std::os::unix::fs::symlink;
    let dir = tree();
    let root = dir.path().join("top");
    let outside = dir.path().join("outside.bin");
    fs::write(&outside, data(300, 6)).unwrap();
    symlink(&outside, root.join("link.bin")).unwrap();
    let m = create_metainfo(&root, &opts(16384)).unwrap();
    let link = m
        .info
        .files
        .iter()
        .find(|f| f.path == ["link.bin"])
        .unwrap();
    assert_eq!(link.length, 300);

    symlink(&root, root.join("a/b/loop")).unwrap();
    let e = create_metainfo(&root, &opts(16384)).unwrap_err();
    assert!(matches!(e, CreateError::SymlinkLoop(_)), "{e}");
    assert!(e.to_string().contains("loop"), "{e}");
    fs::remove_file(root.join("a/b/loop")).unwrap();

    symlink(dir.path().join("missing"), root.join("dangling")).unwrap();
    let e = create_metainfo(&root, &opts(16384)).unwrap_err();
    assert!(e.to_string().contains("dangling"), "{e}");
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir_all(empty.join("sub")).unwrap();
    let e = create_metainfo(&empty, &opts(16384)).unwrap_err();
    assert!(e.to_string().contains("holds no files"), "{e}");
    fs::write(empty.join("sub/zero"), b"").unwrap();
    assert!(matches!(
        create_metainfo(&empty, &opts(16384)),
        Err(CreateError::NoData)
    ));
    fs::write(empty.join("x"), b"x").unwrap();
    for bad in [0, 1000, 8192, 1 << 27, 3 << 14] {
        let e = create_metainfo(&empty, &opts(bad)).unwrap_err();
        assert!(
            matches!(e, CreateError::BadPieceLength(p) if p == bad),
            "{e}"
        );
    }
    let missing = dir.path().join("nope");
    let e = create_metainfo(&missing, &opts(16384)).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    let bad_name = CreateOptions {
        name: Some("../x".into()),
        ..opts(16384)
    };
    assert!(matches!(
        create_metainfo(&empty, &bad_name),
        Err(CreateError::UnsafeName { .. })
    ));
    fs::write(empty.join("back\\slash"), b"x").unwrap();
    let e = create_metainfo(&empty, &opts(16384)).unwrap_err();
    assert!(e.to_string().contains("`\\` inside"), "{e}");
}

#[test]
fn name_of_dot_is_the_directory_name() {
    let dir = tree();
    let dotted = dir.path().join("top").join(".");
    let m = create_metainfo(&dotted, &opts(16384)).unwrap();
    assert_eq!(m.info.name, "top");
}
