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
use std::sync::{Arc, RwLock};

use swarm_wire::{Info, Metainfo};

use crate::file_cache::FileCache;
use crate::parts_file::PartsFile;
use crate::relocation::Relocation;

pub mod moving;
mod skipped;
#[cfg(test)]
mod tests;

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
    /// The torrent's info dictionary (`storage.info.piece_len(…)`), shared with the metainfo
    /// rather than copied: its piece hashes are 20 bytes a piece.
    pub info: SharedInfo,
    /// Each file's path below the save directory (the torrent's name first, for a multi-file
    /// torrent).
    rels: Vec<PathBuf>,
    /// Where the files are: the save directory, and while the data moves, which files are at
    /// the destination already ([`Storage::path`]). Read when a file is opened, not per block.
    place: RwLock<Place>,
    /// Writes of one torrent go one at a time: two threads writing the same file only spin on
    /// its inode lock in the kernel (measured); hashing still runs in parallel. A move takes it
    /// too, to switch a file to its new place between two writes.
    write_lock: std::sync::Mutex<()>,
    /// Per file, pieces written to it so far (in this process): a copy made without the write
    /// lock is good only if no write came in meanwhile (see `storage/moving.rs`).
    writes: Vec<std::sync::atomic::AtomicU64>,
    /// Bytes of the file being copied by a move, for its progress.
    move_copied: std::sync::atomic::AtomicU64,
    /// Some file is parted: reads and writes must look at `parts`. Only changes under both
    /// `write_lock` and `parts`' write lock.
    any_parted: AtomicBool,
    parts: RwLock<Parts>,
}

/// The save directory, and the move under way if there is one.
#[derive(Debug)]
struct Place {
    save_dir: PathBuf,
    moving: Option<Relocation>,
}

impl Place {
    /// The directory file `i` is under now.
    fn dir_of(&self, i: usize) -> &Path {
        match &self.moving {
            Some(m) if m.is_moved(i) => m.to(),
            _ => &self.save_dir,
        }
    }
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
        let rels = info
            .files
            .iter()
            .map(|f| {
                let mut p = PathBuf::new();
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
            info,
            rels,
            place: RwLock::new(Place {
                save_dir,
                moving: None,
            }),
            write_lock: std::sync::Mutex::new(()),
            writes: (0..n).map(|_| Default::default()).collect(),
            move_copied: Default::default(),
            any_parted: AtomicBool::new(false),
            parts: RwLock::new(Parts {
                parted: vec![false; n],
                file: None,
            }),
        }
    }

    /// Where file `file_index` is now.
    pub fn path(&self, file_index: usize) -> PathBuf {
        let place = self.place_ref();
        place.dir_of(file_index).join(&self.rels[file_index])
    }

    /// The directory file `file_index` is under now, and its path.
    fn located(&self, file_index: usize) -> (PathBuf, PathBuf) {
        let place = self.place_ref();
        let dir = place.dir_of(file_index);
        (dir.to_path_buf(), dir.join(&self.rels[file_index]))
    }

    /// Every file's path now.
    fn paths(&self) -> Vec<PathBuf> {
        let place = self.place_ref();
        (0..self.rels.len())
            .map(|i| place.dir_of(i).join(&self.rels[i]))
            .collect()
    }

    /// The save directory (during a move, the one the data leaves).
    pub fn save_dir(&self) -> PathBuf {
        self.place_ref().save_dir.clone()
    }

    fn place_ref(&self) -> std::sync::RwLockReadGuard<'_, Place> {
        self.place.read().unwrap_or_else(|e| e.into_inner())
    }

    fn place_mut(&self) -> std::sync::RwLockWriteGuard<'_, Place> {
        self.place.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn num_files(&self) -> usize {
        self.rels.len()
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
            let i = span.file_index;
            let file = cache
                .get((self.id, i), true, || self.open(i, true))
                .map_err(|e| at(&self.path(i), e))?;
            let mut offset = span.file_offset;
            for part in chunk.chunks(WRITE_PART) {
                file.write_all_at(part, offset)
                    .map_err(|e| at(&self.path(i), e))?;
                offset += part.len() as u64;
            }
            self.writes[i].fetch_add(1, Ordering::Relaxed);
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
            let i = span.file_index;
            let file = cache
                .get((self.id, i), false, || self.open(i, false))
                .map_err(|e| at(&self.path(i), e))?;
            file.read_exact_at(chunk, span.file_offset)
                .map_err(|e| at(&self.path(i), e))?;
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
                || std::fs::symlink_metadata(self.path(s.file_index))
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

    /// Where the payload lives: the file of a single-file torrent, the top directory of others.
    pub fn data_path(&self) -> PathBuf {
        self.save_dir().join(&self.info.name)
    }

    /// No byte of the payload is on disk: every file (padding and empty ones aside) is missing,
    /// or the save directory itself is. What an unmounted disk or a moved folder looks like, as
    /// opposed to a few files deleted.
    pub fn nothing_on_disk(&self) -> bool {
        self.paths()
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
        let mut stats: Vec<_> = self.paths().iter().map(|p| stat(p)).collect();
        if self.any_parted.load(Ordering::Relaxed) {
            stats.push(stat(&self.parts_path()));
        }
        stats
    }

    /// Opens file `i`; for writing, creates it (and its directories) at its full length, sparse.
    /// Refuses symlinks anywhere between the save directory and the file.
    pub(crate) fn open(&self, i: usize, write: bool) -> io::Result<File> {
        match self.open_at(i, write) {
            // A move switched the file to its new place between our look at the place and the
            // open (reads do not wait for a move): look again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !write => self.open_at(i, false),
            other => other,
        }
    }

    fn open_at(&self, i: usize, write: bool) -> io::Result<File> {
        let (dir, path) = self.located(i);
        let path = &path;
        check_no_symlinks(&dir, path)?;
        if write {
            // The save directory is made when the torrent is added; one that is gone since is
            // an unmounted disk or a moved folder, and recreating it would fill the mount point
            // (or the wrong disk) with a second copy. Directories below it are ours to make.
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "the save directory {} is gone (is the disk mounted?)",
                        dir.display()
                    ),
                ));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
                check_no_symlinks(&dir, path)?;
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
        for i in 0..self.rels.len() {
            let (dir, p) = self.located(i);
            let p = &p;
            // Never through a symlink planted inside the save directory: that would delete
            // something outside it. Such a path is left alone (and said so), the rest goes.
            if let Err(e) = check_no_symlinks(&dir, p) {
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
        let dirs: std::collections::BTreeSet<PathBuf> =
            (0..self.rels.len()).map(|i| self.located(i).0).collect();
        for dir in dirs {
            self.remove_empty_dirs(&dir);
        }
        Ok(())
    }

    /// Removes the torrent's now-empty directories under `dir`, bottom-up; non-empty ones (user
    /// files) stay. Nothing for a single-file torrent.
    fn remove_empty_dirs(&self, dir: &Path) {
        if self.info.single_file {
            return;
        }
        let top = dir.join(&self.info.name);
        let mut dirs: Vec<PathBuf> = self
            .rels
            .iter()
            .filter_map(|p| dir.join(p).parent().map(Path::to_path_buf))
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
}

/// Refuses a symlink anywhere between `dir` and `path` (the file itself is opened with
/// `O_NOFOLLOW`).
fn check_no_symlinks(dir: &Path, path: &Path) -> io::Result<()> {
    let Ok(rel) = path.strip_prefix(dir) else {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "path outside the save directory",
        ));
    };
    let mut cur = dir.to_path_buf();
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
