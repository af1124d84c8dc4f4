//! The watch directory: `.torrent` files (and `.magnet` files holding one magnet URI) dropped into
//! it are added to the engine.
//!
//! A file is read only once it is complete: its size and mtime must be unchanged across two scans
//! at least `settle` apart (a browser or `scp` may still be writing it). Then it is parsed and
//! added, and renamed `NAME.added` (or deleted, or kept and remembered, per `[watch] on_added`).
//! A file that does not parse, or that the engine refuses, is renamed `NAME.invalid` with the
//! reason logged and written to `NAME.invalid.txt`. A `.torrent` that merely ends too early
//! (half-written by a writer that paused) gets `incomplete_grace` to be completed first. A torrent the engine already has is not added
//! twice: the file is treated as added.
//!
//! inotify wakes the scanner right away; a full rescan every `rescan` catches what inotify misses
//! (network file systems, queue overflows, a directory created later). The scanner is one task,
//! owned by `serve()`, which restarts it with new options on SIGHUP.

mod kept;
mod scan;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use inotify::{Inotify, WatchMask};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::OnAdded;
use crate::engine::Engine;
use scan::Scanner;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    pub dir: PathBuf,
    pub on_added: OnAdded,
    /// Period of full rescans.
    pub rescan: Duration,
    /// How long a file must stay unchanged before it is read.
    pub settle: Duration,
    /// How long a `.torrent` that ends in the middle of a value may stay unchanged before it is
    /// declared invalid (its writer may pause for longer than `settle`).
    pub incomplete_grace: Duration,
    /// Add torrents paused.
    pub paused: bool,
    /// Where `keep` mode remembers the files it has added (in the state directory).
    pub kept_file: PathBuf,
}

impl WatchOptions {
    pub const SETTLE: Duration = Duration::from_secs(1);
    pub const INCOMPLETE_GRACE: Duration = Duration::from_secs(30);
    /// inotify events come in bursts (create, writes, close): wait this long for the burst to end.
    const DEBOUNCE: Duration = Duration::from_millis(100);
}

/// Runs the watch directory until `cancel`.
pub async fn run<E: Engine>(options: WatchOptions, engine: E, cancel: CancellationToken) {
    if let Err(e) = std::fs::create_dir_all(&options.dir) {
        tracing::warn!(dir = %options.dir.display(), error = %e, "cannot create the watch directory");
    }
    let mut events = inotify_stream(&options);
    tracing::info!(
        dir = %options.dir.display(),
        inotify = events.is_some(),
        rescan_secs = options.rescan.as_secs(),
        "watching for .torrent and .magnet files"
    );
    let (rescan, settle) = (options.rescan, options.settle.min(options.rescan));
    let mut scanner = Scanner::new(options, engine);
    let mut next_scan = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next_scan) => {
                if scanner.scan(&cancel).await.is_break() {
                    return;
                }
                next_scan = Instant::now() + if scanner.has_pending() { settle } else { rescan };
            }
            event = next_event(&mut events) => match event {
                Some(Ok(())) => next_scan = next_scan.min(Instant::now() + WatchOptions::DEBOUNCE),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "inotify failed; relying on periodic rescans");
                    events = None;
                }
                None => events = None,
            },
        }
    }
}

type EventStream = inotify::EventStream<Vec<u8>>;

fn inotify_stream(options: &WatchOptions) -> Option<EventStream> {
    let setup = || -> std::io::Result<EventStream> {
        let inotify = Inotify::init()?;
        inotify.watches().add(
            &options.dir,
            WatchMask::CREATE | WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO,
        )?;
        inotify.into_event_stream(vec![0u8; 4096])
    };
    setup()
        .map_err(|e| tracing::warn!(dir = %options.dir.display(), error = %e, "no inotify; using periodic rescans"))
        .ok()
}

async fn next_event(events: &mut Option<EventStream>) -> Option<std::io::Result<()>> {
    match events {
        Some(s) => s.next().await.map(|r| r.map(drop)),
        None => std::future::pending().await,
    }
}
