//! Unit tests of [`Storage`](super::Storage): pieces across files, errors naming their file, a
//! vanished save directory, skipped files in the parts file.

use super::*;

#[test]
fn an_io_error_names_its_file_but_a_full_disk_keeps_its_os_error() {
    let path = Path::new("/data/a.bin");
    let denied = at(path, io::Error::from_raw_os_error(libc::EACCES));
    assert!(denied.to_string().starts_with("/data/a.bin: "), "{denied}");
    let full = at(path, io::Error::from_raw_os_error(libc::ENOSPC));
    assert_eq!(full.raw_os_error(), Some(libc::ENOSPC));
}
use swarm_wire::create::{create_metainfo, CreateOptions};

/// A source tree `tree/f0, f1, …` of the given lengths, its metainfo, an empty save
/// directory with a [`Storage`] over it, and the concatenated payload.
struct Fixture {
    _src: tempfile::TempDir,
    out: tempfile::TempDir,
    meta: Arc<Metainfo>,
    storage: Storage,
    all: Vec<u8>,
}

fn fixture(lens: &[usize], piece: usize) -> Fixture {
    let src = tempfile::tempdir().unwrap();
    let root = src.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    let mut all = Vec::new();
    for (n, len) in lens.iter().enumerate() {
        let bytes: Vec<u8> = (0..*len)
            .map(|i| (i * 31 + n * 7 + i / 251) as u8)
            .collect();
        std::fs::write(root.join(format!("f{n}")), &bytes).unwrap();
        all.extend_from_slice(&bytes);
    }
    let opts = CreateOptions {
        piece_length: Some(piece as u32),
        threads: 1,
        ..CreateOptions::default()
    };
    let meta = Arc::new(create_metainfo(&root, &opts).unwrap());
    let out = tempfile::tempdir().unwrap();
    let storage = Storage::new(1, out.path().to_path_buf(), meta.clone());
    Fixture {
        _src: src,
        out,
        meta,
        storage,
        all,
    }
}

/// Pieces larger than a write part, over files whose boundaries fall inside parts, written
/// last piece first: every byte lands where it belongs.
#[test]
fn pieces_written_in_parts_land_whole() {
    let lens = [3 * WRITE_PART + 1_000, 17, 5 * WRITE_PART + 4_321];
    let piece = 4 * WRITE_PART;
    let Fixture {
        out,
        meta,
        storage,
        all,
        ..
    } = fixture(&lens, piece);
    let cache = FileCache::new(8);
    for index in (0..meta.info.num_pieces()).rev() {
        let start = index as usize * piece;
        let end = (start + piece).min(all.len());
        storage
            .write_piece(&cache, index, &all[start..end])
            .unwrap();
    }
    let mut got = Vec::new();
    for n in 0..lens.len() {
        got.extend(std::fs::read(out.path().join("tree").join(format!("f{n}"))).unwrap());
    }
    assert!(got == all, "the files differ from the source");
}

/// Files are made at their full length (sparse) by the first write into them, pieces land
/// where they belong whatever the order, and the gaps read as zeros.
#[test]
fn files_get_their_full_length_and_pieces_their_place() {
    let piece = 16 * 1024;
    let Fixture {
        out,
        meta,
        storage,
        all,
        ..
    } = fixture(&[40_000, 70_000, 10_000], piece);
    let cache = FileCache::new(8);
    let n = meta.info.num_pieces();
    let dir = out.path().join("tree");
    let full_length = |f: &str| {
        let i = meta
            .info
            .files
            .iter()
            .position(|e| e.path.last().unwrap() == f)
            .unwrap();
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert_eq!(len, meta.info.files[i].length, "{f}");
    };
    let write = |index: u32| {
        let start = index as usize * piece;
        let end = (start + piece).min(all.len());
        storage
            .write_piece(&cache, index, &all[start..end])
            .unwrap();
    };
    // Piece 2 ends f0 and begins f1: f1 is at its final length already.
    write(2);
    full_length("f0");
    full_length("f1");
    assert!(!dir.join("f2").exists(), "no piece touched f2 yet");
    write(n - 1);
    full_length("f2");
    let mut buf = vec![0u8; piece];
    storage.read(&cache, 2, 0, &mut buf).unwrap();
    assert_eq!(buf, all[2 * piece..3 * piece]);
    storage.read(&cache, 0, 0, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 0),
        "an unwritten piece reads as zeros"
    );
}

