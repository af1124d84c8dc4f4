//! Moving a torrent's data to another directory while it keeps trading: the disk side of a move,
//! on disk-pool threads, one step (one file) at a time. What to move next and what is done is the
//! pure [`Relocation`]'s; this carries the steps out and keeps each file's path (`Storage::path`)
//! at its source until the file is whole at the destination, then at the destination.
//!
//! A file moves with one `rename` (no replace) on the same filesystem. Across filesystems it is
//! copied under a temporary name next to its destination, synced, renamed into place, and then
//! its source is deleted: a crash at any point leaves the file whole at one place at least. The
//! copy runs without the torrent's write lock (the torrent keeps downloading and seeding); a
//! piece written to the file meanwhile makes it copy again, holding the lock. Reads go on
//! through the handles open on the source (the same bytes) until the file cache lets them go.
//! The copy keeps the file's modification time, so the resume record's sizes and times stay true.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{at, check_no_symlinks, Storage};
use crate::file_cache::FileCache;
use crate::relocation::{Method, MoveJournal, MoveRefused, Relocation, Step};

/// What one step of a move did.
#[derive(Debug, PartialEq, Eq)]
pub enum MoveStep {
    /// File `index` is at the destination now.
    Moved { index: usize },
    /// The move is done: the save directory is `save_dir` now.
    Finished { save_dir: PathBuf },
}

