//! Resume state: per torrent, the `.torrent` and a resume record in the state directory, so a
//! restarted daemon brings every torrent back in its state without re-downloading. Every file
//! of the state directory is written and read here ([`StatePaths`] and the loaders below); the
//! root and the torrents only say what to save and when.
//!
//! Layout: `<state>/torrents/<info-hash>.torrent` (written once, at add) and
//! `<state>/torrents/<info-hash>.resume` (JSON, rewritten on a timer, on state changes and at
//! shutdown). Every write is atomic: temp file, fsync, rename, fsync of the directory.
//!
//! Trust rule: the verified-pieces bitfield is used only when every payload file still has the
//! size and modification time recorded next to it; otherwise the torrent is rechecked. Pieces
//! are marked verified only after their write completed, so a `kill -9` at any moment loses at
//! most the pieces in flight and never marks a bad piece as good.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use swarm_model::{EngineError, FilePriority, TorrentLimits};
use swarm_wire::InfoHash;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeRecord {
    pub info_hash: String,
    pub save_dir: PathBuf,
    pub paused: bool,
    /// Verified pieces, BitTorrent bit order, hex.
    pub have: String,
    /// `(size, mtime)` per file when `have` was written; `None` for files that did not exist.
    pub files: Vec<Option<(u64, i64)>>,
    #[serde(default)]
    pub priorities: Vec<FilePriority>,
    #[serde(default)]
    pub downloaded: u64,
    #[serde(default)]
    pub uploaded: u64,
    #[serde(default)]
    pub added_at: i64,
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// Trackers (tiers) when the metadata came from a magnet link.
    #[serde(default)]
    pub trackers: Vec<Vec<String>>,
    /// Super-seeding (BEP 16) is on for this torrent.
    #[serde(default)]
    pub super_seed: bool,
    /// Place in the queue (0 first): a restarted daemon adds torrents back in this order.
    #[serde(default)]
    pub queue_position: Option<u32>,
    /// Force-started: runs whatever the queue says.
    #[serde(default)]
    pub forced: bool,
    /// The torrent's own seeding limits.
    #[serde(default)]
    pub seed_limits: swarm_model::SeedLimits,
    /// Seconds spent seeding, all time (the seed-time limit counts them).
    #[serde(default)]
    pub seeding_secs: u64,
    /// The user's labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The torrent's own limits (rates, peers, upload slots).
    #[serde(default)]
    pub limits: TorrentLimits,
    /// A move of the data under way: where to, and which files are there already. `save_dir`
    /// stays the source until the move is done; a restart goes on with it.
    #[serde(default)]
    pub moving: Option<crate::relocation::MoveJournal>,
    /// Where the data goes once complete: the save directory of a download written to the
    /// incomplete directory (`save_dir` until then).
    #[serde(default)]
    pub complete_dir: Option<PathBuf>,
}

impl ResumeRecord {
    /// The record of a torrent (or magnet) with nothing verified yet: where it goes and whether
    /// it is paused, kept from the moment it is added so a crash cannot lose either.
    pub fn first(info_hash: InfoHash, save_dir: PathBuf, paused: bool, added_at: i64) -> Self {
        ResumeRecord {
            info_hash: info_hash.to_hex(),
            save_dir,
            paused,
            added_at,
            ..ResumeRecord::default()
        }
    }

    pub fn have_bytes(&self) -> Option<Vec<u8>> {
        hex_decode(&self.have)
    }

    /// The record as it is saved: pretty JSON, for a user who opens it to see what is kept.
    pub fn to_json(&self) -> io::Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(io::Error::other)
    }
}

/// A state file that could not be written, with its path.
#[derive(Debug, thiserror::Error)]
#[error("saving {}: {source}", path.display())]
pub struct SaveError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl From<SaveError> for EngineError {
    fn from(e: SaveError) -> Self {
        EngineError::Io {
            doing: "saving",
            path: e.path,
            reason: e.source.to_string(),
        }
    }
}

fn save(path: PathBuf, bytes: io::Result<Vec<u8>>) -> Result<(), SaveError> {
    match bytes.and_then(|b| write_atomic(&path, &b)) {
        Ok(()) => Ok(()),
        Err(source) => Err(SaveError { path, source }),
    }
}

pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where one torrent's files live in the state directory:
/// `<state>/torrents/<info-hash>.{torrent,resume,magnet}`. Small and cheap to clone: the folder
/// is shared by every torrent and the file names are made when used (a thousand torrents
/// holding three full paths each was ~360 KB).
#[derive(Clone, Debug)]
pub struct StatePaths {
    dir: Arc<Path>,
    info_hash: InfoHash,
}

impl StatePaths {
    /// The `torrents` folder of `state_dir`, to share between torrents (see [`StatePaths::of`]).
    pub fn torrents_dir(state_dir: &Path) -> Arc<Path> {
        state_dir.join("torrents").into()
    }