/// A save directory that vanished (an unmounted disk) is not made again by a write, and the
/// error says where and why; the data counts as "nothing on disk".
#[test]
fn a_vanished_save_directory_is_not_recreated() {
    let f = fixture(&[40_000, 30_000], 16_384);
    let cache = FileCache::new(8);
    let piece0 = f.all[..16_384].to_vec();
    f.storage.write_piece(&cache, 0, &piece0).unwrap();
    assert!(!f.storage.nothing_on_disk());
    cache.forget(f.storage.id);
    std::fs::remove_dir_all(f.out.path()).unwrap();
    assert!(f.storage.nothing_on_disk());
    let err = f.storage.write_piece(&cache, 1, &piece0).unwrap_err();
    assert!(err.to_string().contains("is the disk mounted"), "{err}");
    assert!(err.to_string().contains(&*f.out.path().to_string_lossy()));
    assert!(!f.out.path().exists(), "the save directory was made again");
}

/// An I/O error names the file it happened on.
#[test]
fn io_errors_name_the_file() {
    let f = fixture(&[40_000], 16_384);
    let cache = FileCache::new(8);
    let mut buf = vec![0u8; 100];
    let err = f.storage.read(&cache, 0, 0, &mut buf).unwrap_err();
    assert!(
        err.to_string()
            .contains(&*f.storage.path(0).to_string_lossy()),
        "{err}"
    );
}

/// The pieces of `f` that carry bytes of a file not skipped (what a download writes).
fn wanted_pieces(f: &Fixture, skipped: &[bool]) -> Vec<u32> {
    let info = &f.meta.info;
    (0..info.num_pieces())
        .filter(|&p| {
            info.spans(p, 0, info.piece_len(p))
                .iter()
                .any(|s| !skipped[s.file_index])
        })
        .collect()
}

fn write_pieces(f: &Fixture, cache: &FileCache, pieces: &[u32]) {
    let piece = f.meta.info.piece_length as usize;
    for &index in pieces {
        let start = index as usize * piece;
        let end = (start + piece).min(f.all.len());
        f.storage
            .write_piece(cache, index, &f.all[start..end])
            .unwrap();
    }
}

fn piece_reads_back(f: &Fixture, cache: &FileCache, index: u32) -> bool {
    let piece = f.meta.info.piece_length as usize;
    let start = index as usize * piece;
    let end = (start + piece).min(f.all.len());
    let mut buf = vec![0u8; end - start];
    f.storage.read(cache, index, 0, &mut buf).is_ok() && buf == f.all[start..end]
}