/// Why a move could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum MoveFailed {
    #[error("{0}")]
    Refused(#[from] MoveRefused),
    #[error("a move to {} is under way; wait for it or move there again to resume it", .0.display())]
    Busy(PathBuf),
    #[error("no move is under way")]
    NotMoving,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Storage {
    /// Starts a move to `to` (made if missing), or goes on with the one to `to` under way.
    /// Refuses a move that would overwrite a file at `to`, before anything moves.
    pub fn start_move(&self, to: &Path) -> Result<(), MoveFailed> {
        if let Some(m) = &self.place_ref().moving {
            return match m.to() == to {
                true => Ok(()),
                false => Err(MoveFailed::Busy(m.to().to_path_buf())),
            };
        }
        let from = self.save_dir();
        if to.is_absolute() && to != from {
            std::fs::create_dir_all(to).map_err(|e| at(to, e))?;
        }
        let plan = Relocation::plan(
            &from,
            to,
            &self.move_files(),
            same_filesystem(&from, to),
            exists,
        )?;
        let mut place = self.place_mut();
        if place.moving.is_none() {
            place.moving = Some(plan);
        }
        Ok(())
    }

    /// Takes back a move that a resume record says was under way: files found at the
    /// destination count as moved (see `relocation.rs`). Looks at the disk: called when the
    /// torrent is added, before anything reads its files.
    pub fn resume_move(&self, journal: &MoveJournal) {
        let from = self.save_dir();
        let same_fs = same_filesystem(&from, &journal.to);
        let r = Relocation::resume(journal, &self.move_files(), same_fs, exists);
        self.place_mut().moving = Some(r);
    }

    /// Points the torrent at `to` without moving anything (the data is there already, or is
    /// to be found there): no move may be under way.
    pub fn repoint(&self, cache: &FileCache, to: &Path) -> Result<(), MoveFailed> {
        let _one_at_a_time = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts = self.parts_mut();
        {
            let mut place = self.place_mut();
            if let Some(m) = &place.moving {
                return Err(MoveFailed::Busy(m.to().to_path_buf()));
            }
            place.save_dir = to.to_path_buf();
        }
        parts.file = None;
        cache.forget(self.id);
        Ok(())
    }

    /// The move under way: its destination and progress (0.0..=1.0).
    pub fn moving(&self) -> Option<(PathBuf, f64)> {
        let place = self.place_ref();
        let m = place.moving.as_ref()?;
        let current = self.move_copied.load(Ordering::Relaxed);
        Some((m.to().to_path_buf(), m.progress(current)))
    }

    /// What the resume record keeps of the move under way.
    pub fn move_journal(&self) -> Option<MoveJournal> {
        self.place_ref().moving.as_ref().map(Relocation::journal)
    }

    /// Carries out the next step of the move under way.
    pub fn move_step(&self, cache: &FileCache) -> Result<MoveStep, MoveFailed> {
        let (step, started) = {
            let place = self.place_ref();
            let m = place.moving.as_ref().ok_or(MoveFailed::NotMoving)?;
            (m.next(), m.progress(0) > 0.0)
        };
        match step {
            Step::File { index, method } => {
                if started {
                    // Test builds: a move that waits between files, for a crash in the middle.
                    if let Some(secs) =
                        crate::fault::value_for("disk.move_pause", Some(&self.info.0.info_hash))
                    {
                        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
                    }
                }
                self.move_file(cache, index, method)?;
                Ok(MoveStep::Moved { index })
            }
            Step::Finish => self.finish_move(cache),
        }
    }

    /// Every file's path below the save directory, length, and whether it is never on disk.
    fn move_files(&self) -> Vec<(PathBuf, u64, bool)> {
        self.rels
            .iter()
            .zip(self.info.files.iter())
            .map(|(rel, f)| (rel.clone(), f.length, f.pad))
            .collect()
    }

    fn ends(&self) -> Result<(PathBuf, PathBuf), MoveFailed> {
        let place = self.place_ref();
        let m = place.moving.as_ref().ok_or(MoveFailed::NotMoving)?;
        Ok((place.save_dir.clone(), m.to().to_path_buf()))
    }

    fn move_file(&self, cache: &FileCache, index: usize, method: Method) -> Result<(), MoveFailed> {
        let (from, to) = self.ends()?;
        let rel = &self.rels[index];
        let (src, dst) = (from.join(rel), to.join(rel));
        self.move_copied.store(0, Ordering::Relaxed);
        if std::fs::symlink_metadata(&src).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            // Never written (a skipped file): nothing to carry.
            let _w = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.mark_moved(cache, index);
            return Ok(());
        }
        check_no_symlinks(&from, &src)?;
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| at(parent, e))?;
        }
        check_no_symlinks(&to, &dst)?;
        if method == Method::Rename {
            let _w = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
            match rename_no_replace(&src, &dst) {
                Ok(()) => {
                    self.mark_moved(cache, index);
                    return Ok(());
                }
                // Another filesystem after all (a bind mount, a btrfs subvolume): copy.
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
                Err(e) => return Err(refusal_or(&dst, e)),
            }
        }
        let tmp = temporary(&dst);
        let before = self.writes[index].load(Ordering::Relaxed);
        copy_file(&src, &tmp, &self.move_copied)?;
        let w = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.writes[index].load(Ordering::Relaxed) != before {
            self.move_copied.store(0, Ordering::Relaxed);
            copy_file(&src, &tmp, &self.move_copied)?;
        }
        if let Err(e) = rename_no_replace(&tmp, &dst) {
            let _ = std::fs::remove_file(&tmp);
            return Err(refusal_or(&dst, e));
        }
        sync_dir(&dst);
        self.mark_moved(cache, index);
        drop(w);
        if let Err(e) = std::fs::remove_file(&src) {
            tracing::warn!(file = %src.display(), "moved, but the source stays: {e}");
        }
        Ok(())
    }

    /// File `index` is at its destination: paths point there, its open handle goes.
    fn mark_moved(&self, cache: &FileCache, index: usize) {
        if let Some(m) = self.place_mut().moving.as_mut() {
            m.moved(index);
        }
        cache.forget_file((self.id, index));
    }

    /// Every file is at the destination: the parts file follows, leftovers of a crash and empty
    /// directories at the source go, and the destination becomes the save directory.
    fn finish_move(&self, cache: &FileCache) -> Result<MoveStep, MoveFailed> {
        let _one_at_a_time = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut parts = self.parts_mut();
        let (from, to) = self.ends()?;
        parts.file = None;
        let parts_name = format!(".{}.parts", self.info.0.info_hash.to_hex());
        let (ps, pd) = (from.join(&parts_name), to.join(&parts_name));
        if exists(&ps) {
            if !exists(&pd) {
                move_whole(&ps, &pd)?;
            }
            let _ = std::fs::remove_file(&ps);
        }
        // A crash between a copy's rename into place and its source's deletion left the source.
        for (rel, f) in self.rels.iter().zip(self.info.files.iter()) {
            let src = from.join(rel);
            let is_file = std::fs::symlink_metadata(&src).is_ok_and(|m| m.is_file());
            if !f.pad && is_file && exists(&to.join(rel)) && check_no_symlinks(&from, &src).is_ok()
            {
                let _ = std::fs::remove_file(&src);
            }
        }
        self.remove_empty_dirs(&from);
        {
            let mut place = self.place_mut();
            place.save_dir = to.clone();
            place.moving = None;
        }
        cache.forget(self.id);
        if exists(&pd) {
            self.parts_file(&mut parts)?;
        }
        self.move_copied.store(0, Ordering::Relaxed);
        Ok(MoveStep::Finished { save_dir: to })
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Whether `a` and `b` are on one filesystem (`false` when either cannot be looked at).
fn same_filesystem(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

/// The name a copy is written under before it is renamed into place: hidden, next to it, ours.
fn temporary(dst: &Path) -> PathBuf {
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dst.with_file_name(format!(".{name}.swarmd-move"))
}

/// A rename that fails rather than replace an existing `dst` (`renameat2(RENAME_NOREPLACE)`;
/// where the filesystem cannot do that, a look first).
fn rename_no_replace(src: &Path, dst: &Path) -> io::Result<()> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (s, d) = (c(src)?, c(dst)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            s.as_ptr(),
            libc::AT_FDCWD,
            d.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if exists(dst) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(src, dst)
        }
        _ => Err(e),
    }
}

