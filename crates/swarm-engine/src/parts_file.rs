//! The parts file — where bytes of skipped files go.
//!
//! A piece that straddles a skipped file and a wanted one must still be downloaded and hashed
//! whole, but the skipped file must not be created for its few bytes (a full-length sparse file
//! looks complete in `ls`). Those bytes go here instead, keyed by piece, as libtorrent's `.parts`
//! file does. [`crate::storage::Storage`] decides which bytes come here and owns the one
//! `PartsFile` of its torrent; this module only stores and returns bytes of pieces.
//!
//! Layout: a 16-byte header (`SWPARTS1`, the piece length as u32 LE, 4 reserved bytes), then
//! slots of `8 + piece_length` bytes. A slot starts with the piece it holds, as u64 LE
//! `piece + 1` (0: free), followed by the piece's bytes at their offsets inside the piece; only
//! the bytes of skipped files are ever written, the rest of a slot stays a hole. The index lives
//! in the slots themselves: opening reads one 8-byte header per slot (a torrent needs at most a
//! slot or two per skipped file), and there is no table that could disagree with the data.
//! A slot's data is written before its header, so a crash between the two leaves a free slot,
//! never a slot that claims bytes it does not have.
//!
//! Blocking I/O, run on disk-pool threads (and once at a torrent's start). No actix, no locks:
//! the storage serialises writers.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SWPARTS1";
const HEADER: u64 = 16;
const SLOT_HEADER: u64 = 8;

/// One torrent's parts file: which slot holds which piece, and the open file.
#[derive(Debug)]
pub struct PartsFile {
    path: PathBuf,
    piece_length: u32,
    file: Option<File>,
    /// The piece each slot holds (`None`: free).
    slots: Vec<Option<u32>>,
    by_piece: HashMap<u32, usize>,
}

impl PartsFile {
    /// The parts file at `path`, read if it exists (an empty one if not: it is made by the
    /// first write). A file that is not ours, or was made for another piece length, is an
    /// error that names it.
    pub fn open(path: &Path, piece_length: u32) -> io::Result<PartsFile> {
        let mut parts = PartsFile {
            path: path.to_path_buf(),
            piece_length,
            file: None,
            slots: Vec::new(),
            by_piece: HashMap::new(),
        };
        let file = match open_rw(path, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(parts),
            Err(e) => return Err(parts.error(e)),
        };
        let len = file.metadata().map_err(|e| parts.error(e))?.len();
        let mut header = [0u8; HEADER as usize];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| parts.invalid("too short for a parts file"))?;
        if &header[..8] != MAGIC {
            return Err(parts.invalid("not a swarmd parts file"));
        }
        let stored = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if stored != piece_length {
            return Err(parts.invalid(&format!(
                "made for pieces of {stored} bytes, the torrent's are {piece_length}"
            )));
        }
        let n = len.saturating_sub(HEADER).div_ceil(parts.slot_size());
        for slot in 0..n as usize {
            let mut word = [0u8; SLOT_HEADER as usize];
            file.read_exact_at(&mut word, parts.slot_offset(slot))
                .map_err(|e| parts.error(e))?;
            let held = match u64::from_le_bytes(word) {
                0 => None,
                p => Some(u32::try_from(p - 1).map_err(|_| parts.invalid("bad slot header"))?),
            };
            // A piece in two slots (never written so, but the file is outside our control):
            // the later one wins, the earlier one is free.
            if let Some(p) = held {
                if let Some(old) = parts.by_piece.insert(p, slot) {
                    parts.slots[old] = None;
                }
            }
            parts.slots.push(held);
        }
        parts.file = Some(file);
        Ok(parts)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether some bytes of `piece` are held here.
    pub fn has(&self, piece: u32) -> bool {
        self.by_piece.contains_key(&piece)
    }

    /// The pieces held, in no order.
    pub fn pieces(&self) -> Vec<u32> {
        self.by_piece.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_piece.is_empty()
    }

