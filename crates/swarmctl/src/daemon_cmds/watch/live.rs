//! The live view of `swarmctl watch` on a terminal: one line per torrent, redrawn in place.
//!
//! Pure: it takes the daemon's list, then stream items, and makes frames for a terminal of a
//! given size; the caller writes them and says when time has passed. What it shows comes from
//! the `state` fields the daemon sends (the list, `progress` events), never guessed from what an
//! event implies, except where the event says it outright (`completed`: seeding, `error`).
//!
//! A frame never scrolls the terminal: it has at most `rows - 1` lines (the last row keeps the
//! cursor), each shorter than the width (a wrapped line would throw off the cursor movement
//! back to the frame's start). Torrents that do not fit are counted on the last line.

use std::time::{Duration, Instant};

use swarm_control::human::rate;
use swarm_control::{Event, InfoHash, StreamItem, TorrentState, TorrentSummary};

use crate::daemon_cmds::render::{short_hash, truncate_to_width};

/// Redraws at most this often; progress events can come many times a second.
pub const FRAME: Duration = Duration::from_millis(100);

/// Columns and rows of the terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermSize {
    pub cols: usize,
    pub rows: usize,
}

struct Row {
    info_hash: InfoHash,
    name: String,
    progress: f64,
    down: u64,
    up: u64,
    /// `None` between `added` and the torrent's first progress.
    state: Option<TorrentState>,
    /// Why the torrent is in state `error`.
    error: Option<String>,
    /// How far its data's move is, while one is under way.
    moving: Option<f64>,
}

pub struct LiveView {
    rows: Vec<Row>,
    /// Lines of the frame on screen (the cursor is on the line below them).
    drawn: usize,
    drawn_size: Option<TermSize>,
    last_draw: Option<Instant>,
    /// Something changed since the last frame.
    dirty: bool,
    lagged: u64,
}

impl LiveView {
    pub fn new(list: Vec<TorrentSummary>) -> Self {
        let rows = list
            .into_iter()
            .map(|t| Row {
                info_hash: t.info_hash,
                name: t.name,
                progress: t.progress,
                down: t.download_rate,
                up: t.upload_rate,
                state: Some(t.state),
                error: t.error,
                moving: t.moving.map(|m| m.progress),
            })
            .collect();
        LiveView {
            rows,
            drawn: 0,
            drawn_size: None,
            last_draw: None,
            dirty: true,
            lagged: 0,
        }
    }

    fn row(&mut self, info_hash: &InfoHash) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.info_hash == *info_hash)
    }

    /// Takes one stream item; true when it should be shown at once rather than with the next
    /// frame (anything but progress).
    pub fn apply(&mut self, item: &StreamItem) -> bool {
        self.dirty = true;
        match item {
            StreamItem::Lagged { missed } => self.lagged += missed,
            StreamItem::Event(Event::Added { info_hash, name }) => {
                if self.row(info_hash).is_none() {
                    self.rows.push(Row {
                        info_hash: *info_hash,
                        name: name.clone(),
                        progress: 0.0,
                        down: 0,
                        up: 0,
                        state: None,
                        error: None,
                        moving: None,
                    });
                }
            }
            StreamItem::Event(Event::Removed { info_hash }) => {
                self.rows.retain(|r| r.info_hash != *info_hash)
            }
            StreamItem::Event(Event::Completed { info_hash, name }) => {
                if let Some(r) = self.row(info_hash) {
                    // A torrent that completes goes on seeding; its last progress said
                    // `downloading`, and an idle seed sends no more.
                    (r.progress, r.down, r.state) = (1.0, 0, Some(TorrentState::Seeding));
                    r.name = name.clone();
                }
            }
            StreamItem::Event(Event::Error { info_hash, message }) => {
                if let Some(r) = self.row(info_hash) {
                    r.state = Some(TorrentState::Error);
                    r.error = Some(message.clone());
                }
            }
            StreamItem::Event(Event::State {
                info_hash, state, ..
            }) => {
                if let Some(r) = self.row(info_hash) {
                    r.state = Some(*state);
                    if *state != TorrentState::Error {
                        r.error = None;
                    }
                    if *state != TorrentState::Downloading {
                        r.down = 0;
                    }
                }
            }
            StreamItem::Event(Event::Unknown) => return false,
            StreamItem::Event(Event::Moving {
                info_hash,
                progress,
                ..
            }) => {
                if let Some(r) = self.row(info_hash) {
                    r.moving = (*progress < 1.0).then_some(*progress);
                }
                return false;
            }
            StreamItem::Event(Event::Progress {
                info_hash,
                progress,
                download_rate,
                upload_rate,
                state,
            }) => {
                if let Some(r) = self.row(info_hash) {
                    (r.progress, r.down, r.up, r.state) =
                        (*progress, *download_rate, *upload_rate, Some(*state));
                    if *state != TorrentState::Error {
                        r.error = None;
                    }
                }
                return false;
            }
        }
        true
    }

    /// The bytes to write now, if any: a frame when something changed and either `urgent` or the
    /// last frame is [`FRAME`] old, or when the terminal changed size.
    pub fn redraw(&mut self, now: Instant, size: TermSize, urgent: bool) -> Option<String> {
        let resized = self.drawn_size.is_some_and(|s| s != size);
        let due = urgent
            || self
                .last_draw
                .is_none_or(|t| now.duration_since(t) >= FRAME);
        if !(resized || self.dirty && due) {
            return None;
        }
        let mut out = String::new();
        if resized {
            // Lines drawn for the old width may have been re-wrapped by the terminal: start
            // over on a clear screen.
            out.push_str("\x1b[H\x1b[2J");
        } else if self.drawn > 0 {
            // Back to the first line of the previous frame, and clear everything below.
            out.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        let lines = self.frame(size);
        for l in &lines {
            out.push_str(l);
            out.push('\n');
        }
        self.drawn = lines.len();
        self.drawn_size = Some(size);
        self.last_draw = Some(now);
        self.dirty = false;
        Some(out)
    }

    /// The lines of one frame for a terminal of `size`.
    pub fn frame(&self, size: TermSize) -> Vec<String> {
        let max_lines = size.rows.saturating_sub(1).max(1);
        let width = size.cols.saturating_sub(1).max(1);
        let mut notes = Vec::new();
        if self.rows.is_empty() {
            notes.push("no torrents (waiting for events; Ctrl-C to quit)".to_owned());
        }
        if self.lagged > 0 {
            notes.push(format!("({} events missed)", self.lagged));
        }
        let room = max_lines.saturating_sub(notes.len()).max(1);
        let mut lines: Vec<String> = if self.rows.len() <= room {
            self.rows.iter().map(|r| line(r, width)).collect()
        } else {
            let shown = room.saturating_sub(1);
            let mut l: Vec<String> = self.rows[..shown].iter().map(|r| line(r, width)).collect();
            l.push(format!(
                "… and {} more torrents (a taller terminal shows them)",
                self.rows.len() - shown
            ));
            l
        };
        lines.extend(notes);
        lines.truncate(max_lines);
        lines
            .into_iter()
            .map(|l| truncate_to_width(&l, width))
            .collect()
    }
}

