//! swarm-tracker: BitTorrent tracker clients, free of actors.
//!
//! What this crate is:
//! - [`http_announce`] / [`http_scrape`]: HTTP(S) trackers (BEP 3; compact peers BEP 23; IPv6 peers
//!   BEP 7; scrape by the BEP 48 URL convention). Blocking, through `ureq`, with one deadline per
//!   call and a cap on the reply size. Run them on a blocking thread.
//! - [`UdpTrackerClient`]: UDP trackers (BEP 15), async on tokio, one socket shared by all
//!   trackers, connection ids reused for a minute, retransmission with configurable timing.
//! - [`TrackerList`]: BEP 12 tiers and per-tracker backoff, as a pure state machine: it says which
//!   tracker is due and when; it performs no I/O.
//! - The shared types: [`AnnounceRequest`], [`AnnounceResponse`], [`ScrapeResponse`], and
//!   [`TrackerError`], whose messages always name the tracker.
//!
//! What it is not: the announcer. Deciding which event to send, keeping the transfer counters,
//! feeding peers to torrents and timers all belong to the engine's `Announcer` actor, which drives
//! this crate. Nor does it parse metainfo (see `swarm-wire`); it takes tracker URLs as strings.
//!
//! Every reply is untrusted input: parsers are bounded and return errors, never panic.

mod compact;
mod http;
mod http_reply;
mod tiers;
mod types;
mod udp;
mod udp_packet;

pub use http::{
    announce_url, http_announce, http_scrape, percent_encode_bytes, scrape_url_of, MAX_REPLY_BYTES,
};
pub use tiers::{
    backoff, TrackerHealth, TrackerList, TrackerStatus, FIRST_RETRY, MAX_BACKOFF, MAX_INTERVAL,
    MIN_INTERVAL,
};
pub use types::{
    AnnounceRequest, AnnounceResponse, Event, ScrapeResponse, ScrapeStats, TrackerError,
};
pub use udp::{UdpConfig, UdpTrackerClient};
pub use udp_packet::MAX_SCRAPE_HASHES;

/// The reply decoders on their own, without a socket, for the libFuzzer targets in `fuzz/`. The
/// clients above are the API; these are what they run on each reply. Errors are the words the
/// clients would put in a [`TrackerError`].
#[doc(hidden)]
pub mod reply {
    use crate::compact::Family;
    use crate::types::{AnnounceResponse, ReplyProblem, ScrapeResponse, ScrapeStats};
    use crate::udp_packet::{self, Reply};

    fn words(p: ReplyProblem) -> String {
        match p {
            ReplyProblem::Refused(reason) => format!("refused: {reason}"),
            ReplyProblem::Malformed(what) => what,
        }
    }

    /// The body of an HTTP announce reply.
    pub fn http_announce(body: &[u8]) -> Result<AnnounceResponse, String> {
        crate::http_reply::parse_announce(body).map_err(words)
    }

    /// The body of an HTTP scrape reply.
    pub fn http_scrape(body: &[u8]) -> Result<ScrapeResponse, String> {
        crate::http_reply::parse_scrape(body).map_err(words)
    }

    /// What a UDP reply decoded to.
    #[derive(Debug)]
    pub enum UdpReply {
        Connect(u64),
        Announce(AnnounceResponse),
        Scrape(Vec<ScrapeStats>),
    }

    /// A UDP tracker packet, checked against the `action` and `txid` of the request it answers;
    /// `v6` is the family of the tracker's address (it sizes the peer entries).
    pub fn udp(buf: &[u8], action: u32, txid: u32, v6: bool) -> Result<UdpReply, String> {
        let family = if v6 { Family::V6 } else { Family::V4 };
        match udp_packet::parse_reply(buf, action, txid, family).map_err(words)? {
            Reply::Connect(id) => Ok(UdpReply::Connect(id)),
            Reply::Announce(a) => Ok(UdpReply::Announce(a)),
            Reply::Scrape(s) => Ok(UdpReply::Scrape(s)),
        }
    }

    /// The transaction id the client routes a packet by.
    pub fn udp_transaction_id(buf: &[u8]) -> Option<u32> {
        udp_packet::transaction_id(buf)
    }
}

/// The protocols a tracker URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackerKind {
    /// `http://` or `https://`: use [`http_announce`] on a blocking thread.
    Http,
    /// `udp://`: use a [`UdpTrackerClient`].
    Udp,
}

impl TrackerKind {
    /// Tells which client a URL needs, by its scheme (case-insensitive).
    pub fn of(url: &str) -> Result<TrackerKind, TrackerError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") | Some("https") => Ok(TrackerKind::Http),
            Some("udp") => Ok(TrackerKind::Udp),
            _ => Err(TrackerError::Unsupported {
                url: url.to_owned(),
                why: "the scheme is not http, https or udp".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(TrackerKind::of("HTTPS://t/a").unwrap(), TrackerKind::Http);
        assert_eq!(TrackerKind::of("udp://t:1").unwrap(), TrackerKind::Udp);
        assert!(TrackerKind::of("wss://t/a").is_err());
        assert!(TrackerKind::of("t/a").is_err());
    }
}
