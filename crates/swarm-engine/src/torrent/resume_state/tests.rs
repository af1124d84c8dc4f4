use std::path::Path;
use std::sync::Arc;

use swarm_wire::InfoHash;

use super::*;

fn record(have: &Bitfield, files: Vec<Option<(u64, i64)>>) -> ResumeRecord {
    ResumeRecord {
        info_hash: "00".repeat(20),
        save_dir: PathBuf::from("/data"),
        paused: false,
        have: hex_encode(have.as_bytes()),
        files,
        priorities: Vec::new(),
        downloaded: 7,
        uploaded: 9,
        added_at: 0,
        completed_at: None,
        trackers: Vec::new(),
        super_seed: false,
        ..ResumeRecord::default()
    }
}

fn some_pieces() -> Bitfield {
    let mut have = Bitfield::new(10);
    have.set(3);
    have
}

#[test]
fn files_as_the_record_left_them_are_trusted() {
    let files = vec![Some((100, 5)), None];
    let rec = record(&some_pieces(), files.clone());
    let start = ResumeState::start_from(&rec, 10, &files, || panic!("not asked"));
    assert_eq!(start, StartFrom::Known(some_pieces()));
}

#[test]
fn changed_files_are_checked() {
    let rec = record(&some_pieces(), vec![Some((100, 5))]);
    let now = [Some((100, 6))];
    assert_eq!(
        ResumeState::start_from(&rec, 10, &now, || false),
        StartFrom::Check
    );
}

/// Every byte gone while the record had pieces: an unmounted disk, not a fresh download.
#[test]
fn data_missing_is_an_error_not_a_new_download() {
    let rec = record(&some_pieces(), vec![Some((100, 5))]);
    assert_eq!(
        ResumeState::start_from(&rec, 10, &[None], || true),
        StartFrom::DataMissing
    );
    // Nothing had, nothing lost: a check.
    let rec = record(&Bitfield::new(10), vec![Some((100, 5))]);
    assert_eq!(
        ResumeState::start_from(&rec, 10, &[None], || true),
        StartFrom::Check
    );
}

#[test]
fn a_record_of_another_size_is_checked() {
    let rec = record(&some_pieces(), vec![None]);
    assert_eq!(
        ResumeState::start_from(&rec, 90, &[None], || true),
        StartFrom::Check
    );
}

#[test]
fn restored_counters_and_settings() {
    let mut rec = record(&some_pieces(), vec![]);
    let r = ResumeState::restored(&rec);
    assert_eq!((r.uploaded, r.downloaded), (9, 7));
    assert_eq!((r.added_at, r.priorities), (None, None));
    rec.added_at = 5;
    rec.priorities = vec![FilePriority::High];
    let r = ResumeState::restored(&rec);
    assert_eq!(r.added_at, Some(5));
    assert_eq!(r.priorities, Some(vec![FilePriority::High]));
}

/// Nothing is written while what we have is unknown: the record on disk still knows.
#[test]
fn an_unchecked_torrent_writes_no_record() {
    let dir = StatePaths::torrents_dir(Path::new("/state"));
    let paths = StatePaths::of(&Arc::clone(&dir), InfoHash([1; 20]));
    let mut state = ResumeState::new(Some(paths.clone()));
    let have = some_pieces();
    let snapshot = |have| Snapshot {
        info_hash: InfoHash([1; 20]),
        save_dir: PathBuf::from("/data"),
        paused: true,
        have,
        files: vec![Some((1, 2))],
        priorities: Vec::new(),
        downloaded: 1,
        uploaded: 2,
        added_at: 3,
        completed_at: None,
        super_seed: true,
        queue: QueueSettings {
            position: 7,
            forced: true,
            seed_limits: swarm_model::SeedLimits {
                ratio: swarm_model::Limit::Own(1.5),
                ..Default::default()
            },
        },
        seeding_secs: 42,
        labels: vec!["tv".into()],
        limits: swarm_model::TorrentLimits {
            upload: Some(1 << 20),
            upload_slots: Some(3),
            ..Default::default()
        },
        moving: Some(crate::relocation::MoveJournal {
            to: "/done".into(),
            done: vec![1],
        }),
        complete_dir: Some("/final".into()),
    };
    let (path, bytes) = state.record(snapshot(&have)).expect("a record");
    assert_eq!(path, paths.resume());
    let back: ResumeRecord = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back.have_bytes(), Some(have.as_bytes().to_vec()));
    assert!(back.paused);
    assert!(back.super_seed, "the setting is kept");
    assert_eq!(
        (back.queue_position, back.forced, back.seeding_secs),
        (Some(7), true, 42),
        "the queue's settings are kept"
    );
    assert_eq!(back.seed_limits.ratio, swarm_model::Limit::Own(1.5));
    assert_eq!(back.labels, ["tv"], "the labels are kept");
    assert_eq!(back.limits.upload, Some(1 << 20), "the limits are kept");
    assert_eq!(back.limits.upload_slots, Some(3));
    assert_eq!(
        back.moving.map(|m| (m.to, m.done)),
        Some(("/done".into(), vec![1])),
        "a move's journal is kept"
    );
    assert_eq!(back.complete_dir, Some("/final".into()));
    state.unchecked = true;
    assert!(state.record(snapshot(&have)).is_none());
    assert!(ResumeState::new(None).record(snapshot(&have)).is_none());
}
