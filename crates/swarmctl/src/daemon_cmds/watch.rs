//! `swarmctl watch`: follows the daemon's event stream. On a terminal it keeps one progress bar
//! per torrent, redrawn in place; otherwise (a pipe, a log) it prints one line per event, or one
//! JSON object per line with `--json`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use swarm_control::human::{rate, utc};
use swarm_control::{Client, ClientError, Event, StreamItem, TorrentState, TorrentSummary};

use super::exit;
use super::render::{short_hash, state, truncate};

/// Redraws at most this often; progress events can come many times a second.
const FRAME: Duration = Duration::from_millis(100);

pub fn run(mut client: Client, json: bool) -> Result<u8, ClientError> {
    let live = !json && std::io::stdout().is_terminal();
    let initial = if live { client.list()? } else { Vec::new() };
    let events = client.subscribe()?;
    let mut view = live.then(|| LiveView::new(initial));
    let mut out = std::io::stdout().lock();
    for item in events {
        let item = item?;
        let written = match &mut view {
            Some(v) => v.apply(&item, &mut out),
            None if json => writeln!(out, "{}", json_line(&item)),
            None => writeln!(out, "{}", text_line(&item)),
        };
        if written.and_then(|()| out.flush()).is_err() {
            // Our reader went away (`swarmctl watch | head`): nothing left to do.
            return Ok(exit::OK);
        }
    }
    eprintln!("swarmctl: swarmd closed the connection");
    Ok(exit::NOT_RUNNING)
}

fn json_line(item: &StreamItem) -> String {
    match item {
        StreamItem::Event(e) => serde_json::to_string(e).unwrap_or_default(),
        StreamItem::Lagged { missed } => {
            serde_json::json!({"event": "lagged", "missed": missed}).to_string()
        }
    }
}

fn text_line(item: &StreamItem) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let time = utc(now);
    let time = time.get(11..19).unwrap_or(&time);
    let what = match item {
        StreamItem::Lagged { missed } => format!("(missed {missed} events: reading too slowly)"),
        StreamItem::Event(e) => match e {
            Event::Added { info_hash, name } => format!("{} added {name}", short_hash(info_hash)),
            Event::Completed { info_hash, name } => {
                format!("{} completed {name}", short_hash(info_hash))
            }
            Event::Error { info_hash, message } => {
                format!("{} error: {message}", short_hash(info_hash))
            }
            Event::Removed { info_hash } => format!("{} removed", short_hash(info_hash)),
            Event::Progress {
                info_hash,
                progress,
                download_rate,
                upload_rate,
                state: s,
            } => format!(
                "{} {:5.1}% {} down {} up {}",
                short_hash(info_hash),
                progress * 100.0,
                state(*s),
                rate(*download_rate),
                rate(*upload_rate)
            ),
        },
    };
    format!("{time} {what}")
}

struct Row {
    info_hash: String,
    name: String,
    progress: f64,
    down: u64,
    up: u64,
    state: TorrentState,
    note: Option<String>,
}

struct LiveView {
    rows: Vec<Row>,
    drawn: usize,
    last_draw: Option<Instant>,
    lagged: u64,
}

impl LiveView {
    fn new(list: Vec<TorrentSummary>) -> Self {
        let rows = list
            .into_iter()
            .map(|t| Row {
                info_hash: t.info_hash,
                name: t.name,
                progress: t.progress,
                down: t.download_rate,
                up: t.upload_rate,
                state: t.state,
                note: t.error,
            })
            .collect();
        LiveView {
            rows,
            drawn: 0,
            last_draw: None,
            lagged: 0,
        }
    }