/// A skipped file is never created: the bytes of it that pieces straddling its neighbours
/// carry go to the parts file, from which those pieces read back whole (also for a new
/// storage after a restart). Un-skipped, the file is made with those bytes, and the parts
/// file, needed no more, is deleted.
#[test]
fn skipped_files_stay_off_disk_and_come_back_from_the_parts_file() {
    let f = fixture(&[40_000, 30_000, 20_000], 16_384);
    let cache = FileCache::new(8);
    let skipped = [false, true, false];
    f.storage.set_skipped(&skipped).unwrap();
    let wanted = wanted_pieces(&f, &skipped);
    write_pieces(&f, &cache, &wanted);
    let dir = f.out.path().join("tree");
    assert!(!dir.join("f1").exists(), "the skipped file was created");
    assert!(dir.join("f0").exists() && dir.join("f2").exists());
    let parts = f.storage.parts_path();
    assert!(parts.exists(), "no parts file at {}", parts.display());
    assert!(
        std::fs::metadata(&parts).unwrap().len() < 3 * 16_384,
        "only the pieces that straddle the skipped file have a slot"
    );
    for &p in &wanted {
        assert!(f.storage.piece_present(p), "piece {p}");
        assert!(piece_reads_back(&f, &cache, p), "piece {p}");
    }
    assert_eq!(f.storage.sizes_for_check()[1], 30_000);
    assert_eq!(
        f.storage.file_stats().len(),
        4,
        "the parts file is in the stats"
    );

    // A restart: a new storage over the same directory finds the pieces again.
    let again = Storage::new(2, f.out.path().to_path_buf(), f.meta.clone());
    again.set_skipped(&skipped).unwrap();
    for &p in &wanted {
        assert!(again.piece_present(p), "piece {p} after a restart");
    }

    f.storage.set_skipped(&[false; 3]).unwrap();
    assert!(!parts.exists(), "the parts file outlived its use");
    assert_eq!(
        std::fs::metadata(dir.join("f1")).unwrap().len(),
        30_000,
        "the un-skipped file is made at its length"
    );
    for &p in &wanted {
        assert!(
            piece_reads_back(&f, &cache, p),
            "piece {p} after un-skipping"
        );
    }
    let rest: Vec<u32> = (0..f.meta.info.num_pieces())
        .filter(|p| !wanted.contains(p))
        .collect();
    write_pieces(&f, &cache, &rest);
    let mut got = Vec::new();
    for n in 0..3 {
        got.extend(std::fs::read(dir.join(format!("f{n}"))).unwrap());
    }
    assert!(got == f.all, "the files differ from the source");
}

/// A file skipped after it was written to stays on disk and in use: no byte moves.
#[test]
fn a_skipped_file_that_exists_stays_in_use() {
    let f = fixture(&[40_000, 30_000, 20_000], 16_384);
    let cache = FileCache::new(8);
    let all: Vec<u32> = (0..f.meta.info.num_pieces()).collect();
    write_pieces(&f, &cache, &all);
    f.storage.set_skipped(&[false, true, false]).unwrap();
    assert!(!f.storage.parts_path().exists());
    write_pieces(&f, &cache, &all);
    assert!(all.iter().all(|&p| piece_reads_back(&f, &cache, p)));
    assert!(!f.storage.parts_path().exists());
}

/// Removing a torrent with its data removes its parts file too.
#[test]
fn deleting_the_files_deletes_the_parts_file() {
    let f = fixture(&[40_000, 30_000, 20_000], 16_384);
    let cache = FileCache::new(8);
    let skipped = [true, false, true];
    f.storage.set_skipped(&skipped).unwrap();
    write_pieces(&f, &cache, &wanted_pieces(&f, &skipped));
    assert!(f.storage.parts_path().exists());
    f.storage.delete_files().unwrap();
    assert!(!f.storage.parts_path().exists());
    assert!(!f.out.path().join("tree").exists());
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A move goes file by file: between steps each file reads back from wherever it is, and at
/// the end the data is only at the destination, which is the save directory, with a skipped
/// file's bytes (the parts file) there too.
#[test]
fn a_move_carries_every_file_and_the_parts_file_and_reads_go_on_meanwhile() {
    let f = fixture(&[40_000, 25_000, 30_000], 16_384);
    let cache = FileCache::new(8);
    let skipped = [false, true, false];
    f.storage.set_skipped(&skipped).unwrap();
    let pieces = wanted_pieces(&f, &skipped);
    write_pieces(&f, &cache, &pieces);
    assert!(f.storage.parts_path().exists());
    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().join("done");
    f.storage.start_move(&to).unwrap();
    assert_eq!(f.storage.moving(), Some((to.clone(), 0.0)));
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 10, "the move never finished");
        for &p in &pieces {
            assert!(
                piece_reads_back(&f, &cache, p),
                "piece {p} after {steps} steps"
            );
        }
        match f.storage.move_step(&cache).unwrap() {
            moving::MoveStep::Moved { .. } => {
                let journal = f.storage.move_journal().unwrap();
                assert_eq!(journal.to, to);
            }
            moving::MoveStep::Finished { save_dir } => {
                assert_eq!(save_dir, to);
                break;
            }
        }
    }
    assert_eq!(f.storage.save_dir(), to);
    assert!(f.storage.moving().is_none() && f.storage.move_journal().is_none());
    assert!(
        files_under(f.out.path()).is_empty(),
        "left at the source: {:?}",
        files_under(f.out.path())
    );
    let name = &f.meta.info.name;
    let parts = format!(".{}.parts", f.meta.info_hash.to_hex());
    assert_eq!(
        files_under(&to),
        [
            PathBuf::from(&parts),
            Path::new(name).join("f0"),
            Path::new(name).join("f2")
        ]
    );
    for &p in &pieces {
        assert!(piece_reads_back(&f, &cache, p), "piece {p} after the move");
    }
    // Writes go to the new place too: un-skipping makes file 1 there from the parts file.
    f.storage.set_skipped(&[false; 3]).unwrap();
    assert!(to.join(name).join("f1").exists());
}