/// One torrent in about `width` columns (the caller cuts what is left over): the name matters
/// more than the rates, and the rates more than the bar, so on a narrow terminal the bar goes
/// first, then the rates; the name is cut last.
fn line(r: &Row, width: usize) -> String {
    /// Columns of the hash, the percentage and the state, with their spaces.
    const HEAD: usize = 8 + 1 + 6 + 1 + 11;
    /// Columns of `  ↓RATE ↑RATE`.
    const RATES: usize = 2 + 1 + 11 + 1 + 1 + 11;
    /// Columns kept for the name before the rates and the bar get any.
    const NAME_ROOM: usize = 2 + 20;
    let progress = r.progress.clamp(0.0, 1.0);
    let mut room = width.saturating_sub(HEAD + NAME_ROOM);
    let rates = if room >= RATES {
        room -= RATES;
        format!("  ↓{:>11} ↑{:>11}", rate(r.down), rate(r.up))
    } else {
        String::new()
    };
    let bar_width = room.saturating_sub(3).min(24);
    let bar = if bar_width >= 5 {
        let filled = ((progress * bar_width as f64).round() as usize).min(bar_width);
        format!(
            "[{}{}] ",
            "#".repeat(filled),
            "-".repeat(bar_width - filled)
        )
    } else {
        String::new()
    };
    let error = r
        .error
        .as_deref()
        .map(|e| format!("  ({e})"))
        .or_else(|| r.moving.map(|p| format!("  (moving {:.0}%)", p * 100.0)))
        .unwrap_or_default();
    format!(
        "{} {bar}{:5.1}% {:<11}{rates}  {}{error}",
        short_hash(&r.info_hash),
        progress * 100.0,
        r.state.map_or("added", TorrentState::as_str),
        r.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test's info-hash from its first hex digits.
    fn ih(h: &str) -> InfoHash {
        InfoHash::from_hex(&format!("{h:0<40}")).unwrap()
    }

    const WIDE: TermSize = TermSize {
        cols: 120,
        rows: 40,
    };

    fn summary(h: &str, state: TorrentState) -> TorrentSummary {
        TorrentSummary {
            info_hash: ih(h),
            name: format!("name-{h}"),
            state,
            progress: 0.5,
            total_bytes: 100,
            have_bytes: 50,
            wanted_bytes: 100,
            left_bytes: 50,
            download_rate: 0,
            upload_rate: 0,
            downloaded: 50,
            uploaded: 0,
            peers: 0,
            save_dir: "/d".into(),
            error: None,
            queue_position: 0,
            forced: false,
            labels: Vec::new(),
            moving: None,
        }
    }

    fn progress(h: &str, p: f64, state: TorrentState) -> StreamItem {
        StreamItem::Event(Event::Progress {
            info_hash: ih(h),
            progress: p,
            download_rate: 2048,
            upload_rate: 0,
            state,
        })
    }

    #[test]
    fn redraws_in_place() {
        let mut v = LiveView::new(Vec::new());
        let t0 = Instant::now();
        v.apply(&StreamItem::Event(Event::Added {
            info_hash: ih("abcdef0123"),
            name: "n".into(),
        }));
        let first = v.redraw(t0, WIDE, true).unwrap();
        assert!(first.starts_with("abcdef01 [---"), "{first}");
        assert!(first.contains("added"), "{first}");
        // Progress within a frame waits for the next one, then moves up over the old frame.
        assert!(!v.apply(&progress("abcdef0123", 0.5, TorrentState::Downloading)));
        assert_eq!(v.redraw(t0, WIDE, false), None);
        let next = v.redraw(t0 + FRAME, WIDE, false).unwrap();
        assert!(next.starts_with("\x1b[1F\x1b[J"), "{next:?}");
        assert!(
            next.contains("#-") && next.contains(" 50.0% downloading"),
            "{next}"
        );
        // Nothing new: nothing drawn.
        assert_eq!(v.redraw(t0 + 3 * FRAME, WIDE, false), None);
    }

    /// The stale final line of issue 22: "100.0% downloading … (completed)".
    #[test]
    fn completion_and_state_changes_show() {
        let mut v = LiveView::new(vec![summary("aaaaaaaa11", TorrentState::Downloading)]);
        v.apply(&StreamItem::Event(Event::Completed {
            info_hash: ih("aaaaaaaa11"),
            name: "name-aaaaaaaa11".into(),
        }));
        let l = v.frame(WIDE).join("\n");
        assert!(l.contains("100.0% seeding"), "{l}");
        assert!(
            !l.contains("downloading") && !l.contains("completed"),
            "{l}"
        );
        // Paused, then an error, then resumed: each state as the daemon says it.
        v.apply(&progress("aaaaaaaa11", 1.0, TorrentState::Paused));
        assert!(v.frame(WIDE)[0].contains(" paused "), "{:?}", v.frame(WIDE));
        v.apply(&StreamItem::Event(Event::Error {
            info_hash: ih("aaaaaaaa11"),
            message: "disk full".into(),
        }));
        assert!(v.frame(WIDE)[0].contains("error") && v.frame(WIDE)[0].contains("(disk full)"));
        v.apply(&progress("aaaaaaaa11", 1.0, TorrentState::Seeding));
        let l = &v.frame(WIDE)[0];
        assert!(l.contains(" seeding ") && !l.contains("disk full"), "{l}");
    }

    /// A move of the data shows on the torrent's line until it is done.
    #[test]
    fn a_move_shows_until_done() {
        let mut v = LiveView::new(vec![summary("bbbbbbbb22", TorrentState::Seeding)]);
        let moving = |p: f64| {
            StreamItem::Event(Event::Moving {
                info_hash: ih("bbbbbbbb22"),
                to: "/srv/archive".into(),
                progress: p,
            })
        };
        v.apply(&moving(0.25));
        let l = &v.frame(WIDE)[0];
        assert!(l.contains(" seeding ") && l.contains("(moving 25%)"), "{l}");
        v.apply(&moving(1.0));
        let l = &v.frame(WIDE)[0];
        assert!(!l.contains("moving"), "{l}");
    }

    /// More torrents than rows, and a narrow terminal: the frame fits, and says what it left out.
    #[test]
    fn frames_fit_the_terminal() {
        let list = (0..30)
            .map(|i| {
                let mut s = summary(&format!("{i:02}aaaaaaaa"), TorrentState::FetchingMetadata);
                s.name = format!("a rather long torrent name number {i} with more words after it");
                s
            })
            .collect();
        let v = LiveView::new(list);
        for size in [
            TermSize { cols: 40, rows: 6 },
            TermSize { cols: 80, rows: 24 },
            TermSize { cols: 10, rows: 2 },
            TermSize { cols: 200, rows: 1 },
        ] {
            let f = v.frame(size);
            assert!(f.len() < size.rows.max(2), "{size:?}: {} lines", f.len());
            for l in &f {
                assert!(l.chars().count() < size.cols.max(2), "{size:?}: {l:?}");
            }
            if size.rows > 2 {
                assert!(f.last().unwrap().starts_with("… and "), "{f:?}");
            }
        }
        // On a narrow terminal the name is kept, the bar and rates go.
        let narrow = v.frame(TermSize { cols: 50, rows: 6 });
        assert!(narrow[0].contains("a rather long"), "{narrow:?}");
        let f = v.frame(TermSize {
            cols: 120,
            rows: 40,
        });
        assert_eq!(f.len(), 30);
        assert!(f[0].contains("fetching_metadata"), "{}", f[0]);
    }

    #[test]
    fn a_resize_starts_over() {
        let mut v = LiveView::new(vec![summary("aaaaaaaa11", TorrentState::Seeding)]);
        let t0 = Instant::now();
        v.redraw(t0, WIDE, true).unwrap();
        let again = v
            .redraw(t0, TermSize { cols: 50, rows: 10 }, false)
            .unwrap();
        assert!(again.starts_with("\x1b[H\x1b[2J"), "{again:?}");
    }
}