    pub fn of(torrents_dir: &Arc<Path>, info_hash: InfoHash) -> Self {
        StatePaths {
            dir: torrents_dir.clone(),
            info_hash,
        }
    }

    /// The `.torrent` file, written once at add.
    pub fn torrent(&self) -> PathBuf {
        self.file("torrent")
    }

    /// The resume record.
    pub fn resume(&self) -> PathBuf {
        self.file("resume")
    }

    /// A magnet link whose metadata is not fetched yet.
    pub fn magnet(&self) -> PathBuf {
        self.file("magnet")
    }

    fn file(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.info_hash.to_hex()))
    }

    /// The `.torrent`, if it is not saved yet (a torrent restored at start-up finds it there);
    /// `encode` runs only when it must be written.
    pub fn save_torrent_once(&self, encode: impl FnOnce() -> Vec<u8>) -> Result<(), SaveError> {
        let path = self.torrent();
        if path.exists() {
            return Ok(());
        }
        save(path, Ok(encode()))
    }

    /// The magnet link of a torrent whose metadata is not fetched yet.
    pub fn save_magnet(&self, uri: &str) -> Result<(), SaveError> {
        save(self.magnet(), Ok(uri.as_bytes().to_vec()))
    }

    /// The resume record, replacing the one saved before.
    pub fn save_record(&self, record: &ResumeRecord) -> Result<(), SaveError> {
        save(self.resume(), record.to_json())
    }

    /// The saved resume record, if there is one and it reads.
    pub fn load_record(&self) -> Option<ResumeRecord> {
        let bytes = std::fs::read(self.resume()).ok()?;
        serde_json::from_slice(&bytes)
            .map_err(|e| tracing::warn!(file = %self.resume().display(), "resume record unreadable: {e}"))
            .ok()
    }

    /// Whether a resume record is saved.
    pub fn has_record(&self) -> bool {
        self.resume().exists()
    }

    /// The metadata arrived: the magnet link is no longer what brings the torrent back.
    pub fn remove_magnet(&self) {
        let _ = std::fs::remove_file(self.magnet());
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.resume());
        let _ = std::fs::remove_file(self.torrent());
        let _ = std::fs::remove_file(self.magnet());
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, directory fsync).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    // A name of its own per write: two saves of one record may overlap (the periodic one off
    // the actor's thread and the last one as the torrent stops), and with a shared temporary
    // file one would rename the other's away ("No such file or directory").
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{n}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The resume record's saves in the order they were made. Saves run off the actor's thread and
/// two may overlap (a move saves its journal after each file, a moment after the save that
/// started it): the older one, landing last, would put back a journal that forgets a file.
/// Each save has a number; one older than what is on disk is dropped.
#[derive(Default)]
pub struct RecordSaves {
    made: u64,
    written: std::sync::Arc<std::sync::Mutex<u64>>,
}

/// One save, numbered.
pub struct RecordSave {
    number: u64,
    written: std::sync::Arc<std::sync::Mutex<u64>>,
}

impl RecordSaves {
    pub fn begin(&mut self) -> RecordSave {
        self.made += 1;
        RecordSave {
            number: self.made,
            written: self.written.clone(),
        }
    }
}

impl RecordSave {
    /// Writes the record unless a newer one was written already.
    pub fn write(&self, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if *written > self.number {
            return Ok(());
        }
        write_atomic(path, bytes)?;
        *written = self.number;
        Ok(())
    }
}

impl RecordSave {
    /// Writes the record on the resume writer's thread, later; a failure is logged naming
    /// `torrent`.
    pub fn write_later(self, path: PathBuf, bytes: Vec<u8>, torrent: String) {
        let job = move || {
            if let Err(e) = self.write(&path, &bytes) {
                tracing::warn!(%torrent, "saving resume state: {e}");
            }
        };
        match writer().send(Box::new(job)) {
            Ok(()) => {}
            // The thread is gone (it never is: each job runs under `catch_unwind`): write here.
            Err(mpsc::SendError(job)) => job(),
        }
    }
}

type WriteJob = Box<dyn FnOnce() + Send>;

/// The thread that writes resume records, one after the other. One thread, not the async
/// runtime's blocking pool: a thousand torrents saving at once (each after its check, or all
/// at a restart) made that pool start dozens of threads, each with its own allocator arena,
/// which doubled the daemon's memory (9 → 20 MiB, measured with 1 000 torrents) and cost more
/// CPU than the writes; records are small, and one fsync after another keeps the disk's order.
fn writer() -> &'static mpsc::Sender<WriteJob> {
    static WRITER: OnceLock<mpsc::Sender<WriteJob>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<WriteJob>();
        let spawned = std::thread::Builder::new()
            .name("resume-writer".into())
            .spawn(move || {
                for job in rx {
                    // A panic in one write must not take the others with it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the resume writer thread: {e}; records are written as they are made"
            );
        }
        tx
    })
}

