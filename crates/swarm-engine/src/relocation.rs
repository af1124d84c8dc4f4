//! # Moving a torrent's data to another directory — pure core
//!
//! Owns: the destination of a move under way, how its files travel (one `rename` on the same
//! filesystem, a copy otherwise), and which files are at the destination already. Decides: whether
//! a move may start (not onto itself, not into its own data, never over an existing file), which
//! file goes next, when the move is finished, what its journal says, and how far it got.
//!
//! Takes: what the disk knows, passed in (which destination paths exist, whether the two
//! directories share a filesystem). Driven by `Storage` on a disk-pool thread (`storage/moving.rs`),
//! which carries out each step and keeps this core next to the per-file paths it decides; the
//! torrent actor (`torrent/relocate.rs`) asks for the steps one at a time and saves the journal
//! in the resume record after each, so that a restart after a crash goes on where it stopped
//! ([`Relocation::resume`]). No I/O, no actix; unit tests below.
//!
//! Why a file's presence at the destination means it is done: a move starts only when none of
//! its files exists there, and a file appears there only by one `rename` of the whole file (a
//! copy is written under a temporary name, synced, then renamed into place). So after a crash, a
//! file found at the destination that the journal does not list yet arrived just before the
//! crash, and its source (if still there) is the leftover to delete.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the resume record keeps of a move under way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveJournal {
    /// The directory the data goes to (the torrent's save directory once the move is done).
    pub to: PathBuf,
    /// Indices of the files that are at the destination.
    pub done: Vec<u32>,
}

/// How the files travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Same filesystem: one `rename` per file.
    Rename,
    /// Another filesystem: copy under a temporary name, sync, rename into place, delete the
    /// source.
    Copy,
}

/// Why a move cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoveRefused {
    #[error("the data is in {} already", .0.display())]
    SameDir(PathBuf),
    #[error("{} is inside the torrent's own data", .0.display())]
    IntoItself(PathBuf),
    #[error("{} exists already; nothing was moved (remove or rename it first)", .0.display())]
    Exists(PathBuf),
    #[error("the destination {} is not an absolute path", .0.display())]
    Relative(PathBuf),
}

/// The next thing a move does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Move file `index` (its path below the save directory is the storage's).
    File { index: usize, method: Method },
    /// Every file is there: move what belongs to the torrent besides its files (the parts file),
    /// delete leftovers and empty directories at the source, and switch the save directory.
    Finish,
}

/// A move under way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relocation {
    to: PathBuf,
    method: Method,
    done: Vec<bool>,
    /// Bytes per file, for the progress.
    lens: Vec<u64>,
}

