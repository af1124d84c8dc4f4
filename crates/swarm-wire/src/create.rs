//! Building a `.torrent` (v1) from a file or a directory.
//!
//! The result is meant to be byte-for-byte the same `info` dictionary that `mktorrent` writes
//! for the same input and piece length, so both give the same info-hash:
//!
//! - A directory is walked recursively and its files are listed sorted by their relative path
//!   as bytes, with `/` between elements (what `strcmp` on mktorrent's paths gives: `a.txt`
//!   sorts before `a/b`). The order is deterministic whatever `readdir` returns.
//! - Hidden files and directories (names starting with `.`) are included, like every other name.
//! - Symbolic links are followed (mktorrent `stat`s): a link to a file adds the file's contents
//!   under the link's name, a link to a directory is walked. A dangling link is an error. A link
//!   that leads back into one of its own ancestors is an error instead of an endless walk.
//! - Anything that is neither a regular file nor a directory (FIFOs, sockets, devices) is left
//!   out, as mktorrent does. Empty directories leave no trace; empty files are listed.
//! - Unlike mktorrent, which skips an unreadable file with a warning (and so changes the
//!   torrent), an unreadable file is an error here.
//! - File names must be UTF-8 and pass [`check_path_element`] (no `\`), since swarmd itself
//!   would refuse the torrent otherwise.
//!
//! Hashing uses several threads: the pieces are cut into one contiguous range per thread, and
//! each thread reads its range sequentially across file boundaries, so the disk sees at most
//! one sequential stream per thread.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::bencode::{self, Dict, Value};
use crate::metainfo::{check_path_element, Metainfo, MetainfoError, MAX_PIECE_LENGTH};
use crate::InfoHash;

/// Smallest piece length chosen or accepted.
pub const MIN_PIECE_LENGTH: u32 = 16 << 10;
/// Largest piece length chosen automatically.
pub const MAX_AUTO_PIECE_LENGTH: u32 = 16 << 20;
/// The automatic piece length aims at no more than this many pieces.
const TARGET_MAX_PIECES: u64 = 2048;

/// What to put in the torrent besides the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// `None`: chosen from the total size (see [`auto_piece_length`]).
    pub piece_length: Option<u32>,
    /// Tracker tiers (BEP 12); the first URL of the first tier becomes `announce`.
    pub trackers: Vec<Vec<String>>,
    pub private: bool,
    pub comment: Option<String>,
    /// BEP 19 web seeds (`url-list`).
    pub web_seeds: Vec<String>,
    /// Unix time; `None` leaves the key out (deterministic output).
    pub creation_date: Option<i64>,
    /// `None`: `swarmd/<version>`.
    pub created_by: Option<String>,
    /// Hashing threads; 0 means one per available core.
    pub threads: usize,
    /// Torrent name; `None`: the file or directory name.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: neither a regular file nor a directory", .0.display())]
    NotFileOrDirectory(PathBuf),
    #[error("{}: the directory holds no files", .0.display())]
    NoFiles(PathBuf),
    #[error("{}: the name is not valid UTF-8", .0.display())]
    NonUtf8Name(PathBuf),
    #[error("{}: the name cannot be used in a torrent: {reason}", path.display())]
    UnsafeName { path: PathBuf, reason: &'static str },
    #[error("{}: a symbolic link leads back into its own parent directory", .0.display())]
    SymlinkLoop(PathBuf),
    #[error("{}: the file changed size while it was being hashed", .0.display())]
    Changed(PathBuf),
    #[error("piece length {0} is invalid: it must be a power of two from 16 KiB to 64 MiB")]
    BadPieceLength(u32),
    #[error("nothing to share: the total size is 0 bytes")]
    NoData,
    #[error("too much data for one torrent ({0} bytes)")]
    TooLarge(u64),
    #[error("a hashing thread panicked")]
    HashThreadPanicked,
    #[error("the torrent built does not validate: {0}")]
    Invalid(#[from] MetainfoError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CreateError + '_ {
    move |source| CreateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of the payload.
#[derive(Clone, Debug)]
struct SourceFile {
    disk_path: PathBuf,
    /// Path inside the torrent (for a single file: just the name).
    path: Vec<String>,
    length: u64,
}

/// Creates a `.torrent` and returns its bytes.
pub fn create_torrent(path: &Path, opts: &CreateOptions) -> Result<Vec<u8>, CreateError> {
    create_metainfo(path, opts).map(|m| m.to_bytes())
}

/// Creates a torrent and returns it parsed (as [`Metainfo::from_bytes`] would read it back).
pub fn create_metainfo(path: &Path, opts: &CreateOptions) -> Result<Metainfo, CreateError> {
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(path)?,
    };
    check_path_element(&name).map_err(|reason| CreateError::UnsafeName {
        path: PathBuf::from(&name),
        reason,
    })?;
    let (files, single_file) = collect(path, &name)?;
    let total = files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.length))
        .ok_or(CreateError::TooLarge(u64::MAX))?;
    if total == 0 {
        return Err(CreateError::NoData);
    }
    let piece_length = match opts.piece_length {
        Some(p) if p.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&p) => p,
        Some(p) => return Err(CreateError::BadPieceLength(p)),
        None => auto_piece_length(total),
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let pieces = hash_pieces(&files, piece_length, total, threads)?;
    let info = info_dict(
        &name,
        single_file,
        &files,
        piece_length,
        &pieces,
        opts.private,
    )?;
    let mut meta = Metainfo::from_info_bytes(&bencode::encode(&info), opts.trackers.clone())?;
    meta.url_list = opts.web_seeds.clone();
    meta.comment = opts.comment.clone();
    meta.creation_date = opts.creation_date;
    meta.created_by = Some(
        opts.created_by
            .clone()
            .unwrap_or_else(|| format!("swarmd/{}", env!("CARGO_PKG_VERSION"))),
    );
    Ok(meta)
}

