//! # A torrent's resume state — pure core
//!
//! Owns: where the resume record lives, the record found at start-up (until it is read), whether
//! something worth saving changed (`dirty`), and whether what we have is unknown (`unchecked`: the
//! data was missing at start). Decides: how the torrent starts from its record ([`StartFrom`]),
//! and what goes into the next record — nothing while `unchecked`, so that an empty bitfield never
//! overwrites what the record on disk still knows.
//!
//! Takes: the torrent actor's calls, with what it knows of the disk passed in. The actor writes
//! the bytes (off its thread on the tick, synchronously when it stops). Unit tests:
//! `resume_state/tests.rs`.

use std::path::PathBuf;

use swarm_model::{FilePriority, InfoHash, TorrentLimits};

use crate::bitfield::Bitfield;
use crate::resume::{hex_encode, ResumeRecord, StatePaths};

#[cfg(test)]
mod tests;

/// How a torrent starts.
#[derive(Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// Pieces known good: no check.
    Known(Bitfield),
    /// Hash what is on disk.
    Check,
    /// The record had pieces and not one byte of them is on disk: stop with an error.
    DataMissing,
}

pub struct ResumeState {
    paths: Option<StatePaths>,
    /// Something worth saving changed since the last resume write.
    pub dirty: bool,
    /// What we have is not known (the data was missing at start): `resume` checks first.
    pub unchecked: bool,
}

/// What a record says beyond the pieces: carried into the torrent's counters and settings.
pub struct Restored {
    pub uploaded: u64,
    pub downloaded: u64,
    pub added_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub priorities: Option<Vec<FilePriority>>,
    pub seeding_secs: u64,
}

/// What the next record is made of.
pub struct Snapshot<'a> {
    pub info_hash: InfoHash,
    pub save_dir: PathBuf,
    pub paused: bool,
    pub have: &'a Bitfield,
    pub files: Vec<Option<(u64, i64)>>,
    pub priorities: Vec<FilePriority>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub added_at: i64,
    pub completed_at: Option<i64>,
    pub super_seed: bool,
    pub labels: Vec<String>,
    pub limits: TorrentLimits,
    pub queue: QueueSettings,
    pub seeding_secs: u64,
    pub moving: Option<crate::relocation::MoveJournal>,
    pub complete_dir: Option<PathBuf>,
}

/// What the root's queue decided for a torrent and the torrent keeps in its record, so that a
/// restarted daemon finds it (the root holds it while the daemon runs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueSettings {
    pub position: u32,
    pub forced: bool,
    pub seed_limits: swarm_model::SeedLimits,
}

impl ResumeState {
    pub fn new(paths: Option<StatePaths>) -> Self {
        ResumeState {
            paths,
            dirty: false,
            unchecked: false,
        }
    }

    /// Where to start from the resume record: its bitfield if the files on disk (`files_now`) are
    /// as the record left them, a check if they changed, an error if every byte it had is gone
    /// (`nothing_on_disk`). No record: a check.
    pub fn start_from(
        rec: &ResumeRecord,
        pieces: u32,
        files_now: &[Option<(u64, i64)>],
        nothing_on_disk: impl FnOnce() -> bool,
    ) -> StartFrom {
        let Some(have) = rec
            .have_bytes()
            .and_then(|b| Bitfield::from_wire(&b, pieces))
        else {
            return StartFrom::Check;
        };
        if files_now == rec.files {
            return StartFrom::Known(have);
        }
        // An unmounted disk or a moved folder looks like data deleted: a recheck would find
        // nothing and download it all again, into the mount point. Transmission stops such a
        // torrent with an error until the user says; so do we. A few files missing is a recheck.
        if have.count() > 0 && nothing_on_disk() {
            return StartFrom::DataMissing;
        }
        StartFrom::Check
    }

    /// What a record restores besides the pieces.
    pub fn restored(rec: &ResumeRecord) -> Restored {
        Restored {
            uploaded: rec.uploaded,
            downloaded: rec.downloaded,
            added_at: (rec.added_at > 0).then_some(rec.added_at),
            completed_at: rec.completed_at,
            priorities: (!rec.priorities.is_empty()).then(|| rec.priorities.clone()),
            seeding_secs: rec.seeding_secs,
        }
    }

    /// The record to write and where, or `None`: no resume directory, or `unchecked`.
    pub fn record(&self, s: Snapshot<'_>) -> Option<(PathBuf, Vec<u8>)> {
        // Data missing at start: the record on disk still knows what we had; an empty bitfield
        // written over it would make the next start download everything again.
        if self.unchecked {
            return None;
        }
        let paths = self.paths.as_ref()?;
        let rec = ResumeRecord {
            info_hash: s.info_hash.to_hex(),
            save_dir: s.save_dir,
            paused: s.paused,
            have: hex_encode(s.have.as_bytes()),
            files: s.files,
            priorities: s.priorities,
            downloaded: s.downloaded,
            uploaded: s.uploaded,
            added_at: s.added_at,
            completed_at: s.completed_at,
            trackers: Vec::new(),
            super_seed: s.super_seed,
            queue_position: Some(s.queue.position),
            forced: s.queue.forced,
            seed_limits: s.queue.seed_limits,
            seeding_secs: s.seeding_secs,
            labels: s.labels,
            limits: s.limits,
            moving: s.moving,
            complete_dir: s.complete_dir,
        };
        Some((paths.resume(), serde_json::to_vec_pretty(&rec).ok()?))
    }
}
