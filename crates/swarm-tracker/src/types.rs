//! The vocabulary shared by the HTTP and UDP clients and the tier list: what we ask a tracker, what it
//! answers, and how an exchange can fail.
//!
//! These are plain data types. Both transports produce the same [`AnnounceResponse`], so the announcer
//! never needs to know which protocol a tracker speaks.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use swarm_wire::InfoHash;

/// The `event` of an announce (BEP 3). `None` is the periodic re-announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Event {
    #[default]
    None,
    Started,
    Completed,
    Stopped,
}

impl Event {
    /// The value of the HTTP `event` parameter; `None` means the parameter is left out.
    pub fn http_name(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// The numeric code in a BEP 15 announce (the order differs from the enum's on purpose:
    /// it is the wire's).
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }
}

/// Everything an announce tells the tracker about us and one torrent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    /// The port we accept peer connections on.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// How many peers we would like; `None` lets the tracker choose (usually 50).
    pub numwant: Option<u32>,
    /// Ask for the BEP 23 compact peer list. HTTP only; UDP replies are always compact.
    pub compact: bool,
    /// A random number fixed for the session, so the tracker can recognise us after an IP change.
    pub key: u32,
    /// Echo of the `tracker id` a tracker gave us earlier (HTTP only).
    pub tracker_id: Option<String>,
    /// Our address, if it should differ from the one the tracker sees. Trackers usually honour it
    /// only from trusted sources. UDP can carry only an IPv4 address; an IPv6 one is not sent.
    pub ip: Option<IpAddr>,
}

impl AnnounceRequest {
    /// A request with neutral defaults (no event, compact, tracker's choice of numwant, key 0).
    pub fn new(info_hash: InfoHash, peer_id: [u8; 20], port: u16) -> Self {
        AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::None,
            numwant: None,
            compact: true,
            key: 0,
            tracker_id: None,
            ip: None,
        }
    }
}

/// What a tracker answered to a successful announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// How long the tracker wants us to wait before the next regular announce. Taken as given here;
    /// the [`TrackerList`](crate::TrackerList) clamps it to sane bounds when scheduling.
    pub interval: Duration,
    /// The shortest wait the tracker tolerates, even for forced announces.
    pub min_interval: Option<Duration>,
    /// To be echoed back in later announces (HTTP only).
    pub tracker_id: Option<String>,
    /// Seeders.
    pub complete: Option<u32>,
    /// Leechers.
    pub incomplete: Option<u32>,
    /// IPv4 and IPv6 peers, in the order the tracker gave them; entries with port 0 are dropped.
    pub peers: Vec<SocketAddr>,
    /// A `warning message`: the announce worked, but the tracker wants a human to know something.
    pub warning: Option<String>,
}

/// Swarm counts for one torrent, from a scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// What a tracker answered to a scrape: counts per info-hash, for the hashes it knows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    pub files: Vec<(InfoHash, ScrapeStats)>,
}

impl ScrapeResponse {
    /// The counts for one info-hash, if the tracker reported it.
    pub fn get(&self, info_hash: &InfoHash) -> Option<ScrapeStats> {
        self.files
            .iter()
            .find(|(h, _)| h == info_hash)
            .map(|(_, s)| *s)
    }
}

/// Why an exchange with a tracker failed. Every variant names the tracker, so a message shown to the
/// user (log line, `swarmctl trackers`) says which tracker it is about.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The tracker answered, and refused: its `failure reason` (HTTP) or error message (UDP).
    #[error("tracker {url} refused the request: {reason}")]
    Failure { url: String, reason: String },
    /// The tracker answered something we cannot use.
    #[error("tracker {url} sent a bad reply: {what}")]
    BadReply { url: String, what: String },
    /// No reply in time (after every retransmission, for UDP).
    #[error("tracker {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    /// Connecting, sending or receiving failed (including name resolution).
    #[error("tracker {url}: {source}")]
    Io {
        url: String,
        #[source]
        source: io::Error,
    },
    /// The URL is not one this client can talk to (scheme, missing port, no scrape convention, …).
    #[error("tracker URL {url} is not supported: {why}")]
    Unsupported { url: String, why: String },
}

impl TrackerError {
    /// The tracker URL the error is about.
    pub fn url(&self) -> &str {
        match self {
            TrackerError::Failure { url, .. }
            | TrackerError::BadReply { url, .. }
            | TrackerError::Timeout { url, .. }
            | TrackerError::Io { url, .. }
            | TrackerError::Unsupported { url, .. } => url,
        }
    }

    pub(crate) fn bad(url: &str, what: impl fmt::Display) -> Self {
        TrackerError::BadReply {
            url: url.to_owned(),
            what: what.to_string(),
        }
    }

    pub(crate) fn unsupported(url: &str, why: impl fmt::Display) -> Self {
        TrackerError::Unsupported {
            url: url.to_owned(),
            why: why.to_string(),
        }
    }

    pub(crate) fn io(url: &str, source: io::Error) -> Self {
        TrackerError::Io {
            url: url.to_owned(),
            source,
        }
    }
}

/// What a reply parser found wrong, before the transport attaches the tracker's URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplyProblem {
    /// The tracker refused, with this message.
    Refused(String),
    /// The reply is malformed; says how.
    Malformed(String),
}

impl ReplyProblem {
    pub(crate) fn malformed(what: impl fmt::Display) -> Self {
        ReplyProblem::Malformed(what.to_string())
    }

    pub(crate) fn into_error(self, url: &str) -> TrackerError {
        match self {
            ReplyProblem::Refused(reason) => TrackerError::Failure {
                url: url.to_owned(),
                reason,
            },
            ReplyProblem::Malformed(what) => TrackerError::bad(url, what),
        }
    }
}

/// Longest tracker-supplied text (failure reason, warning) we keep; the rest is cut off, so that a
/// hostile tracker cannot fill logs and status output.
pub(crate) const MAX_MESSAGE_LEN: usize = 1024;

/// Turns tracker-supplied bytes into a printable, bounded message.
pub(crate) fn message_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_LEN)
        .collect();
    if text.chars().count() > MAX_MESSAGE_LEN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_names_the_tracker() {
        let e = TrackerError::bad("http://t.example/announce", "no peers");
        assert!(e.to_string().contains("http://t.example/announce"));
        assert_eq!(e.url(), "http://t.example/announce");
        let e = TrackerError::io("udp://t:1", io::Error::other("boom"));
        assert!(e.to_string().contains("udp://t:1"));
    }

    #[test]
    fn messages_are_bounded_and_printable() {
        assert_eq!(message_text(b"bad\ntorrent"), "bad torrent");
        let long = vec![b'a'; 5000];
        assert_eq!(message_text(&long).chars().count(), MAX_MESSAGE_LEN + 1);
        assert_eq!(message_text(&[0xff, b'x']), "\u{fffd}x");
    }
}