/// The smallest power of two from 16 KiB that keeps the piece count at or under 2048, at most
/// 16 MiB: 1–2 thousand pieces keeps the `.torrent` small and the pieces fine-grained.
pub fn auto_piece_length(total: u64) -> u32 {
    let mut p = MIN_PIECE_LENGTH;
    while p < MAX_AUTO_PIECE_LENGTH && total.div_ceil(u64::from(p)) > TARGET_MAX_PIECES {
        p *= 2;
    }
    p
}

fn default_name(path: &Path) -> Result<String, CreateError> {
    // `.`, `..` and `/` have no file name of their own; their canonical form does.
    let resolved;
    let named = match path.file_name() {
        Some(_) => path,
        None => {
            resolved = path.canonicalize().map_err(io_err(path))?;
            &resolved
        }
    };
    let name = named
        .file_name()
        .ok_or_else(|| CreateError::UnsafeName {
            path: path.to_owned(),
            reason: "it has no file name",
        })?
        .to_str()
        .ok_or_else(|| CreateError::NonUtf8Name(path.to_owned()))?;
    Ok(name.to_owned())
}

/// Lists the payload: `(files, single_file)`.
fn collect(root: &Path, name: &str) -> Result<(Vec<SourceFile>, bool), CreateError> {
    let meta = std::fs::metadata(root).map_err(io_err(root))?;
    if meta.is_file() {
        let file = SourceFile {
            disk_path: root.to_owned(),
            path: vec![name.to_owned()],
            length: meta.len(),
        };
        return Ok((vec![file], true));
    }
    if !meta.is_dir() {
        return Err(CreateError::NotFileOrDirectory(root.to_owned()));
    }
    let mut files = Vec::new();
    let mut ancestors = vec![dir_id(&meta)];
    walk(root, &mut Vec::new(), &mut ancestors, &mut files)?;
    if files.is_empty() {
        return Err(CreateError::NoFiles(root.to_owned()));
    }
    files.sort_by_cached_key(|f| f.path.join("/"));
    Ok((files, false))
}

#[cfg(unix)]
fn dir_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn walk(
    dir: &Path,
    rel: &mut Vec<String>,
    ancestors: &mut Vec<(u64, u64)>,
    files: &mut Vec<SourceFile>,
) -> Result<(), CreateError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let disk_path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| CreateError::NonUtf8Name(disk_path.clone()))?;
        check_path_element(&name).map_err(|reason| CreateError::UnsafeName {
            path: disk_path.clone(),
            reason,
        })?;
        // `metadata` follows symbolic links, as mktorrent's `stat` does.
        let meta = std::fs::metadata(&disk_path).map_err(io_err(&disk_path))?;
        rel.push(name);
        if meta.is_dir() {
            let id = dir_id(&meta);
            if cfg!(unix) && ancestors.contains(&id) {
                return Err(CreateError::SymlinkLoop(disk_path));
            }
            ancestors.push(id);
            walk(&disk_path, rel, ancestors, files)?;
            ancestors.pop();
        } else if meta.is_file() {
            files.push(SourceFile {
                disk_path,
                path: rel.clone(),
                length: meta.len(),
            });
        }
        rel.pop();
    }
    Ok(())
}

