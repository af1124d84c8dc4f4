//! The watch directory against the fake engine, on a real directory, with short timings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{run, WatchOptions};
use crate::config::OnAdded;
use crate::engine::EngineError;
use crate::fake_engine::FakeEngine;
use crate::tests::{ih, info_hash_of, torrent_bytes};

const MAGNET_HASH: &str = "0123456789abcdef0123456789abcdef01234567";

struct Watch {
    dir: tempfile::TempDir,
    engine: FakeEngine,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn options(dir: &Path, on_added: OnAdded, settle: Duration) -> WatchOptions {
    WatchOptions {
        dir: dir.join("watch"),
        on_added,
        rescan: Duration::from_millis(200),
        settle,
        incomplete_grace: Duration::from_secs(2),
        paused: true,
        kept_file: dir.join("state/watch-kept.json"),
    }
}

impl Watch {
    fn start(on_added: OnAdded) -> Watch {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, FakeEngine::new(), on_added)
    }

    fn start_in(dir: tempfile::TempDir, engine: FakeEngine, on_added: OnAdded) -> Watch {
        Self::start_with(dir, engine, on_added, Duration::from_millis(100))
    }

    fn start_with(
        dir: tempfile::TempDir,
        engine: FakeEngine,
        on_added: OnAdded,
        settle: Duration,
    ) -> Watch {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            options(dir.path(), on_added, settle),
            engine.clone(),
            cancel.clone(),
        ));
        Watch {
            dir,
            engine,
            cancel,
            task,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("watch").join(name)
    }

    async fn ready(&self) {
        wait_until(|| self.path("").is_dir()).await;
    }

    async fn stop(self) -> (tempfile::TempDir, FakeEngine) {
        self.cancel.cancel();
        self.task.await.unwrap();
        (self.dir, self.engine)
    }

    fn added_count(&self) -> usize {
        self.engine
            .state()
            .calls
            .iter()
            .filter(|c| c.starts_with("add "))
            .count()
    }
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within 6 s");
}

#[tokio::test]
async fn torrent_is_added_and_renamed() {
    let w = Watch::start(OnAdded::Rename);
    w.ready().await;
    let bytes = torrent_bytes("a.iso", 3000);
    std::fs::write(w.path("a.torrent"), &bytes).unwrap();
    wait_until(|| w.path("a.torrent.added").exists()).await;
    assert!(!w.path("a.torrent").exists());
    let hash = info_hash_of(&bytes);
    assert!(w.engine.state().torrents[&ih(&hash)].paused_at_add);
    // Other files are left alone.
    std::fs::write(w.path("notes.txt"), b"x").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(w.path("notes.txt").exists());
    assert_eq!(w.added_count(), 1);
    w.stop().await;
}

#[tokio::test]
async fn magnet_file_and_delete_mode() {
    let w = Watch::start(OnAdded::Delete);
    w.ready().await;
    std::fs::write(
        w.path("m.MAGNET"),
        format!("magnet:?xt=urn:btih:{MAGNET_HASH}&dn=mag\n"),
    )
    .unwrap();
    wait_until(|| !w.path("m.MAGNET").exists()).await;
    assert!(w.engine.state().torrents.contains_key(&ih(MAGNET_HASH)));
    w.stop().await;
}

#[tokio::test]
async fn files_already_present_at_start_are_added() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("watch")).unwrap();
    std::fs::write(
        dir.path().join("watch/early.torrent"),
        torrent_bytes("early", 10),
    )
    .unwrap();
    let w = Watch::start_in(dir, FakeEngine::new(), OnAdded::Rename);
    wait_until(|| w.path("early.torrent.added").exists()).await;
    w.stop().await;
}

#[tokio::test]
async fn invalid_files_are_renamed_with_a_reason() {
    let w = Watch::start(OnAdded::Rename);
    w.ready().await;
    std::fs::write(w.path("bad.torrent"), b"this is not bencode").unwrap();
    std::fs::write(w.path("bad.magnet"), b"http://example.com/\n").unwrap();
    wait_until(|| w.path("bad.torrent.invalid").exists() && w.path("bad.magnet.invalid").exists())
        .await;
    let reason = std::fs::read_to_string(w.path("bad.torrent.invalid.txt")).unwrap();
    assert!(reason.contains("bad.torrent"), "{reason}");
    let reason = std::fs::read_to_string(w.path("bad.magnet.invalid.txt")).unwrap();
    assert!(reason.contains("magnet"), "{reason}");
    assert_eq!(w.added_count(), 0);
    w.stop().await;
}