    fn row(&mut self, info_hash: &str) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.info_hash == info_hash)
    }

    fn apply(&mut self, item: &StreamItem, out: &mut impl Write) -> std::io::Result<()> {
        let mut urgent = true;
        match item {
            StreamItem::Lagged { missed } => self.lagged += missed,
            StreamItem::Event(Event::Added { info_hash, name }) => {
                if self.row(info_hash).is_none() {
                    self.rows.push(Row {
                        info_hash: info_hash.clone(),
                        name: name.clone(),
                        progress: 0.0,
                        down: 0,
                        up: 0,
                        state: TorrentState::Checking,
                        note: None,
                    });
                }
            }
            StreamItem::Event(Event::Removed { info_hash }) => {
                self.rows.retain(|r| &r.info_hash != info_hash)
            }
            StreamItem::Event(Event::Completed { info_hash, .. }) => {
                if let Some(r) = self.row(info_hash) {
                    r.progress = 1.0;
                    r.note = Some("completed".into());
                }
            }
            StreamItem::Event(Event::Error { info_hash, message }) => {
                if let Some(r) = self.row(info_hash) {
                    r.state = TorrentState::Error;
                    r.note = Some(message.clone());
                }
            }
            StreamItem::Event(Event::Progress {
                info_hash,
                progress,
                download_rate,
                upload_rate,
                state,
            }) => {
                urgent = false;
                if let Some(r) = self.row(info_hash) {
                    (r.progress, r.down, r.up, r.state) =
                        (*progress, *download_rate, *upload_rate, *state);
                }
            }
        }
        if !urgent && self.last_draw.is_some_and(|t| t.elapsed() < FRAME) {
            return Ok(());
        }
        self.draw(out)
    }

    fn draw(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        let mut frame = String::new();
        if self.drawn > 0 {
            // Back to the first line of the previous frame, and clear everything below.
            frame.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        let mut lines: Vec<String> = self.rows.iter().map(line).collect();
        if lines.is_empty() {
            lines.push("no torrents (waiting for events; Ctrl-C to quit)".into());
        }
        if self.lagged > 0 {
            lines.push(format!("({} events missed)", self.lagged));
        }
        for l in &lines {
            frame.push_str(l);
            frame.push('\n');
        }
        self.drawn = lines.len();
        self.last_draw = Some(Instant::now());
        out.write_all(frame.as_bytes())
    }
}

fn line(r: &Row) -> String {
    const WIDTH: usize = 24;
    let filled = ((r.progress.clamp(0.0, 1.0) * WIDTH as f64).round() as usize).min(WIDTH);
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
    let note = r
        .note
        .as_deref()
        .map(|n| format!("  ({})", truncate(n, 40)))
        .unwrap_or_default();
    format!(
        "{} [{bar}] {:5.1}% {:<11} ↓{:>11} ↑{:>11}  {}{note}",
        short_hash(&r.info_hash),
        r.progress * 100.0,
        state(r.state),
        rate(r.down),
        rate(r.up),
        truncate(&r.name, 40)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(h: &str, p: f64) -> StreamItem {
        StreamItem::Event(Event::Progress {
            info_hash: h.into(),
            progress: p,
            download_rate: 2048,
            upload_rate: 0,
            state: TorrentState::Downloading,
        })
    }

    #[test]
    fn live_view_redraws_in_place() {
        let mut v = LiveView::new(Vec::new());
        let mut out = Vec::new();
        v.apply(
            &StreamItem::Event(Event::Added {
                info_hash: "abcdef0123".into(),
                name: "n".into(),
            }),
            &mut out,
        )
        .unwrap();
        v.last_draw = None;
        v.apply(&progress("abcdef0123", 0.5), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("abcdef01 [------------------------]   0.0%"),
            "{text}"
        );
        assert!(text.contains("\x1b[1F\x1b[J"), "{text:?}");
        assert!(
            text.contains("[############------------]  50.0% downloading"),
            "{text}"
        );
    }

    #[test]
    fn plain_and_json_lines() {
        let l = text_line(&progress("abcdef0123", 0.25));
        assert!(
            l.ends_with("abcdef01  25.0% downloading down 2.0 KiB/s up 0 B/s"),
            "{l}"
        );
        assert_eq!(
            json_line(&StreamItem::Lagged { missed: 3 }),
            r#"{"event":"lagged","missed":3}"#
        );
    }
}