fn info_dict(
    name: &str,
    single_file: bool,
    files: &[SourceFile],
    piece_length: u32,
    pieces: &[[u8; 20]],
    private: bool,
) -> Result<Value, CreateError> {
    let length = |n: u64| {
        i64::try_from(n)
            .map(Value::Int)
            .map_err(|_| CreateError::TooLarge(n))
    };
    let mut info = Dict::new();
    if single_file {
        let len = files.first().map_or(0, |f| f.length);
        info.insert("length", length(len)?);
    } else {
        let mut list = Vec::with_capacity(files.len());
        for f in files {
            let mut entry = Dict::new();
            entry.insert("length", length(f.length)?);
            let path = f.path.iter().map(|e| Value::string(e)).collect();
            entry.insert("path", Value::List(path));
            list.push(Value::Dict(entry));
        }
        info.insert("files", Value::List(list));
    }
    info.insert("name", Value::string(name));
    info.insert("piece length", Value::Int(i64::from(piece_length)));
    info.insert("pieces", Value::Bytes(pieces.concat()));
    if private {
        info.insert("private", Value::Int(1));
    }
    Ok(Value::Dict(info))
}

fn hash_pieces(
    files: &[SourceFile],
    piece_length: u32,
    total: u64,
    threads: usize,
) -> Result<Vec<[u8; 20]>, CreateError> {
    let count = total.div_ceil(u64::from(piece_length));
    // Our own parser caps a `.torrent` at 64 MiB, so the hashes must fit in well under that.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= (60 << 20) / 20)
        .ok_or(CreateError::TooLarge(total))?;
    let per_thread = count.div_ceil(threads.clamp(1, count.max(1)));
    let mut out = vec![[0u8; 20]; count];
    std::thread::scope(|scope| {
        let workers: Vec<_> = out
            .chunks_mut(per_thread)
            .enumerate()
            .map(|(t, chunk)| {
                let first = (t * per_thread) as u64;
                scope.spawn(move || hash_range(files, piece_length, total, first, chunk))
            })
            .collect();
        // Join them all (a scope would anyway), then report the first failure.
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        results
            .into_iter()
            .try_for_each(|r| r.map_err(|_| CreateError::HashThreadPanicked)?)
    })?;
    Ok(out)
}

/// Hashes `out.len()` pieces starting at piece `first`.
fn hash_range(
    files: &[SourceFile],
    piece_length: u32,
    total: u64,
    first: u64,
    out: &mut [[u8; 20]],
) -> Result<(), CreateError> {
    let plen = u64::from(piece_length);
    let mut reader = PayloadReader::at(files, first * plen)?;
    let mut buf = vec![0u8; piece_length as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        let start = (first + i as u64) * plen;
        let len = plen.min(total.saturating_sub(start)) as usize;
        let piece = buf.get_mut(..len).unwrap_or_default();
        reader.read_exact(piece)?;
        *slot = InfoHash::of(piece).0;
    }
    Ok(())
}

/// Reads the concatenated payload sequentially from a given offset, one file after another.
struct PayloadReader<'a> {
    files: &'a [SourceFile],
    /// The file `open` belongs to.
    index: usize,
    open: Option<File>,
    left_in_file: u64,
}

impl<'a> PayloadReader<'a> {
    fn at(files: &'a [SourceFile], mut offset: u64) -> Result<Self, CreateError> {
        let mut index = 0;
        while let Some(f) = files.get(index) {
            if offset < f.length {
                let mut file = File::open(&f.disk_path).map_err(io_err(&f.disk_path))?;
                file.seek(SeekFrom::Start(offset))
                    .map_err(io_err(&f.disk_path))?;
                return Ok(PayloadReader {
                    files,
                    index,
                    open: Some(file),
                    left_in_file: f.length - offset,
                });
            }
            offset -= f.length;
            index += 1;
        }
        Ok(PayloadReader {
            files,
            index,
            open: None,
            left_in_file: 0,
        })
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), CreateError> {
        while !buf.is_empty() {
            if self.left_in_file == 0 {
                self.next_file()?;
                continue;
            }
            let path = self.files.get(self.index).map(|f| f.disk_path.as_path());
            let path = path.unwrap_or(Path::new(""));
            let Some(file) = self.open.as_mut() else {
                return Err(CreateError::Changed(path.to_owned()));
            };
            let want = buf
                .len()
                .min(usize::try_from(self.left_in_file).unwrap_or(usize::MAX));
            let n = match file.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(0) => return Err(CreateError::Changed(path.to_owned())),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(path)(e)),
            };
            self.left_in_file -= n as u64;
            buf = buf.get_mut(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// Moves to the next non-empty file; running out of files means the payload shrank.
    fn next_file(&mut self) -> Result<(), CreateError> {
        let started = self.open.is_some();
        if started {
            self.index += 1;
        }
        self.open = None;
        loop {
            let Some(f) = self.files.get(self.index) else {
                let last = self.files.last().map(|f| f.disk_path.clone());
                return Err(CreateError::Changed(last.unwrap_or_default()));
            };
            if f.length > 0 {
                self.open = Some(File::open(&f.disk_path).map_err(io_err(&f.disk_path))?);
                self.left_in_file = f.length;
                return Ok(());
            }
            self.index += 1;
        }
    }
}

#[cfg(test)]
mod tests;