#[tokio::test]
async fn engine_refusal_marks_invalid_and_transient_errors_retry() {
    let engine = FakeEngine::new();
    engine.state().fail_add = Some(EngineError::Invalid("save directory is read-only".into()));
    let w = Watch::start_in(tempfile::tempdir().unwrap(), engine, OnAdded::Rename);
    w.ready().await;
    std::fs::write(w.path("r.torrent"), torrent_bytes("r", 10)).unwrap();
    wait_until(|| w.path("r.torrent.invalid").exists()).await;
    let reason = std::fs::read_to_string(w.path("r.torrent.invalid.txt")).unwrap();
    assert!(reason.contains("read-only"), "{reason}");

    w.engine.state().fail_add = Some(EngineError::Internal("busy".into()));
    std::fs::write(w.path("t.torrent"), torrent_bytes("t", 10)).unwrap();
    wait_until(|| w.added_count() >= 2).await;
    assert!(
        w.path("t.torrent").exists(),
        "a transient failure must leave the file in place"
    );
    w.engine.state().fail_add = None;
    // Retried after the retry delay.
    for _ in 0..100 {
        if w.path("t.torrent.added").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(w.path("t.torrent.added").exists());
    w.stop().await;
}

#[tokio::test]
async fn duplicates_are_not_added_twice() {
    let engine = FakeEngine::new();
    let bytes = torrent_bytes("dup", 10);
    let hash = info_hash_of(&bytes);
    engine.insert(&hash, "dup");
    let w = Watch::start_in(tempfile::tempdir().unwrap(), engine, OnAdded::Rename);
    w.ready().await;
    std::fs::write(w.path("dup.torrent"), &bytes).unwrap();
    wait_until(|| w.path("dup.torrent.added").exists()).await;
    assert_eq!(w.engine.state().torrents.len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn keep_mode_remembers_across_restarts() {
    let w = Watch::start(OnAdded::Keep);
    w.ready().await;
    let bytes = torrent_bytes("kept", 10);
    std::fs::write(w.path("kept.torrent"), &bytes).unwrap();
    wait_until(|| w.added_count() == 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.added_count(), 1, "re-added while kept");
    assert!(w.path("kept.torrent").exists());
    let (dir, engine) = w.stop().await;

    // The user removes the torrent; a restarted watcher must still not add the kept file again.
    engine.state().torrents.clear();
    let w = Watch::start_in(dir, engine, OnAdded::Keep);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.added_count(), 1);
    // A new version of the file is new.
    std::fs::write(w.path("kept.torrent"), torrent_bytes("kept-v2", 20)).unwrap();
    wait_until(|| w.added_count() == 2).await;
    w.stop().await;
}

#[tokio::test]
async fn a_file_still_being_written_waits() {
    let settle = Duration::from_millis(400);
    let w = Watch::start_with(
        tempfile::tempdir().unwrap(),
        FakeEngine::new(),
        OnAdded::Rename,
        settle,
    );
    w.ready().await;
    let bytes = torrent_bytes("slow", 100_000);
    let (head, tail) = bytes.split_at(bytes.len() / 2);
    // Half a file, growing every 40 ms (well within settle): must not be judged invalid.
    std::fs::write(w.path("slow.torrent"), head).unwrap();
    for chunk in tail.chunks(tail.len() / 5 + 1) {
        tokio::time::sleep(Duration::from_millis(40)).await;
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(w.path("slow.torrent"))
            .unwrap()
            .write_all(chunk)
            .unwrap();
    }
    wait_until(|| w.path("slow.torrent.added").exists()).await;
    assert!(!w.path("slow.torrent.invalid").exists());
    w.stop().await;
}

#[tokio::test]
async fn a_half_written_torrent_waits_for_the_rest() {
    let w = Watch::start(OnAdded::Rename);
    w.ready().await;
    let bytes = torrent_bytes("half", 10_000);
    let (head, tail) = bytes.split_at(bytes.len() / 2);
    std::fs::write(w.path("half.torrent"), head).unwrap();
    // Unchanged for several settle periods, but shorter than the grace: still waiting.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(w.path("half.torrent").exists());
    assert!(!w.path("half.torrent.invalid").exists());
    assert_eq!(w.added_count(), 0);
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(w.path("half.torrent"))
        .unwrap()
        .write_all(tail)
        .unwrap();
    wait_until(|| w.path("half.torrent.added").exists()).await;
    assert_eq!(w.added_count(), 1);

    // One that is never completed is invalid once the grace is over.
    std::fs::write(w.path("never.torrent"), head).unwrap();
    wait_until(|| w.path("never.torrent.invalid").exists()).await;
    let reason = std::fs::read_to_string(w.path("never.torrent.invalid.txt")).unwrap();
    assert!(reason.contains("incomplete"), "{reason}");
    w.stop().await;
}