    /// Stores `data` at `offset` inside `piece`, taking a slot for the piece if it has none.
    pub fn write(&mut self, piece: u32, offset: u32, data: &[u8]) -> io::Result<()> {
        self.check_range(offset, data.len())?;
        let (slot, new) = match self.by_piece.get(&piece) {
            Some(&s) => (s, false),
            None => match self.slots.iter().position(Option::is_none) {
                Some(s) => (s, true),
                None => (self.slots.len(), true),
            },
        };
        let at = self.slot_offset(slot) + SLOT_HEADER + u64::from(offset);
        self.write_at(data, at)?;
        if new {
            self.write_at(
                &(u64::from(piece) + 1).to_le_bytes(),
                self.slot_offset(slot),
            )?;
            if slot == self.slots.len() {
                self.slots.push(Some(piece));
            } else {
                self.slots[slot] = Some(piece);
            }
            self.by_piece.insert(piece, slot);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` inside `piece`; an error if the piece is not here.
    pub fn read(&self, piece: u32, offset: u32, buf: &mut [u8]) -> io::Result<()> {
        self.check_range(offset, buf.len())?;
        let (Some(&slot), Some(file)) = (self.by_piece.get(&piece), &self.file) else {
            return Err(self.error(io::Error::new(
                io::ErrorKind::NotFound,
                format!("piece {piece} is not in the parts file"),
            )));
        };
        let at = self.slot_offset(slot) + SLOT_HEADER + u64::from(offset);
        file.read_exact_at(buf, at).map_err(|e| self.error(e))
    }

    /// Frees `piece`'s slot. Free slots at the end are cut off, and a parts file that holds
    /// nothing any more is deleted.
    pub fn drop_piece(&mut self, piece: u32) -> io::Result<()> {
        let Some(slot) = self.by_piece.remove(&piece) else {
            return Ok(());
        };
        self.slots[slot] = None;
        if self.by_piece.is_empty() {
            return self.remove();
        }
        self.write_at(&0u64.to_le_bytes(), self.slot_offset(slot))?;
        if self.slots.last() != Some(&None) {
            return Ok(());
        }
        while self.slots.last() == Some(&None) {
            self.slots.pop();
        }
        let end = self.slot_offset(self.slots.len());
        match &self.file {
            Some(file) => file.set_len(end).map_err(|e| self.error(e)),
            None => Ok(()),
        }
    }

    /// Deletes the file (a torrent removed with its data, or nothing left in it).
    pub fn remove(&mut self) -> io::Result<()> {
        self.file = None;
        self.slots.clear();
        self.by_piece.clear();
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    /// Writes `data` at `at`, making the file (with its header) if it does not exist yet.
    fn write_at(&mut self, data: &[u8], at: u64) -> io::Result<()> {
        let file = match &self.file {
            Some(file) => file,
            None => {
                let file = open_rw(&self.path, true).map_err(|e| self.error(e))?;
                if file.metadata().map_err(|e| self.error(e))?.len() < HEADER {
                    let mut header = [0u8; HEADER as usize];
                    header[..8].copy_from_slice(MAGIC);
                    header[8..12].copy_from_slice(&self.piece_length.to_le_bytes());
                    file.write_all_at(&header, 0).map_err(|e| self.error(e))?;
                }
                self.file.insert(file)
            }
        };
        file.write_all_at(data, at)
            .map_err(|e| in_parts_file(&self.path, e))
    }

    fn slot_size(&self) -> u64 {
        SLOT_HEADER + u64::from(self.piece_length)
    }

    fn slot_offset(&self, slot: usize) -> u64 {
        HEADER + slot as u64 * self.slot_size()
    }

    fn check_range(&self, offset: u32, len: usize) -> io::Result<()> {
        if u64::from(offset) + len as u64 > u64::from(self.piece_length) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} bytes at {offset} run past the end of a piece", len),
            ));
        }
        Ok(())
    }

    fn error(&self, e: io::Error) -> io::Error {
        in_parts_file(&self.path, e)
    }

    fn invalid(&self, why: &str) -> io::Error {
        self.error(io::Error::new(io::ErrorKind::InvalidData, why.to_owned()))
    }
}

/// `e`, naming the parts file it happened on.
fn in_parts_file(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("parts file {}: {e}", path.display()))
}

/// Opens read-write without following a symlink planted at `path`.
fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u32 = 1000;

    fn parts(dir: &tempfile::TempDir) -> PartsFile {
        PartsFile::open(&dir.path().join(".x.parts"), PIECE).unwrap()
    }

    #[test]
    fn bytes_come_back_from_the_piece_they_were_written_to_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = parts(&dir);
        assert!(
            p.is_empty() && !p.path().exists(),
            "made before the first write"
        );
        p.write(7, 990, b"0123456789").unwrap();
        p.write(3, 0, b"abc").unwrap();
        p.write(7, 0, b"head").unwrap();
        let p = parts(&dir);
        let mut pieces = p.pieces();
        pieces.sort();
        assert_eq!(pieces, [3, 7]);
        let mut buf = [0u8; 10];
        p.read(7, 990, &mut buf).unwrap();
        assert_eq!(&buf, b"0123456789");
        let mut buf = [0u8; 4];
        p.read(7, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"head");
        p.read(3, 0, &mut buf[..3]).unwrap();
        assert_eq!(&buf[..3], b"abc");
        let err = p.read(4, 0, &mut buf).unwrap_err();
        assert!(err.to_string().contains("piece 4 is not in the parts file"));
        assert!(err.to_string().contains(".x.parts"), "{err}");
        assert!(p.read(3, 999, &mut buf).is_err(), "past the end of a piece");
    }

    #[test]
    fn freed_slots_are_reused_cut_off_and_an_empty_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = parts(&dir);
        for piece in [1, 2, 3] {
            p.write(piece, 0, &[piece as u8; 10]).unwrap();
        }
        let len = |p: &PartsFile| std::fs::metadata(p.path()).unwrap().len();
        let full = len(&p);
        p.drop_piece(2).unwrap();
        assert_eq!(len(&p), full, "a slot in the middle stays");
        p.write(9, 5, b"x").unwrap();
        assert_eq!(len(&p), full, "the free slot was reused");
        p.drop_piece(3).unwrap();
        assert!(len(&p) < full, "the last slot was cut off");
        let reopened = parts(&dir);
        let mut pieces = reopened.pieces();
        pieces.sort();
        assert_eq!(pieces, [1, 9]);
        p.drop_piece(1).unwrap();
        p.drop_piece(9).unwrap();
        assert!(!p.path().exists(), "an empty parts file is deleted");
    }

    #[test]
    fn a_foreign_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.parts");
        std::fs::write(&path, b"definitely not ours, but long enough").unwrap();
        let err = PartsFile::open(&path, PIECE).unwrap_err();
        assert!(err.to_string().contains("not a swarmd parts file"), "{err}");
        assert!(err.to_string().contains(".x.parts"), "{err}");
        let other_dir = tempfile::tempdir().unwrap();
        let mut p = parts(&other_dir);
        p.write(0, 0, b"a").unwrap();
        let other = PartsFile::open(p.path(), PIECE * 2).unwrap_err();
        assert!(
            other.to_string().contains("made for pieces of 1000"),
            "{other}"
        );
    }

    /// A slot whose data was written but whose header was not (a crash between the two) is
    /// free: the piece is not claimed.
    #[test]
    fn a_slot_without_its_header_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = parts(&dir);
        p.write(1, 0, b"a").unwrap();
        let file = open_rw(p.path(), false).unwrap();
        let second = HEADER + u64::from(PIECE) + SLOT_HEADER;
        file.write_all_at(b"orphan", second + SLOT_HEADER).unwrap();
        let p = parts(&dir);
        assert_eq!(p.pieces(), [1]);
    }
}
