//! Skipped files and the parts file: which files are parted (skipped and absent), moving their
//! bytes into the real file when un-skipped, and freeing the parts file's pieces no parted file
//! needs. The routing of each read and write to the parts file is in `storage.rs`, behind one
//! relaxed load of `any_parted` (see its module header).

use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use super::{at, Parts, Storage};
use crate::parts_file::PartsFile;

impl Storage {
    /// Where the bytes of parted files go.
    pub fn parts_path(&self) -> PathBuf {
        self.save_dir()
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
                parts.parted[i] = std::fs::symlink_metadata(self.path(i)).is_err();
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
        let file = self.open(i, true).map_err(|e| at(&self.path(i), e))?;
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
                        .map_err(|e| at(&self.path(i), e))?;
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
    pub(super) fn parts_file<'a>(&self, parts: &'a mut Parts) -> io::Result<&'a mut PartsFile> {
        let file = match parts.file.take() {
            Some(f) => f,
            None => PartsFile::open(&self.parts_path(), self.info.piece_length)?,
        };
        Ok(parts.file.insert(file))
    }

    /// The parts file if there is one, on disk or open.
    pub(super) fn existing_parts_file<'a>(
        &self,
        parts: &'a mut Parts,
    ) -> io::Result<Option<&'a mut PartsFile>> {
        if parts.file.is_none() && !self.parts_path().exists() {
            return Ok(None);
        }
        self.parts_file(parts).map(Some)
    }

    pub(super) fn parts_ref(&self) -> RwLockReadGuard<'_, Parts> {
        self.parts.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn parts_mut(&self) -> RwLockWriteGuard<'_, Parts> {
        self.parts.write().unwrap_or_else(|e| e.into_inner())
    }
}
