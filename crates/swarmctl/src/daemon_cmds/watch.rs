//! `swarmctl watch`: follows the daemon's event stream. On a terminal it keeps one line per
//! torrent, redrawn in place and clipped to the terminal ([`live`]); otherwise (a pipe, a log) it
//! prints one line per event, or one JSON object per line with `--json`.

mod live;

use std::io::{IsTerminal, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use swarm_control::human::{rate, utc};
use swarm_control::{Client, ClientError, Event, StreamItem};

use super::render::short_hash;
use super::{exit, Failure};
use live::{LiveView, TermSize, FRAME};

pub fn run(mut client: Client, json: bool) -> Result<u8, ClientError> {
    let live = !json && std::io::stdout().is_terminal();
    let initial = if live { client.list()? } else { Vec::new() };
    let mut events = client.subscribe()?;
    let mut out = std::io::stdout().lock();
    let mut view = if live {
        // Wake up every frame: progress held back by the frame limit is drawn even when no
        // event follows it, and a resized terminal is redrawn.
        events.client_mut().set_timeout(Some(FRAME))?;
        Some(LiveView::new(initial))
    } else {
        None
    };
    loop {
        let item = match events.next() {
            None => break,
            Some(Err(ClientError::Timeout { .. })) if view.is_some() => None,
            Some(item) => Some(item?),
        };
        let written = match (&mut view, &item) {
            (Some(v), _) => {
                let urgent = item.as_ref().is_some_and(|i| v.apply(i));
                match v.redraw(Instant::now(), terminal_size(), urgent) {
                    Some(frame) => out.write_all(frame.as_bytes()),
                    None => Ok(()),
                }
            }
            // A newer daemon's event kind: nothing to show.
            (None, Some(StreamItem::Event(Event::Unknown))) => Ok(()),
            (None, Some(i)) if json => writeln!(out, "{}", json_line(i)),
            (None, Some(i)) => writeln!(out, "{}", text_line(i)),
            (None, None) => Ok(()),
        };
        if written.and_then(|()| out.flush()).is_err() {
            // Our reader went away (`swarmctl watch | head`): nothing left to do.
            return Ok(exit::OK);
        }
    }
    let closed = Failure {
        code: exit::NOT_RUNNING,
        message: "swarmd closed the connection".into(),
    };
    closed.report(json, None);
    Ok(closed.code)
}

/// The size of the terminal on stdout; 80×24 when it cannot be told.
fn terminal_size() -> TermSize {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; the result is only used
    // when the call succeeded.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 && ws.ws_row > 0 {
        TermSize {
            cols: usize::from(ws.ws_col),
            rows: usize::from(ws.ws_row),
        }
    } else {
        TermSize { cols: 80, rows: 24 }
    }
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
            Event::State {
                info_hash,
                name,
                state,
            } => format!("{} {state} {name}", short_hash(info_hash)),
            Event::Unknown => "(an event of a newer swarmd)".into(),
            Event::Moving {
                info_hash,
                to,
                progress,
            } if *progress >= 1.0 => format!("{} moved to {to}", short_hash(info_hash)),
            Event::Moving {
                info_hash,
                to,
                progress,
            } => format!(
                "{} moving {:5.1}% to {to}",
                short_hash(info_hash),
                progress * 100.0
            ),
            Event::Progress {
                info_hash,
                progress,
                download_rate,
                upload_rate,
                state,
            } => format!(
                "{} {:5.1}% {state} down {} up {}",
                short_hash(info_hash),
                progress * 100.0,
                rate(*download_rate),
                rate(*upload_rate)
            ),
        },
    };
    format!("{time} {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_control::TorrentState;

    #[test]
    fn plain_and_json_lines() {
        let item = StreamItem::Event(Event::Progress {
            info_hash: swarm_control::InfoHash::from_hex(&format!("{:0<40}", "abcdef0123"))
                .unwrap(),
            progress: 0.25,
            download_rate: 2048,
            upload_rate: 0,
            state: TorrentState::FetchingMetadata,
        });
        let l = text_line(&item);
        assert!(
            l.ends_with("abcdef01  25.0% fetching_metadata down 2.0 KiB/s up 0 B/s"),
            "{l}"
        );
        assert_eq!(
            json_line(&StreamItem::Lagged { missed: 3 }),
            r#"{"event":"lagged","missed":3}"#
        );
    }
}