/// Magnet links saved in `state_dir` whose metadata was not fetched yet, each with its resume
/// record (save directory, paused) when it has one.
pub fn load_magnets(state_dir: &Path) -> Vec<(String, Option<ResumeRecord>)> {
    let Ok(entries) = std::fs::read_dir(StatePaths::torrents_dir(state_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Option<ResumeRecord>)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("magnet"))
        // A .torrent next to it means the metadata arrived; the magnet is only a leftover.
        .filter(|p| !p.with_extension("torrent").exists())
        .filter_map(|p| {
            let uri = std::fs::read_to_string(&p).ok()?.trim().to_string();
            let record = std::fs::read(p.with_extension("resume"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            Some((uri, record))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The torrents saved in `state_dir` (their `.torrent` files), in name order. Loaded one at a
/// time with [`load_saved`]: a restart of a thousand torrents never holds them all in memory.
pub fn saved_torrents(state_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(StatePaths::torrents_dir(state_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("torrent"))
        .collect();
    out.sort();
    out
}

/// One saved torrent: its `.torrent` bytes and its record (if readable). An unreadable
/// `.torrent` is logged and `None`: one bad file never stops the daemon.
pub fn load_saved(path: &Path) -> Option<(Vec<u8>, Option<ResumeRecord>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(err) => {
            tracing::warn!(file = %path.display(), "cannot read saved torrent: {err}");
            return None;
        }
    };
    let record = std::fs::read(path.with_extension("resume"))
        .ok()
        .and_then(|b| match serde_json::from_slice::<ResumeRecord>(&b) {
            Ok(r) => Some(r),
            Err(err) => {
                tracing::warn!(file = %path.display(), "resume record unreadable, rechecking: {err}");
                None
            }
        });
    Some((bytes, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two saves of one record may overlap (the periodic one and the last one as a torrent
    /// stops): each must succeed and leave a whole record.
    #[test]
    fn overlapping_saves_of_one_record_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.resume");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..50u8 {
                        write_atomic(path, &[t, i]).unwrap_or_else(|e| panic!("save {t}/{i}: {e}"));
                    }
                });
            }
        });
        assert_eq!(std::fs::read(&path).unwrap().len(), 2);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
    }

    #[test]
    fn record_round_trip_and_atomic_write() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StatePaths::of(&StatePaths::torrents_dir(dir.path()), InfoHash([0xab; 20]));
        let rec = ResumeRecord {
            info_hash: "ab".into(),
            save_dir: "/x".into(),
            have: hex_encode(&[0xf0, 0x01]),
            files: vec![Some((10, 5)), None],
            ..Default::default()
        };
        write_atomic(&paths.torrent(), b"d4:infod4:name1:aee").unwrap();
        write_atomic(&paths.resume(), &serde_json::to_vec(&rec).unwrap()).unwrap();
        let saved = saved_torrents(dir.path());
        assert_eq!(saved, vec![paths.torrent()]);
        let (bytes, record) = load_saved(&saved[0]).unwrap();
        assert_eq!(bytes, b"d4:infod4:name1:aee");
        assert_eq!(record.as_ref(), Some(&rec));
        assert_eq!(rec.have_bytes(), Some(vec![0xf0, 0x01]));
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn state_files_are_saved_where_they_belong_and_errors_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let paths = StatePaths::of(&StatePaths::torrents_dir(dir.path()), InfoHash([0xcd; 20]));
        // The `.torrent` is written once: a restored torrent's file is not encoded again.
        paths.save_torrent_once(|| b"first".to_vec()).unwrap();
        paths
            .save_torrent_once(|| panic!("encoded although saved"))
            .unwrap();
        assert_eq!(std::fs::read(paths.torrent()).unwrap(), b"first");
        assert!(!paths.has_record());
        let rec = ResumeRecord::first(InfoHash([0xcd; 20]), "/data".into(), true, 7);
        paths.save_record(&rec).unwrap();
        let (_, loaded) = load_saved(&paths.torrent()).unwrap();
        assert_eq!(loaded, Some(rec.clone()));
        paths.save_magnet("magnet:?xt=urn:btih:cd").unwrap();
        paths.remove_magnet();
        assert!(!paths.magnet().exists() && paths.has_record());

        // A state directory that is a file: the error says which file could not be saved.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, b"").unwrap();
        let paths = StatePaths::of(&StatePaths::torrents_dir(&blocked), InfoHash([1; 20]));
        let err = paths.save_record(&rec).unwrap_err().to_string();
        assert!(
            err.starts_with("saving ") && err.contains(".resume"),
            "{err}"
        );
    }
}
