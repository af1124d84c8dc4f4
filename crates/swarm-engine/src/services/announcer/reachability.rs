//! Trackers that could not be reached lately, shared by every torrent's announces.
//!
//! A dead tracker is usually shared: a thousand torrents from one site announce to one URL. When
//! an announce to a URL cannot connect (refused, unreachable, timed out, cut off), every other
//! announce to that URL in the next [`UNREACHABLE_FOR`] fails at once with a "not tried" error
//! instead of repeating the attempt: one attempt rather than a thousand, and no HTTP slot held for
//! the 15 s timeout each. Each torrent still backs off on its own, as if it had tried. Any answer
//! from the tracker, even a refusal, clears the mark; so does the user's `reannounce`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use swarm_tracker::TrackerError;

/// How long a tracker that could not be reached is skipped by every torrent.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(30);

struct Mark {
    since: Instant,
    until: Instant,
    error: String,
}

#[derive(Clone, Default)]
pub struct Reachability(Arc<Mutex<HashMap<String, Mark>>>);

impl Reachability {
    fn marks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Mark>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error to fail an announce to `url` with, without trying, if it is marked.
    pub fn skip(&self, url: &str, now: Instant) -> Option<TrackerError> {
        let marks = self.marks();
        let m = marks.get(url).filter(|m| m.until > now)?;
        Some(TrackerError::Io {
            url: url.to_owned(),
            source: std::io::Error::other(format!(
                "not tried: unreachable for another torrent {} s ago: {}",
                now.saturating_duration_since(m.since).as_secs(),
                m.error
            )),
        })
    }

    /// Records how a real attempt to `url` ended.
    pub fn note<T>(&self, url: &str, res: &Result<T, TrackerError>, now: Instant) {
        match res {
            Err(TrackerError::Io { source, .. }) => self.mark(url, source.to_string(), now),
            Err(TrackerError::Timeout { after, .. }) => {
                self.mark(url, format!("no answer within {} s", after.as_secs()), now)
            }
            // It answered (even with a refusal or garbage): it is there.
            _ => self.forget(url),
        }
    }

    fn mark(&self, url: &str, error: String, now: Instant) {
        self.marks().insert(
            url.to_owned(),
            Mark {
                since: now,
                until: now + UNREACHABLE_FOR,
                error,
            },
        );
    }

    pub fn forget(&self, url: &str) {
        self.marks().remove(url);
    }

    /// Drops expired marks (the map never outgrows the trackers failing right now).
    pub fn prune(&self, now: Instant) {
        self.marks().retain(|_, m| m.until > now);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.marks().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(url: &str) -> TrackerError {
        TrackerError::Io {
            url: url.into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        }
    }

    #[test]
    fn marks_on_connection_failures_only_and_expires() {
        let r = Reachability::default();
        let t0 = Instant::now();
        let (a, b, c) = ("http://a/ann", "http://b/ann", "udp://c:1");
        r.note::<()>(a, &Err(io(a)), t0);
        r.note::<()>(
            c,
            &Err(TrackerError::Timeout {
                url: c.into(),
                after: Duration::from_secs(15),
            }),
            t0,
        );
        // A refusal is an answer: the tracker is there.
        r.note::<()>(
            b,
            &Err(TrackerError::Failure {
                url: b.into(),
                reason: "unregistered torrent".into(),
            }),
            t0,
        );
        let e = r.skip(a, t0 + Duration::from_secs(3)).expect("a is marked");
        let text = e.to_string();
        assert!(
            text.contains("not tried") && text.contains("3 s ago"),
            "{text}"
        );
        assert!(r.skip(c, t0).is_some());
        assert!(r.skip(b, t0).is_none());
        // Expired: tried again; pruned.
        assert!(r.skip(a, t0 + UNREACHABLE_FOR).is_none());
        assert_eq!(r.len(), 2);
        r.prune(t0 + UNREACHABLE_FOR);
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn any_answer_or_forget_clears_the_mark() {
        let r = Reachability::default();
        let t0 = Instant::now();
        let a = "http://a/ann";
        r.note::<()>(a, &Err(io(a)), t0);
        r.note(a, &Ok(()), t0);
        assert!(r.skip(a, t0).is_none());
        r.note::<()>(a, &Err(io(a)), t0);
        r.forget(a);
        assert!(r.skip(a, t0).is_none());
    }
}
