//! Where a torrent's bytes live: the mapping of pieces onto files under the save directory, and
//! positional reads and writes across file boundaries. Blocking code, run only on disk-pool
//! threads. Owns no file handles itself: they come from the pool's [`FileCache`].
//!
//! Safety of paths: metainfo validation already rejects `..`, absolute paths and odd elements.
//! Here we also refuse to follow a symlink planted inside the save directory, so a torrent can
//! never write outside it.
//!
//! Skipped files are not created. A skipped file that does not exist is *parted*: the bytes of
//! it that wanted pieces carry (a piece straddling it and a wanted file) go to the torrent's
//! parts file, `<save_dir>/.<info-hash>.parts` ([`PartsFile`]), and are read back from there
//! to hash and to seed those pieces. Un-skipping moves them into the real file. A skipped file
//! that already exists (it had data before it was skipped) stays where it is and is used as
//! before. The torrent says which files are skipped with [`Storage::set_skipped`]; a torrent
//! with no parted file takes the same path per piece as before parts existed, after one
//! relaxed atomic load.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use swarm_wire::{Info, Metainfo};

use crate::file_cache::FileCache;
use crate::parts_file::PartsFile;

/// A verified piece goes to its file in writes of at most this many bytes. The page cache sizes
/// a new folio by the write that creates it (ext4 and xfs have large folios): one 256 KiB write
/// asks for an order-6 allocation, which the kernel takes from its buddy lists, while folios of
/// order 3 (32 KiB) and below come from the per-CPU lists that the network stack refills at the
/// rate we receive. On a VM whose free memory the host reclaims, the first touch of those
/// high-order pages is what a many-source download spent most of its CPU on: the copy into the
/// page cache took 3.3 CPU-s per GiB in whole-piece writes, and 32 KiB parts halved the wall time
/// of that benchmark (docs/benchmarks.md). Eight syscalls instead of one per 256 KiB piece cost
/// under 0.1 CPU-s per GiB.
const WRITE_PART: usize = 32 * 1024;

/// The `info` of a shared [`Metainfo`].
#[derive(Clone, Debug)]
pub struct SharedInfo(Arc<Metainfo>);

impl std::ops::Deref for SharedInfo {
    type Target = Info;

    fn deref(&self) -> &Info {
        &self.0.info
    }
}

/// One torrent's payload on disk. Cheap to share (`Arc`) with disk jobs.
#[derive(Debug)]
pub struct Storage {
    /// Unique per torrent instance, keys the open-file cache.
    pub id: u64,
    pub save_dir: PathBuf,
    /// The torrent's info dictionary (`storage.info.piece_len(…)`), shared with the metainfo
    /// rather than copied: its piece hashes are 20 bytes a piece.
    pub info: SharedInfo,
    paths: Vec<PathBuf>,
    /// Writes of one torrent go one at a time: two threads writing the same file only spin on
    /// its inode lock in the kernel (measured); hashing still runs in parallel.
    write_lock: std::sync::Mutex<()>,
    /// Some file is parted: reads and writes must look at `parts`. Only changes under both
    /// `write_lock` and `parts`' write lock.
    any_parted: AtomicBool,
    parts: RwLock<Parts>,
}

/// Which files are parted, and the parts file (opened on first use).
#[derive(Debug)]
struct Parts {
    parted: Vec<bool>,
    file: Option<PartsFile>,
}

impl Storage {
    pub fn new(id: u64, save_dir: PathBuf, meta: Arc<Metainfo>) -> Self {
        let info = SharedInfo(meta);
        let paths = info
            .files
            .iter()
            .map(|f| {
                let mut p = save_dir.clone();
                if !info.single_file {
                    p.push(&info.name);
                }
                for part in &f.path {
                    p.push(part);
                }
                p
            })
            .collect();
        let n = info.files.len();
        Storage {
            id,
            save_dir,
            info,
            paths,
            write_lock: std::sync::Mutex::new(()),
            any_parted: AtomicBool::new(false),
            parts: RwLock::new(Parts {
                parted: vec![false; n],
                file: None,
            }),
        }
    }

    pub fn path(&self, file_index: usize) -> &Path {
        &self.paths[file_index]
    }

    pub fn num_files(&self) -> usize {
        self.paths.len()
    }