impl Relocation {
    /// Plans a move of the files `rels` (paths below the save directory `from`, with their
    /// lengths; `skip`: files that are never on disk, such as padding) to `to`. `exists(path)`
    /// says whether a path exists; `same_fs` whether `to` is on `from`'s filesystem.
    pub fn plan(
        from: &Path,
        to: &Path,
        files: &[(PathBuf, u64, bool)],
        same_fs: bool,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<Relocation, MoveRefused> {
        if !to.is_absolute() {
            return Err(MoveRefused::Relative(to.to_path_buf()));
        }
        if to == from {
            return Err(MoveRefused::SameDir(to.to_path_buf()));
        }
        // The first element of a file's path is the torrent's top directory (or the single
        // file): a destination below it would move the data into itself.
        let tops = files
            .iter()
            .filter_map(|(rel, _, _)| rel.components().next())
            .map(|c| from.join(c));
        for top in tops {
            if to.starts_with(&top) {
                return Err(MoveRefused::IntoItself(to.to_path_buf()));
            }
        }
        if let Some((rel, _, _)) = files
            .iter()
            .find(|(rel, _, skip)| !skip && exists(&to.join(rel)))
        {
            return Err(MoveRefused::Exists(to.join(rel)));
        }
        Ok(Relocation {
            to: to.to_path_buf(),
            method: if same_fs {
                Method::Rename
            } else {
                Method::Copy
            },
            done: files.iter().map(|(_, _, skip)| *skip).collect(),
            lens: files.iter().map(|(_, len, _)| *len).collect(),
        })
    }

    /// A move found in a resume record, after a restart: the files it lists are done, and so is
    /// any other file found at the destination (see the module's note), as are files never on
    /// disk (`skip`).
    pub fn resume(
        journal: &MoveJournal,
        files: &[(PathBuf, u64, bool)],
        same_fs: bool,
        exists: impl Fn(&Path) -> bool,
    ) -> Relocation {
        let done = files
            .iter()
            .enumerate()
            .map(|(i, (rel, _, skip))| {
                *skip || journal.done.contains(&(i as u32)) || exists(&journal.to.join(rel))
            })
            .collect();
        Relocation {
            to: journal.to.clone(),
            method: if same_fs {
                Method::Rename
            } else {
                Method::Copy
            },
            done,
            lens: files.iter().map(|(_, len, _)| *len).collect(),
        }
    }

    pub fn to(&self) -> &Path {
        &self.to
    }

    /// Whether file `index` is at the destination.
    pub fn is_moved(&self, index: usize) -> bool {
        self.done.get(index).copied().unwrap_or(false)
    }

    /// What to do next.
    pub fn next(&self) -> Step {
        match self.done.iter().position(|d| !d) {
            Some(index) => Step::File {
                index,
                method: self.method,
            },
            None => Step::Finish,
        }
    }

    /// File `index` is at the destination (and its source gone).
    pub fn moved(&mut self, index: usize) {
        if let Some(d) = self.done.get_mut(index) {
            *d = true;
        }
    }

    /// The record's view of the move.
    pub fn journal(&self) -> MoveJournal {
        MoveJournal {
            to: self.to.clone(),
            done: (0..self.done.len())
                .filter(|&i| self.done[i])
                .map(|i| i as u32)
                .collect(),
        }
    }

    /// 0.0..=1.0: bytes of the files moved, plus `current` bytes of the one moving, over all.
    pub fn progress(&self, current: u64) -> f64 {
        let total: u64 = self.lens.iter().sum();
        if total == 0 {
            return if self.done.iter().all(|d| *d) {
                1.0
            } else {
                0.0
            };
        }
        let moved: u64 = self
            .lens
            .iter()
            .zip(&self.done)
            .filter(|(_, d)| **d)
            .map(|(l, _)| *l)
            .sum();
        ((moved + current) as f64 / total as f64).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn files() -> Vec<(PathBuf, u64, bool)> {
        vec![
            ("album/a.flac".into(), 100, false),
            ("album/.pad/1".into(), 20, true),
            ("album/b.flac".into(), 300, false),
        ]
    }

    fn none(_: &Path) -> bool {
        false
    }

    #[test]
    fn a_move_goes_file_by_file_then_finishes_with_its_journal_telling_how_far() {
        let mut r =
            Relocation::plan(Path::new("/a"), Path::new("/b"), &files(), true, none).unwrap();
        // Padding is never on disk: done from the start.
        assert_eq!(r.journal().done, vec![1]);
        assert_eq!(
            r.next(),
            Step::File {
                index: 0,
                method: Method::Rename
            }
        );
        assert_eq!(r.progress(50), (20.0 + 50.0) / 420.0);
        r.moved(0);
        assert!(r.is_moved(0) && !r.is_moved(2));
        assert_eq!(
            r.next(),
            Step::File {
                index: 2,
                method: Method::Rename
            }
        );
        r.moved(2);
        assert_eq!(r.next(), Step::Finish);
        assert_eq!(r.progress(0), 1.0);
        assert_eq!(
            r.journal(),
            MoveJournal {
                to: "/b".into(),
                done: vec![0, 1, 2]
            }
        );
    }

    #[test]
    fn another_filesystem_means_copies() {
        let r =
            Relocation::plan(Path::new("/a"), Path::new("/mnt/b"), &files(), false, none).unwrap();
        assert_eq!(
            r.next(),
            Step::File {
                index: 0,
                method: Method::Copy
            }
        );
    }

    #[test]
    fn a_move_never_overwrites_nor_goes_into_itself_nor_stays_put() {
        let taken: HashSet<PathBuf> = [PathBuf::from("/b/album/b.flac")].into();
        let err = Relocation::plan(Path::new("/a"), Path::new("/b"), &files(), true, |p| {
            taken.contains(p)
        })
        .unwrap_err();
        assert_eq!(err, MoveRefused::Exists("/b/album/b.flac".into()));
        assert!(err.to_string().contains("/b/album/b.flac exists already"));
        // A skipped file (padding) at the destination is no conflict: it is never written.
        let pad: HashSet<PathBuf> = [PathBuf::from("/b/album/.pad/1")].into();
        assert!(
            Relocation::plan(Path::new("/a"), Path::new("/b"), &files(), true, |p| pad
                .contains(p))
            .is_ok()
        );
        assert_eq!(
            Relocation::plan(Path::new("/a"), Path::new("/a"), &files(), true, none),
            Err(MoveRefused::SameDir("/a".into()))
        );
        assert_eq!(
            Relocation::plan(
                Path::new("/a"),
                Path::new("/a/album/x"),
                &files(),
                true,
                none
            ),
            Err(MoveRefused::IntoItself("/a/album/x".into()))
        );
        // A sibling whose name starts like the top directory is not inside it.
        assert!(Relocation::plan(
            Path::new("/a"),
            Path::new("/a/album2"),
            &files(),
            true,
            none
        )
        .is_ok());
        assert_eq!(
            Relocation::plan(Path::new("/a"), Path::new("b"), &files(), true, none),
            Err(MoveRefused::Relative("b".into()))
        );
    }

    #[test]
    fn a_resumed_move_counts_files_found_at_the_destination_as_moved() {
        let journal = MoveJournal {
            to: "/b".into(),
            done: vec![0],
        };
        // File 2 reached the destination just before the crash, unrecorded.
        let there: HashSet<PathBuf> = [PathBuf::from("/b/album/b.flac")].into();
        let r = Relocation::resume(&journal, &files(), false, |p| there.contains(p));
        assert_eq!(r.next(), Step::Finish);
        assert_eq!(r.to(), Path::new("/b"));
        // Without it there, file 2 is next, by copy.
        let r = Relocation::resume(&journal, &files(), false, none);
        assert_eq!(
            r.next(),
            Step::File {
                index: 2,
                method: Method::Copy
            }
        );
        assert_eq!(r.journal().done, vec![0, 1]);
    }

    #[test]
    fn the_journal_reads_back_as_it_was_written() {
        let j = MoveJournal {
            to: "/data/done".into(),
            done: vec![0, 3],
        };
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(serde_json::from_str::<MoveJournal>(&text).unwrap(), j);
    }
}