/// `e` from renaming onto `dst`: an existing file there is the move's refusal.
fn refusal_or(dst: &Path, e: io::Error) -> MoveFailed {
    if e.kind() == io::ErrorKind::AlreadyExists {
        return MoveRefused::Exists(dst.to_path_buf()).into();
    }
    at(dst, e).into()
}

/// Copies `src` to `dst` (replacing an old temporary), with `src`'s modification time, synced.
fn copy_file(src: &Path, dst: &Path, copied: &AtomicU64) -> io::Result<()> {
    let mut input = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(src)
        .map_err(|e| at(src, e))?;
    let modified = input.metadata().and_then(|m| m.modified());
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dst)
        .map_err(|e| at(dst, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).map_err(|e| at(src, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| at(dst, e))?;
        copied.fetch_add(n as u64, Ordering::Relaxed);
    }
    if let Ok(t) = modified {
        out.set_modified(t).map_err(|e| at(dst, e))?;
    }
    out.sync_all().map_err(|e| at(dst, e))
}

/// Moves one whole file (the parts file): a rename, or a copy, sync, rename and delete.
fn move_whole(src: &Path, dst: &Path) -> Result<(), MoveFailed> {
    match rename_no_replace(src, dst) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let tmp = temporary(dst);
            copy_file(src, &tmp, &AtomicU64::new(0))?;
            rename_no_replace(&tmp, dst).map_err(|e| refusal_or(dst, e))?;
            sync_dir(dst);
            let _ = std::fs::remove_file(src);
            Ok(())
        }
        Err(e) => Err(refusal_or(dst, e)),
    }
}

fn sync_dir(file: &Path) {
    if let Some(d) = file.parent().and_then(|d| File::open(d).ok()) {
        let _ = d.sync_all();
    }
}