    /// Writes a whole verified piece.
    pub fn write_piece(&self, cache: &FileCache, index: u32, data: &[u8]) -> io::Result<()> {
        let _one_at_a_time = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts = self
            .any_parted
            .load(Ordering::Relaxed)
            .then(|| self.parts_mut());
        let mut done = 0usize;
        for span in self.info.spans(index, 0, data.len() as u32) {
            let chunk = &data[done..done + span.len as usize];
            let in_piece = done as u32;
            done += span.len as usize;
            if self.info.files[span.file_index].pad {
                continue;
            }
            if let Some(parts) = parts.as_mut().filter(|p| p.parted[span.file_index]) {
                self.parts_file(parts)?.write(index, in_piece, chunk)?;
                continue;
            }
            let path = &self.paths[span.file_index];
            let file = cache
                .get((self.id, span.file_index), true, || {
                    self.open(span.file_index, true)
                })
                .map_err(|e| at(path, e))?;
            let mut offset = span.file_offset;
            for part in chunk.chunks(WRITE_PART) {
                file.write_all_at(part, offset).map_err(|e| at(path, e))?;
                offset += part.len() as u64;
            }
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `begin` inside piece `index`. Padding reads as zeros.
    pub fn read(
        &self,
        cache: &FileCache,
        index: u32,
        begin: u32,
        buf: &mut [u8],
    ) -> io::Result<()> {
        let parts = self
            .any_parted
            .load(Ordering::Relaxed)
            .then(|| self.parts_ref());
        let mut done = 0usize;
        for span in self.info.spans(index, begin, buf.len() as u32) {
            let chunk = &mut buf[done..done + span.len as usize];
            let in_piece = begin + done as u32;
            done += span.len as usize;
            if self.info.files[span.file_index].pad {
                chunk.fill(0);
                continue;
            }
            if let Some(parts) = parts.as_ref().filter(|p| p.parted[span.file_index]) {
                match &parts.file {
                    Some(f) => f.read(index, in_piece, chunk)?,
                    None => return Err(not_in_parts(index)),
                }
                continue;
            }
            let path = &self.paths[span.file_index];
            let file = cache
                .get((self.id, span.file_index), false, || {
                    self.open(span.file_index, false)
                })
                .map_err(|e| at(path, e))?;
            file.read_exact_at(chunk, span.file_offset)
                .map_err(|e| at(path, e))?;
        }
        if done != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "read past the end of the torrent",
            ));
        }
        Ok(())
    }

    /// Whether every byte piece `index` needs exists on disk (files present and long enough):
    /// a cheap test that lets the initial check skip pieces that cannot be there.
    pub fn piece_present(&self, index: u32) -> bool {
        let len = self.info.piece_len(index);
        let parts = self
            .any_parted
            .load(Ordering::Relaxed)
            .then(|| self.parts_ref());
        self.info.spans(index, 0, len).iter().all(|s| {
            if let Some(parts) = parts.as_ref().filter(|p| p.parted[s.file_index]) {
                return parts.file.as_ref().is_some_and(|f| f.has(index));
            }
            self.info.files[s.file_index].pad
                || std::fs::symlink_metadata(&self.paths[s.file_index])
                    .is_ok_and(|m| m.is_file() && m.len() >= s.file_offset + s.len)
        })
    }

    /// File sizes for a check to decide which pieces to hash: a parted file counts as whole
    /// (whether its pieces' bytes are in the parts file is [`Storage::piece_present`]'s to say).
    pub fn sizes_for_check(&self) -> Vec<u64> {
        let parts = self.parts_ref();
        self.file_stats()
            .iter()
            .zip(self.info.files.iter().zip(&parts.parted))
            .map(|(stat, (f, &parted))| {
                if parted {
                    f.length
                } else {
                    stat.map_or(0, |(len, _)| len)
                }
            })
            .collect()
    }

    /// Where the bytes of parted files go.
    pub fn parts_path(&self) -> PathBuf {
        self.save_dir
            .join(format!(".{}.parts", self.info.0.info_hash.to_hex()))
    }

    /// Which files the user skipped (`skipped[i]` for file `i`; missing entries are wanted).
    /// A skipped file that does not exist becomes parted; a parted file no longer skipped gets
    /// its bytes from the parts file and is created. Pieces no parted file needs any more leave
    /// the parts file, which is deleted once empty. On an error the files concerned stay as
    /// they were (their bytes are not lost).
    pub fn set_skipped(&self, skipped: &[bool]) -> io::Result<()> {
        let _one_at_a_time = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts = self.parts_mut();
        let mut result = Ok(());
        for (i, f) in self.info.files.iter().enumerate() {
            let skip = skipped.get(i).copied().unwrap_or(false) && !f.pad && f.length > 0;
            if skip && !parts.parted[i] {
                parts.parted[i] = std::fs::symlink_metadata(&self.paths[i]).is_err();
            } else if !skip && parts.parted[i] {
                match self.unpart(&mut parts, i) {
                    Ok(()) => parts.parted[i] = false,
                    Err(e) => result = result.and(Err(e)),
                }
            }
        }
        let any = parts.parted.iter().any(|&p| p);
        self.any_parted.store(any, Ordering::Relaxed);
        if any || self.parts_path().exists() {
            result = result.and(self.drop_unneeded_parts(&mut parts));
        }
        result
    }

    /// Moves the bytes of file `i` held in the parts file into the file itself, creating it.
    fn unpart(&self, parts: &mut Parts, i: usize) -> io::Result<()> {
        let file = self.open(i, true).map_err(|e| at(&self.paths[i], e))?;
        let Some(held) = self.existing_parts_file(parts)? else {
            return Ok(());
        };
        let mut buf = Vec::new();
        for piece in held.pieces() {
            let mut in_piece = 0u32;
            for span in self.info.spans(piece, 0, self.info.piece_len(piece)) {
                if span.file_index == i {
                    buf.resize(span.len as usize, 0);
                    held.read(piece, in_piece, &mut buf)?;
                    file.write_all_at(&buf, span.file_offset)
                        .map_err(|e| at(&self.paths[i], e))?;
                }
                in_piece += span.len as u32;
            }
        }
        Ok(())
    }

    /// Frees the pieces of the parts file that hold bytes of no parted file.
    fn drop_unneeded_parts(&self, parts: &mut Parts) -> io::Result<()> {
        let parted = parts.parted.clone();
        let Some(held) = self.existing_parts_file(parts)? else {
            return Ok(());
        };
        for piece in held.pieces() {
            let needed = self
                .info
                .spans(piece, 0, self.info.piece_len(piece))
                .iter()
                .any(|s| parted[s.file_index]);
            if !needed {
                held.drop_piece(piece)?;
            }
        }
        Ok(())
    }

    /// The parts file, opened (read) on first use.
    fn parts_file<'a>(&self, parts: &'a mut Parts) -> io::Result<&'a mut PartsFile> {
        let file = match parts.file.take() {
            Some(f) => f,
            None => PartsFile::open(&self.parts_path(), self.info.piece_length)?,
        };
        Ok(parts.file.insert(file))
    }

    /// The parts file if there is one, on disk or open.
    fn existing_parts_file<'a>(
        &self,
        parts: &'a mut Parts,
    ) -> io::Result<Option<&'a mut PartsFile>> {
        if parts.file.is_none() && !self.parts_path().exists() {
            return Ok(None);
        }
        self.parts_file(parts).map(Some)
    }

    fn parts_ref(&self) -> RwLockReadGuard<'_, Parts> {
        self.parts.read().unwrap_or_else(|e| e.into_inner())
    }

    fn parts_mut(&self) -> RwLockWriteGuard<'_, Parts> {
        self.parts.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the payload lives: the file of a single-file torrent, the top directory of others.
    pub fn data_path(&self) -> PathBuf {
        self.save_dir.join(&self.info.name)
    }

    /// No byte of the payload is on disk: every file (padding and empty ones aside) is missing,
    /// or the save directory itself is. What an unmounted disk or a moved folder looks like, as
    /// opposed to a few files deleted.
    pub fn nothing_on_disk(&self) -> bool {
        self.paths
            .iter()
            .zip(self.info.files.iter())
            .filter(|(_, f)| !f.pad && f.length > 0)
            .all(|(p, _)| std::fs::symlink_metadata(p).is_err())
    }

    /// Sizes and modification times of the payload files (for resume records), and of the parts
    /// file after them while a file is parted: one deleted makes the next start a recheck.
    pub fn file_stats(&self) -> Vec<Option<(u64, i64)>> {
        use std::os::unix::fs::MetadataExt;
        let stat = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.len(), m.mtime()));
        let mut stats: Vec<_> = self.paths.iter().map(|p| stat(p)).collect();
        if self.any_parted.load(Ordering::Relaxed) {
            stats.push(stat(&self.parts_path()));
        }
        stats
    }

    /// Opens file `i`; for writing, creates it (and its directories) at its full length, sparse.
    /// Refuses symlinks anywhere between the save directory and the file.
    pub(crate) fn open(&self, i: usize, write: bool) -> io::Result<File> {
        let path = &self.paths[i];
        self.check_no_symlinks(path)?;
        if write {
            // The save directory is made when the torrent is added; one that is gone since is
            // an unmounted disk or a moved folder, and recreating it would fill the mount point
            // (or the wrong disk) with a second copy. Directories below it are ours to make.
            if !self.save_dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "the save directory {} is gone (is the disk mounted?)",
                        self.save_dir.display()
                    ),
                ));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
                self.check_no_symlinks(path)?;
            }
        }
        let mut opts = OpenOptions::new();
        opts.read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if write {
            opts.write(true).create(true).truncate(false);
        }
        let file = opts.open(path)?;
        if write {
            // Full length at once (sparse: no blocks are allocated). Pieces arrive in rarest-first
            // order, and a write past the end of a growing file costs the kernel far more than
            // one into a file of its final size: a 1 GiB download from four seeders spent
            // 2.4–2.7 CPU-s with growing files and 1.6–1.8 with this (3 A/B runs).
            let want = self.info.files[i].length;
            if file.metadata()?.len() < want {
                file.set_len(want)?;
            }
        }
        Ok(file)
    }

    fn check_no_symlinks(&self, path: &Path) -> io::Result<()> {
        let Ok(rel) = path.strip_prefix(&self.save_dir) else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "path outside the save directory",
            ));
        };
        let mut cur = self.save_dir.clone();
        let parts: Vec<_> = rel.components().collect();
        for part in parts.iter().take(parts.len().saturating_sub(1)) {
            cur.push(part);
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("refusing to follow symlink {}", cur.display()),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes the payload files, the parts file and the torrent's directory if it became empty.
    pub fn delete_files(&self) -> io::Result<()> {
        {
            let mut parts = self.parts_mut();
            parts.file = None;
            match std::fs::remove_file(self.parts_path()) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(at(&self.parts_path(), e))
                }
                _ => {}
            }
        }
        for p in &self.paths {
            // Never through a symlink planted inside the save directory: that would delete
            // something outside it. Such a path is left alone (and said so), the rest goes.
            if let Err(e) = self.check_no_symlinks(p) {
                tracing::warn!(file = %p.display(), "not deleted: {e}");
                continue;
            }
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                tracing::warn!(file = %p.display(), "not deleted: it is a symlink");
                continue;
            }
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !self.info.single_file {
            let top = self.save_dir.join(&self.info.name);
            // Remove now-empty directories bottom-up; non-empty ones (user files) stay.
            let mut dirs: Vec<PathBuf> = self
                .paths
                .iter()
                .filter_map(|p| p.parent().map(Path::to_path_buf))
                .collect();
            dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
            dirs.dedup();
            for d in dirs {
                let mut cur = d;
                while cur.starts_with(&top) {
                    if std::fs::remove_dir(&cur).is_err() {
                        break;
                    }
                    if !cur.pop() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Makes `dir` (and its parents) and checks that we can create files in it.
pub fn prepare_save_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".swarmd-write-test-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// What went wrong, in words, without the "(os error 13)" that doubles them.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        io::ErrorKind::NotFound => "no such file or directory".into(),
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        io::ErrorKind::StorageFull => "no space left on device".into(),
        io::ErrorKind::NotADirectory => "a part of the path is not a directory".into(),
        _ => e.to_string(),
    }
}

fn not_in_parts(index: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("piece {index} has bytes of a skipped file, and there is no parts file"),
    )
}

/// `e` with the file it is about: "writing piece 126: Permission denied" tells a user nothing.
/// Messages that already name a path (ours: a vanished save directory, a symlink) stay as they are.
/// So does a full disk: the torrent recognises its OS error (ENOSPC, which a rewrapped error no
/// longer carries) and says "no space left on device writing to DIR" itself.
fn at(path: &Path, e: io::Error) -> io::Error {
    let text = e.to_string();
    if text.contains('/') || e.raw_os_error() == Some(libc::ENOSPC) {
        return e;
    }
    io::Error::new(e.kind(), format!("{}: {text}", path.display()))
}

#[cfg(test)]
mod tests {
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
}