/// A file of the torrent at the destination: refused before anything moves, naming it, and
/// the data stays readable where it is.
#[test]
fn a_move_onto_an_existing_file_is_refused_and_moves_nothing() {
    let f = fixture(&[20_000, 20_000], 16_384);
    let cache = FileCache::new(8);
    let all: Vec<u32> = (0..f.meta.info.num_pieces()).collect();
    write_pieces(&f, &cache, &all);
    let dest = tempfile::tempdir().unwrap();
    let theirs = dest.path().join(&f.meta.info.name).join("f1");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    std::fs::write(&theirs, b"not yours").unwrap();
    let err = f.storage.start_move(dest.path()).unwrap_err().to_string();
    assert!(
        err.contains(&*theirs.to_string_lossy()) && err.contains("exists already"),
        "{err}"
    );
    assert!(f.storage.moving().is_none());
    assert_eq!(std::fs::read(&theirs).unwrap(), b"not yours");
    assert_eq!(f.storage.save_dir(), f.out.path());
    assert!(all.iter().all(|&p| piece_reads_back(&f, &cache, p)));
}

/// After a crash: the journal lists file 0; file 1 reached the destination unrecorded and its
/// source is still there (a copy whose source was not deleted yet). The resumed move counts it
/// as moved, and its finish deletes the leftover.
#[test]
fn a_resumed_move_finishes_from_its_journal_and_what_is_at_the_destination() {
    let f = fixture(&[20_000, 20_000, 20_000], 16_384);
    let cache = FileCache::new(8);
    let all: Vec<u32> = (0..f.meta.info.num_pieces()).collect();
    write_pieces(&f, &cache, &all);
    let dest = tempfile::tempdir().unwrap();
    let name = &f.meta.info.name;
    let (src, dst) = (f.out.path().join(name), dest.path().join(name));
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::rename(src.join("f0"), dst.join("f0")).unwrap();
    std::fs::copy(src.join("f1"), dst.join("f1")).unwrap();
    let journal = crate::relocation::MoveJournal {
        to: dest.path().to_path_buf(),
        done: vec![0],
    };
    cache.forget(f.storage.id);
    f.storage.resume_move(&journal);
    assert_eq!(f.storage.move_journal().unwrap().done, vec![0, 1]);
    assert!(all.iter().all(|&p| piece_reads_back(&f, &cache, p)));
    assert_eq!(
        f.storage.move_step(&cache).unwrap(),
        moving::MoveStep::Moved { index: 2 }
    );
    assert!(matches!(
        f.storage.move_step(&cache).unwrap(),
        moving::MoveStep::Finished { .. }
    ));
    assert!(
        files_under(f.out.path()).is_empty(),
        "{:?}",
        files_under(f.out.path())
    );
    assert!(all.iter().all(|&p| piece_reads_back(&f, &cache, p)));
}
